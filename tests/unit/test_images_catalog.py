"""The image catalog: shape, packages against Debian's lists, resolution, versions; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cartable.cli import main
from cartable.errors import InputError
from cartable.images import archive
from cartable.images.catalog import check_packages, check_versions, read_catalog, request
from cartable.images.debver import catalog_version_key, compare

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "images" / "catalog.yml"
PACKAGES = REPO / "tests" / "fixtures" / "images" / "Packages.xz"


@pytest.fixture(scope="module")
def index() -> archive.Index:
    return archive.parse_index(archive.read_text(PACKAGES))


def _catalog(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "catalog.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("a, b", [
    ("1.0~rc1", "1.0"), ("1.0", "1.0-1"), ("1.0-1", "1.0-2"), ("2.4", "2.30"),
    ("2.36-9", "2.36-9+deb12u4"), ("2.0", "1:0.1"), ("1.0a", "1.0+b1"), ("7.0.0~", "7.0.0"),
])
def test_debian_version_order(a: str, b: str) -> None:
    assert compare(a, b) < 0 and compare(b, a) > 0 and compare(a, a) == 0


def test_catalog_version_numbers() -> None:
    assert catalog_version_key("2026.10") > catalog_version_key("2026.9")  # not text order
    assert catalog_version_key("2026.1-beta") is None


def test_relations_alternatives_versions_arch_qualifiers() -> None:
    deps = archive.parse_relations("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any")
    assert [[str(d) for d in group] for group in deps] == [
        ["libc6 (>= 2.34)"], ["debconf (>= 0.5)", "debconf-2.0"], ["python3"]]


def test_the_repository_catalog_installs(index: archive.Index) -> None:
    catalog = read_catalog(CATALOG)
    results = check_packages(catalog, index)
    assert set(results) == {"cycle1", "cycle2", "cycle3", "bureautique", "bcd", "essai"}
    # the levels nest: what cycle 1 installs, cycle 3 installs too
    assert set(results["cycle1"].installed) <= set(results["cycle3"].installed)
    assert {"gcompris-qt", "tuxmath", "kbruch", "libreoffice-calc"} <= set(results["cycle3"].installed)
    # every image gets what its settings need: French locale, keyboard, printing client
    assert {"locales", "keyboard-configuration", "cups-client"} <= set(request(catalog, catalog.images["essai"]))
    # a workstation (settings.workstation, the default): Debian's kernel (all its modules, for
    # any PC), networking, sshd and python3 for the relay; CI's image stays under 700 MB
    assert {"linux-image-amd64", "openssh-server", "python3", "ifupdown"} <= set(results["essai"].installed)
    assert results["essai"].installed_kb < 700 * 1024


def test_workstation_setting_adds_kernel_network_ssh(tmp_path: Path) -> None:
    """settings.workstation (default true) asks for the kernel, network and SSH, and the build
    hook writes fstab, the first Ethernet card by DHCP, and SSH host keys at first boot;
    `workstation: false` (a chroot) asks for none of it."""
    from cartable.images.build import settings_script
    catalog = read_catalog(CATALOG)
    assert catalog.settings.workstation is True
    asked = set(request(catalog, catalog.images["essai"]))
    assert {"linux-image-amd64", "systemd-sysv", "ifupdown", "isc-dhcp-client",
            "openssh-server", "python3"} <= asked
    hook = settings_script(catalog.settings)
    assert "LABEL=cartable-root / ext4" in hook
    assert "auto /en*/1=lan /eth*/1=lan" in hook and "iface lan inet dhcp" in hook
    assert 'rm -f "$root"/etc/ssh/ssh_host_*' in hook
    assert "ExecStart=/usr/bin/ssh-keygen -A" in hook and "ExecStartPost=/usr/bin/sync" in hook and "ssh.service.wants" in hook
    # the relay's login (settings.connection_user, default cartable): locked, sudo checked by
    # visudo at build, the password-change day fixed (reproducible /etc/shadow)
    assert catalog.settings.connection_user == "cartable" and "sudo" in asked
    assert "useradd --create-home --shell /bin/bash" in hook
    assert "chage --lastday 20454 cartable" in hook
    assert "'%s ALL=(ALL:ALL) NOPASSWD: ALL\\n' cartable > \"$root/etc/sudoers.d/cartable-connection-user\"" in hook
    assert 'visudo -c -q -f /etc/sudoers.d/cartable-connection-user' in hook
    nobody = read_catalog(_catalog(tmp_path, lambda d: d["settings"].update(connection_user="")))
    assert "useradd" not in settings_script(nobody.settings)
    chroot = read_catalog(_catalog(tmp_path, lambda d: d["settings"].update(workstation=False)))
    assert chroot.settings.workstation is False
    assert not {"linux-image-amd64", "openssh-server"} & set(request(chroot, chroot.images["essai"]))
    assert "fstab" not in settings_script(chroot.settings)


def test_workstation_hook_runs_on_a_tree(tmp_path: Path) -> None:
    """The hook's workstation part, run by sh on a tree that has the host keys a package
    postinst made: they are gone, the unit and its enabling link are there."""
    import subprocess
    from cartable.images.build import workstation_lines
    root = tmp_path / "root"
    (root / "etc" / "ssh").mkdir(parents=True)
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "ssh_host_rsa_key"):
        (root / "etc" / "ssh" / name).write_text("built-in key\n")
    (root / "etc" / "ssh" / "sshd_config").write_text("")
    hook = tmp_path / "hook.sh"
    hook.write_text("set -eu\nroot=\"$1\"\n" + "\n".join(workstation_lines()) + "\n")
    subprocess.run(["sh", str(hook), str(root)], check=True)
    assert sorted(p.name for p in (root / "etc" / "ssh").iterdir()) == ["sshd_config"]
    assert (root / "etc" / "fstab").read_text() == "LABEL=cartable-root / ext4 errors=remount-ro 0 1\n"
    lan = (root / "etc" / "network" / "interfaces.d" / "cartable-lan").read_text()
    assert "the school server's reservation" in lan and lan.endswith("iface lan inet dhcp\n")
    unit = root / "etc" / "systemd" / "system" / "cartable-ssh-hostkeys.service"
    assert "ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key" in unit.read_text()
    link = root / "etc" / "systemd" / "system" / "ssh.service.wants" / unit.name
    assert link.is_symlink() and str(link.readlink()) == "/" + str(unit.relative_to(root))


def test_virtual_packages_resolve_through_provides(index: archive.Index) -> None:
    result = archive.resolve(index, ["gcompris-qt"])
    assert not result.missing and not result.unresolved
    assert "gcompris-qt-data" in result.installed


def test_unknown_package_names_file_line_and_value(tmp_path: Path, index: archive.Index) -> None:
    path = _catalog(tmp_path, lambda d: d["sets"]["cycle2"].append("tuxmaths"))
    with pytest.raises(InputError) as err:
        check_packages(read_catalog(path), index)
    message = str(err.value)
    assert f"{path}:{_line_of(path, '- tuxmaths')}:" in message
    assert "unknown package 'tuxmaths'" in message and "packages.debian.org/bookworm/tuxmaths" in message


def test_a_set_that_does_not_install(tmp_path: Path, index: archive.Index) -> None:
    path = _catalog(tmp_path, lambda d: d["images"]["essai"].update(packages=["kstars"]))
    with pytest.raises(InputError) as err:
        check_packages(read_catalog(path), index, ["essai"])
    assert f"{path}:{_line_of(path, '- kstars')}:" in str(err.value)
    assert "kstars depends on 'kstars-data (= 5:3.6.2-2)'" in str(err.value)


@pytest.mark.parametrize("edit, needle, expected", [
    (lambda d: d["images"]["essai"].update(base="lourd"), "base: lourd",
     "image 'essai' names unknown base 'lourd'"),
    (lambda d: d["images"]["essai"].update(sets=["cycle4"]), "- cycle4",
     "unknown package set 'cycle4'"),
    (lambda d: d["images"]["essai"].update(version="v2"), "version: v2",
     "version 'v2' of image 'essai' is not numbers"),
    (lambda d: d["sets"]["essai"].append("Tux Paint"), "Tux Paint",
     "'Tux Paint' is not a Debian package name"),
    (lambda d: d["settings"].update(proxy="squid"), "proxy: squid", "'squid' is not one of"),
    (lambda d: d["settings"].update(workstation="yes"), "workstation: 'yes'",
     "expected true or false, got 'yes'"),
    (lambda d: d["debian"].update(pockets=["updates", "backports"]), "- backports",
     "'backports' is not one of: updates, security"),
    (lambda d: d["settings"].update(connection_user="root"), "connection_user: root",
     "'root' cannot be the connection user"),
    (lambda d: d["settings"].update(connection_user="Prof Dupont"), "connection_user: Prof Dupont",
     "a Linux login other than root"),
])
def test_shape_errors(tmp_path: Path, edit, needle: str, expected: str) -> None:
    path = _catalog(tmp_path, edit)
    with pytest.raises(InputError) as err:
        read_catalog(path)
    assert f"{path}:{_line_of(path, needle)}:" in str(err.value) and expected in str(err.value)


def test_pockets_choose_the_build_sources(tmp_path: Path) -> None:
    from cartable.images.build import mmdebstrap_command
    default = read_catalog(CATALOG)
    assert default.debian.pockets == ("updates", "security")
    release = read_catalog(_catalog(tmp_path, lambda d: d["debian"].update(pockets=[])))

    def sources(catalog) -> list[str]:
        cmd = mmdebstrap_command(catalog, catalog.image("essai"), tmp_path, tmp_path, tmp_path)
        return [a for a in cmd if a.startswith("deb ")]
    assert sources(default) == ["deb http://deb.debian.org/debian bookworm main",
                                "deb http://deb.debian.org/debian bookworm-updates main",
                                "deb http://deb.debian.org/debian-security bookworm-security main"]
    assert sources(release) == ["deb http://deb.debian.org/debian bookworm main"]


def test_version_going_backwards(tmp_path: Path) -> None:
    catalog = read_catalog(CATALOG)
    check_versions(catalog, {"essai": "2025.3", "cycle1": "2026.1"})  # older or equal: fine
    with pytest.raises(InputError) as err:
        check_versions(catalog, {"essai": "2026.10"})
    lines = CATALOG.read_text().splitlines()
    line = max(i for i, text in enumerate(lines, 1) if 'version: "2026.1"' in text)  # essai is last
    assert f"{CATALOG}:{line}: [images.essai.version] version 2026.1 of image 'essai' goes " \
        "backwards: 2026.10 is already built" in str(err.value)


def test_cli_check_ok_and_errors_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["image", "check", str(CATALOG), "--packages", str(PACKAGES)]) == 0
    assert "essai 2026.1: " in capsys.readouterr().out
    store = tmp_path / "store"
    (store / "essai" / "2026.3").mkdir(parents=True)
    (store / "essai" / "2026.3" / "manifest.json").write_text(json.dumps(
        {"format": 1, "image": "essai", "version": "2026.3", "packages": {}}))
    assert main(["image", "check", str(CATALOG), "--packages", str(PACKAGES),
                 "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "goes backwards: 2026.3 is already built" in err and "Traceback" not in err
    assert main(["image", "check", str(tmp_path), "--packages", str(PACKAGES)]) == 2
    assert "this is a folder" in capsys.readouterr().err


def test_cli_build_refuses_unknown_image_before_anything(tmp_path: Path, capsys) -> None:
    out = tmp_path / "store"
    assert main(["image", "build", str(CATALOG), "cycle9", "--out", str(out),
                 "--packages", str(PACKAGES)]) == 2
    assert "unknown image 'cycle9'" in capsys.readouterr().err and not out.exists()


def test_fixture_is_the_trimmed_real_index() -> None:
    """trim() keeps the named stanzas and the resolver's fields: trimming the fixture again
    with every name it holds gives the same packages."""
    text = archive.read_text(PACKAGES)
    names = set(archive.parse_index(text).packages)
    again = archive.parse_index(archive.trim(text, names))
    assert set(again.packages) == names and again.packages["libc6"].version.startswith("2.36-9")


def test_normalise_gives_one_tree_whoever_made_apt_s_partial_folder(tmp_path: Path) -> None:
    """Two builds of one catalog differed only by the owner of apt's partial folders (_apt in
    one run, root in the other): normalise recreates them (and var/log) with fixed modes,
    whatever the builder's umask, so both give the same tree."""
    import os
    from cartable.images.build import EPOCH, normalise
    trees = []
    for uid in (0, 42):
        root = tmp_path / f"root{uid}"
        partial = root / "var" / "lib" / "apt" / "lists" / "partial"
        partial.mkdir(parents=True)
        archives = root / "var" / "cache" / "apt" / "archives" / "partial"   # the same, seen in CI
        archives.mkdir(parents=True)
        (root / "etc").mkdir()
        (root / "var" / "log").mkdir()
        (root / "var" / "log" / "dpkg.log").write_text("a build's log\n")
        for folder in (partial, archives):
            if os.geteuid() == 0:
                os.chown(folder, uid, 0)
            os.chmod(folder, 0o755 if uid else 0o700)
        old_umask = os.umask(0o077 if uid else 0o022)   # the builder's umask does not matter
        try:
            normalise(root)
        finally:
            os.umask(old_umask)
        st, st2 = partial.stat(), archives.stat()
        assert (st2.st_uid, st2.st_mode & 0o777, st2.st_mtime) == (st.st_uid, st.st_mode & 0o777, st.st_mtime)
        trees.append((st.st_uid, oct(st.st_mode & 0o777), st.st_mtime == EPOCH,
                      oct((root / "var" / "log").stat().st_mode & 0o777),
                      list((root / "var" / "log").iterdir()),
                      (root / "etc" / "hostname").read_text()))
    assert trees[0] == trees[1] == (os.geteuid(), "0o700", True, "0o755", [], "cartable\n")
