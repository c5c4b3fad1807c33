"""The management path in the generated inventory: a school's hosts are reached through its
server (cartable_ssh_jump), the server directly; management_networks reach the inventory."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def ssh_args(inventory: Path, host: str, extra: dict | None = None) -> list[str]:
    """ansible_ssh_common_args of a host, templated by Ansible itself (debug runs on the controller)."""
    cmd = [str(BIN / "ansible"), host, "-i", str(inventory), "-m", "ansible.builtin.debug",
           "-a", "msg={{ ansible_ssh_common_args }}", "-o"]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    proc = subprocess.run(cmd, text=True, capture_output=True, cwd=ROOT, check=False,
                          env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": str(BIN),
                               "ANSIBLE_LOCAL_TEMP": "/tmp", "HOME": str(Path.home())})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    msg = json.loads(proc.stdout.split("=>", 1)[1])["msg"]
    return shlex.split(msg)


@pytest.fixture(scope="module")
def lab_inventory() -> Path:
    return ROOT / "inventories" / "lab" / "hosts.yml"


def test_a_workstation_is_reached_through_its_school_server(lab_inventory):
    words = ssh_args(lab_inventory, "0350607v-sdi01", {"cartable_ssh_options": "-o IdentitiesOnly=yes"})
    assert words[:2] == ["-o", "IdentitiesOnly=yes"]
    assert words[2] == "-o" and words[3].startswith("ProxyCommand=")
    inner = shlex.split(words[3][len("ProxyCommand="):])
    assert inner[-3:] == ["-W", "%h:%p", "10.35.0.1"]  # the server's ansible_host


def test_the_server_is_reached_directly(lab_inventory):
    assert ssh_args(lab_inventory, "0350607v-srv", {"cartable_ssh_options": "-o IdentitiesOnly=yes"}) == [
        "-o", "IdentitiesOnly=yes"]


def test_every_school_group_jumps_through_its_own_server():
    data = yaml.safe_load((ROOT / "inventories" / "demo" / "hosts.yml").read_text())
    schools = {g: v for g, v in data["all"]["children"].items() if "cartable_school_uai" in v.get("vars", {})}
    assert len(schools) == 3
    for group in schools.values():
        server = group["vars"]["cartable_school_server"]
        assert f'"{server}"|cartable_ssh_jump(hostvars)' in group["vars"]["ansible_ssh_common_args"]
        assert "cartable_ssh_jump" not in group["hosts"][server]["ansible_ssh_common_args"]


def test_management_networks_reach_the_inventory():
    lab = yaml.safe_load((ROOT / "inventories" / "lab" / "hosts.yml").read_text())
    assert lab["all"]["vars"]["cartable_management_networks"] == ["100.64.35.254/32"]
