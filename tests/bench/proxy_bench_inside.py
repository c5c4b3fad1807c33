#!/usr/bin/python3
"""The proxy benchmark's driver, run INSIDE its container by tests/bench/proxy_bench.py.

Python 3.11 of Debian 12, stdlib only; the repository is mounted read-only at /src. Everything
listens on 127.0.0.1 (the container has no network). Steps: copy the package files the role
ships (cartable/errors.py, cartable/filtering/) to /usr/local/lib/cartable; start dnsmasq
(every name -> 127.0.0.1, resolv.conf -> 127.0.0.1) and nginx (204 for any host); per list set
(the UT1 sample; the sample plus N synthetic names): compile our filter and squidGuard's
databases, write 20,000 host names (10 % listed, checked against the build), then run wrk
against squid in each configuration (squid restarted for each run); finally ten swaps of a new
build under load. Prints one JSON document on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import filter_bench  # noqa: E402  (the synthetic lists, same generator and seed)
import proxy_bench_conf as conf  # noqa: E402

SRC = HERE.parents[1]
WORK = Path("/bench")
LIB = Path("/usr/local/lib/cartable")
HELPER = "/usr/local/bin/cartable-filter-helper"
CARTABLE = "/usr/local/bin/cartable"
LUA = HERE / "proxy_bench.lua"
CANARY = "bench-canary.example"
WARM = "warm"   # configurations measured after a first pass of the same load (caches full)
SERVICES: list[int] = []   # dnsmasq, nginx master (its worker is a child)
CLEAN_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*"
                        r"\.[a-z]{2,}$")
WRAPPER = """#!/usr/bin/python3
import sys
sys.path.insert(0, "/usr/local/lib/cartable")
{body}
"""
HELPER_BODY = "from cartable.filtering.helper import main\nsys.exit(main())"
CLI_BODY = """import argparse
from cartable.errors import InputError
from cartable.filtering import cli
parser = argparse.ArgumentParser(prog="cartable")
cli.add_parser(parser.add_subparsers(dest="area", required=True))
try:
    sys.exit(cli.run(parser.parse_args()))
except InputError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)"""


def log(message: str) -> None:
    print(f"[proxy-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def install_cartable() -> None:
    """The files the school proxy role copies to the server, and the two commands."""
    dest = LIB / "cartable"
    shutil.rmtree(LIB, ignore_errors=True)
    (dest / "filtering").mkdir(parents=True)
    for name in ("__init__.py", "errors.py"):
        shutil.copy(SRC / "cartable" / name, dest / name)
    for path in (SRC / "cartable" / "filtering").glob("*.py"):
        shutil.copy(path, dest / "filtering" / path.name)
    for path, body in ((HELPER, HELPER_BODY), (CARTABLE, CLI_BODY)):
        Path(path).write_text(WRAPPER.format(body=body))
        os.chmod(path, 0o755)
    sys.path.insert(0, str(LIB))


def start_services() -> list[subprocess.Popen]:
    """dnsmasq (every name -> 127.0.0.1 at once) and the nginx origin."""
    WORK.mkdir(parents=True, exist_ok=True)
    Path("/etc/resolv.conf").write_text("nameserver 127.0.0.1\n")
    (WORK / "dnsmasq.conf").write_text(conf.DNSMASQ_CONF)
    (WORK / "nginx.conf").write_text(conf.nginx_conf())
    procs = [subprocess.Popen(["dnsmasq", "-k", "--user=nobody",
                               f"--conf-file={WORK}/dnsmasq.conf"]),
             subprocess.Popen(["nginx", "-c", str(WORK / "nginx.conf")])]
    SERVICES.extend(proc.pid for proc in procs)
    deadline = time.monotonic() + 20
    while True:
        try:
            resolved = socket.gethostbyname("www.any-name.unlisted-bench.example")
            with socket.create_connection(("127.0.0.1", conf.ORIGIN_PORT), 1):
                pass
            if resolved == "127.0.0.1":
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("dnsmasq or nginx did not start")
        time.sleep(0.2)
    return procs


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of a command (run under a fresh Python for the peak)."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "print(time.perf_counter() - t, "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[0]), int(out[1]) // 1024


def black_categories(lists: Path) -> list[str]:
    """The categories of a UT1 folder whose usage says black (real folders, not aliases)."""
    found = []
    for folder in sorted(p for p in lists.iterdir() if p.is_dir() and not p.is_symlink()):
        usage = (folder / "usage").read_text().split() if (folder / "usage").exists() else []
        if "black" in usage and (folder / "domains").exists():
            found.append(folder.name)
    return found


def compile_ours(lists: Path, out: Path) -> dict:
    out.parent.mkdir(parents=True, exist_ok=True)
    seconds, peak = timed([CARTABLE, "filter", "compile", "--lists", str(lists), "--out",
                           str(out)])
    return {"seconds": seconds, "peak_mib": peak, "bytes": out.stat().st_size}


def compile_squidguard(lists: Path, categories: list[str], root: Path) -> tuple[Path, dict]:
    """squidGuard's db (domain lists of `categories`, built with -C all as proxy)."""
    db, logs = root / "db", root / "log"
    shutil.rmtree(root, ignore_errors=True)
    logs.mkdir(parents=True)
    for category in categories:
        (db / category).mkdir(parents=True)
        shutil.copy(lists / category / "domains", db / category / "domains")
    sg_conf = root / "squidGuard.conf"
    sg_conf.write_text(conf.squidguard_conf(str(db), str(logs), categories))
    subprocess.run(["chown", "-R", "proxy:proxy", str(root)], check=True)
    seconds, peak = timed(["runuser", "-u", "proxy", "--", "squidGuard", "-c", str(sg_conf),
                           "-C", "all"])
    size = sum(p.stat().st_size for p in db.rglob("*.db"))
    if not size:
        raise SystemExit(f"squidGuard built no database in {db} (see {logs})")
    return sg_conf, {"seconds": seconds, "peak_mib": peak, "bytes": size}


