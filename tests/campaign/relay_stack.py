"""The workstation roles on the relay's own stack, with Mitogen: each role's molecule scenario
run by the Ansible a school server runs as a relay (roles/relay: Debian 12's Python 3.11, its
pinned ansible-core 2.19, ansible-runner and Mitogen, the controller's collections). The
role's steps (converge, idempotence, verify) run with the relay's Ansible and the strategy
`cartable campaign run --relay` gives it (cartable_relay_strategy: mitogen_linear); molecule's
own steps (destroy, create, prepare: the docker driver's playbooks, which need the docker and
requests libraries, and whose async tasks Mitogen's local connection does not finish) with the
controller's.

    .venv/bin/python tests/campaign/relay_stack.py [--strategy mitogen_linear] [ROLE...]

The scenario is a copy of the role's `default` one (its playbooks, inventory and checks as
they are), renamed so that it runs beside anything else: its containers `mito-<name>`,
labelled org.cartable.lab=mitostack, its own network on 10.250.47.0/24. The relay's venv is made
once from the relay role's pins (`pip download` for Python 3.11, as roles/relay/README.md says)
with this machine's Python 3.11 (Debian 12's, as on a school server). Exit 1 when a scenario
fails (its log: .cache/relay-stack/<role>.log), 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".cache" / "relay-stack"
PYTHON311 = Path("/usr/bin/python3.11")
RELAY_DEFAULTS = ROOT / "roles" / "relay" / "defaults" / "main.yml"
BASE = ROOT / ".config" / "molecule" / "config.yml"
# The workstations' roles (playbooks/workstations.yml) that have a molecule scenario.
ROLES = ("common", "proxy_client")
SCENARIO = "relay-stack"
PREFIX = "mito"
SUBNETS = {"10.199.44.": "10.250.47."}  # a scenario's own LAN -> this test's subnet
LABEL = "org.cartable.lab"
LABEL_VALUE = "mitostack"  # not the benchmark's "mito": each removes only its own


class Problem(Exception):
    """Bad input or a missing prerequisite: exit 2."""


def pins() -> list[str]:
    defaults = yaml.safe_load(RELAY_DEFAULTS.read_text(encoding="utf-8"))
    return [*defaults["relay__pip_packages"], defaults["relay__mitogen_package"]]


def relay_venv() -> Path:
    """The relay's venv (Python 3.11, the role's pins), made once per set of pins."""
    if not PYTHON311.exists():
        raise Problem(f"{PYTHON311} not found: the relay's stack is Debian 12's Python 3.11")
    import hashlib

    wanted = pins()
    tag = hashlib.sha1(" ".join(wanted).encode()).hexdigest()[:12]
    venv = STATE / f"venv-{tag}"
    if (venv / ".done").exists():
        return venv
    wheels = STATE / f"wheels-{tag}"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--dest", str(wheels),
                    "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
                    "--abi", "cp311", "--platform", "manylinux_2_28_x86_64",
                    "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
                    *wanted], check=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([str(PYTHON311), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--find-links",
                    str(wheels), *wanted], check=True)
    (venv / ".done").touch()
    return venv


def controller_collections() -> str:
    """The folder holding the controller's ansible_collections (the relay gets a copy)."""
    import ansible_collections  # the controller's pinned `ansible` package

    return str(Path(next(iter(ansible_collections.__path__))).parent)


def renamed(text: str, names: dict[str, str]) -> str:
    for old, new in {**names, **SUBNETS}.items():
        text = re.sub(rf"(?<![\w.-]){re.escape(old)}(?![\w-])", new, text)
    return text


def scenario(role: str) -> Path:
    """roles/<role>/molecule/relay-stack: the default scenario, renamed."""
    default = ROOT / "roles" / role / "molecule" / "default"
    data = yaml.safe_load((default / "molecule.yml").read_text(encoding="utf-8"))
    base = yaml.safe_load(BASE.read_text(encoding="utf-8"))
    platforms = data.get("platforms") or base["platforms"]
    names = {p["name"]: f"{PREFIX}-{p['name'] if p['name'] != 'instance' else role}"
             .replace("_", "-") for p in platforms}
    networks = {n["name"]: f"{PREFIX}-{n['name'].removeprefix('cartable-mol-')}"
                for p in platforms for n in p.get("docker_networks", [])}
    for platform in platforms:
        platform.setdefault("labels", {})[LABEL] = LABEL_VALUE
    data["platforms"] = platforms
    provisioner = data.setdefault("provisioner", {"name": "ansible"})
    plays = provisioner.setdefault("playbooks", {})
    for step in ("prepare", "converge", "verify"):
        own = default / plays.get(step, f"{step}.yml")
        if own.exists():
            plays[step] = str(own)
    if "prepare" not in plays:
        plays["prepare"] = str(ROOT / "tests" / "lab" / "molecule" / "prepare.yml")
    text = renamed(yaml.safe_dump(data, sort_keys=False), {**names, **networks})
    folder = default.parent / SCENARIO
    folder.mkdir(exist_ok=True)
    (folder / "molecule.yml").write_text(text, encoding="utf-8")
    return folder


