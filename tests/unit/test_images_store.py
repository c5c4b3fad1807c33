"""The image store's formats: casync index reading, manifests, versions, changelog."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from cartable.cli import main
from cartable.errors import InputError
from cartable.images import store as st
from cartable.images.build import bootable
from cartable.images.changelog import as_markdown, as_text, changes


def _index(path: Path, chunks: list[tuple[int, bytes]]) -> None:
    """A casync index as casync writes it (caformat.h): header, table, items, tail."""
    data = struct.pack("<QQQQQQ", 48, 0x96824D9C7B129FF9, 0, 16384, 65536, 262144)
    data += struct.pack("<QQ", 2**64 - 1, 0xE75B9E112F17417D)
    for end, digest in chunks:
        data += struct.pack("<Q", end) + digest
    data += struct.pack("<QQQQQ", 0, 0, 48, 16 + 40 * len(chunks) + 40, 0x4B4F050E5549ECD1)
    path.write_bytes(data)


def test_read_index(tmp_path: Path) -> None:
    ids = [bytes([i]) * 32 for i in (1, 2, 1)]
    _index(tmp_path / "a.caidx", list(zip((70000, 150000, 220000), ids)))
    chunks = st.read_index(tmp_path / "a.caidx")
    assert [c.end for c in chunks] == [70000, 150000, 220000]
    assert chunks[0].id == "01" * 32 and len({c.id for c in chunks}) == 2
    assert st.chunk_path(tmp_path, chunks[1].id) == tmp_path / "chunks.castr" / "0202" / f"{'02' * 32}.cacnk"
    (tmp_path / "b.caidx").write_text("hello")
    with pytest.raises(InputError, match="not a casync index"):
        st.read_index(tmp_path / "b.caidx")


def _manifest(folder: Path, version: str, packages: dict[str, str], requested: list[str]) -> Path:
    folder.mkdir(parents=True)
    st.write_manifest(folder / st.MANIFEST, {"format": 1, "image": "cycle2", "version": version,
                                             "packages": packages, "requested": requested})
    return folder


def test_latest_versions_compares_numbers(tmp_path: Path) -> None:
    for version in ("2026.2", "2026.10", "2026.9"):
        _manifest(tmp_path / "cycle2" / version, version, {}, [])
    assert st.latest_versions(tmp_path) == {"cycle2": "2026.10"}


def test_changelog_text_and_markdown(tmp_path: Path, capsys) -> None:
    old = _manifest(tmp_path / "cycle2" / "2026.1", "2026.1",
                    {"tuxmath": "2.0.3-7", "libc6": "2.36-9+deb12u4", "old-lib": "1.0-1"},
                    ["tuxmath"])
    new = _manifest(tmp_path / "cycle2" / "2026.2", "2026.2",
                    {"tuxmath": "2.0.3-7", "libc6": "2.36-9+deb12u10", "kbruch": "4:22.12.3-1"},
                    ["kbruch", "tuxmath"])
    diff = changes(st.read_manifest(old), st.read_manifest(new))
    assert diff.added == [("kbruch", "4:22.12.3-1")] and diff.removed == [("old-lib", "1.0-1")]
    assert diff.upgraded == [("libc6", "2.36-9+deb12u4", "2.36-9+deb12u10")]  # not text order
    assert "cycle2 2026.1 -> 2026.2: 1 added, 1 removed, 1 upgraded" in as_text(diff)
    assert "| libc6 | 2.36-9+deb12u4 | 2.36-9+deb12u10 | upgraded |" in as_markdown(diff)
    assert "**kbruch** added" in as_markdown(diff)
    assert main(["image", "changelog", str(old), str(new / st.MANIFEST), "--markdown"]) == 0
    assert "## cycle2 2026.1 → 2026.2" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text(json.dumps({"format": 7}))
    assert main(["image", "changelog", str(old), str(tmp_path / "bad.json")]) == 2
    assert "not a Cartable image manifest" in capsys.readouterr().err


def _image(version: str):
    from cartable.images.catalog import Image
    return Image("essai", "Essai", version, "minimal", (), (), 1, 1, {})


def _built(tmp_path: Path, digest: str, version: str) -> tuple[Path, dict]:
    """What a build leaves before publishing: an index in a work folder and its manifest."""
    work = tmp_path / f"work-{len(list(tmp_path.iterdir()))}"
    work.mkdir()
    (work / st.INDEX).write_bytes(b"index " + digest.encode())
    return work / st.INDEX, {"format": 1, "image": "essai", "version": version,
                             "packages": {}, "digest": digest}


def test_publish_unchanged_refused_or_point_release(tmp_path: Path) -> None:
    from cartable.images.build import _publish
    store = tmp_path / "store"
    logs: list[str] = []
    _publish(store, _image("2026.1"), *_built(tmp_path, "aaa", "2026.1"), logs.append)
    assert (store / "essai" / "latest").read_text() == "2026.1\n"
    same = _publish(store, _image("2026.1"), *_built(tmp_path, "aaa", "2026.1b"), logs.append)
    assert same["digest"] == "aaa" and "unchanged (same digest)" in logs[-1]
    with pytest.raises(InputError, match="already published with other content"):
        _publish(store, _image("2026.1"), *_built(tmp_path, "bbb", "2026.1"), logs.append)
    point = _publish(store, _image("2026.1"), *_built(tmp_path, "bbb", "2026.1"), logs.append,
                     point_release=True)
    assert point["version"] == "2026.1.1" and (store / "essai" / "latest").read_text() == "2026.1.1\n"
    again = _publish(store, _image("2026.1"), *_built(tmp_path, "bbb", "2026.1"), logs.append,
                     point_release=True)
    assert again["version"] == "2026.1.1"          # the newest point release is unchanged
    assert st.read_manifest(store / "essai" / "2026.1.1")["digest"] == "bbb"


def test_point_release_is_not_a_version_going_backwards() -> None:
    from cartable.images.catalog import read_catalog
    catalog = read_catalog(Path(__file__).resolve().parents[2] / "images" / "catalog.yml")
    from cartable.images.catalog import check_versions
    check_versions(catalog, {"essai": "2026.1.3"})
    with pytest.raises(InputError, match="goes backwards: 2026.2.1 is already built"):
        check_versions(catalog, {"essai": "2026.2.1"})


def test_bootable_follows_debians_kernel_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    assert not bootable(root)  # a catalog image on minbase: no kernel
    (root / "boot/vmlinuz-6.1.0-28-amd64").write_bytes(b"k")
    (root / "vmlinuz").symlink_to("boot/vmlinuz-6.1.0-28-amd64")
    (root / "initrd.img").symlink_to("boot/initrd.img-6.1.0-28-amd64")
    assert not bootable(root)  # the initramfs was never generated: a dangling link
    (root / "boot/initrd.img-6.1.0-28-amd64").write_bytes(b"i")
    assert bootable(root)
    (root / "initrd.img").unlink()
    (root / "initrd.img").symlink_to("/boot/initrd.img-6.1.0-28-amd64")  # absolute: read inside the tree
    assert bootable(root)
