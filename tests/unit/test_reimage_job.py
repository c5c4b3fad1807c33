"""roles/reimaging/files/cartable-reimage: magic packets, closed days, batches, run reports.

The run test is real: the job marks the hosts in a netboot-like folder, sends its magic
packets over loopback to a UDP socket of the test, and reads status files as netboot's
report reader writes them."""

from __future__ import annotations

import datetime as dt
import importlib.machinery
import importlib.util
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO

_LOADER = importlib.machinery.SourceFileLoader("cartable_reimage", str(REPO / "roles/reimaging/files/cartable-reimage"))
_SPEC = importlib.util.spec_from_loader("cartable_reimage", _LOADER)
assert _SPEC
job: Any = importlib.util.module_from_spec(_SPEC)
_LOADER.exec_module(job)


def test_magic_packet_bytes() -> None:
    packet = job.magic_packet("52:54:00:35:07:1A")
    assert len(packet) == 102 and packet[:6] == b"\xff" * 6
    assert packet[6:] == bytes([0x52, 0x54, 0x00, 0x35, 0x07, 0x1A]) * 16
    assert job.magic_packet("52-54-00-35-07-1a") == packet


@pytest.mark.parametrize("mac", ["52:54:00:35:07", "52:54:00:35:07:zz", ""])
def test_magic_packet_refuses_a_malformed_mac(mac: str) -> None:
    with pytest.raises(ValueError, match="is not a MAC"):
        job.magic_packet(mac)


HOLIDAYS = [["2026-12-19", "2027-01-03"]]
CLOSED = [["2026-11-11", "2026-11-11"], ["2026-12-25", "2027-01-01"]]


@pytest.mark.parametrize(("day", "slot", "expected"), [
    ("2026-12-02", "regular", ""),                                     # a Wednesday of school
    ("2026-11-11", "regular", "the school is closed"),                # a closed day
    ("2026-12-21", "regular", "holidays, the holiday schedule applies"),
    ("2026-12-21", "holidays", ""),                                    # holidays: nightly runs
    ("2026-12-25", "holidays", "the school is closed"),               # closed wins over holidays
    ("2027-01-03", "holidays", ""),                                    # ranges are inclusive
    ("2027-01-04", "holidays", "not in the holidays"),
])
def test_skip_reason(day: str, slot: str, expected: str) -> None:
    reason = job.skip_reason(dt.date.fromisoformat(day), slot, HOLIDAYS, CLOSED)
    assert (expected in reason and reason) if expected else reason == ""


