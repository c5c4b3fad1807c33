#!/bin/sh
# Runs inside the debootstrapped tree (chroot) after the overlay files were copied in.
# Makes a Debian 12 system that boots with systemd as PID 1 in a container.
set -eu

# Apt sources: the host's own mirror (passed by rootfs.sh), all of bookworm's suites.
printf '%s\n' "$CARTABLE_APT_SOURCES" > /etc/apt/sources.list

# The lab's Ansible user; its authorized key is written at lab up (tests/lab/lab.py).
useradd --create-home --shell /bin/bash --user-group cartable
install -d -m 0700 -o cartable -g cartable /home/cartable/.ssh
chmod 0440 /etc/sudoers.d/cartable

# SSH host keys: none in the image, each container makes its own at first boot.
rm -f /etc/ssh/ssh_host_*
systemctl enable cartable-ssh-hostkeys.service ssh.service

# One machine id per container: systemd makes it at boot when the file is empty.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id

# Units that make no sense in a container, or would take the dpkg lock in the middle of a
# converge (apt's daily timers).
systemctl mask \
    apt-daily.timer apt-daily-upgrade.timer \
    console-getty.service getty@tty1.service getty.target \
    systemd-remount-fs.service systemd-firstboot.service \
    dev-hugepages.mount sys-fs-fuse-connections.mount sys-kernel-config.mount \
    sys-kernel-debug.mount sys-kernel-tracing.mount

# No documentation (see /etc/dpkg/dpkg.cfg.d/cartable-lab-slim) and no apt cache.
find /usr/share/doc -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
find /usr/share/doc -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/lintian/*
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
apt-get clean
# Empty package lists must not look fresh to `apt: cache_valid_time`: date them 1970.
rm -rf /var/lib/apt/lists/* /var/lib/apt/periodic/update-success-stamp
install -d /var/lib/apt/lists/partial
touch -d @0 /var/lib/apt/lists /var/lib/apt/lists/partial
rm -f /var/cache/ldconfig/aux-cache /var/log/*.log /var/log/apt/* 2>/dev/null || true
