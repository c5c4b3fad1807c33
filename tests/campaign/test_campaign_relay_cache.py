"""--relay over ssh keeps the project bundle on the school server by hash: sent when the
server does not have it, never again while it is unchanged. The "server" is this machine:
an `ssh` first on the PATH runs the remote command here with a home of its own (the
server's cache), and logs each command, as the real ssh would carry it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from campaign_fixtures import PLAYBOOK, PRIMAIRE, REPO, build_site, status
from campaign_fixtures import env as fixture_env

FAKE_SSH = f"""#!{sys.executable}
import os, sys
args = sys.argv[1:]
while args and args[0].startswith("-"):
    args = args[2:] if args[0] in ("-o", "-i", "-p", "-l", "-F", "-J") else args[1:]
host, command = args[0], " ".join(args[1:])
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(command.split(" && ")[0] + "\\n")
os.environ["HOME"] = os.environ["FAKE_SERVER_HOME"]
os.execvp("sh", ["sh", "-c", command])
"""


def _run(site: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cartable.cli", "campaign", "run", str(site), str(PLAYBOOK),
         "--relay", "--relay-runner", f"{sys.executable} -m ansible_runner", *args],
        capture_output=True, text=True, env=env, cwd=REPO, check=False, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _uploads(log: Path) -> int:
    return sum(line.startswith("mkdir -p") for line in log.read_text().splitlines())


def test_the_bundle_is_sent_once_and_kept_on_the_server(tmp_path: Path) -> None:
    site = build_site(tmp_path / "city")
    bin_dir, server_home, log = tmp_path / "bin", tmp_path / "server-home", tmp_path / "ssh.log"
    bin_dir.mkdir()
    server_home.mkdir()
    (bin_dir / "ssh").write_text(FAKE_SSH)
    (bin_dir / "ssh").chmod(0o755)
    env = {**fixture_env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "FAKE_SSH_LOG": str(log), "FAKE_SERVER_HOME": str(server_home)}

    first = _run(site, env, "--school", PRIMAIRE, "--name", "first")
    assert first.returncode == 0, first.stdout + first.stderr
    assert _uploads(log) == 1
    kept = list((server_home / ".cache" / "cartable" / "relay" / "bundles").iterdir())
    assert len(kept) == 1 and (kept[0] / "roles" / "common" / "tasks").is_dir()
    assert not list(kept[0].glob("roles/*/molecule"))

    # every school, again: the server keeps the bundle, nothing is sent, the jobs run from it
    for marker in (site.parent / "markers").iterdir():
        marker.unlink()
    again = _run(site, env, "--name", "again", "--forks", "3")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _uploads(log) == 1
    assert {s["state"] for s in status(site, "again")["schools"].values()} == {"ok"}
    assert "0350607v-sdi01" in {p.name for p in (site.parent / "markers").iterdir()}
    job = next((site.parent / "campaigns" / "again" / "runs" / PRIMAIRE / "relay").iterdir())
    assert list((job / "project").iterdir()) == []  # the job sent without its bundle
    assert list((server_home / ".cache" / "cartable" / "relay" / "bundles").iterdir()) == kept