def host_names(build_file: Path, pool: list[str], count: int, seed: int = 8) -> list[str]:
    """`count` names, every 10th listed (from `pool`), the others unlisted; checked on the
    build: listed ones are in a black category, unlisted ones in none."""
    from cartable.filtering.compiled import open_build
    build = open_build(build_file)
    rng = random.Random(seed)
    listed = rng.sample(sorted(set(n for n in pool if CLEAN_NAME.match(n))), count // 10)
    names = []
    for i in range(count):
        if i % 10 == 0:
            names.append(listed[i // 10])
        else:
            names.append(f"www{i}.site{rng.randrange(10**6)}.unlisted-bench.example")
    for name in names:
        found = build.lookup(name)
        if ("unlisted-bench" in name) == bool(found) or (
                found and not any("black" in build.usage[c] for _, c in found)):
            raise SystemExit(f"host list: {name} is not what it should be ({found})")
    return names


def listed_pool(lists: Path, categories: list[str], limit: int = 20000) -> list[str]:
    pool: list[str] = []
    for category in categories:
        lines = (lists / category / "domains").read_text(errors="replace").split()
        pool += lines[:limit]
    return pool


def probe(host: str, timeout: float = 10) -> int:
    """The status squid answers for `GET http://host/` (HTTP/1.0, one connection)."""
    with socket.create_connection(("127.0.0.1", conf.PROXY_PORT), timeout) as sock:
        sock.sendall(f"GET http://{host}/ HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while len(data) < 16:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (those gone count 0)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(stat[11]) + int(stat[12])
    return total / os.sysconf("SC_CLK_TCK")


def services_cpu() -> float:
    return cpu_seconds(SERVICES + [c for pid in SERVICES for c in children(pid)])


def memory(pid: int) -> dict:
    """RSS, PSS (and their anonymous/file parts) in KiB, CPU seconds of a process."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Anonymous"):
            out[key.lower()] = int(value.split()[0])
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    out["cpu_s"] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return out


class Squid:
    """One squid (-N, foreground) with a generated configuration."""

    def __init__(self, name: str, access_lines: str) -> None:
        self.name = name
        self.dir = WORK / "squid" / slugify(name)
        errors = self.dir / "errors"
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.copytree("/usr/share/squid/errors/templates", errors)
        (errors / "ERR_CARTABLE_BLOCKED").write_text(conf.BLOCK_PAGE)
        self.conf = self.dir / "squid.conf"
        self.conf.write_text(conf.squid_conf(access_lines, str(self.dir), str(errors)))
        subprocess.run(["chown", "-R", "proxy:proxy", str(self.dir)], check=True)
        self.proc: subprocess.Popen | None = None

    def start(self, unlisted: str, listed: str | None) -> None:
        subprocess.run(["squid", "-k", "parse", "-f", str(self.conf)], check=True,
                       capture_output=True)
        out = open(self.dir / "squid.out", "ab")
        self.proc = subprocess.Popen(["squid", "-N", "-f", str(self.conf)], stdout=out,
                                     stderr=out)
        deadline = time.monotonic() + 120
        while True:
            try:
                if probe(unlisted) // 100 == 2:
                    break
            except (OSError, ValueError, IndexError):
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"squid {self.name} did not serve (see {self.dir})")
            time.sleep(0.2)
        if listed is not None and probe(listed) // 100 == 2:
            raise SystemExit(f"squid {self.name}: the listed {listed} is allowed")

    def memory(self) -> dict:
        assert self.proc
        helpers = [memory(pid) for pid in children(self.proc.pid)]
        total = {k: sum(h[k] for h in helpers) for k in ("rss", "pss", "pss_anon", "pss_file",
                                                         "cpu_s")} if helpers else {}
        return {"squid": memory(self.proc.pid), "helpers": total, "helper_count": len(helpers),
                "one_helper": helpers[0] if helpers else {}}

    def stop(self) -> None:
        if not self.proc:
            return
        kids = children(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in kids:
            for _ in range(100):
                try:
                    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                except OSError:
                    break
                if state == "Z":
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
        self.proc = None


def wrk_command(hosts: Path, duration: int, connections: int) -> list[str]:
    return ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", str(LUA),
            f"http://127.0.0.1:{conf.PROXY_PORT}/", "--", str(hosts)]


def wrk_result(stdout: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            result = json.loads(line.split(" ", 1)[1])
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            return result
    raise SystemExit(f"wrk printed no result:\n{stdout}")


def measure_one(squid: Squid, names: list[str], hosts: Path, filtered: bool, warmup: int,
                args: argparse.Namespace) -> dict:
    """One wrk run against a freshly started squid (after `warmup` seconds of the same load,
    not measured, when given), with the CPU time each part used."""
    squid.start(names[1], names[0] if filtered else None)
    assert squid.proc
    if warmup:
        subprocess.run(wrk_command(hosts, warmup, args.connections), check=True,
                       stdout=subprocess.DEVNULL)
    before = {"squid": cpu_seconds([squid.proc.pid]),
              "filter": cpu_seconds(children(squid.proc.pid)), "services": services_cpu()}
    load = subprocess.Popen(wrk_command(hosts, args.duration, args.connections),
                            stdout=subprocess.PIPE, text=True)
    out = load.stdout.read() if load.stdout else ""
    _, status, usage = os.wait4(load.pid, 0)
    load.returncode = os.waitstatus_to_exitcode(status)
    if load.returncode:
        raise SystemExit(f"wrk failed ({load.returncode}):\n{out}")
    result = wrk_result(out)
    cpu = {"squid": cpu_seconds([squid.proc.pid]) - before["squid"],
           "filter": cpu_seconds(children(squid.proc.pid)) - before["filter"],
           "services": services_cpu() - before["services"],
           "wrk": usage.ru_utime + usage.ru_stime}
    result["cpu_us"] = {k: v / result["requests"] * 1e6 for k, v in cpu.items()}
    result.update(squid.memory())
    result["loadavg"] = float(Path("/proc/loadavg").read_text().split()[0])
    squid.stop()
    log(f"{squid.name}: {result['rps']:,.0f} req/s, listed allowed {result['ok_listed']}, "
        f"unlisted refused {result['bad_unlisted']}, 5xx {result['bad_5xx']}, CPU us/req "
        f"{ {k: round(v) for k, v in result['cpu_us'].items()} }, load {result['loadavg']}")
    return result


def measure(configs: list[tuple[str, str]], slug: str, hosts: Path, names: list[str],
            args: argparse.Namespace) -> dict[str, list[dict]]:
    """Runs of every configuration, interleaved (run 1 of each, then run 2...) so that a
    machine shared with others spreads its noise over all of them."""
    squids = {name: Squid(f"{slug} {name}", lines) for name, lines in configs}
    rows: dict[str, list[dict]] = {name: [] for name, _ in configs}
    for _ in range(args.runs):
        for name, _lines in configs:
            warmup = args.warmup if WARM in name else 0
            rows[name].append(measure_one(squids[name], names, hosts, "alone" not in name,
                                          warmup, args))
    return rows


def swap_test(lists: Path, categories: list[str], hosts: Path, names: list[str],
              args: argparse.Namespace) -> dict:
    """Ten swaps of `current` under load: time until fresh requests are judged by the new
    build, and what the load saw meanwhile."""
    root = WORK / "swap"
    shutil.rmtree(root, ignore_errors=True)
    variants = {}
    for tag in ("a", "b"):
        folder = root / "lists" / tag
        folder.parent.mkdir(parents=True, exist_ok=True)
        if subprocess.run(["cp", "-al", str(lists), str(folder)],
                          stderr=subprocess.DEVNULL).returncode:
            shutil.rmtree(folder, ignore_errors=True)
            subprocess.run(["cp", "-a", str(lists), str(folder)], check=True)
        (folder / "bench_canary").mkdir()
        (folder / "bench_canary" / "usage").write_text("black\n")
        (folder / "bench_canary" / "domains").write_text(f"swap-{tag}.{CANARY}\n")
        variants[tag] = root / f"{tag}.cfl"
        compile_ours(folder, variants[tag])
    builds = root / "filter" / "builds"
    (builds / "s0").mkdir(parents=True)
    shutil.copyfile(variants["a"], builds / "s0" / "lists.cfl")
    (root / "filter" / "current").symlink_to("builds/s0")
    policy = root / "policy.json"
    policy.write_text(json.dumps({"name": "bench-swap", "block": categories + ["bench_canary"]}))
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
    squid = Squid("swap", conf.filter_lines(HELPER, str(policy), str(root / "filter/current")))
    squid.start(names[1], names[0])
    load = subprocess.Popen(wrk_command(hosts, 8 + 4 * args.swaps, args.connections),
                            stdout=subprocess.PIPE, text=True)
    time.sleep(3)
    times = []
    probes = 0
    for k in range(1, args.swaps + 1):
        tag = "b" if k % 2 else "a"
        (builds / f"s{k}").mkdir()
        shutil.copyfile(variants[tag], builds / f"s{k}" / "lists.cfl")
        os.chmod(builds / f"s{k}" / "lists.cfl", 0o644)
        link = root / "filter" / ".current.new"
        link.symlink_to(f"builds/s{k}")
        started = time.monotonic()
        os.replace(link, root / "filter" / "current")
        if args.hup:  # as cartable-filter-update.service does after its swap
            subprocess.run(["pkill", "-HUP", "-f", HELPER], check=False)
        refused_since = None
        streak = 0
        while time.monotonic() - started < 10 and streak < 20:
            probes += 1
            status = probe(f"p{probes}.swap-{tag}.{CANARY}")
            if status == 403:
                refused_since = refused_since or time.monotonic() - started
                streak += 1
            else:
                refused_since, streak = None, 0
            time.sleep(0.01)
        times.append(refused_since if streak >= 20 else None)
        log(f"swap {k}: judged by the new build after {times[-1]} s")
        if k >= 3:
            shutil.rmtree(builds / f"s{k - 3}")  # keep the last 3 builds, as schools do
        time.sleep(max(0.0, 3.5 - (time.monotonic() - started)))
    out, _ = load.communicate()
    result = wrk_result(out)
    result.update(squid.memory())
    squid.stop()
    return {"times": times, "load": result, "build_bytes": variants["a"].stat().st_size,
            "hup": args.hup, "loadavg": os.getloadavg()[0]}


def list_set(label: str, lists: Path, pool: list[str], args: argparse.Namespace) -> dict:
    """Compile, write the host names, run every configuration on one list set."""
    categories = black_categories(lists)
    slug = slugify(label)
    root = WORK / "filter" / slug
    shutil.rmtree(root, ignore_errors=True)
    build = root / "builds" / "b0" / "lists.cfl"
    log(f"{label}: compiling our filter ({len(categories)} black categories)")
    ours = compile_ours(lists, build)
    (root / "current").symlink_to("builds/b0")
    policy = root / "policy.json"
    policy.write_text(json.dumps({"name": "bench", "block": categories}))
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
    log(f"{label}: compiling squidGuard's databases")
    sg_conf, squidguard = compile_squidguard(lists, categories, WORK / "sg" / slug)
    names = host_names(build, pool, args.hosts)
    hosts = WORK / f"hosts-{slug}.txt"
    hosts.write_text("\n".join(names) + "\n")
    filter_lines = conf.filter_lines(HELPER, str(policy), str(root / "current"))
    nocache = dict(conf.FILTER_OPTIONS, ttl="0", negative_ttl="0", cache="0")
    configs = [
        ("squid alone", conf.UNFILTERED_LINES),
        ("squid + cartable filter", filter_lines),
        ("squid + cartable filter, squid's ACL cache off (cache=0)",
         conf.filter_lines(HELPER, str(policy), str(root / "current"), nocache)),
        ("squid + squidGuard (4 helpers)", conf.SQUIDGUARD_LINES.format(conf=sg_conf)),
    ]
    if args.warmup:
        configs += [(f"squid alone, {WARM}", conf.UNFILTERED_LINES),
                    (f"squid + cartable filter, {WARM}", filter_lines)]
    rows = measure([] if args.swaps_only else configs, slug, hosts, names, args)
    entries = sum(len((lists / c / "domains").read_text(errors="replace").split())
                  for c in categories)
    return {"label": label, "categories": categories, "listed_names": entries,
            "compile": ours, "squidguard_compile": squidguard, "rows": rows, "lists": str(lists),
            "hosts": str(hosts), "names": names[:2]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthetic", type=int, default=5_000_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--hosts", type=int, default=20000)
    parser.add_argument("--swaps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--hup", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--swaps-only", action="store_true")
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    install_cartable()
    services = start_services()
    sample = SRC / "data" / "ut1-blacklists"
    results = {"sets": [], "resolver": "dnsmasq on 127.0.0.1, address=/#/127.0.0.1, "
               "resolv.conf and squid's dns_nameservers -> 127.0.0.1, ipcache_size 65536",
               "filter_options": conf.FILTER_OPTIONS, "helper_args": conf.HELPER_ARGS,
               "python": sys.version.split()[0],
               "squid": subprocess.run(["squid", "-v"], capture_output=True,
                                       text=True).stdout.splitlines()[0],
               "cpus": os.cpu_count()}
    try:
        sample_cats = black_categories(sample)
        pool = listed_pool(sample, sample_cats)
        results["sets"].append(list_set("UT1 sample", sample, pool, args))
        last = (sample, pool)
        if not args.quick and args.synthetic:
            started = time.perf_counter()
            synthetic = WORK / "lists" / "synthetic"
            shutil.rmtree(synthetic, ignore_errors=True)
            synthetic.parent.mkdir(parents=True, exist_ok=True)
            picked = filter_bench._synthetic(synthetic, args.synthetic)
            log(f"generated {args.synthetic:,} synthetic names in "
                f"{time.perf_counter() - started:.0f} s")
            pool = picked[:len(pool)] + pool
            results["sets"].append(list_set(f"sample + {args.synthetic / 1e6:g} M synthetic",
                                            synthetic, pool, args))
            last = (synthetic, pool)
        if args.swaps:
            lists = last[0]
            log(f"swap test on {lists}")
            chosen = results["sets"][-1]
            results["swap"] = swap_test(lists, chosen["categories"], Path(chosen["hosts"]),
                                        chosen["names"], args)
    finally:
        for proc in services:
            proc.terminate()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