def remove_leftovers() -> None:
    """This test's containers and networks (label org.cartable.lab=mitostack)."""
    for what, ls in (("container", ["ps", "-aq"]), ("network", ["network", "ls", "-q"])):
        ids = subprocess.run(["docker", *ls, "--filter", f"label={LABEL}={LABEL_VALUE}"],
                             capture_output=True, text=True, check=False).stdout.split()
        if ids:
            rm = ["rm", "-f"] if what == "container" else ["network", "rm"]
            subprocess.run(["docker", *rm, *ids], capture_output=True, check=False)


def run(role: str, venv: Path, strategy: str) -> tuple[bool, float, Path]:
    """molecule test of the renamed scenario on the relay's stack; (ok, seconds, log)."""
    folder = scenario(role)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({"PATH": f"{venv / 'bin'}:{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}",
                "ANSIBLE_COLLECTIONS_PATH": controller_collections()})
    if strategy != "linear":
        plugins = next((venv / "lib").glob("python3*/site-packages/ansible_mitogen/plugins/strategy"))
        env.update({"ANSIBLE_STRATEGY": strategy, "ANSIBLE_STRATEGY_PLUGINS": str(plugins)})
    log = STATE / f"{role}.log"
    # molecule's own steps: the controller's Ansible (the docker driver's modules need its
    # Python libraries, requests and docker)
    linear = {k: v for k, v in env.items() if not k.startswith("ANSIBLE_")}
    linear["PATH"] = f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}"
    start = time.monotonic()
    ok = True
    try:
        with log.open("w", encoding="utf-8") as out:
            for step in ("destroy", "syntax", "create", "prepare", "converge", "idempotence",
                         "verify"):
                out.write(f"=== relay-stack: molecule {step}\n")
                out.flush()
                done = subprocess.run(
                    [str(ROOT / ".venv" / "bin" / "molecule"), step, "-s", SCENARIO],
                    cwd=ROOT / "roles" / role, stdout=out, stderr=subprocess.STDOUT, check=False,
                    env=env if step in ("converge", "idempotence", "verify") else linear)
                if done.returncode != 0:
                    out.write(f"=== relay-stack: {step} failed (rc {done.returncode})\n")
                    ok = False
                    break
            subprocess.run([str(ROOT / ".venv" / "bin" / "molecule"), "destroy", "-s", SCENARIO],
                           cwd=ROOT / "roles" / role, env=linear, stdout=out,
                           stderr=subprocess.STDOUT, check=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        remove_leftovers()
    return ok, time.monotonic() - start, log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roles", nargs="*", default=list(ROLES), metavar="ROLE",
                        help=f"roles to test (default: {' '.join(ROLES)})")
    parser.add_argument("--strategy", default="mitogen_linear",
                        help="the relay's strategy (default mitogen_linear; linear: stock)")
    args = parser.parse_args()
    try:
        for role in args.roles:
            if not (ROOT / "roles" / role / "molecule" / "default" / "molecule.yml").exists():
                raise Problem(f"roles/{role}/molecule/default/molecule.yml: no such scenario")
        STATE.mkdir(parents=True, exist_ok=True)
        venv = relay_venv()
    except (Problem, subprocess.CalledProcessError) as exc:
        print(f"relay-stack: error: {exc}", file=sys.stderr)
        return 2
    version = subprocess.run([str(venv / "bin" / "ansible"), "--version"], capture_output=True,
                             text=True, check=False).stdout.splitlines()[0]
    print(f"relay-stack: {version} on {PYTHON311}, strategy {args.strategy}", flush=True)
    failed = []
    for role in args.roles:
        ok, seconds, log = run(role, venv, args.strategy)
        print(f"relay-stack: {role}: {'ok' if ok else 'FAILED'} in {seconds:.0f} s ({log})",
              flush=True)
        if not ok:
            failed.append(role)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
