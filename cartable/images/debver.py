"""Debian version strings: comparison and relation checks, as dpkg defines them (deb-version(7))."""

from __future__ import annotations

import re

_RELATIONS = ("<<", "<=", "=", ">=", ">>")


def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isdigit():
        return 0
    if not char:
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: non-digit runs by the modified ASCII order, digit runs as numbers."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch or 0), upstream, revision


def compare(a: str, b: str) -> int:
    """<0, 0 or >0 as Debian version a sorts before, equal to, or after b."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return ea - eb
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def satisfies(version: str, relation: str, wanted: str) -> bool:
    """Whether `version` meets `relation wanted` (e.g. '>=', '2.1')."""
    cmp = compare(version, wanted)
    return {"<<": cmp < 0, "<=": cmp <= 0, "=": cmp == 0, ">=": cmp >= 0, ">>": cmp > 0,
            "<": cmp <= 0, ">": cmp >= 0}[relation]


_CATALOG_VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def catalog_version_key(version: str) -> tuple[int, ...] | None:
    """An image version of the catalog ('2026.1', '2026.10.2') as numbers; None if not one."""
    if not _CATALOG_VERSION_RE.match(version):
        return None
    return tuple(int(part) for part in version.split("."))
