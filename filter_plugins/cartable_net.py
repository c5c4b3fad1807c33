# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IPv4, MAC and DNS-label filters for Cartable's roles (dnsmasq, nftables, squid).

Each filter is documented in a sidecar file next to this one,
``filter_plugins/<filter name>.yml`` (read by ``ansible-doc -t filter NAME``).
Bad input raises ``AnsibleFilterError`` naming the filter and the value.

Conventions shared by every filter:

* A *subnet* is an IPv4 network in CIDR form, ``10.35.0.0/24``: the prefix length is
  required and host bits must be zero (``10.35.0.5/24`` is refused, it is usually a typo).
* An *address* is a plain dotted-quad IPv4 address without prefix.
* The usable hosts of a subnet are network+1 .. broadcast-1; ``nth_host(1)`` is the gateway.
* The address plan of a school subnet of N = 2**(32 - prefixlen) addresses is:
  gateway = network+1; static range = network+first_offset (10 by default, 2 when that
  reaches the upper half) .. network+N//2-1; DHCP (dynamic) range = network+N//2 .. broadcast-1.
  The Python inventory generator (``cartable``) applies the same rule.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from netaddr import EUI, INET_PTON, AddrFormatError, IPAddress, IPNetwork, mac_unix_expanded

# Six groups of 1-2 hex digits with one separator, Cisco's three groups of four, or 12 digits.
_MAC_FORMS = re.compile(
    r"[0-9a-f]{1,2}([:-])[0-9a-f]{1,2}(\1[0-9a-f]{1,2}){4}"
    r"|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}"
    r"|[0-9a-f]{12}",
    re.IGNORECASE,
)
# Letters that Unicode decomposition does not reduce to ASCII.
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "ł": "l", "đ": "d"})
DNS_LABEL_MAX = 63


def _fail(filter_name: str, value: Any, problem: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"{filter_name}: {value!r} {problem}")


def _subnet(value: Any, filter_name: str) -> IPNetwork:
    """Parse a strict IPv4 CIDR subnet, or raise a filter error that names it."""
    if not isinstance(value, str):
        raise _fail(filter_name, value, f"is of type {type(value).__name__}, "
                                        "expected an IPv4 subnet string such as '10.35.0.0/24'")
    if ":" in value:
        raise _fail(filter_name, value, "is IPv6; Cartable's network filters are IPv4 only")
    address, slash, prefix = value.partition("/")
    if not slash or not (prefix.isascii() and prefix.isdigit()) or int(prefix) > 32:
        raise _fail(filter_name, value, "is not an IPv4 subnet in CIDR form "
                                        "(address/prefix length, e.g. '10.35.0.0/24')")
    try:
        subnet = IPNetwork(f"{IPAddress(address, 4, flags=INET_PTON)}/{int(prefix)}")
    except (AddrFormatError, ValueError):
        raise _fail(filter_name, value, "is not an IPv4 subnet in CIDR form "
                                        "(address/prefix length, e.g. '10.35.0.0/24')") from None
    if subnet.ip != subnet.network:
        raise _fail(filter_name, value, f"has host bits set; did you mean '{subnet.cidr}'?")
    return subnet


def _address(value: Any, filter_name: str) -> IPAddress:
    """Parse a strict IPv4 address (no prefix), or raise a filter error that names it."""
    if not isinstance(value, str):
        raise _fail(filter_name, value, f"is of type {type(value).__name__}, "
                                        "expected an IPv4 address string such as '10.35.0.10'")
    if "/" in value:
        raise _fail(filter_name, value, "has a prefix length; expected a plain IPv4 address "
                                        "such as '10.35.0.10'")
    try:
        return IPAddress(value, 4, flags=INET_PTON)
    except (AddrFormatError, ValueError):
        raise _fail(filter_name, value, "is not an IPv4 address "
                                        "(dotted quad, e.g. '10.35.0.10')") from None


