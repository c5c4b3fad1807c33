#!/usr/bin/env bash
# Real-CUPS test of library/cups_printer.py.
#
#   sudo bash tests/integration/cups_printer/run.sh      (from any directory; needs root, Debian/Ubuntu)
#
# Installs what it needs (cups, cups-client, cups-ipp-utils, dbus-daemon) when missing, then runs everything in
# throwaway Linux namespaces (mount + network + PID): a private loopback, tmpfs over /run, /etc/cups and CUPS' spool,
# cache and log directories, so the host's CUPS (if any) is neither seen nor touched and nothing leaves loopback.
# Inside: cupsd with the packaged configuration (localhost:631 and /run/cups/cups.sock, as on a school server),
# a virtual IPP Everywhere printer (ippeveprinter on localhost:8631) and the playbooks of this directory:
#   1. converge.yml            -> changed
#   2. converge.yml again      -> changed=0
#   3. converge.yml --check --diff -> changed=0
#   4. scenarios.yml           -> update one attribute, check mode, enable/disable, options, failures, absent
#   5. lp -d cartable-laser /etc/hostname -> the job's file appears in ippeveprinter's spool directory
# Fails (never skips) when something cannot be set up. Exit status 0 only if every step passed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)

fail() { echo "FAIL: $*" >&2; exit 1; }

