"""Running a campaign: schools in parallel (bounded), each school's state saved on every change.

A school's job never stops another's: whatever happens in it (failed task, unreachable host,
a playbook that does not even start) ends in that school's state. SIGINT/SIGTERM cancel the
jobs under way (their schools go back to `pending`) and start no new one; a SIGKILL leaves
the schools under way `running` in the status file: the next run converges them again, and
skips the schools already `ok`.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

from cartable.campaign import status as st
from cartable.campaign.jobs import JobSpec, Recorder, final_state, run_school, stamp, stop_job
from cartable.campaign.relay import run_school_relay
from cartable.campaign.schools import School

Notify = Callable[[str, dict[str, Any]], None]  # (event: start|end|update, status)


class Campaign:
    """The schools of one run of a campaign, and the status file they are saved to."""

    def __init__(self, folder: Path, status: dict[str, Any], spec: JobSpec, forks: int,
                 notify: Notify | None = None) -> None:
        self.folder = folder
        self.path = folder / st.STATUS
        self.status = status
        self.spec = spec
        self.forks = max(1, forks)
        self.notify = notify or (lambda _event, _status: None)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.leftovers: dict[str, str] = {}  # UAI -> job tag of a killed controller's job

    def _save(self) -> None:
        with self.lock:
            st.save(self.path, self.status)

    def _saved(self) -> None:
        self._save()
        self.notify("update", self.status)

    def _one(self, school: School) -> None:
        if self.stop.is_set():
            return
        with self.lock:
            entry = self.status["schools"][school.uai]
            left = self.leftovers.pop(school.uai, None)
        if left:  # a killed controller's job may still run: end it before converging again
            if stop_job(left):
                self.notify("note", {"uai": school.uai, "note": "stopped the job a killed "
                                     "controller left running", **self.status})
        ident = stamp()
        with self.lock:
            fresh = st.new_school(school.wave)
            fresh["runs"] = entry.get("runs", 0) + 1
            fresh.update(state="running", started=st.now(), job=f"{self.folder}/{school.uai}/{ident}")
            self.status["schools"][school.uai] = entry = fresh
        self._save()
        self.notify("start", self.status)
        recorder = Recorder(entry, self.lock, self.spec.check, self._saved)
        spec = self.spec
        if spec.hosts:  # only this school's own hosts in its job's --limit (none of them: the
            # whole list is kept, whose `&group` then matches nothing: never the whole school)
            spec = replace(spec, hosts=tuple(h for h in spec.hosts if h in school.hosts) or spec.hosts)
        try:
            private = self.folder / "runs" / school.uai
            if spec.relay:
                command = [w.replace("{server}", school.server or "")
                           for w in spec.relay_command] or None
                runner_status, rc, artifacts = run_school_relay(
                    spec, school.group, school.server or "", private, ident, recorder,
                    self.stop.is_set, entry["job"], command)
            else:
                runner_status, rc, artifacts = run_school(
                    spec, school.group, private, ident, recorder, self.stop.is_set,
                    entry["job"])
            artifacts_rel: str | None = str(artifacts.relative_to(self.folder))
        except Exception as exc:  # noqa: BLE001 - one school's trouble must not stop the others
            runner_status, rc, artifacts_rel = "error", None, None
            with self.lock:
                entry["errors"].append({"host": None, "task": None,
                                        "msg": f"the job could not run: {exc}"})
        with self.lock:
            entry["state"] = final_state(entry, runner_status, rc)
            entry["ended"] = None if entry["state"] == "pending" else st.now()
            entry["artifacts"] = artifacts_rel
        self._save()
        self.notify("end", {"uai": school.uai, **self.status})

    def run(self, schools: list[School]) -> dict[str, Any]:
        """Converge `schools` (their entries exist in the status); the final status."""
        with self.lock:
            for school in schools:
                entry = self.status["schools"].setdefault(school.uai, st.new_school(school.wave))
                entry["wave"] = school.wave
                if entry["state"] == "running" and entry.get("job"):
                    self.leftovers[school.uai] = entry["job"]
                if entry["state"] != st.DONE:
                    entry["state"] = "pending"
        self._save()
        previous = _install_signals(self.stop)
        try:
            with ThreadPoolExecutor(max_workers=self.forks, thread_name_prefix="school") as pool:
                futures = [pool.submit(self._one, school) for school in schools]
                while not all(f.done() for f in futures):
                    time.sleep(0.2)
                    self.notify("tick", self.status)
                for future in futures:
                    future.result()
        finally:
            _restore_signals(previous)
        return self.status


def _install_signals(stop: threading.Event) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old)
