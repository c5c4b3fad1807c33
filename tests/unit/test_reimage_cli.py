"""`cartable reimage`: requests checked against the inventory (exit 2, what exists), and the
status table read from the fetched files, failures first (table, --json, --csv)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from cartable.cli import main
from cartable.reimage.status import rows
from cartable.reimage.targets import target

from conftest import REPO

PC = {"cartable_network": "pedagogical"}
INVENTORY = {"all": {"children": {
    "workstations": {"hosts": {"0350607v-sdi01": {}, "0350607v-sdi02": {}, "0350607v-bcd01": {}}},
    "school_servers": {"hosts": {"0350607v-srv": {}}},
    "school_0350607v": {"vars": {"cartable_school_uai": "0350607V", "cartable_school_server": "0350607v-srv"},
                        "hosts": {
                            "0350607v-srv": {"cartable_room": "server"},
                            "0350607v-sdi01": {**PC, "cartable_room": "computer_room", "cartable_mac": "52:54:00:35:07:11"},
                            "0350607v-sdi02": {**PC, "cartable_room": "computer_room"},
                            "0350607v-bcd01": {**PC, "cartable_room": "bcd", "cartable_mac": "52:54:00:35:07:21"}}},
}}}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(INVENTORY))
    path = tmp_path / "site.yml"
    path.write_text(SITE)
    return path


SITE = """name: t
domain: ecoles.test
directory: directory.csv
selection: {uai: [0350607V]}
address_plan: {supernet: 10.35.0.0/16}
academic_proxy: {host: proxy.test, port: 3128}
"""


def test_targets(site: Path) -> None:
    hosts = site.parent / "hosts.yml"
    room = target(hosts, "0350607v", room="computer_room")
    assert room.server == "0350607v-srv" and room.args == ("--room", "computer_room")
    assert room.hosts == ("0350607v-sdi01", "0350607v-sdi02") and room.without_mac == ("0350607v-sdi02",)
    assert target(hosts, "0350607V", host="0350607V-SDI01").args == ("--host", "0350607v-sdi01")
    assert target(hosts, "0350607V").args == ("--school",)


@pytest.mark.parametrize(("argv", "expected"), [
    (["--school", "0350650S"], "no school 0350650S in this inventory"),
    (["--school", "0350607V", "--room", "gym"], "no room gym with workstations in school 0350607V"),
    (["--school", "0350607V", "--host", "0350607v-sdi09"], "no workstation 0350607v-sdi09 in school 0350607V"),
    (["--school", "0350607V", "--host", "0350607v-sdi02"], "0350607v-sdi02 has no MAC (cartable_mac)"),
])
def test_bad_requests_exit_2_and_say_what_exists(site: Path, capsys, argv: list[str], expected: str) -> None:
    assert main(["reimage", "now", str(site), *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and "fix:" in err
    assert not (site.parent / "reimaging").exists()


def test_a_missing_inventory_says_how_to_build_it(tmp_path: Path, capsys) -> None:
    (tmp_path / "site.yml").write_text("name: t\n")
    assert main(["reimage", "now", str(tmp_path / "site.yml"), "--school", "0350607V"]) == 2
    assert "cartable inventory build SITE" in capsys.readouterr().err


STATUS = [
    {"school": "0350607V", "name": "0350607v-sdi01", "room": "computer_room", "mac": "52:54:00:35:07:11",
     "image": "cycle3", "version": "2026.2", "restored": "2026-12-02T12:14:03+01:00", "seconds": "95",
     "result": "ok", "requested": False, "last_run": {"run": "r1", "result": "ok", "reason": ""}},
    {"school": "0350607V", "name": "0350607v-sdi02", "room": "computer_room", "mac": "52:54:00:35:07:12",
     "image": "cycle3", "version": "2026.1", "restored": "2026-11-25T12:16:40+01:00", "seconds": "101",
     "result": "ok", "requested": True,
     "last_run": {"run": "r1", "result": "failed", "reason": "no restore report before the timeout"}},
    {"school": "0350607V", "name": "0350607v-bcd01", "room": "bcd", "mac": "52:54:00:35:07:21", "image": "",
     "version": "", "restored": "", "seconds": "", "result": "", "requested": False, "last_run": {}},
    {"school": "0350607V", "name": "0350607v-sdi03", "room": "computer_room", "mac": "52:54:00:35:07:13",
     "image": "cycle3", "version": "2026.2", "restored": "2026-12-02T12:15:00+01:00", "seconds": "40",
     "result": "failed", "requested": False, "last_run": {}},
]


def test_status_rows_failures_first() -> None:
    lines = rows(STATUS)
    assert [(line["state"], line["host"]) for line in lines] == [
        ("failed", "0350607v-sdi02"), ("failed", "0350607v-sdi03"), ("never", "0350607v-bcd01"),
        ("ok", "0350607v-sdi01")]
    assert "no restore report before the timeout" in lines[0]["note"] and "still requested" in lines[0]["note"]
    assert "reported 'failed'" in lines[1]["note"]


def test_status_from_fetched_files(site: Path, capsys) -> None:
    (site.parent / "reimaging").mkdir()
    (site.parent / "reimaging" / "0350607V.json").write_text(json.dumps(STATUS))
    assert main(["reimage", "status", str(site), "--no-fetch"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["state", "school", "workstation", "room"]
    assert table[1].startswith("failed") and "0350607v-sdi02" in table[1]
    assert "2026.2" in table[4] and "95" in table[4] and table[-1] == "2 failed, 1 never, 1 ok"
    assert main(["reimage", "status", str(site), "--no-fetch", "--csv"]) == 0
    parsed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["host"] for r in parsed][0] == "0350607v-sdi02" and parsed[-1]["seconds"] == "95"
    assert main(["reimage", "status", str(site), "--no-fetch", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[-1]["version"] == "2026.2"


def test_status_without_fetched_files_says_how(site: Path, capsys) -> None:
    assert main(["reimage", "status", str(site), "--no-fetch"]) == 2
    assert "without --no-fetch" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "expected"), [
    (["--playbook", "playbooks/nope.yml"], "playbook not found"),
    (["--no-converge", "--relay-command", "docker exec -i {server} ansible-runner worker"],
     "not allowed with argument"),
])
def test_converge_options_are_checked_before_any_restore(site: Path, capsys, argv: list[str],
                                                         expected: str) -> None:
    """A wrong converge option is refused before the school server is asked to restore anything."""
    try:
        code = main(["reimage", "now", str(site), "--school", "0350607V", *argv])
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    assert code == 2
    assert expected in capsys.readouterr().err
    assert not (site.parent / "reimaging").exists()


def _fake_server(monkeypatch, site: Path, report_hosts: list[dict], converge_state: str = "ok") -> list:
    """The school server's side replaced (no server here): reimage_now.yml writes the run report
    the real job writes; relays.yml and the converge are recorded. The real jobs run in
    tests/campaign (the converge) and tests/netboot (the restore, then the converge)."""
    from cartable.reimage import cli

    calls: list = []

    def playbook(name: str, inventory: Path, limit: str, extravars: dict) -> tuple[str, int, str]:
        calls.append((name, limit))
        if name == "reimage_now.yml":
            runs = Path(extravars["reimage_dest"]) / "runs"
            runs.mkdir(parents=True, exist_ok=True)
            failed = sum(1 for h in report_hosts if h["result"] != "ok")
            (runs / "0350607V.json").write_text(json.dumps({"hosts": report_hosts, "failed": failed}))
        return "successful", 0, ""

    def converge(site_arg: Path, todo: dict, schools: list, playbook_path: Path, **options) -> dict:
        (uai, hosts), = todo.items()
        calls.append(("converge", uai, list(hosts), playbook_path.name, options["relay"]))
        return {uai: {"state": converge_state, "changed": 3, "processed": list(hosts),
                      "failed_hosts": [] if converge_state == "ok" else list(hosts), "errors": []}}

    monkeypatch.setattr(cli, "_playbook", playbook)
    monkeypatch.setattr(cli, "converge", converge)
    return calls


def test_now_restores_then_the_relay_learns_new_pcs_then_converges_the_restored_ones(
        site: Path, monkeypatch, capsys) -> None:
    calls = _fake_server(monkeypatch, site, [
        {"name": "0350607v-sdi01", "room": "computer_room", "result": "ok", "image": "essai", "version": "2"},
        {"name": "0350607v-bcd01", "room": "bcd", "result": "failed", "reason": "digest mismatch"}])
    assert main(["reimage", "now", str(site), "--school", "0350607V"]) == 1   # one restore failed
    assert calls == [("reimage_now.yml", "0350607v-srv"), ("relays.yml", "0350607v-srv"),
                     ("converge", "0350607V", ["0350607v-sdi01"], "workstations.yml", True)]
    out = capsys.readouterr().out
    assert "converging 1 restored workstation(s) of 1 school(s) by their school servers' relays" in out
    assert "0350607V: converge ok: 1/1 workstation(s) in place, 3 change(s)" in out


def test_a_failed_converge_fails_the_command_and_no_converge_skips_it(site: Path, monkeypatch, capsys) -> None:
    ok = [{"name": "0350607v-sdi01", "room": "computer_room", "result": "ok"}]
    calls = _fake_server(monkeypatch, site, ok, converge_state="failed")
    assert main(["reimage", "now", str(site), "--school", "0350607V", "--host", "0350607v-sdi01"]) == 1
    assert "not in place: 0350607v-sdi01" in capsys.readouterr().out
    calls.clear()
    assert main(["reimage", "now", str(site), "--school", "0350607V", "--no-converge"]) == 0
    assert calls == [("reimage_now.yml", "0350607v-srv")]


def test_unconverged_takes_ok_restores_whose_time_was_not_converged() -> None:
    from cartable.reimage.converge import unconverged

    def line(host: str, state: str, restored: str, school: str = "0350607V") -> dict[str, str]:
        return {"state": state, "school": school, "host": host, "restored": restored}

    lines = [line("a", "ok", "T2"), line("b", "ok", "T1"), line("c", "failed", "T1"), line("d", "never", ""),
             line("e", "pending", "T1"), line("f", "ok", "T3", "0350626R")]
    assert unconverged(lines, {"a": "T1", "b": "T1"}) == {"0350607V": {"a": "T2"}, "0350626R": {"f": "T3"}}
    assert unconverged(lines, {"a": "T2", "b": "T1", "f": "T3"}) == {}


def test_a_workstation_the_relay_could_not_log_into_is_refused_before_any_restore(
        site: Path, monkeypatch, capsys) -> None:
    """With a catalog, the restored PCs accept the relay only as its connection user: a
    workstation whose ansible_user differs (or is missing) is refused, exit 2, nothing restored."""
    calls = _fake_server(monkeypatch, site, [{"name": "0350607v-sdi01", "result": "ok"}])
    site.write_text(SITE + f"catalog: {REPO / 'images' / 'catalog.yml'}\n")
    (site.parent / "group_vars").mkdir()
    (site.parent / "group_vars" / "workstations.yml").write_text("ansible_user: dsi\n")
    (site.parent / "host_vars").mkdir()
    (site.parent / "host_vars" / "0350607v-sdi02.yml").write_text("ansible_user: cartable\n")
    assert main(["reimage", "now", str(site), "--school", "0350607V", "--room", "computer_room"]) == 2
    err = capsys.readouterr().err
    assert ("0350607v-sdi01: ansible_user is 'dsi', but its restored image accepts the relay only as "
            "'cartable' (the catalog's settings.connection_user") in err
    assert "0350607v-sdi02" not in err and "fix: set ansible_user: cartable for the workstations" in err
    assert calls == []   # the school server was not asked anything
    (site.parent / "group_vars" / "workstations.yml").write_text("ansible_user: cartable\n")
    assert main(["reimage", "now", str(site), "--school", "0350607V", "--host", "0350607v-sdi01"]) == 0
    assert calls[0] == ("reimage_now.yml", "0350607v-srv")
    # restore only: nothing to check
    (site.parent / "group_vars" / "workstations.yml").unlink()
    calls.clear()
    assert main(["reimage", "now", str(site), "--school", "0350607V", "--no-converge"]) == 0


def test_recorded_times_are_times_and_never_go_back(tmp_path: Path) -> None:
    from cartable.reimage.converge import newer, read_converged, record_converged

    (tmp_path / "reimaging").mkdir()
    record_converged(tmp_path, {"a": "2026-12-09T12:00:00+00:00", "b": "", "c": "garbage"})
    assert read_converged(tmp_path) == {"a": "2026-12-09T12:00:00+00:00"}
    record_converged(tmp_path, {"a": "2026-12-02T12:00:00+00:00"})   # older: kept the newer
    record_converged(tmp_path, {"a": "2026-12-09T13:00:00+01:00"})   # the same instant: not newer
    assert read_converged(tmp_path) == {"a": "2026-12-09T12:00:00+00:00"}
    assert newer("2026-12-16T12:00:00+00:00", "2026-12-09T12:00:00+00:00")
    assert not newer("2026-12-09T12:00:00", "2026-12-09T12:00:00")
    assert newer("2026-12-09T12:00:00", None)
