"""Image deltas over casync: what a school holding v1 downloads for v2, and the shared store.

    python tests/bench/images_bench.py [--full] [--work DIR] [--cache DIR]
    python tests/bench/images_bench.py --point-release [--image NAME ...] [--work DIR] [--cache DIR]

Builds (as root, with mmdebstrap and casync) from a copy of images/catalog.yml:
- v1 of an image, the same v1 again into another store (an unchanged rebuild), and v2 = v1
  with one package added (version raised);
- three nested levels into one shared store and each into a store of its own.
Default: small images (the CI image `essai` and two levels grown from it; ~5 min with a warm
package cache). `--full`: the real cycle 2 (+ kbruch) and cycles 1/2/3 (GBs of packages; ~30
min cold). `--point-release`: per image (default `essai`), v1 built from the release pocket
alone (`debian.pockets: []`: the packages of the 12.0-era release still in `bookworm`), v2 = the
same catalog with `bookworm-updates` and `bookworm-security` (what a point release folds in),
and v2b = release + security + one added package (one added, some upgraded). Prints a Markdown
table; bytes are zstd-compressed chunk bytes, as a school fetches.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cartable.images import store as st  # noqa: E402
from cartable.images.build import build  # noqa: E402
from cartable.images.catalog import read_catalog  # noqa: E402
from cartable.images.fetch import Fetcher, fetch_image  # noqa: E402

SMALL = {"image": "essai", "added": "fortune-mod",
         "levels": {"niveau1": ["bsdgames"], "niveau2": ["bsdgames", "gnuchess"],
                    "niveau3": ["bsdgames", "gnuchess", "tuxmath"]}}
FULL = {"image": "cycle2", "added": "kbruch", "levels": None}


def _catalog(work: Path, edit) -> Path:
    data = yaml.safe_load((REPO / "images" / "catalog.yml").read_text(encoding="utf-8"))
    edit(data)
    path = work / f"catalog-{time.monotonic_ns()}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _ids(store: Path, image: str, version: str) -> set[str]:
    return {c.id for c in st.read_index(st.version_dir(store, image, version) / st.INDEX)}


REUSE = False  # --reuse: a version already in the store is read, not rebuilt


def _build(catalog: Path, image: str, out: Path, cache: Path) -> tuple[dict, float]:
    version = read_catalog(catalog).images[image].version
    if REUSE and (st.version_dir(out, image, version) / st.MANIFEST).exists():
        print(f"  {image} {version}: reused from {out}")
        return st.read_manifest(st.version_dir(out, image, version)), float("nan")
    started = time.monotonic()
    manifest = build(read_catalog(catalog), image, out, cache, log=lambda m: print("  " + m))
    return manifest, time.monotonic() - started


class _Served:
    """The DSI store over HTTP on loopback, as the schools see it."""

    def __init__(self, folder: Path) -> None:
        import functools
        import http.server
        import threading
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass
        handler = functools.partial(Quiet, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def _school_fetch(url: str, school: Path, image: str) -> tuple[int, float]:
    fetcher = Fetcher(url)
    started = time.monotonic()
    print("  school: " + fetch_image(fetcher, school, image))
    return fetcher.fetched, time.monotonic() - started


def bench(work: Path, cache: Path, profile: dict, rebuild: bool = True,
          fetch: bool = True) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    image, added = profile["image"], profile["added"]
    v1_catalog = _catalog(work, lambda d: None)
    v1, t1 = _build(v1_catalog, image, work / "dsi", cache)
    ver = v1["version"]
    v1_ids = _ids(work / "dsi", image, ver)
    v1_bytes = st.chunk_bytes(work / "dsi", v1_ids)
    rows += [(f"{image} v1: packages, tree, chunks (compressed)",
              f"{len(v1['packages'])}, {v1['size'] / 1e6:.0f} MB, {v1_bytes / 1e6:.1f} MB"),
             (f"{image} v1 build time", f"{t1:.0f} s")]
    served = _Served(work / "dsi")
    if fetch:
        got, took = _school_fetch(served.url, work / "school", image)
        rows.append(("school server fetches v1 over HTTP (cartable-image-fetch, loopback)",
                     f"{got / 1e6:.1f} MB in {took:.0f} s"))
    if rebuild:
        again, _ = _build(v1_catalog, image, work / "rebuild", cache)
        new_bytes = st.chunk_bytes(work / "rebuild", _ids(work / "rebuild", image, ver) - v1_ids)
        rows += [("unchanged rebuild: same digest", str(again["digest"] == v1["digest"])),
                 ("unchanged rebuild: new chunk bytes",
                  f"{new_bytes} B ({100 * new_bytes / v1_bytes:.2f} %)")]
    v2_version = ".".join(ver.split(".")[:-1] + [str(int(ver.split(".")[-1]) + 1)])

    def add(data: dict) -> None:
        data["images"][image]["version"] = v2_version
        data["images"][image].setdefault("packages", []).append(added)
    v2, t2 = _build(_catalog(work, add), image, work / "dsi", cache)
    new = _ids(work / "dsi", image, v2_version) - v1_ids
    delta = st.chunk_bytes(work / "dsi", new)
    rows += [(f"v1 -> v2 (+{added}, +{len(v2['packages']) - len(v1['packages'])} packages): "
              "bytes a school holding v1 downloads", f"{delta / 1e6:.2f} MB ({100 * delta / v1_bytes:.1f} % of v1)"),
             ("v2 build time", f"{t2:.0f} s")]
    if fetch:
        got, took = _school_fetch(served.url, work / "school", image)
        rows.append(("school server holding v1 fetches v2 (new chunks + index + manifest)",
                     f"{got / 1e6:.2f} MB in {took:.0f} s"))
    # Three nested levels in one store (the DSI's; the v1 built above is one of them when
    # --full) vs each in a store of its own: union vs sum of their chunks' bytes.
    levels = profile["levels"] or {n: None for n in ("cycle1", "cycle2", "cycle3")}
    if profile["levels"]:
        level_catalog = _catalog(work, lambda d: d["images"].update({
            name: {"version": "1", "base": "minimal", "packages": pkgs}
            for name, pkgs in levels.items()}))
    else:
        level_catalog = v1_catalog
    level_ids = []
    for name in levels:
        level_image = read_catalog(level_catalog).images[name]
        if not st.version_dir(work / "dsi", name, level_image.version).exists():
            _, took = _build(level_catalog, name, work / "dsi", cache)
            rows.append((f"{name} build time", f"{took:.0f} s"))
        level_ids.append(_ids(work / "dsi", name, level_image.version))
    separate = sum(st.chunk_bytes(work / "dsi", ids) for ids in level_ids)
    shared = st.chunk_bytes(work / "dsi", set().union(*level_ids))
    rows.append((f"{len(levels)} levels ({', '.join(levels)}): one shared store vs separate stores",
                 f"{shared / 1e6:.0f} MB vs {separate / 1e6:.0f} MB ({shared / separate:.2f}×)"))
    return rows


POINT_ADDED = {"essai": "fortune-mod", "cycle1": "kbruch", "cycle2": "kbruch", "cycle3": "kalzium"}


def point_release(work: Path, cache: Path, image: str) -> list[tuple[str, str]]:
    """v1 = release pocket only; v2 = + updates + security; v2b = + security + one package."""
    def pockets(pockets: list[str], version: str, added: str | None = None):
        def edit(data: dict) -> None:
            data["debian"]["pockets"] = pockets
            data["images"][image]["version"] = version
            if added:
                data["images"][image].setdefault("packages", []).append(added)
        return edit
    store = work / "point"
    v1, t1 = _build(_catalog(work, pockets([], "1")), image, store, cache)
    v1_ids = _ids(store, image, "1")
    v1_bytes = st.chunk_bytes(store, v1_ids)
    rows = [(f"{image} v1 (bookworm release pocket only): packages, tree, chunks",
             f"{len(v1['packages'])}, {v1['size'] / 1e6:.0f} MB, {v1_bytes / 1e6:.1f} MB "
             f"({len(v1_ids)} chunks; build {t1:.0f} s)")]
    added = POINT_ADDED.get(image, "fortune-mod")
    for version, pocket_list, extra, what in (
            ("2", ["updates", "security"], None, "point release (+ updates + security)"),
            ("3", ["security"], added, f"+ security + {added}")):
        v2, took = _build(_catalog(work, pockets(pocket_list, version, extra)), image, store, cache)
        upgraded = sum(1 for p, v in v2["packages"].items() if p in v1["packages"] and v1["packages"][p] != v)
        new_pkgs = len(set(v2["packages"]) - set(v1["packages"]))
        gone = len(set(v1["packages"]) - set(v2["packages"]))
        new = _ids(store, image, version) - v1_ids
        delta = st.chunk_bytes(store, new)
        rows.append((f"{image} v1 -> v2 {what}: {upgraded} packages upgraded, "
                     f"{new_pkgs} added, {gone} removed",
                     f"{delta / 1e6:.2f} MB ({100 * delta / v1_bytes:.1f} % of v1; {len(new)} "
                     f"new chunks; build {took:.0f} s)"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the real cycle images (large)")
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "images-bench")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "images" / "debs")
    parser.add_argument("--reuse", action="store_true",
                        help="keep --work and read the versions already built there")
    parser.add_argument("--no-rebuild", action="store_true", help="skip the unchanged rebuild")
    parser.add_argument("--no-fetch", action="store_true", help="skip the school fetches")
    parser.add_argument("--point-release", action="store_true",
                        help="measure a Debian point release (v1 release pocket, v2 + updates/security)")
    parser.add_argument("--image", action="append", help="with --point-release (default: essai)")
    args = parser.parse_args()
    global REUSE
    REUSE = args.reuse
    if not args.reuse:
        shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.point_release:
        rows = [row for image in args.image or ["essai"]
                for row in point_release(args.work, args.cache, image)]
    else:
        rows = bench(args.work, args.cache, FULL if args.full else SMALL,
                     rebuild=not args.no_rebuild, fetch=not args.no_fetch)
    print("\n| measure | figure |\n|---|---|")
    for what, figure in rows:
        print(f"| {what} | {figure} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
