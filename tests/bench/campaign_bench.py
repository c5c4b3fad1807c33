#!/usr/bin/env python3
"""Benchmark: a no-op converge of a simulated city, stock push from the controller against
school servers as relays (docs/campaigns.md), printed as a table.

    .venv/bin/python tests/bench/campaign_bench.py [--schools 3] [--workstations 4]
        [--rate 8mbit] [--delay 20ms] [--mitogen DIR] [--relay-stack] [--runs 'A;B']
        [--rounds N] [--lock FILE] [--subnet 10.250.32.0/24] [--prefix campaign] [--keep]

The city: S school servers and S x W workstations, containers of the lab's base image
(systemd, sshd), labelled org.cartable.lab=PREFIX and named PREFIX-*; in SUBNET (a /24), a
WAN network .0/26 (the controller is .62) and one LAN per school (.64/28, .80/28, ...:
internal, the controller has no address and no route there). Each server's WAN
link is shaped with tc, both ways: tbf at RATE, or netem (DELAY and RATE) with --delay. Runs, on the same warm hosts:
  push, stock:    ansible-playbook over every workstation, Ansible's defaults (empty config),
                  each workstation reached through its server (ProxyCommand, as the inventory's
                  management path);
  push, project:  the same with the project's ansible.cfg (forks 20, pipelining, fact cache);
  push, mitogen:  the project's settings with Mitogen's strategy (only with --mitogen DIR,
                  a folder where `pip install --target DIR mitogen` put it);
  relay:          per school, at once: `ansible-runner transmit` (the project bundle + the
                  school's inventory) | ssh server `ansible-runner worker` (the server
                  converges its LAN) | `ansible-runner process` (the events back);
  relay 2.19:     the same on the relay role's own stack (--relay-stack): a venv of the
                  servers' Python 3.11 with the role's pins (ansible-core 2.19.14,
                  ansible-runner, Mitogen), made once from wheels and mounted at the role's
                  path, /opt/cartable/relay/venv; Ansible's linear strategy;
  relay 2.19, mitogen: the same with Mitogen's strategy (the job's ANSIBLE_STRATEGY, as
                  `cartable campaign run --relay` sets it for cartable_relay_strategy).
--runs picks and orders runs; --rounds repeats that sequence (interleaved: the machine's load
drifts); --lock FILE is flock-ed during each round. Each run records the 1-minute load average
at its start and the total CPU-seconds (controller + servers + workstations), which does not
depend on the load.
For each: wall-clock, the controller's CPU-seconds (user+sys of the run's processes: the
relays' work runs in the containers, not here), the servers' and workstations' CPU-seconds
(their containers' cgroups), the bytes through the servers' WAN
interfaces (and packets: the round trips, as no delay can be added here), and changed=0 checked from the recap or the events. The relays run the
controller's venv, mounted read-only into the servers (same Debian, same paths), except the
"relay 2.19" runs. Results: .cache/campaign-bench/results.json.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import resource
import signal
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cartable_lab import common, connection, containers, engine  # noqa: E402  (after sys.path)
from cartable_lab import images as lab_images  # noqa: E402

KIND = "campaign"  # the containers' label, their names' and networks' prefix (--prefix)
STATE = ROOT / ".cache" / "campaign-bench"
SUBNET = ipaddress.ip_network("10.250.32.0/24")  # the city's addresses (--subnet)
WAN = ipaddress.ip_network("10.250.32.0/26")
CONTROLLER = "10.250.32.62"
PLAYBOOK = HERE / "lab_bench.yml"
BUNDLE = ("roles", "playbooks", "filter_plugins", "library", "inventory_plugins", "ansible.cfg")
VENV = Path(os.path.realpath(ROOT / ".venv"))
PYTHON_HOME = Path(os.path.realpath(VENV / "bin" / "python3")).parents[1]


# The relay's own stack (roles/relay: Debian 12's Python 3.11, the role's pins, Mitogen), built
# once from wheels into a folder mounted on every server at the role's path (--relay-mitogen).
RELAY_VENV = "/opt/cartable/relay/venv"
RELAY_WHEELS = "/opt/cartable/relay/wheels"
RELAY_STRATEGY = f"{RELAY_VENV}/lib/python3.11/site-packages/ansible_mitogen/plugins/strategy"
RELAY_DEFAULTS = ROOT / "roles" / "relay" / "defaults" / "main.yml"


def configure(subnet: str, prefix: str) -> None:
    """The city's addresses and names: a /24 (WAN its first /26, controller .62, a /28 per
    school from .64) and a prefix for containers, networks, bridges and the label."""
    global KIND, SUBNET, WAN, CONTROLLER
    net = ipaddress.ip_network(subnet)
    if net.prefixlen != 24 or net.version != 4:
        raise common.LabError(f"--subnet {subnet}: an IPv4 /24 is needed (e.g. 10.250.46.0/24)")
    if not prefix.isalnum() or not prefix.islower() or len(prefix) > 8:
        raise common.LabError(f"--prefix {prefix}: 1 to 8 lowercase letters or digits")
    KIND, SUBNET = prefix, net
    WAN = ipaddress.ip_network(f"{net.network_address}/26")
    CONTROLLER = str(WAN[62])


def bridge(name: str) -> str:
    """Bridge names: at most 15 characters (campaign -> camp, as before)."""
    return f"{KIND[:4] if KIND == 'campaign' else KIND}-{name}"


def lan(i: int) -> ipaddress.IPv4Network:
    return ipaddress.ip_network(f"{SUBNET[64 + 16 * (i - 1)]}/28")


def city_model(schools: int, workstations: int,
               relay: tuple[Path, Path] | None = None) -> dict:
    """The city; `relay`: (venv, wheels) folders mounted on the servers at the role's paths."""
    nets = {"wan": {"name": f"{KIND}-wan", "bridge": bridge("wan"), "subnet": str(WAN),
                    "gateway": CONTROLLER, "internal": True, "host_address": True,
                    "school_network": None}}
    hosts = []
    for i in range(1, schools + 1):
        net = lan(i)
        nets[f"s{i}"] = {"name": f"{KIND}-s{i}", "bridge": bridge(f"s{i}"), "subnet": str(net),
                         "gateway": str(net[14]), "internal": True, "host_address": False,
                         "school_network": None}
        mounts = [[str(VENV), str(VENV)], [str(PYTHON_HOME), str(PYTHON_HOME)]]
        if relay:
            mounts += [[str(relay[0]), RELAY_VENV], [str(relay[1]), RELAY_WHEELS]]
        hosts.append({"name": f"{KIND}-s{i}-srv", "host": f"s{i}-srv", "hostname": f"s{i}-srv",
                      "role": "host", "image": "base", "mac": None, "etc_hosts": {},
                      "networks": [["wan", str(WAN[10 + i])], [f"s{i}", str(net[1])]],
                      "ansible_host": str(WAN[10 + i]), "school": i, "lan": str(net[1]),
                      "mounts": mounts})
        for j in range(1, workstations + 1):
            hosts.append({"name": f"{KIND}-s{i}-ws{j:02d}", "host": f"s{i}-ws{j:02d}",
                          "hostname": f"s{i}-ws{j:02d}", "role": "host", "image": "base",
                          "mac": None, "etc_hosts": {}, "networks": [[f"s{i}", str(net[1 + j])]],
                          "ansible_host": str(net[1 + j]), "school": i})
    return {"networks": nets, "containers": hosts}


