"""The image catalog: shape, packages against Debian's lists, resolution, versions; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cartable.cli import main
from cartable.errors import InputError
from cartable.images import archive
from cartable.images.catalog import check_packages, check_versions, read_catalog, request
from cartable.images.debver import catalog_version_key, compare

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "images" / "catalog.yml"
PACKAGES = REPO / "tests" / "fixtures" / "images" / "Packages.xz"


@pytest.fixture(scope="module")
def index() -> archive.Index:
    return archive.parse_index(archive.read_text(PACKAGES))


def _catalog(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "catalog.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("a, b", [
    ("1.0~rc1", "1.0"), ("1.0", "1.0-1"), ("1.0-1", "1.0-2"), ("2.4", "2.30"),
    ("2.36-9", "2.36-9+deb12u4"), ("2.0", "1:0.1"), ("1.0a", "1.0+b1"), ("7.0.0~", "7.0.0"),
])
def test_debian_version_order(a: str, b: str) -> None:
    assert compare(a, b) < 0 and compare(b, a) > 0 and compare(a, a) == 0


def test_catalog_version_numbers() -> None:
    assert catalog_version_key("2026.10") > catalog_version_key("2026.9")  # not text order
    assert catalog_version_key("2026.1-beta") is None


def test_relations_alternatives_versions_arch_qualifiers() -> None:
    deps = archive.parse_relations("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any")
    assert [[str(d) for d in group] for group in deps] == [
        ["libc6 (>= 2.34)"], ["debconf (>= 0.5)", "debconf-2.0"], ["python3"]]


def test_the_repository_catalog_installs(index: archive.Index) -> None:
    catalog = read_catalog(CATALOG)
    results = check_packages(catalog, index)
    assert set(results) == {"cycle1", "cycle2", "cycle3", "bureautique", "bcd", "essai"}
    # the levels nest: what cycle 1 installs, cycle 3 installs too
    assert set(results["cycle1"].installed) <= set(results["cycle3"].installed)
    assert {"gcompris-qt", "tuxmath", "kbruch", "libreoffice-calc"} <= set(results["cycle3"].installed)
    # every image gets what its settings need: French locale, keyboard, printing client
    assert {"locales", "keyboard-configuration", "cups-client"} <= set(request(catalog, catalog.images["essai"]))
    assert results["essai"].installed_kb < 400 * 1024  # CI's image stays small


def test_virtual_packages_resolve_through_provides(index: archive.Index) -> None:
    result = archive.resolve(index, ["gcompris-qt"])
    assert not result.missing and not result.unresolved
    assert "gcompris-qt-data" in result.installed


def test_unknown_package_names_file_line_and_value(tmp_path: Path, index: archive.Index) -> None:
    path = _catalog(tmp_path, lambda d: d["sets"]["cycle2"].append("tuxmaths"))
    with pytest.raises(InputError) as err:
        check_packages(read_catalog(path), index)
    message = str(err.value)
    assert f"{path}:{_line_of(path, '- tuxmaths')}:" in message
    assert "unknown package 'tuxmaths'" in message and "packages.debian.org/bookworm/tuxmaths" in message


def test_a_set_that_does_not_install(tmp_path: Path, index: archive.Index) -> None:
    path = _catalog(tmp_path, lambda d: d["images"]["essai"].update(packages=["kstars"]))
    with pytest.raises(InputError) as err:
        check_packages(read_catalog(path), index, ["essai"])
    assert f"{path}:{_line_of(path, '- kstars')}:" in str(err.value)
    assert "kstars depends on 'kstars-data (= 5:3.6.2-2)'" in str(err.value)


@pytest.mark.parametrize("edit, needle, expected", [
    (lambda d: d["images"]["essai"].update(base="lourd"), "base: lourd",
     "image 'essai' names unknown base 'lourd'"),
    (lambda d: d["images"]["essai"].update(sets=["cycle4"]), "- cycle4",
     "unknown package set 'cycle4'"),
    (lambda d: d["images"]["essai"].update(version="v2"), "version: v2",
     "version 'v2' of image 'essai' is not numbers"),
    (lambda d: d["sets"]["essai"].append("Tux Paint"), "Tux Paint",
     "'Tux Paint' is not a Debian package name"),
    (lambda d: d["settings"].update(proxy="squid"), "proxy: squid", "'squid' is not one of"),
    (lambda d: d["debian"].update(pockets=["updates", "backports"]), "- backports",
     "'backports' is not one of: updates, security"),
])
def test_shape_errors(tmp_path: Path, edit, needle: str, expected: str) -> None:
    path = _catalog(tmp_path, edit)
    with pytest.raises(InputError) as err:
        read_catalog(path)
    assert f"{path}:{_line_of(path, needle)}:" in str(err.value) and expected in str(err.value)


def test_pockets_choose_the_build_sources(tmp_path: Path) -> None:
    from cartable.images.build import mmdebstrap_command
    default = read_catalog(CATALOG)
    assert default.debian.pockets == ("updates", "security")
    release = read_catalog(_catalog(tmp_path, lambda d: d["debian"].update(pockets=[])))

    def sources(catalog) -> list[str]:
        cmd = mmdebstrap_command(catalog, catalog.image("essai"), tmp_path, tmp_path, tmp_path)
        return [a for a in cmd if a.startswith("deb ")]
    assert sources(default) == ["deb http://deb.debian.org/debian bookworm main",
                                "deb http://deb.debian.org/debian bookworm-updates main",
                                "deb http://deb.debian.org/debian-security bookworm-security main"]
    assert sources(release) == ["deb http://deb.debian.org/debian bookworm main"]


def test_version_going_backwards(tmp_path: Path) -> None:
    catalog = read_catalog(CATALOG)
    check_versions(catalog, {"essai": "2025.3", "cycle1": "2026.1"})  # older or equal: fine
    with pytest.raises(InputError) as err:
        check_versions(catalog, {"essai": "2026.10"})
    lines = CATALOG.read_text().splitlines()
    line = max(i for i, text in enumerate(lines, 1) if 'version: "2026.1"' in text)  # essai is last
    assert f"{CATALOG}:{line}: [images.essai.version] version 2026.1 of image 'essai' goes " \
        "backwards: 2026.10 is already built" in str(err.value)


def test_cli_check_ok_and_errors_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["image", "check", str(CATALOG), "--packages", str(PACKAGES)]) == 0
    assert "essai 2026.1: " in capsys.readouterr().out
    store = tmp_path / "store"
    (store / "essai" / "2026.3").mkdir(parents=True)
    (store / "essai" / "2026.3" / "manifest.json").write_text(json.dumps(
        {"format": 1, "image": "essai", "version": "2026.3", "packages": {}}))
    assert main(["image", "check", str(CATALOG), "--packages", str(PACKAGES),
                 "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "goes backwards: 2026.3 is already built" in err and "Traceback" not in err
    assert main(["image", "check", str(tmp_path), "--packages", str(PACKAGES)]) == 2
    assert "this is a folder" in capsys.readouterr().err


def test_cli_build_refuses_unknown_image_before_anything(tmp_path: Path, capsys) -> None:
    out = tmp_path / "store"
    assert main(["image", "build", str(CATALOG), "cycle9", "--out", str(out),
                 "--packages", str(PACKAGES)]) == 2
    assert "unknown image 'cycle9'" in capsys.readouterr().err and not out.exists()


def test_fixture_is_the_trimmed_real_index() -> None:
    """trim() keeps the named stanzas and the resolver's fields: trimming the fixture again
    with every name it holds gives the same packages."""
    text = archive.read_text(PACKAGES)
    names = set(archive.parse_index(text).packages)
    again = archive.parse_index(archive.trim(text, names))
    assert set(again.packages) == names and again.packages["libc6"].version.startswith("2.36-9")
