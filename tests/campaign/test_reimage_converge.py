"""`cartable reimage now`, after the restore: the workstations the report says were restored
are converged, and only them (real ansible-runner jobs of tests/campaign/playbook.yml on
`ansible_connection: local` hosts, from the controller or through a relay's worker), as the
school's entry of the campaign `reimage`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from campaign_fixtures import (ELEMENTAIRE, PLAYBOOK, PRIMAIRE, build_site, cartable, free_port, host_vars, status,
                               unreachable)
from cartable.campaign.schools import read_schools
from cartable.reimage.converge import converge, read_converged, restored

WORKER = (sys.executable, "-m", "ansible_runner", "worker")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return build_site(tmp_path / "city")


def _markers(site: Path) -> set[str]:
    return {p.name for p in (site.parent / "markers").iterdir()}


def test_only_the_restored_hosts_of_the_report() -> None:
    report = {"hosts": [{"name": "0350607v-sdi01", "result": "ok"},
                        {"name": "0350607v-sdi02", "result": "failed", "reason": "digest mismatch"},
                        {"name": "0350607v-sdi03", "result": "no report"},
                        {"name": "0350607v-sdi04", "result": "ok"}]}
    assert list(restored(report)) == ["0350607v-sdi01", "0350607v-sdi04"]
    assert restored({"hosts": []}) == {}


def _schools(site: Path) -> list:
    return read_schools(site.parent / "hosts.yml")


T1, T2 = "2026-12-02T12:04:10+00:00", "2026-12-09T12:03:55+00:00"


@pytest.mark.parametrize("relay", [False, True])
def test_the_restored_workstation_is_converged_and_nothing_else(site: Path, relay: bool) -> None:
    """The school server and the other schools are left alone; a name outside the school is not
    converged by the school's job (its limit is the hosts within the school's group)."""
    options = {"relay": True, "relay_command": WORKER} if relay else {}
    todo = {PRIMAIRE: {"0350607v-sdi01": T1, "0350626r-sdi01": T1}}
    entry = converge(site, todo, _schools(site), PLAYBOOK, **options)[PRIMAIRE]
    assert (entry["state"], entry["changed"], entry["failed_hosts"]) == ("ok", 1, [])
    assert _markers(site) == {"0350607v-sdi01"}
    saved = status(site, "reimage")
    assert saved["playbook"] == "tests/campaign/playbook.yml"
    assert saved["schools"][PRIMAIRE]["state"] == "ok" and list(saved["schools"]) == [PRIMAIRE]
    # recorded: the host the job reached, not the one it did not
    assert read_converged(site.parent) == {"0350607v-sdi01": T1}
    # the next restore of the same school converges again (a reimaging is not a campaign that
    # skips what is done): nothing changed this time
    again = converge(site, {PRIMAIRE: {"0350607v-sdi01": T2}}, _schools(site), PLAYBOOK, **options)[PRIMAIRE]
    assert (again["state"], again["changed"], again["runs"]) == ("ok", 0, 2)
    assert read_converged(site.parent) == {"0350607v-sdi01": T2}
    # an older restore (a stale status read after a newer converge) never replaces the newer time
    converge(site, {PRIMAIRE: {"0350607v-sdi01": T1}}, _schools(site), PLAYBOOK, **options)
    assert read_converged(site.parent) == {"0350607v-sdi01": T2}


def test_a_failing_converge_is_the_schools_failure(site: Path) -> None:
    host_vars(site, "0350626r-sdi01", {"campaign_test_fail": True})
    entry = converge(site, {ELEMENTAIRE: {"0350626r-sdi01": T1}}, _schools(site), PLAYBOOK)[ELEMENTAIRE]
    assert entry["state"] == "failed" and entry["failed_hosts"] == ["0350626r-sdi01"]
    assert entry["failed_tasks"] == ["Fail where the test says so"]
    assert status(site, "reimage")["schools"][ELEMENTAIRE]["state"] == "failed"
    assert read_converged(site.parent) == {}


def test_one_pc_switched_off_does_not_hold_back_its_school(site: Path) -> None:
    """An unreachable PC is taken again next time; the PCs of its school that were reached are
    recorded, and the schools run in one campaign run (both at once)."""
    unreachable(site, ELEMENTAIRE, ["0350626r-sdi01"], free_port())
    todo = {PRIMAIRE: {"0350607v-sdi01": T1, "0350607v-srv": T1}, ELEMENTAIRE: {"0350626r-sdi01": T1}}
    entries = converge(site, todo, _schools(site), PLAYBOOK, forks=2)
    assert entries[ELEMENTAIRE]["state"] == "unreachable" and entries[PRIMAIRE]["state"] == "ok"
    assert read_converged(site.parent) == {"0350607v-sdi01": T1, "0350607v-srv": T1}


# --- cartable reimage converge: after the scheduled restores ---------------------------------

def _fetched(site: Path, uai: str, entries: list[dict]) -> None:
    """A school server's status as `cartable reimage status` fetches it (cartable-reimage status
    --json): one entry per workstation of its rooms."""
    folder = site.parent / "reimaging"
    folder.mkdir(exist_ok=True)
    (folder / f"{uai}.json").write_text(json.dumps([{"school": uai, "room": "computer_room", "mac": "",
                                                     "requested": False, "last_run": {}, **e}
                                                    for e in entries]))


def _converge_cli(site: Path, *args: str) -> tuple[int, str, str]:
    done = cartable("reimage", "converge", str(site), "--no-fetch", "--no-scan", "--playbook", str(PLAYBOOK),
                    "--relay-command", " ".join(WORKER), *args)
    assert "Traceback" not in done.stderr
    return done.returncode, done.stdout, done.stderr


def test_converge_takes_the_restores_not_converged_yet_once(site: Path) -> None:
    """Only an `ok` restore not converged yet is converged (a failed restore, a PC never
    restored: not); a second run has nothing to do; a new restore of the same PC is converged."""
    _fetched(site, PRIMAIRE, [{"name": "0350607v-sdi01", "result": "ok", "restored": "2026-12-02T12:04:10+00:00",
                               "image": "essai", "version": "2", "seconds": 181}])
    _fetched(site, ELEMENTAIRE, [{"name": "0350626r-sdi01", "result": "failed", "restored": "2026-12-02T12:05:00+00:00"}])
    code, out, err = _converge_cli(site)
    assert code == 0, out + err
    assert _markers(site) == {"0350607v-sdi01"}
    assert "0350607V: converge ok: 1/1 workstation(s) in place, 1 change(s)" in out
    converged = json.loads((site.parent / "reimaging" / "converged.json").read_text())
    assert converged == {"0350607v-sdi01": "2026-12-02T12:04:10+00:00"}
    (site.parent / "markers" / "0350607v-sdi01").unlink()
    code, out, err = _converge_cli(site)
    assert code == 0 and "nothing to converge" in out and _markers(site) == set(), out + err
    _fetched(site, PRIMAIRE, [{"name": "0350607v-sdi01", "result": "ok", "restored": "2026-12-09T12:03:55+00:00"}])
    code, out, _ = _converge_cli(site, "--school", PRIMAIRE)
    assert code == 0 and _markers(site) == {"0350607v-sdi01"}


def test_a_failed_converge_is_not_recorded_and_is_taken_again(site: Path) -> None:
    _fetched(site, ELEMENTAIRE, [{"name": "0350626r-sdi01", "result": "ok", "restored": "2026-12-02T12:05:00+00:00"}])
    host_vars(site, "0350626r-sdi01", {"campaign_test_fail": True})
    code, out, _ = _converge_cli(site)
    assert code == 1 and "not in place: 0350626r-sdi01" in out
    assert not (site.parent / "reimaging" / "converged.json").exists()
    host_vars(site, "0350626r-sdi01", None)
    code, out, _ = _converge_cli(site)
    assert code == 0 and "converge ok" in out


def test_a_school_or_pc_not_in_the_inventory_is_left_with_a_warning(site: Path) -> None:
    """A stale status file (a school no longer in the site) or a PC listed under another school
    does not stop the others: warned, left, nothing recorded for them."""
    _fetched(site, "0350999X", [{"name": "0350999x-sdi01", "result": "ok", "restored": T1}])
    _fetched(site, PRIMAIRE, [{"name": "0350607v-sdi01", "result": "ok", "restored": T1},
                              {"name": "0350626r-sdi01", "result": "ok", "restored": T1}])
    code, out, err = _converge_cli(site)
    assert code == 0, out + err
    assert "school 0350999X is not in the inventory" in err and "remove it" in err
    assert "0350626r-sdi01 is not a workstation of school 0350607V in the inventory" in err
    assert _markers(site) == {"0350607v-sdi01"}
    assert read_converged(site.parent) == {"0350607v-sdi01": T1}


def test_converge_bad_input_exits_2(site: Path) -> None:
    code, _, err = _converge_cli(site)
    assert code == 2 and "no reimaging status fetched" in err
    _fetched(site, PRIMAIRE, [])
    code, _, err = _converge_cli(site, "--school", "0999999Z")
    assert code == 2 and "0999999Z" in err
    (site.parent / "reimaging" / "converged.json").write_text("{")
    code, _, err = _converge_cli(site)
    assert code == 2 and "converged.json" in err and "not a mapping of workstation to restore time" in err


def test_a_school_stopped_before_its_job_started_records_nothing(site: Path, monkeypatch) -> None:
    """Ctrl-C while schools wait their turn: a school whose job never started keeps no `processed`
    from its previous run, so none of its PCs is recorded as converged after this restore."""
    import cartable.reimage.converge as reimage_converge
    from cartable.campaign.engine import Campaign

    converge(site, {PRIMAIRE: {"0350607v-sdi01": T1}}, _schools(site), PLAYBOOK)
    assert read_converged(site.parent) == {"0350607v-sdi01": T1}

    class Stopped(Campaign):  # the stop already asked when the school's turn comes
        def run(self, schools):  # type: ignore[no-untyped-def]
            self.stop.set()
            return super().run(schools)

    monkeypatch.setattr(reimage_converge, "Campaign", Stopped)
    entry = converge(site, {PRIMAIRE: {"0350607v-sdi01": T2}}, _schools(site), PLAYBOOK)[PRIMAIRE]
    assert entry["processed"] == [] and entry["state"] == "pending"
    assert read_converged(site.parent) == {"0350607v-sdi01": T1}