def test_batches_keep_order() -> None:
    assert job.batches([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert job.batches([], 4) == []


def test_outcome() -> None:
    host = {"name": "pc", "mac": "52:54:00:00:00:01"}
    line = "2026-12-02T12:10:00+00:00 10.0.0.5 pc essai 2 requested sync ok 95"
    status = job.parse_status(line)
    marked = dt.datetime.fromisoformat("2026-12-02T12:00:00+00:00").timestamp()
    assert job.outcome(host, status, marked)["result"] == "ok"
    assert job.outcome(host, status, marked)["version"] == "2"
    late = dt.datetime.fromisoformat("2026-12-02T12:20:00+00:00").timestamp()
    assert "no restore report before the timeout" in job.outcome(host, status, late)["reason"]
    failed = job.parse_status(line.replace(" ok ", " failed "))
    assert "reported 'failed'" in job.outcome(host, failed, marked)["reason"]
    assert job.parse_status("garbage") is None


def _config(tmp_path: Path, port: int) -> dict[str, Any]:
    netboot = tmp_path / "netboot"
    (netboot / "www" / "requests").mkdir(parents=True)
    (netboot / "status").mkdir()
    hosts = [{"name": f"pc{i}", "mac": f"52:54:00:00:00:0{i}", "network": "lan"} for i in range(1, 4)]
    hosts.append({"name": "pc9", "mac": "", "network": "lan"})
    # restorable_if: judged at run time (netboot's versions script of the image: the cache holds
    # essai's latest version, not cycle3's)
    (netboot / "www" / "versions").mkdir()
    (netboot / "www" / "versions" / "essai.ipxe").write_text("#!ipxe\nset cartable-version 1\n")
    entries = [{"mac": h["mac"], "name": h["name"], "image": "essai", "version": "latest", "missing": "",
                "restorable_if": str(netboot / "www" / "versions" / "essai.ipxe")} for h in hosts[:2]]
    entries.append({"mac": hosts[2]["mac"], "name": "pc3", "image": "cycle3", "version": "latest", "missing": "",
                    "restorable_if": str(netboot / "www" / "versions" / "cycle3.ipxe")})
    (netboot / "entries.json").write_text(json.dumps(entries))
    return {"school": "0999997X", "netboot_dir": str(netboot), "runs_dir": str(tmp_path / "runs"),
            "rooms": {"computer_room": {"hosts": hosts, "batch": 1, "batch_interval": 0, "wait": 0.05}},
            "defaults": {"batch": 4, "batch_interval": 0, "wait": 0.05}, "holidays": [], "closed": [],
            "networks": {"lan": {"address": "127.0.0.1", "broadcast": "127.0.0.1"}},
            "wol_port": port, "wol_copies": 2, "poll_seconds": 0.2}


def test_a_run_marks_wakes_waits_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2)
    config = _config(tmp_path, receiver.getsockname()[1])
    monkeypatch.setattr(job, "interface_of", lambda address: "lo")
    # pc1 reports a successful restore (as netboot's report reader writes it), dated after the mark
    status = Path(config["netboot_dir"]) / "status" / "52-54-00-00-00-01"
    status.write_text(f"{(dt.datetime.now().astimezone() + dt.timedelta(seconds=2)).isoformat(timespec='seconds')} 127.0.0.1 pc1 "
                      "essai 1 requested sync ok 97\n")
    what, hosts, settings = job.select(config, type("A", (), {"host": None, "room": "computer_room"})())
    report = job.run(config, what, hosts, settings, "now")
    packets = [receiver.recv(200) for _ in range(4)]
    assert sorted(packets) == sorted([job.magic_packet("52:54:00:00:00:01")] * 2
                                     + [job.magic_packet("52:54:00:00:00:02")] * 2)
    requests = sorted(p.name for p in (Path(config["netboot_dir"]) / "www" / "requests").iterdir())
    assert requests == ["52-54-00-00-00-01", "52-54-00-00-00-02"]   # pc3, pc9: not restorable
    assert [b["batch"] for b in report["woken"]] == [1, 2]
    by_name = {h["name"]: h for h in report["hosts"]}
    assert by_name["pc1"]["result"] == "ok" and by_name["pc1"]["seconds"] == "97"
    assert "no restore report before the timeout" in by_name["pc2"]["reason"]
    assert "not restorable: cycle3 latest is not in the school server's image cache now" in by_name["pc3"]["reason"]
    assert "no MAC in the inventory" in by_name["pc9"]["reason"]
    assert [h["name"] for h in report["hosts"]] == ["pc2", "pc3", "pc9", "pc1"]  # failures first
    saved = json.loads((Path(config["runs_dir"]) / "latest.json").read_text())
    assert saved["failed"] == 3 and saved["ok"] == 1
    rows = {row["name"]: row for row in job.status(config)}
    assert rows["pc1"]["version"] == "1" and rows["pc2"]["requested"] is True
    assert rows["pc2"]["last_run"]["result"] == "failed"


def test_unknown_room_or_host_is_refused_with_what_exists(tmp_path: Path) -> None:
    config = _config(tmp_path, 9)
    with pytest.raises(job.Refused, match="no room gym in school 0999997X \\(rooms: computer_room\\)"):
        job.select(config, type("A", (), {"host": None, "room": "gym"})())
    with pytest.raises(job.Refused, match="no workstation pc7 .*known: pc1, pc2, pc3, pc9"):
        job.select(config, type("A", (), {"host": "pc7", "room": None})())


def test_restorable_is_judged_from_the_cache_at_run_time(tmp_path: Path) -> None:
    """The cache fills after netboot converged: the next run restores what it holds now."""
    version_file = tmp_path / "versions" / "cycle3.ipxe"
    entry = {"image": "cycle3", "version": "latest", "missing": "", "restorable_if": str(version_file)}
    assert "not in the school server's image cache now" in job.not_restorable(entry)
    version_file.parent.mkdir()
    version_file.write_text("#!ipxe\nset cartable-version 2026.1\n")   # the nightly fetch, then netboot
    assert job.not_restorable(entry) == ""
    assert job.not_restorable({**entry, "missing": "no cartable_image"}) == "no cartable_image"
    assert "no image" in job.not_restorable({"image": "cycle3", "missing": "", "restorable_if": ""})
