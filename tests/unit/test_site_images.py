"""The site file's images: catalog entries per room kind, a school's own per room kind."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cartable.cli import main
from conftest import ELEMENTAIRE, PRIMAIRE, REPO

CATALOG = str(REPO / "images" / "catalog.yml")


def _hosts(path: Path) -> dict:
    assert main(["inventory", "build", str(path)]) == 0
    return yaml.safe_load((path.parent / "hosts.yml").read_text())["all"]["children"]


def test_images_per_room_kind_and_school_override(make_site) -> None:
    path = make_site(catalog=CATALOG, images={"computer_room": "cycle3", "bcd": "bcd",
                                              "direction": "bureautique"},
                     overrides={PRIMAIRE: {"images": {"computer_room": "cycle2"}}})
    inv = _hosts(path)
    ele = inv[f"school_{ELEMENTAIRE.lower()}"]["hosts"]
    pri = inv[f"school_{PRIMAIRE.lower()}"]["hosts"]
    assert ele[f"{ELEMENTAIRE.lower()}-sdi01"]["cartable_image"] == "cycle3"
    assert pri[f"{PRIMAIRE.lower()}-sdi01"]["cartable_image"] == "cycle2"      # its override
    assert pri[f"{PRIMAIRE.lower()}-bcd01"]["cartable_image"] == "bcd"          # the site's
    assert pri[f"{PRIMAIRE.lower()}-dir01"]["cartable_image"] == "bureautique"


@pytest.mark.parametrize("changes, field", [
    ({"images": {"computer_room": "cycle4"}}, "[images.computer_room]"),
    ({"images": {"bcd": "bcd"}, "overrides": {PRIMAIRE: {"images": {"class": "salle-info"}}}},
     f"[overrides.{PRIMAIRE}.images.class]"),
])
def test_unknown_image_is_refused_with_line(make_site, capsys, changes: dict, field: str) -> None:
    path = make_site(catalog=CATALOG, **changes)
    assert main(["inventory", "build", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and field in err and "unknown image" in err
    assert "images of the catalog: bcd, bureautique, cycle1, cycle2, cycle3, essai" in err
    assert not (path.parent / "hosts.yml").exists()


def test_missing_catalog_file(make_site, capsys) -> None:
    path = make_site(catalog="nowhere/catalog.yml", images={"bcd": "bcd"})
    assert main(["inventory", "check", str(path)]) == 2
    assert "image catalog" in capsys.readouterr().err


def test_without_catalog_names_are_free_text(make_site) -> None:
    inv = _hosts(make_site(images={"computer_room": "salle-info-2026.1"}))
    hosts = inv[f"school_{ELEMENTAIRE.lower()}"]["hosts"]
    assert hosts[f"{ELEMENTAIRE.lower()}-sdi01"]["cartable_image"] == "salle-info-2026.1"


def test_lab_site_inherits_the_catalog_path() -> None:
    """`catalog:` in the demo is relative to the demo; the lab extends it from another folder."""
    assert main(["inventory", "check", str(REPO / "inventories" / "lab" / "site.yml")]) == 0
