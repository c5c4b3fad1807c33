"""How the controller reaches the lab: the SSH keys, known_hosts read from the containers, the
connection inventory (.cache/lab/connection.yml), playbook runs and ssh to a lab host."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import subprocess
import time
from pathlib import Path

from cartable_lab.common import (LAB_USER, PREFIX, ROOT, STATE, TIMINGS, LabError, ansible_env, load_filter,
                                 log, run, tool)
from cartable_lab.lists import connection_vars as lists_connection_vars


# The lab site's administrator (cartable_admins of the connection inventory): a DSI engineer
# whose key is generated at `up`, so the common role's admin proofs have someone to prove.
LAB_ADMIN = "dsi-lab"


def ensure_ssh_key(name: str = "id_ed25519") -> str:
    """The public key of .cache/lab/ssh/NAME, generated (ed25519, no passphrase) if missing."""
    key = STATE / "ssh" / name
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"cartable-lab-{name}", "-f", str(key)])
    return (key.with_suffix(".pub")).read_text()


def ensure_vault_password() -> Path:
    """The lab's ansible-vault password (random, made once, kept with the vault file that
    roles/file_server writes under .cache/lab/group_vars/: never in the repository)."""
    path = STATE / "vault-password"
    if not path.exists():
        STATE.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return path


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
        if spec["role"] == "server":
            # The server's own connection settings: the generated inventory sets them without
            # the jump, on the server itself (cartable_ssh_options only).
            hosts[spec["host"]]["cartable_lab_wan_address"] = spec["ansible_host"]
    (STATE / "known_hosts").write_text("\n".join(known) + "\n")
    cp = STATE / "cp"
    cp.mkdir(mode=0o700, exist_ok=True)
    topo = model["topology"]
    proxy = topo["academic_proxy"]
    lab = {
        "school": model["school"],
        "containers": {s["host"] or s["role"]: s["name"] for s in model["containers"]},
        "networks": {k: {"docker_network": v["name"], "bridge": v["bridge"], "subnet": v["subnet"],
                         "controller_address": v["gateway"] if v["host_address"] else None}
                     for k, v in model["networks"].items()},
        "academic_proxy": {"host": proxy["name"], "port": proxy["port"],
                           "addresses": proxy["addresses"]},
        "internet": {"addresses": topo["internet"]["addresses"], "container": f"{PREFIX}-internet"},
        "sites": topo["sites"],
        "printers": topo["printers"],
        "admin": {"name": LAB_ADMIN, "key": str(STATE / "ssh" / LAB_ADMIN)},
        # What the internet container serves from the controller (UT1 origin, DSI publication).
        "www": str(STATE / "www"),
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
            # The generated inventory composes ansible_ssh_common_args from these and the
            # school server as a jump host (filter_plugins/cartable_ssh.py).
            "cartable_ssh_options": common,
            "ansible_python_interpreter": "/usr/bin/python3",
            "cartable_admins": [{"name": LAB_ADMIN, "ssh_keys": [ensure_ssh_key(LAB_ADMIN).strip()],
                                 "state": "present"}],
            # The image's deploy account keeps its key after the common role (validate_inventory's
            # lock-out guard).
            "validate_inventory__kept_logins": [LAB_USER],
            "cartable_lab": lab,
            # roles/file_server keeps the generated Samba passwords in a vault file beside an
            # inventory source: here, not in the committed inventories/lab/.
            "file_server__vault_file": str(STATE / "group_vars" / "all" / "file_server_passwords.vault.yml"),
            # roles/school_proxy fetches the lab's signed lists (cartable_lab/lists.py).
            **lists_connection_vars(model),
        },
        "hosts": hosts,
    }}
    header = ("# Generated by `tests/lab/lab.py up`: how the controller reaches the lab's containers.\n"
              f"# Use it as a second inventory source after {model['inventory']}. Do not edit.\n")
    # JSON is YAML: no YAML library needed, and the file stays deterministic.
    (STATE / "connection.yml").write_text(header + json.dumps(inventory, indent=2, sort_keys=True) + "\n")
    (STATE / "lab.json").write_text(json.dumps({k: v for k, v in model.items() if k != "topology"},
                                               indent=2, sort_keys=True) + "\n")


def close_ssh_masters() -> None:
    """Close the SSH control masters of .cache/lab/cp and remove their sockets."""
    cp = STATE / "cp"
    if not cp.is_dir():
        return
    for sock in cp.iterdir():
        run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "lab"], check=False, timeout=10)
        sock.unlink(missing_ok=True)


def playbook_command(playbook: Path, extra: list[str], inventory: str) -> list[str]:
    """The ansible-playbook command line on the lab: the inventory, then the connection inventory."""
    connection = STATE / "connection.yml"
    if not connection.exists():
        raise LabError(f"{connection} does not exist: run `lab.py up` first")
    return [tool("ansible-playbook"), "-i", inventory, "-i", str(connection),
            "--vault-password-file", str(ensure_vault_password()), str(playbook), *extra]


def cmd_playbook(playbook: Path, args: argparse.Namespace) -> int:
    """`converge` or `verify`: run the playbook on the lab, timed; its exit code."""
    cmd = playbook_command(playbook, args.extra, args.inventory)
    log(shlex.join(cmd))
    start = time.monotonic()
    rc = subprocess.run(cmd, env=ansible_env(), cwd=ROOT, check=False).returncode
    TIMINGS.append((playbook.stem, time.monotonic() - start))
    return rc


def cmd_ssh(args: argparse.Namespace) -> int:
    """`ssh HOST [CMD...]`: ssh to a lab host, through the school server unless it is the server."""
    inv = json.loads((STATE / "connection.yml").read_text().split("\n", 2)[2])
    hosts = inv["all"]["hosts"]
    if args.host not in hosts:
        raise LabError(f"{args.host} is not a lab host ({', '.join(sorted(hosts))})")
    v = inv["all"]["vars"]
    server = next(h for h, hv in hosts.items() if "cartable_lab_wan_address" in hv)
    cmd = ["ssh", "-i", v["ansible_ssh_private_key_file"], *shlex.split(v["cartable_ssh_options"])]
    if args.host != server:  # through the school server, as the generated inventory does
        jump = load_filter("cartable_ssh").ssh_jump
        cmd += shlex.split(jump(server, {server: {**v, **hosts[server]}}))
    cmd += [f"{v['ansible_user']}@{hosts[args.host]['ansible_host']}", *args.remote]
    return subprocess.run(cmd, check=False).returncode
