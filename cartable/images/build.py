"""Build one image version: mmdebstrap -> normalised tree -> casync index + manifest in the store.

Reproducible: the same catalog entry and the same package versions give the same tree, so the
same casync digest (timestamps clamped to a fixed epoch, host files and logs replaced, the
package cache outside the tree). A rebuild with nothing changed adds no chunk to the store.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from cartable.errors import InputError, Problem
from cartable.images import store as st
from cartable.images.catalog import Catalog, Image, Settings, check_versions, request
from cartable.images.debver import catalog_version_key

EPOCH = 1767225600          # 2026-01-01T00:00:00Z: every newer timestamp is clamped to it
CHUNK_SIZE = "16384:65536:262144"   # casync's default; the anchor measured it best for deltas
FEATURES = ("--with=unix", "--with=xattrs", "--with=fcaps", "--without=user-names")
# Files that record the build (host, time, run), not the image: emptied or fixed.
_FIXED = {"etc/hostname": "cartable\n", "etc/resolv.conf": "", "etc/machine-id": "",
          "etc/hosts": "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"}
_REMOVED = ("var/log", "var/cache/ldconfig/aux-cache", "var/cache/fontconfig",
            "var/lib/dbus/machine-id", "var/cache/debconf/config.dat-old",
            "var/cache/debconf/templates.dat-old", "var/lib/dpkg/status-old",
            "var/lib/dpkg/diversions-old", "var/lib/dpkg/statoverride-old",
            "var/cache/apt/pkgcache.bin", "var/cache/apt/srcpkgcache.bin",
            # owned by _apt or by root depending on the build's run (seen 2026-12-03: one
            # catalog, two digests); apt, run as root, sets its owner and mode again
            "var/lib/apt/lists/partial", "var/cache/apt/archives/partial")

Log = Callable[[str], None]

# settings.workstation: the file system netboot's restore labels and mounts as root
ROOT_LABEL = "cartable-root"
# The first Ethernet card by DHCP, whatever its name (ifupdown's patterns: ens3, enp0s31f6,
# eno1, eth0 all map to the logical interface `lan`). `auto`, raised at boot by
# networking.service: ifupdown's hotplug helper looks the kernel's name up without the
# pattern's mapping (`ifquery --allow hotplug -l ens3` fails), so `allow-hotplug` never fires.
LAN_INTERFACES = """\
# Written by cartable image build (settings.workstation): the first Ethernet card, by DHCP
# (the school server's reservation gives this PC its address and name).
auto /en*/1=lan /eth*/1=lan
iface lan inet dhcp
"""
# Host keys are not in the image (every PC would share them): generated at the first boot,
# kept across a `sync` by netboot's restore (the relay's known_hosts trusts the first key).
HOSTKEYS_UNIT = """\
# Written by cartable image build (settings.workstation)
[Unit]
Description=Generate this workstation's own SSH host keys (first boot after a new restore)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
# on the disk before sshd shows them: a PC switched off soon after its first boot would
# otherwise come back with new keys, and the relay that saw the first ones would refuse it
ExecStartPost=/usr/bin/sync

