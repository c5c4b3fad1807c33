"""cartable-filter-helper: squid's external ACL helper for the school filter (fail-closed).

    cartable-filter-helper --policy POLICY.json --lists /var/lib/cartable/filter/current

Protocol (squid external_acl_type with concurrency=N): each request line is
`<channel-ID> <value> [more values]`, the value being a host (%>rd, %DST), host:port (CONNECT)
or a URL (%>ru), URL-escaped by squid; each reply is `<channel-ID> OK|ERR [message=... log=...]`.
Every line read is answered before the helper waits for more input (replies to the lines of one
read are written together).

Fail-closed: `OK` only on a positive verdict. No list, a list that does not verify, a list that
lacks a category the policy names, a policy that does not load, an exception while judging:
`ERR message=filter-unavailable`. squid itself denies on `ERR`, on `BH`, on a helper that died or
timed out, and on an overloaded queue, when the only allow rule is `http_access allow ...
filter_ok` followed by `http_access deny all` (see docs/filtering.md).

Swap: `--lists` is a file or a folder (usually the symlink `current` -> a build folder) holding
`lists.cfl`. The helper stats it at most once per --check-interval (on a request) or at once
after SIGHUP, and reopens it when it changed. A new file (another inode) that fails
verification is ignored: the previous build keeps filtering. A file changed in place (same
inode: truncated or rewritten under the helper) or removed drops the current build: refused
until a good one appears. Builds are published by rename only (cartable filter compile does).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

from cartable.errors import InputError, Problem
from cartable.filtering.compiled import Build, BuildError, open_build
from cartable.filtering.policy import (UNAVAILABLE_VERDICT, Policy, Rules, bind, judge,
                                       policy_from_dict)

BUILD_FILE = "lists.cfl"
CACHE_ENTRIES = 65536
_Identity = tuple[int, int, int, int] | None


def build_path(lists: Path) -> Path:
    """The compiled file behind --lists (a file, or a folder holding lists.cfl)."""
    return lists / BUILD_FILE if lists.is_dir() else lists


def read_policy(path: Path) -> Policy:
    """The policy of a JSON file; InputError with file, line or field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(Problem(str(path), f"the policy cannot be read: {exc.strerror or exc}",
                                 hint="give the policy JSON file")) from None
    except UnicodeDecodeError:
        raise InputError(Problem(str(path), "the policy is not UTF-8 text")) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(Problem(str(path), f"not valid JSON: {exc.msg}", exc.lineno,
                                 hint="fix the JSON syntax (a missing comma or quote?)")) \
            from None
    return policy_from_dict(data, str(path))


def _log(message: str) -> None:
    print(f"cartable-filter-helper: {message}", file=sys.stderr, flush=True)


class Source:
    """The current rules (policy bound to a verified build), refreshed when the list changes."""

    def __init__(self, policy: Policy | None, lists: Path, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 log: Callable[[str], None] = _log) -> None:
        self.policy = policy
        self.lists = lists
        self.interval = interval
        self.clock = clock
        self.log = log
        self.rules: Rules | None = None
        self.force = True
        self.swaps = 0
        self._seen: _Identity | str = "unset"
        self._checked = float("-inf")

    def _stat(self) -> _Identity:
        try:
            st = os.stat(build_path(self.lists))
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def refresh(self) -> bool:
        """Look at the list if due; True when the rules changed."""
        now = self.clock()
        if not self.force and now - self._checked < self.interval:
            return False
        self.force = False
        self._checked = now
        identity = self._stat()
        if identity == self._seen:
            return False
        self._seen = identity
        return self._reopen(identity)

    def _reopen(self, identity: _Identity) -> bool:
        changed = False
        current = self.rules.build if self.rules else None
        if current is not None and (identity is None or identity[:2] == current.identity[:2]):
            why = "absent" if identity is None else "changed in place"
            self.log(f"{current.path}: {why}; refusing every request until a good build "
                     "appears")
            self._drop()
            changed = True
        if identity is None:
            if not changed:
                self.log(f"{build_path(self.lists)}: absent; refusing every request")
            return changed
        if self.policy is None:
            return changed
        keep = "the previous build keeps filtering" if self.rules else "refusing every request"
        try:
            build = open_build(build_path(self.lists))
        except BuildError as exc:
            self.log(f"new build ignored: {exc}; {keep}")
            return changed
        try:
            rules = bind(self.policy, build)
        except ValueError as exc:
            build.close()
            self.log(f"new build ignored: {exc} (policy {self.policy.name}); {keep}")
            return changed
        self._drop()
        self.rules = rules
        self.swaps += 1
        self.log(f"filtering with {build.path}: {len(build)} entries, "
                 f"{len(build.categories)} categories, policy {self.policy.name}")
        return True

    def _drop(self) -> None:
        if self.rules is not None:
            old: Build = self.rules.build
            self.rules = None
            try:
                old.close()
            except BufferError:  # a view still alive: let the collector unmap it
                pass


class Responder:
    """Turns request lines into reply lines (bytes), with a small verdict cache per build."""

    def __init__(self, source: Source, channels: bool = True) -> None:
        self.source = source
        self.channels = channels
        self.cache: dict[str, str] = {}

    def reply(self, line: bytes) -> bytes:
        text = line.decode("utf-8", "replace").strip()
        parts = text.split()
        channel = ""
        if self.channels and parts:
            channel, parts = parts[0] + " ", parts[1:]
        value = unquote(parts[0]) if parts else ""
        answer = self.cache.get(value)
        if answer is None:
            try:
                answer = judge(self.source.rules, value).reply()
            except Exception as exc:  # noqa: BLE001 - any failure must still deny
                self.source.log(f"error judging {value!r}: {exc!r}; refused")
                answer = UNAVAILABLE_VERDICT.reply()
            else:
                if len(self.cache) >= CACHE_ENTRIES:
                    self.cache.clear()
                self.cache[value] = answer
        return f"{channel}{answer}\n".encode()

    def lines(self, lines: list[bytes]) -> bytes:
        if self.source.refresh():
            self.cache.clear()
        return b"".join(self.reply(line) for line in lines)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def serve(responder: Responder, in_fd: int = 0, out_fd: int = 1) -> None:
    """Answer every line of in_fd until end of input."""
    pending = b""
    while True:
        data = os.read(in_fd, 65536)
        if not data:
            return
        pending += data
        *lines, pending = pending.split(b"\n")
        if lines:
            _write_all(out_fd, responder.lines(lines))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cartable-filter-helper",
        description="squid external ACL helper of the school filter: OK only for an allowed "
        "host, ERR otherwise (fail-closed).")
    parser.add_argument("--policy", type=Path, required=True, help="the school's policy (JSON)")
    parser.add_argument("--lists", type=Path, required=True,
                        help="the compiled list, or a folder (e.g. the `current` symlink) "
                        f"holding {BUILD_FILE}")
    parser.add_argument("--check-interval", type=float, default=1.0, metavar="SECONDS",
                        help="look for a new build at most this often (default 1)")
    parser.add_argument("--no-channel-id", action="store_true",
                        help="requests carry no channel ID (squid concurrency=0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        policy: Policy | None = read_policy(args.policy)
    except InputError as exc:
        policy = None
        for problem in exc.problems:
            _log(f"{problem}")
        _log("no usable policy: refusing every request")
    source = Source(policy, args.lists, args.check_interval)

    def hangup(_signum: int, _frame: object) -> None:
        source.force = True

    signal.signal(signal.SIGHUP, hangup)
    source.refresh()
    try:
        serve(Responder(source, channels=not args.no_channel_id))
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
