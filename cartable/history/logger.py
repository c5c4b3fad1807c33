"""`cartable-history-logger`: squid's logfile daemon writing one file per local day.

squid.conf (rendered by the role; see docs/history.md):

    logformat cartable_history %ts.%03tu %>a %>eui %Ss/%03>Hs %rm %ru %<st %ea
    logfile_daemon /usr/local/bin/cartable-history-logger
    access_log daemon:/var/log/cartable/history cartable_history

squid starts `(logfile-daemon) <path>` and writes commands on its stdin, one a line, and reads
nothing back (squid 5 src/log/ModDaemon.cc, src/log/file/log_file_daemon.cc): `L<line>` a log
line, `R` rotate, `T` truncate, `O` reopen, `F` flush, `r<n>` rotate count, `b<n>` buffering.
If this process exits, squid's next write fails and squid stops (fatal): so it never exits
before end of input, whatever the input, the files or the disk do.

- `<path>` is the history folder (made by the role; while it is missing, lines are dropped
  and cache.log says so once a minute).
- Day files: `<folder>/YYYY-MM-DD.log` (the server's local day at the time of writing, never
  going back: a file that was closed is never written again, so `seal` can hash it), created
  0640 (group adm when the process may set it), first line a header (formats.HEADER).
- Leases journal: `<folder>/leases-YYYY-MM-DD`: the leases at the day's first line, then
  every lease added or gone, time-stamped.
- `R`/`O`: close and reopen the day's file (rotation is by day, retention by `purge`); `T`,
  `r<n>`: ignored (the history is never truncated); `b<n>`: ignored, output is flushed each
  time the input is drained and on `F`, so nothing waits in memory while squid is idle.
- The options squid cannot pass come from a fixed file, /etc/cartable/history/logger.json
  (`--config` for tests and hand runs): {"hosts": "...json", "leases": "...leases"}.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from cartable.history.formats import (HEADER, Clock, day_file, enriched, garbage, leases_file,
                                      parse_squid)
from cartable.history.hosts import Resolver, lease_changes

CONFIG = Path("/etc/cartable/history/logger.json")
DEFAULTS = {"hosts": "/etc/cartable/history/hosts.json",
            "leases": "/var/lib/misc/dnsmasq.leases", "reload_seconds": 1.0}
MAX_LINE = 1 << 20
WARN_EVERY = 60.0


@dataclass(frozen=True)
class Settings:
    hosts: Path | None
    leases: Path | None
    reload_seconds: float


def read_settings(path: Path) -> tuple[Settings, list[str]]:
    """The logger's settings; a missing or bad file gives the defaults and says why."""
    data: dict = dict(DEFAULTS)
    notes: list[str] = []
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            raise ValueError("expected an object {hosts, leases}")
        unknown = sorted(set(loaded) - set(DEFAULTS))
        if unknown:
            notes.append(f"{path}: unknown keys ignored: {', '.join(unknown)}")
        data.update({k: v for k, v in loaded.items() if k in DEFAULTS})
    except FileNotFoundError:
        notes.append(f"{path}: not found, using the defaults {DEFAULTS}")
    except (OSError, ValueError) as exc:
        notes.append(f"{path}: unusable ({exc}), using the defaults")
    try:
        seconds = float(data["reload_seconds"])
    except (TypeError, ValueError):
        notes.append(f"{path}: reload_seconds must be a number")
        seconds = 1.0
    return Settings(Path(data["hosts"]) if data["hosts"] else None,
                    Path(data["leases"]) if data["leases"] else None, seconds), notes


def _adm_gid() -> int:
    try:
        return grp.getgrnam("adm").gr_gid
    except KeyError:
        return -1


