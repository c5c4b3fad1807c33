"""The persisted address plan: subnets per school, addresses per host, never renumbered.

Rules (the filter plugins in filter_plugins/cartable_net.py apply the same ones):
- a network of N addresses: gateway (the school server) = first usable address;
  static hosts from ``first_host_offset`` (or 2 when the offset reaches the upper half) up to
  N/2 - 1; the DHCP dynamic range is the upper half, N/2 .. broadcast - 1.
- new schools are placed in UAI order at the lowest free aligned block of the supernet;
  a school keeps its subnets for ever; a school that leaves the selection keeps them
  ("reserved") until `cartable inventory release` frees them.
- a host keeps its address while it is in the plan; new hosts take the lowest free address.
- a host that leaves the plan (fewer classes this year) keeps its address, marked ``freed``:
  it gets it back if it returns, and no other host takes it until `cartable inventory release`
  frees it.
- a school that outgrows its subnet is grown by `cartable inventory grow` (``grow``): in place
  when the larger aligned block starting at the same address is free, else to a new block,
  each host keeping its offset in the block.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import netaddr

from cartable.errors import InputError, Problem

NETWORKS = ("pedagogical", "administrative")


@dataclass
class SchoolAllocation:
    subnets: dict[str, netaddr.IPNetwork]
    hosts: dict[str, netaddr.IPAddress] = field(default_factory=dict)
    reserved: bool = False   # no longer selected: subnets kept until released
    freed: dict[str, netaddr.IPAddress] = field(default_factory=dict)  # held until released


@dataclass(frozen=True)
class Need:
    """What a school needs from the plan."""

    uai: str
    prefixes: dict[str, int]               # network -> wanted prefix length
    hosts: dict[str, list[str]]            # network -> host ids (server excluded)


def static_start(size: int, offset: int) -> int:
    return offset if offset < size // 2 else 2


def static_capacity(prefixlen: int, offset: int) -> int:
    size = 2 ** (32 - prefixlen)
    return max(0, size // 2 - static_start(size, offset))


def fitting_prefix(wanted: int, hosts: int, offset: int) -> int:
    """The wanted prefix, enlarged (shorter) until `hosts` static addresses fit."""
    prefix = wanted
    while static_capacity(prefix, offset) < hosts and prefix > 16:
        prefix -= 1
    return prefix


def gateway(net: netaddr.IPNetwork) -> netaddr.IPAddress:
    return netaddr.IPAddress(net.first + 1)


def dhcp_range(net: netaddr.IPNetwork) -> tuple[netaddr.IPAddress, netaddr.IPAddress]:
    return netaddr.IPAddress(net.first + net.size // 2), netaddr.IPAddress(net.last - 1)


def static_addresses(net: netaddr.IPNetwork, offset: int) -> list[netaddr.IPAddress]:
    start = static_start(net.size, offset)
    return [netaddr.IPAddress(net.first + i) for i in range(start, net.size // 2)]


def _first_free_block(free: netaddr.IPSet, prefix: int) -> netaddr.IPNetwork | None:
    for cidr in free.iter_cidrs():
        if cidr.prefixlen <= prefix:
            return netaddr.IPNetwork(f"{cidr.network}/{prefix}")
    return None


def _free_space(supernet: netaddr.IPNetwork, allocations: Iterable[SchoolAllocation],
                others: Iterable[netaddr.IPNetwork]) -> netaddr.IPSet:
    """The supernet less every school's subnets and the site's other networks."""
    free = netaddr.IPSet([supernet])
    for alloc in allocations:
        for net in alloc.subnets.values():
            free.remove(net)
    for other in others:
        free.remove(other)
    return free


def _place_subnets(needs: list[Need], result: dict[str, SchoolAllocation],
                   supernet: netaddr.IPNetwork, others: tuple[netaddr.IPNetwork, ...],
                   where: str) -> None:
    free = _free_space(supernet, result.values(), others)
    for need in needs:
        if need.uai in result:
            continue
        subnets: dict[str, netaddr.IPNetwork] = {}
        for network in NETWORKS:
            block = _first_free_block(free, need.prefixes[network])
            if block is None:
                placed = sum(1 for a in result.values())
                raise InputError(Problem(
                    where, f"supernet {supernet} is too small: no free /{need.prefixes[network]} "
                    f"left for the {network} network of {need.uai} ({placed} schools placed, "
                    f"{len(needs)} selected)", field="address_plan.supernet",
                    hint="give a larger supernet (e.g. one prefix shorter) or smaller "
                    "pedagogical_prefix / administrative_prefix"))
            free.remove(block)
            subnets[network] = block
        result[need.uai] = SchoolAllocation(subnets)


def _place_hosts(need: Need, alloc: SchoolAllocation, offset: int, where: str,
                 site_arg: str) -> None:
    wanted = {h for hosts in need.hosts.values() for h in hosts}
    previous = {**alloc.freed, **alloc.hosts}   # a returning host gets its address back
    kept = {h: a for h, a in previous.items() if h in wanted}
    freed = {h: a for h, a in previous.items() if h not in wanted}
    for network, hosts in need.hosts.items():
        net = alloc.subnets[network]
        pool = static_addresses(net, offset)
        held = {a for a in freed.values() if a in net}
        taken = {a for a in kept.values() if a in net} | held
        available = iter(a for a in pool if a not in taken)
        for host in hosts:
            if host in kept and kept[host] in net:
                continue
            address = next(available, None)
            if address is None:
                hint = (f"grow it: `cartable inventory grow {site_arg} {need.uai} "
                        f"--network {network}` "
                        "(shows the change; --yes writes it), or reduce its equipment")
                if held:
                    hint += (f"; {len(held)} of its addresses are held by hosts that left the "
                             "plan (`freed:` in allocations.yml): `cartable inventory release "
                             f"{site_arg} HOST` frees them")
                raise InputError(Problem(
                    where, f"the {network} network {net} of {need.uai} is full: "
                    f"{len(hosts)} static hosts wanted, {len(pool)} addresses in its static range",
                    field=f"schools.{need.uai}", hint=hint))
            kept[host] = address
    alloc.hosts = kept
    alloc.freed = freed


def _check_previous(previous: dict[str, SchoolAllocation], where: str) -> None:
    """A hand-edited plan must not give one address or one block to two owners."""
    problems: list[Problem] = []
    owners: dict[netaddr.IPAddress, str] = {}
    blocks: list[tuple[netaddr.IPNetwork, str]] = []
    for uai, alloc in sorted(previous.items()):
        for network, net in alloc.subnets.items():
            for other, owner in blocks:
                if net in other or other in net:
                    problems.append(Problem(where, f"{uai}'s {network} network {net} overlaps "
                                            f"{other} of {owner}", field=f"schools.{uai}",
                                            hint="restore allocations.yml from version control"))
            blocks.append((net, f"{uai} ({network})"))
        for host, address in {**alloc.freed, **alloc.hosts}.items():
            if address in owners:
                problems.append(Problem(where, f"address {address} is given to both "
                                        f"{owners[address]} and {host}", field=f"schools.{uai}",
                                        hint="restore allocations.yml from version control"))
            owners[address] = host
    if problems:
        raise InputError(problems)


def allocate(needs: list[Need], previous: dict[str, SchoolAllocation],
             supernet: netaddr.IPNetwork, others: tuple[netaddr.IPNetwork, ...],
             offset: int, where: str, site_arg: str = "SITE") -> dict[str, SchoolAllocation]:
    """The new plan: previous allocations kept, new schools and hosts placed. Pure."""
    for uai, alloc in previous.items():
        for network, net in alloc.subnets.items():
            if net not in supernet:
                raise InputError(Problem(where, f"{uai}'s {network} network {net} is outside "
                                         f"the supernet {supernet}", field=f"schools.{uai}",
                                         hint="keep the supernet that holds every allocated "
                                         "subnet, or release the school"))
    _check_previous(previous, where)
    wanted = {n.uai for n in needs}
    result = {uai: SchoolAllocation(dict(a.subnets), dict(a.hosts), uai not in wanted,
                                    dict(a.freed))
              for uai, a in previous.items()}
    _place_subnets(sorted(needs, key=lambda n: n.uai), result, supernet, others, where)
    for need in needs:
        _place_hosts(need, result[need.uai], offset, where, site_arg)
    return dict(sorted(result.items()))


def _by_address(hosts: dict[str, netaddr.IPAddress]) -> dict[str, str]:
    return {h: str(addr) for h, addr in sorted(hosts.items(), key=lambda kv: int(kv[1]))}


def to_data(plan: dict[str, SchoolAllocation]) -> dict:
    """The allocations.yml structure (plain types)."""
    return {"schools": {
        uai: {
            **({"reserved": True} if a.reserved else {}),
            **{network: str(a.subnets[network]) for network in NETWORKS},
            "hosts": _by_address(a.hosts),
            **({"freed": _by_address(a.freed)} if a.freed else {}),
        }
        for uai, a in plan.items()
    }}


def from_data(data: object, where: str) -> dict[str, SchoolAllocation]:
    """Parse allocations.yml; InputError if it was damaged by hand."""
    if data is None:
        return {}
    try:
        schools = data["schools"] or {}  # type: ignore[index]
        return {
            uai: SchoolAllocation(
                {n: netaddr.IPNetwork(entry[n]) for n in NETWORKS},
                {h: netaddr.IPAddress(a) for h, a in (entry.get("hosts") or {}).items()},
                bool(entry.get("reserved", False)),
                {h: netaddr.IPAddress(a) for h, a in (entry.get("freed") or {}).items()})
            for uai, entry in schools.items()
        }
    except (KeyError, TypeError, AttributeError, netaddr.AddrFormatError, ValueError) as exc:
        raise InputError(Problem(where, f"the address plan cannot be read ({exc!r})",
                                 hint="restore it from version control: it is generated")) from None


def grow(plan: dict[str, SchoolAllocation], uai: str, network: str, prefix: int,
         supernet: netaddr.IPNetwork, others: tuple[netaddr.IPNetwork, ...],
         where: str) -> dict[str, SchoolAllocation]:
    """The plan with `uai`'s `network` subnet grown to /`prefix`. Pure.

    In place when the /prefix block starting at the same address is otherwise free (every
    address stays); else in the lowest free /prefix block, each host (and freed address)
    keeping its offset from the start of the block."""
    alloc = plan[uai]
    net = alloc.subnets[network]
    free = _free_space(supernet, plan.values(), others)
    wider = netaddr.IPNetwork(f"{net.network}/{prefix}").cidr
    if wider.first == net.first and wider in supernet and \
            (netaddr.IPSet([wider]) - netaddr.IPSet([net])).issubset(free):
        new = wider
    else:
        found = _first_free_block(free, prefix)
        if found is None:
            raise InputError(Problem(
                where, f"no free /{prefix} left in the supernet {supernet} for the {network} "
                f"network of {uai}", field="address_plan.supernet",
                hint="give a larger supernet, or release schools that left (cartable inventory "
                "release)"))
        new = found

    def move(addresses: dict[str, netaddr.IPAddress]) -> dict[str, netaddr.IPAddress]:
        return {h: netaddr.IPAddress(new.first + (int(a) - net.first)) if a in net else a
                for h, a in addresses.items()}

    out = dict(plan)
    out[uai] = SchoolAllocation({**alloc.subnets, network: new}, move(alloc.hosts),
                                alloc.reserved, move(alloc.freed))
    return out
