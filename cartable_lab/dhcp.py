"""A DHCP client plugged into a school LAN by a veth of our own, without docker's IPAM."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cartable_lab.common import (LAB_KIND, LABEL, PREFIX, STATE, SYSTEMD_RUN_ARGS, LabError, docker, log,
                                 run, sha)
from cartable_lab.containers import existing, labels, wait_running
from cartable_lab.images import image_tags


def cmd_dhcp_client(args: argparse.Namespace) -> int:
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
    if args.network not in nets or not nets[args.network]["school_network"]:
        raise LabError(f"--network must be a school network: "
                       f"{sorted(k for k, v in nets.items() if v['school_network'])}")
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
