"""A school's job carried by its school server (docs/campaigns.md, "School servers as relays").

The controller zips the job with ansible-runner's `transmit` (the project bundle, the school's
part of the inventory), sends it to `ansible-runner worker` on the school server (ssh, as the
inventory says to reach it), which converges the school over its LAN, and replays the events
the worker sends back with `process` into the same Recorder as a local job: status, resume
and check mode are the same; only the carrier changes.

Over ssh the server keeps the project bundle by its digest (`~/.cache/cartable/relay/bundles`
of the ssh user): it is sent once, and the jobs then travel without it.

On the relay, the school server converges itself with `ansible_connection: local`, and its
workstations directly over the LAN (the school group's ProxyCommand through the server is
replaced by `cartable_relay_ssh_options`, else the site's `cartable_ssh_options`).

The relay's own run uses Ansible's strategy `cartable_relay_strategy` of the server's variables
when the site sets one (`mitogen_linear`: Mitogen, which roles/relay installs in the relay's
venv and whose plugin folder its ansible-runner wrapper puts on ANSIBLE_STRATEGY_PLUGINS);
else Ansible's default, linear.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from cartable.campaign.jobs import JOB_ENV, JobSpec, Recorder, job_limit, tail

BUNDLE = ("roles", "playbooks", "filter_plugins", "library", "inventory_plugins", "ansible.cfg")
_SKIP = shutil.ignore_patterns("molecule", "__pycache__", "*.pyc", ".cache")
# The relay's own ssh options for its LAN (its known_hosts...), else the site's.
LAN_ARGS = '{{ cartable_relay_ssh_options|d(cartable_ssh_options|d("")) }}'
SSH_FAILED = 255  # ssh's exit code when it cannot connect
# On the server (the ssh user's): the bundles received, by hash; the newest KEEP are kept.
CACHE = '"$HOME/.cache/cartable/relay/bundles"'
KEEP = 3


def inventory_cli(spec: JobSpec, *args: str) -> str:
    cmd = [str(Path(sys.executable).parent / "ansible-inventory")]
    for source in spec.inventories:
        cmd += ["-i", str(source.resolve())]
    done = subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=spec.project_dir,
                          check=False, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"ansible-inventory {' '.join(args)}: {done.stderr.strip()[-300:]}")
    return done.stdout


def school_inventory(spec: JobSpec, group: str, server: str) -> dict[str, Any]:
    """The school's part of the inventory, as the relay sees its LAN."""
    data = yaml.safe_load(inventory_cli(spec, "--list", "--yaml", "--export", "--limit", group))
    children = data["all"].setdefault("children", {})
    school = children.setdefault(group, {})
    school.setdefault("vars", {})["ansible_ssh_common_args"] = LAN_ARGS
    hosts = school.setdefault("hosts", {})
    hosts[server] = {**(hosts.get(server) or {}), "ansible_connection": "local"}
    return data


def server_vars(spec: JobSpec, server: str) -> dict[str, Any]:
    """The school server's variables, as the inventory gives them."""
    return yaml.safe_load(inventory_cli(spec, "--host", server)) or {}


STRATEGY = re.compile(r"[a-z][a-z0-9_]*")


def relay_env(hv: dict[str, Any]) -> dict[str, str]:
    """The job's environment on the relay: its strategy, when the site chose one."""
    strategy = hv.get("cartable_relay_strategy")
    if strategy in (None, ""):
        return {}
    if not isinstance(strategy, str) or not STRATEGY.fullmatch(strategy):
        raise RuntimeError(f"cartable_relay_strategy: {strategy!r} is not a strategy's name "
                           "(e.g. mitogen_linear, linear)")
    return {"ANSIBLE_STRATEGY": strategy}


def server_ssh(spec: JobSpec, server: str, hv: dict[str, Any] | None = None) -> list[str]:
    """ssh to the school server as the inventory reaches it (the remote command follows)."""
    hv = server_vars(spec, server) if hv is None else hv
    words = ["ssh", "-o", "BatchMode=yes"]
    options = hv.get("cartable_ssh_options")
    if isinstance(options, str) and "{{" not in options:
        words += shlex.split(options)
    if hv.get("ansible_ssh_private_key_file"):
        words += ["-i", str(hv["ansible_ssh_private_key_file"])]
    if hv.get("ansible_port"):
        words += ["-p", str(hv["ansible_port"])]
    address = hv.get("ansible_host") or server
    words.append(f"{hv['ansible_user']}@{address}" if hv.get("ansible_user") else str(address))
    return words


def server_command(spec: JobSpec, server: str, runner: str = "ansible-runner") -> list[str]:
    """ssh to the school server as the inventory reaches it, running the relay's worker."""
    return [*server_ssh(spec, server), runner, "worker"]


