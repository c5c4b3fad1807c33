"""netboot/initramfs/cartable-restore: every restore writes the school server's relay key as the
authorized_keys of the image's connection user (its manifest's connection_user).

The folder function runs in dash (the restore environment's /bin/sh) on a tree shaped like a
restored root; tests/netboot/qemu-proof logs into the restored PC with that key from the school
server, and the images stage (tests/integration/images) with a key written by this function."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from conftest import restore_function

KEY = 'from="10.250.33.129" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDummyKeyForTests relay@0350001a-srv\n'


call = restore_function


def root_with(tmp_path: Path, passwd: str, homes: tuple[str, ...] = ("home/cartable",)) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(passwd)
    for home in homes:
        (root / home).mkdir(parents=True)
    (tmp_path / "key").write_text(KEY)
    return root


PASSWD = ("root:x:0:0:root:/root:/bin/bash\n"
          "cartable:x:1000:1000:Cartable relay (school server):/home/cartable:/bin/bash\n")


def test_the_key_goes_to_the_users_home_with_sshd_modes(tmp_path: Path) -> None:
    root = root_with(tmp_path, PASSWD)
    result = call("enrol_user", str(root), "cartable", str(tmp_path / "key"))
    assert result.returncode == 0, result.stderr
    ssh = root / "home" / "cartable" / ".ssh"
    assert (ssh / "authorized_keys").read_text() == KEY
    assert stat.S_IMODE(ssh.stat().st_mode) == 0o700
    assert stat.S_IMODE((ssh / "authorized_keys").stat().st_mode) == 0o600
    if os.geteuid() == 0:   # chown needs root: the restore environment runs as root
        assert (ssh.stat().st_uid, ssh.stat().st_gid) == (1000, 1000)
        assert (ssh / "authorized_keys").stat().st_uid == 1000


def test_a_previous_key_is_replaced(tmp_path: Path) -> None:
    """A key left by hand (or an older relay key) is replaced: the file is the relay's."""
    root = root_with(tmp_path, PASSWD)
    ssh = root / "home" / "cartable" / ".ssh"
    ssh.mkdir()
    (ssh / "authorized_keys").write_text("ssh-rsa AAAAold someone@else\n")
    assert call("enrol_user", str(root), "cartable", str(tmp_path / "key")).returncode == 0
    assert (ssh / "authorized_keys").read_text() == KEY


@pytest.mark.parametrize("passwd, homes", [
    ("root:x:0:0:root:/root:/bin/bash\n", ("home/cartable",)),                          # no account
    ("cartablex:x:1000:1000::/home/cartable:/bin/bash\n", ("home/cartable",)),           # a prefix only
    ("cartable:x:1000:1000::/home/cartable:/bin/bash\n", ()),                            # no home
    ("cartable:x:1000:1000::/:/bin/bash\n", ()),                                          # home is /
])
def test_no_account_with_a_home_writes_nothing(tmp_path: Path, passwd: str, homes: tuple[str, ...]) -> None:
    root = root_with(tmp_path, passwd, homes)
    assert call("enrol_user", str(root), "cartable", str(tmp_path / "key")).returncode == 1
    assert not list(root.rglob("authorized_keys"))


def test_a_home_that_is_a_link_is_refused(tmp_path: Path) -> None:
    """The image's home folder leading elsewhere (a link) is not followed out of the root."""
    root = root_with(tmp_path, PASSWD, ())
    (root / "home").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "home" / "cartable").symlink_to(outside)
    assert call("enrol_user", str(root), "cartable", str(tmp_path / "key")).returncode == 1
    assert not list(outside.iterdir())


@pytest.mark.parametrize("user", ["c.rtable", "cartable.*", "cart.ble"])
def test_the_user_name_is_matched_literally(tmp_path: Path, user: str) -> None:
    """A name with regex characters, or a prefix of an account, enrols no other account."""
    root = root_with(tmp_path, PASSWD)
    assert call("enrol_user", str(root), user, str(tmp_path / "key")).returncode == 1
    assert not list(root.rglob("authorized_keys"))


def test_a_home_that_climbs_out_of_the_root_is_refused(tmp_path: Path) -> None:
    """`..` in the image's home would lead outside the restored root: nothing written."""
    root = root_with(tmp_path, "cartable:x:1000:1000::/home/../../outside:/bin/bash\n", ())
    (root / "home").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    assert call("enrol_user", str(root), "cartable", str(tmp_path / "key")).returncode == 1
    assert not list(outside.iterdir())


def test_an_authorized_keys_link_is_replaced_not_written_through(tmp_path: Path) -> None:
    """An image holding authorized_keys as a link: the link is replaced by the relay's file and
    what it pointed to is left as it was."""
    root = root_with(tmp_path, PASSWD)
    ssh = root / "home" / "cartable" / ".ssh"
    ssh.mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("untouched\n")
    (ssh / "authorized_keys").symlink_to(target)
    assert call("enrol_user", str(root), "cartable", str(tmp_path / "key")).returncode == 0
    assert not (ssh / "authorized_keys").is_symlink()
    assert (ssh / "authorized_keys").read_text() == KEY
    assert target.read_text() == "untouched\n"


def test_the_last_passwd_line_without_a_newline_is_read(tmp_path: Path) -> None:
    """`read` returns 1 on a last line without a newline: the account there is still enrolled
    (else the restore would fail on every boot)."""
    root = root_with(tmp_path, PASSWD.rstrip("\n"))
    assert call("enrol_user", str(root), "cartable", str(tmp_path / "key")).returncode == 0
    assert (root / "home" / "cartable" / ".ssh" / "authorized_keys").read_text() == KEY
