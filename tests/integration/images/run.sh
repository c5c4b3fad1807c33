#!/usr/bin/env bash
# CI stage: the catalog against Debian's real lists; one small real image build (root,
# mmdebstrap, casync, Debian's mirror), twice; the image booted by QEMU (TCG) as a PC, managed
# by Ansible through the relay's way in (its key as the connection user, sudo).
# Packages are cached under .cache/images (a warm run takes ~2 min).
set -euo pipefail
cd "$(dirname "$0")/../../.."
missing=()
for tool in mmdebstrap casync qemu-system-x86_64 mkfs.ext4 ssh; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
    # the netboot proof (started beside the first stages) may be running apt: wait for dpkg's
    # lock (the timeout), retry `update` (its lists lock has none)
    for try in 1 2 3 4 5 6; do
        apt-get -o DPkg::Lock::Timeout=600 update -qq && break
        [ "$try" -lt 6 ] || exit 1
        echo "images: apt-get update failed (another apt running?); again in 20 s"; sleep 20
    done
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends mmdebstrap casync qemu-system-x86 e2fsprogs openssh-client
fi
export CARTABLE_CACHE="$PWD/.cache"
# The catalog against the mirror's signed lists (every image: packages exist, sets install).
.venv/bin/cartable image check images/catalog.yml
exec .venv/bin/pytest -q -s -p no:cacheprovider tests/integration/images/test_build.py
