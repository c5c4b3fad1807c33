#!/usr/bin/env python3
"""The Cartable lab: one school of the lab inventory in containers, with its upstream.

    lab.py engine                 install/start what the lab needs (docker.io, debootstrap, sysctls)
    lab.py image [--force]        build the base and infra images (cached by recipe hash)
    lab.py image-name [base|infra] print the image tag for the current recipe (no build)
    lab.py up                     create (or keep) the networks and containers, write the
                                  connection inventory (.cache/lab/connection.yml)
    lab.py converge [ARGS...]     ansible-playbook playbooks/site.yml on the lab
    lab.py verify [ARGS...]       ansible-playbook tests/lab/verify.yml on the lab
    lab.py down                   remove every container and network the lab made (labels)
    lab.py status                 what the lab made, as JSON
    lab.py dhcp-client up|down|request [--network NAME] [--mac MAC] [--name NAME]
                                  a DHCP client plugged into a school LAN without docker's IPAM
    lab.py ssh HOST [CMD...]      ssh to a lab host with the lab's key and known_hosts

The school (networks, hosts, addresses) comes from the generated inventory
(inventories/lab/hosts.yml, read through `ansible-inventory --list`); tests/lab/topology.yml
describes its surroundings. Everything the lab makes carries the docker label
org.cartable.lab=school; its state (SSH key, known_hosts, connection inventory) lives in
.cache/lab/. Run as root (docker, debootstrap and veth plumbing need it).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = ROOT / "tests" / "lab"
IMAGE_DIR = LAB_DIR / "image"
STATE = ROOT / ".cache" / "lab"
DEFAULT_INVENTORY = ROOT / "inventories" / "lab" / "hosts.yml"
VENV_BIN = ROOT / ".venv" / "bin"

LABEL = "org.cartable.lab"
LAB_KIND = "school"  # value of LABEL for the school lab (the benchmark uses "bench")
PREFIX = "cartable-lab"
BASE_REPO = "cartable-lab-base"
INFRA_REPO = "cartable-lab-infra"
LAB_USER = "cartable"
DEBIAN_SUITES = {"bookworm", "trixie", "bullseye", "sid", "stable", "testing", "unstable", "oldstable"}
DOCKERD_LOG = Path("/var/log/cartable-lab-dockerd.log")
SYSCTLS = {"fs.inotify.max_user_instances": 8192, "fs.inotify.max_user_watches": 524288}

# How every systemd container of the lab runs (also written once in .config/molecule/config.yml).
SYSTEMD_RUN_ARGS = [
    "--cgroupns=host",
    "--cap-add", "SYS_ADMIN",
    "--cap-add", "NET_ADMIN",
    "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run",
    "--tmpfs", "/run/lock",
    "--tmpfs", "/tmp",
    "--stop-signal", "SIGRTMIN+3",
]


class LabError(Exception):
    """An error the user can act on (printed without a traceback)."""


# --------------------------------------------------------------------------- output, processes

TIMINGS: list[tuple[str, float]] = []


def log(msg: str) -> None:
    print(f"lab: {msg}", flush=True)


@contextmanager
def stage(name: str):
    start = time.monotonic()
    log(f"── {name} ...")
    try:
        yield
    finally:
        took = time.monotonic() - start
        TIMINGS.append((name, took))
        log(f"── {name}: {took:.1f} s")


def print_timings() -> None:
    if TIMINGS:
        log("stage times: " + ", ".join(f"{n} {t:.1f} s" for n, t in TIMINGS))


def run(cmd: list[str], *, check: bool = True, capture: bool = True, input: str | None = None,
        env: dict | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, check=False, text=True, input=input, env=env, timeout=timeout,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None)
    except FileNotFoundError as exc:
        raise LabError(f"{cmd[0]}: command not found (run `lab.py engine` first)") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout} s: {shlex.join(cmd)}") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip() if capture else ""
        raise LabError(f"command failed ({proc.returncode}): {shlex.join(cmd)}\n{detail}")
    return proc


def docker(*args: str, check: bool = True, input: str | None = None,
           timeout: float | None = None) -> str:
    return run(["docker", *args], check=check, input=input, timeout=timeout).stdout


def parallel(fn, items, workers: int = 6) -> list:
    """Run fn over items in threads; re-raise the first error after all finished."""
    items = list(items)
    if not items:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures = [pool.submit(fn, item) for item in items]
        concurrent.futures.wait(futures)
    errors = [f.exception() for f in futures if f.exception()]
    if errors:
        if len(errors) > 1:
            log(f"{len(errors)} errors; the first one follows")
        raise errors[0]
    return [f.result() for f in futures]


def sha(data: str | bytes, n: int = 12) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()[:n]


def tool(name: str) -> str:
    """A tool of the controller venv, else from PATH."""
    candidate = VENV_BIN / name
    return str(candidate) if candidate.exists() else name


def ansible_env() -> dict:
    env = dict(os.environ)
    env.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    return env


def load_yaml(path: Path):
    import yaml  # the controller venv has PyYAML; only commands that read YAML need it

    with open(path, encoding="utf-8") as stream:
        return yaml.safe_load(stream)


# --------------------------------------------------------------------------- engine

def docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20, check=False).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


def ensure_engine() -> None:
    """docker.io and debootstrap installed, inotify sysctls raised, dockerd answering."""
    needed = []
    for command, package in (("dockerd", "docker.io"), ("debootstrap", "debootstrap"),
                             ("ssh", "openssh-client"), ("ssh-keygen", "openssh-client"),
                             ("nsenter", "util-linux"), ("ip", "iproute2")):
        if not shutil.which(command) and not Path("/usr/sbin", command).exists():
            needed.append(package)
    if not Path("/usr/share/keyrings/debian-archive-keyring.gpg").exists():
        needed.append("debian-archive-keyring")
    if needed:
        if os.geteuid() != 0:
            raise LabError(f"missing packages {sorted(set(needed))}: install them as root")
        log(f"installing {' '.join(sorted(set(needed)))} with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-q"], capture=False, env=env)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *sorted(set(needed))],
            capture=False, env=env)
    for key, want in SYSCTLS.items():
        current = Path("/proc/sys", *key.split(".")).read_text().strip()
        if int(current) < want:
            if os.geteuid() != 0:
                raise LabError(f"sysctl {key}={current} is too low (need {want}); set it as root")
            run(["sysctl", "-q", "-w", f"{key}={want}"])
    if docker_answers():
        return
    if os.geteuid() != 0:
        raise LabError("no Docker engine answers and only root can start one")
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    log(f"starting dockerd in the background (log: {DOCKERD_LOG})")
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(DOCKERD_LOG, "ab") as out:
        subprocess.Popen([dockerd], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if docker_answers():
            return
        time.sleep(1)
    raise LabError(f"dockerd did not answer within 90 s: see {DOCKERD_LOG}")


# --------------------------------------------------------------------------- image

def parse_apt_sources() -> list[tuple[str, list[str]]]:
    """(uri, suites) of every enabled `deb` source of the host, in apt's order."""
    found: list[tuple[str, list[str]]] = []
    one_line = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(line) >= 3 and line[0] == "deb":
                found.append((line[1], [line[2]]))
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if "deb" not in fields.get("types", "").split():
                continue
            for uri in fields.get("uris", "").split():
                found.append((uri, fields.get("suites", "").split()))
    return found


