# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ports a service role opens on the school server's firewall (school_network's table).

A role declares them in its defaults, e.g. ``apt_cache__firewall_ports: [{port: 3142}]``, and
calls school_network's ``service_ports.yml``, which writes the role's drop-in
``/etc/nftables.d/cartable/<role>.nft`` from ``ports | cartable_firewall_ports(role)``.

Each entry is ``{port: N, protocol: tcp|udp}`` (protocol defaults to tcp) or a bare port
number (tcp). The result is ``{'tcp': [...], 'udp': [...]}``, each sorted and without
duplicates; a bad entry raises AnsibleFilterError naming the role, the entry and the fix.

``egress | cartable_firewall_egress(role)`` checks what a role lets its own system user reach
(``{user: proxy, destinations: [{address, port, protocol}]}``, the school proxy reaching the
academic proxy only) and returns it normalised (``{}`` when nothing is declared).
"""

from __future__ import annotations

import ipaddress
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


_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def _egress_fail(service: str, problem: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"cartable_firewall_egress: egress of {service}: {problem}")


def cartable_firewall_egress(egress: Any, service: str) -> dict[str, Any]:
    """Normalise a role's egress restriction: {'user': str, 'destinations': [{address, port,
    protocol}]} sorted, or {} when none is declared."""
    if not egress:
        return {}
    if not isinstance(egress, dict):
        raise _egress_fail(service, f"{egress!r} is not a mapping {{user, destinations}}")
    unknown = sorted(set(egress) - {"user", "destinations"})
    if unknown:
        raise _egress_fail(service, f"unknown keys {unknown} (allowed: user, destinations)")
    user = egress.get("user")
    if not isinstance(user, str) or not _USER_RE.match(user):
        raise _egress_fail(service, f"user {user!r} is not a system user name")
    destinations = egress.get("destinations")
    if not isinstance(destinations, list) or not destinations:
        raise _egress_fail(service, f"destinations {destinations!r} must be a non-empty list "
                                    "(an empty one would cut the service off: declare no egress instead)")
    result = []
    for index, dest in enumerate(destinations):
        if not isinstance(dest, dict) or set(dest) - {"address", "port", "protocol"} \
                or "address" not in dest or "port" not in dest:
            raise _egress_fail(service, f"destination {index} {dest!r} must be {{address, port, protocol}}")
        try:
            address = ipaddress.ip_address(str(dest["address"]))
        except ValueError:
            raise _egress_fail(service, f"destination {index}: {dest['address']!r} is not an IP "
                                        "address (resolve names before)") from None
        protocol = dest.get("protocol", "tcp")
        if protocol not in PROTOCOLS:
            raise _egress_fail(service, f"destination {index}: protocol {protocol!r} is not tcp or udp")
        try:
            port = _port(dest["port"], service, index)
        except AnsibleFilterError:
            raise _egress_fail(service, f"destination {index}: port {dest['port']!r} is not a port "
                                        "number (1-65535)") from None
        result.append({"address": str(address), "port": port, "protocol": protocol})
    unique = {(d["address"], d["port"], d["protocol"]): d for d in result}
    return {"user": user, "destinations": [unique[k] for k in sorted(unique)]}


class FilterModule:
    """Cartable's firewall filters."""

    def filters(self) -> dict[str, Any]:
        return {"cartable_firewall_ports": cartable_firewall_ports,
                "cartable_firewall_egress": cartable_firewall_egress}
