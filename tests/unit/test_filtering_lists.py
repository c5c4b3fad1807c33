"""Reading UT1 categories: the layout's quirks, and what counts as a name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cartable.errors import InputError
from cartable.filtering.lists import is_ip_literal, normalize_name, read_lists

from filtering_fixtures import ut1_tree

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("raw, name", [
    ("Example.ORG", "example.org"),
    ("example.org.", "example.org"),
    ("*.example.org", "example.org"),
    (".example.org", "example.org"),
    ("  www.example.org \r", "www.example.org"),
    ("bücher.example", "xn--bcher-kva.example"),
    ("_video-bagarre.com", "_video-bagarre.com"),
])
def test_names_are_normalised(raw: str, name: str) -> None:
    assert normalize_name(raw) == name


@pytest.mark.parametrize("raw", ["", "   ", "example.org/path", "exa mple.org", "a..b",
                                 "-bad.example", "x" * 64 + ".example"])
def test_bad_names_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        normalize_name(raw)


@pytest.mark.parametrize("host", ["1.2.3.4", "[2001:db8::1]", "2001:db8::1", "fe80::1%eth0",
                                  "2130706433", "0x7f.1", "127.1", "10.0.0.1."])
def test_ip_literals_are_recognised(host: str) -> None:
    assert is_ip_literal(host)


@pytest.mark.parametrize("host", ["example.org", "1example.org", "www.123.example", "x.0xgame"])
def test_names_are_not_ip_literals(host: str) -> None:
    assert not is_ip_literal(host)


def test_comments_blank_lines_and_bad_lines(tmp_path: Path) -> None:
    root = ut1_tree(tmp_path / "ut1", {
        "games": ("black", "# a comment\n\nJEUX.example.\nplay.example # trailing\n"
                           "http://bad.example/path\nbücher.example\n"),
    })
    lists = read_lists(root)
    (games,) = lists.categories
    assert games.domains == {"jeux.example", "play.example", "xn--bcher-kva.example"}
    assert games.skipped == 1
    assert games.notes and "domains:5" in games.notes[0] and "http://bad.example/path" \
        in games.notes[0]


def test_symlinked_category_is_an_alias_and_missing_domains_compiles_empty(tmp_path: Path) \
        -> None:
    root = ut1_tree(tmp_path / "ut1", {"drogue": ("black", "weed.example\n"),
                                       "onlyurls": ("black", None)})
    (root / "onlyurls" / "urls").write_text("example.org/page\n")
    os.symlink("drogue", root / "drugs")
    (root / "global_usage").write_text("NAME: drogue\n")
    lists = read_lists(root)
    assert [c.name for c in lists.categories] == ["drogue", "onlyurls"]
    assert lists.aliases == {"drugs": "drogue"}
    onlyurls = lists.categories[1]
    assert onlyurls.domains == frozenset() and "no domains file" in onlyurls.notes[0]
    # selected alone, an alias is read under its own name
    alone = read_lists(root, ["drugs"])
    assert [c.name for c in alone.categories] == ["drugs"] and alone.aliases == {}
    assert alone.categories[0].domains == {"weed.example"}


def test_unknown_category_or_folder_is_an_input_error(tmp_path: Path) -> None:
    root = ut1_tree(tmp_path / "ut1", {"games": ("black", "a.example\n")})
    with pytest.raises(InputError) as err:
        read_lists(root, ["games", "adult"])
    assert "'adult' not found" in str(err.value) and "games" in str(err.value)
    with pytest.raises(InputError, match="does not exist"):
        read_lists(tmp_path / "nowhere")


def test_the_shipped_sample_reads_with_usage_and_no_skipped_line() -> None:
    lists = read_lists(REPO / "data" / "ut1-blacklists")
    by_name = {c.name: c for c in lists.categories}
    assert "white" in by_name["liste_blanche"].usage and "black" in by_name["games"].usage
    assert len(by_name["redirector"].domains) > 100_000
    assert all(c.skipped == 0 for c in lists.categories)
