"""`cartable-image-fetch`: a school server's image cache, filled from the DSI's store over HTTP.

    cartable-image-fetch --source URL --cache DIR --image NAME [--image NAME ...]
                         [--rate BYTES_PER_S] [--parallel N] [--proxy URL] [--jitter SECONDS]
                         [--keep N] [--no-keepalive]

For each image: the store's `latest` version; if the cache lacks it, its manifest and index,
then every chunk of the index the cache does not hold yet (chunks of earlier versions and of
the other images are the seed: a new version moves only its new chunks). Chunks come over
`--parallel` persistent HTTP/1.1 connections (keep-alive, through the proxy if any), several in
flight, at most `--rate` bytes/s (a token bucket: no burst beyond a quarter second of the
rate); a dropped connection is retried with backoff. Each chunk is checked (its name is the
SHA-512/256 of its content) and renamed into place: an interrupted run keeps what arrived and
the next run fetches only the rest. The version appears in the cache only when complete.
Standard library, `zstd` and cartable/{errors,images/store,images/transfer,images/debver}.py:
the role image_cache installs just those. Exit 0 ok (prints bytes fetched), 2 on any failure.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import random
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cartable.errors import InputError, Problem
from cartable.images import store as st
from cartable.images.transfer import Client, Stats, TokenBucket

BATCH = 128          # chunks verified per zstd run
PARALLEL = 4         # connections (and chunks in flight)
MANIFEST_FIELDS = ("index", "index_sha256")


class ManifestError(InputError):
    """The DSI store holds a manifest this fetcher cannot use: running again does not help."""


@dataclass
class Fetcher:
    source: str
    rate: int = 0                  # bytes per second, 0 = unlimited
    proxy: str | None = None
    parallel: int = PARALLEL
    keepalive: bool = True
    chunks: int = 0
    stats: Stats = field(default_factory=Stats)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _idle: list[Client] = field(default_factory=list)
    _clients: list[Client] = field(default_factory=list)
    _bucket: TokenBucket | None = None

    @property
    def fetched(self) -> int:
        return self.stats.fetched

    def get(self, path: str) -> bytes:
        """The body of `path` under the source, on an idle persistent connection (a new one
        only when all are busy: at most `parallel` connections, the chunk threads')."""
        with self._lock:
            if self._bucket is None:
                self._bucket = TokenBucket(self.rate)
            if self._idle:
                client = self._idle.pop()
            else:
                # a rate-limited reader keeps a bounded TCP window: the link follows the bucket
                client = Client(self.source, self.proxy, self._bucket, self.stats,
                                self.keepalive, 131072 if self.rate > 0 else 0)
                self._clients.append(client)
        try:
            return client.get(path)
        finally:
            with self._lock:
                self._idle.append(client)

    def close(self) -> None:
        for client in self._clients:
            client.close()


def verified(paths: dict[str, Path], scratch: Path) -> set[str]:
    """The ids among {id: zstd file} whose content's SHA-512/256 is the id (one zstd run)."""
    if not paths:
        return set()
    scratch.mkdir(parents=True, exist_ok=True)
    subprocess.run(["zstd", "-dqf", "--output-dir-flat", str(scratch), *map(str, paths.values())],
                   capture_output=True, check=False)  # a bad file: no output, checked below
    good = set()
    for chunk_id, path in paths.items():
        out = scratch / path.name.removesuffix(".zst")
        if out.exists() and hashlib.new("sha512_256", out.read_bytes()).hexdigest() == chunk_id:
            good.add(chunk_id)
        out.unlink(missing_ok=True)
    return good


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{threading.get_ident()}.part")
    tmp.write_bytes(data)
    tmp.replace(path)


def check_manifest(data: bytes, where: str) -> dict[str, Any]:
    """The store's manifest, if this fetcher can use it; ManifestError saying what to do."""
    hint = ("rebuild or republish this version with this Cartable version "
            "(`cartable image build`), then run the fetch again")
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(Problem(where, f"not a manifest (bad JSON: {exc})", hint=hint)) from None
    if not isinstance(manifest, dict) or manifest.get("format") not in st.FORMATS:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ManifestError(Problem(where, f"manifest format {found!r}, this fetcher reads "
                                    f"formats {', '.join(map(str, st.FORMATS))}", field="format",
                                    hint="update the school's fetcher (role image_cache) or " + hint))
    for name in MANIFEST_FIELDS:
        if not isinstance(manifest.get(name), str):
            raise ManifestError(Problem(where, f"the manifest (format {manifest['format']}) has no "
                                        f"'{name}': built before Cartable's fetcher checked it",
                                        field=name, hint=hint))
    return manifest


def _verify_and_place(fetcher: Fetcher, cache: Path, staging: Path, batch: dict[str, Path]) -> None:
    good = verified(batch, staging / "scratch")
    bad = [chunk_id for chunk_id in batch if chunk_id not in good]
    for chunk_id, path in batch.items():
        if chunk_id in good:
            st.chunk_path(cache, chunk_id).parent.mkdir(parents=True, exist_ok=True)
            path.replace(st.chunk_path(cache, chunk_id))
            fetcher.chunks += 1
        else:
            path.unlink()  # the next run fetches it again
    if bad:
        raise InputError(Problem(f"{st.CHUNKS}/{bad[0]}", "chunk content does not match its name"
                                 + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
                                 hint="a proxy or disk altered it; run again"))


def _fetch_chunks(fetcher: Fetcher, cache: Path, staging: Path, missing: list[str]) -> int:
    """Download the missing chunks (`parallel` in flight, 2x queued: memory bounded), verify
    them in batches while the next ones arrive; returns how many were downloaded."""
    incoming = staging / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)

    def download(chunk_id: str) -> str:
        _write(incoming / f"{chunk_id}.zst",
               fetcher.get(f"{st.CHUNKS}/{chunk_id[:4]}/{chunk_id}.cacnk"))
        return chunk_id

    done: list[str] = []
    downloaded = 0
    pending: set[cf.Future[str]] = set()
    with cf.ThreadPoolExecutor(max(1, fetcher.parallel), thread_name_prefix="fetch") as pool:
        try:
            for chunk_id in missing:
                if (incoming / f"{chunk_id}.zst").exists():  # complete (renamed): an earlier run's
                    done.append(chunk_id)
                else:
                    pending.add(pool.submit(download, chunk_id))
                while len(pending) >= 2 * max(1, fetcher.parallel):
                    finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for future in finished:
                        done.append(future.result())
                        downloaded += 1
                if len(done) >= BATCH:
                    _verify_and_place(fetcher, cache, staging,
                                      {i: incoming / f"{i}.zst" for i in done})
                    done = []
            for future in cf.as_completed(pending):
                done.append(future.result())
                downloaded += 1
            pending = set()
        finally:
            for future in pending:
                future.cancel()
    _verify_and_place(fetcher, cache, staging, {i: incoming / f"{i}.zst" for i in done})
    return downloaded