def start_city(model: dict, images: dict, pubkey: str) -> dict[str, list[str]]:
    """Every container up and answering; their host keys by name."""
    containers.remove_all(KIND)
    containers.ensure_networks(model, kind=KIND)
    hashes = {c["name"]: common.sha(json.dumps(c, sort_keys=True)) for c in model["containers"]}
    common.parallel(lambda c: containers.create_container(model, c, images, hashes[c["name"]],
                                                          kind=KIND), model["containers"], workers=4)
    results = common.parallel(lambda c: containers.prepare_container(model, c, hashes[c["name"]],
                                                                     pubkey),
                              model["containers"], workers=6)
    return {r["name"]: r["host_keys"] for r in results}


def wan_interface(server: str, address: str) -> str:
    """The server's interface holding its WAN address (docker names them in its own order)."""
    for line in common.docker("exec", server, "ip", "-o", "-4", "addr", "show").splitlines():
        if f" {address}/" in line:
            return line.split()[1]
    raise common.LabError(f"{server}: no interface holds {address}")


def shape(server: str, iface: str, delay: str | None, rate: str) -> None:
    """The server's WAN link, both ways: on its WAN interface and on the host side (the
    veth). tbf (rate only) by default; netem (delay and rate) with --delay, where the kernel has
    sch_netem (this machine's has not)."""
    netem = (["netem", "delay", delay, "rate", rate] if delay
             else ["tbf", "rate", rate, "burst", "32kbit", "latency", "400ms"])
    common.docker("exec", server, "tc", "qdisc", "replace", "dev", iface, "root", *netem)
    peer = common.docker("exec", server, "cat", f"/sys/class/net/{iface}/iflink").strip()
    link = common.run(["ip", "-o", "link"]).stdout
    veth = next(line.split(": ")[1].split("@")[0] for line in link.splitlines()
                if line.startswith(f"{peer}: "))
    common.run(["tc", "qdisc", "replace", "dev", veth, "root", *netem])