class DayFiles:
    """Today's history file and leases journal, opened on demand, never an earlier day."""

    def __init__(self, folder: Path, resolver: Resolver, now: Callable[[], float] = time.time,
                 warn: Callable[[str], None] | None = None) -> None:
        self.folder = folder
        self.resolver = resolver
        self.now = now
        self.clock = Clock()
        self.day: date | None = None
        self.day_end = float("-inf")
        self.fd = -1
        self.pending: list[str] = []
        self.retry_at = float("-inf")
        self.warned: dict[str, float] = {}
        self.warn_sink = warn or (lambda text: print(f"cartable-history-logger: {text}",
                                                     file=sys.stderr, flush=True))
        self.lines = 0
        self.dropped = 0
        self.gid = _adm_gid()

    # -- input -----------------------------------------------------------------------------
    def command(self, raw: bytes) -> None:
        """One line of squid's stdin, without its newline."""
        try:
            self._command(raw)
        except Exception as exc:  # noqa: BLE001 - never stop squid for one line
            self.warn(f"line skipped after an unexpected error: {exc!r}")

    def _command(self, raw: bytes) -> None:
        kind = raw[:1]
        if kind == b"L":
            self.log(raw[1:].decode("utf-8", errors="backslashreplace"))
        elif kind == b"F":
            self.flush()
        elif kind in (b"R", b"O"):
            self.flush()
            self.close()
        elif kind in (b"T", b"r", b"b"):
            return
        elif raw:
            self.log(raw.decode("utf-8", errors="backslashreplace"))

    def log(self, text: str) -> None:
        now = self.now()
        if now >= self.day_end or self.fd < 0:
            self._roll(now)
        before = self.resolver.leases_text
        for problem in self.resolver.refresh(now):
            self.warn(problem)
        if self.resolver.leases_text is not before:
            self._journal(lease_changes(before, self.resolver.leases_text), now)
        line = parse_squid(text)
        if line is None:
            out = garbage(text, self.clock, now)
        else:
            mac, name = self.resolver.lookup(line.ip, line.eui)
            out = enriched(line, self.clock, mac, name)
        self.pending.append(out)
        self.lines += 1

    # -- files -----------------------------------------------------------------------------
    def _roll(self, now: float) -> None:
        today = date.fromtimestamp(now)
        if self.day is None or today > self.day:  # never back to an earlier (closed) day
            self.flush()
            self.close()
            self.day = today
            self.day_end = _midnight_after(today)
            for problem in self.resolver.refresh(now, force=True):
                self.warn(problem)
            self._journal([f"= {line}" for line in self.resolver.leases_text.splitlines()
                           if line.strip()], now, start=True)
        if self.fd < 0 and now >= self.retry_at:
            self.fd = self._open(self.folder / day_file(self.day), HEADER)
            if self.fd < 0:
                self.retry_at = now + 10

    def _open(self, path: Path, header: str) -> int:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            self.warn(f"cannot open {path}: {exc.strerror} (lines are dropped until it opens)")
            return -1
        try:
            if os.fstat(fd).st_size == 0:
                os.fchmod(fd, 0o640)
                if self.gid >= 0:
                    try:
                        os.fchown(fd, -1, self.gid)
                    except OSError:
                        pass  # not a member of adm: the folder's group (setgid) stays
                _write(fd, header.encode())
        except OSError as exc:
            self.warn(f"{path}: {exc.strerror}")
        return fd

    def _journal(self, changes: list[str], now: float, start: bool = False) -> None:
        if self.day is None or self.resolver.leases_path is None or not (changes or start):
            return
        stamp = self.clock.iso(now)
        source = self.resolver.leases_path
        head = f"# {stamp} leases of {source} at the start of the day\n" if start else ""
        text = head + "".join(f"{stamp}\t{change}\n" for change in changes)
        fd = self._open(self.folder / leases_file(self.day), "#cartable-history-leases/1\n")
        if fd >= 0:
            try:
                _write(fd, text.encode("utf-8", errors="backslashreplace"))
            except OSError as exc:
                self.warn(f"{leases_file(self.day)}: {exc.strerror}")
            finally:
                os.close(fd)

    def flush(self) -> None:
        if not self.pending:
            return
        data = "".join(self.pending).encode("utf-8", errors="backslashreplace")
        count = len(self.pending)
        self.pending.clear()
        if self.fd < 0:
            self.dropped += count
            return
        try:
            _write(self.fd, data)
        except OSError as exc:
            self.dropped += count
            self.warn(f"writing {day_file(self.day) if self.day else '?'}: {exc.strerror} "
                      f"({self.dropped} lines dropped so far)")

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1
        self.retry_at = float("-inf")

    def warn(self, text: str) -> None:
        now = time.monotonic()
        if len(self.warned) > 1000:
            self.warned.clear()
        if now - self.warned.get(text, float("-inf")) >= WARN_EVERY:
            self.warned[text] = now
            self.warn_sink(text)


def _midnight_after(day: date) -> float:
    return time.mktime((day + timedelta(days=1)).timetuple())


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        done = os.write(fd, view)
        view = view[done:]


def serve(files: DayFiles, fd: int) -> None:
    """Read squid's commands until end of input; flush whenever the input is drained."""
    rest = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        if len(rest) > MAX_LINE:
            lines.append(rest)
            rest = b""
        for raw in lines:
            files.command(raw)
        files.flush()
    if rest:
        files.command(rest)
    files.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cartable-history-logger",
        description="squid's logfile_daemon: one history file per day, enriched with the "
                    "workstation's MAC and name (docs/history.md)")
    parser.add_argument("--config", type=Path, default=CONFIG,
                        help=f"settings (default {CONFIG}; squid passes no options)")
    parser.add_argument("path", type=Path, help="the history folder (from access_log daemon:)")
    args = parser.parse_args(argv)
    settings, notes = read_settings(args.config)
    resolver = Resolver(settings.hosts, settings.leases, settings.reload_seconds)
    files = DayFiles(args.path, resolver)
    for note in notes:
        files.warn(note)

    def terminate(_signum: int, _frame: object) -> None:
        # squid closes our stdin, then sends SIGTERM: drain what is left, at most 5 s.
        files.flush()
        signal.signal(signal.SIGALRM, lambda *_: sys.exit(0))
        signal.alarm(5)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, lambda *_: setattr(resolver, "checked", float("-inf")))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        serve(files, sys.stdin.fileno())
    finally:
        files.flush()
        files.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
