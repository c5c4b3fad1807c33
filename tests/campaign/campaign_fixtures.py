"""A small city for the campaign tests: three real schools of Rennes (demo site), two waves,
two or three hosts each, built into an inventory by `cartable inventory build`, and the
campaign command run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DIRECTORY = REPO / "data" / "annuaire" / "fr-en-annuaire-education-35.csv"
# Rennes: a maternelle, an élémentaire and a primaire (as in the demo site)
MATERNELLE, ELEMENTAIRE, PRIMAIRE = "0350650S", "0350626R", "0350607V"

PLAYBOOK = REPO / "tests" / "campaign" / "playbook.yml"
SMALL = {"dir": 0, "mfp": 0, "bcd": 0, "clr": 0, "sdi": 1, "bwl": 0, "scn": 0}


def build_site(folder: Path, connection: dict[str, Any] | None = None) -> Path:
    """The site file, its hosts.yml and a group_vars/all.yml (local connection by default)."""
    folder.mkdir(parents=True, exist_ok=True)
    site = {
        "name": "campaign-test", "domain": "ecoles.test", "directory": str(DIRECTORY),
        "selection": {"uai": [MATERNELLE, ELEMENTAIRE, PRIMAIRE]},
        "address_plan": {"supernet": "10.35.0.0/16"},
        "academic_proxy": {"host": "proxy.test", "port": 3128},
        "waves": [{"name": "juillet", "uai": [MATERNELLE, ELEMENTAIRE]},
                  {"name": "aout", "uai": [PRIMAIRE]}],
        "overrides": {MATERNELLE: {"equipment": {"dir": 1, "mfp": 0}},
                      ELEMENTAIRE: {"equipment": SMALL}, PRIMAIRE: {"equipment": SMALL}},
    }
    path = folder / "site.yml"
    path.write_text(yaml.safe_dump(site), encoding="utf-8")
    built = cartable("inventory", "build", str(path))
    assert built.returncode == 0, built.stderr
    (folder / "markers").mkdir(exist_ok=True)
    (folder / "group_vars").mkdir(exist_ok=True)
    (folder / "host_vars").mkdir(exist_ok=True)
    all_vars = connection or {"ansible_connection": "local",
                              "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    all_vars = {**all_vars, "campaign_test_dir": str(folder / "markers")}
    (folder / "group_vars" / "all.yml").write_text(yaml.safe_dump(all_vars), encoding="utf-8")
    return path


def host_vars(site: Path, host: str, values: dict[str, Any] | None) -> None:
    """Set (or, with None, remove) a host's variables beside the inventory."""
    path = site.parent / "host_vars" / f"{host}.yml"
    if values is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(yaml.safe_dump(values), encoding="utf-8")


def unreachable(site: Path, school: str, hosts: list[str], port: int) -> None:
    """Every host of a school: ssh to a loopback port where nothing listens."""
    for host in hosts:
        host_vars(site, host, {"ansible_connection": "ssh", "ansible_host": "127.0.0.1",
                               "ansible_port": port, "ansible_ssh_common_args": ""})


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "CI"}
    out["PYTHONPATH"] = str(REPO)
    return out


def cartable(*argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cartable.cli", *argv], capture_output=True,
                          text=True, env=env(), cwd=REPO, check=False, timeout=300, **kwargs)


def start(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cartable.cli", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
                            cwd=REPO)


def status(site: Path, name: str = "playbook") -> dict[str, Any]:
    return json.loads((site.parent / "campaigns" / name / "status.json").read_text())


def free_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