def wan_counters(servers: dict[str, str]) -> tuple[int, int]:
    """(bytes, packets) through the servers' WAN interfaces so far, both ways."""
    nbytes = packets = 0
    for server, iface in servers.items():
        out = common.docker("exec", server, "cat", *(f"/sys/class/net/{iface}/statistics/{c}"
                                                     for c in ("rx_bytes", "tx_bytes",
                                                               "rx_packets", "tx_packets")))
        values = [int(x) for x in out.split()]
        nbytes += values[0] + values[1]
        packets += values[2] + values[3]
    return nbytes, packets


def write_inventories(model: dict, keys: dict[str, list[str]], work: Path) -> dict:
    """The push inventory (through the servers), and per school the relay's (its LAN)."""
    key = common.STATE / "ssh" / "id_ed25519"
    known = work / "known_hosts"
    lines, lan_known = [], {}
    for c in model["containers"]:
        for entry in keys[c["name"]]:
            parts = entry.split()
            if len(parts) >= 2:
                lines.append(f"{c['ansible_host']} {parts[0]} {parts[1]}")
                if "lan" not in c:
                    lan_known.setdefault(c["school"], []).append(
                        f"{c['ansible_host']} {parts[0]} {parts[1]}")
    known.write_text("\n".join(lines) + "\n")
    options = f"-o UserKnownHostsFile={known} -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes"
    servers = {c["school"]: c for c in model["containers"] if "lan" in c}
    push: dict = {"all": {"children": {"workstations": {"hosts": {}}}, "vars": {
        "ansible_user": common.LAB_USER, "ansible_ssh_private_key_file": str(key),
        "ansible_python_interpreter": "/usr/bin/python3"}}}
    relays = {}
    for c in model["containers"]:
        if "lan" in c:
            continue
        srv = servers[c["school"]]
        jump = (f"ssh {options} -o ControlMaster=no -o BatchMode=yes -i {key} -W %h:%p "
                f"{common.LAB_USER}@{srv['ansible_host']}")
        push["all"]["children"]["workstations"]["hosts"][c["host"]] = {
            "ansible_host": c["ansible_host"],
            "ansible_ssh_common_args": f"{options} -o 'ProxyCommand={jump}'"}
        relay = relays.setdefault(c["school"], {"all": {"children": {"workstations": {
            "hosts": {}}}, "vars": {
                "ansible_user": common.LAB_USER,
                "ansible_ssh_private_key_file": "/home/cartable/.ssh/relay_key",
                "ansible_ssh_common_args": "-o UserKnownHostsFile=/home/cartable/.ssh/lan_known_hosts "
                                           "-o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes",
                "ansible_python_interpreter": "/usr/bin/python3"}}})
        relay["all"]["children"]["workstations"]["hosts"][c["host"]] = {
            "ansible_host": c["ansible_host"]}
    (work / "push.yml").write_text(json.dumps(push, indent=1))
    for i, srv in servers.items():  # the relay's key and known_hosts for its LAN (bench only)
        common.run(["docker", "exec", "-i", srv["name"], "sh", "-c",
                    "umask 077; cat > /home/cartable/.ssh/relay_key; "
                    "chown cartable: /home/cartable/.ssh/relay_key"], input=key.read_text())
        common.run(["docker", "exec", "-i", srv["name"], "sh", "-c",
                    "cat > /home/cartable/.ssh/lan_known_hosts"],
                   input="\n".join(lan_known.get(i, [])) + "\n")
    return {"push": work / "push.yml", "relays": relays, "options": options, "servers": servers}


