"""Shared fixtures: the real school directory and small site files written per test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DIRECTORY = REPO / "data" / "annuaire" / "fr-en-annuaire-education-35.csv"
NEWER = REPO / "tests" / "fixtures" / "annuaire-newer-schema.csv"
RESTORE = REPO / "netboot" / "initramfs" / "cartable-restore"


def restore_function(function: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """One function of netboot's restore script, run in dash (the restore environment's /bin/sh)
    with the script loaded as a library (CARTABLE_RESTORE_LIB=1: main does not run)."""
    shell = shutil.which("dash") or "sh"
    return subprocess.run([shell, "-c", f'. "{RESTORE}"; {function} "$@"', function, *args], input=stdin,
                          capture_output=True, text=True, env={"CARTABLE_RESTORE_LIB": "1", "PATH": "/usr/bin:/bin"},
                          check=False)

# Rennes: a maternelle, an élémentaire and a primaire (as in the demo site)
MATERNELLE, ELEMENTAIRE, PRIMAIRE = "0350650S", "0350626R", "0350607V"


def site_data(**changes: object) -> dict:
    data: dict = {
        "name": "test",
        "domain": "ecoles.test",
        "directory": str(DIRECTORY),
        "selection": {"uai": [MATERNELLE, ELEMENTAIRE, PRIMAIRE]},
        "address_plan": {"supernet": "10.35.0.0/16"},
        "academic_proxy": {"host": "proxy.test", "port": 3128},
    }
    data.update(changes)
    return data


@pytest.fixture
def make_site(tmp_path: Path):
    """Write a site file (the demo's shape, overridable) in tmp_path/site; return its path."""

    def make(text: str | None = None, **changes: object) -> Path:
        folder = tmp_path / "site"
        folder.mkdir(exist_ok=True)
        path = folder / "site.yml"
        path.write_text(text if text is not None else yaml.safe_dump(site_data(**changes)),
                        encoding="utf-8")
        return path

    return make
