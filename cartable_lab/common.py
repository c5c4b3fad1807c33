"""What every part of the lab shares: paths and constants, errors, output and stage timings,
processes (run, docker, parallel), hashes and the controller's tools."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

# The repository (this package is its top-level cartable_lab/) and the lab's places in it.
ROOT = Path(__file__).resolve().parents[1]
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


T = TypeVar("T")
R = TypeVar("R")

TIMINGS: list[tuple[str, float]] = []  # (stage, seconds) of this command, in order


def log(msg: str) -> None:
    """One line of the lab's output, flushed (the stages are long)."""
    print(f"lab: {msg}", flush=True)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Log a stage's start and end, and record its time for print_timings."""
    start = time.monotonic()
    log(f"── {name} ...")
    try:
        yield
    finally:
        took = time.monotonic() - start
        TIMINGS.append((name, took))
        log(f"── {name}: {took:.1f} s")


def print_timings() -> None:
    """The time of every stage of this command, in one line."""
    if TIMINGS:
        log("stage times: " + ", ".join(f"{n} {t:.1f} s" for n, t in TIMINGS))


def run(cmd: list[str], *, check: bool = True, capture: bool = True, input: str | None = None,
        env: dict[str, str] | None = None, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; a failure (missing tool, timeout, non-zero exit with check) is a LabError."""
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
    """The standard output of `docker ARGS...` (a failure is a LabError unless check=False)."""
    return run(["docker", *args], check=check, input=input, timeout=timeout).stdout


def parallel(fn: Callable[[T], R], items: Iterable[T], workers: int = 6) -> list[R]:
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
    """The first n hex digits of the SHA-256 of data."""
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()[:n]


def tool(name: str) -> str:
    """A tool of the controller venv, else from PATH."""
    candidate = VENV_BIN / name
    return str(candidate) if candidate.exists() else name


def ansible_env() -> dict[str, str]:
    """The environment of an Ansible command: the project's ansible.cfg, the venv's tools first."""
    env = dict(os.environ)
    env.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    return env


def load_yaml(path: Path) -> Any:
    """A YAML file's data."""
    import yaml  # the controller venv has PyYAML; only commands that read YAML need it

    with open(path, encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def load_filter(name: str) -> ModuleType:
    """A filter plugin module of the project (filter_plugins/NAME.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "filter_plugins" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
