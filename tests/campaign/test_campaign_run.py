"""`cartable campaign` as a DSI runs it: real ansible-runner jobs of a real playbook
(tests/campaign/playbook.yml) on the hosts of three schools (`ansible_connection: local`,
or ssh to a loopback port where nothing listens for an unreachable school)."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from campaign_fixtures import (ELEMENTAIRE, MATERNELLE, PLAYBOOK, PRIMAIRE, REPO, build_site,
                               cartable, free_port, host_vars, start, status, unreachable)
from campaign_fixtures import env as fixture_env

SCHOOL_KEYS = {"state", "wave", "started", "ended", "failed_hosts", "failed_tasks", "changed"}
FAIL = {"campaign_test_fail": True}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return build_site(tmp_path / "city")


def _run(site: Path, *args: str) -> tuple[int, str, str]:
    done = cartable("campaign", "run", str(site), str(PLAYBOOK), "--forks", "3", *args)
    assert "Traceback" not in done.stderr
    return done.returncode, done.stdout, done.stderr


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _markers(site: Path) -> set[str]:
    return {p.name for p in (site.parent / "markers").iterdir()}


def test_a_failing_and_an_unreachable_school_never_stop_the_others(site: Path) -> None:
    unreachable(site, MATERNELLE, ["0350650s-srv", "0350650s-dir01"], free_port())
    host_vars(site, "0350626r-sdi01", FAIL)
    code, out, _ = _run(site)
    assert code == 1
    data = status(site)
    assert data["campaign"] == "playbook" and data["playbook"] == "tests/campaign/playbook.yml"
    _iso(data["updated"])
    assert set(data["schools"]) == {MATERNELLE, ELEMENTAIRE, PRIMAIRE}
    for school in data["schools"].values():
        assert SCHOOL_KEYS <= set(school)
        assert _iso(school["started"]) <= _iso(school["ended"])
    ok, failed, dark = (data["schools"][u] for u in (PRIMAIRE, ELEMENTAIRE, MATERNELLE))
    assert (ok["state"], ok["wave"], ok["changed"], ok["failed_hosts"]) == ("ok", "aout", 2, [])
    assert failed["state"] == "failed" and failed["wave"] == "juillet"
    assert failed["failed_hosts"] == ["0350626r-sdi01"]
    assert failed["failed_tasks"] == ["Fail where the test says so"]
    assert failed["errors"][0]["msg"] == "told to fail: 0350626r-sdi01"
    assert dark["state"] == "unreachable"
    assert sorted(dark["failed_hosts"]) == ["0350650s-dir01", "0350650s-srv"]
    assert "Connection refused" in dark["errors"][0]["msg"]
    # the failing school's other host and the whole ok school were converged
    assert _markers(site) == {"0350607v-srv", "0350607v-sdi01", "0350626r-srv", "0350626r-sdi01"}
    assert f"{PRIMAIRE} (aout): ok, 2 changed" in out
    assert "1 ok, 1 failed, 1 unreachable" in out


def test_a_rerun_converges_only_what_is_not_ok_and_failed_only_the_failed(site: Path) -> None:
    host_vars(site, "0350626r-sdi01", FAIL)
    assert _run(site)[0] == 1
    first = status(site)["schools"]
    host_vars(site, "0350626r-sdi01", None)  # the school's problem is fixed
    unreachable(site, MATERNELLE, ["0350650s-srv", "0350650s-dir01"], free_port())
    code, out, _ = _run(site)
    assert code == 0  # the maternelle, ok in the first run, is not run again: its link is not tried
    assert "not run again: 0350607V, 0350650S" in out
    again = status(site)["schools"]
    assert again[PRIMAIRE] == first[PRIMAIRE]  # untouched
    assert again[ELEMENTAIRE]["state"] == "ok" and again[ELEMENTAIRE]["runs"] == 2
    assert again[ELEMENTAIRE]["failed_hosts"] == [] and again[ELEMENTAIRE]["changed"] == 0
    # it was ok before the link broke: ok schools are not run again, not even with --failed
    assert again[MATERNELLE]["state"] == "ok" and again[MATERNELLE]["runs"] == 1
    # a campaign of its own where the maternelle is unreachable; --failed reruns only it
    assert _run(site, "--name", "second")[0] == 1
    for host in ("0350650s-srv", "0350650s-dir01"):
        host_vars(site, host, None)
    code, out, _ = _run(site, "--name", "second", "--failed")
    assert code == 0
    second = status(site, "second")["schools"]
    assert [u for u, s in second.items() if s["runs"] == 2] == [MATERNELLE]
    assert all(s["state"] == "ok" for s in second.values())
    code, out, _ = _run(site, "--name", "second", "--failed")
    assert code == 0 and "nothing to run" in out


def test_check_diff_says_what_would_change_where_and_changes_nothing(site: Path) -> None:
    code, out, _ = _run(site, "--check", "--diff", "--wave", "juillet")
    assert code == 0
    assert _markers(site) == set()
    assert "would change (check mode):" in out
    assert f"{MATERNELLE} (juillet): 1 task(s) on 2 host(s)" in out
    assert "Write the host's marker: 0350626r-srv, 0350626r-sdi01" in out \
        or "Write the host's marker: 0350626r-sdi01, 0350626r-srv" in out
    data = status(site, "playbook-check")
    assert data["check"] is True and set(data["schools"]) == {MATERNELLE, ELEMENTAIRE}
    stdout = site.parent / "campaigns" / "playbook-check" / data["schools"][MATERNELLE]["artifacts"]
    assert "+0350650s-dir01" in (stdout / "stdout").read_text()  # the --diff, kept per school
    # once converged for real, the same check finds nothing to change
    assert _run(site, "--wave", "juillet")[0] == 0
    code, out, _ = _run(site, "--check", "--wave", "juillet", "--name", "after")
    assert code == 0 and "  nothing\n" in out and "no change: 0350626R, 0350650S" in out


def test_a_wave_or_a_list_of_schools_runs_those_schools_only(site: Path) -> None:
    assert _run(site, "--wave", "aout")[0] == 0
    assert set(status(site)["schools"]) == {PRIMAIRE}
    assert _run(site, "--school", "0350650s", "--name", "one")[0] == 0
    assert set(status(site, "one")["schools"]) == {MATERNELLE}
    assert _markers(site) == {"0350607v-srv", "0350607v-sdi01", "0350650s-srv", "0350650s-dir01"}


def test_a_status_file_of_another_site_is_refused(site: Path, tmp_path: Path) -> None:
    assert _run(site, "--wave", "aout")[0] == 0
    other = build_site(tmp_path / "other")
    (other.parent / "campaigns").mkdir()
    os.rename(site.parent / "campaigns" / "playbook", other.parent / "campaigns" / "playbook")
    text = other.read_text().replace("name: campaign-test", "name: another-city")
    other.write_text(text)
    code, _, err = _run(other)
    assert code == 2 and "belongs to site 'campaign-test', not 'another-city'" in err
    done = cartable("campaign", "status", str(other))
    assert done.returncode == 2 and "belongs to site" in done.stderr
    assert _markers(other) == set()


def test_status_shows_failures_first_as_a_table_json_and_csv(site: Path) -> None:
    host_vars(site, "0350626r-sdi01", FAIL)
    unreachable(site, MATERNELLE, ["0350650s-srv", "0350650s-dir01"], free_port())
    assert _run(site)[0] == 1
    table = cartable("campaign", "status", str(site))
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[1].split()[:3] == ["uai", "wave", "state"]
    assert [line.split()[0] for line in lines[2:5]] == [ELEMENTAIRE, MATERNELLE, PRIMAIRE]
    assert lines[-1] == "1 failed, 1 unreachable, 1 ok"
    as_json = cartable("campaign", "status", str(site), "--json")
    assert json.loads(as_json.stdout) == status(site)
    rows = list(csv.DictReader(io.StringIO(cartable("campaign", "status", str(site),
                                                    "--csv").stdout)))
    assert [(r["uai"], r["state"]) for r in rows] == [
        (ELEMENTAIRE, "failed"), (MATERNELLE, "unreachable"), (PRIMAIRE, "ok")]
    assert rows[0]["failed_hosts"] == "0350626r-sdi01"
    done = cartable("campaign", "status", str(site), "--name", "winter")
    assert done.returncode == 2 and "no campaign 'winter'" in done.stderr


def _wait(site: Path, want: dict[str, str], proc, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        path = site.parent / "campaigns" / "playbook" / "status.json"
        if path.exists():
            states = {u: s["state"] for u, s in status(site)["schools"].items()}
            if all(states.get(u) == s for u, s in want.items()):
                return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError(f"the campaign never reached {want}")


def _processes_of(site: Path) -> list[str]:
    """Command lines of the processes that name this test's site folder."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and str(site.parent) in cmdline:
            found.append(cmdline)
    return found