[Install]
WantedBy=ssh.service
"""


# settings.connection_user: its sudo rule (sudoers.d skips names with a dot)
SUDOERS_FILE = "cartable-connection-user"
USER_COMMENT = "Cartable relay (school server)"


def settings_script(settings: Settings) -> str:
    """The customize hook applying the catalog's settings to the tree ($1)."""
    lines = [
        "set -eu", 'root="$1"',
        f"echo {shlex.quote(settings.locale + ' ' + settings.locale.split('.')[-1])} "
        '> "$root/etc/locale.gen"',
        'chroot "$root" locale-gen >/dev/null',
        f"echo LANG={shlex.quote(settings.locale)} > \"$root/etc/default/locale\"",
        "printf 'XKBMODEL=\"pc105\"\\nXKBLAYOUT=\"%s\"\\nXKBVARIANT=\"\"\\nXKBOPTIONS=\"\"\\n"
        f"BACKSPACE=\"guess\"\\n' {shlex.quote(settings.keyboard)} > \"$root/etc/default/keyboard\"",
        f"ln -sfn /usr/share/zoneinfo/{shlex.quote(settings.timezone)} \"$root/etc/localtime\"",
        f"echo {shlex.quote(settings.timezone)} > \"$root/etc/timezone\"",
    ]
    if settings.printers == "server":  # print_client's rule: no local scheduler
        lines.append('mkdir -p "$root/etc/systemd/system"; for u in cups.service cups.socket '
                     'cups.path cups-browsed.service; do '
                     'ln -sfn /dev/null "$root/etc/systemd/system/$u"; done')
    if settings.proxy == "wpad":
        lines.append('mkdir -p "$root/etc/firefox/policies"; printf \'%s\\n\' '
                     '\'{"policies": {"Proxy": {"Mode": "autoConfig", '
                     '"AutoConfigURL": "http://wpad/wpad.dat", "Locked": true}}}\' '
                     '> "$root/etc/firefox/policies/policies.json"')
    if settings.workstation:
        lines += workstation_lines(settings.connection_user)
    return "\n".join(lines) + "\n"


def workstation_lines(connection_user: str = "") -> list[str]:
    """Hook lines for settings.workstation: fstab, the LAN card, SSH host keys at first boot,
    the connection user (locked, sudo without password; its key comes with each restore)."""
    unit = "etc/systemd/system/cartable-ssh-hostkeys.service"
    return [*connection_user_lines(connection_user),
        f"printf 'LABEL={ROOT_LABEL} / ext4 errors=remount-ro 0 1\\n' > \"$root/etc/fstab\"",
        'mkdir -p "$root/etc/network/interfaces.d" "$root/etc/systemd/system/ssh.service.wants"',
        f"printf '%s' {shlex.quote(LAN_INTERFACES)} > \"$root/etc/network/interfaces.d/cartable-lan\"",
        f"printf '%s' {shlex.quote(HOSTKEYS_UNIT)} > \"$root/{unit}\"",
        'ln -sfn /etc/systemd/system/cartable-ssh-hostkeys.service '
        '"$root/etc/systemd/system/ssh.service.wants/cartable-ssh-hostkeys.service"',
        'rm -f "$root"/etc/ssh/ssh_host_*',
    ]


def connection_user_lines(user: str) -> list[str]:
    """Hook lines creating the relay's login: no password (locked), sudo without one (checked by
    visudo), its password-change day fixed at EPOCH (useradd honours SOURCE_DATE_EPOCH, which
    the build sets; chage is a guard for a useradd that does not)."""
    if not user:
        return []
    name, sudoers = shlex.quote(user), f"etc/sudoers.d/{SUDOERS_FILE}"
    return [
        f'chroot "$root" useradd --create-home --shell /bin/bash --comment {shlex.quote(USER_COMMENT)} {name}',
        f'chroot "$root" chage --lastday {EPOCH // 86400} {name}',
        f"printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\\n' {name} > \"$root/{sudoers}\"",
        f'chmod 0440 "$root/{sudoers}"',
        f'chroot "$root" visudo -c -q -f /{sudoers}',
    ]


def mmdebstrap_command(catalog: Catalog, image: Image, root: Path, cache: Path,
                       hook: Path) -> list[str]:
    deb = catalog.debian
    components = " ".join(deb.components)
    sources = [f"deb {deb.mirror} {deb.suite} {components}"]
    if "updates" in deb.pockets:
        sources.append(f"deb {deb.mirror} {deb.suite}-updates {components}")
    if deb.security_mirror and "security" in deb.pockets:
        sources.append(f"deb {deb.security_mirror} {deb.suite}-security {components}")
    return [
        "mmdebstrap", "--mode=root", f"--variant={deb.variant}", f"--architectures={deb.architecture}",
        "--include=" + ",".join(request(catalog, image)),
        '--aptopt=Acquire::Languages "none"',
        "--skip=download/empty", "--skip=essential/unlink",
        '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
        f"--setup-hook=sync-in {shlex.quote(str(cache))} /var/cache/apt/archives/",
        f"--customize-hook=sync-out /var/cache/apt/archives {shlex.quote(str(cache))}",
        f'--customize-hook=sh {shlex.quote(str(hook))} "$1"',
        deb.suite, str(root), *sources,
    ]