def fetch_image(fetcher: Fetcher, cache: Path, image: str) -> str:
    """Bring the newest version of `image` into the cache; returns a one-line report."""
    before = fetcher.fetched
    version = fetcher.get(f"{image}/latest").decode().strip()
    final = st.version_dir(cache, image, version)
    if (final / st.MANIFEST).exists():
        return f"{image} {version}: up to date"
    manifest_path = f"{image}/{version}/{st.MANIFEST}"
    manifest_data = fetcher.get(manifest_path)
    manifest = check_manifest(manifest_data, f"{fetcher.source.rstrip('/')}/{manifest_path}")
    staging = cache / image / f".{version}.part"
    staging.mkdir(parents=True, exist_ok=True)
    index_data = fetcher.get(f"{image}/{version}/{manifest['index']}")
    if hashlib.sha256(index_data).hexdigest() != manifest["index_sha256"]:
        raise InputError(Problem(f"{image}/{version}", "index differs from its manifest",
                                 hint="the DSI store is being published: retry later"))
    _write(staging / st.INDEX, index_data)
    ids = {c.id for c in st.read_index(staging / st.INDEX)}
    missing = sorted(i for i in ids if not st.chunk_path(cache, i).exists())
    downloaded = _fetch_chunks(fetcher, cache, staging, missing)
    shutil.rmtree(staging / "incoming", ignore_errors=True)
    shutil.rmtree(staging / "scratch", ignore_errors=True)
    _write(staging / st.MANIFEST, manifest_data)
    staging.rename(final)
    _write(cache / image / "latest", (version + "\n").encode())
    return (f"{image} {version}: {downloaded} of {len(ids)} chunks fetched, "
            f"{(fetcher.fetched - before) / 1e6:.1f} MB")


