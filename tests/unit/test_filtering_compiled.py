"""The compiled list: same inputs give the same bytes, suffixes match, a damaged file never
opens."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cartable.errors import InputError
from cartable.filtering.compiled import BuildError, compile_lists, open_build, write_build
from cartable.filtering.lists import read_lists

from filtering_fixtures import SAMPLE, build_file, ut1_tree


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    one = compile_lists(read_lists(ut1_tree(tmp_path / "a", SAMPLE)))
    # the same files, created in another order in another folder, compiled in another run
    two = compile_lists(read_lists(ut1_tree(tmp_path / "b", dict(reversed(SAMPLE.items())))))
    assert hashlib.sha256(one).hexdigest() == hashlib.sha256(two).hexdigest()
    assert compile_lists(read_lists(tmp_path / "a")) == one
    changed = dict(SAMPLE, gambling=("black", "casino.example\npoker.example\n"))
    assert compile_lists(read_lists(ut1_tree(tmp_path / "c", changed))) != one


def test_host_and_parent_suffixes_match_with_their_category(tmp_path: Path) -> None:
    build = open_build(build_file(tmp_path))
    assert build.lookup("a.b.casino.example") == [("casino.example", "gambling")]
    assert build.lookup("casino.example") == [("casino.example", "gambling")]
    assert build.lookup("notcasino.example") == []
    assert build.lookup("example") == []
    # a name in two categories reports both
    assert sorted(build.lookup("www.jeux.example")) == [("jeux.example", "child"),
                                                        ("jeux.example", "games")]
    assert len(build) == 8 and build.counts["games"] == 2
    assert build.usage["vpn"] == ("black", "vpn")
    build.close()


def test_aliases_resolve(tmp_path: Path) -> None:
    import os
    root = ut1_tree(tmp_path / "ut1", {"drogue": ("black", "weed.example\n")})
    os.symlink("drogue", root / "drugs")
    out = tmp_path / "lists.cfl"
    write_build(out, compile_lists(read_lists(root)))
    build = open_build(out)
    assert build.resolve("drugs") == "drogue" and build.resolve("drogue") == "drogue"
    assert build.resolve("adult") is None
    build.close()


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b[:40], "truncated"),
    (lambda b: b"", "shorter than the header"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "SHA-256 mismatch"),
    (lambda b: b"NOTAFILE" + b[8:], "bad magic"),
    (lambda b: b + b"\0" * 10, "truncated or corrupt"),
])
def test_damaged_builds_do_not_open(tmp_path: Path, damage, message: str) -> None:
    good = build_file(tmp_path)
    bad = tmp_path / "bad.cfl"
    bad.write_bytes(damage(good.read_bytes()))
    with pytest.raises(BuildError, match=message):
        open_build(bad)


def test_absent_build_does_not_open(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="No such file"):
        open_build(tmp_path / "nothing.cfl")


def test_write_build_leaves_no_partial_file(tmp_path: Path) -> None:
    out = build_file(tmp_path)
    before = out.read_bytes()
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(InputError, match="nothing written"):
        write_build(not_a_folder / "lists.cfl", before)
    # a rewrite replaces the file by rename: a reader holding the old one keeps it intact
    old = open_build(out)
    changed = compile_lists(read_lists(ut1_tree(tmp_path / "new", {"games": ("black",
                                                                              "x.example\n")})))
    write_build(out, changed)
    assert old.lookup("casino.example") == [("casino.example", "gambling")]
    assert open_build(out).lookup("x.example") == [("x.example", "games")]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    old.close()


def test_the_prefilter_never_hides_a_listed_name(tmp_path: Path) -> None:
    names = [f"n{i}.example{i % 7}.org" for i in range(5000)]
    out = build_file(tmp_path, {"big": ("black", "\n".join(names) + "\n")})
    build = open_build(out)
    assert all(build.lookup(f"www.{n}") == [(n, "big")] for n in names)
    misses = sum(bool(build.lookup(f"x{i}.unlisted.example")) for i in range(5000))
    assert misses == 0
    build.close()