def host_mirrors() -> tuple[str, str]:
    """The host's Debian mirror and security mirror (CARTABLE_LAB_MIRROR overrides the first)."""
    sources = parse_apt_sources()
    mirror = os.environ.get("CARTABLE_LAB_MIRROR", "")
    security = os.environ.get("CARTABLE_LAB_SECURITY_MIRROR", "")
    if not mirror:
        for uri, suites in sources:
            if any(s in DEBIAN_SUITES for s in suites):
                mirror = uri
                break
    if not security:
        for uri, suites in sources:
            if any(s.endswith("-security") or s.endswith("/updates") for s in suites):
                security = uri
                break
    if not mirror:
        raise LabError("no Debian mirror found in /etc/apt/sources.list*: set CARTABLE_LAB_MIRROR")
    return mirror.rstrip("/"), security.rstrip("/")


def recipe_files() -> list[Path]:
    return sorted(p for p in IMAGE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def recipe_hashes() -> tuple[str, str]:
    """(base, infra) recipe hashes: every file of tests/lab/image plus the mirrors used."""
    mirror, security = host_mirrors()
    base = hashlib.sha256()
    for path in recipe_files():
        if path.name == "Dockerfile.infra":
            continue
        rel = path.relative_to(IMAGE_DIR).as_posix()
        mode = "x" if os.access(path, os.X_OK) else "-"
        base.update(f"{rel}\0{mode}\0".encode() + path.read_bytes() + b"\0")
    base.update(f"mirror={mirror}\0security={security}".encode())
    base_hash = base.hexdigest()[:12]
    infra_hash = sha(base_hash + (IMAGE_DIR / "Dockerfile.infra").read_text())
    return base_hash, infra_hash


def image_tags() -> dict[str, str]:
    base_hash, infra_hash = recipe_hashes()
    return {"base": f"{BASE_REPO}:{base_hash}", "infra": f"{INFRA_REPO}:{infra_hash}"}


def image_exists(tag: str) -> bool:
    return run(["docker", "image", "inspect", tag], check=False).returncode == 0


def docker_build(dockerfile: Path, tag: str, build_args: dict[str, str], recipe: str) -> None:
    env = dict(os.environ, DOCKER_BUILDKIT="0")  # the legacy builder: docker.io 20.10 has no buildx
    with tempfile.TemporaryDirectory() as context:
        cmd = ["docker", "build", "--quiet", "-f", str(dockerfile), "-t", tag,
               "--label", f"{LABEL}=image", "--label", f"{LABEL}.recipe={recipe}"]
        for key, value in build_args.items():
            cmd += ["--build-arg", f"{key}={value}"]
        run([*cmd, context], env=env)


def build_images(force: bool = False) -> dict[str, str]:
    tags = image_tags()
    mirror, security = host_mirrors()
    base_hash = tags["base"].split(":")[1]
    if force or not image_exists(tags["base"]):
        if os.geteuid() != 0:
            raise LabError("building the base image needs root (debootstrap)")
        with stage(f"image: debootstrap Debian 12 from {mirror}"):
            workdir = STATE / "image"
            workdir.mkdir(parents=True, exist_ok=True)
            tar = workdir / f"rootfs-{base_hash}.tar"
            try:
                run([str(IMAGE_DIR / "rootfs.sh"), str(tar), mirror, security], capture=False)
                rootfs_tag = f"{BASE_REPO}:rootfs-{base_hash}"
                run(["docker", "import", "--message", f"cartable lab rootfs {base_hash}",
                     str(tar), rootfs_tag])
            finally:
                tar.unlink(missing_ok=True)
        with stage("image: base layer (stop signal, init)"):
            docker_build(IMAGE_DIR / "Dockerfile.base", tags["base"], {"ROOTFS": rootfs_tag}, base_hash)
            docker("rmi", rootfs_tag, check=False)
    else:
        log(f"image {tags['base']} is up to date (recipe unchanged)")
    docker("tag", tags["base"], f"{BASE_REPO}:latest")
    if force or not image_exists(tags["infra"]):
        with stage("image: infra (squid, nginx, ippeveprinter, dhclient)"):
            docker_build(IMAGE_DIR / "Dockerfile.infra", tags["infra"], {"BASE": tags["base"]},
                         tags["infra"].split(":")[1])
    else:
        log(f"image {tags['infra']} is up to date (recipe unchanged)")
    docker("tag", tags["infra"], f"{INFRA_REPO}:latest")
    return tags


# --------------------------------------------------------------------------- inventory → lab model

def read_inventory(path: Path) -> dict:
    if not path.exists():
        raise LabError(f"{path} does not exist: build it with "
                       f"`cartable inventory build {path.parent / 'site.yml'}`")
    proc = run([tool("ansible-inventory"), "-i", str(path), "--list"], env=ansible_env())
    return json.loads(proc.stdout)


def group_hosts(inv: dict, group: str, seen: set | None = None) -> list[str]:
    """Hosts of a group and of its children, in inventory order."""
    seen = seen if seen is not None else set()
    if group in seen or group not in inv:
        return []
    seen.add(group)
    hosts = list(inv[group].get("hosts", []))
    for child in inv[group].get("children", []):
        hosts += [h for h in group_hosts(inv, child, seen) if h not in hosts]
    return hosts


def lab_model(inventory: Path, school: str | None = None) -> dict:
    """What the lab must create, from the inventory and tests/lab/topology.yml."""
    inv = read_inventory(inventory)
    topo = load_yaml(LAB_DIR / "topology.yml")
    hostvars = inv.get("_meta", {}).get("hostvars", {})
    schools: dict[str, list[str]] = {}
    for host in group_hosts(inv, "all"):
        uai = str(hostvars.get(host, {}).get("cartable_school_uai", "")).lower()
        if uai:
            schools.setdefault(uai, []).append(host)
    if school:
        school = school.lower()
        if school not in schools:
            raise LabError(f"school {school} is not in {inventory} (schools: {sorted(schools)})")
    elif len(schools) != 1:
        raise LabError(f"{inventory} holds {len(schools)} schools {sorted(schools)}: "
                       "the lab runs one (give --school UAI)")
    else:
        school = next(iter(schools))
    hosts = schools[school]
    first = hostvars[hosts[0]]
    servers = set(group_hosts(inv, "school_servers"))
    printers = set(group_hosts(inv, "printers"))

    networks: dict[str, dict] = {}
    used: set = set()
    for host in hosts:
        hv = hostvars[host]
        used.add(hv.get("ansible_host"))
        used.update((hv.get("cartable_addresses") or {}).values())
    for index, (name, net) in enumerate(sorted(first["cartable_school_networks"].items())):
        subnet = ipaddress.ip_network(net["subnet"])
        networks[name] = {
            "name": f"{PREFIX}-{school}-{name}",
            "bridge": f"cl-{school[:8]}-{index}",
            "subnet": str(subnet),
            "gateway": docker_gateway(subnet, net, used),
            "internal": False,
            "school_network": name,
        }
    for name, net in topo["networks"].items():
        networks[name] = {"name": f"{PREFIX}-{name}-net", "bridge": net["bridge"], "subnet": net["subnet"],
                          "gateway": net["gateway"], "internal": True, "school_network": None}

    site_names = list(topo["sites"]["allowed"]) + [n for names in topo["sites"]["blocked"].values()
                                                  for n in names]
    internet_ip = topo["internet"]["addresses"]["internet"]
    etc_hosts = {name: internet_ip for name in site_names}
    proxy = topo["academic_proxy"]

    containers: list[dict] = []
    server_ip = ipaddress.ip_address(topo["school_server_first_address"])
    for host in hosts:
        hv = hostvars[host]
        if host in servers:
            addresses = dict(hv.get("cartable_addresses") or {})
            if not addresses:
                addresses = {first_network_of(networks, hv["ansible_host"]): hv["ansible_host"]}
            addresses["academic"] = str(server_ip)
            server_ip += 1
            role = "server"
        else:
            net = hv.get("cartable_network") or first_network_of(networks, hv["ansible_host"])
            addresses = {net: hv["ansible_host"]}
            role = "printer" if host in printers else "host"
        for net, address in addresses.items():
            if net not in networks:
                raise LabError(f"{host}: network {net!r} is not one of the school's {sorted(networks)}")
            if ipaddress.ip_address(address) not in ipaddress.ip_network(networks[net]["subnet"]):
                raise LabError(f"{host}: {address} is outside {net} {networks[net]['subnet']}")
        # The host's own network first: it carries the default route and the MAC address.
        own = hv.get("cartable_network") or first_network_of(networks, hv["ansible_host"])
        order = [own] + [n for n in addresses if n != own]
        containers.append({
            "name": f"{PREFIX}-{host}",
            "host": host,
            "hostname": host,
            "role": role,
            "image": "infra" if role == "printer" else "base",
            "networks": [[n, addresses[n]] for n in order],
            "mac": hv.get("cartable_mac"),
            "ansible_host": hv["ansible_host"],
            "etc_hosts": etc_hosts,
            # ippeveprinter refuses to start without an IPv6 listener (loopback is enough).
            "sysctls": {"net.ipv6.conf.all.disable_ipv6": 0} if role == "printer" else {},
        })
    containers.append({
        "name": f"{PREFIX}-{proxy['name']}", "host": None, "hostname": proxy["name"],
        "role": "academic-proxy", "image": "infra",
        "networks": [[n, a] for n, a in proxy["addresses"].items()], "mac": None,
        "aliases": [proxy["name"]], "etc_hosts": etc_hosts,
    })
    containers.append({
        "name": f"{PREFIX}-{topo['internet']['name']}", "host": None,
        "hostname": topo["internet"]["name"], "role": "internet", "image": "infra",
        "networks": [[n, a] for n, a in topo["internet"]["addresses"].items()], "mac": None,
        "aliases": [topo["internet"]["name"], *site_names], "etc_hosts": {},
    })
    return {"school": school, "inventory": str(inventory), "networks": networks,
            "containers": containers, "topology": topo, "site_names": site_names}


def first_network_of(networks: dict, address: str) -> str:
    for name, net in networks.items():
        if ipaddress.ip_address(address) in ipaddress.ip_network(net["subnet"]):
            return name
    raise LabError(f"{address} is in none of the school's networks")


def docker_gateway(subnet, net: dict, used: set) -> str:
    """The controller's address on a school LAN: the highest free address, outside the DHCP
    pool if possible (the inventory's gateway is the school server, not docker)."""
    taken = {str(a) for a in used if a} | {str(net.get("gateway"))}
    pool = set()
    if net.get("dhcp_start") and net.get("dhcp_end"):
        start, end = (ipaddress.ip_address(net["dhcp_start"]), ipaddress.ip_address(net["dhcp_end"]))
        pool = {str(ipaddress.ip_address(i)) for i in range(int(start), int(end) + 1)}
    hosts = list(subnet.hosts())
    for avoid_pool in (True, False):
        for address in reversed(hosts):
            if str(address) in taken or (avoid_pool and str(address) in pool):
                continue
            return str(address)
    raise LabError(f"no free address for the controller in {subnet}")


# --------------------------------------------------------------------------- infra configuration

def internet_config(model: dict) -> str:
    topo = model["topology"]
    names = model["site_names"]
    categories = {n: "allowed" for n in topo["sites"]["allowed"]}
    for category, listed in topo["sites"]["blocked"].items():
        for n in listed:
            categories[n] = category
    servers = [
        "# Generated by tests/lab/lab.py: the lab's \"internet\" serves its test sites by name.",
        "server {",
        "    listen 80 default_server;",
        "    listen 443 ssl default_server;",
        "    ssl_certificate /etc/nginx/lab/site.crt;",
        "    ssl_certificate_key /etc/nginx/lab/site.key;",
        "    default_type text/plain;",
        '    return 421 "cartable-lab internet: no site named $host\\n";',
        "}",
    ]
    for name in names:
        servers += [
            "server {",
            "    listen 80;",
            "    listen 443 ssl;",
            f"    server_name {name};",
            "    ssl_certificate /etc/nginx/lab/site.crt;",
            "    ssl_certificate_key /etc/nginx/lab/site.key;",
            "    default_type text/plain;",
            f'    return 200 "cartable-lab site {name} ({categories[name]})\\n";',
            "}",
        ]
    conf = "\n".join(servers) + "\n"
    san = ",".join(f"DNS:{n}" for n in names)
    return f"""set -eu
install -d /etc/nginx/lab
rm -f /etc/nginx/sites-enabled/default
cat > /etc/nginx/sites-enabled/cartable-lab.conf <<'CARTABLE_EOF'
{conf}CARTABLE_EOF
[ -s /etc/nginx/lab/site.key ] || openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \\
    -subj /CN=cartable-lab-internet -addext subjectAltName={san} \\
    -keyout /etc/nginx/lab/site.key -out /etc/nginx/lab/site.crt 2>/dev/null
nginx -t -q
systemctl enable --now nginx.service >/dev/null 2>&1
systemctl reload-or-restart nginx.service
"""


def proxy_config(model: dict) -> str:
    topo = model["topology"]
    conf = f"""# Generated by tests/lab/lab.py: the academic proxy of the lab. It serves the academic WAN
# and reaches only the lab's internet network.
http_port {topo['academic_proxy']['port']}
acl academic_wan src {topo['networks']['academic']['subnet']}
acl lab_internet dst {topo['networks']['internet']['subnet']}
acl SSL_ports port 443
acl Safe_ports port 80 443
acl CONNECT method CONNECT
http_access deny !Safe_ports
http_access deny CONNECT !SSL_ports
http_access deny !lab_internet
http_access allow academic_wan
http_access deny all
cache deny all
visible_hostname {topo['academic_proxy']['name']}
shutdown_lifetime 1 seconds
access_log daemon:/var/log/squid/access.log squid
"""
    return f"""set -eu
cat > /etc/squid/squid.conf <<'CARTABLE_EOF'
{conf}CARTABLE_EOF
squid -k parse -f /etc/squid/squid.conf >/dev/null 2>&1
systemctl enable --now squid.service >/dev/null 2>&1
"""


def printer_config(model: dict, spec: dict) -> str:
    topo = model["topology"]["printers"]
    host = spec["host"]
    unit = f"""# Generated by tests/lab/lab.py: the virtual IPP printer of the lab.
[Unit]
Description=Virtual IPP Everywhere printer {host} (ippeveprinter)
After=network.target

[Service]
ExecStart=/usr/sbin/ippeveprinter -r off -k -p {topo['port']} -d {topo['spool']} \\
    -f application/pdf,image/pwg-raster,image/urf,image/jpeg,application/postscript,text/plain \\
    -M Cartable -m "Lab printer" -l "cartable lab" {host}
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""
    return f"""set -eu
install -d -m 0755 {topo['spool']}
cat > /etc/systemd/system/cartable-ippeveprinter.service <<'CARTABLE_EOF'
{unit}CARTABLE_EOF
systemctl daemon-reload
systemctl enable --now cartable-ippeveprinter.service >/dev/null 2>&1
"""


def config_script(model: dict, spec: dict) -> str:
    if spec["role"] == "internet":
        return internet_config(model)
    if spec["role"] == "academic-proxy":
        return proxy_config(model)
    if spec["role"] == "printer":
        return printer_config(model, spec)
    return ""


# --------------------------------------------------------------------------- up

def labels(kind: str, extra: dict[str, str]) -> list[str]:
    out = ["--label", f"{LABEL}={kind}"]
    for key, value in extra.items():
        out += ["--label", f"{LABEL}.{key}={value}"]
    return out


def existing(kind_filter: str, what: str) -> dict[str, dict]:
    """Lab containers or networks (by name) with their labels."""
    if what == "container":
        ids = docker("ps", "-aq", "--filter", f"label={LABEL}={kind_filter}").split()
    else:
        ids = docker("network", "ls", "-q", "--filter", f"label={LABEL}={kind_filter}").split()
    if not ids:
        return {}
    data = json.loads(docker(what, "inspect", *ids))
    out = {}
    for item in data:
        name = item["Name"].lstrip("/")
        lbl = (item.get("Config") or {}).get("Labels") if what == "container" else item.get("Labels")
        out[name] = {"labels": lbl or {}, "running": (item.get("State") or {}).get("Running", False),
                     "id": item["Id"]}
    return out


def ensure_networks(model: dict, kind: str = LAB_KIND) -> None:
    have = existing(kind, "network")
    for key, net in model["networks"].items():
        spec_hash = sha(json.dumps(net, sort_keys=True))
        current = have.get(net["name"])
        if current and current["labels"].get(f"{LABEL}.spec") == spec_hash:
            continue
        if current:
            log(f"network {net['name']} changed: recreating it and its containers")
            attached = json.loads(docker("network", "inspect", net["name"]))[0].get("Containers") or {}
            for cid in attached:
                docker("rm", "-f", cid)
            remove_networks([net["name"]])
        elif run(["docker", "network", "inspect", net["name"]], check=False).returncode == 0:
            raise LabError(f"a docker network named {net['name']} exists and is not the lab's")
        cmd = ["network", "create", "--driver", "bridge", "--subnet", net["subnet"],
               "--gateway", net["gateway"], "-o", f"com.docker.network.bridge.name={net['bridge']}",
               *labels(kind, {"spec": spec_hash, "network": key})]
        if net["internal"]:
            cmd.append("--internal")
        docker(*cmd, net["name"])
        log(f"network {net['name']} {net['subnet']} (bridge {net['bridge']}, controller {net['gateway']}"
            f"{', internal' if net['internal'] else ''})")


def container_spec_hash(model: dict, spec: dict, images: dict) -> str:
    payload = {k: v for k, v in spec.items()}
    payload["image_tag"] = images[spec["image"]]
    payload["config"] = config_script(model, spec)
    payload["nets"] = {n: model["networks"][n]["name"] for n, _ in spec["networks"]}
    return sha(json.dumps(payload, sort_keys=True))


def create_container(model: dict, spec: dict, images: dict, spec_hash: str, kind: str = LAB_KIND) -> None:
    nets = model["networks"]
    first_net, first_ip = spec["networks"][0]
    cmd = ["create", "--name", spec["name"], "--hostname", spec["hostname"], *SYSTEMD_RUN_ARGS,
           *labels(kind, {"spec": spec_hash, "role": spec["role"], "host": spec["host"] or ""}),
           "--network", nets[first_net]["name"], "--ip", first_ip]
    for key, value in sorted(spec.get("sysctls", {}).items()):
        cmd += ["--sysctl", f"{key}={value}"]
    for alias in spec.get("aliases", []):
        cmd += ["--network-alias", alias]
    for name, address in sorted(spec.get("etc_hosts", {}).items()):
        cmd += ["--add-host", f"{name}:{address}"]
    docker(*cmd, images[spec["image"]])
    for net, address in spec["networks"][1:]:
        extra = []
        for alias in spec.get("aliases", []):
            extra += ["--alias", alias]
        docker("network", "connect", "--ip", address, *extra, nets[net]["name"], spec["name"])
    docker("start", spec["name"])


def wait_running(name: str, timeout: int = 180) -> str:
    """Wait for systemd to finish booting; return its state (running or degraded)."""
    deadline = time.monotonic() + timeout
    while True:
        proc = run(["docker", "exec", name, "systemctl", "is-system-running", "--wait"], check=False,
                   timeout=timeout)
        state = (proc.stdout or "").strip()
        if state in ("running", "degraded"):
            return state
        if time.monotonic() > deadline:
            failed = run(["docker", "exec", name, "systemctl", "--failed", "--no-legend"], check=False).stdout
            raise LabError(f"{name}: systemd is {state or 'not answering'} after {timeout} s\n{failed}")
        time.sleep(1)


def prepare_container(model: dict, spec: dict, spec_hash: str, pubkey: str) -> dict:
    """Wait for boot, configure once per spec, install the lab's key, read the host keys."""
    name = spec["name"]
    state = wait_running(name)
    script = config_script(model, spec)
    marker = "/etc/cartable-lab.configured"
    if script:
        done = run(["docker", "exec", name, "cat", marker], check=False).stdout.strip()
        if done != spec_hash:
            run(["docker", "exec", "-i", name, "sh", "-s"], input=script)
            run(["docker", "exec", name, "sh", "-c", f"echo {spec_hash} > {marker}"])
    if spec.get("mac"):
        # docker 20.10's API (1.41) cannot take a MAC address from a recent docker CLI: set it
        # on the interface of the host's own network, the way the hardware file gives it.
        own_ip = spec["networks"][0][1]
        run(["docker", "exec", name, "sh", "-c",
             f"dev=$(ip -o -4 addr show | awk '$4 ~ /^{own_ip}\\//{{print $2}}'); "
             f"[ \"$(cat /sys/class/net/$dev/address)\" = {spec['mac'].lower()} ] "
             f"|| ip link set dev \"$dev\" address {spec['mac'].lower()}"])
    result = {"name": name, "state": state}
    if spec["host"]:
        keys = f"/home/{LAB_USER}/.ssh/authorized_keys"
        run(["docker", "exec", "-i", name, "sh", "-c",
             f"cat > {keys}.new && chown {LAB_USER}:{LAB_USER} {keys}.new && chmod 0600 {keys}.new "
             f"&& mv {keys}.new {keys}"], input=pubkey)
        result["host_keys"] = run(["docker", "exec", name, "sh", "-c",
                                   "cat /etc/ssh/ssh_host_*_key.pub"]).stdout.split("\n")
        state = run(["docker", "exec", name, "systemctl", "is-system-running"], check=False).stdout.strip()
        result["state"] = state
    return result


def ensure_ssh_key() -> str:
    key = STATE / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cartable-lab", "-f", str(key)])
    return (key.with_suffix(".pub")).read_text()


def write_connection_inventory(model: dict, results: dict) -> None:
    """known_hosts from each container's own host keys (read over docker exec, a trusted
    channel: no trust on first use) and the connection inventory."""
    known = []
    hosts = {}
    for spec in model["containers"]:
        if not spec["host"]:
            continue
        addresses = [a for _, a in spec["networks"]]
        names = ",".join([spec["ansible_host"]] + [a for a in addresses if a != spec["ansible_host"]])
        for line in results[spec["name"]]["host_keys"]:
            parts = line.split()
            if len(parts) >= 2:
                known.append(f"{names} {parts[0]} {parts[1]}")
        hosts[spec["host"]] = {"ansible_host": spec["ansible_host"],
                               "cartable_lab_addresses": dict(spec["networks"])}
    (STATE / "known_hosts").write_text("\n".join(known) + "\n")
    cp = STATE / "cp"
    cp.mkdir(mode=0o700, exist_ok=True)
    topo = model["topology"]
    proxy = topo["academic_proxy"]
    lab = {
        "school": model["school"],
        "containers": {s["host"] or s["role"]: s["name"] for s in model["containers"]},
        "networks": {k: {"docker_network": v["name"], "bridge": v["bridge"], "subnet": v["subnet"],
                         "controller_address": v["gateway"]} for k, v in model["networks"].items()},
        "academic_proxy": {"host": proxy["name"], "port": proxy["port"],
                           "addresses": proxy["addresses"]},
        "internet": {"addresses": topo["internet"]["addresses"], "container": f"{PREFIX}-internet"},
        "sites": topo["sites"],
        "printers": topo["printers"],
    }
    common = " ".join([
        f"-o UserKnownHostsFile={STATE / 'known_hosts'}",
        "-o GlobalKnownHostsFile=/dev/null",
        "-o IdentitiesOnly=yes",
        f"-o ControlPath={cp}/%C",
    ])
    inventory = {"all": {
        "vars": {
            "ansible_user": LAB_USER,
            "ansible_ssh_private_key_file": str(STATE / "ssh" / "id_ed25519"),
            "ansible_ssh_common_args": common,
            "ansible_python_interpreter": "/usr/bin/python3",
            # The image's deploy account keeps its key after the common role (validate_inventory's
            # lock-out guard).
            "validate_inventory__kept_logins": [LAB_USER],
            "cartable_lab": lab,
        },
        "hosts": hosts,
    }}
    header = ("# Generated by `tests/lab/lab.py up`: how the controller reaches the lab's containers.\n"
              f"# Use it as a second inventory source after {model['inventory']}. Do not edit.\n")
    # JSON is YAML: no YAML library needed, and the file stays deterministic.
    (STATE / "connection.yml").write_text(header + json.dumps(inventory, indent=2, sort_keys=True) + "\n")
    (STATE / "lab.json").write_text(json.dumps({k: v for k, v in model.items() if k != "topology"},
                                               indent=2, sort_keys=True) + "\n")


def cmd_up(args) -> None:
    with stage("engine"):
        ensure_engine()
    with stage("image"):
        images = build_images()
    with stage("inventory"):
        model = lab_model(Path(args.inventory), args.school)
        log(f"school {model['school']}: {sum(1 for c in model['containers'] if c['host'])} hosts "
            f"from {args.inventory}")
    STATE.mkdir(parents=True, exist_ok=True)
    pubkey = ensure_ssh_key()
    with stage("networks"):
        # What an earlier `up` made and this lab no longer has (another school, say) goes first.
        have = existing(LAB_KIND, "container")
        wanted = {s["name"] for s in model["containers"]}
        for name in sorted(set(have) - wanted):
            if have[name]["labels"].get(f"{LABEL}.role") == "dhcp-client":
                continue
            log(f"removing {name} (no longer in the lab)")
            docker("rm", "-f", name)
        wanted_nets = {n["name"] for n in model["networks"].values()}
        for name in sorted(set(existing(LAB_KIND, "network")) - wanted_nets):
            log(f"removing network {name} (no longer in the lab)")
            for cid in json.loads(docker("network", "inspect", name))[0].get("Containers") or {}:
                docker("rm", "-f", cid)
            remove_networks([name])
        ensure_networks(model)
    with stage("containers"):
        have = existing(LAB_KIND, "container")
        hashes = {s["name"]: container_spec_hash(model, s, images) for s in model["containers"]}

        def one(spec):
            current = have.get(spec["name"])
            if current and current["labels"].get(f"{LABEL}.spec") == hashes[spec["name"]]:
                if not current["running"]:
                    docker("start", spec["name"])
                    return f"{spec['name']} started"
                return None
            if current:
                docker("rm", "-f", spec["name"])
            create_container(model, spec, images, hashes[spec["name"]])
            return f"{spec['name']} created"

        for line in parallel(one, model["containers"], workers=4):
            if line:
                log(line)
    with stage("boot, configure, keys"):
        results = {r["name"]: r for r in parallel(
            lambda s: prepare_container(model, s, hashes[s["name"]], pubkey), model["containers"], workers=8)}
        bad = {n: r["state"] for n, r in results.items() if r["state"] != "running"}
        if bad:
            log(f"warning: systemd not `running` in {bad}")
        write_connection_inventory(model, results)
    log(f"connection inventory: {STATE / 'connection.yml'}")
    log(f"lab up: converge with `{Path(sys.argv[0]).name} converge` "
        f"(ansible-playbook -i {args.inventory} -i {STATE / 'connection.yml'} playbooks/site.yml)")


# --------------------------------------------------------------------------- down, status

def close_ssh_masters() -> None:
    cp = STATE / "cp"
    if not cp.is_dir():
        return
    for sock in cp.iterdir():
        run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "lab"], check=False, timeout=10)
        sock.unlink(missing_ok=True)


