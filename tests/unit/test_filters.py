"""Tests of filter_plugins/cartable_net.py: values, every error path, properties, docs, Ansible."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given
from hypothesis import strategies as st
from plugin_loader import filters_of

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "filter_plugins" / "cartable_net.py"
BIN = Path(sys.executable).parent


FILTERS: dict[str, Callable[..., Any]] = filters_of("cartable_net")


def f(name: str, *args: Any) -> Any:
    return FILTERS[f"cartable_{name}"](*args)


# --- values -------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "args", "expected"), [
    ("nth_host", ("10.35.0.0/24", 1), "10.35.0.1"),
    ("nth_host", ("10.35.0.0/24", 10), "10.35.0.10"),
    ("nth_host", ("10.35.0.0/24", 254), "10.35.0.254"),
    ("nth_host", ("10.35.0.0/24", -1), "10.35.0.254"),
    ("nth_host", ("10.35.0.0/24", -254), "10.35.0.1"),
    ("nth_host", ("10.35.0.0/30", -1), "10.35.0.2"),
    ("nth_host", ("10.35.0.0/16", 256), "10.35.1.0"),
    ("dhcp_range", ("10.35.0.0/24",), ["10.35.0.128", "10.35.0.254"]),
    ("dhcp_range", ("10.35.0.0/23",), ["10.35.1.0", "10.35.1.254"]),
    ("dhcp_range", ("10.35.0.64/26",), ["10.35.0.96", "10.35.0.126"]),
    ("dhcp_range", ("10.35.0.8/29",), ["10.35.0.12", "10.35.0.14"]),
    ("static_range", ("10.35.0.0/24",), ["10.35.0.10", "10.35.0.127"]),
    ("static_range", ("10.35.0.0/24", 50), ["10.35.0.50", "10.35.0.127"]),
    ("static_range", ("10.35.0.0/24", 127), ["10.35.0.127", "10.35.0.127"]),
    ("static_range", ("10.35.0.0/24", 128), ["10.35.0.2", "10.35.0.127"]),   # offset >= N//2
    ("static_range", ("10.35.0.0/27",), ["10.35.0.10", "10.35.0.15"]),
    ("static_range", ("10.35.0.16/28",), ["10.35.0.18", "10.35.0.23"]),      # offset >= N//2
    ("static_range", ("10.35.0.8/29",), ["10.35.0.10", "10.35.0.11"]),
    ("netmask", ("10.35.0.0/24",), "255.255.255.0"),
    ("netmask", ("10.32.0.0/11",), "255.224.0.0"),
    ("netmask", ("0.0.0.0/0",), "0.0.0.0"),
    ("prefixlen", ("10.35.0.0/24",), 24),
    ("prefixlen", ("10.35.0.7/32",), 32),
    ("network_address", ("10.35.4.0/22",), "10.35.4.0"),
    ("broadcast", ("10.35.4.0/22",), "10.35.7.255"),
    ("broadcast", ("10.35.0.6/31",), "10.35.0.7"),
    ("broadcast", ("10.35.0.7/32",), "10.35.0.7"),
    ("reverse_zone", ("10.35.0.0/24",), "0.35.10.in-addr.arpa"),
    ("reverse_zone", ("10.35.0.0/16",), "35.10.in-addr.arpa"),
    ("reverse_zone", ("10.0.0.0/8",), "10.in-addr.arpa"),
    ("reverse_zone", ("10.35.0.128/25",), "0.35.10.in-addr.arpa"),
    ("reverse_zone", ("10.35.16.0/20",), "35.10.in-addr.arpa"),
    ("reverse_zone", ("10.35.0.9/32",), "9.0.35.10.in-addr.arpa"),
    ("reverse_pointer", ("10.35.0.10",), "10.0.35.10.in-addr.arpa"),
    ("in_subnet", ("10.35.0.10", "10.35.0.0/24"), True),
    ("in_subnet", ("10.35.0.0", "10.35.0.0/24"), True),
    ("in_subnet", ("10.35.0.255", "10.35.0.0/24"), True),
    ("in_subnet", ("10.35.1.0", "10.35.0.0/24"), False),
    ("mac", ("02:00:5e:00:53:01",), "02:00:5e:00:53:01"),
    ("mac", ("02:00:5E:00:53:01",), "02:00:5e:00:53:01"),
    ("mac", ("02-00-5e-00-53-01",), "02:00:5e:00:53:01"),
    ("mac", ("2:0:5e:0:53:1",), "02:00:5e:00:53:01"),
    ("mac", ("0200.5e00.5301",), "02:00:5e:00:53:01"),
    ("mac", ("02005E005301",), "02:00:5e:00:53:01"),
    ("dns_label", ("Ecole",), "ecole"),
    ("dns_label", ("École élémentaire Jules Ferry",), "ecole-elementaire-jules-ferry"),
    ("dns_label", ("  L'Œillet — Saint-Exupéry  ",), "l-oeillet-saint-exupery"),
    ("dns_label", ("Straße Ærø Łódź",), "strasse-aero-lodz"),
    ("dns_label", ("salle_12",), "salle-12"),
    ("dns_label", (12,), "12"),
    ("dns_label", ("ℍôtel de ville",), "hotel-de-ville"),   # NFKD gives an upper-case H
    ("dns_label", ("a" * 62 + " b",), "a" * 62),     # cut at 63, trailing dash removed
    ("dns_label", ("x" * 100,), "x" * 63),
])
def test_value(name: str, args: tuple[Any, ...], expected: Any) -> None:
    assert f(name, *args) == expected


def test_prefixlen_is_an_int() -> None:
    assert type(f("prefixlen", "10.35.0.0/24")) is int


# --- errors: AnsibleFilterError naming the filter and the value ---------------------------

BAD_SUBNETS = [
    ("10.35.0.0", "not an IPv4 subnet in CIDR form"),
    ("10.35.0.0/", "not an IPv4 subnet in CIDR form"),
    ("10.35.0.0/33", "not an IPv4 subnet in CIDR form"),
    ("10.35.0.0/-1", "not an IPv4 subnet in CIDR form"),
    ("10.35.0.0/255.255.255.0", "not an IPv4 subnet in CIDR form"),
    ("10.35.0.0/٢٤", "not an IPv4 subnet in CIDR form"),          # non-ASCII digits
    ("10.35/16", "not an IPv4 subnet in CIDR form"),
    ("010.035.000.000/24", "not an IPv4 subnet in CIDR form"),
    ("10.35.0.256/24", "not an IPv4 subnet in CIDR form"),
    (" 10.35.0.0/24", "not an IPv4 subnet in CIDR form"),
    ("", "not an IPv4 subnet in CIDR form"),
    ("école", "not an IPv4 subnet in CIDR form"),
    ("10.35.0.5/24", "has host bits set; did you mean '10.35.0.0/24'?"),
    ("fd00:35::/64", "is IPv6"),
    (None, "is of type NoneType, expected an IPv4 subnet"),
    (24, "is of type int, expected an IPv4 subnet"),
    (["10.35.0.0/24"], "is of type list, expected an IPv4 subnet"),
]
SUBNET_FILTERS = {
    "nth_host": (1,), "dhcp_range": (), "static_range": (), "netmask": (), "prefixlen": (),
    "network_address": (), "broadcast": (), "reverse_zone": (),
}


def _raises(name: str, args: tuple[Any, ...], *fragments: str) -> str:
    with pytest.raises(AnsibleFilterError) as caught:
        f(name, *args)
    message = str(caught.value)
    assert message.startswith(f"cartable_{name}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("name", SUBNET_FILTERS)
@pytest.mark.parametrize(("bad", "problem"), BAD_SUBNETS)
def test_bad_subnet(name: str, bad: Any, problem: str) -> None:
    _raises(name, (bad, *SUBNET_FILTERS[name]), repr(bad), problem)


@pytest.mark.parametrize(("bad", "problem"), BAD_SUBNETS)
def test_in_subnet_bad_subnet(bad: Any, problem: str) -> None:
    _raises("in_subnet", ("10.35.0.1", bad), repr(bad), problem)


@pytest.mark.parametrize(("name", "args", "bad", "problem"), [
    ("reverse_pointer", ("10.35.0.1/24",), "'10.35.0.1/24'", "has a prefix length"),
    ("reverse_pointer", ("10.35.0",), "'10.35.0'", "is not an IPv4 address"),
    ("reverse_pointer", ("10.35.0.01",), "'10.35.0.01'", "is not an IPv4 address"),
    ("reverse_pointer", ("2001:db8::1",), "'2001:db8::1'", "is not an IPv4 address"),
    ("reverse_pointer", (None,), "None", "is of type NoneType, expected an IPv4 address"),
    ("in_subnet", ("10.35.0.300", "10.35.0.0/24"), "'10.35.0.300'", "is not an IPv4 address"),
    ("in_subnet", (167977985, "10.35.0.0/24"), "167977985", "is of type int, expected an IPv4"),
    ("nth_host", ("10.35.0.0/24", 0), "0", "out of range for '10.35.0.0/24' "
                                           "(usable host indexes: 1..254 or -254..-1)"),
    ("nth_host", ("10.35.0.0/24", 255), "255", "out of range"),
    ("nth_host", ("10.35.0.0/24", -255), "-255", "out of range"),
    ("nth_host", ("10.35.0.0/31", 1), "1", "out of range for '10.35.0.0/31' (a /31 has no"),
    ("nth_host", ("10.35.0.0/32", -1), "-1", "(a /32 has no usable host)"),
    ("nth_host", ("10.35.0.0/24", "1"), "'1'", "is not an integer host index (use '| int'"),
    ("nth_host", ("10.35.0.0/24", 1.0), "1.0", "is not an integer host index"),
    ("nth_host", ("10.35.0.0/24", True), "True", "is not an integer host index"),
    ("dhcp_range", ("10.35.0.0/30",), "'10.35.0.0/30'", "too small for a DHCP range"),
    ("dhcp_range", ("10.35.0.0/32",), "'10.35.0.0/32'", "longest prefix allowed is /29"),
    ("static_range", ("10.35.0.0/30",), "'10.35.0.0/30'", "too small for a static range"),
    ("static_range", ("10.35.0.0/31", 2), "'10.35.0.0/31'", "too small for a static range"),
    ("static_range", ("10.35.0.0/24", 1), "1", "too small for first_offset (0 is the network"),
    ("static_range", ("10.35.0.0/24", 0), "0", "too small for first_offset"),
    ("static_range", ("10.35.0.0/24", -5), "-5", "too small for first_offset"),
    ("static_range", ("10.35.0.0/24", "10"), "'10'", "is not an integer first_offset"),
    ("reverse_zone", ("10.0.0.0/7",), "'10.0.0.0/7'", "too large for a reverse zone"),
    ("reverse_zone", ("0.0.0.0/0",), "'0.0.0.0/0'", "shortest prefix allowed is /8"),
    ("mac", ("02:00:5e:00:53",), "'02:00:5e:00:53'", "is not a MAC address"),
    ("mac", ("02:00:5e:00:53:01:02",), "'02:00:5e:00:53:01:02'", "is not a MAC address"),
    ("mac", ("02:00:5e:00:53:01:aa:bb",), "'02:00:5e:00:53:01:aa:bb'", "is not a MAC address"),
    ("mac", ("02:00:5e-00:53:01",), "'02:00:5e-00:53:01'", "is not a MAC address"),
    ("mac", ("02:00:5e:00:53:0g",), "'02:00:5e:00:53:0g'", "is not a MAC address"),
    ("mac", ("2005e005301",), "'2005e005301'", "is not a MAC address"),        # 11 digits
    ("mac", ("0x02005e005301",), "'0x02005e005301'", "is not a MAC address"),
    ("mac", (" 02:00:5e:00:53:01",), "' 02:00:5e:00:53:01'", "is not a MAC address"),
    ("mac", ("",), "''", "is not a MAC address"),
    ("mac", (None,), "None", "is not a MAC address"),
    ("mac", ("00:00:00:00:00:00",), "'00:00:00:00:00:00'", "not the MAC address of a network"),
    ("mac", ("ff:ff:ff:ff:ff:ff",), "'ff:ff:ff:ff:ff:ff'", "broadcast or multicast"),
    ("mac", ("01:00:5e:00:00:fb",), "'01:00:5e:00:00:fb'", "broadcast or multicast"),
    ("mac", (2 * 60**5 + 30,), str(2 * 60**5 + 30), "quote the MAC in YAML"),
    ("dns_label", ("",), "''", "no letter or digit"),
    ("dns_label", (" -- ' ",), "\" -- ' \"", "no letter or digit"),
    ("dns_label", ("日本",), "'日本'", "no letter or digit"),
    ("dns_label", (None,), "None", "is of type NoneType, expected a string"),
    ("dns_label", (True,), "True", "is of type bool, expected a string"),
])
def test_bad_value(name: str, args: tuple[Any, ...], bad: str, problem: str) -> None:
    _raises(name, args, f"{bad} ", problem)


def test_unquoted_yaml_mac_hint() -> None:
    """YAML 1.1 reads an unquoted all-digit MAC as a base-60 integer: the error says so."""
    yaml = pytest.importorskip("yaml")
    value = yaml.safe_load("mac: 10:20:30:40:50:59")["mac"]
    assert isinstance(value, int)
    _raises("mac", (value,), "quote the MAC in YAML")


# --- properties ---------------------------------------------------------------------------

def subnets(min_prefix: int = 0, max_prefix: int = 32) -> st.SearchStrategy[str]:
    """Any IPv4 subnet in CIDR form with host bits zero."""
    def build(prefix: int, address: int) -> str:
        network = address >> (32 - prefix) << (32 - prefix) if prefix else 0
        return f"{ipaddress.IPv4Address(network)}/{prefix}"
    return st.builds(build, st.integers(min_prefix, max_prefix), st.integers(0, 2**32 - 1))


def n(address: str) -> int:
    return int(ipaddress.IPv4Address(address))


@given(subnets(max_prefix=29), st.one_of(st.none(), st.integers(2, 5000)))
def test_plan_ranges_never_overlap(subnet: str, offset: int | None) -> None:
    net = ipaddress.IPv4Network(subnet)
    static = f("static_range", subnet) if offset is None else f("static_range", subnet, offset)
    dhcp = f("dhcp_range", subnet)
    gateway = n(f("nth_host", subnet, 1))
    first, last = int(net.network_address), int(net.broadcast_address)
    s_start, s_end = map(n, static)
    d_start, d_end = map(n, dhcp)
    assert first < gateway < s_start <= s_end < d_start <= d_end < last
    assert d_start == first + net.num_addresses // 2 and d_end == last - 1
    assert s_end == d_start - 1                          # the halves touch, no gap, no overlap
    assert dhcp[1] == f("nth_host", subnet, -1)
    assert all(f("in_subnet", a, subnet) for a in static + dhcp)


@given(subnets(max_prefix=30), st.data())
def test_nth_host_counts_both_ways(subnet: str, data: st.DataObject) -> None:
    usable = ipaddress.IPv4Network(subnet).num_addresses - 2
    k = data.draw(st.integers(1, usable))
    host = f("nth_host", subnet, k)
    assert host == f("nth_host", subnet, k - usable - 1)
    assert n(host) == n(f("network_address", subnet)) + k
    assert f("in_subnet", host, subnet)
    assert host not in (f("network_address", subnet), f("broadcast", subnet))


@given(subnets())
def test_subnet_facts_agree_with_python_ipaddress(subnet: str) -> None:
    net = ipaddress.IPv4Network(subnet)
    assert f("netmask", subnet) == str(net.netmask)
    assert f("prefixlen", subnet) == net.prefixlen
    assert f("network_address", subnet) == str(net.network_address)
    assert f("broadcast", subnet) == str(net.broadcast_address)


@given(subnets(min_prefix=8), st.data())
def test_pointers_live_in_the_reverse_zone(subnet: str, data: st.DataObject) -> None:
    net = ipaddress.IPv4Network(subnet)
    address = str(net.network_address + data.draw(st.integers(0, net.num_addresses - 1)))
    zone = f("reverse_zone", subnet)
    pointer = f("reverse_pointer", address)
    assert pointer == ipaddress.IPv4Address(address).reverse_pointer
    assert pointer == zone or pointer.endswith("." + zone)   # equal for a /32
    assert zone.count(".") == net.prefixlen // 8 + 1     # one label per whole octet


@given(st.integers(1, 2**48 - 1).filter(lambda v: not v >> 40 & 1), st.data())
def test_mac_forms_normalise_to_one(value: int, data: st.DataObject) -> None:
    digits = f"{value:012x}"
    pairs = [digits[i:i + 2] for i in range(0, 12, 2)]
    form = data.draw(st.sampled_from([
        ":".join(pairs), "-".join(pairs).upper(), digits,
        ".".join(digits[i:i + 4] for i in range(0, 12, 4)),
        ":".join(p.lstrip("0") or "0" for p in pairs),
    ]))
    assert f("mac", form) == ":".join(pairs)
    assert f("mac", f("mac", form)) == ":".join(pairs)


LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@given(st.text())
def test_dns_label_is_always_valid_or_refused(text: str) -> None:
    try:
        label = f("dns_label", text)
    except AnsibleFilterError as error:
        assert str(error).startswith("cartable_dns_label: ")
        return
    assert LABEL.fullmatch(label) and "--" not in label
    assert f("dns_label", label) == label


def test_same_rule_as_the_inventory_generator() -> None:
    """The Python address allocator and the filters must compute the same plan."""
    allocate = pytest.importorskip("cartable.allocate")
    netaddr = pytest.importorskip("netaddr")
    if not all(hasattr(allocate, a) for a in ("gateway", "dhcp_range", "static_addresses")):
        pytest.skip("cartable.allocate has no gateway/dhcp_range/static_addresses")
    for subnet in ("10.35.0.0/24", "10.35.0.0/23", "10.35.4.0/26", "10.35.0.16/28",
                   "10.35.0.8/29", "10.0.0.0/16"):
        net = netaddr.IPNetwork(subnet)
        for offset in (2, 10, 20, 100):
            static = allocate.static_addresses(net, offset)
            assert f("static_range", subnet, offset) == [str(static[0]), str(static[-1])]
        assert f("dhcp_range", subnet) == [str(a) for a in allocate.dhcp_range(net)]
        assert f("nth_host", subnet, 1) == str(allocate.gateway(net))


# --- documentation: one sidecar per filter, readable by ansible-doc -----------------------

def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="0")
    return env


def _every_filter() -> dict[str, Callable[..., Any]]:
    """The filters of every plugin file of filter_plugins/ (not only cartable_net)."""
    found: dict[str, Callable[..., Any]] = {}
    for path in sorted(PLUGIN.parent.glob("*.py")):
        found.update(filters_of(path.stem))
    return found


def test_every_filter_is_documented() -> None:
    every = _every_filter()
    sidecars = {p.stem for p in PLUGIN.parent.glob("cartable_*.yml")}
    assert sidecars == set(every), "each filter of filter_plugins/*.py has its sidecar NAME.yml"
    result = subprocess.run([BIN / "ansible-doc", "-t", "filter", "--json", *sorted(every)],
                            cwd=REPO, env=_env(), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    docs = json.loads(result.stdout)
    for name, func in every.items():
        doc = docs[name]["doc"]
        assert doc["name"] == name
        params = list(func.__code__.co_varnames[:func.__code__.co_argcount])
        assert set(doc["options"]) == {"_input", *params[1:]}, name
        assert docs[name]["examples"] and docs[name]["return"]["_value"]


# --- through Ansible: tests/playbooks/filters.yml -----------------------------------------

def _playbook(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "ansible-playbook", "-i", "localhost,", "tests/playbooks/filters.yml", *extra],
        cwd=REPO, env=_env(), capture_output=True, text=True, check=False, timeout=300)


def test_playbook_asserts_pass() -> None:
    result = _playbook()
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"localhost\s+: ok=\d+ .*failed=0", result.stdout), result.stdout


def test_playbook_fails_with_the_filter_message() -> None:
    result = _playbook("-e", "filters_subnet=10.35.0.0/33")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "failed=1" in result.stdout
    assert ("cartable_nth_host: '10.35.0.0/33' is not an IPv4 subnet in CIDR form"
            in result.stdout + result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
