#!/usr/bin/env bash
# Build the root filesystem of the lab's base image and write it as a tar archive.
#   rootfs.sh OUTPUT.tar MIRROR_URL [SECURITY_MIRROR_URL]
# MIRROR_URL is the host's own Debian mirror (tests/lab/lab.py reads it from /etc/apt).
set -euo pipefail
out=$1 mirror=$2 security=${3:-}
suite=bookworm
here=$(dirname "$(readlink -f "$0")")
root=$(mktemp -d /var/tmp/cartable-lab-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT

include=$(grep -v '^#' "$here/packages" | grep -v '^$' | paste -sd, -)
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror"

sources="deb $mirror $suite main
deb $mirror $suite-updates main"
if [ -n "$security" ]; then
    sources="$sources
deb $security $suite-security main"
fi
cp -a "$here/overlay/." "$root/"
chown -R root:root "$root/etc/systemd/system" "$root/etc/sudoers.d" "$root/etc/ssh" "$root/etc/dpkg" "$root/etc/apt"
CARTABLE_APT_SOURCES=$sources chroot "$root" /bin/sh -s < "$here/customize.sh"
# Nothing of the building machine stays in the image.
: > "$root/etc/resolv.conf"
printf 'localhost\n' > "$root/etc/hostname"
tar --numeric-owner --xattrs -C "$root" -cf "$out" .
