"""The generated hosts.yml as an AWX inventory source "sourced from a project" (docs/awx.md).

AWX (awx/main/tasks/jobs.py, RunInventoryUpdate.build_args) runs, inside the execution
environment, from the project's checkout:
    ansible-inventory --list --export -i <project>/<source_path> --output <file>
                      --playbook-dir <folder of source_path>
with ANSIBLE_INVENTORY_UNPARSED_FAILED, ANSIBLE_INVENTORY_EXPORT and ANSIBLE_VERBOSE_TO_STDERR
set. The same command here, in a fresh copy of the project, with nothing of this machine's
Ansible settings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INVENTORY = Path(sys.executable).parent / "ansible-inventory"
SOURCE_PATH = "inventories/demo/hosts.yml"  # the inventory source's source_path in AWX
AWX_ENV = {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "True", "ANSIBLE_INVENTORY_EXPORT": "True",
           "ANSIBLE_VERBOSE_TO_STDERR": "True"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """What AWX checks out: the project's files (those ansible.cfg names and the inventory)."""
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy2(REPO / "ansible.cfg", copy)
    for folder in ("inventory_plugins", "filter_plugins", "library", "inventories/demo"):
        shutil.copytree(REPO / folder, copy / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "campaigns"))
    return copy


def _sync(cwd: Path, project: Path, tmp_path: Path) -> tuple[dict, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(AWX_ENV, HOME=str(tmp_path / "home"))
    env.pop("XDG_CACHE_HOME", None)
    source = project / SOURCE_PATH
    output = tmp_path / f"output-{cwd.name}.json"
    done = subprocess.run(
        [str(INVENTORY), "--list", "--export", "-i", str(source), "--output", str(output),
         "--playbook-dir", str(source.parent), "-vvv"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(output.read_text(encoding="utf-8")), done.stderr


def test_awx_sync_from_the_project_uses_the_cartable_plugin(project: Path,
                                                            tmp_path: Path) -> None:
    data, log = _sync(project, project, tmp_path)
    assert f"Using {project / 'ansible.cfg'} as config file" in log
    assert f"Parsed {project / SOURCE_PATH} inventory source with cartable_inventory plugin" in log
    # groups AWX imports: schools, waves, roles; hosts with their vars; group vars
    for group in ("school_servers", "workstations", "school_0350607v", "wave_aout",
                  "wave_juillet", "commune_35238"):
        assert group in data["all"]["children"], group
    assert "0350607v-srv" in data["school_0350607v"]["hosts"]
    assert "0350607v-sdi03" in data["workstations"]["hosts"]
    school = data["school_0350607v"]["vars"]
    assert school["cartable_school_uai"] == "0350607V"
    assert school["cartable_school_wave"] == "aout"
    assert "cartable_ssh_jump" in school["ansible_ssh_common_args"]  # kept as a template
    host = data["_meta"]["hostvars"]["0350607v-sdi03"]
    assert host["ansible_host"].startswith("10.35.")
    assert data["all"]["vars"]["cartable_site"] == "demo"


def test_awx_sync_without_the_projects_settings_gives_the_same_inventory(
        project: Path, tmp_path: Path) -> None:
    """An AWX whose inventory sync would not read the project's ansible.cfg still gets the
    same inventory: Ansible's stock yaml plugin reads the generated file."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with_plugin, _ = _sync(project, project, tmp_path)
    stock, log = _sync(elsewhere, project, tmp_path)
    assert "with yaml plugin" in log
    assert stock == with_plugin