def _integer(value: Any, filter_name: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(filter_name, value, f"is not an integer {what} (use '| int' to convert)")
    return value


def _offset(subnet: IPNetwork, offset: int) -> str:
    return str(IPAddress(subnet.first + offset, 4))


def nth_host(subnet: str, n: int) -> str:
    """The n-th usable host of a subnet: 1 is the first, -1 the last (broadcast-1)."""
    net = _subnet(subnet, "cartable_nth_host")
    n = _integer(n, "cartable_nth_host", "host index")
    usable = max(net.size - 2, 0)
    if not (1 <= n <= usable or -usable <= n <= -1):
        limits = (f"usable host indexes: 1..{usable} or -{usable}..-1" if usable
                  else f"a /{net.prefixlen} has no usable host")
        raise _fail("cartable_nth_host", n, f"is out of range for {subnet!r} ({limits})")
    return _offset(net, n if n > 0 else usable + 1 + n)


def dhcp_range(subnet: str) -> list[str]:
    """[start, end] of the dynamic range: the upper half of the subnet, broadcast excluded."""
    net = _subnet(subnet, "cartable_dhcp_range")
    if net.prefixlen > 29:
        raise _fail("cartable_dhcp_range", subnet,
                    "is too small for a DHCP range (the longest prefix allowed is /29)")
    return [_offset(net, net.size // 2), _offset(net, net.size - 2)]


def static_range(subnet: str, first_offset: int = 10) -> list[str]:
    """[start, end] of static addresses: network+first_offset .. just below the DHCP range."""
    net = _subnet(subnet, "cartable_static_range")
    first_offset = _integer(first_offset, "cartable_static_range", "first_offset")
    if first_offset < 2:
        raise _fail("cartable_static_range", first_offset,
                    "is too small for first_offset (0 is the network address, 1 the gateway; "
                    "use 2 or more)")
    half = net.size // 2
    start = first_offset if first_offset < half else 2
    if start > half - 1:
        raise _fail("cartable_static_range", subnet,
                    "is too small for a static range (the longest prefix allowed is /29)")
    return [_offset(net, start), _offset(net, half - 1)]


def netmask(subnet: str) -> str:
    """The dotted-quad netmask of a subnet: '255.255.255.0' for a /24."""
    return str(_subnet(subnet, "cartable_netmask").netmask)


def prefixlen(subnet: str) -> int:
    """The prefix length of a subnet: 24 for '10.35.0.0/24'."""
    return _subnet(subnet, "cartable_prefixlen").prefixlen


def network_address(subnet: str) -> str:
    """The network (first) address of a subnet."""
    return str(_subnet(subnet, "cartable_network_address").network)


def broadcast(subnet: str) -> str:
    """The broadcast (last) address of a subnet; for /31 and /32, their last address."""
    net = _subnet(subnet, "cartable_broadcast")
    return str(IPAddress(net.last, 4))


def reverse_zone(subnet: str) -> str:
    """The in-addr.arpa zone of a subnet, widened to the enclosing octet boundary."""
    net = _subnet(subnet, "cartable_reverse_zone")
    if net.prefixlen < 8:
        raise _fail("cartable_reverse_zone", subnet,
                    "is too large for a reverse zone (the shortest prefix allowed is /8)")
    octets = str(net.network).split(".")[: net.prefixlen // 8]
    return ".".join([*reversed(octets), "in-addr.arpa"])


def reverse_pointer(address: str) -> str:
    """The PTR owner name of an address: '10.0.35.10.in-addr.arpa' for 10.35.0.10."""
    return _address(address, "cartable_reverse_pointer").reverse_dns.rstrip(".")


def in_subnet(address: str, subnet: str) -> bool:
    """Whether an IPv4 address lies in a subnet (network and broadcast included)."""
    return _address(address, "cartable_in_subnet") in _subnet(subnet, "cartable_in_subnet")


def mac(value: str) -> str:
    """A unicast MAC address normalised to lower-case colon form, '02:00:5e:00:53:01'."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise _fail("cartable_mac", value, "is a number, not a MAC address: quote the MAC in "
                                           "YAML (unquoted, 10:20:30:40:50:59 is read as an "
                                           "integer in base 60)")
    if not isinstance(value, str) or not _MAC_FORMS.fullmatch(value):
        raise _fail("cartable_mac", value, "is not a MAC address (e.g. '02:00:5e:00:53:01')")
    try:
        eui = EUI(value, version=48, dialect=mac_unix_expanded)
    except (AddrFormatError, ValueError):
        raise _fail("cartable_mac", value,
                    "is not a MAC address (e.g. '02:00:5e:00:53:01')") from None
    if int(eui) == 0 or eui.words[0] & 1:  # the I/G bit of the first octet: group address
        raise _fail("cartable_mac", value,
                    "is not the MAC address of a network card (all-zero, broadcast or multicast)")
    return str(eui)


def dns_label(text: str) -> str:
    """A DNS-safe label: lower case, accents folded to ASCII, '-' between words, <= 63 chars."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise _fail("cartable_dns_label", text,
                    f"is of type {type(text).__name__}, expected a string")
    folded = unicodedata.normalize("NFKD", str(text).lower().translate(_LIGATURES))
    ascii_text = folded.encode("ascii", "ignore").decode("ascii").lower()  # NFKD: ℍ -> H
    label = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:DNS_LABEL_MAX].rstrip("-")
    if not label:
        raise _fail("cartable_dns_label", text, "has no letter or digit to make a DNS label from")
    return label


class FilterModule:
    """Cartable's network filters; all names start with ``cartable_``."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "cartable_nth_host": nth_host,
            "cartable_dhcp_range": dhcp_range,
            "cartable_static_range": static_range,
            "cartable_netmask": netmask,
            "cartable_prefixlen": prefixlen,
            "cartable_network_address": network_address,
            "cartable_broadcast": broadcast,
            "cartable_reverse_zone": reverse_zone,
            "cartable_reverse_pointer": reverse_pointer,
            "cartable_in_subnet": in_subnet,
            "cartable_mac": mac,
            "cartable_dns_label": dns_label,
        }
