#!/usr/bin/env python3
"""Filter engine benchmark (no squid): compile time and size, helper memory, decisions/s.

    .venv/bin/python tests/bench/filter_bench.py [--domains 5000000] [--requests 200000]

For the shipped UT1 sample and for the sample plus a synthetic category of --domains names
(generated in a temp folder, deterministic seed): `cartable filter compile` wall time, peak RSS
and file size; the helper's RSS (anonymous and file-backed, i.e. the mapped list) after serving;
decisions/s through the real protocol loop (a subprocess fed --requests lines with channel IDs,
90 % unlisted names, 10 % listed ones, all distinct so the helper's cache never hits); the time
to open + verify a build (what a swap costs). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "ut1-blacklists"
BIN = Path(sys.executable).parent
POLICY = {"name": "bench", "block": ["gambling", "games", "doh", "vpn", "redirector",
                                     "residential-proxies", "social_networks", "dating"]}


def _synthetic(root: Path, count: int, seed: int = 8) -> list[str]:
    """Copy the sample and add category `adult` with `count` names; return some of them."""
    shutil.copytree(SAMPLE, root, symlinks=True)
    rng = random.Random(seed)
    letters = string.ascii_lowercase
    tlds = ["com", "net", "org", "fr", "de", "ru", "xyz", "info"]
    picked: list[str] = []
    folder = root / "adult"
    folder.mkdir()
    (folder / "usage").write_text("black\n")
    with open(folder / "domains", "w", encoding="ascii") as out:
        for i in range(count):
            name = f"{''.join(rng.choices(letters, k=rng.randint(4, 12)))}{i}.{rng.choice(tlds)}"
            out.write(name + "\n")
            if i % 97 == 0:
                picked.append(name)
    return picked


def _compile(lists: Path, out: Path) -> tuple[float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run([str(BIN / "cartable"), "filter", "compile", "--lists", str(lists), "--out",
                    str(out)], check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before)


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[key] = int(value.split()[0]) // 1024
    return fields


def _serve(build: Path, policy: Path, requests: list[str]) -> tuple[float, dict[str, int]]:
    proc = subprocess.Popen([str(BIN / "cartable-filter-helper"), "--policy", str(policy),
                             "--lists", str(build)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin and proc.stdout
    proc.stdin.write(b"0 warm.example -\n")
    proc.stdin.flush()
    proc.stdout.readline()
    payload = "".join(f"{i % 200} {host} -\n" for i, host in enumerate(requests)).encode()

    def feed() -> None:
        assert proc.stdin
        proc.stdin.write(payload)
        proc.stdin.flush()

    started = time.perf_counter()
    writer = threading.Thread(target=feed)
    writer.start()
    got = 0
    blocked = 0
    for line in proc.stdout:
        got += 1
        blocked += b" ERR" in line
        if got == len(requests):
            break
    elapsed = time.perf_counter() - started
    writer.join()
    status = _status(proc.pid)
    status["blocked"] = blocked
    proc.kill()
    proc.wait()
    return elapsed, status


def _swap_cost(build: Path, policy_data: dict) -> float:
    sys.path.insert(0, str(REPO))
    from cartable.filtering.compiled import open_build
    from cartable.filtering.policy import bind, policy_from_dict
    policy = policy_from_dict(policy_data)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        opened = open_build(build)
        bind(policy, opened)
        best = min(best, time.perf_counter() - started)
        opened.close()
    return best


def _requests(listed: list[str], count: int, seed: int = 9) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        if i % 10 == 0:
            out.append(f"www.{rng.choice(listed)}")
        else:
            out.append(f"host{i}.unlisted{rng.randint(0, 10**6)}.example.org")
    return out


def _row(label: str, lists: Path, listed: list[str], args: argparse.Namespace,
         tmp: Path) -> list[str]:
    build = tmp / f"{label}.cfl"
    compile_s, compile_peak_kb = _compile(lists, build)
    policy_data = dict(POLICY, block=POLICY["block"] + (["adult"] if (lists / "adult").is_dir()
                                                        else []))
    policy = tmp / "policy.json"
    policy.write_text(json.dumps(policy_data))
    requests = _requests(listed, args.requests)
    serve_s, status = _serve(build, policy, requests)
    swap = _swap_cost(build, policy_data)
    entries = json.loads(subprocess.run(
        [sys.executable, "-c", "import sys, json; sys.path.insert(0, sys.argv[2]);"
         "from cartable.filtering.compiled import open_build; b = open_build(sys.argv[1]);"
         "print(json.dumps(len(b)))", str(build), str(REPO)],
        check=True, capture_output=True, text=True).stdout)
    return [label, f"{entries:,}", f"{build.stat().st_size / 1e6:.1f} MB", f"{compile_s:.1f} s",
            f"{compile_peak_kb // 1024} MiB", f"{swap * 1000:.0f} ms",
            f"{status['VmRSS']} MiB ({status['RssAnon']} anon + {status['RssFile']} file)",
            f"{len(requests) / serve_s:,.0f}",
            f"{status['blocked'] / len(requests):.0%}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    header = ["lists", "entries", "file", "compile", "compile peak RSS", "open+verify (swap)",
              "helper RSS", "decisions/s (1 helper)", "blocked"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="filter-bench-") as folder:
        tmp = Path(folder)
        sample_listed = [line.strip() for line in
                         (SAMPLE / "gambling" / "domains").read_text().splitlines()[:3000]]
        rows.append(_row("UT1 sample (15 categories)", SAMPLE, sample_listed, args, tmp))
        started = time.perf_counter()
        listed = _synthetic(tmp / "synthetic", args.domains)
        print(f"(generated {args.domains:,} synthetic names in "
              f"{time.perf_counter() - started:.1f} s)", file=sys.stderr)
        rows.append(_row(f"sample + {args.domains / 1e6:g} M synthetic", tmp / "synthetic",
                         listed, args, tmp))
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\n{args.requests:,} distinct requests per run, channel IDs 0-199, 10 % listed; "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
