"""cartable-history seal|verify|purge: closed days chained by hash; tampering and removal
found and named; retention purges recorded so the chain stays green."""

from __future__ import annotations

import gzip
import os
from datetime import date, timedelta
from pathlib import Path

import pytest

from cartable.history import chain
from cartable.history.cli import main
from cartable.history.formats import HEADER

TODAY = date(2026, 11, 10)


def _day(folder: Path, day: date, lines: int = 3) -> Path:
    path = folder / f"{day.isoformat()}.log"
    body = "".join(f"{day}T10:00:0{i}.000+01:00\t10.35.1.23\t52:54:00:aa:bb:03\t0350607v-sdi03"
                   f"\tGET\thttp://www.example.org/{i}\tALLOWED\t-\tTCP_MISS/200\t100\n"
                   for i in range(lines))
    path.write_text(HEADER + body)
    return path


@pytest.fixture
def history(tmp_path: Path) -> Path:
    folder = tmp_path / "history"
    folder.mkdir()
    for back in (3, 2, 1, 0):
        _day(folder, TODAY - timedelta(days=back))
    (folder / "leases-2026-11-08").write_text("#cartable-history-leases/1\n= journal\n")
    (tmp_path / "dnsmasq.leases").write_text("1764700000 52:54:00:aa:bb:03 10.35.1.23 sdi03 *\n")
    return folder


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _seal(capsys, folder: Path, today: date = TODAY) -> str:
    code, out, _ = _cli(capsys, "seal", "--dir", str(folder), "--today", today.isoformat(),
                        "--leases", str(folder.parent / "dnsmasq.leases"))
    assert code == 0
    return out


def _verify(capsys, folder: Path, today: date = TODAY) -> tuple[int, str]:
    code, out, _ = _cli(capsys, "verify", "--dir", str(folder), "--today", today.isoformat())
    return code, out


def test_seal_closed_days_only_then_verify_is_intact(history: Path, capsys) -> None:
    plain = (history / "2026-11-07.log").read_bytes()
    out = _seal(capsys, history)
    assert "6 file(s) sealed" in out
    names = sorted(p.name for p in history.iterdir())
    assert names == ["2026-11-07.log.gz", "2026-11-08.log.gz", "2026-11-09.log.gz",
                     "2026-11-10.log", "chain", "leases-2026-11-07", "leases-2026-11-08",
                     "leases-2026-11-09"]
    assert gzip.decompress((history / "2026-11-07.log.gz").read_bytes()) == plain
    for name in names:
        if name != "2026-11-10.log":  # today's file is the logger's, untouched
            assert (history / name).stat().st_mode & 0o777 == 0o640, name
    if os.geteuid() == 0:
        assert (history / "2026-11-07.log.gz").stat().st_uid == 0
    # the logger's journal is kept; a day without one gets a snapshot of the leases file
    assert (history / "leases-2026-11-08").read_text().endswith("= journal\n")
    snapshot = (history / "leases-2026-11-07").read_text()
    assert "snapshot of" in snapshot and "52:54:00:aa:bb:03 10.35.1.23 sdi03" in snapshot
    code, out = _verify(capsys, history)
    assert code == 0 and out.startswith("intact: 6 records (6 sealed, 0 purged")
    assert "0 file(s) sealed" in _seal(capsys, history)  # nothing twice
    # the next day, yesterday's file is sealed and appended to the same chain
    _day(history, TODAY + timedelta(days=1))
    assert "2 file(s) sealed" in _seal(capsys, history, TODAY + timedelta(days=1))
    assert _verify(capsys, history, TODAY + timedelta(days=1))[0] == 0


def test_a_changed_byte_is_found_and_named(history: Path, capsys) -> None:
    _seal(capsys, history)
    path = history / "2026-11-08.log.gz"
    data = bytearray(path.read_bytes())
    data[20] ^= 0x01
    path.write_bytes(bytes(data))
    code, out = _verify(capsys, history)
    assert code == 1
    assert out.startswith("BROKEN: 2026-11-08.log.gz: content differs from its seal (chain:")