def prune(cache: Path, image: str, keep: int) -> list[str]:
    """Keep the `keep` newest versions of an image; returns the versions removed."""
    versions = sorted((p.name for p in (cache / image).iterdir()
                       if (p / st.MANIFEST).exists()),
                      key=lambda v: st.catalog_version_key(v) or ())
    removed = versions[:-keep] if keep > 0 else []
    for version in removed:
        shutil.rmtree(cache / image / version)
    return removed


def collect_garbage(cache: Path) -> int:
    """Remove chunks no index of the cache names; returns how many."""
    used = {c.id for idx in cache.glob(f"*/*/{st.INDEX}") for c in st.read_index(idx)}
    used |= {c.id for idx in cache.glob(f"*/.*.part/{st.INDEX}") for c in st.read_index(idx)}
    removed = 0
    for chunk in (cache / st.CHUNKS).rglob("*.cacnk"):
        if chunk.stem not in used:
            chunk.unlink()
            removed += 1
    return removed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cartable-image-fetch", description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="the DSI store's URL")
    parser.add_argument("--cache", type=Path, required=True, help="the school's image cache")
    parser.add_argument("--image", action="append", required=True, help="an image to hold")
    parser.add_argument("--rate", type=int, default=0, help="bytes/s (0: unlimited)")
    parser.add_argument("--parallel", type=int, default=PARALLEL,
                        help=f"connections, chunks in flight (default {PARALLEL})")
    parser.add_argument("--no-keepalive", dest="keepalive", action="store_false",
                        help="one connection per request (for comparisons)")
    parser.add_argument("--proxy", help="HTTP proxy to go through (the academic proxy)")
    parser.add_argument("--jitter", type=int, default=0, help="wait 0..N s first (spread schools)")
    parser.add_argument("--keep", type=int, default=2, help="versions kept per image")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    if args.parallel < 1 or args.rate < 0:
        print("cartable-image-fetch: --parallel must be >= 1 and --rate >= 0", file=sys.stderr)
        return 2
    if args.jitter > 0:
        time.sleep(random.uniform(0, args.jitter))  # noqa: S311 - spreading, not security
    fetcher = Fetcher(args.source, args.rate, args.proxy, args.parallel, args.keepalive)
    started = time.monotonic()
    try:
        args.cache.mkdir(parents=True, exist_ok=True)
        for image in dict.fromkeys(args.image):
            print(fetch_image(fetcher, args.cache, image))
            prune(args.cache, image, args.keep)
        collect_garbage(args.cache)
    except InputError as exc:
        for problem in exc.problems:
            print(f"cartable-image-fetch: {problem}", file=sys.stderr)
        after = "" if isinstance(exc, ManifestError) else "; the next run resumes"
        print(f"cartable-image-fetch: stopped after {fetcher.fetched / 1e6:.1f} MB{after}",
              file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cartable-image-fetch: {where}{exc.strerror or exc}; the next run resumes",
              file=sys.stderr)
        return 2
    except ValueError as exc:  # e.g. a `latest` that is not text
        print(f"cartable-image-fetch: {args.source}: unexpected content ({exc}); "
              "the next run resumes", file=sys.stderr)
        return 2
    finally:
        fetcher.close()
    s = fetcher.stats
    print(f"total: {fetcher.chunks} chunks, {s.fetched / 1e6:.1f} MB in {time.monotonic() - started:.0f} s, "
          f"{s.requests} requests over {s.connections} connections, {s.retries} retries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
