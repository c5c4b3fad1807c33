"""filter_plugins/cartable_inventory_checks.py (validate_inventory's checks), called directly.

Each family of checks gets the bad values of tests/unit/test_validate_inventory.py (which runs
the role through ansible-playbook) on a small summary of the shape the role builds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from plugin_loader import load_plugin

REPO = Path(__file__).resolve().parents[2]
checks: Any = load_plugin("cartable_inventory_checks")
FILTERS = checks.FilterModule().filters()
problems_of = FILTERS["cartable_inventory_problems"]
lines_of = FILTERS["cartable_problem_lines"]
report = FILTERS["cartable_problem_report"]

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE jdupont"
JDUPONT = {"name": "jdupont", "ssh_keys": [KEY]}
NETWORKS = {
    "pedagogical": {"subnet": "10.35.0.0/24", "gateway": "10.35.0.1", "netmask": "255.255.255.0",
                    "dhcp_start": "10.35.0.128", "dhcp_end": "10.35.0.254"},
    "administrative": {"subnet": "10.35.1.0/24", "gateway": "10.35.1.1", "netmask": "255.255.255.0",
                       "dhcp_start": "10.35.1.128", "dhcp_end": "10.35.1.254"},
}


PROXY = {"host": "proxy.ac-rennes.example", "port": 3128}
POLICY = {"name": "elementaire", "mode": "blocklist", "block": ["doh", "gambling", "vpn"],
          "allow_categories": [], "allow": ["ac-rennes.fr"], "deny": []}


def host(name: str, **changes: Any) -> dict[str, Any]:
    """A healthy workstation of school 0350607V (the role's summary of one host)."""
    entry: dict[str, Any] = {
        "name": name, "groups": ["school_0350607v", "workstations"], "printer": False, "server": False,
        "ansible_host": "10.35.0.11", "mac": "52:54:00:35:07:11", "network": "pedagogical",
        "addresses": None, "printer_uri": None, "uai": "0350607V", "managed": True, "admins": [JDUPONT],
        "access": {"user": "jdupont", "ssh": True, "root_login": "no", "kept": []},
        "ntp": [], "shares": None, "share_groups": None, "proxy": None, "filter_policy": None}
    entry.update(changes)
    return entry


def server(name: str = "0350607v-srv", **changes: Any) -> dict[str, Any]:
    return host(name, **{"groups": ["school_0350607v", "school_servers"], "server": True,
                         "ansible_host": "10.35.1.1", "mac": "52:54:00:35:07:01", "network": None,
                         "addresses": {"pedagogical": "10.35.0.1", "administrative": "10.35.1.1"},
                         "ntp": ["ntp.example.test"], "proxy": PROXY, "filter_policy": POLICY,
                         **changes})


def printer(name: str = "0350607v-bwl01", **changes: Any) -> dict[str, Any]:
    return host(name, **{"groups": ["school_0350607v", "printers"], "printer": True,
                         "ansible_host": "10.35.0.20", "mac": "52:54:00:35:07:20", "managed": False,
                         "admins": [], "access": None, **changes})


def school(hosts: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    return {"name": "school_0350607v", "hosts": [entry["name"] for entry in hosts],
            "server": "0350607v-srv", "networks": NETWORKS, **changes}


def groups_of(hosts: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"all": [entry["name"] for entry in hosts]}
    for entry in hosts:
        for group in entry["groups"]:
            found.setdefault(group, []).append(entry["name"])
    return found


def lab(**changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The lab school: a server, two workstations, a printer; `changes` by host name."""
    hosts = [server(), host("0350607v-sdi01"),
             host("0350607v-sdi02", ansible_host="10.35.0.12", mac="52:54:00:35:07:12"), printer()]
    return [{**entry, **changes.get(entry["name"], {})} for entry in hosts]


def found(hosts: list[dict[str, Any]], schools: list[dict[str, Any]] | None = None,
          **settings: Any) -> list[str]:
    """The role's lines for a summary."""
    schools = [school(hosts)] if schools is None else schools
    return lines_of(problems_of(hosts, schools, groups_of(hosts), settings))


def test_a_healthy_school_has_no_problem() -> None:
    assert found(lab()) == []


# --- addresses and printers --------------------------------------------------------------

def test_printer_without_uri() -> None:
    assert found(lab(**{"0350607v-bwl01": {"ansible_host": None}})) == [
        "0350607v-bwl01: printer without a URI: neither cartable_printer_uri "
        "(e.g. ipp://10.35.0.24/ipp/print) nor ansible_host is set"]


def test_printer_with_a_uri_and_no_address_passes() -> None:
    assert found(lab(**{"0350607v-bwl01": {"ansible_host": None,
                                           "printer_uri": "ipp://bwl01.example/ipp/print"}})) == []


@pytest.mark.parametrize("uri", ["10.35.0.12", "ftp://10.35.0.12", "ipp:///x", "IPP://10.35.0.12"])
def test_printer_with_a_bad_uri(uri: str) -> None:
    assert found(lab(**{"0350607v-bwl01": {"printer_uri": uri}})) == [
        f"0350607v-bwl01: cartable_printer_uri '{uri}' is not a printer URI "
        "(ipp://, ipps://, http://, https://, socket://, lpd://, dnssd://, usb://...)"]


def test_printer_uri_schemes_are_a_setting() -> None:
    hosts = lab(**{"0350607v-bwl01": {"printer_uri": "ipp://10.35.0.20/ipp/print"}})
    assert found(hosts, printer_uri_schemes=["socket"]) == [
        "0350607v-bwl01: cartable_printer_uri 'ipp://10.35.0.20/ipp/print' is not a printer URI (socket://...)"]


@pytest.mark.parametrize("address", [None, "", "  ", 12])
def test_host_without_address(address: Any) -> None:
    lines = found(lab(**{"0350607v-sdi02": {"ansible_host": address}}))
    assert "0350607v-sdi02: ansible_host is not set: every host needs its address" in lines


# --- MACs and addresses ------------------------------------------------------------------

def test_mac_in_two_schools() -> None:
    other = host("0350626r-sdi01", groups=["school_0350626r", "workstations"], uai="0350626R",
                 ansible_host="10.35.2.11", mac="52-54-00-35-07-11")
    assert "cartable_mac 52:54:00:35:07:11: the same MAC on 2 hosts: 0350607v-sdi01 (school 0350607V), " \
           "0350626r-sdi01 (school 0350626R)" in found(lab() + [other], [school(lab())])


@pytest.mark.parametrize("mac", ["52:54:00:35:07", "52:54:00:35:07:1g", 5254003507])
def test_malformed_mac(mac: Any) -> None:
    assert found(lab(**{"0350607v-sdi01": {"mac": mac}})) == [
        f"0350607v-sdi01: cartable_mac '{mac}' is not a MAC address (e.g. 52:54:00:35:07:11)"]


def test_two_hosts_with_the_same_address() -> None:
    lines = found(lab(**{"0350607v-sdi02": {"ansible_host": "10.35.1.1"}}))
    assert "address 10.35.1.1: the same address on 2 hosts: 0350607v-srv (ansible_host), " \
           "0350607v-srv (cartable_addresses.administrative), 0350607v-sdi02 (ansible_host)" in lines


def test_one_host_may_repeat_its_own_address() -> None:
    # the server's ansible_host is its administrative address
    assert not [line for line in found(lab()) if line.startswith("address")]


# --- schools and networks ----------------------------------------------------------------

def test_school_without_server() -> None:
    assert found(lab(), [school(lab(), server="")]) == [
        "school_0350607v: cartable_school_server is not set: the school has no server"]


def test_school_server_outside_the_school() -> None:
    assert found(lab(), [school(lab(), server="0350626r-srv")]) == [
        "school_0350607v: cartable_school_server is 0350626r-srv, which is not a host of school_0350607v: "
        "the school has no server"]


def test_school_server_outside_school_servers() -> None:
    hosts = lab(**{"0350607v-srv": {"server": False, "network": "administrative"}})
    assert "school_0350607v: cartable_school_server 0350607v-srv is not in the group school_servers" \
        in found(hosts)


def test_school_network_missing_keys() -> None:
    networks = {**NETWORKS, "pedagogical": {"subnet": "10.35.0.0/24", "netmask": "255.255.255.0",
                                            "dhcp_start": "10.35.0.128"}}
    assert found(lab(), [school(lab(), networks=networks)]) == [
        "school_0350607v: cartable_school_networks.pedagogical lacks gateway, dhcp_end"]


@pytest.mark.parametrize("networks", [None, {}, "pedagogical", ["pedagogical"]])
def test_school_without_networks(networks: Any) -> None:
    lines = found(lab(), [school(lab(), networks=networks)])
    assert "school_0350607v: cartable_school_networks is not set (a mapping of networks, each with subnet, " \
           "gateway, netmask, dhcp_start, dhcp_end)" in lines
    assert "0350607v-sdi01, 0350607v-sdi02, 0350607v-bwl01: cartable_network 'pedagogical' is not a network " \
           "of school_0350607v ()" in lines


@pytest.mark.parametrize("subnet", ["10.35.0.5/24", "10.35.0.0", "10.35.0.0/32", "10.35/16",
                                    "10.35.0.0/255.255.255.0", "fd00::/64", 24])
def test_subnet_that_is_not_a_network(subnet: Any) -> None:
    networks = {"pedagogical": {**NETWORKS["pedagogical"], "subnet": subnet}}
    hosts = lab(**{"0350607v-srv": {"addresses": {"pedagogical": "10.35.0.1"}, "ansible_host": "10.35.0.1"}})
    assert found(hosts, [school(hosts, networks=networks)]) == [
        f"school_0350607v: cartable_school_networks.pedagogical.subnet '{subnet}' is not an IPv4 network "
        "(e.g. 10.35.0.0/24)"]


@pytest.mark.parametrize("gateway", ["10.35.1.1", "gateway", "10.35.0.1/24", None])
def test_gateway_outside_its_subnet(gateway: Any) -> None:
    networks = {**NETWORKS, "pedagogical": {**NETWORKS["pedagogical"], "gateway": gateway}}
    assert found(lab(), [school(lab(), networks=networks)]) == [
        f"school_0350607v: cartable_school_networks.pedagogical.gateway '{gateway}' is not in its subnet "
        "10.35.0.0/24"]


def test_host_outside_its_network() -> None:
    hosts = lab(**{"0350607v-sdi01": {"ansible_host": "10.35.1.20"}, "0350607v-sdi02": {"network": "wifi"}})
    assert found(hosts) == [
        "0350607v-sdi01: ansible_host '10.35.1.20' is outside its network pedagogical (10.35.0.0/24)",
        "0350607v-sdi02: cartable_network 'wifi' is not a network of school_0350607v "
        "(pedagogical, administrative)"]


def test_host_without_network() -> None:
    assert found(lab(**{"0350607v-sdi01": {"network": None}})) == [
        "0350607v-sdi01: cartable_network is not set (the network of school_0350607v the host is on: "
        "pedagogical, administrative)"]


@pytest.mark.parametrize("addresses, line", [
    ({"pedagogical": "10.35.0.1"}, "0350607v-srv: cartable_addresses has no address on administrative: "
                                   "the school server is on every network of its school"),
    (None, "0350607v-srv: cartable_addresses has no address on pedagogical: the school server is on every "
           "network of its school"),
    ({"pedagogical": "10.35.0.1", "administrative": "10.35.2.1"},
     "0350607v-srv: cartable_addresses.administrative '10.35.2.1' is outside its network administrative "
     "(10.35.1.0/24)"),
    ({"pedagogical": "10.35.0.1", "administrative": "010.35.1.1"},
     "0350607v-srv: cartable_addresses.administrative '010.35.1.1' is outside its network administrative "
     "(10.35.1.0/24)"),
])
def test_server_on_every_network_of_its_school(addresses: Any, line: str) -> None:
    assert line in found(lab(**{"0350607v-srv": {"addresses": addresses, "ansible_host": "10.35.1.9"}}))


# --- membership, NTP ---------------------------------------------------------------------

def test_equipment_in_no_school() -> None:
    stray = host("stray-pc", groups=["workstations"], uai="no school", ansible_host="10.99.0.5", mac=None)
    hosts = lab() + [stray]
    assert found(hosts, [school(lab())]) == [
        "stray-pc: in no school_<uai> group: its school (cartable_school_server, cartable_school_networks) "
        "is unknown"]


def test_equipment_in_two_schools() -> None:
    other = {"name": "school_0350626r", "hosts": ["0350626r-srv", "0350607v-sdi01"], "server": "0350626r-srv",
             "networks": {"pedagogical": {**NETWORKS["pedagogical"], "subnet": "10.35.2.0/24",
                                          "gateway": "10.35.2.1", "dhcp_start": "10.35.2.128",
                                          "dhcp_end": "10.35.2.254"}}}
    hosts = lab() + [server("0350626r-srv", ansible_host="10.35.2.1", mac="52:54:00:35:26:01",
                            addresses={"pedagogical": "10.35.2.1"})]
    lines = found(hosts, [school(lab()), other])
    assert "0350607v-sdi01: in 2 schools: school_0350607v, school_0350626r" in lines
    assert "0350607v-sdi01: ansible_host '10.35.0.11' is outside its network pedagogical (10.35.2.0/24)" in lines


@pytest.mark.parametrize("ntp", [[], "ntp.example.test", None, [""], [None], {"a": 1}])
def test_school_server_without_ntp(ntp: Any) -> None:
    assert found(lab(**{"0350607v-srv": {"ntp": ntp}})) == [
        "0350607v-srv: cartable_ntp_servers is empty or not a list: the school server has no time source "
        "(site file: ntp)"]


# --- administrators, lock-out --------------------------------------------------------------

BAD_ADMINS = [
    {"name": "jdupont", "ssh_keys": [], "state": "present"},
    {"name": "Marie", "ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE marie"]},
    {"name": "pmartin", "ssh_keys": ["not a key"], "state": "gone"},
    {"name": "fido", "ssh_keys": ["sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t fido",
                                  "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= laptop"]},
]


def test_bad_administrators() -> None:
    texts = checks.admins_texts(BAD_ADMINS)
    assert texts[0] == "cartable_admins[0] (jdupont).ssh_keys is empty: a present administrator needs a key"
    assert texts[1].startswith("cartable_admins[1].name: 'Marie' is not a valid account name")
    assert texts[2:] == ["cartable_admins[2] (pmartin).state 'gone' is not present or absent",
                         "cartable_admins[2] (pmartin).ssh_keys[0] is not an SSH public key line "
                         "(type, base64 key, comment)"]


@pytest.mark.parametrize("admins, text", [
    ("jdupont", "cartable_admins is not a list"),
    ({"name": "jdupont"}, "cartable_admins is not a list"),
    (["jdupont"], "cartable_admins[0] is not a mapping {name, ssh_keys, state}"),
    ([{"ssh_keys": [KEY]}], "cartable_admins[0].name: None is not a valid account name"),
    ([{"name": "root", "ssh_keys": [KEY]}], "cartable_admins[0].name: 'root' is reserved"),
    ([{**JDUPONT, "ssh_keys": KEY}], "cartable_admins[0] (jdupont).ssh_keys is not a list of public keys"),
    ([{**JDUPONT, "ssh_keys": [KEY, 12]}],
     "cartable_admins[0] (jdupont).ssh_keys[1] is not an SSH public key line (type, base64 key, comment)"),
    ([JDUPONT, {**JDUPONT, "state": "absent"}], "cartable_admins names jdupont twice"),
])
def test_administrator_texts(admins: Any, text: str) -> None:
    assert any(found_text.startswith(text) for found_text in checks.admins_texts(admins)), \
        checks.admins_texts(admins)


def test_an_absent_administrator_needs_no_key() -> None:
    assert checks.admins_texts([JDUPONT, {"name": "pmartin", "state": "absent"}]) == []


def test_bad_administrators_are_one_line_naming_the_hosts() -> None:
    hosts = lab(**{name: {"admins": BAD_ADMINS, "access": {"user": "cartable", "ssh": True, "root_login": "no",
                                                            "kept": ["cartable"]}}
                   for name in ("0350607v-srv", "0350607v-sdi01", "0350607v-sdi02")})
    lines = found(hosts)
    assert "0350607v-srv, 0350607v-sdi01, 0350607v-sdi02: cartable_admins[0] (jdupont).ssh_keys is empty: " \
           "a present administrator needs a key" in lines
    assert not [line for line in lines if "cartable_admins[3]" in line]  # FIDO and ECDSA keys are keys
    assert not [line for line in lines if "bwl01" in line]  # printers are not managed


def test_lockout_only_on_the_hosts_concerned() -> None:
    root = {"user": "root", "ssh": True, "root_login": "no", "kept": []}
    hosts = lab(**{"0350607v-srv": {"access": {**root, "root_login": "prohibit-password"}},
                   "0350607v-sdi01": {"access": root}, "0350607v-sdi02": {"access": root}})
    assert found(hosts) == [
        "0350607v-sdi01, 0350607v-sdi02: Ansible connects as root (ansible_user) and the common role refuses "
        "root logins (common__sshd_permit_root_login: no): the next run could not connect. Set ansible_user to "
        "an administrator of cartable_admins (jdupont), or set common__sshd_permit_root_login: "
        "prohibit-password for a first run"]


def test_no_lockout_without_ssh() -> None:
    docker = {"user": "root", "ssh": False, "root_login": "no", "kept": []}
    assert found(lab(**{name: {"access": docker} for name in ("0350607v-srv", "0350607v-sdi01")})) == []


def test_more_than_three_hosts_are_counted() -> None:
    hosts = lab() + [host(f"0350607v-sdi{n:02}", ansible_host=f"10.35.0.{n}", mac=f"52:54:00:35:07:{n:02}",
                          access={"user": "deploy", "ssh": True, "root_login": "no", "kept": []})
                     for n in range(30, 35)]
    assert found(hosts) == [
        "0350607v-sdi30, 0350607v-sdi31, 0350607v-sdi32 and 2 more: Ansible connects as 'deploy' (ansible_user), "
        "which is not an administrator with a key in cartable_admins: after this run it could not log in. Add "
        "it to the site file's `admins` with its key, set ansible_user to an administrator (jdupont), or list "
        "it in validate_inventory__kept_logins if the account is made outside Cartable and keeps its key"]


# --- file shares, host names -------------------------------------------------------------

SHARES = [{"name": "commun", "read": ["teachers", "pupils"], "write": ["teachers"]},
          {"name": "familles", "read": ["teachers", "parents"], "write": ["teachers"]}]


def test_share_naming_an_unknown_group() -> None:
    hosts = lab(**{"0350607v-srv": {"shares": SHARES, "share_groups": [{"name": "teachers"}, {"name": "pupils"}]}})
    assert found(hosts) == [
        "0350607v-srv: file_server__shares[familles].read names the group 'parents', which is not in "
        "file_server__groups (teachers, pupils)"]


def test_share_checked_against_the_file_server_default_groups() -> None:
    shares = [{"name": "direction", "read": ["direction"], "write": ["direction"]}, {"read": ["x"]}, "junk"]
    assert found(lab(**{"0350607v-srv": {"shares": shares}})) == [
        "0350607v-srv: file_server__shares[1].read names the group 'x', which is not in the file_server role's "
        "default file_server__groups (teachers, pupils)",
        "0350607v-srv: file_server__shares[direction].read names the group 'direction', which is not in the "
        "file_server role's default file_server__groups (teachers, pupils)",
        "0350607v-srv: file_server__shares[direction].write names the group 'direction', which is not in the "
        "file_server role's default file_server__groups (teachers, pupils)"]


def test_share_groups_that_are_not_a_list() -> None:
    shares = [{"name": "commun", "read": "teachers"}]
    assert found(lab(**{"0350607v-srv": {"shares": shares}})) == [
        "0350607v-srv: file_server__shares[commun].read 'teachers' is not a list of group names"]


def test_host_name_not_dns_safe() -> None:
    hosts = lab() + [host("Salle_Info-PC-01", ansible_host="10.35.0.99", mac="52:54:00:35:07:99")]
    lines = found(hosts, [school(hosts)])
    assert len(lines) == 1 and lines[0].startswith(
        "Salle_Info-PC-01: host name 'Salle_Info-PC-01' is not DNS-safe (1-15 lower-case letters")


def test_host_names_outside_schools_are_not_checked() -> None:
    assert checks.host_name_problems([host("Controller_1", uai="no school")]) == []


# --- lines and the message -----------------------------------------------------------------

def test_lines_group_by_text_and_sort_case_insensitively() -> None:
    problems = [{"subject": "b", "text": "same"}, {"subject": "a", "text": "same"}, {"subject": "b", "text": "same"},
                {"subject": "Z", "text": "last"}, {"subject": "c", "text": "other"}]
    assert lines_of(problems) == ["b, a: same", "c: other", "Z: last"]


def test_report_lists_at_most_max_lines() -> None:
    lines = [f"host{n}: problem" for n in range(5)]
    assert report(lines, 2).split("\n") == [
        "The inventory has 5 problem(s); no host was touched. Fix the site file (or the group_vars) and rebuild "
        "the inventory:", "- host0: problem", "- host1: problem", "... and 3 more"]
    assert report(lines, 5).split("\n")[-1] == "- host4: problem"


# --- bad input: the summary is not the role's ----------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (("hosts", [], {}), "hosts 'hosts' is not a list"),
    (([{"name": "a"}], [], {}), "lacks groups, printer"),
    (([], [{"name": "school_x"}], {}), "schools entry {'name': 'school_x'} is not the role's summary"),
    (([], [], ["all"]), "groups ['all'] is not a mapping"),
    (([], [{"name": "school_x", "hosts": ["pc"], "server": "", "networks": {}}], {}),
     "schools entry 'school_x': hosts ['pc'] is not a list of hosts of the summary"),
    (([], [], {}, {"network_key": []}), "settings {'network_key': []} is not a mapping of network_keys"),
    (([], [], {}, {"network_keys": "subnet"}), "settings.network_keys 'subnet' is not a list of strings"),
])
def test_a_summary_of_the_wrong_shape_is_refused(args: tuple[Any, ...], fragment: str) -> None:
    with pytest.raises(AnsibleFilterError, match=re.escape(fragment)):
        problems_of(*args)


