#!/usr/bin/env python3
"""How fast a school server serves restores to a room: N PCs fetching an image's chunks at once.

    tests/bench/netboot_serve_bench.py [--store DIR] [--image essai] [--version 1]
                                       [--base-version V] [--clients 1,4,12] [--room 12]

Root (docker). A "school server" container (the lab's infra image: Debian 12's nginx, the
netboot role's `/images/` location: static files, Debian's `sendfile on`) serves the store on a
docker network of its own (`nbserve`, 10.250.35.0/24); N "PC" containers (the lab's base
image) each fetch every chunk of the version's index with curl, four requests in flight as the
restore environment's casync does, all PCs at once. The bridge is a veth, not a wire: what is
measured is the server's side (nginx and the kernel on this 2-core machine, shared with the PCs'
curl), the room's time on a real LAN is extrapolated from it and from gigabit's payload rate
(printed with the table). With --base-version, a `sync` from that version is counted too (the
chunks the newer version adds).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cartable.images import store as st  # noqa: E402

NET, SUBNET, SERVER_IP = "nbserve", "10.250.35.0/24", "10.250.35.2"
SERVER = "nbserve-server"
GIGABIT_PAYLOAD = 117e6   # bytes/s of HTTP payload on 1 Gbit/s Ethernet (TCP/IP headers off)
NGINX_CONF = """server {
    listen 80;
    root /srv/empty;
    access_log off;
    location /images/ { alias /srv/store/; }
}
"""


def docker(*args: str, check: bool = True) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise SystemExit(f"netboot_serve_bench: docker {' '.join(args[:3])}: {out.stderr.strip()}")
    return out.stdout.strip()


def lab_image(which: str) -> str:
    return subprocess.run([str(ROOT / ".venv/bin/python"), str(ROOT / "tests/lab/lab.py"),
                           "image-name", which], capture_output=True, text=True,
                          check=True).stdout.strip()


def chunk_ids(store: Path, image: str, version: str) -> list[str]:
    manifest = st.read_manifest(st.version_dir(store, image, version))
    index = st.version_dir(store, image, version) / manifest.get("index", st.INDEX)
    return sorted({c.id for c in st.read_index(index)})


def curl_config(ids: list[str], path: Path) -> None:
    lines = []
    for cid in ids:
        lines += [f'url = "http://{SERVER_IP}/images/{st.CHUNKS}/{cid[:4]}/{cid}.cacnk"',
                  'output = "/dev/null"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def cpu_seconds(container: str) -> float:
    cid = docker("inspect", "-f", "{{.Id}}", container)
    for stat in (Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat"),
                 Path(f"/sys/fs/cgroup/docker/{cid}/cpu.stat")):
        if stat.exists():
            for line in stat.read_text().splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) / 1e6
    usage = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")   # cgroup v1
    return int(usage.read_text()) / 1e9 if usage.exists() else float("nan")


def fetch(pc: str, config: str) -> tuple[float, int]:
    start = time.monotonic()
    out = docker("exec", pc, "curl", "-sS", "--fail", "--parallel", "--parallel-max", "4",
                 "-w", "%{size_download}\n", "-K", config)
    return time.monotonic() - start, sum(int(x) for x in out.split())


def run(pcs: list[str], config: str) -> tuple[float, int, float]:
    cpu0, start = cpu_seconds(SERVER), time.monotonic()
    with ThreadPoolExecutor(len(pcs)) as pool:
        results = list(pool.map(lambda pc: fetch(pc, config), pcs))
    wall = time.monotonic() - start
    return wall, sum(b for _, b in results), cpu_seconds(SERVER) - cpu0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=ROOT / ".cache/netboot/store")
    parser.add_argument("--image", default="essai")
    parser.add_argument("--version", default="1")
    parser.add_argument("--base-version", help="also count a sync from this version")
    parser.add_argument("--clients", default="1,4,12")
    parser.add_argument("--room", type=int, default=12, help="PCs of the extrapolated room")
    args = parser.parse_args()
    counts = [int(x) for x in args.clients.split(",")]
    ids = chunk_ids(args.store, args.image, args.version)
    sets = {"new": ids}
    if args.base_version:
        base = set(chunk_ids(args.store, args.image, args.base_version))
        sets[f"sync {args.base_version}->{args.version}"] = [i for i in ids if i not in base]
    store = args.store.resolve()
    work = Path(tempfile.mkdtemp(prefix="nbserve."))
    (work / "site.conf").write_text(NGINX_CONF, encoding="utf-8")
    for name, chunk_set in sets.items():
        curl_config(chunk_set, work / f"{name.split()[0]}.curl")
    docker("rm", "-f", SERVER, *[f"nbserve-pc{i}" for i in range(max(counts))], check=False)
    docker("network", "rm", NET, check=False)
    docker("network", "create", "--subnet", SUBNET, NET)
    pcs = [f"nbserve-pc{i}" for i in range(max(counts))]
    try:
        docker("run", "-d", "--name", SERVER, "--network", NET, "--ip", SERVER_IP,
               "-v", f"{store}:/srv/store:ro", "-v", f"{work}/site.conf:/etc/nginx/sites-enabled/default:ro",
               "--entrypoint", "nginx", lab_image("infra"), "-g", "daemon off;")
        for pc in pcs:
            docker("run", "-d", "--name", pc, "--network", NET, "-v", f"{work}:/bench:ro",
                   "--entrypoint", "sleep", lab_image("base"), "infinity")
        time.sleep(1)
        print(f"{args.image} {args.version}: {len(ids)} chunks; server nginx on {SERVER_IP}; "
              f"PCs: curl, 4 requests in flight each")
        print("| restore | PCs at once | bytes per PC | wall | aggregate | per PC | server CPU |")
        print("|---|---|---|---|---|---|---|")
        rates: dict[str, tuple[float, int]] = {}
        for name, chunk_set in sets.items():
            config = f"/bench/{name.split()[0]}.curl"
            for n in counts:
                wall, total, cpu = run(pcs[:n], config)
                per_pc = total // n
                rates[name] = (total / wall, per_pc)
                print(f"| {name} | {n} | {per_pc / 1e6:.1f} MB | {wall:.1f} s | "
                      f"{total / wall / 1e6:.0f} MB/s | {per_pc / wall / 1e6:.1f} MB/s | {cpu:.1f} s |")
        print(f"\nExtrapolation, a room of {args.room} PCs on gigabit (the server's link is the limit "
              f"when it serves more than {GIGABIT_PAYLOAD / 1e6:.0f} MB/s here):")
        for name, (rate, per_pc) in rates.items():
            served = min(rate, GIGABIT_PAYLOAD)
            print(f"- {name}: {args.room} × {per_pc / 1e6:.1f} MB / {served / 1e6:.0f} MB/s = "
                  f"{args.room * per_pc / served:.1f} s of serving")
    finally:
        docker("rm", "-f", SERVER, *pcs, check=False)
        docker("network", "rm", NET, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
