"""The a-posteriori control: for a period, who (name, MAC, IP) reached what, and the
blocked attempts by category and day. Pure aggregation (`aggregate`) + rendering."""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from cartable.history.formats import BLOCKED, Entry, day_file, parse_entry

CSV_FIELDS = ("jour", "poste", "mac", "ip", "site", "verdict", "categorie", "requetes",
              "octets", "premiere", "derniere")
TOP = 20


@dataclass(frozen=True)
class Query:
    start: date
    end: date
    name: str | None = None
    ip: str | None = None
    blocked_only: bool = False

    def wants(self, entry: Entry) -> bool:
        """Who and which verdict (aggregate checks the day)."""
        if self.name is not None and entry.name.lower() != self.name.lower():
            return False
        if self.ip is not None and entry.ip != self.ip:
            return False
        return not self.blocked_only or entry.verdict == BLOCKED


@dataclass
class Totals:
    requests: int = 0
    blocked: int = 0
    unreadable: int = 0
    missing_days: list[str] = field(default_factory=list)
    # (day, name, mac, ip, host, verdict, category) -> [requests, bytes, first, last]
    detail: dict[tuple[str, ...], list] = field(default_factory=dict)
    stations: dict[tuple[str, str, str], Counter] = field(default_factory=dict)
    station_hosts: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    hosts: Counter = field(default_factory=Counter)
    hosts_blocked: Counter = field(default_factory=Counter)
    host_stations: dict[str, set[tuple[str, str, str]]] = field(default_factory=dict)
    blocked_by_day: Counter = field(default_factory=Counter)  # (day, category)


def days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def read_lines(folder: Path, query: Query, totals: Totals) -> Iterator[str]:
    """The lines of the period's files (and of the next day's file: a request finished just
    before midnight can be written just after it)."""
    for day in days(query.start, query.end + timedelta(days=1)):
        path = folder / day_file(day)
        packed = path.with_name(path.name + ".gz")
        if path.is_file():
            data = path.read_bytes()
        elif packed.is_file():
            data = gzip.decompress(packed.read_bytes())
        else:
            if day <= query.end:
                totals.missing_days.append(day.isoformat())
            continue
        yield from data.decode("utf-8", errors="replace").splitlines()


def aggregate(lines: Iterable[str], query: Query, totals: Totals | None = None) -> Totals:
    totals = totals or Totals()
    first, last = query.start.isoformat(), query.end.isoformat()
    for text in lines:
        if text.startswith("#"):
            continue
        entry = parse_entry(text)
        if entry is None:
            totals.unreadable += 1
            continue
        if not first <= entry.time[:10] <= last or not query.wants(entry):
            continue
        blocked = entry.verdict == BLOCKED
        host = entry.host
        who = (entry.name, entry.mac, entry.ip)
        totals.requests += 1
        totals.blocked += blocked
        key = (entry.time[:10], *who, host, entry.verdict, entry.category)
        row = totals.detail.get(key)
        if row is None:
            totals.detail[key] = [1, entry.bytes, entry.time, entry.time]
        else:
            row[0] += 1
            row[1] += entry.bytes
            if entry.time < row[2]:
                row[2] = entry.time
            if entry.time > row[3]:
                row[3] = entry.time
        station = totals.stations.get(who)
        if station is None:
            station = totals.stations[who] = Counter()
            totals.station_hosts[who] = set()
        station["requests"] += 1
        station["blocked"] += blocked
        totals.station_hosts[who].add(host)
        totals.hosts[host] += 1
        seen = totals.host_stations.get(host)
        if seen is None:
            seen = totals.host_stations[host] = set()
        seen.add(who)
        if blocked:
            totals.hosts_blocked[host] += 1
            totals.blocked_by_day[(entry.time[:10], entry.category)] += 1
    return totals


def table(headers: tuple[str, ...], rows: list[tuple], right: set[int]) -> list[str]:
    cells = [tuple(str(c) for c in row) for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return ["  " + fmt(headers), "  " + rule] + ["  " + fmt(r) for r in cells]


def summary(folder: Path, query: Query, totals: Totals) -> str:
    out = [f"Historique des connexions de {folder}, du {query.start} au {query.end}"]
    wanted = [f"poste {query.name}" if query.name else "",
              f"adresse {query.ip}" if query.ip else "",
              "requêtes bloquées seulement" if query.blocked_only else ""]
    if any(wanted):
        out.append("Filtre : " + ", ".join(w for w in wanted if w))
    out.append(f"Requêtes : {totals.requests} (bloquées : {totals.blocked}) ; postes : "
               f"{len(totals.stations)} ; sites : {len(totals.hosts)}")
    if totals.missing_days:
        out.append(f"Jours sans historique ({len(totals.missing_days)}) : "
                   + _ranges(totals.missing_days))
    if totals.unreadable:
        out.append(f"Lignes non interprétables (gardées telles quelles) : {totals.unreadable}")
    out += ["", "Postes (qui)"]
    rows = sorted(totals.stations.items(), key=lambda i: (-i[1]["requests"], i[0]))
    out += table(("poste", "MAC", "IP", "requêtes", "bloquées", "sites"),
                 [(*who, c["requests"], c["blocked"], len(totals.station_hosts[who]))
                  for who, c in rows], {3, 4, 5}) if rows else ["  (aucune requête)"]
    out += ["", f"Sites les plus demandés (quoi, {TOP} premiers)"]
    top = sorted(totals.hosts.items(), key=lambda i: (-i[1], i[0]))[:TOP]
    out += table(("site", "requêtes", "bloquées", "postes"),
                 [(h, n, totals.hosts_blocked[h], len(totals.host_stations[h]))
                  for h, n in top], {1, 2, 3}) if top else ["  (aucun)"]
    out += ["", "Tentatives bloquées par catégorie et par jour"]
    blocked = sorted(totals.blocked_by_day.items())
    out += table(("jour", "catégorie", "tentatives"),
                 [(d, c, n) for (d, c), n in blocked], {2}) if blocked else ["  (aucune)"]
    categories = by_category(totals)
    if len(categories) > 1:
        out += ["", "Total par catégorie"]
        out += table(("catégorie", "tentatives"),
                     sorted(categories.items(), key=lambda i: (-i[1], i[0])), {1})
    return "\n".join(out) + "\n"


def _ranges(items: list[str]) -> str:
    if len(items) <= 6:
        return ", ".join(items)
    return f"{', '.join(items[:3])}, ..., {', '.join(items[-2:])}"


def csv_rows(totals: Totals) -> list[tuple]:
    return [(*key, *value) for key, value in sorted(totals.detail.items())]


def write_csv(handle: io.TextIOBase, totals: Totals) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    writer.writerows(csv_rows(totals))


def by_category(totals: Totals) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for (_day, category), count in totals.blocked_by_day.items():
        counts[category] += count
    return dict(counts)
