"""`cartable filter compile|check`: results a DSI engineer reads, errors with exit 2 and
nothing written."""

from __future__ import annotations

import json
from pathlib import Path

from cartable.cli import main

from filtering_fixtures import SAMPLE, ut1_tree

REPO = Path(__file__).resolve().parents[2]


def test_compile_then_check(tmp_path: Path, capsys) -> None:
    tree = ut1_tree(tmp_path / "ut1", SAMPLE)
    out = tmp_path / "build" / "lists.cfl"
    assert main(["filter", "compile", "--lists", str(tree), "--out", str(out)]) == 0
    assert "5 categories, 8 names" in capsys.readouterr().out
    first = out.read_bytes()
    assert main(["filter", "compile", "--lists", str(tree), "--out", str(out.parent)]) == 0
    assert out.read_bytes() == first
    assert main(["filter", "check", str(out.parent), "www.casino.example", "nothing.example",
                 "10.1.2.3"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert lines == ["www.casino.example: gambling (as casino.example)",
                     "nothing.example: not listed",
                     "10.1.2.3: an IP address (always refused)"]
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"mode": "allowlist", "allow_categories": ["child"]}))
    assert main(["filter", "check", str(out), "--policy", str(policy), "enfants.example",
                 "www.casino.example"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "enfants.example: OK log=child",
        "www.casino.example: ERR message=not-in-allowlist log=not-in-allowlist"]


def test_compile_only_some_categories_of_the_shipped_sample(tmp_path: Path, capsys) -> None:
    out = tmp_path / "lists.cfl"
    assert main(["filter", "compile", "--lists", str(REPO / "data" / "ut1-blacklists"),
                 "--out", str(out), "--categories", "doh", "vpn"]) == 0
    assert "2 categories" in capsys.readouterr().out


def _fails(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_bad_input_exit_2_nothing_written(tmp_path: Path, capsys) -> None:
    tree = ut1_tree(tmp_path / "ut1", SAMPLE)
    out = tmp_path / "out" / "lists.cfl"
    err = _fails(capsys, "filter", "compile", "--lists", str(tree), "--out", str(out),
                 "--categories", "games", "adult")
    assert "'adult' not found" in err and "[--categories]" in err
    err = _fails(capsys, "filter", "compile", "--lists", str(tmp_path / "none"), "--out",
                 str(out))
    assert "does not exist" in err
    assert not out.parent.exists()
    bad = tmp_path / "bad.cfl"
    bad.write_bytes(b"CARTFLT\0" + b"\0" * 100)
    assert "unusable compiled list" in _fails(capsys, "filter", "check", str(bad), "x.example")
    assert main(["filter", "compile", "--lists", str(tree), "--out", str(out)]) == 0
    policy = tmp_path / "p.json"
    policy.write_text('{"block": ["games"],\n "deny": ["http://x.example/"]}')
    err = _fails(capsys, "filter", "check", str(out), "--policy", str(policy), "x.example")
    assert f"{policy}: [deny[0]] 'http://x.example/' is not a domain name" in err
    policy.write_text('{"block": ["games"]\n "deny": []}')
    assert f"{policy}:2: not valid JSON" in _fails(capsys, "filter", "check", str(out),
                                                   "--policy", str(policy), "x.example")
    policy.write_text('{"block": ["adult"]}')
    assert "no category adult" in _fails(capsys, "filter", "check", str(out), "--policy",
                                         str(policy), "x.example")


def test_compile_reports_skipped_lines_with_file_and_line(tmp_path: Path, capsys) -> None:
    tree = ut1_tree(tmp_path / "ut1", {"games": ("black", "ok.example\nhttp://x.example/a\n")})
    assert main(["filter", "compile", "--lists", str(tree), "--out",
                 str(tmp_path / "lists.cfl")]) == 0
    err = capsys.readouterr().err
    assert f"note: {tree / 'games' / 'domains'}:2: skipped 'http://x.example/a'" in err