def test_a_killed_controller_resumes_without_redoing_finished_schools(site: Path) -> None:
    host_vars(site, "0350626r-sdi01", {"campaign_test_sleep": 120})
    args = ["campaign", "run", str(site), str(PLAYBOOK), "--school", ELEMENTAIRE, PRIMAIRE]
    proc = start(*args)
    try:
        _wait(site, {PRIMAIRE: "ok", ELEMENTAIRE: "running"}, proc)
        second = cartable(*args)  # one campaign at a time on a site
        assert second.returncode == 2 and "another campaign is running" in second.stderr
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    killed = status(site)["schools"]
    assert killed[ELEMENTAIRE]["state"] == "running" and killed[ELEMENTAIRE]["ended"] is None
    host_vars(site, "0350626r-sdi01", None)
    started = time.monotonic()
    done = cartable(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"not run again: {PRIMAIRE}" in done.stdout
    # the killed controller's job (still waiting its 120 s) was ended, not left beside the new one
    assert f"{ELEMENTAIRE}: stopped the job a killed controller left running" in done.stdout
    assert time.monotonic() - started < 60
    assert _processes_of(site) == []
    resumed = status(site)["schools"]
    assert resumed[PRIMAIRE] == killed[PRIMAIRE]
    assert resumed[ELEMENTAIRE]["state"] == "ok" and resumed[ELEMENTAIRE]["runs"] == 2


def _run_on_a_terminal(site: Path, *args: str, ci: bool = False) -> str:
    """The command with its stderr on a pseudo-terminal, as a DSI at a desk sees it."""
    master, slave = pty.openpty()
    env = fixture_env()
    if ci:
        env["CI"] = "true"
    proc = subprocess.Popen([sys.executable, "-m", "cartable.cli", "campaign", "run", str(site),
                             str(PLAYBOOK), *args], stdout=subprocess.PIPE, stderr=slave,
                            env=env, cwd=REPO)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal's other side closed: the command ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.communicate(timeout=120)
    os.close(master)
    assert proc.returncode == 0
    return b"".join(chunks).decode()


def test_progress_on_a_terminal_only_and_never_in_ci(site: Path) -> None:
    host_vars(site, "0350607v-sdi01", {"campaign_test_sleep": 2})
    shown = _run_on_a_terminal(site, "--forks", "2")
    assert "\r\x1b[K" in shown
    assert "playbook: 0/3 done, 0 failed, 2 running" in shown
    assert "juillet [" in shown and "aout [" in shown
    assert "3/3 done, 0 failed, 0 running" in shown and "done" in shown
    assert _run_on_a_terminal(site, "--name", "in-ci", ci=True) == ""


# --- school servers as relays: the job carried by ansible-runner transmit | worker | process -

def _relay(site: Path, command: str, *args: str) -> tuple[int, str, str]:
    return _run(site, "--relay", "--relay-command", command, *args)


def test_relay_jobs_carry_the_same_events_into_the_same_status(site: Path) -> None:
    """The worker runs here (the command given instead of ssh to the server): the job is the
    transmitted bundle + the school's inventory, and its events come back through process."""
    worker = f"{sys.executable} -m ansible_runner worker"
    host_vars(site, "0350626r-sdi01", FAIL)
    code, out, _ = _relay(site, worker, "--name", "relay")
    assert code == 1
    data = status(site, "relay")["schools"]
    assert (data[PRIMAIRE]["state"], data[PRIMAIRE]["changed"]) == ("ok", 2)
    assert data[ELEMENTAIRE]["state"] == "failed"
    assert data[ELEMENTAIRE]["failed_hosts"] == ["0350626r-sdi01"]
    assert data[ELEMENTAIRE]["failed_tasks"] == ["Fail where the test says so"]
    assert _markers(site) == {"0350607v-srv", "0350607v-sdi01", "0350626r-srv",
                              "0350626r-sdi01", "0350650s-srv", "0350650s-dir01"}
    # what was sent: the project's Ansible content and the school's part of the inventory,
    # its workstations reached over the LAN (no ProxyCommand), the server converging itself
    job = next((site.parent / "campaigns" / "relay" / "runs" / PRIMAIRE / "relay").iterdir())
    assert (job / "project" / "roles" / "common" / "tasks").is_dir()
    assert not list((job / "project" / "roles").glob("*/molecule"))
    sent = (job / "inventory" / "hosts.yml").read_text()
    assert "cartable_ssh_jump" not in sent.split("school_0350607v:")[1].split("\n    school_")[0]
    assert "ansible_connection: local" in sent
    # the resume works the same way through relays
    host_vars(site, "0350626r-sdi01", None)
    code, out, _ = _relay(site, worker, "--name", "relay")
    assert code == 0 and f"not run again: {PRIMAIRE}, {MATERNELLE}" in out


def test_a_relay_that_cannot_be_reached_is_an_unreachable_school(site: Path) -> None:
    code, out, _ = _relay(site, "sh -c 'echo ssh: connect to {server}: refused >&2; exit 255'",
                          "--wave", "aout")
    assert code == 1
    school = status(site)["schools"][PRIMAIRE]
    assert school["state"] == "unreachable" and school["failed_hosts"] == ["0350607v-srv"]
    assert "ssh: connect to 0350607v-srv: refused" in school["errors"][0]["msg"]
    code, out, _ = _relay(site, "false", "--wave", "aout", "--name", "broken")
    assert code == 1 and status(site, "broken")["schools"][PRIMAIRE]["state"] == "failed"
