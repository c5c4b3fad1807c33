"""The school cache's fetcher against a store served over HTTP on loopback (real client)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from cartable.images import store as st
from cartable.images.fetch import main


def _chunk(store: Path, content: bytes) -> str:
    chunk_id = hashlib.new("sha512_256", content).hexdigest()
    path = st.chunk_path(store, chunk_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(subprocess.run(["zstd", "-q", "-c"], input=content, capture_output=True,
                                    check=True).stdout)
    return chunk_id


def _publish(store: Path, image: str, version: str, contents: list[bytes]) -> set[str]:
    """A version as `cartable image build` publishes it, with the given chunk contents."""
    ids = [_chunk(store, c) for c in contents]
    folder = st.version_dir(store, image, version)
    folder.mkdir(parents=True)
    index = struct.pack("<QQQQQQ", 48, 0x96824D9C7B129FF9, 0, 16384, 65536, 262144)
    index += struct.pack("<QQ", 2**64 - 1, 0xE75B9E112F17417D)
    end = 0
    for content, chunk_id in zip(contents, ids):
        end += len(content)
        index += struct.pack("<Q", end) + bytes.fromhex(chunk_id)
    index += struct.pack("<QQQQQ", 0, 0, 48, 16 + 40 * len(ids) + 40, 0x4B4F050E5549ECD1)
    (folder / st.INDEX).write_bytes(index)
    st.write_manifest(folder / st.MANIFEST, {
        "format": 1, "image": image, "version": version, "packages": {}, "index": st.INDEX,
        "index_sha256": hashlib.sha256(index).hexdigest()})
    (store / image / "latest").write_text(version + "\n")
    return set(ids)


@pytest.fixture()
def served(tmp_path: Path):
    store = tmp_path / "dsi"
    store.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass
    handler = functools.partial(Quiet, directory=str(store))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield store, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _blocks(seed: int, n: int) -> list[bytes]:
    return [hashlib.sha256(f"{seed}-{i}".encode()).digest() * 2048 for i in range(n)]


def test_fetch_new_version_only_new_chunks_and_resume(served, tmp_path: Path, capsys) -> None:
    store, url = served
    cache = tmp_path / "school"
    v1 = _blocks(1, 6)
    _publish(store, "cycle2", "2026.1", v1)
    args = ["--source", url, "--cache", str(cache), "--image", "cycle2"]
    assert main(args) == 0
    assert "cycle2 2026.1: 6 of 6 chunks fetched" in capsys.readouterr().out
    assert (cache / "cycle2" / "2026.1" / st.MANIFEST).exists()
    assert main(args) == 0
    assert "cycle2 2026.1: up to date" in capsys.readouterr().out
    # v2: two new chunks, one of them missing from the DSI store for now (an interrupted run)
    new = _blocks(2, 2)
    ids = _publish(store, "cycle2", "2026.2", v1[:5] + new)
    lost = st.chunk_path(store, hashlib.new("sha512_256", new[1]).hexdigest())
    lost.rename(lost.with_suffix(".away"))
    assert main(args) == 2
    assert "the next run resumes" in capsys.readouterr().err
    assert not (cache / "cycle2" / "2026.2").exists()          # not visible until complete
    lost.with_suffix(".away").rename(lost)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "cycle2 2026.2: 1 of 7 chunks fetched" in out         # what arrived is not re-fetched
    assert {p.stem for p in (cache / st.CHUNKS).rglob("*.cacnk")} >= ids
    assert (cache / "cycle2" / "latest").read_text() == "2026.2\n"


def test_corrupted_chunk_is_refused(served, tmp_path: Path, capsys) -> None:
    store, url = served
    ids = _publish(store, "essai", "1", _blocks(3, 2))
    victim = st.chunk_path(store, sorted(ids)[0])
    victim.write_bytes(subprocess.run(["zstd", "-q", "-c"], input=b"something else",
                                      capture_output=True, check=True).stdout)
    assert main(["--source", url, "--cache", str(tmp_path / "c"), "--image", "essai"]) == 2
    assert "does not match its name" in capsys.readouterr().err
    assert not st.chunk_path(tmp_path / "c", sorted(ids)[0]).exists()
    assert not list((tmp_path / "c").rglob(f"{sorted(ids)[0]}*"))   # fetched again next run


def test_rate_limit_and_pruning(served, tmp_path: Path, capsys) -> None:
    store, url = served
    _publish(store, "essai", "1", _blocks(4, 4))
    size = sum(p.stat().st_size for p in (store / st.CHUNKS).rglob("*.cacnk"))
    cache = tmp_path / "c"
    started = time.monotonic()
    assert main(["--source", url, "--cache", str(cache), "--image", "essai",
                 "--rate", str(size * 2)]) == 0      # ~0.5 s at this rate
    assert time.monotonic() - started >= 0.45
    _publish(store, "essai", "2", _blocks(5, 2))
    assert main(["--source", url, "--cache", str(cache), "--image", "essai", "--keep", "1"]) == 0
    assert sorted(p.name for p in (cache / "essai").iterdir()) == ["2", "latest"]
    kept = {c.id for c in st.read_index(cache / "essai" / "2" / st.INDEX)}
    assert {p.stem for p in (cache / st.CHUNKS).rglob("*.cacnk")} == kept  # v1's chunks gone
    assert json.loads((cache / "essai" / "2" / st.MANIFEST).read_text())["version"] == "2"
