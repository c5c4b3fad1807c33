"""The Docker engine and host tools the lab needs: installed, configured and answering."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from cartable_lab.common import DOCKERD_LOG, SYSCTLS, LabError, log, run


def docker_answers() -> bool:
    """Whether a Docker engine answers `docker info`."""
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
