"""Image fetch over a shaped WAN: what a school server's cache costs on an ADSL/satellite link.

    python tests/bench/images_wan_bench.py --store DIR [--image essai] [--v1 V] [--v2 V]
                                           [--work DIR] [--subnet 10.250.34.0/24]

Root. A copy of an image store (`tests/bench/images_bench.py` builds one with v1 and v2 of
`essai`) is served over plain HTTP from a "DSI" network namespace; three "school server"
namespaces are linked to it by veths shaped with `tc tbf` (no netem here: no added latency):
two ADSL schools (A, B) and a satellite school (S). The REAL `cartable-image-fetch` runs in
the schools' namespaces:
- A: v1 into an empty cache at the role's rate (`image_cache__rate_by_link`), then v2;
- B: v1 into an empty cache at the raw link speed (--rate 0): a second school of the same
  link pays its own WAN copy (one copy per school is the design); then, in a fresh cache, v1
  killed (SIGKILL) at ~50 % of its bytes and run again;
- S: v1 into an empty cache at the role's satellite rate.
WAN bytes are counted on the school side of each veth (rx/tx_bytes of the interface, Ethernet
frames) before/after each step. Everything created is removed at the end, even on failure;
refuses to start when one of its names already exists. Prints a Markdown table.
The store is served with HTTP/1.1 (keep-alive, as a production web server).

`--latency` (images_latency_bench.py): instead, round trips emulated in userspace
(latency_relay.py: ADSL 40 ms, satellite 600 ms) and the fetcher before keep-alive (git
revision --before) against today's, at the role's rates and connections.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from cartable.images import store as st  # noqa: E402

PREFIX = "wan"
DSI_NS = f"{PREFIX}-dsi"
PORT = 8080
BEFORE = "6d669e1"   # the last commit whose fetcher used one connection per chunk (--latency)
# Nominal links (Mbit/s down, up): the figures the role's rates are derived from
# (roles/image_cache/defaults/main.yml: ADSL "~8", satellite "~10"); 1 Mbit/s up for both.
LINKS = {"adsl": (8.0, 1.0), "satellite": (10.0, 1.0)}


@dataclass(frozen=True)
class School:
    name: str        # a, b, s
    link: str        # adsl, satellite
    index: int       # its /30 in the subnet

    @property
    def ns(self) -> str:
        return f"{PREFIX}-{self.name}"

    @property
    def dev(self) -> str:          # school side, in the school's namespace
        return f"{PREFIX}-{self.name}-wan"

    @property
    def peer(self) -> str:         # DSI side, in the DSI's namespace
        return f"{PREFIX}-dsi-{self.name}"


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def existing_names(schools: list[School]) -> list[str]:
    namespaces = run("ip", "netns", "list").stdout.split()
    links = {p.name for p in Path("/sys/class/net").iterdir()}
    wanted = [DSI_NS] + [s.ns for s in schools]
    devs = [s.dev for s in schools] + [s.peer for s in schools]
    return [n for n in wanted if n in namespaces] + [d for d in devs if d in links]


def addresses(subnet: ipaddress.IPv4Network, school: School) -> tuple[str, str]:
    base = subnet.network_address + 4 * school.index
    return str(base + 1), str(base + 2)  # DSI side, school side


def tbf(ns: str, dev: str, mbit: float) -> None:
    # burst of one frame: tbf then splits TCP's segmentation-offload (GSO) packets into MTU
    # frames, as a real link sends them, and the counters see every frame's headers
    run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
        "rate", f"{mbit}mbit", "burst", "1600", "latency", "200ms")


def set_up(subnet: ipaddress.IPv4Network, schools: list[School]) -> None:
    run("ip", "netns", "add", DSI_NS)
    run("ip", "-n", DSI_NS, "link", "set", "lo", "up")
    for school in schools:
        dsi_ip, school_ip = addresses(subnet, school)
        down, up = LINKS[school.link]
        run("ip", "netns", "add", school.ns)
        run("ip", "-n", school.ns, "link", "set", "lo", "up")
        run("ip", "link", "add", school.dev, "netns", school.ns, "type", "veth",
            "peer", "name", school.peer, "netns", DSI_NS)
        run("ip", "-n", DSI_NS, "addr", "add", f"{dsi_ip}/30", "dev", school.peer)
        run("ip", "-n", school.ns, "addr", "add", f"{school_ip}/30", "dev", school.dev)
        run("ip", "-n", DSI_NS, "link", "set", school.peer, "up")
        run("ip", "-n", school.ns, "link", "set", school.dev, "up")
        # downstream = the DSI side's egress, upstream = the school side's egress (tbf shapes
        # egress only; policing the school's ingress would drop instead of queueing)
        tbf(DSI_NS, school.peer, down)
        tbf(school.ns, school.dev, up)


def tear_down(schools: list[School]) -> None:
    for ns in [s.ns for s in schools] + [DSI_NS]:
        run("ip", "netns", "del", ns, check=False)  # removes its veths (and their peers)


def counters(school: School) -> tuple[int, int, int]:
    """Bytes received, bytes sent, frames received on the school's side of its WAN link."""
    out = run("ip", "-j", "-s", "-n", school.ns, "link", "show", "dev", school.dev).stdout
    stats = json.loads(out)[0]["stats64"]
    return stats["rx"]["bytes"], stats["tx"]["bytes"], stats["rx"]["packets"]