@pytest.mark.parametrize("call, fragment", [
    (lambda: lines_of([{"subject": "a"}]), "cartable_problem_lines: [{'subject': 'a'}] is not a list"),
    (lambda: report("a: b"), "cartable_problem_report: 'a: b' is not a list of lines"),
    (lambda: report([], "60"), "max_listed '60' is not a number"),
])
def test_bad_lines_are_refused(call: Any, fragment: str) -> None:
    with pytest.raises(AnsibleFilterError, match=re.escape(fragment)):
        call()


def test_the_role_builds_the_summary_the_filter_reads() -> None:
    tasks = (REPO / "roles/validate_inventory/tasks/main.yml").read_text(encoding="utf-8")
    summary = tasks.split("__validate_inventory_summary: >-")[1].split("__validate_inventory_school_summary")[0]
    indent = re.search(r"^(\s+)'name': host", summary, re.MULTILINE)
    assert indent
    # 'netboot' is read by cartable_netboot_problems (filter_plugins/cartable_netboot.py).
    assert set(re.findall(rf"^{indent[1]}'(\w+)': ", summary, re.MULTILINE)) == {*checks.HOST_KEYS, "netboot"}
    netboot = summary.split("'netboot': {")[1].split("}")[0]
    assert set(re.findall(r"'(\w+)': ", netboot)) == {"name", "mac", "image", "action", "mode", "version", "campaign"}
    schools = tasks.split("__validate_inventory_school_summary: >-")[1].split("delegate_facts")[0]
    assert set(re.findall(r"'(\w+)': ", schools)) == set(checks.SCHOOL_KEYS)


