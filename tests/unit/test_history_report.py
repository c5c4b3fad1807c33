"""cartable-history report: who reached what, blocked attempts by category and day (summary
on stdout, detail in CSV), on synthetic day files; bad input exits 2 and writes nothing."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from cartable.history.cli import main
from cartable.history.formats import HEADER

SDI03 = ("10.35.1.23", "52:54:00:aa:bb:03", "0350607v-sdi03")
SDI04 = ("10.35.1.24", "52:54:00:aa:bb:04", "0350607v-sdi04")


def _line(time: str, who: tuple[str, str, str], method: str, url: str, verdict: str = "ALLOWED",
          category: str = "-", size: int = 100) -> str:
    status = "TCP_DENIED/403" if verdict == "BLOCKED" else "TCP_MISS/200"
    return "\t".join((time, *who, method, url, verdict, category, status, str(size))) + "\n"


@pytest.fixture
def history(tmp_path: Path) -> Path:
    folder = tmp_path / "history"
    folder.mkdir()
    day1 = [
        _line("2026-11-02T09:00:00.000+01:00", SDI03, "GET", "http://www.example.org/a"),
        _line("2026-11-02T09:00:01.000+01:00", SDI03, "GET", "http://www.example.org/b"),
        _line("2026-11-02T09:01:00.000+01:00", SDI03, "CONNECT", "casino.example:443",
              "BLOCKED", "gambling", 0),
        _line("2026-11-02T09:02:00.000+01:00", SDI04, "CONNECT", "vpn.example:443", "BLOCKED",
              "vpn", 0),
        "2026-11-02T09:03:00.000+01:00\t-\t-\t-\t-\tgarbage kept as-is\t-\t-\t-\t-\n",
    ]
    day2 = [  # a request of the 2nd ending just before midnight, written just after it
        _line("2026-11-02T23:59:59.900+01:00", SDI04, "GET", "http://jeux.example/",
              "BLOCKED", "games", 0),
        _line("2026-11-03T10:00:00.000+01:00", SDI04, "GET", "http://www.example.org/c"),
        _line("2026-11-03T10:00:05.000+01:00", SDI03, "CONNECT", "casino.example:443",
              "BLOCKED", "gambling", 0),
    ]
    (folder / "2026-11-02.log.gz").write_bytes(gzip.compress((HEADER + "".join(day1)).encode()))
    (folder / "2026-11-03.log").write_text(HEADER + "".join(day2))
    return folder


def _report(capsys, folder: Path, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["report", "--dir", str(folder), *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_totals_tables_and_csv(history: Path, tmp_path: Path, capsys) -> None:
    out_csv = tmp_path / "controle.csv"
    code, out, _ = _report(capsys, history, "--from", "2026-11-02", "--to", "2026-11-02",
                           "--csv", str(out_csv))
    assert code == 0
    assert "Requêtes : 5 (bloquées : 3) ; postes : 2 ; sites : 4" in out
    assert "Lignes non interprétables (gardées telles quelles) : 1" in out
    assert "  0350607v-sdi03  52:54:00:aa:bb:03  10.35.1.23         3         1      2" in out
    blocked = out.split("Tentatives bloquées par catégorie et par jour\n")[1]
    assert blocked.splitlines()[2:5] == ["  2026-11-02  gambling            1",
                                         "  2026-11-02  games               1",
                                         "  2026-11-02  vpn                 1"]
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["poste"], r["site"], r["verdict"], r["requetes"], r["octets"]) for r in rows] == [
        ("0350607v-sdi03", "casino.example", "BLOCKED", "1", "0"),
        ("0350607v-sdi03", "www.example.org", "ALLOWED", "2", "200"),
        ("0350607v-sdi04", "jeux.example", "BLOCKED", "1", "0"),
        ("0350607v-sdi04", "vpn.example", "BLOCKED", "1", "0")]
    assert rows[1]["premiere"] == "2026-11-02T09:00:00.000+01:00"
    assert rows[1]["derniere"] == "2026-11-02T09:00:01.000+01:00"


def test_filters_and_missing_days(history: Path, capsys) -> None:
    code, out, _ = _report(capsys, history, "--from", "2026-11-01", "--to", "2026-11-03",
                           "--host", "0350607V-SDI03", "--blocked")
    assert code == 0
    assert "Filtre : poste 0350607V-SDI03, requêtes bloquées seulement" in out
    assert "Requêtes : 2 (bloquées : 2) ; postes : 1 ; sites : 1" in out
    assert "Jours sans historique (1) : 2026-11-01" in out
    assert "  2026-11-03  gambling            1" in out
    code, out, _ = _report(capsys, history, "--from", "2026-11-03", "--to", "2026-11-03",
                           "--ip", "10.35.1.24")
    assert "Requêtes : 1 (bloquées : 0) ; postes : 1 ; sites : 1" in out  # 23:59 line: the 2nd


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "2026-11-31", "--to", "2026-12-01"], "[--from] not a date: '2026-11-31'"),
    (["--from", "2026-11-05", "--to", "2026-11-02"], "--from 2026-11-05 is after --to 2026-11-02"),
    (["--from", "2026-11-01", "--to", "2026-11-02", "--ip", "10.35.1"], "not an IP address"),
])
def test_bad_input_exit_2_nothing_written(history: Path, tmp_path: Path, capsys, args: list[str],
                                         message: str) -> None:
    out_csv = tmp_path / "out.csv"
    code, out, err = _report(capsys, history, *args, "--csv", str(out_csv))
    assert code == 2 and message in err and out == ""
    assert not out_csv.exists()


def test_missing_folder_exit_2(tmp_path: Path, capsys) -> None:
    code, _, err = _report(capsys, tmp_path / "nothing", "--from", "2026-11-01", "--to",
                           "2026-11-02")
    assert code == 2 and "nothing: [--dir] no such folder" in err


@pytest.mark.parametrize(("method", "url", "host"), [
    ("GET", "http://user@WWW.Example.org:8080/a?b#c", "www.example.org"),
    ("CONNECT", "casino.example:443", "casino.example"),
    ("CONNECT", "[2001:db8::1]:443", "2001:db8::1"),
    ("GET", "http://[2001:db8::2]:80/x", "2001:db8::2"),
    ("CONNECT", "10.1.2.3:443", "10.1.2.3"),
])
def test_the_site_of_a_request(method: str, url: str, host: str) -> None:
    from cartable.history.formats import host_of
    assert host_of(method, url) == host
