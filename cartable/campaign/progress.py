"""The progress line of a long campaign, on a terminal only (never in CI or a pipe).

    site: 12/40 done, 2 failed, 4 running | juillet [######----] 9/15 | aout [#---] 3/25 | ~18 min left

Finished schools are also printed one per line (on a terminal or not): that is the log.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any, TextIO

from cartable.campaign import status as st

BAR = 10


def wanted(stream: TextIO) -> bool:
    """A progress line only on a terminal, and never when CI is set."""
    return stream.isatty() and not os.environ.get("CI")


def bar(done: int, total: int, width: int = BAR) -> str:
    filled = 0 if total == 0 else round(width * done / total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def time_left(durations: list[float], remaining: int, forks: int) -> str:
    """Remaining schools × mean duration of those finished in this run / schools at once."""
    if remaining == 0:
        return "done"
    if not durations:
        return "time left: ?"
    seconds = sum(durations) / len(durations) * remaining / max(1, min(forks, remaining))
    return f"~{int(seconds // 60)} min {int(seconds % 60):02d} s left" if seconds >= 60 \
        else f"~{int(seconds)} s left"


def line(name: str, status: dict[str, Any], uais: list[str], durations: list[float],
         forks: int) -> str:
    """The whole progress line for the schools `uais` of this run."""
    schools = status["schools"]
    ended = [u for u in uais if schools[u]["state"] in ("ok", "failed", "unreachable")]
    failed = [u for u in ended if schools[u]["state"] != "ok"]
    running = [u for u in uais if schools[u]["state"] == "running"]
    parts = [f"{name}: {len(ended)}/{len(uais)} done, {len(failed)} failed, "
             f"{len(running)} running"]
    waves: dict[str, list[str]] = {}
    for uai in uais:
        waves.setdefault(str(schools[uai].get("wave") or "-"), []).append(uai)
    if len(waves) > 1 or "-" not in waves:
        for wave, members in waves.items():
            done = sum(1 for u in members if u in ended)
            parts.append(f"{wave} {bar(done, len(members))} {done}/{len(members)}")
    parts.append(time_left(durations, len(uais) - len(ended), forks))
    return " | ".join(parts)


class Progress:
    """Redraws one line on `stream` (a terminal); prints each finished school as a line."""

    def __init__(self, name: str, uais: list[str], forks: int, out: TextIO, err: TextIO,
                 enabled: bool) -> None:
        self.name, self.uais, self.forks = name, uais, forks
        self.out, self.err, self.enabled = out, err, enabled
        self.durations: list[float] = []
        self.started: dict[str, float] = {}
        self.shown = False
        self.last = 0.0

    def __call__(self, event: str, status: dict[str, Any]) -> None:
        if event == "start":
            for uai in self.uais:
                if status["schools"][uai]["state"] == "running":
                    self.started.setdefault(uai, time.monotonic())
        if event == "note":
            self._clear()
            self.out.write(f"{status['uai']}: {status['note']}\n")
            self.out.flush()
        if event == "end":
            uai = status["uai"]
            took = time.monotonic() - self.started.get(uai, time.monotonic())
            school = status["schools"][uai]
            if school["state"] != "pending":
                self.durations.append(took)
            self._clear()
            self.out.write(school_line(uai, school, took) + "\n")
            self.out.flush()
        if self.enabled and (event != "tick" or time.monotonic() - self.last >= 1):
            self.last = time.monotonic()
            width = shutil.get_terminal_size((100, 20)).columns - 1
            text = line(self.name, status, self.uais, self.durations, self.forks)[:width]
            self.err.write("\r\033[K" + text)
            self.err.flush()
            self.shown = True

    def _clear(self) -> None:
        if self.shown:
            self.err.write("\r\033[K")
            self.err.flush()
            self.shown = False

    def close(self) -> None:
        self._clear()


def school_line(uai: str, school: dict[str, Any], took: float) -> str:
    state = school["state"]
    what = {"ok": f"ok, {school['changed']} changed", "pending": "interrupted (pending)"}.get(
        state, f"{state}: " + ", ".join(school["failed_hosts"] or ["(no host)"]))
    if state in ("failed", "unreachable") and school["errors"]:
        what += f" — {school['errors'][0]['msg'][:120]}"
    return f"{uai} ({school.get('wave') or '-'}): {what} [{took:.0f} s]"


def summary(status: dict[str, Any], uais: list[str]) -> str:
    c = st.counts(status, uais)
    return (f"{len(uais)} school(s): {c['ok']} ok, {c['failed']} failed, "
            f"{c['unreachable']} unreachable, {c['pending'] + c['running']} not done")
