"""The school fetcher over a WAN with its round trip: `images_wan_bench.py --latency`.

The same namespaces and tbf-shaped veths as images_wan_bench.py, two schools: A on ADSL
(8/1 Mbit/s, 40 ms round trip) and S on a geostationary satellite (10/1 Mbit/s, 600 ms). The
round trip is userspace-emulated (no netem in this kernel): tests/bench/latency_relay.py runs in
the DSI's namespace between the schools and the HTTP server (HTTP/1.1 keep-alive, as nginx);
it delays every data block by RTT/2 each way, the first request of a connection by one more
RTT (the handshake), and paces the downstream by slow start (see its docstring for what it
does not model). Per school, into empty caches, v1 of the image:
- the fetcher BEFORE this change (`git show REV:cartable/images/fetch.py`: one connection
  per chunk, chunks one after the other), at the role's rate, killed after --old-seconds and
  extrapolated from the bytes it kept;
- today's fetcher at the role's rate and connections (`image_cache__parallel_by_link`: ADSL 4,
  satellite 8; keep-alive), to the end;
- today's fetcher without a rate (the raw link), to the end.
Extrapolated to cycle 2 (37,753 chunks, 1,122 MB): time × chunks ratio (a round-trip-bound
fetch) and × bytes ratio (a rate-bound one).
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

import images_wan_bench as wb
from images_wan_bench import Fetch, School, Step, addresses, kept_bytes, mb

RTT_MS = {"adsl": 40, "satellite": 600}
CYCLE2 = (37_753, 1_122e6)      # chunks, compressed bytes of cycle 2 (README)


def _old_fetcher(work: Path, rev: str) -> list[str]:
    source = subprocess.run(["git", "-C", str(wb.REPO), "show", f"{rev}:cartable/images/fetch.py"],
                            check=True, capture_output=True, text=True).stdout
    path = work / "before" / "fetch_before.py"
    path.parent.mkdir(parents=True)
    path.write_text(source, encoding="utf-8")
    return [sys.executable, str(path)]


def _runs(school: School, url: str, work: Path, image: str, rate: int, parallel: int,
          old: list[str], old_seconds: float, full: int, out: list[tuple[Step, int, int]]) -> None:
    """The three runs of one school, one after the other (its link is its own)."""
    name = school.name
    step = Step(f"{name.upper()}: before (1 connection per chunk, 1 at a time)", school.link, rate, full)
    fetch = Fetch(school, url, work / f"{name}-old", image, step, command=old)
    done = fetch.kill_after(old_seconds)
    out.append((done, kept_bytes(work / f"{name}-old") if done.code else full,
                _chunks(work / f"{name}-old")))
    for label, r in ((f"after ({parallel} keep-alive connections)", rate),
                     (f"after ({parallel} connections), no rate (raw link)", 0)):
        step = Step(f"{name.upper()}: {label}", school.link, r, full)
        done = Fetch(school, url, work / f"{name}-{r}", image, step,
                     extra=("--parallel", str(parallel))).wait()
        out.append((done, full, _chunks(work / f"{name}-{r}")))


def _chunks(cache: Path) -> int:
    return len(list((cache / wb.st.CHUNKS).rglob("*.cacnk"))) + \
        len(list(cache.glob("*/.*.part/incoming/*.zst")))


def table(results: list[tuple[Step, int, int]], full: int, chunks: int) -> str:
    rows = ["| school link (RTT, down/up) | fetcher | rate | chunks done | bytes done | WAN down (rx) | "
            "time | v1 at this pace | v1 at the rate alone | cycle 2 at this pace (×chunks / ×bytes) | rc |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for step, done_bytes, done_chunks in results:
        down, up = wb.LINKS[step.link]
        pace = step.seconds * full / max(done_bytes, 1)
        ideal = f"{full / step.rate / 60:.1f} min" if step.rate else "—"
        by_chunks = step.seconds * CYCLE2[0] / max(done_chunks, 1)
        by_bytes = step.seconds * CYCLE2[1] / max(done_bytes, 1)
        rate = f"{step.rate * 8 / 1e6:g} Mbit/s" if step.rate else "none"
        rows.append(f"| {step.link} ({RTT_MS[step.link]} ms, {down:g}/{up:g}) | {step.label[3:]} | {rate} | "
                    f"{done_chunks:,} of {chunks:,} | {mb(done_bytes)} | {mb(step.rx)} | {step.seconds:.0f} s | "
                    f"{pace / 60:.1f} min | {ideal} | {by_chunks / 3600:.1f} h / {by_bytes / 3600:.1f} h | "
                    f"{step.code} |")
    return "\n".join(rows)


def latency_bench(store: Path, image: str, version: str, work: Path,
                  subnet: ipaddress.IPv4Network, rev: str, old_seconds: float,
                  prefix: str = "wan") -> int:
    wb.PREFIX, wb.DSI_NS = prefix, f"{prefix}-dsi"  # School's names read the module's PREFIX
    schools = [School("a", "adsl", 0), School("s", "satellite", 1)]
    taken = wb.existing_names(schools)
    if taken or work.exists():
        print(f"images_wan_bench: already exist: {', '.join(taken + [str(work)] * work.exists())}; "
              "remove them (a previous run?) first", file=sys.stderr)
        return 2
    rates = wb.role_rates()
    defaults = wb.REPO / "roles" / "image_cache" / "defaults" / "main.yml"
    parallel = yaml.safe_load(defaults.read_text(encoding="utf-8"))["image_cache__parallel_by_link"]
    results: list[tuple[Step, int, int]] = []
    procs: list[subprocess.Popen] = []
    try:
        dsi = work / "dsi"
        dsi.mkdir(parents=True)
        subprocess.run(["cp", "-al", str(store / wb.st.CHUNKS), str(dsi / wb.st.CHUNKS)], check=True)
        shutil.copytree(store / image, dsi / image)
        wb.upgrade_manifests(dsi / image)
        wb.set_latest(dsi, image, version)
        old = _old_fetcher(work, rev)
        wb.set_up(subnet, schools)
        procs.append(subprocess.Popen(  # noqa: S603 - our own command lines
            ["ip", "netns", "exec", wb.DSI_NS, sys.executable, "-m", "http.server", str(wb.PORT),
             "--bind", "127.0.0.1", "--protocol", "HTTP/1.1", "--directory", str(dsi)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        listens = [f"{addresses(subnet, s)[0]}:{wb.PORT}:{RTT_MS[s.link]}" for s in schools]
        procs.append(subprocess.Popen(  # noqa: S603
            ["ip", "netns", "exec", wb.DSI_NS, sys.executable,
             str(Path(__file__).with_name("latency_relay.py")),
             "--upstream", f"127.0.0.1:{wb.PORT}", *listens]))
        time.sleep(1.5)
        full = wb.version_bytes(dsi, image, [], version)
        chunks = len({c.id for c in wb.st.read_index(dsi / image / version / wb.st.INDEX)})
        print(f"{image} {version}: {mb(full)}, {chunks} chunks; role rates {rates}", flush=True)
        threads = [threading.Thread(target=_runs, args=(
            s, f"http://{addresses(subnet, s)[0]}:{wb.PORT}", work, image, rates[s.link],
            parallel[s.link], old,
            old_seconds, full, results), daemon=True) for s in schools]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results.sort(key=lambda r: r[0].label)
        print()
        print(table(results, full, chunks))
    finally:
        for proc in procs:
            proc.kill()  # the processes we started, by their ids
            proc.wait()
        wb.tear_down(schools)
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(s.code == 0 for s, _, _ in results if "before" not in s.label) else 1
