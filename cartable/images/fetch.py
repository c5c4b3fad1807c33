"""`cartable-image-fetch`: a school server's image cache, filled from the DSI's store over HTTP.

    cartable-image-fetch --source URL --cache DIR --image NAME [--image NAME ...]
                         [--rate BYTES_PER_S] [--proxy URL] [--jitter SECONDS] [--keep N]

For each image: the store's `latest` version; if the cache lacks it, its manifest and index,
then every chunk of the index the cache does not hold yet (chunks of earlier versions and of
the other images are the seed: a new version moves only its new chunks). Each chunk is checked
(its name is the SHA-512/256 of its content) and renamed into place: an interrupted run keeps
what arrived and the next run fetches only the rest. The version appears in the cache only
when complete. Standard library, `zstd` and cartable/{errors,images/store,images/debver}.py:
the role image_cache installs just those. Exit 0 ok (prints bytes fetched), 2 on any failure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cartable.errors import InputError, Problem
from cartable.images import store as st

BATCH = 128  # chunks verified per zstd run


@dataclass
class Fetcher:
    source: str
    rate: int = 0                  # bytes per second, 0 = unlimited
    proxy: str | None = None
    fetched: int = 0
    chunks: int = 0
    _started: float = field(default_factory=time.monotonic)
    _opener: urllib.request.OpenerDirector | None = None

    def get(self, path: str) -> bytes:
        url = f"{self.source.rstrip('/')}/{path}"
        if self._opener is None:
            self._opener = urllib.request.build_opener(urllib.request.ProxyHandler(
                {"http": self.proxy, "https": self.proxy} if self.proxy else {}))
        try:
            with self._opener.open(url, timeout=120) as response:
                data = response.read()
        except OSError as exc:
            raise InputError(Problem(url, f"cannot download: {exc}",
                                     hint="the next run resumes where this one stopped")) from None
        self.fetched += len(data)
        self._throttle()
        return data

    def _throttle(self) -> None:
        if self.rate > 0:
            ahead = self.fetched / self.rate - (time.monotonic() - self._started)
            if ahead > 0:
                time.sleep(ahead)


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
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def fetch_image(fetcher: Fetcher, cache: Path, image: str) -> str:
    """Bring the newest version of `image` into the cache; returns a one-line report."""
    before = fetcher.fetched
    version = fetcher.get(f"{image}/latest").decode().strip()
    final = st.version_dir(cache, image, version)
    if (final / st.MANIFEST).exists():
        return f"{image} {version}: up to date"
    staging = cache / image / f".{version}.part"
    staging.mkdir(parents=True, exist_ok=True)
    manifest_data = fetcher.get(f"{image}/{version}/{st.MANIFEST}")
    manifest = json.loads(manifest_data)
    index_data = fetcher.get(f"{image}/{version}/{manifest['index']}")
    if hashlib.sha256(index_data).hexdigest() != manifest["index_sha256"]:
        raise InputError(Problem(f"{image}/{version}", "index differs from its manifest",
                                 hint="the DSI store is being published: retry later"))
    _write(staging / st.INDEX, index_data)
    ids = {c.id for c in st.read_index(staging / st.INDEX)}
    missing = sorted(i for i in ids if not st.chunk_path(cache, i).exists())
    downloaded = 0
    for start in range(0, len(missing), BATCH):
        batch = {}
        for chunk_id in missing[start:start + BATCH]:
            batch[chunk_id] = staging / "incoming" / f"{chunk_id}.zst"
            if not batch[chunk_id].exists():  # complete (renamed) if there: an interrupted run's
                _write(batch[chunk_id], fetcher.get(f"{st.CHUNKS}/{chunk_id[:4]}/{chunk_id}.cacnk"))
                downloaded += 1
        good = verified(batch, staging / "scratch")
        for chunk_id, path in batch.items():
            if chunk_id not in good:
                path.unlink()  # the next run fetches it again
                raise InputError(Problem(f"{st.CHUNKS}/{chunk_id}", "chunk content does not "
                                         "match its name", hint="a proxy or disk altered it; "
                                         "run again"))
            st.chunk_path(cache, chunk_id).parent.mkdir(parents=True, exist_ok=True)
            path.replace(st.chunk_path(cache, chunk_id))
            fetcher.chunks += 1
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
    parser.add_argument("--proxy", help="HTTP proxy to go through (the academic proxy)")
    parser.add_argument("--jitter", type=int, default=0, help="wait 0..N s first (spread schools)")
    parser.add_argument("--keep", type=int, default=2, help="versions kept per image")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    if args.jitter > 0:
        time.sleep(random.uniform(0, args.jitter))  # noqa: S311 - spreading, not security
    fetcher = Fetcher(args.source, args.rate, args.proxy)
    try:
        args.cache.mkdir(parents=True, exist_ok=True)
        for image in dict.fromkeys(args.image):
            print(fetch_image(fetcher, args.cache, image))
            prune(args.cache, image, args.keep)
        collect_garbage(args.cache)
    except InputError as exc:
        for problem in exc.problems:
            print(f"cartable-image-fetch: {problem}", file=sys.stderr)
        print(f"cartable-image-fetch: stopped after {fetcher.fetched / 1e6:.1f} MB; "
              "the next run resumes", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as exc:
        print(f"cartable-image-fetch: {exc}; the next run resumes", file=sys.stderr)
        return 2
    print(f"total: {fetcher.chunks} chunks, {fetcher.fetched / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
