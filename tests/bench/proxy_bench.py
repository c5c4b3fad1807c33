#!/usr/bin/env python3
"""Web filter benchmark through squid: our helper vs squid alone vs squidGuard (issue 8).

    .venv/bin/python tests/bench/proxy_bench.py [--synthetic 5000000 | --quick] [--runs 3]

Everything runs in ONE local docker container with no network (loopback only), built FROM the
lab's base image (`make lab-image`) plus squid, squidGuard, wrk, nginx-light and dnsmasq, tagged
`cartable-bench-proxy:<recipe hash>` and rebuilt only when its recipe changes. In it
(tests/bench/proxy_bench_inside.py, Python 3.11 of Debian 12): an nginx origin answering 204
for any host stands for the academic proxy (`cache_peer ... parent` + `never_direct allow
all`); dnsmasq answers every name with 127.0.0.1 at once (squid resolves every requested host
even with a parent); `wrk -t1 -c32 -d20s` sends proxy-form `GET http://host/` over 20,000 names
(90 % unlisted, 10 % listed in the lists used) and counts the answers per class; median of 3
runs, squid restarted for each. Configurations: squid alone; squid + cartable-filter-helper
(policy blocking every black category, the squid.conf lines of tests/bench/proxy_bench_conf.py);
the same with squid's ACL cache off (every request asks the helper); squid + squidGuard (db
built with `squidGuard -C all`); squid alone and squid + our filter again, "warm" (after
--warmup s of the same load, so that squid's DNS and ACL caches hold every host). With the
UT1 sample, and with --synthetic names added (skipped with --quick). Then --swaps new builds
renamed over `current` under load, each followed by the SIGHUP the school's update unit sends
(--no-hup: without it); --swaps-only skips the throughput runs. Prints Markdown.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DOCKERFILE = HERE / "proxy_bench.Dockerfile"
IMAGE_REPO = "cartable-bench-proxy"
LAB = REPO / "tests" / "lab" / "lab.py"


def docker(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=check, text=True,
                          capture_output=capture)


def base_image() -> str:
    tag = subprocess.run([sys.executable, str(LAB), "image-name", "base"], check=True,
                         capture_output=True, text=True).stdout.strip()
    if docker("image", "inspect", tag, check=False).returncode:
        raise SystemExit(f"proxy_bench: the lab base image {tag} is missing: run `make "
                         "lab-image` first (it needs root and Debian's mirror)")
    return tag


def bench_image(base: str) -> str:
    """The benchmark image of the current recipe (Dockerfile + base image), built if absent."""
    recipe = hashlib.sha256(DOCKERFILE.read_bytes() + base.encode()).hexdigest()[:12]
    tag = f"{IMAGE_REPO}:{recipe}"
    if docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    print(f"proxy_bench: building {tag} (FROM {base})", file=sys.stderr)
    with tempfile.TemporaryDirectory() as context:
        subprocess.run(["docker", "build", "--quiet", "-f", str(DOCKERFILE), "-t", tag,
                        "--build-arg", f"BASE={base}", "--label", "org.cartable.bench=proxy",
                        context], check=True, env=dict(os.environ, DOCKER_BUILDKIT="0"),
                       stdout=subprocess.DEVNULL)
    return tag


def run_inside(image: str, name: str, inside_args: list[str], keep: bool) -> dict:
    docker("rm", "-f", name, check=False)
    docker("run", "-d", "--name", name, "--network", "none", "--init", "--cap-add", "SYS_PTRACE",
           "--label",
           "org.cartable.bench=proxy", "-v", f"{REPO}:/src:ro", "--entrypoint", "sleep",
           image, "infinity")
    try:
        proc = subprocess.run(["docker", "exec", name, "python3",
                               "/src/tests/bench/proxy_bench_inside.py", *inside_args],
                              stdout=subprocess.PIPE, text=True)
        if proc.returncode:
            raise SystemExit(f"proxy_bench: the run inside {name} failed (exit "
                             f"{proc.returncode}, its messages above); --keep keeps the "
                             "container to look at /bench")
        out = proc.stdout
    finally:
        if not keep:
            docker("rm", "-f", name, check=False)
    return json.loads(out.strip().splitlines()[-1])


def _mib(kib: float) -> str:
    return f"{kib / 1024:,.0f} MiB"


def _med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _filter_mem(runs: list[dict]) -> str:
    helpers = [r["helpers"] for r in runs if r["helpers"]]
    if not helpers:
        return "—"
    pss = statistics.median(h["pss"] for h in helpers)
    rss = statistics.median(h["rss"] for h in helpers)
    count = max(r["helper_count"] for r in runs)
    return f"{_mib(pss)} PSS ({_mib(rss)} RSS, {count} proc.)"


def _cpu(runs: list[dict], part: str | None = None) -> float:
    """Median CPU µs per request of one part (squid, filter, services, wrk) or of all."""
    return statistics.median(r["cpu_us"][part] if part else sum(r["cpu_us"].values())
                             for r in runs)


def table(results: dict) -> str:
    cpus = results["cpus"]
    head = ["lists", "configuration", "req/s", "× unfiltered", "p50 / p99 ms",
            "CPU µs/req: squid + filter (all)", f"req/s {cpus} CPUs allow (×)", "squid RSS",
            "filter memory", "listed allowed", "unlisted non-2xx", "5xx"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for lset in results["sets"]:
        bases: dict[bool, tuple[float, float]] = {}
        for config, runs in lset["rows"].items():
            rps = _med(runs, "rps")
            cap = cpus * 1e6 / _cpu(runs)
            base, base_cap = bases.setdefault("warm" in config, (rps, cap))
            listed = sum(r["ok_listed"] for r in runs)
            listed_total = sum(r["ok_listed"] + r["refused_listed"] + r["ok_blockpage"]
                               for r in runs)
            filtered = "alone" not in config
            lines.append("| " + " | ".join([
                f"{lset['label']} ({lset['listed_names']:,} names)", config, f"{rps:,.0f}",
                f"{rps / base:.2f}×",
                f"{_med(runs, 'p50_us') / 1000:.1f} / {_med(runs, 'p99_us') / 1000:.0f}",
                f"{_cpu(runs, 'squid'):.0f} + {_cpu(runs, 'filter'):.0f} ({_cpu(runs):.0f})",
                f"{cap:,.0f} ({cap / base_cap:.2f}×)",
                _mib(statistics.median(r["squid"]["rss"] for r in runs)), _filter_mem(runs),
                f"{listed} of {listed_total:,}" if filtered else "(all)",
                str(sum(r["bad_unlisted"] for r in runs)),
                str(sum(r["bad_5xx"] for r in runs))]) + " |")
    return "\n".join(lines)


def build_table(results: dict) -> str:
    lines = ["| lists | names | our compile (peak RSS) | build file | squidGuard -C all (peak "
             "RSS) | squidGuard db |", "|---|---:|---|---:|---|---:|"]
    for lset in results["sets"]:
        ours, sg = lset["compile"], lset["squidguard_compile"]
        lines.append(f"| {lset['label']} | {lset['listed_names']:,} | {ours['seconds']:.1f} s "
                     f"({ours['peak_mib']:,} MiB) | {ours['bytes'] / 1e6:.1f} MB | "
                     f"{sg['seconds']:.1f} s ({sg['peak_mib']:,} MiB) | "
                     f"{sg['bytes'] / 1e6:.1f} MB |")
    return "\n".join(lines)


def swap_lines(results: dict) -> str:
    swap = results.get("swap")
    if not swap:
        return ""
    times = [t for t in swap["times"] if t is not None]
    load = swap["load"]
    missed = len(swap["times"]) - len(times)
    signal = ("then SIGHUP to the helpers, as cartable-filter-update.service does"
              if swap.get("hup", False) else "no SIGHUP: the helpers' own check every 0.5 s")
    text = (f"Swap under load ({len(swap['times'])} builds of {swap['build_bytes'] / 1e6:.1f} MB "
            f"renamed over `current` while wrk ran, {signal}; load average at the end "
            f"{swap.get('loadavg', float('nan')):.1f}): judged by the new build after "
            f"{statistics.median(times) if times else float('nan'):.2f} s median, "
            f"{max(times) if times else float('nan'):.2f} s max (until 20 fresh requests in a "
            f"row were refused)")
    text += f", {missed} swap(s) not seen within 10 s" if missed else ""
    text += (f"; during the swaps: {load['requests']:,} requests, {load['rps']:,.0f} req/s, "
             f"listed allowed {load['ok_listed']}, 5xx {load['bad_5xx']}, unlisted refused "
             f"{load['bad_unlisted']}, socket errors {load['errors']}.")
    return text


def _loadavg(results: dict) -> float:
    return statistics.median(r["loadavg"] for s in results["sets"] for runs in s["rows"].values()
                             for r in runs)


def report(results: dict, args: argparse.Namespace) -> str:
    args = argparse.Namespace(**{**vars(args), **results.get("args", {})})
    opts = " ".join(f"{k}={v}" for k, v in results["filter_options"].items())
    if not any(s["rows"] for s in results["sets"]):  # --swaps-only
        return swap_lines(results)
    one = [s for s in results["sets"] if "squid + cartable filter" in s["rows"]][-1]
    helper = statistics.median(r["one_helper"].get("rss", 0) for r in
                               one["rows"]["squid + cartable filter"])
    return "\n\n".join(filter(None, [
        table(results), build_table(results), swap_lines(results),
        f"`wrk -t1 -c{args.connections} -d{args.duration}s`, {args.hosts:,} host names (10 % "
        f"listed), median of {args.runs} runs (configurations interleaved), squid restarted "
        f"for each, so every host is new to its caches (DNS, ACL results) once per run; "
        f"the `warm` rows are measured after {args.warmup} s of the same load on the same "
        f"squid (caches hold every host: a proxy that has been up a while) and compare with "
        f"squid alone, warm. Listed allowed / unlisted non-2xx / 5xx are totals over the runs. CPU "
        f"µs/req: CPU time of squid and of the filter's processes per request served (all = "
        f"+ wrk, nginx, dnsmasq); `req/s {results['cpus']} CPUs allow` = {results['cpus']} "
        f"CPU-seconds / all: the throughput of a machine doing nothing else, robust to other "
        f"load on the machine (median load average during the runs: "
        f"{_loadavg(results):.1f}). {results['squid']}, Python "
        f"{results['python']} (helper), {results['cpus']} CPUs shared by wrk, squid, nginx, "
        f"dnsmasq and the filter; loopback only. Resolver: {results['resolver']}. "
        f"Filter: `external_acl_type ... {opts} %>rd` + `{results['helper_args']}`; "
        f"one helper's RSS on the largest lists: {_mib(helper)}. Filter memory = helper "
        f"processes' PSS (the mapped list is shared between them and counted once)."]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthetic", type=int, default=5_000_000, metavar="N",
                        help="synthetic names added to the sample lists (default 5,000,000)")
    parser.add_argument("--quick", action="store_true", help="the UT1 sample only")
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration")
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--hosts", type=int, default=20000, help="distinct host names")
    parser.add_argument("--swaps", type=int, default=10, help="swaps under load (0: none)")
    parser.add_argument("--warmup", type=int, default=10, metavar="SECONDS",
                        help="the warm rows: this much of the same load before measuring, "
                        "so that squid's caches hold every host (0: no warm rows)")
    parser.add_argument("--container", default="cartable-bench-proxy",
                        help="name of the container (removed at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the container")
    parser.add_argument("--no-hup", dest="hup", action="store_false",
                        help="swaps without the SIGHUP the update unit sends (the helpers' "
                        "own 0.5 s check alone)")
    parser.add_argument("--swaps-only", action="store_true",
                        help="compile the lists and run the swap test only (no throughput runs)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--from-json", type=Path, metavar="FILE",
                        help="print the tables of a run saved with --json (runs nothing)")
    args = parser.parse_args()
    for name in ("runs", "duration", "connections", "hosts"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.from_json:
        print(report(json.loads(args.from_json.read_text()), args))
        return 0
    image = bench_image(base_image())
    inside = ["--synthetic", str(args.synthetic), "--runs", str(args.runs), "--duration",
              str(args.duration), "--connections", str(args.connections), "--hosts",
              str(args.hosts), "--swaps", str(args.swaps), "--warmup", str(args.warmup)]
    inside += ["--quick"] if args.quick else []
    inside += ["--swaps-only"] if args.swaps_only else []
    inside += [] if args.hup else ["--no-hup"]
    results = run_inside(image, args.container, inside, args.keep)
    results["args"] = {k: v for k, v in vars(args).items() if k in (
        "synthetic", "quick", "runs", "duration", "connections", "hosts", "swaps",
        "warmup", "hup", "swaps_only")}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(report(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
