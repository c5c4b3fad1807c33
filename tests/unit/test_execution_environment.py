"""execution-environment.yml: `ansible-builder create` writes a build context (no registry,
no network) whose Containerfile and requirement files hold what Cartable needs."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BUILDER = Path(sys.executable).parent / "ansible-builder"
COLLECTIONS = Path(yaml.__file__).parents[1] / "ansible_collections"
# ns.collection.name anywhere in the files Ansible reads when it runs the playbooks
FQCN = re.compile(r"(?<![\w.])([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)(?![\w.])")


def _pins() -> dict[str, str]:
    """name -> version of every `name==version` in pyproject.toml (runtime and dev)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return dict(spec.split("==", 1) for spec in specs if "==" in spec)


def _collections_used() -> dict[str, set[str]]:
    """Collections named by the roles (molecule scenarios aside), playbooks and ansible.cfg."""
    namespaces = {p.name for p in COLLECTIONS.iterdir() if p.is_dir()}
    files = [REPO / "ansible.cfg", *REPO.glob("playbooks/**/*.yml")]
    for part in ("tasks", "handlers", "templates", "defaults", "vars"):
        files += REPO.glob(f"roles/*/{part}/**/*")
    used: dict[str, set[str]] = {}
    for path in files:
        if not path.is_file():
            continue
        for match in FQCN.finditer(path.read_text(encoding="utf-8", errors="replace")):
            name = f"{match[1]}.{match[2]}"
            if match[1] in namespaces and name != "ansible.builtin":
                used.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return used


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ee") / "context"
    done = subprocess.run(
        [str(BUILDER), "create", "--file", "execution-environment.yml", "--context", str(folder),
         "--output-filename", "Containerfile"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


def test_containerfile_installs_the_pinned_ansible_core_and_runner(context: Path) -> None:
    pins = _pins()
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]*)"', containerfile, re.M)
    assert refs, containerfile
    assert set(refs[1].split()) == {f"ansible-core=={pins['ansible-core']}",
                                    f"ansible-runner=={pins['ansible-runner']}"}
    # Python >= 3.12 (ansible-core 2.21), the base image a build argument with a default
    assert 'ARG PYCMD="/usr/bin/python3.12"' in containerfile
    definition = yaml.safe_load((REPO / "execution-environment.yml").read_text(encoding="utf-8"))
    base = definition["images"]["base_image"]["name"]
    assert f'ARG EE_BASE_IMAGE="{base}"' in containerfile
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile
    assert "COPY _build/requirements.txt requirements.txt" in containerfile
    assert "COPY _build/bindep.txt bindep.txt" in containerfile


def test_python_requirements_are_the_controllers_pins(context: Path) -> None:
    pins = _pins()
    wanted = {"ansible", "jinja2", "netaddr", "pyyaml"}  # collections, templates, ipaddr, YAML
    lines = (context / "_build" / "requirements.txt").read_text(encoding="utf-8").split()
    assert sorted(lines) == sorted(f"{name}=={pins[name]}" for name in wanted)


def test_system_requirements_have_the_ssh_client(context: Path) -> None:
    bindep = (context / "_build" / "bindep.txt").read_text(encoding="utf-8")
    assert "openssh-clients [platform:rpm]" in bindep.splitlines()


def test_every_collection_used_is_in_the_ansible_package_and_the_galaxy_list() -> None:
    used = _collections_used()
    assert {"ansible.posix", "community.general", "ansible.utils"} <= set(used), used
    listed = {entry["name"] for entry in yaml.safe_load(
        (REPO / "ee" / "requirements.yml").read_text(encoding="utf-8"))["collections"]}
    missing = {name: sorted(where) for name, where in used.items() if name not in listed}
    assert not missing, f"add these collections to ee/requirements.yml: {missing}"
    # the venv's `ansible` is the EE's pin: every collection used ships with it
    for name in used:
        namespace, collection = name.split(".")
        assert (COLLECTIONS / namespace / collection / "MANIFEST.json").is_file(), name