def _env(config: Path, work: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_CONFIG": str(config), "PATH": f"{common.VENV_BIN}:{env.get('PATH', '')}",
                "ANSIBLE_SSH_CONTROL_PATH_DIR": tempfile.mkdtemp(prefix="cp-", dir="/tmp"),
                "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(work / "facts")})
    env.update(extra or {})
    return env


def container_cpu(names: list[str]) -> float:
    """CPU-seconds used so far by these containers (cgroup v1 cpuacct, else v2 cpu.stat)."""
    ids = common.docker("inspect", "-f", "{{.Id}}", *names).split()
    total = 0.0
    for cid in ids:
        v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
        if v1.exists():
            total += int(v1.read_text()) / 1e9
            continue
        for v2 in (Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat"),
                   Path(f"/sys/fs/cgroup/docker/{cid}/cpu.stat")):
            if v2.exists():
                usage = dict(line.split() for line in v2.read_text().splitlines())
                total += int(usage["usage_usec"]) / 1e6
                break
    return total


def measured(fn, servers: dict[str, str], workstations: list[str]) -> dict:
    """Wall-clock, controller CPU (children's rusage), the servers' and workstations' CPU
    (their cgroups) and the WAN bytes and packets of fn()."""
    load = os.getloadavg()[0]
    cpu_srv, cpu_ws = container_cpu(list(servers)), container_cpu(workstations)
    before_bytes, before_packets = wan_counters(servers)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    extra = fn()
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    after_bytes, after_packets = wan_counters(servers)
    servers_cpu = container_cpu(list(servers)) - cpu_srv
    workstations_cpu = container_cpu(workstations) - cpu_ws
    return {"wall": round(wall, 2), "load": round(load, 2), "cpu": round(cpu, 2),
            "servers_cpu": round(servers_cpu, 2), "workstations_cpu": round(workstations_cpu, 2),
            "total_cpu": round(cpu + servers_cpu + workstations_cpu, 2),
            "wan_bytes": after_bytes - before_bytes,
            "wan_packets": after_packets - before_packets, **(extra or {})}


def push(config: Path, inventory: Path, work: Path, extra_env: dict[str, str] | None = None,
         args: list[str] | None = None) -> dict:
    env = _env(config, work, extra_env)
    proc = subprocess.run([common.tool("ansible-playbook"), "-i", str(inventory), str(PLAYBOOK),
                           *(args or [])], env=env, cwd=ROOT, text=True, capture_output=True,
                          check=False)
    shutil.rmtree(env["ANSIBLE_SSH_CONTROL_PATH_DIR"], ignore_errors=True)
    recap = [line for line in proc.stdout.splitlines() if " : ok=" in line]
    changed = sum(int(line.split("changed=")[1].split()[0]) for line in recap)
    bad = [line for line in recap if "failed=0" not in line or "unreachable=0" not in line]
    if proc.returncode != 0 or bad:
        raise SystemExit(f"bench: push failed (rc {proc.returncode})\n{proc.stdout[-3000:]}"
                         f"{proc.stderr[-2000:]}")
    return {"hosts": len(recap), "changed": changed}


def bundle(work: Path, relay_inventory: dict, school: int,
           env: dict[str, str] | None = None) -> Path:
    """The private data folder a relay job transmits: project bundle + the school's inventory."""
    pdd = work / f"relay-s{school}"
    if pdd.exists():
        shutil.rmtree(pdd)
    project = pdd / "project"
    project.mkdir(parents=True)
    for name in BUNDLE:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, project / name, ignore=shutil.ignore_patterns("molecule",
                                                                               "__pycache__"))
        else:
            shutil.copy2(src, project / name)
    shutil.copy2(PLAYBOOK, project / PLAYBOOK.name)
    (pdd / "inventory").mkdir()
    (pdd / "inventory" / "hosts.yml").write_text(json.dumps(relay_inventory, indent=1))
    (pdd / "env").mkdir()
    # the fact cache in the worker's own folder (the project's .cache is not shipped)
    (pdd / "env" / "envvars").write_text(json.dumps({
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": "/tmp/relay-facts",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": "/tmp/relay-cp", **(env or {})}))
    return pdd