def set_latest(store: Path, image: str, version: str) -> None:
    latest = store / image / "latest"
    latest.unlink(missing_ok=True)  # a new file: never write through a hard link
    latest.write_text(version + "\n", encoding="utf-8")


def upgrade_manifests(image_dir: Path) -> list[str]:
    """A store built before the manifests carried `index_sha256` (commit ce32e56): add it to
    the DSI's copy, as a build of today would, so that today's fetcher takes it."""
    notes = []
    for path in sorted(image_dir.glob(f"*/{st.MANIFEST}")):
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if "index_sha256" not in manifest:
            index = path.parent / manifest["index"]
            manifest["index_sha256"] = hashlib.sha256(index.read_bytes()).hexdigest()
            path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            notes.append(f"{path}: built before index_sha256, added to the DSI's copy")
    return notes


def version_bytes(store: Path, image: str, versions: list[str], new: str) -> int:
    """Compressed chunk bytes of `new` not in `versions` + its index and manifest."""
    old = set().union(*({c.id for c in st.read_index(st.version_dir(store, image, v) / st.INDEX)}
                        for v in versions)) if versions else set()
    vdir = st.version_dir(store, image, new)
    ids = {c.id for c in st.read_index(vdir / st.INDEX)} - old
    return (st.chunk_bytes(store, ids) + (vdir / st.INDEX).stat().st_size
            + (vdir / st.MANIFEST).stat().st_size)


def kept_bytes(cache: Path) -> int:
    """Bytes a killed fetch left in its cache: stored chunks, complete incoming ones, index."""
    files = list((cache / st.CHUNKS).rglob("*.cacnk")) + list(cache.glob("*/.*.part/incoming/*.zst"))
    files += list(cache.glob(f"*/.*.part/{st.INDEX}"))
    return sum(f.stat().st_size for f in files)


@dataclass
class Step:
    label: str
    link: str
    rate: int
    payload: int = 0        # bytes the store says this step needs
    rx: int = 0
    tx: int = 0
    frames: int = 0
    seconds: float = 0.0
    output: str = ""
    code: int = 0


