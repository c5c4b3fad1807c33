# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who is who on a school's networks, for the connection history of the school proxy.

``groups['school_<uai>'] | map('extract', hostvars) | cartable_history_hosts`` gives the
list the history's logger reads (``/etc/cartable/history/hosts.json``): one entry per host
with a known MAC, ``{name, mac, addresses}``, sorted by name; the logger adds the DHCP
leases of dnsmasq for the machines the inventory does not know.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def cartable_history_hosts(hosts: Any) -> list[dict[str, Any]]:
    """[{name, mac, addresses}] of the hosts (hostvars entries) that have a cartable_mac."""
    if hosts is None:
        return []
    result = []
    for host in hosts:
        if not isinstance(host, Mapping):
            raise AnsibleFilterError(f"cartable_history_hosts: {host!r} is not a host's variables "
                                     "(use map('extract', hostvars))")
        mac = host.get("cartable_mac")
        if not mac:
            continue
        name = host.get("inventory_hostname")
        mac = str(mac).lower()
        if not _MAC_RE.match(mac):
            raise AnsibleFilterError(f"cartable_history_hosts: {name}: cartable_mac {mac!r} is not a "
                                     "MAC address (aa:bb:cc:dd:ee:ff)")
        addresses = host.get("cartable_addresses") or {}
        values = list(addresses.values()) if isinstance(addresses, Mapping) else []
        if not values and host.get("ansible_host"):
            values = [host["ansible_host"]]
        result.append({"name": str(name), "mac": mac, "addresses": sorted({str(a) for a in values})})
    return sorted(result, key=lambda h: h["name"])


class FilterModule:
    """Cartable's connection-history filters."""

    def filters(self) -> dict[str, Any]:
        return {"cartable_history_hosts": cartable_history_hosts}
