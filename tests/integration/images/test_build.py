"""A real build of the CI image (`essai`): reproducible, extractable, verifiable.

Needs root, mmdebstrap, casync and Debian's mirror: run by tests/integration/images/run.sh
(a CI stage of scripts/test), not by the unit tests.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cartable.cli import main
from cartable.images import store as st

REPO = Path(__file__).resolve().parents[3]
CATALOG = REPO / "images" / "catalog.yml"
CACHE = Path(os.environ.get("CARTABLE_CACHE", REPO / ".cache"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stores") / "dsi"
    assert main(["image", "build", str(CATALOG), "essai", "--out", str(out),
                 "--cache", str(CACHE / "images")]) == 0
    return out


def test_same_catalog_same_packages_same_digest(store: Path, capsys) -> None:
    """A second build (same catalog, same package versions) gives the same digest: nothing is
    published, no chunk is added to the store."""
    manifest = st.read_manifest(store / "essai" / "2026.1")
    assert {"bsdgames", "gnuchess", "locales"} <= manifest["packages"].keys()
    # minbase + the essai set: no kernel, and the manifest says so (the restore refuses it)
    assert manifest["bootable"] is False
    assert (store / "essai" / "latest").read_text() == "2026.1\n"
    chunks = st.store_bytes(store)
    capsys.readouterr()
    assert main(["image", "build", str(CATALOG), "essai", "--out", str(store),
                 "--cache", str(CACHE / "images")]) == 0
    assert "unchanged (same digest), nothing published" in capsys.readouterr().out
    assert st.store_bytes(store) == chunks
    assert not list(store.glob(".build-*"))


def test_restore_side_extracts_and_verifies(store: Path, tmp_path: Path) -> None:
    """What a restore environment does with the store (issue 10): extract, check the digest."""
    version = store / "essai" / "2026.1"
    manifest = st.read_manifest(version)
    target = tmp_path / "root"
    subprocess.run(["casync", "extract", f"--store={version / manifest['store']}",
                    str(version / manifest["index"]), str(target)], check=True)
    digest = subprocess.run(["casync", "digest", *manifest["features"], str(target)],
                            check=True, capture_output=True, text=True).stdout.strip()
    assert digest == manifest["digest"]
    assert (target / "etc" / "default" / "locale").read_text() == "LANG=fr_FR.UTF-8\n"
    assert 'XKBLAYOUT="fr"' in (target / "etc" / "default" / "keyboard").read_text()
    assert os.readlink(target / "etc" / "localtime") == "/usr/share/zoneinfo/Europe/Paris"
    assert os.readlink(target / "etc" / "systemd" / "system" / "cups.service") == "/dev/null"
    assert (target / "usr" / "games" / "arithmetic").exists()
    assert not list((target / "var" / "log").iterdir())
    assert (target / "etc" / "hostname").read_text() == "cartable\n"
