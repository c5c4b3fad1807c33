#!/usr/bin/env python3
"""Benchmark: a no-op converge of N workstation containers, the project's ansible.cfg
against stock Ansible settings (same hosts, one timed run each), printed as a ratio.

    .venv/bin/python tests/bench/lab_bench.py [--sizes 10,50] [--keep]

For each N: N containers of the lab's base image (systemd, sshd) on a network of their own
(label org.cartable.lab=bench, removed at the end), an inventory of them with the lab's
connection settings (key, known_hosts read from each container), then
  1. an untimed warm-up (ping, stock settings), so both timed runs find the same warm hosts;
  2. stock:   ANSIBLE_CONFIG = an empty file (Ansible's defaults);
  3. project: ANSIBLE_CONFIG = ansible.cfg, with an empty fact cache (a cold run);
  4. project, again (warm fact cache): shown for information, not in the ratio.
Each run gets its own SSH ControlPath directory, closed afterwards, so no run reuses another's
connections. The playbook (tests/bench/lab_bench.yml) changes nothing: every run must report
changed=0. Results are printed and written to .cache/lab/bench/results.json.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# The lab package of this checkout (cartable_lab/), whatever an editable install points to.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cartable_lab import common, connection, containers, engine  # noqa: E402  (after sys.path)
from cartable_lab import images as lab_images  # noqa: E402  (`images` is the tags, below)

KIND = "bench"
NETWORK = {"name": "cartable-bench", "bridge": "cl-bench", "subnet": "10.250.0.0/24",
           "gateway": "10.250.0.254", "internal": False, "host_address": True,
           "school_network": None}
STATE = common.STATE / "bench"


def bench_model(n: int) -> dict:
    first = ipaddress.ip_address("10.250.0.10")
    hosts = [{
        "name": f"cartable-bench-ws{i:02d}", "host": f"bench-ws{i:02d}", "hostname": f"bench-ws{i:02d}",
        "role": "host", "image": "base", "networks": [["bench", str(first + i)]], "mac": None,
        "etc_hosts": {}, "ansible_host": str(first + i),
    } for i in range(1, n + 1)]
    return {"networks": {"bench": NETWORK}, "containers": hosts}


def start_hosts(n: int, images: dict, pubkey: str) -> tuple[float, Path]:
    """N running containers answering ssh; returns (seconds, inventory path)."""
    start = time.monotonic()
    model = bench_model(n)
    containers.remove_all(KIND)
    containers.ensure_networks(model, kind=KIND)
    hashes = {c["name"]: common.sha(json.dumps(c, sort_keys=True)) for c in model["containers"]}
    common.parallel(lambda c: containers.create_container(model, c, images, hashes[c["name"]], kind=KIND),
                    model["containers"], workers=4)
    results = {r["name"]: r for r in common.parallel(
        lambda c: containers.prepare_container(model, c, hashes[c["name"]], pubkey), model["containers"],
        workers=8)}
    took = time.monotonic() - start
    known = []
    hosts = {}
    for c in model["containers"]:
        for line in results[c["name"]]["host_keys"]:
            parts = line.split()
            if len(parts) >= 2:
                known.append(f"{c['ansible_host']} {parts[0]} {parts[1]}")
        hosts[c["host"]] = {"ansible_host": c["ansible_host"]}
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "known_hosts").write_text("\n".join(known) + "\n")
    inventory = {"all": {"children": {"workstations": {"hosts": hosts}}, "vars": {
        "ansible_user": common.LAB_USER,
        "ansible_ssh_private_key_file": str(common.STATE / "ssh" / "id_ed25519"),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={STATE / 'known_hosts'} "
                                   "-o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes",
        "ansible_python_interpreter": "/usr/bin/python3",
    }}}
    path = STATE / f"hosts-{n}.yml"
    path.write_text(json.dumps(inventory, indent=2) + "\n")
    return took, path


def close_masters(cp_dir: Path) -> None:
    for sock in cp_dir.iterdir():
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "bench"], capture_output=True,
                       check=False, timeout=10)


def timed_run(label: str, config: Path, inventory: Path, playbook: Path, fact_cache: Path | None,
              args: list[str] | None = None) -> dict:
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("ANSIBLE_")]:
        del env[key]
    env["ANSIBLE_CONFIG"] = str(config)
    env["PATH"] = f"{common.VENV_BIN}:{env.get('PATH', '')}"
    cp_dir = Path(tempfile.mkdtemp(prefix="cp-", dir="/tmp"))
    env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(cp_dir)
    if fact_cache is not None:
        env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(fact_cache)
    cmd = [common.tool("ansible-playbook"), "-i", str(inventory), str(playbook), *(args or [])]
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, text=True, capture_output=True, check=False)
    took = time.monotonic() - start
    close_masters(cp_dir)
    shutil.rmtree(cp_dir, ignore_errors=True)
    recap = [line for line in proc.stdout.splitlines() if " : ok=" in line]
    changed = sum(int(line.split("changed=")[1].split()[0]) for line in recap)
    failed = [line for line in recap if "failed=0" not in line or "unreachable=0" not in line]
    if proc.returncode != 0 or failed:
        sys.stdout.write(proc.stdout[-3000:] + proc.stderr[-2000:])
        raise SystemExit(f"bench: the {label} run failed (rc {proc.returncode})")
    return {"seconds": round(took, 2), "hosts": len(recap), "changed": changed}


def bench(n: int, images: dict, pubkey: str) -> dict:
    print(f"bench: N={n}: starting {n} workstation containers ...", flush=True)
    started, inventory = start_hosts(n, images, pubkey)
    print(f"bench: N={n}: {n} containers up and answering in {started:.1f} s", flush=True)
    stock_cfg = STATE / "stock.cfg"
    stock_cfg.write_text("# Ansible's stock settings: this file is empty on purpose.\n")
    project_cfg = ROOT / "ansible.cfg"
    playbook = HERE / "lab_bench.yml"
    facts = Path(tempfile.mkdtemp(prefix="facts-", dir="/tmp"))
    try:
        timed_run("warm-up", stock_cfg, inventory, playbook, None, ["--tags", "warmup"])
        stock = timed_run("stock", stock_cfg, inventory, playbook, None)
        project = timed_run("project", project_cfg, inventory, playbook, facts)
        project_warm = timed_run("project, warm fact cache", project_cfg, inventory, playbook, facts)
    finally:
        shutil.rmtree(facts, ignore_errors=True)
    for name, result in (("stock", stock), ("project", project), ("project (warm facts)", project_warm)):
        if result["hosts"] != n or result["changed"] != 0:
            raise SystemExit(f"bench: {name} run saw {result['hosts']} hosts, changed={result['changed']}")
    return {"n": n, "start_seconds": round(started, 1), "stock": stock["seconds"],
            "project": project["seconds"], "project_warm_facts": project_warm["seconds"],
            "ratio_stock_over_project": round(stock["seconds"] / project["seconds"], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,50", help="comma-separated numbers of workstations")
    parser.add_argument("--keep", action="store_true", help="leave the last set of containers running")
    args = parser.parse_args()
    try:
        engine.ensure_engine()
        images = lab_images.build_images()
        common.STATE.mkdir(parents=True, exist_ok=True)
        pubkey = connection.ensure_ssh_key()
        results = []
        for n in [int(x) for x in args.sizes.split(",")]:
            results.append(bench(n, images, pubkey))
            r = results[-1]
            print(f"bench: N={n}: stock {r['stock']:.1f} s, project {r['project']:.1f} s "
                  f"(warm facts {r['project_warm_facts']:.1f} s): ratio {r['ratio_stock_over_project']:.2f}",
                  flush=True)
    except common.LabError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            containers.remove_all(KIND)
    print()
    print(f"{'N':>4} {'start':>8} {'stock':>8} {'project':>8} {'warm':>8} {'stock/project':>14}")
    for r in results:
        print(f"{r['n']:>4} {r['start_seconds']:>7.1f}s {r['stock']:>7.1f}s {r['project']:>7.1f}s "
              f"{r['project_warm_facts']:>7.1f}s {r['ratio_stock_over_project']:>14.2f}")
    (STATE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
