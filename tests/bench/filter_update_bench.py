#!/usr/bin/env python3
"""WAN bytes and times of the nightly filter list update (publish on the mirror, fetch on a
school), over real HTTP on 127.0.0.1.

    .venv/bin/python tests/bench/filter_update_bench.py [--synthetic 1000000]

For the shipped UT1 sample (and, with --synthetic N, the sample plus a synthetic `adult`
category of N names): publish the lists, let a school fetch them in full, then measure three
nights: no change, a day of 50 changed entries and one of 200 (half added, half removed,
spread over the categories). For each: the bytes the school fetched (manifest + signature +
delta or full file, counted by the fetcher, identical to what the HTTP server sent) and their
share of the compiled list, the publish time (compile + checks + deltas + xz + sign) and the
school's update time (download, apply the delta, write, fsync, verify, swap) and, inside it,
the delta application alone. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import lzma
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from filter_bench import SAMPLE, _synthetic  # noqa: E402

from cartable.filtering import fetch  # noqa: E402
from cartable.filtering.compiled import open_build  # noqa: E402
from cartable.filtering.delta import apply_delta  # noqa: E402
from cartable.filtering.publish import Options, publish  # noqa: E402
from cartable.filtering.signing import generate  # noqa: E402


class Quiet(SimpleHTTPRequestHandler):

    def log_message(self, *args: object) -> None:
        pass


def _change(tree: Path, count: int, seed: int) -> None:
    """Remove count/2 names and add count/2 new ones, spread over the blocked categories."""
    rng = random.Random(seed)
    categories = sorted(p.name for p in tree.iterdir()
                        if (p / "domains").is_file() and not p.is_symlink()
                        and p.name not in ("liste_blanche", "child"))
    for i in range(count // 2):
        path = tree / rng.choice(categories) / "domains"
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        del lines[rng.randrange(len(lines))]
        path.write_text("\n".join(lines + [f"new-{seed}-{i}-{rng.randrange(10**9)}.example"])
                        + "\n", encoding="utf-8")


def _night(opts: Options, up: fetch.Update, size_of: dict[str, int]) -> dict:
    started = time.perf_counter()
    build = publish(opts, log=lambda _m: None)
    published = time.perf_counter() - started
    current = fetch.current_build(up.root)
    manifest = json.loads((opts.publish / "manifest.json").read_text())
    apply_time = None
    if current is not None and build:
        old = open_build(current / "lists.cfl")
        entry = manifest["deltas"].get(fetch._sha256(current / "lists.cfl"))
        if entry:

            delta = lzma.decompress((opts.publish / entry["path"]).read_bytes())
            started = time.perf_counter()
            apply_delta(old, delta)
            apply_time = time.perf_counter() - started
        old.close()
    up.fetched = 0
    started = time.perf_counter()
    code, message = fetch.update(up)
    updated = time.perf_counter() - started
    assert code == 0, message
    size_of["list"] = manifest["size"]
    return {"bytes": up.fetched, "publish": published, "update": updated,
            "apply": apply_time, "how": message.split(" (")[0]}


def _rows(label: str, tree: Path, work: Path, url: str, key: Path) -> list[str]:
    opts = Options(str(tree), work / "www", key, work / "state")
    up = fetch.Update(url + "manifest.json", key.with_name(key.name + ".pub"), work / "school")
    sizes: dict[str, int] = {}
    nights = [("first install (full)", _night(opts, up, sizes))]
    nights.append(("no change", _night(opts, up, sizes)))
    for count in (50, 200):
        _change(tree, count, count)
        nights.append((f"{count} entries changed", _night(opts, up, sizes)))
    rows = []
    for what, n in nights:
        share = 100 * n["bytes"] / sizes["list"]
        apply = f"{n['apply']:.2f} s" if n["apply"] is not None else "-"
        rows.append(f"| {label} | {what} | {n['bytes']:,} | {share:.3f} % | "
                    f"{n['publish']:.2f} s | {n['update']:.2f} s | {apply} |")
    rows.append(f"| {label} | (compiled list) | {sizes['list']:,} | 100 % | | | |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="also the sample + a synthetic category of N names")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="filter-update-bench-") as name:
        tmp = Path(name)
        www = tmp / "www"
        www.mkdir()
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(www)))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        key = tmp / "mirror.key"
        generate(key)
        rows = ["| lists | night | WAN bytes | % of compiled list | publish | school update "
                "| delta apply |", "|---|---|---|---|---|---|---|"]
        try:
            cases = [("UT1 sample", None)]
            if args.synthetic:
                cases.append((f"sample + {args.synthetic:,} synthetic", args.synthetic))
            for label, count in cases:
                tree = tmp / "lists"
                shutil.rmtree(tree, ignore_errors=True)
                if count:
                    _synthetic(tree, count)
                else:
                    shutil.copytree(SAMPLE, tree, symlinks=True)
                for sub in ("www", "state", "school"):
                    shutil.rmtree(tmp / sub, ignore_errors=True)
                www.mkdir()
                rows += _rows(label, tree, tmp, url, key)
                print("\n".join(rows[-5:]), file=sys.stderr, flush=True)
        finally:
            server.shutdown()
            server.server_close()
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