def remove_all(kind: str) -> tuple[int, int]:
    containers = docker("ps", "-aq", "--filter", f"label={LABEL}={kind}").split()
    # One at a time: docker 20.10 removing many containers at once has been seen to leave a
    # stale endpoint behind, and then the network cannot be removed until dockerd restarts.
    for container in containers:
        docker("rm", "-f", "-v", container)
    networks = docker("network", "ls", "-q", "--filter", f"label={LABEL}={kind}").split()
    remove_networks(networks)
    return len(containers), len(networks)


def remove_networks(networks: list[str]) -> None:
    """docker 20.10 may still hold an endpoint of a container it just removed: retry a bit."""
    for attempt in range(20):
        if not networks:
            return
        proc = run(["docker", "network", "rm", *networks], check=False)
        if proc.returncode == 0:
            return
        networks = [n for n in networks
                    if run(["docker", "network", "inspect", n], check=False).returncode == 0]
        if attempt == 19:
            raise LabError(f"cannot remove networks {networks}: {proc.stderr.strip()}\n"
                           "(a stale endpoint of docker 20.10: restarting dockerd clears it)")
        time.sleep(0.5)


def cmd_down(args) -> None:
    with stage("down"):
        if not docker_answers():
            log("no Docker engine answers: nothing to remove")
            return
        close_ssh_masters()
        n_containers, n_networks = remove_all(LAB_KIND)
        for name in ("connection.yml", "known_hosts", "lab.json"):
            (STATE / name).unlink(missing_ok=True)
        log(f"removed {n_containers} containers and {n_networks} networks")