def relay_one(pdd: Path, server: dict, options: str, out: Path, venv: str = str(VENV)) -> dict:
    runner = common.tool("ansible-runner")
    key = common.STATE / "ssh" / "id_ed25519"
    ssh = (f"ssh {options} -o BatchMode=yes -i {key} {common.LAB_USER}@{server['ansible_host']} "
           f"sudo -n env PATH={venv}/bin:/usr/sbin:/usr/bin:/sbin:/bin {venv}/bin/ansible-runner worker")
    if out.exists():
        shutil.rmtree(out)
    cmd = (f"{runner} transmit {pdd} -p {PLAYBOOK.name} | {ssh} | "
           f"{runner} process {out}")
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], text=True, capture_output=True,
                          check=False, env={**os.environ, "PATH": f"{common.VENV_BIN}:{os.environ['PATH']}"})
    stats = None
    for path in sorted((out / "artifacts").glob("**/job_events/*.json")):
        event = json.loads(path.read_text())
        if event.get("event") == "playbook_on_stats":
            stats = event["event_data"]
    if proc.returncode != 0 or stats is None or stats.get("failures") or stats.get("dark"):
        raise SystemExit(f"bench: relay {server['name']} failed (rc {proc.returncode})\n"
                         f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return {"hosts": len(stats.get("processed") or {}),
            "changed": sum((stats.get("changed") or {}).values())}


def relay(plan: dict, work: Path, forks: int, venv: str = str(VENV),
          env: dict[str, str] | None = None) -> dict:
    """Every school's job at once (forks of them), on the venv `venv` of the servers."""
    pdds = {i: bundle(work, inv, i, env) for i, inv in plan["relays"].items()}

    def one(i: int) -> dict:
        return relay_one(pdds[i], plan["servers"][i], plan["options"], work / f"events-s{i}",
                         venv)

    with ThreadPoolExecutor(max_workers=forks) as pool:
        results = list(pool.map(one, sorted(pdds)))
    return {"hosts": sum(r["hosts"] for r in results),
            "changed": sum(r["changed"] for r in results)}


def relay_pins() -> list[str]:
    """The relay role's pins, Mitogen's included (roles/relay/defaults/main.yml)."""
    import yaml

    defaults = yaml.safe_load(RELAY_DEFAULTS.read_text())
    return [*defaults["relay__pip_packages"], defaults["relay__mitogen_package"]]


def relay_wheels() -> Path:
    """The wheels of the relay's pins for Python 3.11 (pip download, as roles/relay/README.md
    says), cached by their pins."""
    pins = relay_pins()
    folder = STATE / "relay-wheels" / common.sha(" ".join(pins))
    if not (folder / ".done").exists():
        common.run([str(VENV / "bin" / "python"), "-m", "pip", "download", "-q", "--dest",
                    str(folder), "--only-binary=:all:", "--python-version", "3.11",
                    "--implementation", "cp", "--abi", "cp311",
                    "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
                    "--platform", "manylinux_2_17_x86_64", *pins])
        (folder / ".done").touch()
    return folder


def build_relay_venv(image: str, folder: Path, wheels: Path) -> None:
    """The relay role's venv in `folder` (then mounted read-only at RELAY_VENV on every server),
    made in a throw-away container of the lab's image: Debian 12's python3 -m venv, the pins
    installed from the wheels alone by the controller's pip (pip --python)."""
    if (folder / "bin" / "ansible-runner").exists():
        return
    common.docker("run", "--rm", "--label", f"org.cartable.lab={KIND}", "--network", "none",
                  "--entrypoint", "/bin/sh",
                  "-v", f"{folder}:{RELAY_VENV}", "-v", f"{wheels}:{RELAY_WHEELS}:ro",
                  "-v", f"{VENV}:{VENV}:ro", "-v", f"{PYTHON_HOME}:{PYTHON_HOME}:ro", image, "-c",
                  f"/usr/bin/python3 -m venv --without-pip {RELAY_VENV} && "
                  f"{VENV}/bin/python -m pip --python {RELAY_VENV}/bin/python install -q "
                  f"--no-index --find-links {RELAY_WHEELS} " + " ".join(relay_pins()))


RUNS = ("push, stock", "push, project", "push, mitogen", "relay (first: bundle sent)", "relay",
        "relay 2.19", "relay 2.19, mitogen")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", type=int, default=3, help="school servers (1-12, default 3)")
    parser.add_argument("--workstations", type=int, default=4, help="per school (1-12, default 4)")
    parser.add_argument("--delay", help="WAN one-way delay each way (netem; none by default: "
                        "this machine's kernel has no sch_netem)")
    parser.add_argument("--rate", default="8mbit", help="WAN rate each way (default 8mbit)")
    parser.add_argument("--forks", type=int, default=4, help="relays at once (the campaign's)")
    parser.add_argument("--mitogen", type=Path, help="a folder holding ansible_mitogen")
    parser.add_argument("--relay-stack", action="store_true",
                        help="also the relay role's own stack on the servers (Python 3.11, its "
                        "pinned ansible-core 2.19 and Mitogen): runs 'relay 2.19' and "
                        "'relay 2.19, mitogen'")
    parser.add_argument("--runs", help="runs separated by semicolons, in this order, of: "
                        + ", ".join(RUNS) + " (default: all that the options allow)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the sequence this many times, interleaved (default 1)")
    parser.add_argument("--lock", type=Path,
                        help="a file flock-ed during each round (a quiet machine for it)")
    parser.add_argument("--subnet", default="10.250.32.0/24",
                        help="the city's /24 (default 10.250.32.0/24)")
    parser.add_argument("--prefix", default="campaign",
                        help="containers', networks' and bridges' prefix and label "
                        "(default campaign)")
    parser.add_argument("--keep", action="store_true", help="leave the city running")
    args = parser.parse_args()
    if not (1 <= args.schools <= 12 and 1 <= args.workstations <= 12):
        parser.error("--schools and --workstations: 1 to 12")
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds: 1 to 10")
    wanted = [r.strip() for r in args.runs.split(";")] if args.runs else None
    if wanted and (bad := [r for r in wanted if r not in RUNS]):
        parser.error(f"--runs: unknown {', '.join(bad)} (known: {', '.join(RUNS)})")
    if wanted and any("mitogen" in r and "2.19" not in r for r in wanted) and not args.mitogen:
        parser.error("--runs 'push, mitogen' needs --mitogen DIR")
    if wanted and any("2.19" in r for r in wanted) and not args.relay_stack:
        parser.error("--runs 'relay 2.19...' needs --relay-stack")
    # the city removed on a kill too (removed_after's finally; a background job ignores SIGINT)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        configure(args.subnet, args.prefix)
        results = run_all(args, wanted)
    except common.LabError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2 if str(exc).startswith("--") else 1
    report(results)
    (STATE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def run_all(args: argparse.Namespace, wanted: list[str] | None = None) -> dict:
    """Start the city, run every converge on it, remove it (unless --keep); the results."""
    n = args.schools * args.workstations
    results: dict = {"schools": args.schools, "workstations": n, "delay": args.delay,
                     "rate": args.rate, "rounds": args.rounds}
    engine.ensure_engine()
    images = lab_images.build_images()
    common.STATE.mkdir(parents=True, exist_ok=True)
    pubkey = connection.ensure_ssh_key()
    STATE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=STATE))
    relay_dirs = None
    if args.relay_stack:
        relay_dirs = (work / "relay-venv", relay_wheels())
        relay_dirs[0].mkdir()
        build_relay_venv(images["base"], *relay_dirs)
    model = city_model(args.schools, args.workstations, relay_dirs)
    start = time.monotonic()
    with removed_after(args.keep):
        keys = start_city(model, images, pubkey)
        print(f"bench: {len(model['containers'])} containers up in {time.monotonic() - start:.0f} s",
              flush=True)
        servers = {c["name"]: wan_interface(c["name"], c["ansible_host"])
                   for c in model["containers"] if "lan" in c}
        for server, iface in servers.items():
            shape(server, iface, args.delay, args.rate)
        plan = write_inventories(model, keys, work)
        stock_cfg = work / "stock.cfg"
        stock_cfg.write_text("# Ansible's stock settings: empty on purpose.\n")
        project_cfg = ROOT / "ansible.cfg"
        push(stock_cfg, plan["push"], work, args=["--tags", "warmup"])  # warm, untimed
        runs = {
            "push, stock": lambda: push(stock_cfg, plan["push"], work),
            "push, project": lambda: push(project_cfg, plan["push"], work),
        }
        if args.mitogen:
            plugins = args.mitogen / "ansible_mitogen" / "plugins" / "strategy"
            runs["push, mitogen"] = lambda: push(project_cfg, plan["push"], work, {
                "ANSIBLE_STRATEGY_PLUGINS": str(plugins), "ANSIBLE_STRATEGY": "mitogen_linear",
                "PYTHONPATH": str(args.mitogen)})
        runs["relay (first: bundle sent)"] = lambda: relay(plan, work, args.forks)
        runs["relay"] = lambda: relay(plan, work, args.forks)
        if relay_dirs:
            # a connection timeout of 30 s instead of 10 on the relays: the four "servers"
            # opening their 40 connections at once on 2 shared, loaded cores (Mitogen's did
            # time out at 10 s, load 30); a timeout costs nothing when it is not reached
            slow = {"ANSIBLE_TIMEOUT": "30"}
            runs["relay 2.19"] = lambda: relay(plan, work, args.forks, RELAY_VENV, slow)
            runs["relay 2.19, mitogen"] = lambda: relay(plan, work, args.forks, RELAY_VENV, {
                **slow, "ANSIBLE_STRATEGY_PLUGINS": RELAY_STRATEGY,
                "ANSIBLE_STRATEGY": "mitogen_linear"})
        order = wanted or list(runs)
        if relay_dirs:  # the relays' fact caches filled, as the push's warm-up does (untimed;
            # a longer timeout: the first sudo on 40 fresh hosts at once, on a loaded machine)
            relay(plan, work, args.forks, RELAY_VENV, {"ANSIBLE_TIMEOUT": "60"})
        rows: dict = {}
        for round_ in range(1, args.rounds + 1):
            with round_lock(args.lock):
                rows.update(one_round(runs, order, round_, args.rounds, servers, model, n))
        results["runs"] = rows
    return results


