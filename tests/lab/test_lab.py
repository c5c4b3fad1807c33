"""Tests of the lab (the cartable_lab package, run as tests/lab/lab.py). Run with `make lab-test`
(pytest -m lab tests/lab).

The tests marked `lab` need the Docker engine and the lab image: without an engine they FAIL
(never skip), so a CI machine that lost docker cannot pass. The others are pure.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DATA = ROOT / "data" / "ut1-blacklists"

# The package of this checkout (not another one an editable install may point to).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cartable_lab import common, engine, images, model  # noqa: E402  (after the sys.path fix above)


def lab_cmd(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(HERE / "lab.py"), *args], text=True, capture_output=True,
                          cwd=ROOT, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"lab.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


# --------------------------------------------------------------------------- pure tests

def test_docker_gateway_avoids_inventory_addresses_and_the_dhcp_pool():
    net = {"subnet": "10.35.0.0/24", "gateway": "10.35.0.1", "dhcp_start": "10.35.0.128",
           "dhcp_end": "10.35.0.254"}
    got = model.docker_gateway(ipaddress.ip_network("10.35.0.0/24"), net, {"10.35.0.1", "10.35.0.127"})
    assert got == "10.35.0.126"


def test_docker_gateway_falls_back_to_the_pool_when_nothing_else_is_free():
    net = {"subnet": "10.0.0.0/29", "gateway": "10.0.0.1", "dhcp_start": "10.0.0.2", "dhcp_end": "10.0.0.6"}
    assert model.docker_gateway(ipaddress.ip_network("10.0.0.0/29"), net, {"10.0.0.1"}) == "10.0.0.6"


def test_recipe_hash_is_stable_and_names_both_images():
    assert images.recipe_hashes() == images.recipe_hashes()
    tags = images.image_tags()
    assert tags["base"].startswith("cartable-lab-base:") and tags["infra"].startswith("cartable-lab-infra:")


def test_sources_parser_reads_deb822_and_one_line_formats(tmp_path, monkeypatch):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://mirror.example/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.example/debian-security\nSuites: bookworm-security\nComponents: main\n")
    real_path = images.Path

    def fake_path(*parts):
        text = str(real_path(*parts))
        if text.startswith("/etc/apt"):
            return real_path(str(tmp_path) + text[len("/etc/apt"):])
        return real_path(*parts)

    monkeypatch.setattr(images, "Path", fake_path)
    monkeypatch.delenv("CARTABLE_LAB_MIRROR", raising=False)
    monkeypatch.delenv("CARTABLE_LAB_SECURITY_MIRROR", raising=False)
    assert images.host_mirrors() == ("http://mirror.example/debian", "http://deb.example/debian-security")


def black_categories() -> dict[str, Path]:
    out = {}
    for usage in DATA.glob("*/usage"):
        words = [w for line in usage.read_text(errors="replace").splitlines()
                 if not line.startswith("#") for w in line.split()]
        if "black" in words and (usage.parent / "domains").is_file():
            out[usage.parent.name] = usage.parent / "domains"
    return out


def test_test_sites_match_the_ut1_lists():
    """Blocked names appear verbatim in their black category; allowed names (and their parent
    domains) in no black category."""
    sites = yaml.safe_load((HERE / "topology.yml").read_text())["sites"]
    black = black_categories()
    for category, names in sites["blocked"].items():
        assert category in black, f"{category} is not a black UT1 category with a domains file"
        listed = set(black[category].read_text(errors="replace").split())
        for name in names:
            assert name in listed, f"{name} is not in {category}/domains"
    allowed = set()
    for name in sites["allowed"]:
        labels = name.split(".")
        allowed.update(".".join(labels[i:]) for i in range(len(labels) - 1))
    for category, path in black.items():
        hits = allowed & set(path.read_text(errors="replace").split())
        assert not hits, f"allowed names {hits} are listed in the black category {category}"


def test_lab_model_follows_the_inventory(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {
        "school_servers": {"hosts": {"0350122t-srv": {}}},
        "workstations": {"hosts": {"0350122t-sdi01": {}}},
        "printers": {"hosts": {"0350122t-bwl01": {}}},
        "school_0350122t": {
            "vars": {"cartable_school_uai": "0350122T", "cartable_school_networks": {
                "pedagogical": {"subnet": "10.35.0.0/24", "gateway": "10.35.0.1",
                                "dhcp_start": "10.35.0.128", "dhcp_end": "10.35.0.254"}}},
            "hosts": {
                "0350122t-srv": {"ansible_host": "10.35.0.1",
                                 "cartable_addresses": {"pedagogical": "10.35.0.1"}},
                "0350122t-sdi01": {"ansible_host": "10.35.0.10", "cartable_network": "pedagogical",
                                   "cartable_mac": "02:00:00:00:00:10"},
                "0350122t-bwl01": {"ansible_host": "10.35.0.12", "cartable_network": "pedagogical"},
            }}}}}))
    got = model.lab_model(inventory)
    by_host = {c["host"]: c for c in got["containers"] if c["host"]}
    assert got["school"] == "0350122t"
    assert by_host["0350122t-srv"]["networks"][0] == ["pedagogical", "10.35.0.1"]
    assert [n for n, _ in by_host["0350122t-srv"]["networks"]] == ["pedagogical", "academic"]
    assert by_host["0350122t-sdi01"]["networks"] == [["pedagogical", "10.35.0.10"]]
    assert by_host["0350122t-sdi01"]["mac"] == "02:00:00:00:00:10"
    assert by_host["0350122t-bwl01"]["role"] == "printer"
    assert got["networks"]["pedagogical"]["gateway"] == "10.35.0.127"
    # The faithful topology: school LANs route nowhere and hold no address of the controller;
    # workstations go out through the school server, which the controller reaches on its WAN side.
    assert not got["networks"]["pedagogical"]["host_address"]
    assert not got["networks"]["academic"]["internal"] and got["networks"]["academic"]["host_address"]
    assert by_host["0350122t-sdi01"]["default_route"] == "10.35.0.1"
    assert by_host["0350122t-srv"]["default_route"] == "100.64.35.254"
    assert by_host["0350122t-srv"]["ansible_host"] == "100.64.35.101"
    assert by_host["0350122t-sdi01"]["ansible_host"] == "10.35.0.10"
    assert {c["role"] for c in got["containers"]} >= {"academic-proxy", "internet"}


# --------------------------------------------------------------------------- the lab itself

def lab_snapshot() -> dict:
    """The lab as docker sees it: names, hostnames, networks, addresses, MACs."""
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={common.LABEL}={common.LAB_KIND}"],
                         text=True, capture_output=True, check=True).stdout.split()
    out = {}
    for item in json.loads(subprocess.run(["docker", "inspect", *ids], text=True, capture_output=True,
                                          check=True).stdout) if ids else []:
        nets = item["NetworkSettings"]["Networks"]
        out[item["Name"].lstrip("/")] = {
            "hostname": item["Config"]["Hostname"],
            "running": item["State"]["Running"],
            "networks": {n: v["IPAddress"] for n, v in nets.items()},
        }
    return out


@pytest.fixture(scope="module")
def running_lab():
    if not engine.docker_answers():
        pytest.fail("no Docker engine answers: the lab tests cannot run (run `lab.py engine`)")
    lab_cmd("up")
    yield
    lab_cmd("dhcp-client", "down", "--name", "pytest", check=False)


@pytest.mark.lab
def test_up_twice_gives_the_same_lab(running_lab):
    before = lab_snapshot()
    connection = (ROOT / ".cache/lab/connection.yml").read_text()
    proc = lab_cmd("up")
    assert " created" not in proc.stdout and "removing" not in proc.stdout
    assert lab_snapshot() == before
    assert (ROOT / ".cache/lab/connection.yml").read_text() == connection
    assert all(c["running"] for c in before.values())


@pytest.mark.lab
def test_down_removes_everything_and_up_gives_the_same_lab(running_lab):
    before = lab_snapshot()
    lab_cmd("down")
    for kind in ("ps", "network"):
        args = ["docker", kind, "ls", "-q"] if kind == "network" else ["docker", "ps", "-aq"]
        left = subprocess.run([*args, "--filter", f"label={common.LABEL}={common.LAB_KIND}"], text=True,
                              capture_output=True, check=True).stdout.split()
        assert left == [], f"down left {kind} {left}"
    assert not (ROOT / ".cache/lab/connection.yml").exists()
    lab_cmd("up")
    assert lab_snapshot() == before


@pytest.mark.lab
def test_the_controller_is_not_on_the_school_lans(running_lab):
    """The DSI's controller has no address on a school LAN nor a route into one: it reaches the
    workstations through the school server (the generated inventory's ProxyCommand) only."""
    state = json.loads((ROOT / ".cache/lab/lab.json").read_text())
    lans = {k: n for k, n in state["networks"].items() if n["school_network"]}
    assert lans
    for net in lans.values():
        link = json.loads(subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", net["bridge"]], text=True,
                                         capture_output=True, check=True).stdout)
        assert [a for i in link for a in i.get("addr_info", [])] == [], f"{net['bridge']} has an address"
        # Nothing the controller sends there leaves the machine: the LAN is unreachable from it.
        host = str(next(ipaddress.ip_network(net["subnet"]).hosts()))
        route = subprocess.run(["ip", "route", "get", host], text=True, capture_output=True, check=False)
        assert route.returncode != 0 and re.search("unreachable|No route to host", route.stderr), route.stderr
    academic = state["networks"]["academic"]
    assert academic["host_address"] and not academic["internal"]


