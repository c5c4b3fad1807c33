# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ports a service role opens on the school server's firewall (school_network's table).

A role declares them in its defaults, e.g. ``apt_cache__firewall_ports: [{port: 3142}]``, and
calls school_network's ``service_ports.yml``, which writes the role's drop-in
``/etc/nftables.d/cartable/<role>.nft`` from ``ports | cartable_firewall_ports(role)``.

Each entry is ``{port: N, protocol: tcp|udp}`` (protocol defaults to tcp) or a bare port
number (tcp). The result is ``{'tcp': [...], 'udp': [...]}``, each sorted and without
duplicates; a bad entry raises AnsibleFilterError naming the role, the entry and the fix.
"""

from __future__ import annotations

import re
from typing import Any

from ansible.errors import AnsibleFilterError

PROTOCOLS = ("tcp", "udp")
_SERVICE_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


def _fail(service: str, problem: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"cartable_firewall_ports: {service}__firewall_ports: {problem}")


def _port(value: Any, service: str, index: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit() \
            or not 1 <= int(value) <= 65535:
        raise _fail(service, f"entry {index}: port {value!r} is not a port number (1-65535)")
    return int(value)


def cartable_firewall_ports(ports: Any, service: str) -> dict[str, list[int]]:
    """Normalise a role's declared ports into {'tcp': [...], 'udp': [...]}."""
    if not isinstance(service, str) or not _SERVICE_RE.match(service):
        raise AnsibleFilterError(f"cartable_firewall_ports: service name {service!r} is not a role name "
                                 "(lower-case letters, digits and '_', starting with a letter)")
    if ports is None:
        ports = []
    if isinstance(ports, (str, dict)) or not isinstance(ports, list):
        raise _fail(service, f"{ports!r} is not a list (e.g. [{{port: 3142, protocol: tcp}}])")
    result: dict[str, set[int]] = {protocol: set() for protocol in PROTOCOLS}
    for index, entry in enumerate(ports):
        if isinstance(entry, dict):
            unknown = sorted(set(entry) - {"port", "protocol", "comment"})
            if unknown:
                raise _fail(service, f"entry {index} {entry!r} has unknown keys {unknown} "
                                     "(allowed: port, protocol, comment)")
            if "port" not in entry:
                raise _fail(service, f"entry {index} {entry!r} has no port")
            protocol = entry.get("protocol", "tcp")
            if protocol not in PROTOCOLS:
                raise _fail(service, f"entry {index}: protocol {protocol!r} is not tcp or udp")
            result[protocol].add(_port(entry["port"], service, index))
        else:
            result["tcp"].add(_port(entry, service, index))
    return {protocol: sorted(numbers) for protocol, numbers in result.items()}


class FilterModule:
    """Cartable's firewall filters."""

    def filters(self) -> dict[str, Any]:
        return {"cartable_firewall_ports": cartable_firewall_ports}
