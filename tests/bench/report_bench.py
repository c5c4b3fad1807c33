#!/usr/bin/env python3
"""Benchmark: the fleet report of ALL open public schools of the Ille-et-Vilaine directory.

Builds the inventory of every school with the default plan (as tests/bench/inventory_bench.py
does: 421 schools, 6,303 hosts), a hardware file giving every host a purchase date (no MACs), a
tariff and a campaign status spread over four waves, then times `cartable report` as a user
runs it (a fresh process: imports included, best of 3) and in process by step, and prints the
HTML size. With --browser, opens the page in Debian's Chromium (Playwright) and times its load.
Figures only, no assertion: `make bench-report`. The target: <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cartable.cli import main as cartable  # noqa: E402
from cartable.report import compute  # noqa: E402
from cartable.report.build import build_report  # noqa: E402
from cartable.report.inputs import read_inputs  # noqa: E402
from cartable.site import read_site  # noqa: E402

DIRECTORY = REPO / "data/annuaire/fr-en-annuaire-education-35.csv"
AS_OF = "2026-11-01"
RUNS = 3


def site_data(directory: Path, supernet: str) -> dict:
    return {
        "name": "bench", "domain": "ecoles.example.test",
        "directory": str(directory.resolve()), "hardware": "hardware.csv",
        "selection": {"all": True},
        "address_plan": {"supernet": supernet},
        "academic_proxy": {"host": "proxy.example.test", "port": 3128},
        "renewal": {"workstations": 6, "laptops": 5, "school_servers": 7, "printers": 7,
                    "scanners": 7, "projectors": 8},
        "billing": {"title": "Quotes-parts (banc d'essai)", "invoice": "1234567.89",
                    "tariff": {"per_workstation": 48.5, "per_laptop": 30, "per_pupil": 1.8,
                               "per_school": 250, "fixed": 400}},
    }


def synthetic_inputs(work: Path) -> int:
    """A hardware file dating every host, a campaign over four waves; returns the host count."""
    tree = yaml.load((work / "hosts.yml").read_text(), Loader=yaml.CSafeLoader)
    rng = random.Random(35)
    rows, states = ["hostname,mac,model,purchase_date"], {}
    for name, group in tree["all"]["children"].items():
        uai = (group.get("vars") or {}).get("cartable_school_uai")
        if not uai:
            continue
        for host in group["hosts"]:
            rows.append(f"{host},,modèle,{rng.randint(2013, 2026)}-{rng.randint(1, 12):02d}-01")
        states[uai] = {"state": rng.choice(["ok", "ok", "ok", "failed", "unreachable",
                                            "running", "pending"]),
                       "wave": f"vague-{rng.randint(1, 4)}", "started": None, "ended": None,
                       "failed_hosts": [], "failed_tasks": [], "changed": 1}
    (work / "hardware.csv").write_text("\n".join(rows) + "\n")
    status = work / "campaigns" / "bench" / "status.json"
    status.parent.mkdir(parents=True)
    status.write_text(json.dumps({"campaign": "bench", "playbook": "playbooks/site.yml",
                                  "updated": "2026-10-31T18:00:00+00:00", "schools": states}))
    return len(rows) - 1


def browser_load(html: Path) -> float:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", headless=True, offline=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        page = browser.new_page()
        start = time.perf_counter()
        page.goto(html.as_uri(), wait_until="load")
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
        took = time.perf_counter() - start
        browser.close()
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--directory", type=Path, default=DIRECTORY, metavar="CSV",
                        help=f"school directory CSV (default: {DIRECTORY.relative_to(REPO)})")
    parser.add_argument("--supernet", default="10.64.0.0/12",
                        help="address plan supernet (default: 10.64.0.0/12)")
    parser.add_argument("--browser", action="store_true",
                        help="also time the page's load in Chromium (/usr/bin/chromium)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="copy the report folder there (to look at it)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cartable-report-bench-"))
    try:
        site_path = work / "site.yml"
        site_path.write_text(yaml.safe_dump(site_data(args.directory, args.supernet)))
        (work / "hardware.csv").write_text("hostname,mac\n")
        if cartable(["inventory", "build", str(site_path)]) != 0:
            return 1
        hosts = synthetic_inputs(work)
        out = work / "report"
        cmd = [str(Path(sys.executable).parent / "cartable"), "report", str(site_path),
               "--as-of", AS_OF, "--out", str(out), "--facts", str(work / "no-facts")]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        walls, cpus = [], []
        for _ in range(RUNS):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        site = read_site(site_path)
        steps: dict[str, float] = {}
        start = time.perf_counter()
        inputs = read_inputs(site, compute.dt.date.fromisoformat(AS_OF), work / "hosts.yml",
                             None, None, None)
        steps["read inputs (hosts.yml, hardware, campaign)"] = time.perf_counter() - start
        start = time.perf_counter()
        files = build_report(inputs, site.renewal, site.billing, str(site_path))
        steps["figures, CSV, plots, HTML"] = time.perf_counter() - start
        html = out / "rapport.html"
        size = html.stat().st_size
        svg = sum(len(part.split("</svg>")[0]) for part in files["rapport.html"].split("<svg")[1:])
        print(f"schools: {len(inputs.schools)}  communes: "
              f"{len({s.commune_code for s in inputs.schools})}  hosts: {hosts}")
        print(f"cartable report (fresh process, imports included), best of {RUNS}: "
              f"{min(walls):.2f} s (runs: {', '.join(f'{w:.2f}' for w in walls)})   "
              "target <= 5 s")
        print(f"  CPU time of that process (user + sys), best of {RUNS}: {min(cpus):.2f} s "
              f"(load average now: {os.getloadavg()[0]:.1f})")
        for step, took in steps.items():
            print(f"  in process: {step:48s} {took:.2f} s")
        print(f"rapport.html: {size / 1e6:.2f} MB (plots {svg / 1e6:.2f} MB); CSV: " + ", ".join(
            f"{p.name} {p.stat().st_size / 1e3:.0f} kB" for p in sorted(out.glob("*.csv"))))
        if args.keep:
            shutil.copytree(out, args.keep, dirs_exist_ok=True)
        if args.browser:
            print(f"Chromium: page loaded and laid out in {browser_load(html):.2f} s")
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