def normalise(root: Path, epoch: int = EPOCH) -> int:
    """Replace what records the build, clamp timestamps; returns the files clamped."""
    for rel in _REMOVED:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            path.mkdir()
            # a fixed mode, not the builder's umask (apt's partial folder is private)
            os.chmod(path, 0o700 if path.name == "partial" else 0o755)
        elif path.exists() or path.is_symlink():
            path.unlink()
    for rel, content in _FIXED.items():
        path = root / rel
        if path.is_symlink():
            path.unlink()
        path.write_text(content, encoding="utf-8")
    clamped = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.lstat(path).st_mtime > epoch:
                os.utime(path, (epoch, epoch), follow_symlinks=False)
                clamped += 1
    for dirpath in [str(root)]:
        os.utime(dirpath, (epoch, epoch))
    return clamped


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        tail = "\n      ".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise InputError(Problem(what, f"{cmd[0]} failed (exit {result.returncode}):\n      {tail}",
                                 hint="apt's message above names the package; "
                                 "fix the catalog or retry if the mirror was unreachable"))
    return result.stdout


def installed_packages(root: Path) -> dict[str, str]:
    out = _run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W",
                "-f=${db:Status-Abbrev}\t${Package}\t${Version}\n"], "dpkg-query")
    pkgs = {}
    for line in out.splitlines():
        status, name, version = line.split("\t")
        if status.startswith("ii"):
            pkgs[name] = version
    return dict(sorted(pkgs.items()))


def tree_size(root: Path) -> tuple[int, int]:
    size = files = 0
    for dirpath, _dirs, filenames in os.walk(root):
        for name in filenames:
            size += os.lstat(os.path.join(dirpath, name)).st_size
            files += 1
    return size, files


def bootable(root: Path) -> bool:
    """Whether the tree boots on a workstation: Debian's /vmlinuz and /initrd.img (symlinks into
    /boot, relative) lead to files. The restore refuses a version whose manifest says false."""
    def exists(name: str) -> bool:
        path = root / name
        if path.is_symlink():
            target = os.readlink(path)
            path = (root / target.lstrip("/")) if target.startswith("/") else path.parent / target
        return path.is_file()
    return exists("vmlinuz") and exists("initrd.img")


def need_tools() -> None:
    missing = [t for t in ("mmdebstrap", "casync", "dpkg-query") if not shutil.which(t)]
    if missing:
        raise InputError(Problem("PATH", f"missing: {', '.join(missing)}",
                                 hint="apt-get install mmdebstrap casync (as root)"))
    if os.geteuid() != 0:
        raise InputError(Problem("cartable image build", "needs root (mmdebstrap --mode=root)",
                                 hint="run it as root on the build host"))