def bundle_hash(folder: Path) -> str:
    """A digest of the bundle's files: paths, contents, executable bits (not times)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
        mode = 0 if path.is_symlink() else path.stat().st_mode & 0o111
        name = path.relative_to(folder).as_posix().encode()
        digest.update(b"%d:%s\0%o\0%d:" % (len(name), name, mode, len(data)) + data)
    return digest.hexdigest()[:32]


def has_bundle(digest: str) -> str:
    """Remote shell: exit 0 if the server keeps this bundle (and mark it recently used)."""
    return f"test -d {CACHE}/{digest} && touch {CACHE}/{digest}"


def store_bundle(digest: str) -> str:
    """Remote shell: unpack the tar.gz on stdin as this bundle; keep the newest KEEP."""
    return (f"mkdir -p {CACHE} && t=$(mktemp -d {CACHE}/.in.XXXXXX) && tar -xzf - -C \"$t\" && "
            f"{{ test -d {CACHE}/{digest} && rm -rf \"$t\" || mv \"$t\" {CACHE}/{digest}; }} && "
            f"cd {CACHE} && ls -1t | tail -n +{KEEP + 1} | xargs -r rm -rf --")


def cached_worker(runner: str, digest: str) -> str:
    """Remote shell: the worker in a private folder whose project is the kept bundle."""
    return (f"d=$(mktemp -d) && trap 'rm -rf \"$d\"' EXIT && "
            f"cp -a {CACHE}/{digest} \"$d/project\" && {runner} worker --private-data-dir \"$d\"")


def send_bundle(ssh: list[str], project: Path, digest: str) -> bool:
    """Make sure the server keeps the bundle; True when it does (sent now or before)."""
    known = subprocess.run([*ssh, has_bundle(digest)], capture_output=True, check=False,
                           timeout=120)
    if known.returncode == 0:
        return True
    if known.returncode == SSH_FAILED:
        return False  # the job's own ssh says why
    tar = subprocess.Popen(["tar", "-czf", "-", "-C", str(project), "."], stdout=subprocess.PIPE)
    stored = subprocess.run([*ssh, store_bundle(digest)], stdin=tar.stdout, capture_output=True,
                            check=False, timeout=1800)
    tar.wait()
    return stored.returncode == 0 and tar.returncode == 0


def bundle(project: Path, playbook: Path, into: Path) -> str:
    """Copy the project's Ansible content into `into`; the playbook's path inside it."""
    for name in BUNDLE:
        src = project / name
        if src.is_dir():
            shutil.copytree(src, into / name, ignore=_SKIP, dirs_exist_ok=True)
        elif src.is_file():
            shutil.copy2(src, into / name)
    try:
        inside = str(playbook.resolve().relative_to(project))
    except ValueError:  # a playbook outside the project: shipped at the bundle's top
        inside = playbook.name
    if not (into / inside).exists():  # outside the bundled folders (tests/..., elsewhere)
        (into / inside).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(playbook, into / inside)
    return inside


def run_school_relay(spec: JobSpec, group: str, server: str, private_dir: Path, ident: str,
                     recorder: Recorder, cancel: Callable[[], bool], tag: str,
                     command: list[str] | None = None) -> tuple[str, int | None, Path]:
    """Run the school's job on its server; (runner status, rc, local artifacts folder).

    `command` replaces the ssh to the server (it must run `ansible-runner worker`)."""
    import ansible_runner

    job = private_dir / "relay" / ident
    (job / "project").mkdir(parents=True, exist_ok=True)
    (job / "inventory").mkdir(exist_ok=True)
    (job / "env").mkdir(exist_ok=True)
    playbook = bundle(spec.project_dir, spec.playbook, job / "project")
    (job / "inventory" / "hosts.yml").write_text(
        yaml.safe_dump(school_inventory(spec, group, server), sort_keys=False), encoding="utf-8")
    hv = server_vars(spec, server)
    (job / "env" / "envvars").write_text(yaml.safe_dump({
        JOB_ENV: tag, "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": "/tmp/cartable-relay-facts", **relay_env(hv)}),
        encoding="utf-8")
    cmdline = [*(["--check"] if spec.check else []), *(["--diff"] if spec.diff else []),
               *spec.extra_args]
    argv = command
    if argv is None:  # ssh: the bundle is sent only when the server does not keep it yet
        ssh = server_ssh(spec, server, hv)
        digest = bundle_hash(job / "project")
        if send_bundle(ssh, job / "project", digest):
            shutil.rmtree(job / "project")
            (job / "project").mkdir()
            argv = [*ssh, cached_worker(spec.relay_runner, digest)]
        else:
            argv = [*ssh, spec.relay_runner, "worker"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                 f"{os.environ.get('PATH', '')}", JOB_ENV: tag}
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
    reader.start()
    try:
        ansible_runner.run(private_data_dir=str(job), playbook=playbook, limit=job_limit(spec, group),
                           cmdline=shlex.join(cmdline) or None, streamer="transmit",
                           _output=proc.stdin, quiet=True)
    except BrokenPipeError:  # the command ended before reading the job: its stderr says why
        pass
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    runner = ansible_runner.run(private_data_dir=str(private_dir), ident=ident, streamer="process",
                                _input=proc.stdout, event_handler=recorder, quiet=True,
                                cancel_callback=cancel)
    proc.wait()
    reader.join(timeout=10)
    artifacts = Path(runner.artifact_dir)
    if not recorder.saw_stats:
        with recorder.lock:
            why = b"".join(errors).decode(errors="replace").strip()
            recorder.school["failed_hosts"].append(server)
            if proc.returncode == SSH_FAILED:  # ssh could not reach the server
                recorder.school["unreachable_hosts"].append(server)
            recorder.school["errors"].append({
                "host": server, "task": None,
                "msg": f"the relay's job did not run (ssh rc {proc.returncode}): "
                       + (why or tail(artifacts / "stdout"))[-300:]})
        return "failed", proc.returncode or 1, artifacts
    # the worker's final status and rc, as the processor wrote them (its attributes lag)
    status = _read(artifacts / "status") or str(runner.status)
    rc = _read(artifacts / "rc")
    return status, int(rc) if rc and rc.lstrip("-").isdigit() else runner.rc, artifacts


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