if [[ -z "${CARTABLE_CUPS_IT_INSIDE:-}" ]]; then
    [[ $(id -u) -eq 0 ]] || fail "run as root: the test creates namespaces and starts cupsd"
    missing=()
    for tool in cupsd:cups-daemon lpadmin:cups-client ippeveprinter:cups-ipp-utils ipptool:cups-ipp-utils \
                dbus-daemon:dbus-daemon unshare:util-linux ip:iproute2 /usr/lib/cups/filter/texttopdf:cups-filters; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || [[ -x ${tool%%:*} ]] || missing+=("${tool#*:}")
    done
    if ((${#missing[@]})); then
        echo "== installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends cups cups-client cups-ipp-utils cups-filters dbus-daemon \
            util-linux iproute2
    fi
    [[ -x $repo/.venv/bin/ansible-playbook ]] || fail "no $repo/.venv: run 'make setup' first"
    export CARTABLE_CUPS_IT_INSIDE=1
    exec unshare --mount --net --pid --fork --mount-proc --propagation private -- bash "${BASH_SOURCE[0]}" "$@"
fi

# ---- inside the namespaces: PID 1 of a private PID namespace; everything started here dies with us ----------------
start=$SECONDS
work=$(mktemp -d /tmp/cartable-cups-it.XXXXXX)
trap 'rc=$?; [[ $rc -ne 0 ]] && { echo "--- cupsd error_log (tail)"; tail -n 40 /var/log/cups/error_log 2>/dev/null; \
      echo "--- ippeveprinter (tail)"; tail -n 20 "$work/ippeveprinter.log" 2>/dev/null; }; rm -rf "$work"; exit $rc' EXIT

ip link set lo up

# Private copies of CUPS' directories, from the packaged configuration, without any queue of the host.
cp -a /etc/cups "$work/etc-cups"
rm -f "$work"/etc-cups/{printers,classes,subscriptions}.conf* "$work"/etc-cups/lpoptions "$work"/etc-cups/ppd/*
mount --bind "$work/etc-cups" /etc/cups
for dir in /run /var/spool/cups /var/cache/cups /var/log/cups; do
    mkdir -p "$dir" && mount -t tmpfs -o mode=0755 tmpfs "$dir"
done
mkdir -p /run/cups /var/spool/cups/tmp
chgrp lp /var/spool/cups /var/spool/cups/tmp /var/cache/cups && chmod 0710 /var/spool/cups && chmod 1770 /var/spool/cups/tmp
sed -i -e 's/^Browsing .*/Browsing No/' -e 's/^BrowseLocalProtocols .*/BrowseLocalProtocols none/' \
       -e 's/^LogLevel .*/LogLevel info/' -e '/^IdleExitTimeout/d' /etc/cups/cupsd.conf
cupsd -t >/dev/null || fail "cupsd -t rejects the configuration"

cupsd -f >"$work/cupsd.log" 2>&1 &
for _ in $(seq 50); do lpstat -r 2>/dev/null | grep -q "scheduler is running" && break; sleep 0.2; done
lpstat -r | grep -q "scheduler is running" || { cat "$work/cupsd.log"; fail "cupsd did not start"; }

# ippeveprinter needs a D-Bus system bus for Avahi even with DNS-SD off: a private one, for it alone.
dbus-daemon --session --nofork --address="unix:path=$work/dbus.sock" >"$work/dbus.log" 2>&1 &
# ippeveprinter gives up at once ("Unable to initialize DNS-SD") if the bus is not there yet.
for _ in $(seq 100); do [ -S "$work/dbus.sock" ] && break; sleep 0.1; done
[ -S "$work/dbus.sock" ] || { cat "$work/dbus.log"; fail "the private D-Bus did not start"; }
spool="$work/ippeveprinter-spool"
mkdir -p "$spool"
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/dbus.sock" ippeveprinter -p 8631 -n localhost -r off -k -d "$spool" \
    -f application/pdf,image/jpeg,image/pwg-raster,image/urf -M Cartable -m 'Virtual Laser' 'Cartable test' \
    >"$work/ippeveprinter.log" 2>&1 &
for _ in $(seq 50); do
    ipptool -q ipp://localhost:8631/ipp/print get-printer-attributes.test 2>/dev/null && break; sleep 0.2
done
ipptool -q ipp://localhost:8631/ipp/print get-printer-attributes.test || fail "ippeveprinter did not start"
echo "== CUPS $(dpkg-query -W -f='${Version}' cups-daemon 2>/dev/null) and ippeveprinter up after $((SECONDS - start)) s"

cd "$repo"
export ANSIBLE_CONFIG="$repo/ansible.cfg" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
playbook() {  # playbook NAME [ansible-playbook args...]; prints the output, leaves the recap in $recap
    local out
    out=$("$repo/.venv/bin/ansible-playbook" -i localhost, -c local -e ansible_python_interpreter=/usr/bin/python3 \
          "$here/$@" 2>&1) || { echo "$out"; fail "ansible-playbook $* failed"; }
    echo "$out"
    recap=$(grep -E '^localhost +:' <<<"$out")
}

echo "== 1. converge"
playbook converge.yml --diff
grep -Eq 'changed=[1-9]' <<<"$recap" || fail "first converge changed nothing"
echo "== 2. converge again: idempotence"
playbook converge.yml
grep -q 'changed=0 ' <<<"$recap" || fail "second converge is not idempotent: $recap"
echo "== 3. converge --check --diff on the converged server"
playbook converge.yml --check --diff
grep -q 'changed=0 ' <<<"$recap" || fail "check mode reports changes on a converged server: $recap"
echo "== 4. scenarios"
playbook scenarios.yml

echo "== 5. a job through the default queue reaches the printer"
lpstat -d
before=$(find "$spool" -type f | wc -l)
lp -d cartable-laser /etc/hostname
for _ in $(seq 100); do
    (( $(find "$spool" -type f | wc -l) > before )) && break; sleep 0.2
done
(( $(find "$spool" -type f | wc -l) > before )) || { lpstat -W all -o; fail "no job file in $spool"; }
find "$spool" -type f -exec ls -l {} +
for _ in $(seq 150); do  # ippeveprinter takes a few seconds to "print"
    lpstat -W completed -o cartable-laser | grep -q cartable-laser && break; sleep 0.2
done
lpstat -W completed -o cartable-laser | grep cartable-laser || { lpstat -o; fail "the job is not completed in CUPS"; }

echo "== cups_printer integration: all steps passed in $((SECONDS - start)) s"
echo "5 passed, 0 failed"
