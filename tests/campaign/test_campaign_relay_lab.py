"""`cartable campaign run --relay` over real ssh: a school server and a workstation as
containers of the lab's base image (tests/bench/campaign_bench.py's city, one school of one
workstation, on its own networks 10.250.32.0/24), the server reached on its WAN address, the
workstation only on the school's LAN, where the controller has no address and no route."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from campaign_fixtures import PLAYBOOK, PRIMAIRE, REPO, build_site, cartable, status

sys.path.insert(0, str(REPO / "tests" / "bench"))
import campaign_bench as city  # noqa: E402  (after sys.path)
from cartable_lab import common, connection, containers, engine  # noqa: E402
from cartable_lab import images as lab_images  # noqa: E402

SMALL = {"dir": 0, "mfp": 0, "bcd": 0, "clr": 0, "sdi": 1, "bwl": 0, "scn": 0}


@pytest.fixture(scope="module")
def school(tmp_path_factory) -> Iterator[dict]:
    engine.ensure_engine()
    images = lab_images.build_images()
    common.STATE.mkdir(parents=True, exist_ok=True)
    pubkey = connection.ensure_ssh_key()
    model = city.city_model(1, 1)
    try:
        keys = city.start_city(model, images, pubkey)
        work = tmp_path_factory.mktemp("city")
        city.write_inventories(model, keys, work)  # the relay's key + LAN known_hosts on the server
        # the relay runs the controller's venv, mounted from under /root (bench only)
        common.docker("exec", "campaign-s1-srv", "chmod", "711", "/root")
        yield {"work": work, "server": "campaign-s1-srv", "workstation": "campaign-s1-ws01"}
    finally:
        containers.remove_all(city.KIND)


def _site(tmp_path: Path, school: dict) -> Path:
    site = build_site(tmp_path / "relay-city")
    data = yaml.safe_load(site.read_text())
    data["selection"] = {"uai": [PRIMAIRE]}
    data["waves"] = [{"name": "aout", "uai": [PRIMAIRE]}]
    data["overrides"] = {PRIMAIRE: {"equipment": SMALL}}
    site.write_text(yaml.safe_dump(data))
    assert cartable("inventory", "build", str(site)).returncode == 0
    key = common.STATE / "ssh" / "id_ed25519"
    folder = site.parent
    (folder / "group_vars" / "all.yml").write_text(yaml.safe_dump({
        "ansible_python_interpreter": "/usr/bin/python3", "campaign_test_dir": "/tmp",
        "cartable_relay_ssh_options": "-o UserKnownHostsFile=/home/cartable/.ssh/lan_known_hosts "
                                      "-o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes"}))
    (folder / "host_vars" / "0350607v-srv.yml").write_text(yaml.safe_dump({
        "ansible_host": "10.250.32.11", "ansible_user": "cartable",
        "ansible_ssh_private_key_file": str(key),
        "cartable_ssh_options": f"-o UserKnownHostsFile={school['work'] / 'known_hosts'} "
                                "-o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes"}))
    (folder / "host_vars" / "0350607v-sdi01.yml").write_text(yaml.safe_dump({
        "ansible_host": "10.250.32.66", "ansible_user": "cartable",
        "ansible_ssh_private_key_file": "/home/cartable/.ssh/relay_key"}))
    return site


def _run(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    venv = os.path.realpath(REPO / ".venv")
    return cartable("campaign", "run", str(site), str(PLAYBOOK), "--relay", "--relay-runner",
                    f"env PATH={venv}/bin:/usr/bin:/bin {venv}/bin/ansible-runner", *args)


def test_the_school_server_converges_its_workstation(school: dict, tmp_path: Path) -> None:
    site = _site(tmp_path, school)
    done = _run(site)
    assert done.returncode == 0, done.stdout + done.stderr
    entry = status(site)["schools"][PRIMAIRE]
    assert (entry["state"], entry["changed"], entry["wave"]) == ("ok", 2, "aout")
    # the marker is on the workstation, written by the server over the LAN
    listing = common.docker("exec", school["workstation"], "ls", "/tmp").split()
    assert "0350607v-sdi01" in listing
    assert "0350607v-srv" in common.docker("exec", school["server"], "ls", "/tmp").split()
    # the controller itself cannot reach the workstation
    with pytest.raises(OSError):
        socket.create_connection(("10.250.32.66", 22), timeout=3).close()

    common.docker("stop", "-t", "2", school["workstation"])  # powered off for the night
    done = _run(site, "--name", "night")
    assert done.returncode == 1
    entry = status(site, "night")["schools"][PRIMAIRE]
    assert entry["state"] == "unreachable" and entry["failed_hosts"] == ["0350607v-sdi01"]
    assert "10.250.32.66" in entry["errors"][0]["msg"]
