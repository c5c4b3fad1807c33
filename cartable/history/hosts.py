"""Who is behind a client address: the inventory's hosts file and dnsmasq's leases.

hosts.json (written by the role from the inventory):
    [{"name": "0350607v-sdi03", "mac": "52:54:00:aa:bb:01", "addresses": ["10.35.1.21"]}]
dnsmasq.leases (one lease a line): `<expiry> <mac> <ip> <name|*> <client-id|*>`

Both are re-read when their identity (inode, size, mtime) changes, at most once per
`interval` seconds. A file that is missing or damaged counts as empty (the logger never
stops for it) and the reason is returned for the logger to report once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cartable.history.formats import NONE, normalize_mac

Stamp = tuple[int, int, int, int] | None


def _stamp(path: Path) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def parse_hosts(text: str) -> tuple[dict[str, tuple[str, str]], dict[str, str], list[str]]:
    """hosts.json -> ({ip: (name, mac)}, {mac: name}, problems)."""
    problems: list[str] = []
    by_ip: dict[str, tuple[str, str]] = {}
    by_mac: dict[str, str] = {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        return by_ip, by_mac, [f"not JSON ({exc})"]
    if not isinstance(data, list):
        return by_ip, by_mac, ["expected a list of {name, mac, addresses}"]
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(f"entry {index}: expected an object with a 'name'")
            continue
        name = item["name"]
        mac = normalize_mac(item["mac"]) if isinstance(item.get("mac"), str) else NONE
        if mac != NONE:
            by_mac[mac] = name
        addresses = item.get("addresses") or []
        if not isinstance(addresses, list):
            problems.append(f"entry {index} ({name}): 'addresses' must be a list")
            continue
        for address in addresses:
            if isinstance(address, str):
                by_ip[address] = (name, mac)
    return by_ip, by_mac, problems


def parse_leases(text: str) -> dict[str, tuple[str, str]]:
    """dnsmasq.leases -> {ip: (mac, name)}; lines that are not leases are skipped."""
    leases: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[0] == "duid":
            continue
        mac = normalize_mac(parts[1])
        name = parts[3] if parts[3] != "*" else NONE
        leases[parts[2]] = (mac, name)
    return leases


@dataclass
class Watched:
    path: Path | None
    stamp: Stamp = None
    text: str = ""


@dataclass
class Resolver:
    """(ip, squid's %>eui) -> (mac, name), the two files reloaded when they change."""

    hosts_path: Path | None
    leases_path: Path | None
    interval: float = 1.0
    by_ip: dict[str, tuple[str, str]] = field(default_factory=dict)
    by_mac: dict[str, str] = field(default_factory=dict)
    leases: dict[str, tuple[str, str]] = field(default_factory=dict)
    checked: float = float("-inf")
    _hosts: Watched = field(init=False)
    _leases: Watched = field(init=False)

    def __post_init__(self) -> None:
        self._hosts = Watched(self.hosts_path)
        self._leases = Watched(self.leases_path)

    def refresh(self, now: float, force: bool = False) -> list[str]:
        """Reload what changed; return problems to report (empty when all is well)."""
        if not force and now - self.checked < self.interval:
            return []
        self.checked = now
        problems = [f"{w.path}: not found (no names from it until it appears)"
                    for w in (self._hosts, self._leases) if w.path and _stamp(w.path) is None]
        if _reload(self._hosts):
            self.by_ip, self.by_mac, bad = parse_hosts(self._hosts.text or "[]")
            problems += [f"{self.hosts_path}: {p}" for p in bad]
        if _reload(self._leases):
            self.leases = parse_leases(self._leases.text)
        return problems

    @property
    def leases_text(self) -> str:
        return self._leases.text

    def lookup(self, ip: str, eui: str) -> tuple[str, str]:
        """MAC: squid's %>eui, else the lease's, else the inventory's. Name: the inventory's
        (by MAC, then by address), else the name the client gave dnsmasq, else `-`."""
        mac = normalize_mac(eui) if eui != NONE else NONE
        lease = self.leases.get(ip)
        static = self.by_ip.get(ip)
        if mac == NONE:
            mac = lease[0] if lease and lease[0] != NONE else static[1] if static else NONE
        name = self.by_mac.get(mac) if mac != NONE else None
        if name is None:
            name = static[0] if static else lease[1] if lease else NONE
        return mac, name


def _reload(watched: Watched) -> bool:
    if watched.path is None:
        return False
    stamp = _stamp(watched.path)
    if stamp == watched.stamp:
        return False
    watched.stamp = stamp
    try:
        watched.text = watched.path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        watched.text = ""
    return True


def lease_changes(before: str, after: str) -> list[str]:
    """Lease lines added (`+ line`) or gone (`- line`) between two contents of the file."""
    old = {line for line in before.splitlines() if line.strip()}
    new = [line for line in after.splitlines() if line.strip()]
    seen = set(new)
    return [f"- {line}" for line in before.splitlines() if line in old and line not in seen
            ] + [f"+ {line}" for line in new if line not in old]
