"""Shared bits of the history tests: a hosts file, a leases file, squid lines."""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from pathlib import Path

HOSTS = [{"name": "0350607v-sdi03", "mac": "52:54:00:AA:BB:03", "addresses": ["10.35.1.23"]},
         {"name": "0350607v-sdi04", "mac": "52:54:00:aa:bb:04", "addresses": []}]
LEASES = ("1764700000 52:54:00:aa:bb:04 10.35.1.104 sdi04-by-dhcp *\n"
          "1764700000 52:54:00:aa:bb:09 10.35.1.109 pupil-laptop 01:52:54:00:aa:bb:09\n")


def write_inputs(tmp: Path, leases: str = LEASES) -> tuple[Path, Path, Path]:
    """hosts.json, dnsmasq.leases and the logger's settings file pointing at them."""
    hosts = tmp / "hosts.json"
    hosts.write_text(json.dumps(HOSTS))
    lease_file = tmp / "dnsmasq.leases"
    lease_file.write_text(leases)
    config = tmp / "logger.json"
    config.write_text(json.dumps({"hosts": str(hosts), "leases": str(lease_file),
                                  "reload_seconds": 1}))
    return hosts, lease_file, config


def stamp(day: date, hour: int = 10, minute: int = 0, second: float = 0.0) -> float:
    """A Unix time on a local day (the process's time zone)."""
    return time.mktime(datetime(day.year, day.month, day.day, hour, minute).timetuple()) + second


def squid(when: float, ip: str, status: str = "TCP_MISS/200", method: str = "GET",
          url: str = "http://www.example.org/", category: str = "-", eui: str = "-",
          size: int = 1234) -> str:
    """A line in squid's `cartable_history` logformat."""
    return f"{when:.3f} {ip} {eui} {status} {method} {url} {size} {category}"
