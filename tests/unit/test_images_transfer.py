"""The fetcher's transfers against a real HTTP/1.1 server on loopback that counts its TCP
connections and requests: keep-alive, chunks in flight, rate limit, retries, old manifests."""

from __future__ import annotations

import functools
import hashlib
import http.client
import http.server
import json
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from cartable.images import store as st
from cartable.images.fetch import main
from cartable.images.transfer import TokenBucket
from test_images_fetch import _blocks, _publish  # tests/unit is on sys.path (rootdir-less test folder)


class Counting:
    """What the server saw; `drop` lists the request numbers it answers with half a body
    and then closes the connection (a link that drops mid-transfer)."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.drop: set[int] = set()
        self.lock = threading.Lock()


def _handler(counts: Counting, directory: str, delay: float):
    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"   # keep-alive, as nginx/apache serve the DSI store

        def setup(self) -> None:
            with counts.lock:
                counts.connections += 1
            super().setup()

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            with counts.lock:
                counts.requests += 1
                number = counts.requests
                counts.in_flight += 1
                counts.max_in_flight = max(counts.max_in_flight, counts.in_flight)
            try:
                time.sleep(delay)  # a round trip: what keep-alive and parallelism hide
                if number in counts.drop:
                    body = Path(self.translate_path(self.path)).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                super().do_GET()
            finally:
                with counts.lock:
                    counts.in_flight -= 1
    return functools.partial(Handler, directory=directory)


@pytest.fixture()
def counted(tmp_path: Path):
    store = tmp_path / "dsi"
    store.mkdir()
    counts = Counting()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(counts, str(store), 0.005))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield store, f"http://127.0.0.1:{server.server_address[1]}", counts
    server.shutdown()
    server.server_close()


def _small_blocks(seed: int, n: int) -> list[bytes]:
    return [hashlib.sha256(f"{seed}-{i}".encode()).digest() * 64 for i in range(n)]


def test_connections_are_reused_and_chunks_in_flight(counted, tmp_path: Path, capsys) -> None:
    store, url, counts = counted
    ids = _publish(store, "essai", "1", _small_blocks(1, 300))
    cache = tmp_path / "school"
    assert main(["--source", url, "--cache", str(cache), "--image", "essai", "--parallel", "3"]) == 0
    out = capsys.readouterr().out
    assert "essai 1: 300 of 300 chunks fetched" in out
    assert counts.requests == 303                    # latest, manifest, index, 300 chunks
    assert counts.connections <= 3                   # 303 requests over at most 3 connections
    assert counts.max_in_flight >= 2                 # several chunks in flight
    assert f"{counts.requests} requests over {counts.connections} connections" in out
    assert {p.stem for p in (cache / st.CHUNKS).rglob("*.cacnk")} == ids


def test_without_keepalive_one_connection_per_request(counted, tmp_path: Path) -> None:
    store, url, counts = counted
    _publish(store, "essai", "1", _small_blocks(2, 20))
    assert main(["--source", url, "--cache", str(tmp_path / "c"), "--image", "essai",
                 "--parallel", "1", "--no-keepalive"]) == 0
    # (not max_in_flight: the server's previous thread may still be finishing when the next
    # request arrives on a new connection)
    assert (counts.connections, counts.requests) == (23, 23)   # one connection per request


def test_dropped_connection_is_retried(counted, tmp_path: Path, capsys) -> None:
    store, url, counts = counted
    ids = _publish(store, "essai", "1", _blocks(3, 8))
    counts.drop = {5, 9}                             # two chunk requests cut in the middle
    cache = tmp_path / "c"
    assert main(["--source", url, "--cache", str(cache), "--image", "essai", "--parallel", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 retries" in out and "essai 1: 8 of 8 chunks fetched" in out
    assert counts.requests == 3 + 8 + 2
    assert {p.stem for p in (cache / st.CHUNKS).rglob("*.cacnk")} == ids   # all verified


def test_rate_limit_holds(counted, tmp_path: Path, capsys) -> None:
    store, url, _ = counted
    _publish(store, "essai", "1", [hashlib.shake_256(b"%d" % i).digest(65536) for i in range(10)])
    size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())   # 10 incompressible
    rate = size // 2                                      # ~2 s at this rate
    started = time.monotonic()
    assert main(["--source", url, "--cache", str(tmp_path / "c"), "--image", "essai",
                 "--rate", str(rate), "--parallel", "4"]) == 0
    took = time.monotonic() - started
    assert 1.8 <= took <= 2.6, took                       # the rate, within ~10-30 %


def test_token_bucket_bounds_any_window() -> None:
    bucket = TokenBucket(rate=400_000, burst=50_000)
    times: list[tuple[float, int]] = []
    lock = threading.Lock()

    def reader() -> None:
        for _ in range(40):
            bucket.take(8192)
            with lock:
                times.append((time.monotonic(), 8192))
    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times.sort()
    start = times[0][0]
    # no window (from the first byte) holds more than rate × window + burst (+ one block)
    for end, _ in times:
        taken = sum(n for t, n in times if t <= end)
        assert taken <= 400_000 * (end - start) + 50_000 + 2 * 8192, (end - start, taken)
    total = sum(n for _, n in times)
    assert times[-1][0] - start >= (total - 50_000) / 400_000 * 0.95


def test_corrupt_chunk_refused_with_parallel_connections(counted, tmp_path: Path, capsys) -> None:
    store, url, _ = counted
    ids = sorted(_publish(store, "essai", "1", _small_blocks(5, 40)))
    st.chunk_path(store, ids[7]).write_bytes(st.chunk_path(store, ids[8]).read_bytes())
    cache = tmp_path / "c"
    assert main(["--source", url, "--cache", str(cache), "--image", "essai"]) == 2
    assert "does not match its name" in capsys.readouterr().err
    assert not list(cache.rglob(f"{ids[7]}*"))            # refused, fetched again next run
    assert st.chunk_path(cache, ids[8]).exists()          # the good ones are kept


def test_old_manifest_is_a_clear_error(counted, tmp_path: Path, capsys) -> None:
    store, url, counts = counted
    _publish(store, "essai", "1", _small_blocks(6, 3))
    manifest = store / "essai" / "1" / st.MANIFEST
    data = json.loads(manifest.read_text())
    del data["index_sha256"]                              # as built before the fetcher checked it
    manifest.write_text(json.dumps(data))
    assert main(["--source", url, "--cache", str(tmp_path / "c"), "--image", "essai"]) == 2
    err = capsys.readouterr().err
    assert "essai/1/manifest.json: [index_sha256]" in err and "rebuild or republish" in err
    assert "next run resumes" not in err and "Traceback" not in err
    assert counts.requests == 2                           # latest and manifest, no chunk
    data["format"] = 9                                    # a newer builder's manifest
    manifest.write_text(json.dumps(data))
    assert main(["--source", url, "--cache", str(tmp_path / "c"), "--image", "essai"]) == 2
    assert "[format] manifest format 9" in capsys.readouterr().err


def test_interrupted_run_resumes_without_refetching(counted, tmp_path: Path, capsys) -> None:
    store, url, counts = counted
    ids = sorted(_publish(store, "essai", "1", _small_blocks(7, 200)))
    away = st.chunk_path(store, ids[150])
    away.rename(away.with_suffix(".away"))                # a 404 stops the first run
    cache = tmp_path / "c"
    args = ["--source", url, "--cache", str(cache), "--image", "essai"]
    assert main(args) == 2
    assert "the next run resumes" in capsys.readouterr().err
    kept = {p.stem for p in (cache / st.CHUNKS).rglob("*.cacnk")}
    kept |= {p.name.removesuffix(".zst") for p in cache.rglob("incoming/*.zst")}
    assert len(kept) >= 128                               # a verified batch at least
    away.with_suffix(".away").rename(away)
    before = counts.requests
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"essai 1: {200 - len(kept)} of 200 chunks fetched" in out
    assert counts.requests - before == 3 + 200 - len(kept)


def test_through_a_plain_http_proxy_kept_alive(counted, tmp_path: Path, capsys) -> None:
    """The academic proxy: absolute-URI requests, its connections from the school reused."""
    store, url, _ = counted
    ids = _publish(store, "essai", "1", _small_blocks(8, 60))
    seen = Counting()
    targets: list[str] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            with seen.lock:
                seen.connections += 1
            super().setup()

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            with seen.lock:
                seen.requests += 1
                targets.append(self.path)
            target = urllib.parse.urlsplit(self.path)
            upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
            upstream.request("GET", target.path)
            body = upstream.getresponse().read()
            upstream.close()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        cache = tmp_path / "c"
        assert main(["--source", url, "--cache", str(cache), "--image", "essai", "--parallel", "2",
                     "--proxy", f"http://127.0.0.1:{proxy.server_address[1]}"]) == 0
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert seen.requests == 63 and seen.connections <= 2, (seen.requests, seen.connections)
    assert all(t.startswith(f"{url}/") for t in targets)          # absolute URIs
    assert {p.stem for p in (cache / st.CHUNKS).rglob("*.cacnk")} == ids