class Fetch:
    """One `cartable-image-fetch` run in a school's namespace, measured on its veth."""

    def __init__(self, school: School, url: str, cache: Path, image: str, step: Step,
                 command: list[str] | None = None, extra: tuple[str, ...] = ()):
        self.school, self.step, self.cache = school, step, cache
        self.rx0, self.tx0, self.frames0 = counters(school)
        self.started = time.monotonic()
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(  # noqa: S603 - our own command line
            ["ip", "netns", "exec", school.ns,
             *(command or [sys.executable, "-m", "cartable.images.fetch"]),
             "--source", url, "--cache", str(cache), "--image", image,
             "--rate", str(step.rate), *extra],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def rx_so_far(self) -> int:
        return counters(self.school)[0] - self.rx0

    def wait(self) -> Step:
        out, _ = self.proc.communicate()
        self.step.seconds = time.monotonic() - self.started
        self.step.code = self.proc.returncode
        self.step.output = out.strip().replace("\n", "; ")
        rx, tx, frames = counters(self.school)
        self.step.rx, self.step.tx, self.step.frames = rx - self.rx0, tx - self.tx0, frames - self.frames0
        print(f"  {self.step.label}: rc {self.step.code}, {self.step.seconds:.1f} s, "
              f"rx {self.step.rx} tx {self.step.tx} frames {self.step.frames}: {self.step.output}", flush=True)
        return self.step

    def kill_after(self, seconds: float) -> Step:
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)  # the process we started, by its id
        return self.wait()

    def kill_at(self, target: int) -> Step:
        while self.proc.poll() is None and self.rx_so_far() < target:
            time.sleep(0.05)
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # the process we started, by its id
        return self.wait()


def role_rates() -> dict[str, int]:
    defaults = REPO / "roles" / "image_cache" / "defaults" / "main.yml"
    return yaml.safe_load(defaults.read_text(encoding="utf-8"))["image_cache__rate_by_link"]


def mb(n: int) -> str:
    return f"{n / 1e6:,.2f} MB"


