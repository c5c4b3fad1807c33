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

REPO = Path(__file__).resolve().parents[3]
CATALOG = REPO / "images" / "catalog.yml"
CACHE = Path(os.environ.get("CARTABLE_CACHE", REPO / ".cache"))


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


def test_the_image_boots_as_a_workstation(extracted: Path, tmp_path: Path) -> None:
    """The extracted tree on an ext4 disk labelled cartable-root (as netboot's restore makes
    it), booted by QEMU (TCG) with the image's own kernel and initramfs: the system mounts its
    root by label, takes an address by DHCP on its first card (QEMU's user network, isolated:
    restrict=on), makes its own SSH host keys and its sshd answers on a forwarded port."""
    assert (extracted / "etc" / "fstab").exists(), "run with the extraction test before"
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
    finally:
        qemu.kill()
        qemu.wait()
    console = serial.read_text(errors="replace")
    print(f"booted to sshd in {seconds:.0f} s (TCG): {banner}")
    assert banner.startswith("SSH-2.0-OpenSSH"), f"no SSH banner in {seconds:.0f} s; console:\n{console[-3000:]}"
    # The port is forwarded to the guest's 10.0.2.15, the address QEMU's DHCP gives: the banner
    # came through the guest's own network (ifupdown's /en*/1=lan, dhclient). Debian's sshd
    # does not start without host keys (`sshd -t` first): they were made at this first boot.
