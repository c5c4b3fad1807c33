"""`cartable campaign`: what a DSI sees without running a job — refused input (exit 2,
nothing written), the schools and waves read from the inventory, the status file, the
terminal's progress line and the reports. The real runs are in tests/campaign/."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

from cartable.campaign import progress, report
from cartable.campaign import status as st
from cartable.campaign.jobs import Recorder, final_state
from cartable.campaign.schools import read_schools, select
from cartable.cli import main
from cartable.errors import InputError

from conftest import ELEMENTAIRE, MATERNELLE, PRIMAIRE, REPO

sys.path.insert(0, str(REPO / "tests" / "campaign"))
from campaign_fixtures import PLAYBOOK, build_site  # noqa: E402  (after sys.path)

DEMO_HOSTS = REPO / "inventories" / "demo" / "hosts.yml"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return build_site(tmp_path / "city")


def _fails(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main(["campaign", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "nothing written" in err
    return err


@pytest.mark.parametrize(("args", "message"), [
    (["--wave", "septembre"], "[waves] unknown wave 'septembre'\n    fix: known waves: juillet, aout"),
    (["--school", "0350607V", "0999999Z"], "no school 0999999Z in this site's inventory"),
    (["--failed"], "no campaign 'playbook' yet"),
    (["--name", "../x"], "is not a simple name"),
    (["--diff"], "--diff goes with --check"),
    (["--forks", "0"], "at least 1"),
    (["--inventory", "/nonexistent/connection.yml"], "inventory source not found"),
])
def test_bad_input_exits_2_and_touches_nothing(site: Path, capsys, args: list[str],
                                               message: str) -> None:
    assert message in _fails(capsys, "run", str(site), str(PLAYBOOK), *args)
    assert not (site.parent / "campaigns").exists()
    assert list((site.parent / "markers").iterdir()) == []


def test_unknown_playbook_site_or_inventory_exits_2(site: Path, tmp_path: Path, capsys) -> None:
    assert "playbook not found" in _fails(capsys, "run", str(site), "playbooks/nope.yml")
    (tmp_path / "notes.yml").write_text("just: a mapping\n")
    assert "not a playbook" in _fails(capsys, "run", str(site), str(tmp_path / "notes.yml"))
    assert "this is a folder" in _fails(capsys, "run", str(tmp_path), str(PLAYBOOK))
    (site.parent / "hosts.yml").unlink()
    err = _fails(capsys, "run", str(site), str(PLAYBOOK))
    assert "the generated inventory not found" in err and "cartable inventory build" in err
    assert "no campaign on this site yet" in _fails(capsys, "status", str(site))
    assert not (site.parent / "campaigns").exists()


def test_a_broken_status_file_is_named_not_overwritten(site: Path, capsys) -> None:
    folder = site.parent / "campaigns" / "playbook"
    folder.mkdir(parents=True)
    (folder / "status.json").write_text('{"campaign": "playbook", "schools": {"X": {}}}')
    assert "school X has no valid state" in _fails(capsys, "run", str(site), str(PLAYBOOK))
    (folder / "status.json").write_text("{")
    assert "not valid JSON" in _fails(capsys, "status", str(site))
    assert (folder / "status.json").read_text() == "{"


# --- schools and waves from the generated inventory ----------------------------------------

def test_schools_and_waves_come_from_the_generated_inventory() -> None:
    schools = read_schools(DEMO_HOSTS)
    assert [(s.uai, s.group, s.wave) for s in schools] == [
        (PRIMAIRE, "school_0350607v", "aout"), (ELEMENTAIRE, "school_0350626r", "juillet"),
        (MATERNELLE, "school_0350650s", "juillet")]
    assert "0350607v-srv" in schools[0].hosts and "0350607v-sdi12" in schools[0].hosts
    assert [s.uai for s in select(schools, where="x", wave="juillet")] == [ELEMENTAIRE, MATERNELLE]
    assert [s.uai for s in select(schools, where="x", uais=["0350650s", PRIMAIRE, MATERNELLE])] \
        == [MATERNELLE, PRIMAIRE]
    assert len(select(schools, where="x")) == 3
    # a wave of the site file with no school yet is known, and empty
    assert select(schools, where="x", wave="septembre", waves=["juillet", "aout", "septembre"]) == []
    with pytest.raises(InputError, match="unknown wave 'hiver'"):
        select(schools, where="x", wave="hiver")


# --- the status file ------------------------------------------------------------------------

def test_the_status_file_is_replaced_whole_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "campaigns" / "c" / "status.json"
    status = st.new_status("c", "playbooks/site.yml", "demo", False)
    status["schools"][PRIMAIRE] = st.new_school("aout")
    st.save(path, status)
    assert st.load(path) == status
    assert sorted(p.name for p in path.parent.iterdir()) == ["status.json"]  # no temp left
    status["schools"][PRIMAIRE]["state"] = "ok"
    assert st.to_run(status, [PRIMAIRE, ELEMENTAIRE], False) == [ELEMENTAIRE]
    status["schools"][ELEMENTAIRE] = {**st.new_school("juillet"), "state": "unreachable"}
    assert st.to_run(status, [PRIMAIRE, ELEMENTAIRE, MATERNELLE], True) == [ELEMENTAIRE]
    assert st.counts(status) == {"pending": 0, "running": 0, "ok": 1, "failed": 0,
                                 "unreachable": 1}


def test_reimage_is_kept_by_cartable_reimage_and_never_the_default(site: Path, capsys) -> None:
    """`cartable reimage`'s own campaign (converges after restores) is not a rollout: refused as a
    --name, and `status` without --name shows the last rollout even when reimage is newer."""
    assert "is kept by cartable reimage" in _fails(capsys, "run", str(site), str(PLAYBOOK), "--name", "reimage")
    for name, updated in (("summer", "2026-07-10T18:00:00Z"), ("reimage", "2026-12-02T13:00:00Z")):
        status = st.new_status(name, "playbooks/site.yml", "campaign-test", False)
        status["schools"]["0350607V"] = {**st.new_school("aout"), "state": "ok"}
        st.save(st.campaign_dir(site.parent, name) / "status.json", status)
    capsys.readouterr()
    assert main(["campaign", "status", str(site)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("campaign summer") and "other campaigns: reimage" in out


def test_one_campaign_at_a_time_per_site(tmp_path: Path) -> None:
    with st.site_lock(tmp_path):
        with pytest.raises(InputError, match="another campaign is running on this site"):
            with st.site_lock(tmp_path):
                pass
    with st.site_lock(tmp_path):  # released
        pass


# --- events folded into a school's status ---------------------------------------------------

def _event(kind: str, host: str | None = None, **data) -> dict:
    return {"event": kind, "event_data": {"host": host, **data}}


def test_events_make_the_schools_state() -> None:
    school = st.new_school("juillet")
    saves = []
    recorder = Recorder(school, threading.Lock(), True, lambda: saves.append(1))
    recorder(_event("runner_on_ok", "a", task="Install", role="common", res={"changed": True}))
    recorder(_event("runner_on_ok", "b", task="Install", role="common", res={"changed": False}))
    recorder(_event("runner_on_failed", "b", task="Check", res={"msg": "no"}, ignore_errors=True))
    assert school["failed_tasks"] == [] and school["changes"] == {"common : Install": ["a"]}
    recorder(_event("runner_on_failed", "b", task="Start", role="common",
                    res={"results": [{"failed": True, "msg": "item  broke\n here"}]}))
    recorder(_event("runner_on_unreachable", "c", task="Install", res={"msg": "refused"}))
    recorder(_event("playbook_on_stats", changed={"a": 1, "b": 2}))
    assert school["failed_hosts"] == ["b", "c"] and school["unreachable_hosts"] == ["c"]
    assert school["failed_tasks"] == ["common : Start"] and school["changed"] == 3
    assert school["errors"][0] == {"host": "b", "task": "common : Start", "msg": "item broke here"}
    assert len(saves) == 3
    assert final_state(school, "failed", 2) == "failed"
    assert final_state({**school, "failed_tasks": []}, "failed", 4) == "unreachable"
    assert final_state(st.new_school(None), "successful", 0) == "ok"
    assert final_state(st.new_school(None), "failed", 1) == "failed"  # never started
    assert final_state(school, "canceled", None) == "pending"


# --- what the terminal shows ----------------------------------------------------------------

def _status(states: dict[str, tuple[str, str]]) -> dict:
    status = st.new_status("summer", "playbooks/site.yml", "demo", False)
    for uai, (state, wave) in states.items():
        status["schools"][uai] = {**st.new_school(wave), "state": state}
    return status


def test_the_progress_line_counts_schools_and_waves() -> None:
    status = _status({"A": ("ok", "juillet"), "B": ("failed", "juillet"),
                      "C": ("running", "aout"), "D": ("pending", "aout")})
    line = progress.line("summer", status, ["A", "B", "C", "D"], [60.0, 120.0], 2)
    assert line == ("summer: 2/4 done, 1 failed, 1 running | juillet [##########] 2/2 | "
                    "aout [----------] 0/2 | ~1 min 30 s left")
    assert progress.time_left([], 3, 4) == "time left: ?"
    assert progress.time_left([10.0], 0, 4) == "done"


def test_status_table_and_csv_put_failures_first() -> None:
    status = _status({"A": ("ok", "juillet"), "B": ("pending", "aout"),
                      "C": ("unreachable", "aout"), "D": ("failed", "juillet")})
    assert [r["uai"] for r in report.rows(status)] == ["D", "C", "B", "A"]
    lines = report.table(status).splitlines()
    assert lines[0].startswith("campaign summer (playbooks/site.yml), updated ")
    assert [line.split()[0] for line in lines[2:6]] == ["D", "C", "B", "A"]
    assert lines[-1] == "1 failed, 1 unreachable, 1 pending, 1 ok"
    assert report.to_csv(status).splitlines()[0] == ",".join(report.COLUMNS)


def test_check_summary_lists_tasks_and_hosts_per_school() -> None:
    status = _status({"A": ("ok", "juillet"), "B": ("ok", "aout")})
    status["schools"]["A"]["changes"] = {"common : Install": ["a-srv", "a-sdi01"]}
    text = report.check_summary(status, ["A", "B"])
    assert text == ("would change (check mode):\n  A (juillet): 1 task(s) on 2 host(s)\n"
                    "    common : Install: a-srv, a-sdi01\n  no change: B\n")


def test_status_json_keeps_the_agreed_keys(tmp_path: Path) -> None:
    status = _status({"A": ("ok", "juillet")})
    st.save(tmp_path / "status.json", status)
    data = json.loads((tmp_path / "status.json").read_text())
    assert {"campaign", "playbook", "updated", "schools"} <= set(data)
    assert {"state", "wave", "started", "ended", "failed_hosts", "failed_tasks",
            "changed"} <= set(data["schools"]["A"])


# --- relays: how the controller reaches a school server, what it sends --------------------

def test_the_relay_is_reached_as_the_inventory_says_and_sees_its_lan(site: Path) -> None:
    from cartable.campaign.jobs import JobSpec
    from cartable.campaign.relay import school_inventory, server_command
    vars_dir = site.parent / "host_vars"
    (vars_dir / "0350607v-srv.yml").write_text(
        "ansible_host: 10.250.32.11\nansible_user: cartable\nansible_port: 2222\n"
        "ansible_ssh_private_key_file: /etc/cartable/id_ed25519\n"
        "cartable_ssh_options: -o UserKnownHostsFile=/etc/cartable/known_hosts\n")
    spec = JobSpec(PLAYBOOK, (site.parent / "hosts.yml",), REPO)
    assert server_command(spec, "0350607v-srv", "/opt/cartable/bin/ansible-runner") == [
        "ssh", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=/etc/cartable/known_hosts",
        "-i", "/etc/cartable/id_ed25519", "-p", "2222", "cartable@10.250.32.11",
        "/opt/cartable/bin/ansible-runner", "worker"]
    inventory = school_inventory(spec, "school_0350607v", "0350607v-srv")
    school = inventory["all"]["children"]["school_0350607v"]
    assert school["vars"]["ansible_ssh_common_args"] == \
        '{{ cartable_relay_ssh_options|d(cartable_ssh_options|d("")) }}'
    assert school["hosts"]["0350607v-srv"]["ansible_connection"] == "local"


def test_the_relay_runs_the_strategy_the_site_chose(site: Path) -> None:
    from cartable.campaign.jobs import JobSpec
    from cartable.campaign.relay import relay_env, server_vars
    spec = JobSpec(PLAYBOOK, (site.parent / "hosts.yml",), REPO)
    assert relay_env(server_vars(spec, "0350607v-srv")) == {}  # Ansible's default, linear
    (site.parent / "host_vars" / "0350607v-srv.yml").write_text(
        "cartable_relay_strategy: mitogen_linear\n")
    assert relay_env(server_vars(spec, "0350607v-srv")) == {"ANSIBLE_STRATEGY": "mitogen_linear"}
    with pytest.raises(RuntimeError, match="not a strategy's name"):
        relay_env({"cartable_relay_strategy": "linear; rm -rf /"})


def test_relay_command_without_relay_is_refused(site: Path, capsys) -> None:
    assert "--relay-command goes with --relay" in _fails(
        capsys, "run", str(site), str(PLAYBOOK), "--relay-command", "docker exec -i x")
