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
import sys
import time

from cartable_lab.common import DEFAULT_INVENTORY, LAB_DIR, ROOT, LabError, log, print_timings, stage
from cartable_lab.connection import cmd_playbook, cmd_ssh
from cartable_lab.containers import cmd_down, cmd_status, cmd_up
from cartable_lab.dhcp import cmd_dhcp_client
from cartable_lab.engine import ensure_engine
from cartable_lab.images import build_images, image_tags


def main(argv: list[str] | None = None) -> int:
    """The lab's command line; returns the exit code (1 on a LabError, 2 on bad usage)."""
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
    p.add_argument("remote", nargs=argparse.REMAINDER, metavar="command")
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