# One converge for every proof (CI's time budget): the lab is converged once, then proven
# idempotent, then checked in check mode, then verified with real clients.

def recap(stdout: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host."""
    text = stdout[stdout.rindex("PLAY RECAP"):]
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
            for host, counters in re.findall(r"^(\S+)\s+: (ok=.*)$", text, re.M)}


@pytest.mark.lab
def test_converge(running_lab):
    proc = lab_cmd("converge", check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    hosts = recap(proc.stdout)
    assert hosts and all(c["failed"] == 0 and c["unreachable"] == 0 for c in hosts.values()), hosts


@pytest.mark.lab
def test_a_second_converge_changes_nothing(running_lab):
    proc = lab_cmd("converge", check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    changed = {h: c["changed"] for h, c in recap(proc.stdout).items()}
    assert changed and set(changed.values()) == {0}, changed


@pytest.mark.lab
def test_check_diff_on_the_converged_school_reports_no_change(running_lab):
    proc = lab_cmd("converge", "--check", "--diff", check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    changed = {h: c["changed"] for h, c in recap(proc.stdout).items()}
    assert changed and set(changed.values()) == {0}, changed


@pytest.mark.lab
def test_verify(running_lab):
    proc = lab_cmd("verify", check=False)
    assert proc.returncode == 0, proc.stdout[-6000:]


@pytest.mark.lab
def test_dhcp_client_plugs_into_the_school_lan_without_an_address(running_lab):
    lab_cmd("dhcp-client", "up", "--name", "pytest", "--mac", "02:ca:00:00:00:01")
    lab_cmd("dhcp-client", "up", "--name", "pytest", "--mac", "02:ca:00:00:00:01")  # idempotent
    state = json.loads((ROOT / ".cache/lab/lab.json").read_text())
    bridge = state["networks"]["pedagogical"]["bridge"]
    ports = subprocess.run(["ip", "-o", "link", "show", "master", bridge], text=True, capture_output=True,
                           check=True).stdout
    link = subprocess.run(["docker", "exec", "cartable-lab-dhcp-pytest", "ip", "-o", "-4", "addr", "show",
                           "lan0"], text=True, capture_output=True, check=True).stdout
    mac = subprocess.run(["docker", "exec", "cartable-lab-dhcp-pytest", "cat", "/sys/class/net/lan0/address"],
                         text=True, capture_output=True, check=True).stdout.strip()
    assert "cl-dh-" in ports
    assert link.strip() == "" and mac == "02:ca:00:00:00:01"
    lab_cmd("dhcp-client", "down", "--name", "pytest")
    ports = subprocess.run(["ip", "-o", "link", "show", "master", bridge], text=True, capture_output=True,
                           check=True).stdout
    assert "cl-dh-" not in ports


