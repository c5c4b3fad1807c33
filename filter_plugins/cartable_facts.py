# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Derivations from a host's facts and lists, for Cartable's roles (school_network).

* ``ansible_facts | cartable_network_interfaces(addresses)``: ``{network: interface}``, the
  interface holding each network's address (primary or secondary IPv4) according to the
  facts; networks whose address no interface holds are left out.
* ``list | cartable_duplicates``: the values found more than once, sorted (empty values are
  ignored);
* ``cartable_school_networks | cartable_school_network_list(addresses, interfaces)``: each
  school network as the server serves it (its own keys plus name, address, interface,
  netmask, reverse_zone), sorted by name;
* ``host names | cartable_school_hosts(hostvars, server, server_addresses)``: each host of the
  school as DHCP and DNS see it (name, inventory_hostname, addresses, network, mac, server).

The address rules come from cartable_net.py (loaded from this directory).

Bad input raises ``AnsibleFilterError`` naming the filter and the value.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError


def _load_net() -> Any:
    """cartable_net.py beside this file (filter plugins are not a package)."""
    spec = importlib.util.spec_from_file_location("cartable_net_for_facts",
                                                  Path(__file__).with_name("cartable_net.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_NET = _load_net()


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


def cartable_school_network_list(networks: Any, addresses: Any, interfaces: Any) -> list[dict[str, Any]]:
    """Each school network with the server's address and interface on it, its netmask and reverse zone."""
    for value, what in ((networks, "cartable_school_networks"), (addresses, "cartable_addresses"),
                        (interfaces, "interfaces")):
        if not isinstance(value, Mapping):
            raise AnsibleFilterError(f"cartable_school_network_list: {what} {value!r} is not a mapping")
    result = []
    for name in sorted(networks):
        network = networks[name]
        if not isinstance(network, Mapping) or "subnet" not in network:
            raise AnsibleFilterError(f"cartable_school_network_list: cartable_school_networks.{name} "
                                     f"{network!r} has no subnet")
        result.append({**network, "name": name, "address": addresses.get(name),
                       "interface": interfaces.get(name), "netmask": _NET.netmask(network["subnet"]),
                       "reverse_zone": _NET.reverse_zone(network["subnet"])})
    return result


def cartable_school_hosts(names: Any, hostvars: Any, server: str, server_addresses: Any) -> list[dict[str, Any]]:
    """Each host of the school (sorted by name) as DHCP and DNS see it; the server has every address."""
    if isinstance(names, (str, Mapping)) or not isinstance(names, (list, tuple)):
        raise AnsibleFilterError(f"cartable_school_hosts: {names!r} is not a list of host names")
    hosts = []
    for host in sorted(names):
        variables = hostvars[host]
        is_server = host == server
        mac = variables.get("cartable_mac")
        hosts.append({
            "name": _NET.dns_label(host),
            "inventory_hostname": host,
            "addresses": list(server_addresses) if is_server else [variables.get("ansible_host")],
            "network": None if is_server else variables.get("cartable_network"),
            "mac": _NET.mac(mac) if mac else None,
            "server": is_server,
        })
    return hosts


class FilterModule:
    """Cartable's fact filters."""

    def filters(self) -> dict[str, Any]:
        return {"cartable_network_interfaces": cartable_network_interfaces,
                "cartable_duplicates": cartable_duplicates,
                "cartable_school_network_list": cartable_school_network_list,
                "cartable_school_hosts": cartable_school_hosts}
