"""A real build of the CI image (`essai`): reproducible, extractable, verifiable, and a PC
that boots: the extracted tree on a virtual disk, QEMU (TCG) boots its kernel, the system takes
an address by DHCP on its first Ethernet card and its sshd answers with host keys of its own.

Needs root, mmdebstrap, casync, QEMU, e2fsprogs and Debian's mirror: run by
tests/integration/images/run.sh (a CI stage of scripts/test), not by the unit tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from cartable.cli import main
from cartable.images import store as st
from cartable.images.catalog import read_catalog

REPO = Path(__file__).resolve().parents[3]
CATALOG = REPO / "images" / "catalog.yml"
CACHE = Path(os.environ.get("CARTABLE_CACHE", REPO / ".cache"))
RESTORE = REPO / "netboot" / "initramfs" / "cartable-restore"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stores") / "dsi"
    assert main(["image", "build", str(CATALOG), "essai", "--out", str(out),
                 "--cache", str(CACHE / "images")]) == 0
    return out


def test_same_catalog_same_packages_same_digest(store: Path, capsys) -> None:
    """A second build (same catalog, same package versions) gives the same digest: nothing is
    published, no chunk is added to the store."""
    manifest = st.read_manifest(store / "essai" / "2026.1")
    assert {"bsdgames", "gnuchess", "locales"} <= manifest["packages"].keys()
    # settings.workstation: Debian's kernel, networking, sshd and python3; the manifest says it
    # boots (netboot restores it)
    assert {"linux-image-amd64", "openssh-server", "python3", "ifupdown"} <= manifest["packages"].keys()
    assert manifest["bootable"] is True
    # the relay's login, created in the image (its key comes with each restore)
    assert manifest["connection_user"] == "cartable" and "sudo" in manifest["packages"]
    assert (store / "essai" / "latest").read_text() == "2026.1\n"
    chunks = st.store_bytes(store)
    capsys.readouterr()
    assert main(["image", "build", str(CATALOG), "essai", "--out", str(store),
                 "--cache", str(CACHE / "images")]) == 0
    assert "unchanged (same digest), nothing published" in capsys.readouterr().out
    assert st.store_bytes(store) == chunks
    assert not list(store.glob(".build-*"))


@pytest.fixture(scope="module")
def extracted(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("extracted") / "root"


def test_restore_side_extracts_and_verifies(store: Path, extracted: Path) -> None:
    """What a restore environment does with the store (issue 10): extract, check the digest."""
    version = store / "essai" / "2026.1"
    manifest = st.read_manifest(version)
    target = extracted
    subprocess.run(["casync", "extract", f"--store={version / manifest['store']}",
                    str(version / manifest["index"]), str(target)], check=True)
    digest = subprocess.run(["casync", "digest", *manifest["features"], str(target)],
                            check=True, capture_output=True, text=True).stdout.strip()
    assert digest == manifest["digest"]
    assert (target / "etc" / "default" / "locale").read_text() == "LANG=fr_FR.UTF-8\n"
    assert 'XKBLAYOUT="fr"' in (target / "etc" / "default" / "keyboard").read_text()
    assert os.readlink(target / "etc" / "localtime") == "/usr/share/zoneinfo/Europe/Paris"
    assert os.readlink(target / "etc" / "systemd" / "system" / "cups.service") == "/dev/null"
    assert (target / "usr" / "games" / "arithmetic").exists()
    assert not list((target / "var" / "log").iterdir())
    assert (target / "etc" / "hostname").read_text() == "cartable\n"
    # a workstation: no SSH host key in the image (each PC makes its own at its first boot)
    assert not list((target / "etc" / "ssh").glob("ssh_host_*"))
    assert (target / "etc" / "fstab").read_text().startswith("LABEL=cartable-root / ext4")
    # the connection user: a home, no password (locked), its password-change day fixed at the
    # build's epoch (reproducible), sudo without password in a file visudo checked
    shadow = next(line for line in (target / "etc" / "shadow").read_text().splitlines()
                  if line.startswith("cartable:")).split(":")
    assert shadow[1].startswith("!") and shadow[2] == "20454", shadow
    assert (target / "home" / "cartable").is_dir()
    sudoers = target / "etc" / "sudoers.d" / "cartable-connection-user"
    assert sudoers.read_text() == "cartable ALL=(ALL:ALL) NOPASSWD: ALL\n"
    assert oct(sudoers.stat().st_mode & 0o777) == "0o440"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _banner(port: int) -> str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            return sock.recv(256).decode(errors="replace").strip()
    except OSError:
        return ""


def _relay_key(extracted: Path, tmp_path: Path) -> Path:
    """A key made now (never in the repo), written into the tree for the image's connection
    user by netboot's restore function (enrol_user), as a restore does with the relay's key;
    from= QEMU's user-network gateway, where the forwarded connections come from."""
    key = tmp_path / "relay"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "relay@test", "-f", str(key)],
                   check=True)
    line = tmp_path / "authorized_keys"
    line.write_text('from="10.0.2.2" ' + (tmp_path / "relay.pub").read_text())
    user = read_catalog(CATALOG).settings.connection_user
    subprocess.run(["dash", "-c", f'. "{RESTORE}"; enrol_user "$@"', "enrol_user", str(extracted),
                    user, str(line)], check=True, env={"CARTABLE_RESTORE_LIB": "1", "PATH": "/usr/bin:/bin"})
    return key


