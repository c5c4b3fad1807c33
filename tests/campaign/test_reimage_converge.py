"""`cartable reimage now`, after the restore: the workstations the report says were restored
are converged, and only them (real ansible-runner jobs of tests/campaign/playbook.yml on
`ansible_connection: local` hosts, from the controller or through a relay's worker), as the
school's entry of the campaign `reimage`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from campaign_fixtures import ELEMENTAIRE, PLAYBOOK, PRIMAIRE, build_site, host_vars, status
from cartable.reimage.converge import converge, restored

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
    assert restored(report) == ["0350607v-sdi01", "0350607v-sdi04"]
    assert restored({"hosts": []}) == []


@pytest.mark.parametrize("relay", [False, True])
def test_the_restored_workstation_is_converged_and_nothing_else(site: Path, relay: bool) -> None:
    """The school server and the other schools are left alone; a name outside the school is not
    converged (the job's limit is the hosts within the school's group)."""
    options = {"relay": True, "relay_command": WORKER} if relay else {}
    entry = converge(site, PRIMAIRE, ["0350607v-sdi01", "0350626r-sdi01"], PLAYBOOK, **options)
    assert (entry["state"], entry["changed"], entry["failed_hosts"]) == ("ok", 1, [])
    assert _markers(site) == {"0350607v-sdi01"}
    saved = status(site, "reimage")
    assert saved["playbook"] == "tests/campaign/playbook.yml"
    assert saved["schools"][PRIMAIRE]["state"] == "ok" and list(saved["schools"]) == [PRIMAIRE]
    # the next restore of the same school converges again (a reimaging is not a campaign that
    # skips what is done): nothing changed this time
    again = converge(site, PRIMAIRE, ["0350607v-sdi01"], PLAYBOOK, **options)
    assert (again["state"], again["changed"], again["runs"]) == ("ok", 0, 2)


def test_a_failing_converge_is_the_schools_failure(site: Path) -> None:
    host_vars(site, "0350626r-sdi01", {"campaign_test_fail": True})
    entry = converge(site, ELEMENTAIRE, ["0350626r-sdi01"], PLAYBOOK)
    assert entry["state"] == "failed" and entry["failed_hosts"] == ["0350626r-sdi01"]
    assert entry["failed_tasks"] == ["Fail where the test says so"]
    assert status(site, "reimage")["schools"][ELEMENTAIRE]["state"] == "failed"
