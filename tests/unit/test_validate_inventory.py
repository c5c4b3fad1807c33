"""The validate_inventory role: bad inventories are refused before any host is touched.

Each test copies the lab or demo inventory to a temporary directory, breaks it one way, runs a
tiny playbook (validate_inventory, then a play that must not be reached) with the project's
ansible.cfg, and checks the exit code and that the message names the host and the variable.
Nothing connects to any host: the role's tasks run on the controller.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from conftest import REPO

BIN = Path(sys.executable).parent
LAB = REPO / "inventories/lab/hosts.yml"
DEMO = REPO / "inventories/demo/hosts.yml"

PLAYBOOK = """\
- name: Validate the inventory before any host is touched
  hosts: all
  gather_facts: false
  roles:
    - role: validate_inventory
      run_once: true

- name: Touch the hosts (must not be reached when the inventory is refused)
  hosts: all
  gather_facts: false
  tasks:
    - name: Say it was reached
      ansible.builtin.debug:
        msg: HOSTS-WOULD-BE-TOUCHED
      run_once: true
"""

Inventory = dict
LAB_CONNECTION = {"ansible_user": "cartable", "validate_inventory__kept_logins": ["cartable"]}
JDUPONT = {"name": "jdupont", "ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE jdupont"]}
Mutation = Callable[[Inventory], None]


def _school(inventory: Inventory, uai: str) -> dict:
    return inventory["all"]["children"][f"school_{uai}"]


def _run(tmp_path: Path, source: Path, mutate: Mutation | None = None,
         *args: str) -> subprocess.CompletedProcess[str]:
    inventory = yaml.safe_load(source.read_text(encoding="utf-8"))
    # How the lab connects (tests/lab/lab.py's connection inventory): its own deploy account,
    # made by the image and kept by the common role.
    inventory["all"]["vars"].update(LAB_CONNECTION)
    if mutate is not None:
        mutate(inventory)
    hosts = tmp_path / "hosts.yml"
    hosts.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    playbook = tmp_path / "validate.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.default", "ANSIBLE_DISPLAY_OK_HOSTS": "true",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(hosts), str(playbook), *args],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def _refused(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "HOSTS-WOULD-BE-TOUCHED" not in output
    assert "no host was touched" in output, output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in:\n{output}"
    return output


@pytest.mark.parametrize("source", [LAB, DEMO], ids=["lab", "demo"])
def test_generated_inventories_pass(tmp_path: Path, source: Path) -> None:
    result = _run(tmp_path, source)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HOSTS-WOULD-BE-TOUCHED" in result.stdout


def test_printer_without_uri(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        del _school(inventory, "0350607v")["hosts"]["0350607v-bwl01"]["ansible_host"]

    _refused(_run(tmp_path, LAB, mutate),
             "0350607v-bwl01: printer without a URI", "cartable_printer_uri", "ansible_host")


def test_printer_with_a_uri_and_no_address_passes(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        printer = _school(inventory, "0350607v")["hosts"]["0350607v-bwl01"]
        del printer["ansible_host"]
        printer["cartable_printer_uri"] = "ipp://bwl01.example/ipp/print"

    result = _run(tmp_path, LAB, mutate)
    assert result.returncode == 0, result.stdout


def test_printer_with_a_bad_uri(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        _school(inventory, "0350607v")["hosts"]["0350607v-bwl01"]["cartable_printer_uri"] = "10.35.0.12"

    _refused(_run(tmp_path, LAB, mutate),
             "0350607v-bwl01: cartable_printer_uri '10.35.0.12' is not a printer URI")


def test_host_without_address(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        del _school(inventory, "0350607v")["hosts"]["0350607v-sdi02"]["ansible_host"]

    _refused(_run(tmp_path, LAB, mutate), "0350607v-sdi02: ansible_host is not set")


def test_mac_in_two_schools(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        # 0350607v-sdi01's MAC, given (upper case, dashes) to a PC of another school
        _school(inventory, "0350626r")["hosts"]["0350626r-sdi01"]["cartable_mac"] = "52-54-00-35-07-11"

    _refused(_run(tmp_path, DEMO, mutate),
             "cartable_mac 52:54:00:35:07:11: the same MAC on 2 hosts",
             "0350607v-sdi01 (school 0350607V)", "0350626r-sdi01 (school 0350626R)")


def test_malformed_mac(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        _school(inventory, "0350607v")["hosts"]["0350607v-sdi01"]["cartable_mac"] = "52:54:00:35:07"

    _refused(_run(tmp_path, LAB, mutate),
             "0350607v-sdi01: cartable_mac '52:54:00:35:07' is not a MAC address")


def test_two_hosts_with_the_same_address(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        # the server's administrative address, given to a workstation
        _school(inventory, "0350607v")["hosts"]["0350607v-sdi02"]["ansible_host"] = "10.35.1.1"

    _refused(_run(tmp_path, LAB, mutate), "address 10.35.1.1: the same address on 2 hosts",
             "0350607v-srv (cartable_addresses.administrative)", "0350607v-sdi02 (ansible_host)")


def test_school_without_server(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        del _school(inventory, "0350650s")["vars"]["cartable_school_server"]

    _refused(_run(tmp_path, DEMO, mutate),
             "school_0350650s: cartable_school_server is not set: the school has no server")


def test_school_server_outside_school_servers(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        del inventory["all"]["children"]["school_servers"]["hosts"]["0350607v-srv"]

    _refused(_run(tmp_path, LAB, mutate),
             "school_0350607v: cartable_school_server 0350607v-srv is not in the group school_servers")


def test_school_network_missing_keys(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        network = _school(inventory, "0350607v")["vars"]["cartable_school_networks"]["pedagogical"]
        del network["dhcp_end"], network["gateway"]

    _refused(_run(tmp_path, LAB, mutate),
             "school_0350607v: cartable_school_networks.pedagogical lacks gateway, dhcp_end")


def test_school_without_networks(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        del _school(inventory, "0350607v")["vars"]["cartable_school_networks"]

    _refused(_run(tmp_path, LAB, mutate), "school_0350607v: cartable_school_networks is not set")


def test_host_outside_its_network(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        hosts = _school(inventory, "0350607v")["hosts"]
        hosts["0350607v-sdi01"]["ansible_host"] = "10.35.1.20"
        hosts["0350607v-sdi02"]["cartable_network"] = "wifi"

    _refused(_run(tmp_path, LAB, mutate),
             "0350607v-sdi01: ansible_host '10.35.1.20' is outside its network pedagogical (10.35.0.0/24)",
             "0350607v-sdi02: cartable_network 'wifi' is not a network of school_0350607v")


def test_share_naming_an_unknown_group(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        inventory["all"]["children"]["school_servers"]["vars"] = {
            "file_server__groups": [{"name": "teachers"}, {"name": "pupils"}],
            "file_server__shares": [
                {"name": "commun", "path": "/srv/samba/commun", "comment": "Commun",
                 "read": ["teachers", "pupils"], "write": ["teachers"]},
                {"name": "familles", "path": "/srv/samba/familles", "comment": "Familles",
                 "read": ["teachers", "parents"], "write": ["teachers"]},
            ],
        }

    _refused(_run(tmp_path, DEMO, mutate),
             "0350607v-srv, 0350626r-srv, 0350650s-srv: file_server__shares[familles].read names the "
             "group 'parents', which is not in file_server__groups (teachers, pupils)")


def test_share_checked_against_the_file_server_default_groups(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        _school(inventory, "0350607v")["hosts"]["0350607v-srv"]["file_server__shares"] = [
            {"name": "direction", "read": ["direction"], "write": ["direction"]}]

    _refused(_run(tmp_path, LAB, mutate),
             "0350607v-srv: file_server__shares[direction].read names the group 'direction', which is "
             "not in the file_server role's default file_server__groups (teachers, pupils)",
             "file_server__shares[direction].write")


def test_default_groups_match_the_file_server_role() -> None:
    defaults = REPO / "roles/file_server/defaults/main.yml"
    if not defaults.exists():
        pytest.skip("no file_server role")
    ours = yaml.safe_load((REPO / "roles/validate_inventory/defaults/main.yml").read_text())
    theirs = yaml.safe_load(defaults.read_text())
    assert ours["validate_inventory__file_server_default_groups"] == [
        group["name"] for group in theirs["file_server__groups"]]


def test_bad_administrators(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        inventory["all"]["vars"]["cartable_admins"] = [
            {"name": "jdupont", "ssh_keys": [], "state": "present"},
            {"name": "Marie", "ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE marie"]},
            {"name": "pmartin", "ssh_keys": ["not a key"], "state": "gone"},
            {"name": "fido", "ssh_keys": ["sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t fido",
                                          "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= laptop"]},
        ]

    output = _refused(
        _run(tmp_path, LAB, mutate),
        "cartable_admins[0] (jdupont).ssh_keys is empty: a present administrator needs a key",
        "cartable_admins[1].name: 'Marie' is not a valid account name",
        "cartable_admins[2] (pmartin).state 'gone' is not present or absent",
        "cartable_admins[2] (pmartin).ssh_keys[0] is not an SSH public key line")
    assert "cartable_admins[3]" not in output  # FIDO and ECDSA keys are keys
    # the same value on every managed host: one line each, naming the hosts
    assert "0350607v-srv, 0350607v-sdi01, 0350607v-sdi02: cartable_admins[0]" in output


def test_equipment_in_no_school(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        inventory["all"]["children"]["workstations"]["hosts"]["stray-pc"] = {"ansible_host": "10.99.0.5"}

    _refused(_run(tmp_path, LAB, mutate), "stray-pc: in no school_<uai> group")


def test_school_server_without_ntp(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        inventory["all"]["vars"]["cartable_ntp_servers"] = []

    _refused(_run(tmp_path, LAB, mutate), "0350607v-srv: cartable_ntp_servers is empty")


def test_every_problem_in_one_message_even_with_limit(tmp_path: Path) -> None:
    """--limit to one healthy host: the whole inventory is still checked, all problems at once."""
    def mutate(inventory: Inventory) -> None:
        hosts = _school(inventory, "0350607v")["hosts"]
        del hosts["0350607v-bwl01"]["ansible_host"]
        hosts["0350626r-sdi01"] = {"ansible_host": "10.35.2.12", "cartable_network": "pedagogical",
                                   "cartable_mac": "52:54:00:35:07:21"}
        del _school(inventory, "0350650s")["vars"]["cartable_school_server"]

    output = _refused(_run(tmp_path, DEMO, mutate, "--limit", "0350626r-dir01"),
                      "The inventory has ", "0350607v-bwl01: printer without a URI",
                      "cartable_mac 52:54:00:35:07:21: the same MAC on 2 hosts",
                      "school_0350650s: cartable_school_server is not set",
                      "0350626r-sdi01: ansible_host '10.35.2.12' is outside its network pedagogical",
                      "0350626r-sdi01: in 2 schools: school_0350607v, school_0350626r")
    assert output.count("TASK [validate_inventory : Refuse the inventory") == 1


def _connect(**variables: object) -> Mutation:
    def mutate(inventory: Inventory) -> None:
        for name in LAB_CONNECTION:
            inventory["all"]["vars"].pop(name)
        inventory["all"]["vars"].update(variables)
    return mutate


def test_lockout_root_without_admins(tmp_path: Path) -> None:
    _refused(_run(tmp_path, LAB, _connect(ansible_user="root")),
             "0350607v-srv, 0350607v-sdi01, 0350607v-sdi02: Ansible connects as root (ansible_user)",
             "(common__sshd_permit_root_login: no)", "cartable_admins has no administrator with a key",
             "common__sshd_permit_root_login: prohibit-password")


def test_lockout_root_with_admins_names_them(tmp_path: Path) -> None:
    _refused(_run(tmp_path, LAB, _connect(ansible_user="root", cartable_admins=[JDUPONT])),
             "the next run could not connect. Set ansible_user to an administrator of cartable_admins (jdupont)")


def test_lockout_user_that_is_not_an_admin(tmp_path: Path) -> None:
    absent = {**JDUPONT, "state": "absent"}
    _refused(_run(tmp_path, LAB, _connect(ansible_user="deploy", cartable_admins=[absent])),
             "Ansible connects as 'deploy' (ansible_user), which is not an administrator with a key",
             "validate_inventory__kept_logins")


def test_lockout_only_on_the_hosts_concerned(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        _connect(ansible_user="root", cartable_admins=[JDUPONT])(inventory)
        # the server keeps root logins for its first run; the workstations do not
        _school(inventory, "0350607v")["hosts"]["0350607v-srv"]["common__sshd_permit_root_login"] = \
            "prohibit-password"

    output = _refused(_run(tmp_path, LAB, mutate), "0350607v-sdi01, 0350607v-sdi02: Ansible connects as root")
    assert "0350607v-srv" not in output.split("Refuse the inventory")[-1].split("connects as root")[0]


@pytest.mark.parametrize("variables", [
    {"ansible_user": "root", "common__sshd_permit_root_login": "prohibit-password"},
    {"ansible_user": "root", "common__sshd_permit_root_login": True},
    {"ansible_user": "jdupont", "cartable_admins": [JDUPONT]},
    {"ansible_user": "root", "ansible_connection": "community.docker.docker"},
], ids=["root-allowed", "root-yes", "admin", "not-ssh"])
def test_a_way_in_remains(tmp_path: Path, variables: dict) -> None:
    result = _run(tmp_path, LAB, _connect(**variables))
    assert result.returncode == 0, result.stdout + result.stderr


def test_host_name_not_dns_safe(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        hosts = _school(inventory, "0350607v")["hosts"]
        hosts["Salle_Info-PC-01"] = {**hosts["0350607v-sdi02"], "ansible_host": "10.35.0.99",
                                     "cartable_mac": "52:54:00:35:07:99"}

    _refused(_run(tmp_path, LAB, mutate),
             "Salle_Info-PC-01: host name 'Salle_Info-PC-01' is not DNS-safe (1-15 lower-case letters")


def test_site_without_academic_proxy(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        del inventory["all"]["vars"]["cartable_academic_proxy"]

    _refused(_run(tmp_path, DEMO, mutate),
             "school_0350607v, school_0350626r, school_0350650s: cartable_academic_proxy is not set: the "
             "school proxy cannot converge, it has no academic proxy to chain to (site file: academic_proxy")


def test_malformed_filter_policy(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        policy = _school(inventory, "0350626r")["vars"]["cartable_filter_policy"]
        policy["mode"] = "whitelist"
        _school(inventory, "0350650s")["vars"]["cartable_filter_policy"]["colour"] = "red"

    _refused(_run(tmp_path, DEMO, mutate),
             "school_0350626r: cartable_filter_policy.mode: unknown mode 'whitelist' (one of blocklist, "
             "allowlist)",
             "school_0350650s: cartable_filter_policy.colour: unknown key 'colour'")


def test_workstation_marked_for_reimaging_without_a_mac(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        pc = _school(inventory, "0350607v")["hosts"]["0350607v-sdi02"]
        del pc["cartable_mac"]
        pc["cartable_image"] = "cycle3"
        pc["netboot__action"] = "restore"

    _refused(_run(tmp_path, LAB, mutate),
             "0350607v-sdi02: is marked for reimaging (netboot__action: restore) but has no cartable_mac")


def test_pinned_version_the_boot_scripts_cannot_carry(tmp_path: Path) -> None:
    # a version goes into the PC's iPXE script and the restore environment's kernel line
    def mutate(inventory: Inventory) -> None:
        _school(inventory, "0350607v")["hosts"]["0350607v-sdi02"]["netboot__version"] = "2026.1 && reboot"

    _refused(_run(tmp_path, LAB, mutate),
             "0350607v-sdi02: netboot__version '2026.1 && reboot' is not a name the boot scripts can carry")


def test_workstation_without_a_mac_booting_locally_passes(tmp_path: Path) -> None:
    def mutate(inventory: Inventory) -> None:
        del _school(inventory, "0350607v")["hosts"]["0350607v-sdi02"]["cartable_mac"]

    result = _run(tmp_path, LAB, mutate)
    assert result.returncode == 0, result.stdout + result.stderr
