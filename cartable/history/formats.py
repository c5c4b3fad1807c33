"""The squid log format the role renders, the enriched day-file line, file names.

squid writes (logformat `cartable_history`, see LOGFORMAT):

    1764662400.123 10.35.1.21 52:54:00:aa:bb:01 TCP_DENIED/403 CONNECT casino.example:443 3950 gambling

the logger writes one tab-separated line per request (FIELDS):

    2026-12-02T09:00:00.123+01:00  10.35.1.21  52:54:00:aa:bb:01  0350607v-sdi03  CONNECT
    casino.example:443  BLOCKED  gambling  TCP_DENIED/403  3950
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import NamedTuple
from datetime import date

# squid.conf: `logformat cartable_history <LOGFORMAT>` (squid 5; %>eui needs eui_lookup on,
# the default, and is `-` for clients that are not on one of the server's LANs).
LOGFORMAT = "%ts.%03tu %>a %>eui %Ss/%03>Hs %rm %ru %<st %ea"
LOGFORMAT_NAME = "cartable_history"

FIELDS = ("time", "ip", "mac", "name", "method", "url", "verdict", "category", "status",
          "bytes")
HEADER = "#cartable-history/1\t" + "\t".join(FIELDS) + "\n"
NONE = "-"
ALLOWED, BLOCKED = "ALLOWED", "BLOCKED"

DAY_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.log(\.gz)?$")  # .gz once sealed
LEASES_RE = re.compile(r"^leases-(\d{4}-\d{2}-\d{2})$")
_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5,7}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def day_file(day: date) -> str:
    return f"{day.isoformat()}.log"


def leases_file(day: date) -> str:
    return f"leases-{day.isoformat()}"


def escape(text: str) -> str:
    """One field: no tab, newline or control character survives (backslash escapes)."""
    return _CONTROL.sub(lambda m: "\\t" if m.group() == "\t" else
                        "\\\\" if m.group() == "\\" else f"\\x{ord(m.group()):02x}", text)


def normalize_mac(value: str) -> str:
    """`52-54-00-AA-BB-01` -> `52:54:00:aa:bb:01`; anything else -> `-`, and so is the
    all-zero address squid's %>eui gives when it found none (loopback, no ARP entry)."""
    value = value.strip().lower()
    if not _MAC_RE.match(value) or not value.strip("0:-"):
        return NONE
    return value.replace("-", ":")


class Clock:
    """Local ISO time of a Unix timestamp, cached per second (the logger's hot path)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        self._zone = ""

    def iso(self, stamp: float) -> str:
        second = int(stamp)
        if second != self._second:
            tm = time.localtime(second)
            offset = tm.tm_gmtoff
            sign = "+" if offset >= 0 else "-"
            offset = abs(offset)
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", tm)
            self._zone = f"{sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}"
        millis = int((stamp - second) * 1000 + 0.5)
        millis = min(millis, 999)
        return f"{self._prefix}.{millis:03d}{self._zone}"


@dataclass(frozen=True)
class SquidLine:
    stamp: float
    ip: str
    eui: str
    status: str  # squid's %Ss/%03>Hs, e.g. TCP_DENIED/403
    method: str
    url: str
    size: str
    category: str


def parse_squid(text: str) -> SquidLine | None:
    """A line in LOGFORMAT, or None when it is not one (the logger keeps it as-is)."""
    parts = text.split(None, 7)
    if len(parts) < 7:
        return None
    try:
        stamp = float(parts[0])
    except ValueError:
        return None
    if not 0 < stamp < 1e11 or "/" not in parts[3]:
        return None
    category = parts[7].strip() if len(parts) == 8 else NONE
    ip = parts[1][7:] if parts[1].startswith("::ffff:") and "." in parts[1] else parts[1]
    return SquidLine(stamp, ip, parts[2], parts[3], parts[4], parts[5], parts[6],
                     category or NONE)


def verdict_of(status: str) -> str:
    """BLOCKED when squid denied the request (filter, ACL), ALLOWED otherwise."""
    return BLOCKED if "DENIED" in status.split("/", 1)[0] else ALLOWED


def enriched(line: SquidLine, clock: Clock, mac: str, name: str) -> str:
    fields = (clock.iso(line.stamp), line.ip, mac, name, line.method, line.url,
              verdict_of(line.status), line.category, line.status, line.size)
    return "\t".join(escape(f) if f else NONE for f in fields) + "\n"


def garbage(text: str, clock: Clock, now: float) -> str:
    """A line that is not in LOGFORMAT: kept as-is (escaped) in the url field."""
    fields = [clock.iso(now)] + [NONE] * (len(FIELDS) - 1)
    fields[FIELDS.index("url")] = escape(text) or NONE
    return "\t".join(fields) + "\n"


class Entry(NamedTuple):
    """One line of a day file, read back (a NamedTuple: the report makes millions)."""

    time: str
    ip: str
    mac: str
    name: str
    method: str
    url: str
    verdict: str
    category: str
    status: str
    bytes: int

    @property
    def day(self) -> str:
        return self.time[:10]

    @property
    def host(self) -> str:
        return host_of(self.method, self.url)


def parse_entry(text: str) -> Entry | None:
    """A day-file line, or None for the header, kept garbage and damaged lines."""
    parts = text.rstrip("\n").split("\t")
    if len(parts) != len(FIELDS) or parts[6] not in (ALLOWED, BLOCKED):
        return None
    try:
        size = int(parts[9])
    except ValueError:
        size = 0
    return Entry(*parts[:9], size)


def host_of(method: str, url: str) -> str:
    """The host a request reached: `host` of a URL, `host` of CONNECT's `host:port`."""
    if method != "CONNECT" and "://" in url:
        authority = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        url = authority.rsplit("@", 1)[-1]
    if url.startswith("[") and "]" in url:
        host = url[1:url.index("]")]
    else:
        host = url.split(":")[0] if url.count(":") == 1 else url
    return host.lower() or NONE