def cmd_status(args) -> None:
    out = {"containers": {}, "networks": {}}
    for name, item in sorted(existing(LAB_KIND, "container").items()):
        out["containers"][name] = {"running": item["running"], "role": item["labels"].get(f"{LABEL}.role")}
    for name, item in sorted(existing(LAB_KIND, "network").items()):
        out["networks"][name] = item["labels"].get(f"{LABEL}.network")
    print(json.dumps(out, indent=2))


# --------------------------------------------------------------------------- converge, verify, ssh

def playbook_command(playbook: Path, extra: list[str], inventory: str) -> list[str]:
    connection = STATE / "connection.yml"
    if not connection.exists():
        raise LabError(f"{connection} does not exist: run `lab.py up` first")
    return [tool("ansible-playbook"), "-i", inventory, "-i", str(connection), str(playbook), *extra]


def cmd_playbook(playbook: Path, args) -> int:
    cmd = playbook_command(playbook, args.extra, args.inventory)
    log(shlex.join(cmd))
    start = time.monotonic()
    rc = subprocess.run(cmd, env=ansible_env(), cwd=ROOT, check=False).returncode
    TIMINGS.append((playbook.stem, time.monotonic() - start))
    return rc


def cmd_ssh(args) -> int:
    inv = json.loads((STATE / "connection.yml").read_text().split("\n", 2)[2])
    hosts = inv["all"]["hosts"]
    if args.host not in hosts:
        raise LabError(f"{args.host} is not a lab host ({', '.join(sorted(hosts))})")
    v = inv["all"]["vars"]
    cmd = ["ssh", "-i", v["ansible_ssh_private_key_file"], *shlex.split(v["ansible_ssh_common_args"]),
           f"{v['ansible_user']}@{hosts[args.host]['ansible_host']}", *args.command]
    return subprocess.run(cmd, check=False).returncode