def test_a_removed_sealed_file_is_found(history: Path, capsys) -> None:
    _seal(capsys, history)
    (history / "leases-2026-11-09").unlink()
    code, out = _verify(capsys, history)
    assert code == 1
    assert out.startswith("BROKEN: leases-2026-11-09: missing: sealed on chain:")
    assert "never purged" in out


def test_an_edited_chain_is_found_at_its_line(history: Path, capsys) -> None:
    _seal(capsys, history)
    lines = (history / "chain").read_text().splitlines(keepends=True)
    del lines[1]  # remove a record (and its file) to hide a day
    (history / "chain").write_text("".join(lines))
    code, out = _verify(capsys, history)
    assert code == 1
    assert out.startswith("BROKEN: chain:2: record of ") and "does not chain" in out


def test_an_old_day_never_sealed_is_reported(history: Path, capsys) -> None:
    assert _verify(capsys, history)[0] == 1  # 2026-11-07 and -08 closed 2+ days ago
    code, out = _verify(capsys, history, TODAY - timedelta(days=1))
    assert code == 1 and "2026-11-07.log: closed on 2026-11-07 but not sealed" in out
    code, out = _verify(capsys, history, TODAY - timedelta(days=2))
    assert code == 0 and "note: 2026-11-07.log: closed, not sealed yet" in out


def test_purge_keeps_366_days_and_the_chain_stays_green(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "h"
    folder.mkdir()
    today = date(2027, 11, 10)
    for age in (368, 367, 366, 365, 1):
        _day(folder, today - timedelta(days=age))
    _seal(capsys, folder, today)
    code, out, _ = _cli(capsys, "purge", "--dir", str(folder), "--keep-days", "366",
                        "--today", today.isoformat())
    assert code == 0 and "4 file(s) purged" in out  # two days, each a log and leases
    left = sorted(p.name for p in folder.glob("*.log.gz"))
    assert left == [f"{(today - timedelta(days=a)).isoformat()}.log.gz" for a in (366, 365, 1)]
    assert not (folder / f"leases-{today - timedelta(days=367)}").exists()
    code, out = _verify(capsys, folder, today)
    assert code == 0 and "(10 sealed, 4 purged by retention)" in out
    # a day later, the 366-day-old file turns 367: it goes, the 365 one (now 366) stays
    code, out, _ = _cli(capsys, "purge", "--dir", str(folder), "--keep-days", "366",
                        "--today", (today + timedelta(days=1)).isoformat())
    assert "2 file(s) purged" in out
    assert _verify(capsys, folder, today + timedelta(days=1))[0] == 0


def test_a_purge_that_hides_a_recent_day_is_found(history: Path, capsys) -> None:
    _seal(capsys, history)
    chain.purge(history, 1, TODAY)  # a "retention" of one day, run by someone
    code, out = _verify(capsys, history)
    assert code == 1
    assert out.startswith("BROKEN: chain:7: purge of 2026-11-07.log.gz 3 days old, by a "
                          "retention of 1 days (expected: 366)")


def test_purge_of_a_file_changed_after_its_seal_is_found(history: Path, capsys) -> None:
    _seal(capsys, history)
    (history / "2026-11-07.log.gz").write_bytes(gzip.compress(b"rewritten\n"))
    code, _, _ = _cli(capsys, "purge", "--dir", str(history), "--keep-days", "366",
                      "--today", "2027-12-01")
    assert code == 0
    code, out = _verify(capsys, history, date(2027, 12, 1))
    assert code == 1 and "2026-11-07.log.gz was changed after its seal" in out


def test_bad_input_exit_2(tmp_path: Path, capsys) -> None:
    code, _, err = _cli(capsys, "seal", "--dir", str(tmp_path / "none"))
    assert code == 2 and "no such folder" in err and "[--dir]" in err
    code, _, err = _cli(capsys, "purge", "--dir", str(tmp_path), "--keep-days", "0")
    assert code == 2 and "[--keep-days]" in err
    code, _, err = _cli(capsys, "verify", "--dir", str(tmp_path), "--today", "2026-13-01")
    assert code == 2 and "not a date: '2026-13-01'" in err
    assert list(tmp_path.iterdir()) == []
