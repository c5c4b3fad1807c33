"""One school's job: ansible-runner runs the playbook limited to the school's group; its
structured events (ansible-runner's, as AWX reads them: never Ansible's text output) are
folded into the school's entry of the status file as they arrive.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MSG_CHARS = 300  # an error message is cut to this length in the status file
# Every process of a job carries this variable (ansible-runner detaches its jobs from the
# controller: a killed controller leaves them running): the next run finds them by it.
JOB_ENV = "CARTABLE_CAMPAIGN_JOB"


@dataclass(frozen=True)
class JobSpec:
    """What every school's job shares: playbook, inventories, options."""

    playbook: Path
    inventories: tuple[Path, ...]
    project_dir: Path
    check: bool = False
    diff: bool = False
    extra_args: tuple[str, ...] = ()
    envvars: dict[str, str] = field(default_factory=dict)
    relay: bool = False  # carried by the school server (relay.py)
    relay_command: tuple[str, ...] = ()  # instead of ssh to the server ({server}: its name)
    relay_runner: str = "ansible-runner"  # the worker's command on the server
    hosts: tuple[str, ...] = ()  # only these hosts of each school (default: all of them)


def job_limit(spec: JobSpec, group: str) -> str:
    """The job's --limit: the school's group, or the spec's hosts within it (Ansible's pattern
    `h1,h2,&group`: a host named that is not in the school is not converged; the engine gives
    each school's job its own hosts only)."""
    if not spec.hosts:
        return group
    return ",".join([*spec.hosts, f"&{group}"])


def project_dir_of(playbook: Path) -> Path:
    """The folder whose ansible.cfg applies: the nearest one above the playbook, else its own."""
    for folder in playbook.resolve().parents:
        if (folder / "ansible.cfg").is_file():
            return folder
    return playbook.resolve().parent


def _task_name(data: dict[str, Any]) -> str:
    task = str(data.get("task") or data.get("task_action") or "?")
    role = data.get("role")
    return f"{role} : {task}" if role and not task.startswith(f"{role} :") else task


def _message(res: Any) -> str:
    if not isinstance(res, dict):
        return ""
    msg = res.get("msg") or res.get("stderr") or res.get("module_stderr") or res.get("reason") or ""
    if not msg and isinstance(res.get("results"), list):  # a loop: the first failed item's
        msg = next((_message(r) for r in res["results"] if isinstance(r, dict) and r.get("failed")), "")
    text = " ".join(str(msg).split())
    return text if len(text) <= MSG_CHARS else text[:MSG_CHARS - 1] + "…"


def _add(items: list[str], value: str) -> None:
    if value not in items:
        items.append(value)


class Recorder:
    """Folds one job's events into a school's status entry (under `lock`), calling `changed()`
    after each change worth saving (a failure, an unreachable host, the final counts)."""

    def __init__(self, school: dict[str, Any], lock: threading.Lock, check: bool,
                 changed: Callable[[], None]) -> None:
        self.school = school
        self.lock = lock
        self.check = check
        self.changed = changed
        self.saw_stats = False

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event")
        data = event.get("event_data") or {}
        host = data.get("host")
        save = False
        with self.lock:
            school = self.school
            if kind == "runner_on_failed" and not data.get("ignore_errors"):
                _add(school["failed_hosts"], host)
                _add(school["failed_tasks"], _task_name(data))
                school["errors"].append({"host": host, "task": _task_name(data),
                                         "msg": _message(data.get("res"))})
                save = True
            elif kind == "runner_on_unreachable":
                _add(school["failed_hosts"], host)
                _add(school["unreachable_hosts"], host)
                school["errors"].append({"host": host, "task": _task_name(data),
                                         "msg": _message(data.get("res"))})
                save = True
            elif kind == "runner_on_ok" and isinstance(data.get("res"), dict) \
                    and data["res"].get("changed"):
                school["changed"] += 1
                if self.check:
                    hosts = school["changes"].setdefault(_task_name(data), [])
                    _add(hosts, host)
            elif kind == "playbook_on_stats":
                self.saw_stats = True
                school["changed"] = sum((data.get("changed") or {}).values())
                school["processed"] = sorted(data.get("processed") or {})  # the hosts the play reached
                save = True
        if save:
            self.changed()
        return True  # keep the event in the job's artifacts (job_events/)


def final_state(school: dict[str, Any], runner_status: str, rc: int | None) -> str:
    """The school's state once its job ended."""
    if runner_status == "canceled":
        return "pending"  # interrupted: the next run converges it again
    if school["failed_tasks"] or (school["failed_hosts"] and not school["unreachable_hosts"]):
        return "failed"
    if school["unreachable_hosts"]:
        return "unreachable"
    return "ok" if rc == 0 and runner_status == "successful" else "failed"


def tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())


def job_processes(tag: str) -> list[int]:
    """The processes of a job (their environment holds JOB_ENV=tag), from /proc."""
    wanted = f"{JOB_ENV}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if wanted in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def stop_job(tag: str, grace: float = 10.0) -> list[int]:
    """End what is left of a job (SIGTERM to its process groups, SIGKILL after `grace` s)."""
    pids = job_processes(tag)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in job_processes(tag):
            with contextlib.suppress(OSError):
                os.killpg(os.getpgid(pid), sig)
        deadline = time.monotonic() + grace
        while job_processes(tag) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not job_processes(tag):
            break
    return pids


def run_school(spec: JobSpec, group: str, private_dir: Path, ident: str, recorder: Recorder,
               cancel: Callable[[], bool], tag: str) -> tuple[str, int | None, Path]:
    """Run the playbook on one school's group; (runner status, rc, artifacts folder)."""
    import ansible_runner  # imported late: `cartable inventory` does not need it

    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_NOCOLOR": "1", JOB_ENV: tag, **spec.envvars}
    cmdline = [*(["--check"] if spec.check else []), *(["--diff"] if spec.diff else []),
               *spec.extra_args]
    private_dir.mkdir(parents=True, exist_ok=True)
    runner = ansible_runner.run(
        private_data_dir=str(private_dir), ident=ident, project_dir=str(spec.project_dir),
        playbook=str(spec.playbook.resolve()), inventory=[str(p.resolve()) for p in spec.inventories],
        limit=job_limit(spec, group), cmdline=shlex.join(cmdline) or None, envvars=env, quiet=True,
        suppress_env_files=True, rotate_artifacts=3, event_handler=recorder,
        cancel_callback=cancel)
    artifacts = Path(runner.config.artifact_dir)
    if runner.status not in ("successful", "canceled") and not recorder.saw_stats:
        with recorder.lock:  # the playbook did not run (syntax error, missing role...): say why
            recorder.school["errors"].append({
                "host": None, "task": None,
                "msg": f"ansible-playbook stopped ({runner.status}, rc {runner.rc}): "
                       + tail(artifacts / "stdout")[-MSG_CHARS:]})
    return runner.status, runner.rc, artifacts


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