def _as_relay(key: Path, port: int, tmp_path: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(key), "-p", str(port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
         "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
         "-o", "StrictHostKeyChecking=accept-new", "cartable@127.0.0.1", command],
        capture_output=True, text=True, timeout=300, check=False)


def test_the_image_boots_as_a_workstation(extracted: Path, tmp_path: Path) -> None:
    """The extracted tree on an ext4 disk labelled cartable-root (as netboot's restore makes
    it), booted by QEMU (TCG) with the image's own kernel and initramfs: the system mounts its
    root by label, takes an address by DHCP on its first card (QEMU's user network, isolated:
    restrict=on), makes its own SSH host keys and its sshd answers on a forwarded port. Then
    the relay's way in: its key (written as a restore writes it) logs in as the connection
    user, sudo needs no password, and Ansible manages the PC (ping with become)."""
    assert (extracted / "etc" / "fstab").exists(), "run with the extraction test before"
    key = _relay_key(extracted, tmp_path)
    disk, serial = tmp_path / "disk.img", tmp_path / "serial.log"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "cartable-root", "-d", str(extracted),
                    str(disk), "2G"], check=True)
    port = _free_port()
    qemu = subprocess.Popen([
        "qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-smp", "1", "-display", "none",
        "-no-reboot", "-serial", f"file:{serial}",
        "-kernel", str(extracted / "vmlinuz"), "-initrd", str(extracted / "initrd.img"),
        "-append", "root=LABEL=cartable-root ro console=ttyS0,115200",
        "-drive", f"file={disk},if=virtio,format=raw",
        "-netdev", f"user,id=lan,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-net-pci,netdev=lan"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started, banner = time.monotonic(), ""
    try:
        while time.monotonic() - started < 600 and qemu.poll() is None:
            banner = _banner(port)
            if banner.startswith("SSH-2.0-"):
                break
            time.sleep(3)
        seconds = time.monotonic() - started
        login = _as_relay(key, port, tmp_path, "sudo -n id -u; hostname; python3 -c 'import sys; print(sys.version_info[0])'")
        ansible_started = time.monotonic()
        ping = subprocess.run(
            [str(REPO / ".venv" / "bin" / "ansible"), "all", "-i", "127.0.0.1,", "-u", "cartable",
             "--private-key", str(key), "-e", f"ansible_port={port}",
             "-e", f"ansible_ssh_common_args='-o UserKnownHostsFile={tmp_path / 'known_hosts'} -o IdentitiesOnly=yes'",
             "-e", "ansible_python_interpreter=/usr/bin/python3", "--become", "-m", "ansible.builtin.ping"],
            capture_output=True, text=True, timeout=600, check=False,
            env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")})
        ansible_seconds = time.monotonic() - ansible_started
        wrong_key = tmp_path / "someone"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True)
        refused = _as_relay(wrong_key, port, tmp_path, "true")
    finally:
        qemu.kill()
        qemu.wait()
    console = serial.read_text(errors="replace")
    print(f"booted to sshd in {seconds:.0f} s (TCG): {banner}")
    assert banner.startswith("SSH-2.0-OpenSSH"), f"no SSH banner in {seconds:.0f} s; console:\n{console[-3000:]}"
    # The port is forwarded to the guest's 10.0.2.15, the address QEMU's DHCP gives: the banner
    # came through the guest's own network (ifupdown's /en*/1=lan, dhclient). Debian's sshd
    # does not start without host keys (`sshd -t` first): they were made at this first boot.
    # The relay's key logs in as the connection user (settings.connection_user), root by sudo
    # without a password, python3 there: what the school server's relay needs to converge it.
    assert login.returncode == 0, f"the relay's key does not log in as cartable: {login.stderr}"
    assert login.stdout.split() == ["0", "cartable", "3"], login.stdout
    print(f"ansible ping (become) in {ansible_seconds:.0f} s: {ping.stdout.strip()[:200]}")
    assert ping.returncode == 0 and "SUCCESS" in ping.stdout and "pong" in ping.stdout, ping.stdout + ping.stderr
    # another key is refused (the account has no password and only the relay's key)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr
