# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Derivations from a host's facts and lists, for Cartable's roles (school_network).

* ``ansible_facts | cartable_network_interfaces(addresses)``: ``{network: interface}``, the
  interface holding each network's address (primary or secondary IPv4) according to the
  facts; networks whose address no interface holds are left out.
* ``list | cartable_duplicates``: the values found more than once, sorted (empty values are
  ignored).

Bad input raises ``AnsibleFilterError`` naming the filter and the value.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from ansible.errors import AnsibleFilterError


def _interface_addresses(facts: dict[str, Any], interface: str) -> list[str]:
    """IPv4 addresses of an interface in the facts (ansible names `eth0.10` as `eth0_10`)."""
    detail = facts.get(re.sub(r"[^A-Za-z0-9_]", "_", interface)) or {}
    addresses = [detail.get("ipv4", {}).get("address")]
    addresses += [secondary.get("address") for secondary in detail.get("ipv4_secondaries", []) or []]
    return [address for address in addresses if address]


def cartable_network_interfaces(facts: Any, addresses: Any) -> dict[str, str]:
    """{network: interface holding addresses[network]}, from gathered facts."""
    if not isinstance(facts, dict) or not isinstance(facts.get("interfaces"), list):
        raise AnsibleFilterError("cartable_network_interfaces: the input is not ansible_facts with "
                                 "network facts (gather_facts, or gather_subset: [network])")
    if not isinstance(addresses, dict):
        raise AnsibleFilterError(f"cartable_network_interfaces: addresses {addresses!r} is not a mapping "
                                 "{network: address} (cartable_addresses)")
    found: dict[str, str] = {}
    for network, address in sorted(addresses.items()):
        for interface in sorted(facts["interfaces"]):
            if address in _interface_addresses(facts, interface):
                found[network] = interface
    return found


def cartable_duplicates(values: Any) -> list[Any]:
    """The values present more than once in `values`, sorted; empty values are ignored."""
    if isinstance(values, (str, dict)) or not isinstance(values, (list, tuple)):
        raise AnsibleFilterError(f"cartable_duplicates: {values!r} is not a list")
    counts = Counter(value for value in values if value not in (None, ""))
    return sorted(value for value, count in counts.items() if count > 1)


class FilterModule:
    """Cartable's fact filters."""

    def filters(self) -> dict[str, Any]:
        return {"cartable_network_interfaces": cartable_network_interfaces,
                "cartable_duplicates": cartable_duplicates}