def build(catalog: Catalog, name: str, out: Path, cache: Path, log: Log = print,
          point_release: bool = False) -> dict[str, Any]:
    """Build `name` into the store `out`; returns the manifest. Nothing published on failure."""
    image = catalog.image(name)
    previous = st.latest_versions(out) if out.exists() else {}
    check_versions(catalog, {name: previous[name]} if name in previous else {})
    need_tools()
    out.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    work = out / f".build-{name}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        return _build(catalog, image, out, cache.resolve(), work, log, point_release)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build(catalog: Catalog, image: Image, out: Path, cache: Path, work: Path,
           log: Log, point_release: bool) -> dict[str, Any]:
    timings = {}
    hook = work / "settings.sh"
    hook.write_text(settings_script(catalog.settings), encoding="utf-8")
    root = work / "root"
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH), "LC_ALL": "C.UTF-8"}
    started = time.monotonic()
    log(f"mmdebstrap {image.name} {image.version} ({len(request(catalog, image))} packages asked)")
    _run(mmdebstrap_command(catalog, image, root, cache, hook), f"build of {image.name}", env)
    timings["mmdebstrap_s"] = round(time.monotonic() - started, 1)
    clamped = normalise(root)
    packages = installed_packages(root)
    size, files = tree_size(root)
    started = time.monotonic()
    index = work / st.INDEX
    store = out / st.CHUNKS
    _run(["casync", "make", f"--store={store}", f"--chunk-size={CHUNK_SIZE}",
          "--compression=zstd", *FEATURES, str(index), str(root)], "casync make")
    digest = _run(["casync", "digest", *FEATURES, str(root)], "casync digest").strip()
    timings["casync_s"] = round(time.monotonic() - started, 1)
    chunks = st.read_index(index)
    manifest = {
        "format": st.FORMAT, "image": image.name, "title": image.title,
        "version": image.version, "suite": catalog.debian.suite,
        "pockets": list(catalog.debian.pockets),
        "architecture": catalog.debian.architecture, "epoch": EPOCH,
        "requested": request(catalog, image), "packages": packages,
        "size": size, "files": files, "digest": digest, "bootable": bootable(root),
        "connection_user": catalog.settings.connection_user if catalog.settings.workstation else "",
        "index": st.INDEX, "index_sha256": hashlib.sha256(index.read_bytes()).hexdigest(),
        "store": f"../../{st.CHUNKS}", "chunk_size": CHUNK_SIZE, "features": list(FEATURES),
        "chunks": len({c.id for c in chunks}),
        "chunk_bytes": st.chunk_bytes(out, {c.id for c in chunks}),
    }
    log(f"{len(packages)} packages, {size / 1e6:.0f} MB in {files} files ({clamped} timestamps "
        f"clamped), digest {digest[:16]}…, {timings}")
    return _publish(out, image, index, manifest, log, point_release)


def point_releases(out: Path, image: str, version: str) -> list[str]:
    """The published versions of `image` that are `version` or its point releases (V.n)."""
    key = catalog_version_key(version) or ()
    found = [p.parent.name for p in (out / image).glob(f"*/{st.MANIFEST}")
             if (catalog_version_key(p.parent.name) or ())[:len(key)] == key]
    return sorted(found, key=lambda v: catalog_version_key(v) or ())


def _publish(out: Path, image: Image, index: Path, manifest: dict[str, Any],
             log: Log, point_release: bool = False) -> dict[str, Any]:
    published = point_releases(out, image.name, image.version)
    if published:
        old = st.read_manifest(st.version_dir(out, image.name, published[-1]))
        if old["digest"] == manifest["digest"]:
            log(f"{image.name} {published[-1]}: unchanged (same digest), nothing published")
            return old
        if not point_release:
            raise InputError(Problem(str(st.version_dir(out, image.name, published[-1])),
                                     f"version {published[-1]} of '{image.name}' is already "
                                     "published with other content",
                                     hint="raise the image's version in the catalog, or build "
                                     "a point release (--point-release: package updates)"))
        manifest["version"] = f"{image.version}.{len(published)}"
        while (st.version_dir(out, image.name, manifest["version"])).exists():
            manifest["version"] += ".1"
        log(f"package updates: point release {manifest['version']}")
    target = st.version_dir(out, image.name, manifest["version"])
    staging = index.parent / "publish"
    staging.mkdir()
    index.rename(staging / st.INDEX)
    st.write_manifest(staging / st.MANIFEST, manifest)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    latest = target.parent / "latest"
    current = latest.read_text(encoding="utf-8").strip() if latest.exists() else ""
    if not current or (catalog_version_key(manifest["version"]) or ()) > \
            (catalog_version_key(current) or ()):
        tmp = latest.with_suffix(".part")
        tmp.write_text(manifest["version"] + "\n", encoding="utf-8")
        tmp.replace(latest)
    log(f"published {target}")
    return manifest