@contextmanager
def round_lock(path: Path | None) -> Iterator[None]:
    """flock(path) held for one round (waits for it), or nothing."""
    if path is None:
        yield
        return
    import fcntl

    with path.open("a") as handle:
        waited = time.monotonic()
        fcntl.flock(handle, fcntl.LOCK_EX)
        print(f"bench: {path} taken after {time.monotonic() - waited:.0f} s", flush=True)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def one_round(runs: dict, order: list[str], round_: int, rounds: int, servers: dict[str, str],
              model: dict, n: int) -> dict:
    """One measured run of each label of `order`, in that order."""
    workstations = [c["name"] for c in model["containers"] if "lan" not in c]
    rows: dict = {}
    for label in order:
        key = f"{label} #{round_}" if rounds > 1 else label
        rows[key] = r = measured(runs[label], servers, workstations)
        if r["hosts"] != n or r["changed"] != 0:
            raise SystemExit(f"bench: {key} saw {r['hosts']} hosts, changed={r['changed']}")
        print(f"bench: {key}: {r['wall']:.1f} s (load {r['load']:.2f}), controller CPU "
              f"{r['cpu']:.2f} s, total CPU {r['total_cpu']:.2f} s, "
              f"WAN {r['wan_bytes'] / 1e6:.2f} MB", flush=True)
    return rows


