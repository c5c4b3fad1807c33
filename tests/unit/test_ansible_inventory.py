"""The generated inventory as Ansible sees it, with our plugin and with stock settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

BIN = Path(sys.executable).parent
DEMO = REPO / "inventories/demo/hosts.yml"


def _inventory(*args: str, **env: str) -> str:
    result = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(DEMO), *args],
                            capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), **env})
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return result.stdout


def test_graph_of_the_demo_inventory() -> None:
    graph = _inventory("--graph")
    for group in ("@school_servers:", "@workstations:", "@printers:", "@school_0350607v:",
                  "@commune_35238:", "@kind_maternelle:", "@link_adsl:", "@wave_juillet:"):
        assert group in graph
    assert "0350607v-sdi12" in graph


def test_cartable_plugin_loads_exactly_what_the_stock_yaml_plugin_loads(tmp_path: Path) -> None:
    ours = _inventory("--list", XDG_CACHE_HOME=str(tmp_path))
    cached = _inventory("--list", XDG_CACHE_HOME=str(tmp_path))  # second load: from the cache
    stock = _inventory("--list", ANSIBLE_INVENTORY_ENABLED="ansible.builtin.yaml")
    assert ours == stock == cached
    assert len(list((tmp_path / "cartable" / "inventory").glob("*.json"))) == 1
    data = json.loads(ours)
    assert data["_meta"]["hostvars"]["0350607v-sdi01"]["cartable_mac"] == "52:54:00:35:07:11"


def test_edited_inventory_is_not_served_from_a_stale_cache(tmp_path: Path) -> None:
    copy = tmp_path / "hosts.yml"
    copy.write_text(DEMO.read_text())
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    run = lambda: subprocess.run([str(BIN / "ansible-inventory"), "-i", str(copy), "--host",  # noqa: E731
                                  "0350607v-srv"], capture_output=True, text=True, env=env,
                                 check=True).stdout
    assert json.loads(run())["ansible_host"] == "10.35.0.1"
    copy.write_text(DEMO.read_text().replace("ansible_host: 10.35.0.1\n", "ansible_host: 10.35.0.9\n"))
    assert json.loads(run())["ansible_host"] == "10.35.0.9"