# --------------------------------------------------------------------------- DHCP client

def cmd_dhcp_client(args) -> int:
    """A container plugged into a school LAN by a veth of our own (no docker IPAM, no
    address): the school server's DHCP service can be tested with a real client."""
    name = f"{PREFIX}-dhcp-{args.name}"
    lab = json.loads((STATE / "lab.json").read_text()) if (STATE / "lab.json").exists() else None
    if args.action == "down":
        docker("rm", "-f", name, check=False)
        log(f"{name} removed")
        return 0
    if lab is None:
        raise LabError("the lab is not up (no .cache/lab/lab.json)")
    nets = lab["networks"]
    if args.network not in nets or nets[args.network]["internal"]:
        raise LabError(f"--network must be a school network: "
                       f"{sorted(k for k, v in nets.items() if not v['internal'])}")
    bridge = nets[args.network]["bridge"]
    mac = args.mac or "02:ca:" + ":".join(sha(name + args.network, 8)[i:i + 2] for i in range(0, 8, 2))
    if args.action == "up":
        images = image_tags()
        have = existing(LAB_KIND, "container").get(name)
        if have and have["labels"].get(f"{LABEL}.spec") != sha(f"{bridge}/{mac}"):
            docker("rm", "-f", name)
            have = None
        if not have:
            docker("run", "-d", "--name", name, "--hostname", f"dhcp-{args.name}", "--network", "none",
                   *SYSTEMD_RUN_ARGS, *labels(LAB_KIND, {"role": "dhcp-client", "host": "",
                                                          "spec": sha(f"{bridge}/{mac}")}),
                   images["infra"])
        elif not have["running"]:
            docker("start", name)
        wait_running(name)
        if run(["docker", "exec", name, "ip", "link", "show", "lan0"], check=False).returncode != 0:
            pid = docker("inspect", "-f", "{{.State.Pid}}", name).strip()
            host_end = f"cl-dh-{sha(name, 6)}"
            run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", "lan0", "netns", pid])
            run(["ip", "link", "set", host_end, "master", bridge, "up"])
            docker("exec", name, "ip", "link", "set", "lan0", "address", mac, "up")
        log(f"{name}: interface lan0 ({mac}) on bridge {bridge} ({args.network}), no address yet")
        log(f"  ask for a lease: {Path(sys.argv[0]).name} dhcp-client request --name {args.name}")
        return 0
    # request: one DHCP exchange with a real client (ISC dhclient), then print the lease
    proc = run(["docker", "exec", name, "timeout", str(args.timeout), "dhclient", "-1", "-v",
                "-lf", "/var/lib/dhcp/lab.leases", "-pf", "/run/dhclient-lab.pid", "lan0"],
               check=False, timeout=args.timeout + 10)
    addr = json.loads(docker("exec", name, "ip", "-j", "-4", "addr", "show", "lan0") or "[]")
    lease = {"ok": proc.returncode == 0,
             "addresses": [f"{a['local']}/{a['prefixlen']}" for i in addr for a in i.get("addr_info", [])],
             "routes": docker("exec", name, "ip", "-4", "route").split("\n")[:-1],
             "resolv_conf": docker("exec", name, "cat", "/etc/resolv.conf").split("\n")[:-1],
             "log": (proc.stderr or "").strip().split("\n")[-6:]}
    print(json.dumps(lease, indent=2))
    return 0 if lease["ok"] else 1


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("engine", help="install and start what the lab needs")
    p = sub.add_parser("image", help="build the lab images if their recipe changed")
    p.add_argument("--force", action="store_true")
    p = sub.add_parser("image-name", help="print the image tag of the current recipe")
    p.add_argument("which", nargs="?", choices=["base", "infra"], default="base")
    for name in ("up", "converge", "verify"):
        p = sub.add_parser(name)
        p.add_argument("--inventory", "-i", default=str(DEFAULT_INVENTORY))
        if name == "up":
            p.add_argument("--school", help="UAI of the school (when the inventory holds several)")
        else:
            p.add_argument("extra", nargs=argparse.REMAINDER, help="more ansible-playbook arguments")
    sub.add_parser("down")
    sub.add_parser("status")
    p = sub.add_parser("dhcp-client")
    p.add_argument("action", choices=["up", "down", "request"])
    p.add_argument("--name", default="client1")
    p.add_argument("--network", default="pedagogical")
    p.add_argument("--mac")
    p.add_argument("--timeout", type=int, default=30)
    p = sub.add_parser("ssh")
    p.add_argument("host")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args, unknown = parser.parse_known_args(argv)
    if hasattr(args, "extra"):  # converge/verify: ansible-playbook options such as --check --diff
        args.extra = [a for a in unknown + args.extra if a != "--"]
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    start = time.monotonic()
    try:
        if args.command == "engine":
            ensure_engine()
        elif args.command == "image":
            with stage("engine"):
                ensure_engine()
            tags = build_images(force=args.force)
            log(f"images: {tags['base']} {tags['infra']}")
        elif args.command == "image-name":
            print(image_tags()[args.which])
        elif args.command == "up":
            cmd_up(args)
        elif args.command == "converge":
            return cmd_playbook(ROOT / "playbooks" / "site.yml", args)
        elif args.command == "verify":
            return cmd_playbook(LAB_DIR / "verify.yml", args)
        elif args.command == "down":
            cmd_down(args)
        elif args.command == "status":
            cmd_status(args)
        elif args.command == "dhcp-client":
            return cmd_dhcp_client(args)
        elif args.command == "ssh":
            return cmd_ssh(args)
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.command in ("up", "image", "down", "converge", "verify"):
            print_timings()
            log(f"{args.command}: {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