def table(steps: list[Step], expected_interrupt: tuple[int, int] | None) -> str:
    rows = ["| step | link (down/up Mbit/s) | fetcher rate | store says | WAN down (rx) | "
            "WAN up (tx) | overhead | frames down (mean) | time | throughput | rc |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in steps:
        down, up = LINKS[s.link]
        rate = f"{s.rate * 8 / 1e6:g} Mbit/s (role)" if s.rate else "none (raw link)"
        over = f"{(s.rx / s.payload - 1) * 100:+.1f} %" if s.payload else "—"
        thr = f"{s.rx * 8 / s.seconds / 1e6:.2f} Mbit/s" if s.seconds else "—"
        rows.append(f"| {s.label} | {s.link} {down:g}/{up:g} | {rate} | {mb(s.payload)} | "
                    f"{mb(s.rx)} | {mb(s.tx)} | {over} | {s.frames:,} ({s.rx // max(s.frames, 1)} B) | {s.seconds:.1f} s | {thr} | {s.code} |")
    if expected_interrupt:
        first, rerun = expected_interrupt
        rows.append("")
        rows.append(f"Interrupted transfer: killed after {mb(first)} on the wire; the re-run "
                    f"moved {mb(rerun)}; together {mb(first + rerun)}.")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True,
                        help="an image store holding v1 and v2 of the image (images_bench.py)")
    parser.add_argument("--image", default="essai")
    parser.add_argument("--v1", help="first version (default: the store's oldest)")
    parser.add_argument("--v2", help="second version (default: the store's newest)")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/wan-bench"),
                        help="scratch folder (the DSI's copy, the caches); removed at the end")
    parser.add_argument("--subnet", type=ipaddress.IPv4Network, default="10.250.34.0/24")
    parser.add_argument("--cut", type=float, default=0.5, help="fraction of v1 before the kill")
    parser.add_argument("--prefix", default="wan", help="names of the namespaces and veths")
    parser.add_argument("--latency", action="store_true",
                        help="instead: round trips emulated (ADSL 40 ms, satellite 600 ms), the "
                        "fetcher before/after keep-alive (images_latency_bench.py)")
    parser.add_argument("--before", default=BEFORE,
                        help="--latency: git revision of the fetcher to compare with")
    parser.add_argument("--old-seconds", type=float, default=240,
                        help="--latency: the fetcher before is stopped after this and extrapolated")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("images_wan_bench: run as root (network namespaces, tc)", file=sys.stderr)
        return 2
    global PREFIX, DSI_NS
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # kill PID: still clean up (finally)
    PREFIX, DSI_NS = args.prefix, f"{args.prefix}-dsi"
    image_dir = args.store / args.image
    versions = sorted((p.name for p in image_dir.iterdir() if (p / st.MANIFEST).exists()),
                      key=lambda v: st.catalog_version_key(v) or ()) if image_dir.is_dir() else []
    if len(versions) < (1 if args.latency else 2) and not (args.v1 and args.v2):
        print(f"images_wan_bench: {image_dir}: needs two versions (found {versions}); "
              "build them with tests/bench/images_bench.py", file=sys.stderr)
        return 2
    v1, v2 = args.v1 or versions[0], args.v2 or versions[-1]
    if args.latency:
        import images_latency_bench
        return images_latency_bench.latency_bench(args.store, args.image, v1, args.work,
                                                  args.subnet, args.before, args.old_seconds,
                                                  args.prefix)
    schools = [School("a", "adsl", 0), School("b", "adsl", 1), School("s", "satellite", 2)]
    taken = existing_names(schools)
    if taken or args.work.exists():
        print(f"images_wan_bench: already exist: {', '.join(taken + [str(args.work)] * args.work.exists())}; "
              "remove them (a previous run?) first", file=sys.stderr)
        return 2
    rates = role_rates()
    steps: list[Step] = []
    try:
        dsi = args.work / "dsi"
        dsi.mkdir(parents=True)
        # chunks hard-linked (read only), the image's folder copied (its `latest` is rewritten)
        run("cp", "-al", str(args.store / st.CHUNKS), str(dsi / st.CHUNKS))
        shutil.copytree(image_dir, dsi / args.image)
        for note in upgrade_manifests(dsi / args.image):
            print(f"  note: {note}", flush=True)
        set_latest(dsi, args.image, v1)
        set_up(args.subnet, schools)
        server = subprocess.Popen(  # noqa: S603
            ["ip", "netns", "exec", DSI_NS, sys.executable, "-m", "http.server", str(PORT),
             "--protocol", "HTTP/1.1", "--directory", str(dsi)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)
            url = {s.name: f"http://{addresses(args.subnet, s)[0]}:{PORT}" for s in schools}
            full = version_bytes(dsi, args.image, [], v1)
            delta = version_bytes(dsi, args.image, [v1], v2)
            a, b, s = schools
            print(f"{args.image} {v1}: {mb(full)}; {v1} -> {v2}: {mb(delta)}", flush=True)
            fa = Fetch(a, url["a"], args.work / "a", args.image,
                       Step(f"A: v1 ({v1}), empty cache", "adsl", rates["adsl"], full))
            fb = Fetch(b, url["b"], args.work / "b", args.image,
                       Step(f"B: v1 ({v1}), empty cache (2nd school)", "adsl", 0, full))
            fs = Fetch(s, url["s"], args.work / "s", args.image,
                       Step(f"S: v1 ({v1}), empty cache", "satellite", rates["satellite"], full))
            steps.append(fb.wait())
            fb2 = Fetch(b, url["b"], args.work / "b2", args.image,
                        Step(f"B: v1 ({v1}), killed at ~{args.cut:.0%} (store says: kept)", "adsl", 0))
            killed = fb2.kill_at(int(full * args.cut))
            steps.append(killed)
            held = killed.payload = kept_bytes(args.work / "b2")
            print(f"  kept after the kill: {mb(held)}", flush=True)
            rest = Step(f"B: v1 ({v1}), re-run after the kill (store says: the rest)", "adsl", 0)
            steps.append(Fetch(b, url["b"], args.work / "b2", args.image, rest).wait())
            steps.insert(0, fa.wait())
            set_latest(dsi, args.image, v2)
            steps.insert(1, Fetch(a, url["a"], args.work / "a", args.image,
                                  Step(f"A: v2 ({v2}) holding v1", "adsl", rates["adsl"],
                                       delta)).wait())
            steps.append(fs.wait())
        finally:
            server.kill()  # the server we started, by its process
            server.wait()
        rest.payload = full - held
        print()
        print(table(steps, (killed.rx, rest.rx)))
        print(f"\n{args.image}: v1 {mb(full)} (compressed chunks + index + manifest), "
              f"v1 -> v2 {mb(delta)}; role rates: {rates}")
    finally:
        tear_down(schools)
        shutil.rmtree(args.work, ignore_errors=True)
    return 0 if all(x.code == 0 for x in steps if "killed" not in x.label) else 1


if __name__ == "__main__":
    sys.exit(main())
