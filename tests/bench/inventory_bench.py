#!/usr/bin/env python3
"""Benchmark: the inventory of ALL open public schools of the Ille-et-Vilaine directory.

Prints the build time, the hosts and groups produced, and the CPU and wall time of
`ansible-inventory --list` on the result, loaded three ways from the same data:
  - the stock ansible.builtin.yaml plugin (what stock Ansible settings do with hosts.yml),
  - Cartable's cartable_inventory plugin (what our ansible.cfg does with the same hosts.yml),
  - a JSON inventory script (the fastest form measured in the foundation issue),
and the ratios. Figures only, no assertion: run it with `make bench-inventory`.

The directory defaults to the one shipped in data/; `--directory CSV` takes another export
(a whole académie or the national file) and `--supernet` a plan large enough for it.
"""

from __future__ import annotations

import argparse
import json
import os
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

from cartable.inventory import build  # noqa: E402
from cartable.site import read_site  # noqa: E402

DIRECTORY = REPO / "data/annuaire/fr-en-annuaire-education-35.csv"
RUNS = 3


def site_data(directory: Path, supernet: str) -> dict:
    return {
        "name": "bench",
        "domain": "ecoles.example.test",
        "directory": str(directory.resolve()),
        "selection": {"all": True},
        "address_plan": {"supernet": supernet},
        "academic_proxy": {"host": "proxy.example.test", "port": 3128},
    }
def to_script_json(tree: dict) -> dict:
    """The hosts.yml tree in the JSON inventory-script format."""
    out: dict = {"_meta": {"hostvars": {}}}

    def walk(name: str, group: dict) -> None:
        entry = out.setdefault(name, {})
        if group.get("vars"):
            entry["vars"] = group["vars"]
        if group.get("hosts"):
            entry.setdefault("hosts", []).extend(group["hosts"])
            for host, host_vars in group["hosts"].items():
                if host_vars:
                    out["_meta"]["hostvars"].setdefault(host, {}).update(host_vars)
        if group.get("children"):
            entry.setdefault("children", []).extend(group["children"])
            for child, data in group["children"].items():
                walk(child, data or {})

    walk("all", tree["all"])
    return out


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(best CPU seconds, best wall seconds, first run's CPU seconds) of RUNS runs of cmd."""
    cpu, wall = [], []
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        wall.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(cpu), min(wall), cpu[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--directory", type=Path, default=DIRECTORY, metavar="CSV",
                        help=f"school directory CSV (default: {DIRECTORY.relative_to(REPO)})")
    parser.add_argument("--supernet", default="10.64.0.0/14",
                        help="address plan supernet (default: 10.64.0.0/14, enough for 35)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cartable-bench-"))
    try:
        site_path = work / "site.yml"
        site_path.write_text(yaml.safe_dump(site_data(args.directory, args.supernet)))
        site = read_site(site_path)
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            built = build(site, work)
            times.append(time.perf_counter() - start)
        for name, text in built.files.items():
            (work / name).write_text(text)
        print(f"schools: {built.schools}  hosts: {built.hosts}  groups: {built.groups}")
        print(f"build (in process, best of {RUNS}): {min(times):.2f} s   target <= 2 s")

        tree = yaml.load((work / "hosts.yml").read_text(), Loader=yaml.CSafeLoader)
        script = work / "inventory.py"
        (work / "inventory.json").write_text(json.dumps(to_script_json(tree)))
        script.write_text("#!/bin/sh\nexec cat \"$(dirname \"$0\")/inventory.json\"\n")
        script.chmod(0o755)

        bin_dir = Path(sys.executable).parent
        inv = str(bin_dir / "ansible-inventory")
        # A cache of its own, so the first run of the cartable plugin is a real cache miss.
        env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
               "XDG_CACHE_HOME": str(work / "cache")}
        forms = {
            "stock yaml plugin (hosts.yml)":
                ([inv, "-i", str(work / "hosts.yml"), "--list"],
                 {**env, "ANSIBLE_INVENTORY_ENABLED": "ansible.builtin.yaml"}),
            "cartable_inventory plugin (hosts.yml)":
                ([inv, "-i", str(work / "hosts.yml"), "--list"], env),
            "JSON inventory script":
                ([inv, "-i", str(script), "--list"],
                 {**env, "ANSIBLE_INVENTORY_ENABLED": "ansible.builtin.script"}),
        }
        results = {}
        print(f"ansible-inventory --list, best of {RUNS} (CPU s / wall s; CPU s of the first run):")
        for label, (cmd, cmd_env) in forms.items():
            results[label] = timed(cmd, cmd_env)
            cpu, wall, first = results[label]
            print(f"  {label:40s} {cpu:6.2f} / {wall:6.2f}   first: {first:6.2f}")
        ours = results["cartable_inventory plugin (hosts.yml)"][0]
        print(f"ratio stock yaml / cartable plugin (CPU): "
              f"{results['stock yaml plugin (hosts.yml)'][0] / ours:.2f}")
        print(f"ratio JSON script / cartable plugin (CPU): "
              f"{results['JSON inventory script'][0] / ours:.2f}  (>= 1: as fast as the script)")
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
