#!/usr/bin/env python3
"""Connection-history benchmark (no squid): can the logger keep up with squid?

    python3.11 tests/bench/history_bench.py [--lines 300000] [--python python3.11]

Feeds `cartable-history-logger` (a subprocess of --python, as squid starts it) through its
stdin with --lines squid lines in squid's own framing (`L<line>`, an `F` after every batch of
~32 KB as squid's ModDaemon sends them), 200 workstations (hosts.json from the inventory,
200 dnsmasq leases), 2,000 sites (Zipf-like), 10 % blocked, 1 % garbage; measures the wall and CPU time until the
logger has written everything and exited. Then the daily jobs on the day file produced:
`seal` (gzip + sha256 + chain), `verify`, `report` for the day. Prints a Markdown table.
The target from issue 8: the logger keeps up with >= 5,000 requests/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATIONS = 200


def _inputs(tmp: Path) -> Path:
    hosts = [{"name": f"0350607v-sdi{i:03d}", "mac": f"52:54:00:aa:{i // 256:02x}:{i % 256:02x}",
              "addresses": [f"10.35.1.{i + 20}"] if i % 2 else []} for i in range(STATIONS)]
    (tmp / "hosts.json").write_text(json.dumps(hosts))
    (tmp / "dnsmasq.leases").write_text("".join(
        f"1764700000 52:54:00:aa:{i // 256:02x}:{i % 256:02x} 10.35.1.{i + 20} sdi{i:03d} *\n"
        for i in range(STATIONS)))
    config = tmp / "logger.json"
    config.write_text(json.dumps({"hosts": str(tmp / "hosts.json"),
                                  "leases": str(tmp / "dnsmasq.leases")}))
    return config


def _stream(lines: int, seed: int = 8) -> bytes:
    rng = random.Random(seed)
    sites = [f"www.site{i}.example" for i in range(2000)]

    def site() -> str:  # a few sites take most requests (Zipf-like), as in real browsing
        return sites[int(rng.paretovariate(1.0)) % len(sites)]

    now = time.time()
    out: list[bytes] = []
    batch = 0
    for n in range(lines):
        ip = f"10.35.1.{rng.randrange(STATIONS) + 20}"
        roll = rng.random()
        if roll < 0.01:
            text = f"garbage line {n} \x01 with\ttab"
        elif roll < 0.11:
            text = (f"{now + n / 5000:.3f} {ip} - TCP_DENIED/403 CONNECT "
                    f"casino{n % 97}.example:443 3950 gambling")
        elif roll < 0.6:
            text = (f"{now + n / 5000:.3f} {ip} - TCP_TUNNEL/200 CONNECT "
                    f"{site()}:443 {rng.randrange(100000)} -")
        else:
            text = (f"{now + n / 5000:.3f} {ip} - TCP_MISS/200 GET "
                    f"http://{site()}/page/{n}?q=x {rng.randrange(100000)} -")
        line = f"L{text}\n".encode()
        out.append(line)
        batch += len(line)
        if batch > 32768:
            out.append(b"F\n")
            batch = 0
    return b"r10\nb0\n" + b"".join(out) + b"F\n"


def _logger(python: str, config: Path, folder: Path, data: bytes) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([python, "-m", "cartable.history.logger", "--config", str(config),
                           str(folder)], input=data, capture_output=True, env=env, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.stderr:
        print(done.stderr.decode(), file=sys.stderr)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _cli(python: str, *args: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    started = time.perf_counter()
    subprocess.run([python, "-m", "cartable.history.cli", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--python", default="python3.11",
                        help="the interpreter the school server runs (Debian 12: 3.11)")
    args = parser.parse_args()
    version = subprocess.run([args.python, "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config = _inputs(tmp)
        folder = tmp / "history"
        folder.mkdir()
        data = _stream(args.lines)
        wall, cpu = _logger(args.python, config, folder, data)
        (day_path,) = folder.glob("*.log")
        size = day_path.stat().st_size
        rows.append(("logger: squid stream -> day file", f"{args.lines:,} lines",
                     f"{wall:.2f} s", f"{cpu:.2f} s", f"{args.lines / wall:,.0f} lines/s "
                     f"({args.lines / cpu:,.0f} per CPU-second)"))
        day = date.fromisoformat(day_path.name[:10])
        tomorrow = (day + timedelta(days=1)).isoformat()
        seal = _cli(args.python, "seal", "--dir", str(folder), "--today", tomorrow,
                    "--leases", str(tmp / "dnsmasq.leases"))
        packed = folder / f"{day_path.name}.gz"
        rows.append(("seal (gzip + sha256 + chain)", f"{size / 1e6:.1f} MB -> "
                     f"{packed.stat().st_size / 1e6:.1f} MB", f"{seal:.2f} s", "",
                     f"{size / 1e6 / seal:.0f} MB/s"))
        verify = _cli(args.python, "verify", "--dir", str(folder), "--today", tomorrow)
        rows.append(("verify", "1 day", f"{verify:.2f} s", "", ""))
        report = _cli(args.python, "report", "--dir", str(folder), "--from", day.isoformat(),
                      "--to", day.isoformat(), "--csv", str(tmp / "out.csv"))
        rows.append(("report (1 day, CSV)", f"{args.lines:,} lines", f"{report:.2f} s", "",
                     f"{args.lines / report:,.0f} lines/s"))
    print(f"History benchmark, {version}, {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    print("| step | input | wall | CPU | rate |\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nBytes per enriched line: {size / args.lines:.0f}; "
          f"target >= 5,000 lines/s: {'met' if args.lines / wall >= 5000 else 'NOT met'} "
          f"({args.lines / wall / 5000:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
