"""netboot/initramfs/cartable-restore: the PC's own SSH host keys survive its restores.

The folder functions run in dash (the restore environment's /bin/sh): the keys are taken from
the old root, else from the ESP's stash an interrupted restore left, and put back into the new
root with sshd's modes. The mount glue around them runs in tests/netboot/qemu-proof (the key the
PC made at its first boot is the one on its disk after the `sync` and the v1 -> v2 restores)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import RESTORE, restore_function

KEYS = ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "ssh_host_rsa_key", "ssh_host_rsa_key.pub")


call = restore_function


def keys(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in KEYS:
        (folder / name).write_text(f"{text} {name}\n")
    (folder / "sshd_config").write_text("# not a key\n")
    return folder


def test_the_first_source_with_keys_wins(tmp_path: Path) -> None:
    """save_hostkeys asks the ESP's stash first, then the old root: a stash exists only while a
    restore is unfinished, and it was taken before that restore wrote anything."""
    stash = keys(tmp_path / "esp" / "cartable-hostkeys", "stash")
    old = keys(tmp_path / "old" / "etc" / "ssh", "old root")
    result = call("hostkeys_collect", str(tmp_path / "kept"), str(stash), str(old))
    assert result.returncode == 0 and result.stdout.strip() == "4", result.stderr
    kept = tmp_path / "kept"
    assert sorted(p.name for p in kept.iterdir()) == sorted(KEYS)   # keys only, not sshd_config
    assert (kept / "ssh_host_ed25519_key.pub").read_text() == "stash ssh_host_ed25519_key.pub\n"


def test_an_interrupted_extraction_does_not_hide_the_stash(tmp_path: Path) -> None:
    """The extraction deleted some keys from the root before the power cut: the stash, asked
    first, gives all of them back (the root's leftovers would lose the ed25519 key)."""
    partly = tmp_path / "old" / "etc" / "ssh"
    partly.mkdir(parents=True)
    (partly / "ssh_host_rsa_key").write_text("old root ssh_host_rsa_key\n")
    stash = keys(tmp_path / "esp" / "cartable-hostkeys", "stash")
    result = call("hostkeys_collect", str(tmp_path / "kept"), str(stash), str(partly))
    assert result.stdout.strip() == "4"
    assert (tmp_path / "kept" / "ssh_host_ed25519_key").read_text() == "stash ssh_host_ed25519_key\n"


def test_no_stash_keys_from_the_old_root(tmp_path: Path) -> None:
    old = keys(tmp_path / "old" / "etc" / "ssh", "old root")
    result = call("hostkeys_collect", str(tmp_path / "kept"), str(tmp_path / "esp" / "none"), str(old))
    assert result.stdout.strip() == "4"
    assert (tmp_path / "kept" / "ssh_host_rsa_key").read_text() == "old root ssh_host_rsa_key\n"


def test_save_asks_the_stash_before_the_old_root() -> None:
    """The order lives in save_hostkeys (mount glue, run by the QEMU proof): the stash's
    collect comes first and the old root is read only when it gave nothing."""
    body = RESTORE.read_text().split("save_hostkeys() {", 1)[1].split("\n}\n", 1)[0]
    assert body.index("$HOSTKEYS_STASH") < body.index("/mnt/old/etc/ssh")
    assert '[ -z "$from" ]' in body


def test_a_blank_disk_has_none(tmp_path: Path) -> None:
    result = call("hostkeys_collect", str(tmp_path / "kept"), str(tmp_path / "nothing"))
    assert result.stdout.strip() == "0" and not list((tmp_path / "kept").iterdir())


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to root: the restore environment runs as root")
def test_keys_go_back_with_sshd_modes(tmp_path: Path) -> None:
    kept = keys(tmp_path / "kept", "mine")
    (kept / "sshd_config").unlink()
    root = tmp_path / "root"
    (root / "etc" / "ssh").mkdir(parents=True)
    result = call("hostkeys_install", str(kept), str(root))
    assert result.returncode == 0, result.stderr
    for name in KEYS:
        path = root / "etc" / "ssh" / name
        assert path.read_text() == f"mine {name}\n"
        assert path.stat().st_mode & 0o777 == (0o644 if name.endswith(".pub") else 0o600)
        assert path.stat().st_uid == 0


def test_an_image_without_sshd_gets_no_keys(tmp_path: Path) -> None:
    kept = keys(tmp_path / "kept", "mine")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    assert call("hostkeys_install", str(kept), str(root)).returncode == 0
    assert not (root / "etc" / "ssh").exists()
    assert call("hostkeys_install", str(tmp_path / "none"), str(root)).returncode == 0
