"""The squid helper: fail-closed in every failure, atomic swaps, squid's concurrent protocol
over a real pipe."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from cartable.filtering import helper as helper_mod
from cartable.filtering.helper import Responder, Source
from cartable.filtering.policy import policy_from_dict

from filtering_fixtures import SAMPLE, build_file

REPO = Path(__file__).resolve().parents[2]
POLICY = {"name": "elementaire", "block": ["games", "gambling", "vpn"]}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _publish(tmp: Path, label: str, categories: dict | None = None) -> Path:
    """A build folder tmp/builds/<label>/lists.cfl, and `current` pointing at it (by rename)."""
    folder = tmp / "builds" / label
    folder.mkdir(parents=True)
    built = build_file(tmp, categories, name=f"{label}.cfl")
    os.replace(built, folder / "lists.cfl")
    _point(tmp, folder)
    return folder


def _point(tmp: Path, folder: Path) -> None:
    link = tmp / ".current.new"
    link.unlink(missing_ok=True)
    os.symlink(folder, link)
    os.replace(link, tmp / "current")


def _source(tmp: Path, logs: list[str], policy: dict = POLICY) -> tuple[Source, Clock]:
    clock = Clock()
    source = Source(policy_from_dict(policy), tmp / "current", 1.0, clock, logs.append)
    return source, clock


def _ask(responder: Responder, *values: str) -> list[str]:
    lines = [f"{i} {v}".encode() for i, v in enumerate(values)]
    return [r.split(" ", 1)[1] for r in responder.lines(lines).decode().splitlines()]


def test_no_list_then_a_list_then_swaps(tmp_path: Path) -> None:
    logs: list[str] = []
    source, clock = _source(tmp_path, logs)
    responder = Responder(source)
    assert _ask(responder, "casino.example", "www.elsewhere.example") == \
        ["ERR message=filter-unavailable log=filter-unavailable"] * 2
    _publish(tmp_path, "b1")
    assert _ask(responder, "casino.example")[0].startswith("ERR")  # not checked yet (< 1 s)
    clock.now = 1.0
    assert _ask(responder, "casino.example", "www.elsewhere.example") == \
        ["ERR message=gambling log=gambling", "OK"]
    # a new build lists elsewhere.example: after the swap the verdict changes (cache dropped)
    _publish(tmp_path, "b2", dict(SAMPLE, games=("black", "elsewhere.example\n")))
    clock.now = 2.5
    assert _ask(responder, "www.elsewhere.example") == ["ERR message=games log=games"]
    assert source.swaps == 2


def test_a_bad_new_build_is_ignored_and_the_previous_keeps_filtering(tmp_path: Path) -> None:
    logs: list[str] = []
    source, clock = _source(tmp_path, logs)
    responder = Responder(source)
    _publish(tmp_path, "good")
    assert _ask(responder, "casino.example") == ["ERR message=gambling log=gambling"]
    # a build truncated on disk (a half-written copy), published by rename
    bad = tmp_path / "builds" / "truncated"
    bad.mkdir()
    data = (tmp_path / "builds" / "good" / "lists.cfl").read_bytes()
    (bad / "lists.cfl").write_bytes(data[: len(data) - 7])
    _point(tmp_path, bad)
    clock.now = 5
    assert _ask(responder, "casino.example", "ok.example") == \
        ["ERR message=gambling log=gambling", "OK"]
    assert any("new build ignored" in line and "truncated" in line for line in logs)
    # a build lacking a category the policy blocks is ignored too
    _publish(tmp_path, "novpn", {k: v for k, v in SAMPLE.items() if k != "vpn"})
    clock.now = 10
    assert _ask(responder, "vpn.example") == ["ERR message=vpn log=vpn"]
    assert any("no category vpn" in line for line in logs)


def test_a_list_changed_in_place_or_removed_refuses_everything(tmp_path: Path) -> None:
    logs: list[str] = []
    source, clock = _source(tmp_path, logs)
    responder = Responder(source)
    folder = _publish(tmp_path, "b1")
    assert _ask(responder, "ok.example") == ["OK"]
    with open(folder / "lists.cfl", "r+b") as handle:  # truncated under the helper
        handle.truncate(100)
    clock.now = 1
    assert _ask(responder, "ok.example") == ["ERR message=filter-unavailable "
                                             "log=filter-unavailable"]
    assert any("changed in place" in line for line in logs)
    _publish(tmp_path, "b2")
    clock.now = 2
    assert _ask(responder, "ok.example") == ["OK"]
    (tmp_path / "current").unlink()
    clock.now = 3
    assert _ask(responder, "ok.example")[0].startswith("ERR message=filter-unavailable")


def test_an_exception_while_judging_refuses(tmp_path: Path, monkeypatch) -> None:
    logs: list[str] = []
    source, clock = _source(tmp_path, logs)
    _publish(tmp_path, "b1")
    responder = Responder(source)

    def boom(*_args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(helper_mod, "judge", boom)
    assert _ask(responder, "ok.example") == ["ERR message=filter-unavailable "
                                             "log=filter-unavailable"]
    assert any("boom" in line for line in logs)


# --- over a real pipe ------------------------------------------------------------------------

def _start(tmp: Path, policy: object = POLICY, *extra: str) -> subprocess.Popen:
    policy_file = tmp / "policy.json"
    policy_file.write_text(policy if isinstance(policy, str) else json.dumps(policy))
    return subprocess.Popen(
        [sys.executable, "-m", "cartable.filtering.helper", "--policy", str(policy_file),
         "--lists", str(tmp / "current"), "--check-interval", "0.05", *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})


def _exchange(proc: subprocess.Popen, lines: list[str], timeout: float = 10) -> list[str]:
    """Send lines in one write; read exactly as many reply lines (each flushed by the helper)."""
    assert proc.stdin and proc.stdout
    proc.stdin.write("".join(f"{line}\n" for line in lines).encode())
    proc.stdin.flush()
    replies: list[str] = []
    deadline = time.monotonic() + timeout
    buffer = b""
    fd = proc.stdout.fileno()
    while len(replies) < len(lines):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no reply within {timeout}s; got {replies}"
        chunk = os.read(fd, 65536)
        assert chunk, "the helper closed its output"
        buffer += chunk
        *done, buffer = buffer.split(b"\n")
        replies += [d.decode() for d in done]
    return replies


def test_concurrent_protocol_over_a_pipe(tmp_path: Path) -> None:
    _publish(tmp_path, "b1")
    proc = _start(tmp_path, POLICY, "--check-interval", "3600")  # swaps only on SIGHUP
    try:
        # one request, its reply before anything else is sent: nothing waits in a buffer
        assert _exchange(proc, ["0 casino.example -"]) == ["0 ERR message=gambling log=gambling"]
        # several channels interleaved, URL-escaped values, CONNECT host:port, a URL
        replies = _exchange(proc, ["3 www.elsewhere.example -", "1 vpn.example%3A443 -",
                                   "7 http%3A%2F%2Fplay.example.net%2Fx -", "2 1.2.3.4%3A443 -",
                                   "0 %5B%3A%3A1%5D%3A443 -", "5 -"])
        assert replies == ["3 OK", "1 ERR message=vpn log=vpn", "7 ERR message=games log=games",
                           "2 ERR message=ip-address log=ip-address",
                           "0 ERR message=ip-address log=ip-address",
                           "5 ERR message=invalid-host log=invalid-host"]
        # a swap while running: not seen before SIGHUP, seen after
        _publish(tmp_path, "b2", dict(SAMPLE, games=("black", "elsewhere.example\n")))
        assert _exchange(proc, ["4 www.elsewhere.example -"]) == ["4 OK"]
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        assert _exchange(proc, ["4 www.elsewhere.example -"]) == \
            ["4 ERR message=games log=games"]
    finally:
        proc.kill()
        proc.wait()


def test_a_helper_killed_mid_stream_restarts_without_state_and_fails_closed(tmp_path: Path) \
        -> None:
    folder = _publish(tmp_path, "b1")
    proc = _start(tmp_path)
    assert _exchange(proc, ["0 ok.example -"]) == ["0 OK"]
    assert proc.stdin
    proc.stdin.write(b"1 ok.example -\n2 casino.exa")  # a request cut in the middle
    proc.stdin.flush()
    proc.kill()
    proc.wait()
    # squid starts a new one; meanwhile the list disappeared: everything is refused
    (folder / "lists.cfl").unlink()
    again = _start(tmp_path)
    try:
        assert _exchange(again, ["0 ok.example -", "1 casino.example -"]) == \
            ["0 ERR message=filter-unavailable log=filter-unavailable",
             "1 ERR message=filter-unavailable log=filter-unavailable"]
        # the list comes back: it recovers by itself
        _publish(tmp_path, "b2")
        time.sleep(0.2)
        assert _exchange(again, ["0 ok.example -", "1 casino.example -"]) == \
            ["0 OK", "1 ERR message=gambling log=gambling"]
    finally:
        again.kill()
        again.wait()


def test_a_bad_policy_refuses_everything_and_says_why(tmp_path: Path) -> None:
    _publish(tmp_path, "b1")
    proc = _start(tmp_path, '{"block": ["games",]}')
    try:
        assert _exchange(proc, ["0 ok.example -"]) == \
            ["0 ERR message=filter-unavailable log=filter-unavailable"]
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert b"not valid JSON" in err and b"refusing every request" in err


def test_without_channel_ids(tmp_path: Path) -> None:
    _publish(tmp_path, "b1")
    proc = _start(tmp_path, POLICY, "--no-channel-id")
    try:
        assert _exchange(proc, ["casino.example", "ok.example"]) == \
            ["ERR message=gambling log=gambling", "OK"]
    finally:
        proc.kill()
        proc.wait()
