"""Property tests of the address allocator: whatever schools and hosts come and go, and whatever
is grown, no address or block has two owners and no build renumbers anything."""

from __future__ import annotations

import netaddr
import pytest
from hypothesis import given, settings, strategies as st

from cartable import allocate as al
from cartable.errors import InputError

SUPERNET = netaddr.IPNetwork("10.35.0.0/20")
OTHERS = (netaddr.IPNetwork("10.35.8.0/23"),)
OFFSET = 10
POOL = ["0350001A", "0350002B", "0350003C", "0350004D", "0350005E"]

# a step: which schools are selected, and how many static hosts each wants per network
STEP = st.dictionaries(st.sampled_from(POOL), st.tuples(st.integers(0, 130), st.integers(0, 12)),
                       min_size=1, max_size=len(POOL))


def _need(uai: str, counts: tuple[int, int]) -> al.Need:
    ped, adm = counts
    hosts = {"pedagogical": [f"{uai.lower()}-sdi{i:03d}" for i in range(1, ped + 1)],
             "administrative": [f"{uai.lower()}-dir{i:02d}" for i in range(1, adm + 1)]}
    return al.Need(uai, {"pedagogical": al.fitting_prefix(25, ped, OFFSET),
                         "administrative": al.fitting_prefix(27, adm, OFFSET)}, hosts)


def _owners(plan: dict[str, al.SchoolAllocation]) -> None:
    """No block and no address to two owners; every address inside its school's subnets."""
    blocks = [net for a in plan.values() for net in a.subnets.values()] + list(OTHERS)
    assert sum(b.size for b in blocks) == netaddr.IPSet(blocks).size
    seen: dict[netaddr.IPAddress, str] = {}
    for alloc in plan.values():
        assert not set(alloc.hosts) & set(alloc.freed)
        for host, address in {**alloc.hosts, **alloc.freed}.items():
            assert address not in seen, f"{address} given to {seen[address]} and {host}"
            seen[address] = host
            assert any(address in net for net in alloc.subnets.values())


def _grow_for(plan: dict[str, al.SchoolAllocation], needs: list[al.Need],
              error: InputError) -> dict[str, al.SchoolAllocation]:
    """What a DSI does on 'network ... is full': `cartable inventory grow` that school."""
    field = error.problems[0].field or ""
    uai = field.removeprefix("schools.")
    network = next(n for n in al.NETWORKS if f"the {n} network" in error.problems[0].message)
    need = next(n for n in needs if n.uai == uai)
    net = plan[uai].subnets[network]
    held = [h for h, a in plan[uai].freed.items() if a in net and h not in need.hosts[network]]
    prefix = al.fitting_prefix(net.prefixlen - 1, len(need.hosts[network]) + len(held), OFFSET)
    return al.grow(plan, uai, network, prefix, SUPERNET, OTHERS, "allocations.yml")


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(STEP, min_size=1, max_size=6))
def test_property_no_two_owners_and_nothing_renumbered(steps: list[dict]) -> None:
    plan: dict[str, al.SchoolAllocation] = {}
    addresses: dict[str, netaddr.IPAddress] = {}   # every host ever placed (never released)
    for step in steps:
        needs = [_need(uai, counts) for uai, counts in sorted(step.items())]
        before = al.to_data(plan)
        for _ in range(8):  # grow as often as a DSI would have to
            try:
                new = al.allocate(needs, plan, SUPERNET, OTHERS, OFFSET, "allocations.yml")
                break
            except InputError as exc:
                assert al.to_data(plan) == before  # a refused build changes nothing
                if "is full" not in exc.problems[0].message:
                    new = None  # the supernet is full: the step is refused as a whole
                    break
                try:
                    grown = _grow_for(plan, needs, exc)
                except InputError:
                    new = None
                    break
                _owners(grown)
                plan, before = grown, al.to_data(grown)
                addresses = {h: a for alloc in plan.values()
                             for h, a in {**alloc.hosts, **alloc.freed}.items()}
        else:
            pytest.fail("growing never made room")
        if new is None:
            continue
        _owners(new)
        for uai, alloc in plan.items():
            assert new[uai].subnets == alloc.subnets       # a school is never moved by a build
        for need in needs:
            assert set(new[need.uai].hosts) == {h for hs in need.hosts.values() for h in hs}
            assert not new[need.uai].reserved
        for uai in set(plan) - set(step):
            assert new[uai].reserved
        current = {h: a for alloc in new.values() for h, a in {**alloc.hosts, **alloc.freed}.items()}
        for host, address in addresses.items():
            assert current[host] == address                # never renumbered, freed kept
        addresses = current
        plan = new


@settings(max_examples=40, deadline=None)
@given(first=STEP, uai=st.sampled_from(POOL), network=st.sampled_from(al.NETWORKS),
       steps=st.integers(1, 2))
def test_property_grow(first: dict, uai: str, network: str, steps: int) -> None:
    needs = [_need(u, c) for u, c in sorted(first.items())]
    try:
        plan = al.allocate(needs, {}, SUPERNET, OTHERS, OFFSET, "allocations.yml")
    except InputError:
        return
    if uai not in plan:
        return
    old = plan[uai].subnets[network]
    try:
        grown = al.grow(plan, uai, network, old.prefixlen - steps, SUPERNET, OTHERS, "a.yml")
    except InputError as exc:
        assert "no free" in exc.problems[0].message
        return
    _owners(grown)
    new = grown[uai].subnets[network]
    assert new.prefixlen == old.prefixlen - steps
    assert {u: a for u, a in grown.items() if u != uai} == {u: a for u, a in plan.items() if u != uai}
    for host, address in plan[uai].hosts.items():
        if address in old:
            assert int(grown[uai].hosts[host]) - new.first == int(address) - old.first
            assert grown[uai].hosts[host] in al.static_addresses(new, OFFSET)
        else:
            assert grown[uai].hosts[host] == address
    if new.first == old.first:
        assert grown[uai].hosts == plan[uai].hosts       # in place: every address stays
    # a build after the grow keeps everything where grow put it
    again = al.allocate(needs, grown, SUPERNET, OTHERS, OFFSET, "allocations.yml")
    assert again[uai].hosts == grown[uai].hosts and again[uai].subnets == grown[uai].subnets


def test_grow_in_place_only_when_the_buddy_block_is_free() -> None:
    plan = {"A": al.SchoolAllocation({"pedagogical": netaddr.IPNetwork("10.35.0.0/25"),
                                      "administrative": netaddr.IPNetwork("10.35.1.0/27")},
                                     {"a-sdi01": netaddr.IPAddress("10.35.0.10")}),
            "B": al.SchoolAllocation({"pedagogical": netaddr.IPNetwork("10.35.0.128/25"),
                                      "administrative": netaddr.IPNetwork("10.35.1.32/27")})}
    grown = al.grow(plan, "A", "administrative", 26, SUPERNET, OTHERS, "a.yml")
    assert str(grown["A"].subnets["administrative"]) == "10.35.1.64/26"  # buddy taken by B
    moved = al.grow(plan, "A", "pedagogical", 24, SUPERNET, OTHERS, "a.yml")
    assert str(moved["A"].subnets["pedagogical"]) == "10.35.2.0/24"
    assert str(moved["A"].hosts["a-sdi01"]) == "10.35.2.10"
    del plan["B"]
    in_place = al.grow(plan, "A", "pedagogical", 24, SUPERNET, OTHERS, "a.yml")
    assert str(in_place["A"].subnets["pedagogical"]) == "10.35.0.0/24"
    assert in_place["A"].hosts == plan["A"].hosts
