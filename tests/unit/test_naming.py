"""cartable/naming.py and filter_plugins/cartable_naming.py: one rule for Python and Ansible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cartable import naming
from cartable.equipment import host_id
from plugin_loader import filters_of

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "filter_plugins" / "cartable_naming.py"
BIN = Path(sys.executable).parent


def _filters() -> dict[str, Any]:
    return filters_of("cartable_naming")


FILTERS = _filters()


@pytest.mark.parametrize("name", ["jdupont", "_svc", "a", "j-dupont_2", "a" * 32])
def test_good_admin_names(name: str) -> None:
    assert naming.admin_name_problem(name) is None
    assert FILTERS["cartable_admin_name_problem"](name) == ""


@pytest.mark.parametrize("name, fragment", [
    ("Jean Dupont", "'Jean Dupont' is not a valid account name"),
    ("2dupont", "is not a valid account name"),
    ("a" * 33, "is not a valid account name"),
    ("", "is not a valid account name"),
    ("root", "'root' is reserved"),
    (None, "None is not a valid account name"),
    (12, "12 is not a valid account name"),
])
def test_bad_admin_names(name: Any, fragment: str) -> None:
    assert fragment in (naming.admin_name_problem(name) or "")
    message = FILTERS["cartable_admin_name_problem"](name)
    assert fragment in message and naming.ADMIN_NAME_HINT in message


@pytest.mark.parametrize("name", ["0350607v-sdi03", "0350607v-srv", "a", "bcd-ecole-1", "a" * 15])
def test_good_host_names(name: str) -> None:
    assert naming.host_name_problem(name) is None
    assert FILTERS["cartable_host_name_problem"](name) == ""


@pytest.mark.parametrize("name", ["0350607V-sdi03", "-srv", "srv-", "a" * 16, "ecole_1", "a.b", "", None])
def test_bad_host_names(name: Any) -> None:
    assert "is not DNS-safe" in (naming.host_name_problem(name) or "")
    assert naming.HOST_NAME_HINT in FILTERS["cartable_host_name_problem"](name)


def test_generated_names_follow_the_rule() -> None:
    assert host_id("0350607V", "sdi", 3) == "0350607v-sdi03"
    assert host_id("0350607V", "srv", 1) == "0350607v-srv"
    for code in ("srv", "dir", "mfp", "sdi", "cls", "lap"):
        assert naming.host_name_problem(host_id("0350607V", code, 99)) is None


def test_plugin_imports_cartable_from_the_repository(tmp_path: Path) -> None:
    """ansible run from a clone whose interpreter does not have the package installed."""
    script = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('p', {str(PLUGIN)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "f = m.FilterModule().filters()\n"
        "print(json.dumps([f['cartable_admin_name_problem']('root'), f['cartable_host_name_problem']('x')]))\n"
    )
    # -I -S: no site-packages (so no installed cartable), no PYTHONPATH, cwd outside the clone.
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True,
                            cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    admin, host = json.loads(result.stdout)
    assert "'root' is reserved" in admin and host == ""


def test_filters_through_ansible(tmp_path: Path) -> None:
    playbook = tmp_path / "naming.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug:\n"
        "        msg: \"{{ ['jdupont', 'Jean'] | map('cartable_admin_name_problem') | list"
        " + ['0350607v-sdi03'] | map('cartable_host_name_problem') | list }}\"\n", encoding="utf-8")
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.json",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
                            capture_output=True, text=True, cwd=REPO, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    msg = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    assert msg[0] == "" and "'Jean' is not a valid account name" in msg[1] and msg[2] == ""