@contextmanager
def removed_after(keep: bool) -> Iterator[None]:
    """The city's containers and networks removed at the end, whatever happens (unless keep)."""
    try:
        yield
    finally:
        if not keep:
            containers.remove_all(KIND)


def report(results: dict) -> None:
    n, s = results["workstations"], results["schools"]
    print(f"\n{s} schools, {n} workstations, WAN {results['rate']} each way"
          f"{', delay ' + results['delay'] if results['delay'] else ''}")
    print(f"{'run':<28} {'load':>5} {'wall s':>7} {'ctl CPU s':>9} {'ctl CPU/ws':>10} "
          f"{'srv CPU s':>9} {'ws CPU s':>8} {'all CPU s':>9} {'WAN MB':>7} {'WAN KB/ws':>9} "
          f"{'WAN pkts':>8}")
    for label, r in results["runs"].items():
        print(f"{label:<28} {r['load']:>5.2f} {r['wall']:>7.1f} {r['cpu']:>9.2f} "
              f"{r['cpu'] / n:>10.3f} {r['servers_cpu']:>9.2f} {r['workstations_cpu']:>8.2f} "
              f"{r['total_cpu']:>9.2f} {r['wan_bytes'] / 1e6:>7.2f} "
              f"{r['wan_bytes'] / 1e3 / n:>9.1f} {r['wan_packets']:>8}")


if __name__ == "__main__":
    sys.exit(main())