def test_the_role_defaults_are_the_filter_defaults() -> None:
    import yaml
    defaults = yaml.safe_load((REPO / "roles/validate_inventory/defaults/main.yml").read_text(encoding="utf-8"))
    assert {key: defaults[f"validate_inventory__{key}"] for key in checks.SETTINGS} == checks.SETTINGS


# --- the school proxy's inputs (academic proxy, filter policy) ------------------------------

def _two_schools(**server_changes: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The lab school and a second school with the same site-wide values on its server."""
    other = server("0350626r-srv", groups=["school_0350626r", "school_servers"], uai="0350626R",
                   ansible_host="10.35.3.1", mac="52:54:00:35:26:01",
                   addresses={"pedagogical": "10.35.2.1", "administrative": "10.35.3.1"},
                   **server_changes)
    networks = {
        "pedagogical": {"subnet": "10.35.2.0/24", "gateway": "10.35.2.1", "netmask": "255.255.255.0",
                        "dhcp_start": "10.35.2.128", "dhcp_end": "10.35.2.254"},
        "administrative": {"subnet": "10.35.3.0/24", "gateway": "10.35.3.1", "netmask": "255.255.255.0",
                           "dhcp_start": "10.35.3.128", "dhcp_end": "10.35.3.254"}}
    hosts = lab(**{"0350607v-srv": server_changes}) + [other]
    return hosts, [school(lab()), {"name": "school_0350626r", "hosts": ["0350626r-srv"],
                                   "server": "0350626r-srv", "networks": networks}]


def test_a_school_server_without_academic_proxy_names_the_schools() -> None:
    hosts, schools = _two_schools(proxy=None)
    assert found(hosts, schools) == [
        "school_0350607v, school_0350626r: cartable_academic_proxy is not set: the school proxy "
        "cannot converge, it has no academic proxy to chain to (site file: academic_proxy: "
        "{host, port})"]


@pytest.mark.parametrize(("proxy", "text"), [
    ({"host": "proxy.ac-rennes.example"}, "cartable_academic_proxy lacks port: the school proxy cannot "
                                          "converge (site file: academic_proxy: {host, port})"),
    ("proxy:3128", "cartable_academic_proxy 'proxy:3128' is not a mapping {host, port}: the school proxy "
                   "cannot converge (site file: academic_proxy)"),
    ({"host": "http://proxy/", "port": 3128}, "cartable_academic_proxy.host 'http://proxy/' is not a host "
                                              "name or address"),
    ({"host": "proxy", "port": 99999}, "cartable_academic_proxy.port '99999' is not a port (1-65535)"),
    ({"host": "proxy", "port": True}, "cartable_academic_proxy.port 'True' is not a port (1-65535)"),
])
def test_a_bad_academic_proxy(proxy: Any, text: str) -> None:
    assert found(lab(**{"0350607v-srv": {"proxy": proxy}})) == [f"school_0350607v: {text}"]


@pytest.mark.parametrize("proxy", [{"host": "academic-proxy", "port": "3128"},
                                   {"host": "192.0.2.8", "port": 8080}, {"host": "2001:db8::8", "port": 1}])
def test_usable_academic_proxies(proxy: Any) -> None:
    assert found(lab(**{"0350607v-srv": {"proxy": proxy}})) == []


def test_only_school_servers_need_the_proxy_inputs() -> None:
    assert found(lab(**{"0350607v-sdi01": {"proxy": None, "filter_policy": None}})) == []


@pytest.mark.parametrize(("change", "text"), [
    ({"mode": "whitelist"}, "cartable_filter_policy.mode: unknown mode 'whitelist' (one of blocklist, "
                            "allowlist)"),
    ({"colour": "red"}, "cartable_filter_policy.colour: unknown key 'colour' (known keys: allow, "
                        "allow_categories, block, deny, mode, name)"),
    ({"block": "gambling"}, "cartable_filter_policy.block: 'gambling' is not a list of names (write a list, "
                            "e.g. [example.org])"),
    ({"block": ["gambling", "jeux"]}, "cartable_filter_policy.block: unknown UT1 category 'jeux'"),
    ({"deny": ["10.0.0.1"]}, "cartable_filter_policy.deny[0]: '10.0.0.1' is an IP address (local lists "
                             "take domain names: IP addresses are always refused)"),
    ({"mode": "allowlist"}, "cartable_filter_policy.allow_categories: allowlist mode with nothing to allow "
                            "(name white categories (e.g. liste_blanche, child) or local allow entries)"),
])
def test_a_malformed_filter_policy(change: dict[str, Any], text: str) -> None:
    policy = {**POLICY, "allow": [], **change}
    assert found(lab(**{"0350607v-srv": {"filter_policy": policy}})) == [f"school_0350607v: {text}"]


def test_a_filter_policy_that_is_not_a_mapping_or_unset() -> None:
    assert found(lab(**{"0350607v-srv": {"filter_policy": ["gambling"]}})) == [
        "school_0350607v: cartable_filter_policy: the policy is list, not a mapping (write name, mode, "
        "block, allow_categories, allow, deny)"]
    hosts, schools = _two_schools(filter_policy=None)
    assert found(hosts, schools) == [
        "school_0350607v, school_0350626r: cartable_filter_policy is not set: the school proxy has no "
        "filtering policy (site file: filtering; rebuild the inventory)"]


def test_the_generated_policies_pass() -> None:
    filters = load_plugin("cartable_proxy_checks").FilterModule().filters()
    for site in ("demo", "lab"):
        inventory = yaml.safe_load((REPO / "inventories" / site / "hosts.yml").read_text())
        proxy = inventory["all"]["vars"]["cartable_academic_proxy"]
        assert filters["cartable_academic_proxy_problems"](proxy) == []
        for group, body in inventory["all"]["children"].items():
            if group.startswith("school_0"):
                assert filters["cartable_filter_policy_problems"](body["vars"]["cartable_filter_policy"]) == []
