"""The lab's docker networks and containers: created from the lab model, kept when their spec
is unchanged, removed by label (up, down, status)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cartable_lab.common import (LAB_KIND, LAB_USER, LABEL, STATE, SYSTEMD_RUN_ARGS, LabError, docker, log,
                                 parallel, run, sha, stage)
from cartable_lab.connection import (close_ssh_masters, ensure_ssh_key, ensure_vault_password,
                                     write_connection_inventory)
from cartable_lab.engine import docker_answers, ensure_engine
from cartable_lab.images import build_images
from cartable_lab.infra import config_script
from cartable_lab.lists import publish as publish_lists
from cartable_lab.model import lab_model


def labels(kind: str, extra: dict[str, str]) -> list[str]:
    """docker --label options: LABEL=kind, and LABEL.key=value for each extra."""
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


def guard_route(subnet: str, add: bool = True) -> None:
    """The controller has no address on a school LAN, so without this route anything it sent to
    one would follow its default route off the machine: make the LAN unreachable from here."""
    have = run(["ip", "-4", "route", "show", "type", "unreachable", subnet], check=False).stdout.strip()
    if add and not have:
        run(["ip", "route", "add", "unreachable", subnet])
    elif not add and have:
        run(["ip", "route", "del", "unreachable", subnet], check=False)


def ensure_networks(model: dict, kind: str = LAB_KIND) -> None:
    """Create the model's networks; recreate one (and its containers) whose spec changed."""
    have = existing(kind, "network")
    for key, net in model["networks"].items():
        spec_hash = sha(json.dumps(net, sort_keys=True))
        current = have.get(net["name"])
        if current and current["labels"].get(f"{LABEL}.spec") == spec_hash:
            if not net["host_address"]:
                guard_route(net["subnet"])  # gone after a reboot, the network not
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
        if not net["host_address"]:
            cmd += ["-o", "com.docker.network.bridge.inhibit_ipv4=true"]
        docker(*cmd, net["name"])
        if not net["host_address"]:
            guard_route(net["subnet"])
        log(f"network {net['name']} {net['subnet']} (bridge {net['bridge']}, "
            + (f"controller {net['gateway']}" if net["host_address"] else "controller not on it")
            + (", internal" if net["internal"] else ", NAT to the Debian mirror") + ")")


def container_spec_hash(model: dict, spec: dict, images: dict) -> str:
    """The hash of everything a container is made from (spec, image, config, networks)."""
    payload = {k: v for k, v in spec.items()}
    payload["image_tag"] = images[spec["image"]]
    payload["config"] = config_script(model, spec)
    payload["nets"] = {n: model["networks"][n]["name"] for n, _ in spec["networks"]}
    return sha(json.dumps(payload, sort_keys=True))


def create_container(model: dict, spec: dict, images: dict, spec_hash: str, kind: str = LAB_KIND) -> None:
    """Create a container on its first network, connect the others, start it."""
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
    for source, target in spec.get("mounts", []):
        Path(source).mkdir(parents=True, exist_ok=True)
        cmd += ["--volume", f"{source}:{target}:ro"]
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


def cmd_up(args: argparse.Namespace) -> None:
    """`up`: engine, images, networks and containers of the lab model, the connection inventory."""
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
    ensure_vault_password()
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
    with stage("filtering lists (UT1 origin, DSI mirror job)"):
        publish_lists(model)
        write_connection_inventory(model, results)
    log(f"connection inventory: {STATE / 'connection.yml'}")
    log(f"lab up: converge with `{Path(sys.argv[0]).name} converge` "
        f"(ansible-playbook -i {args.inventory} -i {STATE / 'connection.yml'} playbooks/site.yml)")


def remove_all(kind: str) -> tuple[int, int]:
    """Remove every container and network labelled LABEL=kind; (containers, networks) counts."""
    containers = docker("ps", "-aq", "--filter", f"label={LABEL}={kind}").split()
    # One at a time: docker 20.10 removing many containers at once has been seen to leave a
    # stale endpoint behind, and then the network cannot be removed until dockerd restarts.
    for container in containers:
        docker("rm", "-f", "-v", container)
    networks = docker("network", "ls", "-q", "--filter", f"label={LABEL}={kind}").split()
    for item in json.loads(docker("network", "inspect", *networks)) if networks else []:
        if (item.get("Options") or {}).get("com.docker.network.bridge.inhibit_ipv4") == "true":
            for config in (item.get("IPAM") or {}).get("Config") or []:
                guard_route(config["Subnet"], add=False)
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


def cmd_down(args: argparse.Namespace) -> None:
    """`down`: remove what the lab made and its connection files."""
    with stage("down"):
        if not docker_answers():
            log("no Docker engine answers: nothing to remove")
            return
        close_ssh_masters()
        n_containers, n_networks = remove_all(LAB_KIND)
        for name in ("connection.yml", "known_hosts", "lab.json"):
            (STATE / name).unlink(missing_ok=True)
        log(f"removed {n_containers} containers and {n_networks} networks")


def cmd_status(args: argparse.Namespace) -> None:
    """`status`: the lab's containers and networks, as JSON."""
    out = {"containers": {}, "networks": {}}
    for name, item in sorted(existing(LAB_KIND, "container").items()):
        out["containers"][name] = {"running": item["running"], "role": item["labels"].get(f"{LABEL}.role")}
    for name, item in sorted(existing(LAB_KIND, "network").items()):
        out["networks"][name] = item["labels"].get(f"{LABEL}.network")
    print(json.dumps(out, indent=2))
