"""cartable-history-logger: squid's logfile-daemon protocol on a real pipe, the enrichment
(name, MAC), leases reloaded, garbage kept, day rollover, R/O reopen, never an early exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cartable.history.formats import FIELDS, HEADER, LOGFORMAT
from cartable.history.hosts import Resolver
from cartable.history.logger import DayFiles, read_settings

from history_fixtures import squid, stamp, write_inputs

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 2)
PARIS = ZoneInfo("Europe/Paris")


def _rows(path: Path) -> list[dict[str, str]]:
    lines = path.read_text().splitlines()
    assert lines[0] + "\n" == HEADER
    return [dict(zip(FIELDS, line.split("\t"), strict=True)) for line in lines[1:]]


def _run(args: list[str], stdin: bytes, tz: str = "Europe/Paris") -> subprocess.CompletedProcess:
    env = dict(os.environ, TZ=tz, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "cartable.history.logger", *args], input=stdin,
                          capture_output=True, env=env, timeout=20, check=False)


def test_squid_protocol_over_a_pipe_name_mac_and_garbage(tmp_path: Path) -> None:
    _, _, config = write_inputs(tmp_path)
    out = tmp_path / "history"
    out.mkdir()
    now = time.time()
    lines = [
        "r10", "b0",  # what squid sends first (rotate count, buffering): no effect
        "L" + squid(now, "10.35.1.23"),  # inventory host, MAC from hosts.json
        "L" + squid(now, "10.35.1.104", "TCP_DENIED/403", "CONNECT", "casino.example:443",
                    "gambling"),  # a lease whose MAC is in the inventory: inventory name
        "L" + squid(now, "10.35.1.109", eui="52-54-00-AA-BB-99"),  # squid's %>eui wins
        # nobody knows it (v4-mapped: as IPv4); squid 5.7 logs an all-zero %>eui when it has
        # no ARP entry (seen with a real squid on loopback): no MAC
        "L" + squid(now, "::ffff:10.35.1.200", eui="00:00:00:00:00:00"),
        "F",
        "Lnot\ta squid line",  # garbage: kept, escaped, with '-' fields
        "L",  # an empty log line
        "T", "O",
        "L" + squid(now, "10.35.1.23", url="http://www.example.org/\udcff"[:-1] + "é"),
    ]
    data = ("\n".join(lines) + "\n").encode() + b"Lbad \xff\xfe bytes\n" + b"Lno newline"
    done = _run(["--config", str(config), str(out)], data)
    assert done.returncode == 0, done.stderr
    files = list(out.glob("*.log"))
    today = datetime.fromtimestamp(now, PARIS).date().isoformat()  # the server's local day
    assert [f.name for f in files] == [f"{today}.log"]
    assert files[0].stat().st_mode & 0o777 == 0o640
    rows = _rows(files[0])
    assert [(r["ip"], r["mac"], r["name"]) for r in rows[:4]] == [
        ("10.35.1.23", "52:54:00:aa:bb:03", "0350607v-sdi03"),
        ("10.35.1.104", "52:54:00:aa:bb:04", "0350607v-sdi04"),
        ("10.35.1.109", "52:54:00:aa:bb:99", "pupil-laptop"),
        ("10.35.1.200", "-", "-")]
    assert (rows[1]["verdict"], rows[1]["category"], rows[1]["url"], rows[1]["status"]) == (
        "BLOCKED", "gambling", "casino.example:443", "TCP_DENIED/403")
    assert (rows[0]["verdict"], rows[0]["category"], rows[0]["bytes"]) == ("ALLOWED", "-", "1234")
    logged = datetime.fromisoformat(rows[0]["time"])
    assert abs(logged.timestamp() - now) < 0.001
    assert logged.utcoffset() == datetime.fromtimestamp(now, PARIS).utcoffset()
    assert rows[4]["url"] == "not\\ta squid line" and rows[4]["verdict"] == "-"
    assert rows[5]["url"] == "-"
    assert rows[6]["url"] == "http://www.example.org/é" and rows[6]["name"] == "0350607v-sdi03"
    assert rows[7]["url"] == "bad \\\\xff\\\\xfe bytes" and rows[8]["url"] == "no newline"
    assert len(rows) == 9
    journal = (out / f"leases-{today}").read_text()
    assert "= 1764700000 52:54:00:aa:bb:09 10.35.1.109 pupil-laptop" in journal


def test_missing_settings_folder_or_lines_never_stop_it(tmp_path: Path) -> None:
    done = _run(["--config", str(tmp_path / "none.json"), str(tmp_path / "no-folder")],
                ("L" + squid(time.time(), "10.0.0.1") + "\nR\nF\n").encode())
    assert done.returncode == 0
    assert "none.json: not found, using the defaults" in done.stderr.decode()
    assert "cannot open" in done.stderr.decode() and "no-folder" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


def test_sigterm_after_squid_closed_the_pipe_loses_nothing(tmp_path: Path) -> None:
    _, _, config = write_inputs(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "cartable.history.logger", "--config",
                             str(config), str(tmp_path)], stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    proc.stdin.write("".join("L" + squid(time.time(), "10.35.1.23", url=f"http://a/{i}") + "\n"
                             for i in range(2000)).encode())
    proc.stdin.close()  # squid: comm_close, then kill(SIGTERM)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    rows = _rows(tmp_path / f"{date.today().isoformat()}.log")
    assert [r["url"] for r in rows] == [f"http://a/{i}" for i in range(2000)]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _files(tmp: Path, now: float) -> tuple[DayFiles, Clock, Path, list[str]]:
    hosts, leases, config = write_inputs(tmp)
    settings, notes = read_settings(config)
    assert notes == []
    folder = tmp / "history"
    folder.mkdir()
    clock = Clock(now)
    warnings: list[str] = []
    files = DayFiles(folder, Resolver(settings.hosts, settings.leases, 1.0), clock,
                     warnings.append)
    return files, clock, leases, warnings


def test_lease_changes_are_picked_up_and_journaled(tmp_path: Path) -> None:
    files, clock, leases, _ = _files(tmp_path, stamp(DAY, 9))
    files.command(("L" + squid(clock.now, "10.35.1.150")).encode())
    leases.write_text("1764700000 52:54:00:aa:bb:50 10.35.1.150 new-tablet *\n")
    os.utime(leases, (clock.now + 5, clock.now + 5))
    files.command(("L" + squid(clock.now, "10.35.1.150")).encode())  # within 1 s: not re-read
    clock.now += 2
    files.command(("L" + squid(clock.now, "10.35.1.150")).encode())
    files.flush()
    rows = _rows(files.folder / "2026-11-02.log")
    assert [(r["mac"], r["name"]) for r in rows] == [
        ("-", "-"), ("-", "-"), ("52:54:00:aa:bb:50", "new-tablet")]
    journal = (files.folder / "leases-2026-11-02").read_text().splitlines()
    assert any(line.endswith("\t+ 1764700000 52:54:00:aa:bb:50 10.35.1.150 new-tablet *")
               for line in journal)
    assert any("\t- 1764700000 52:54:00:aa:bb:09" in line for line in journal)


def test_day_rollover_writes_the_new_days_file_and_never_goes_back(tmp_path: Path) -> None:
    files, clock, _, _ = _files(tmp_path, stamp(DAY, 23, 59, 59.5))
    files.command(("L" + squid(clock.now, "10.35.1.23", url="http://before/")).encode())
    clock.now += 1.0  # 00:00:00.5 the next day; the request itself ended before midnight
    files.command(("L" + squid(clock.now - 0.9, "10.35.1.23", url="http://late/")).encode())
    clock.now -= 5  # the clock steps back over midnight: stay on the new day
    files.command(("L" + squid(clock.now, "10.35.1.23", url="http://back/")).encode())
    files.flush()
    first = _rows(files.folder / "2026-11-02.log")
    second = _rows(files.folder / "2026-11-03.log")
    assert [r["url"] for r in first] == ["http://before/"]
    assert [r["url"] for r in second] == ["http://late/", "http://back/"]
    assert second[0]["time"][:10] == "2026-11-02"  # the line keeps squid's own time
    assert (files.folder / "leases-2026-11-03").exists()


def test_rotate_and_reopen_start_a_file_again_when_it_was_moved(tmp_path: Path) -> None:
    files, clock, _, _ = _files(tmp_path, stamp(DAY, 10))
    path = files.folder / "2026-11-02.log"
    for command in (b"R", b"O"):
        files.command(command)
        files.command(("L" + squid(clock.now, "10.35.1.23", url="http://one/")).encode())
        files.command(b"F")
        path.rename(files.folder / "moved")
        files.command(command)
        files.command(("L" + squid(clock.now, "10.35.1.23", url="http://two/")).encode())
        files.command(b"F")
        assert [r["url"] for r in _rows(path)] == ["http://two/"]
        assert [r["url"] for r in _rows(files.folder / "moved")] == ["http://one/"]
        path.unlink()
        (files.folder / "moved").unlink()


def test_unwritable_folder_drops_lines_warns_once_and_recovers(tmp_path: Path) -> None:
    files, clock, _, warnings = _files(tmp_path, stamp(DAY, 10))
    files.folder.rmdir()
    for _ in range(3):
        files.command(("L" + squid(clock.now, "10.35.1.23")).encode())
    files.flush()
    assert files.dropped == 3
    assert sorted(w.split(":")[0] for w in warnings) == [
        f"cannot open {files.folder}/2026-11-02.log", f"cannot open {files.folder}/leases-2026-11-02"]
    files.folder.mkdir()
    clock.now += 11  # retried every 10 s
    files.command(("L" + squid(clock.now, "10.35.1.23")).encode())
    files.flush()
    assert len(_rows(files.folder / "2026-11-02.log")) == 1


def test_the_logformat_constant_matches_the_parser() -> None:
    assert LOGFORMAT == "%ts.%03tu %>a %>eui %Ss/%03>Hs %rm %ru %<st %ea"
    assert (DAY + timedelta(days=1)).isoformat() == "2026-11-03"


def test_a_missing_leases_file_is_said_once_and_names_come_back(tmp_path: Path) -> None:
    files, clock, leases, warnings = _files(tmp_path, stamp(DAY, 10))
    leases.unlink()
    clock.now += 2
    for _ in range(3):
        files.command(("L" + squid(clock.now, "10.35.1.109")).encode())
        clock.now += 2
    assert warnings == [f"{leases}: not found (no names from it until it appears)"]
    leases.write_text("1764700000 52:54:00:aa:bb:09 10.35.1.109 back-again *\n")
    files.command(("L" + squid(clock.now, "10.35.1.109")).encode())
    files.flush()
    assert [r["name"] for r in _rows(files.folder / "2026-11-02.log")] == [
        "-", "-", "-", "back-again"]
