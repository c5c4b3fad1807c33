"""Building the inventory: content, stability of the address plan, determinism, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import netaddr
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from cartable import allocate as al
from cartable.cli import main
from cartable.directory import read_directory
from cartable.errors import InputError
from cartable.inventory import build
from cartable.site import read_site

from conftest import DIRECTORY, ELEMENTAIRE, MATERNELLE, PRIMAIRE, REPO

SCHOOLS = read_directory(DIRECTORY)


def _build(path: Path) -> dict:
    assert main(["inventory", "build", str(path)]) == 0
    return yaml.safe_load((path.parent / "hosts.yml").read_text())


def test_plan_per_school_kind(make_site) -> None:
    inv = _build(make_site())["all"]["children"]
    mat = inv[f"school_{MATERNELLE.lower()}"]["hosts"]
    ele = inv[f"school_{ELEMENTAIRE.lower()}"]["hosts"]
    assert sorted(h.split("-")[1] for h in mat) == ["dir01", "mfp01", "srv"]
    roles = [h.split("-")[1].rstrip("0123456789") for h in ele]
    assert {r: roles.count(r) for r in set(roles)} == {
        "srv": 1, "dir": 1, "mfp": 1, "bcd": 1, "clr": 1, "sdi": 12, "bwl": 1, "scn": 1}
    assert inv[f"school_{PRIMAIRE.lower()}"]["vars"]["cartable_school_kind"] == "primaire"
    assert len(inv[f"school_{PRIMAIRE.lower()}"]["hosts"]) == 19  # primaire = élémentaire plan


def test_school_vars_and_addresses(make_site) -> None:
    inv = _build(make_site())["all"]["children"]
    school = inv[f"school_{PRIMAIRE.lower()}"]
    nets = school["vars"]["cartable_school_networks"]
    ped = netaddr.IPNetwork(nets["pedagogical"]["subnet"])
    adm = netaddr.IPNetwork(nets["administrative"]["subnet"])
    assert ped.prefixlen == 24 and adm.prefixlen == 27 and ped in netaddr.IPNetwork("10.35.0.0/16")
    server = school["hosts"][f"{PRIMAIRE.lower()}-srv"]
    assert server["ansible_host"] == nets["pedagogical"]["gateway"] == str(ped[1])
    assert nets["pedagogical"]["dhcp_start"] == str(ped[128])
    for name, host in school["hosts"].items():
        net = adm if host.get("cartable_network") == "administrative" else ped
        assert netaddr.IPAddress(host["ansible_host"]) in net, name
    assert school["hosts"][f"{PRIMAIRE.lower()}-dir01"]["cartable_network"] == "administrative"
    assert inv["commune_35238"]["vars"]["cartable_commune_name"] == "Rennes"
    assert set(inv["kind_maternelle"]["children"]) == {f"school_{MATERNELLE.lower()}"}
    assert "circo_rennes_centre_sud" in inv and "wave_unscheduled" in inv


def test_metz_options_classes_and_laptop_cart(make_site) -> None:
    path = make_site(options={"class_equipment": True, "laptop_cart": 8, "pupils_per_class": 25})
    inv = _build(path)["all"]["children"]
    hosts = inv[f"school_{ELEMENTAIRE.lower()}"]["hosts"]  # 112 pupils → 5 classes
    assert sum(1 for h in hosts if "-cls" in h) == 5 and sum(1 for h in hosts if "-prj" in h) == 5
    assert sum(1 for h in hosts if "-lap" in h) == 8
    assert hosts[f"{ELEMENTAIRE.lower()}-cls05"]["cartable_room"] == "class05"
    assert f"{ELEMENTAIRE.lower()}-prj01" in inv["projectors"]["hosts"]


def test_deterministic_byte_identical(make_site, tmp_path: Path) -> None:
    path = make_site()
    site = read_site(path)
    first = build(site, path.parent)
    second = build(site, path.parent)
    assert first.files == second.files
    _build(path)
    assert main(["inventory", "check", str(path)]) == 0  # nothing stale after a write
    assert build(read_site(path), path.parent).files["hosts.yml"] == \
        (path.parent / "hosts.yml").read_text()


def _addresses(folder: Path) -> tuple[dict, dict]:
    data = yaml.safe_load((folder / "allocations.yml").read_text())["schools"]
    subnets = {u: (e["pedagogical"], e["administrative"]) for u, e in data.items()}
    hosts = {h: a for e in data.values() for h, a in e["hosts"].items()}
    return subnets, hosts


def test_adding_a_school_keeps_others_and_removed_school_stays_reserved(make_site) -> None:
    path = make_site(selection={"uai": [MATERNELLE, PRIMAIRE]})
    _build(path)
    before_subnets, before_hosts = _addresses(path.parent)
    make_site(selection={"uai": [MATERNELLE, ELEMENTAIRE, PRIMAIRE]})
    _build(path)
    subnets, hosts = _addresses(path.parent)
    assert {u: subnets[u] for u in before_subnets} == before_subnets
    assert {h: hosts[h] for h in before_hosts} == before_hosts
    make_site(selection={"uai": [ELEMENTAIRE]})
    inv = _build(path)["all"]["children"]
    assert f"school_{MATERNELLE.lower()}" not in inv
    data = yaml.safe_load((path.parent / "allocations.yml").read_text())["schools"]
    assert data[MATERNELLE]["reserved"] is True and data[PRIMAIRE]["reserved"] is True
    assert main(["inventory", "release", str(path), ELEMENTAIRE]) == 2  # still selected
    assert main(["inventory", "release", str(path), MATERNELLE]) == 0
    assert MATERNELLE not in yaml.safe_load((path.parent / "allocations.yml").read_text())["schools"]


POOL = sorted(s.uai for s in SCHOOLS if s.commune_code == "35238")  # Rennes: 78 schools


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.sets(st.sampled_from(POOL), min_size=1, max_size=12),
                      min_size=2, max_size=4))
def test_property_selection_changes_never_move_anyone(make_site, steps: list[set[str]]) -> None:
    """Whatever schools come and go, a school's subnets and a host's address never change."""
    path = make_site()
    for old in ("hosts.yml", "allocations.yml"):
        (path.parent / old).unlink(missing_ok=True)
    seen_subnets: dict = {}
    seen_hosts: dict = {}
    for selection in steps:
        make_site(selection={"uai": sorted(selection)})
        site = read_site(path)
        built = build(site, path.parent)
        for name, text in built.files.items():
            (path.parent / name).write_text(text)
        subnets, hosts = _addresses(path.parent)
        for uai, nets in seen_subnets.items():
            assert subnets[uai] == nets  # kept (active or reserved)
        for host, address in hosts.items():
            assert seen_hosts.setdefault(host, address) == address
        seen_subnets.update(subnets)
        all_nets = [netaddr.IPNetwork(n) for pair in subnets.values() for n in pair]
        assert len(netaddr.IPSet(all_nets).iter_cidrs()) >= 1
        assert sum(n.size for n in all_nets) == netaddr.IPSet(all_nets).size  # no overlap


def _fails(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_errors_exit_2_and_write_nothing(make_site, capsys) -> None:
    path = make_site(selection={"uai": ["0350607V", "0350999A"]})
    err = _fails(["inventory", "build", str(path)], capsys)
    assert "0350999A" in err and "nothing written" in err
    assert not (path.parent / "hosts.yml").exists() and not (path.parent / "allocations.yml").exists()


@pytest.mark.parametrize("changes,expected", [
    ({"selection": {"uai": ["0350001A"]}}, "matches no open public school"),  # valid UAI, not a school
    ({"selection": {"communes": ["99999"]}}, "commune code '99999' matches no"),
    ({"selection": {"uai": []}}, "the selection is empty"),
    ({"selection": {"uai": [PRIMAIRE], "kinds": ["maternelle"]}}, "the selection is empty"),
    ({"address_plan": {"supernet": "10.35.0.0/23"}}, "is too small"),
    ({"overrides": {"0350122T": {"link": "adsl"}}}, "which the selection does not take"),
    ({"overrides": {PRIMAIRE: {"hostnames": {"0350607v-sdi01": "0350607v-bcd01"}}}},
     "used twice"),
    ({"overrides": {PRIMAIRE: {"hostnames": {"0350607v-sdi99": "poste"}}}}, "does not have"),
])
def test_bad_inputs(make_site, capsys, changes: dict, expected: str) -> None:
    path = make_site(**changes)
    assert expected in _fails(["inventory", "build", str(path)], capsys)
    assert not (path.parent / "hosts.yml").exists()


def test_school_outgrowing_its_subnet(make_site, capsys) -> None:
    path = make_site()
    _build(path)
    make_site(overrides={PRIMAIRE: {"equipment": {"sdi": 120}}})  # a /24 holds 118 statics
    err = _fails(["inventory", "build", str(path)], capsys)
    assert f"10.35.0.0/24 of {PRIMAIRE} is full" in err
    assert f"cartable inventory grow {path} {PRIMAIRE} --network pedagogical" in err


def test_new_school_gets_a_subnet_that_fits(make_site) -> None:
    path = make_site(overrides={PRIMAIRE: {"equipment": {"sdi": 120}}})
    nets = _build(path)["all"]["children"][f"school_{PRIMAIRE.lower()}"]["vars"]
    assert nets["cartable_school_networks"]["pedagogical"]["subnet"].endswith("/23")


def _hardware(make_site, rows: str) -> Path:
    path = make_site(hardware="hw.csv")
    (path.parent / "hw.csv").write_text("uai,role,index,hostname,mac\n" + rows)
    return path


def test_hardware_macs_in_host_vars(make_site) -> None:
    path = _hardware(make_site, f"{PRIMAIRE},sdi,3,,52-54-00-AA-BB-03\n,,,0350607v-srv,5254.00aa.bb01\n"
                     "0350122T,sdi,1,,52:54:00:aa:bb:04\n")  # a school the site does not take
    hosts = _build(path)["all"]["children"][f"school_{PRIMAIRE.lower()}"]["hosts"]
    assert hosts["0350607v-sdi03"]["cartable_mac"] == "52:54:00:aa:bb:03"
    assert hosts["0350607v-srv"]["cartable_mac"] == "52:54:00:aa:bb:01"
    assert "cartable_mac" not in hosts["0350607v-sdi04"]


def test_hardware_rows_without_mac_give_no_mac(make_site) -> None:
    """An asset known by model and purchase date only (a projector, a MAC not noted yet)."""
    path = _hardware(make_site, f"{PRIMAIRE},sdi,3,,\n{PRIMAIRE},sdi,4,, \n")
    hosts = _build(path)["all"]["children"][f"school_{PRIMAIRE.lower()}"]["hosts"]
    assert "cartable_mac" not in hosts["0350607v-sdi03"]
    assert "cartable_mac" not in hosts["0350607v-sdi04"]


def test_hardware_purchase_dates(tmp_path) -> None:
    from cartable.hardware import parse_hardware
    devices = parse_hardware("hostname,mac,purchase_date\na-sdi01,,12/06/2024\n"
                             "a-sdi02,,2023-01-31\na-sdi03,,\n", "hw.csv")
    assert [d.purchase_date for d in devices.values()] == ["2024-06-12", "2023-01-31", ""]


@pytest.mark.parametrize("rows,expected", [
    (f"{PRIMAIRE},sdi,1,,\n{PRIMAIRE},sdi,1,,\n",
     "hw.csv:3: [hostname] host 0350607v-sdi01 is already given on line 2"),
    (f"{PRIMAIRE},sdi,1,,52:54:00:zz:00:01\n", "hw.csv:2: [mac] '52:54:00:zz:00:01' is not a MAC"),
    (f"{PRIMAIRE},sdi,1,,52:54:00:00:00:01\n{PRIMAIRE},sdi,2,,52:54:00:00:00:01\n",
     "hw.csv:3: [mac] MAC 52:54:00:00:00:01 is already given on line 2"),
    (f"{PRIMAIRE},sdi,40,,52:54:00:00:00:01\n", "'0350607v-sdi40' is not in the plan"),
    (f"{PRIMAIRE},sdx,1,,52:54:00:00:00:01\n", "unknown role 'sdx'"),
])
def test_hardware_errors(make_site, capsys, rows: str, expected: str) -> None:
    assert expected in _fails(["inventory", "build", str(_hardware(make_site, rows))], capsys)


def test_diff_shows_changes_and_writes_nothing(make_site, capsys) -> None:
    path = make_site()
    assert main(["inventory", "diff", str(path)]) == 1
    out = capsys.readouterr().out
    assert "+++ b/" in out and "+    cartable_site: test" in out
    assert not (path.parent / "hosts.yml").exists()
    _build(path)
    capsys.readouterr()
    assert main(["inventory", "diff", str(path)]) == 0 and capsys.readouterr().out == ""


def test_demo_inventory_is_up_to_date() -> None:
    """The committed demo inventory is exactly what the generator produces."""
    assert main(["inventory", "check", str(REPO / "inventories/demo/site.yml")]) == 0


def test_cli_help_is_for_humans() -> None:
    out = subprocess.run([sys.executable, "-m", "cartable.cli", "inventory", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "build" in out and "release" in out and "cartable inventory diff" in out


def test_allocation_rules_match_the_filter_rule() -> None:
    net = netaddr.IPNetwork("10.35.4.0/27")
    assert al.dhcp_range(net) == (net[16], net[30])
    assert al.static_addresses(net, 10)[0] == net[10] and al.static_addresses(net, 10)[-1] == net[15]
    assert al.fitting_prefix(27, 7, 10) == 26  # 7 hosts do not fit the 6 statics of a /27
    with pytest.raises(InputError):
        al.from_data({"schools": {"X": {"pedagogical": "nope"}}}, "allocations.yml")


def test_hand_edited_plan_with_a_duplicate_address_or_block(make_site, capsys) -> None:
    path = make_site()
    _build(path)
    plan = path.parent / "allocations.yml"
    text = plan.read_text()
    plan.write_text(text.replace("0350607v-sdi02: 10.35.0.13", "0350607v-sdi02: 10.35.0.12"))
    assert "address 10.35.0.12 is given to both 0350607v-sdi01 and 0350607v-sdi02" in \
        _fails(["inventory", "build", str(path)], capsys)
    plan.write_text(text.replace("pedagogical: 10.35.2.0/24", "pedagogical: 10.35.0.0/23"))
    assert "overlaps" in _fails(["inventory", "build", str(path)], capsys)
