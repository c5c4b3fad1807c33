"""The optional hardware file: an asset-database export giving real MAC addresses, models and
purchase dates. A row without a MAC (a projector, a device whose MAC is not known yet) still
gives its model and purchase date to the report; the inventory gets the MACs only."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path

import netaddr

from cartable.directory import normalise_column
from cartable.equipment import ROLES, host_id
from cartable.errors import InputError, Problem
from cartable.files import read_text
from cartable.uai import normalise_uai, uai_problem

COLUMNS: dict[str, tuple[str, ...]] = {
    "uai": ("uai", "ecole", "school"),
    "role": ("role",),
    "index": ("index", "numero", "num"),
    "hostname": ("hostname", "host", "nom"),
    "mac": ("mac", "adresse_mac", "mac_address"),
    "serial": ("serial", "numero_de_serie", "serial_number"),
    "model": ("model", "modele"),
    "purchase_date": ("purchase_date", "date_achat"),
}


@dataclass(frozen=True)
class Device:
    host: str          # host id, e.g. 0350607v-sdi03
    mac: str           # 02:00:5e:00:53:01, "" when the row gives none
    serial: str
    model: str
    purchase_date: str  # ISO YYYY-MM-DD, "" when unknown
    line: int


def normalise_date(value: str) -> str | None:
    """'2024-06-12' or '12/06/2024' -> '2024-06-12'; '' -> ''; None when not a date."""
    value = value.strip()
    if not value:
        return ""
    match = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", value)
    try:
        if match:
            day, month, year = (int(g) for g in match.groups())
            return dt.date(year, month, day).isoformat()
        return dt.date.fromisoformat(value).isoformat() if re.fullmatch(
            r"\d{4}-\d{2}-\d{2}", value) else None
    except ValueError:
        return None


def normalise_mac(value: str) -> str | None:
    """Lower-case colon form, or None when it is not a MAC address."""
    try:
        eui = netaddr.EUI(value.strip(), dialect=netaddr.mac_unix_expanded)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None
    if eui.version != 48:
        return None
    return str(eui)


def _row_host(row: dict[str, str], cols: dict[str, str], filename: str,
              line: int) -> tuple[str | None, Problem | None]:
    hostname = row.get(cols.get("hostname", ""), "").strip().lower()
    if hostname:
        return hostname, None
    uai = normalise_uai(row.get(cols.get("uai", ""), ""))
    role = row.get(cols.get("role", ""), "").strip().lower()
    index = row.get(cols.get("index", ""), "").strip()
    if uai_problem(uai):
        return None, Problem(filename, uai_problem(uai) or "", line, "uai",
                             "give the school's UAI, or a hostname")
    if role not in ROLES:
        return None, Problem(filename, f"unknown role '{role}'", line, "role",
                             "one of: " + ", ".join(sorted(ROLES)))
    if role != "srv" and not index.isdigit():
        return None, Problem(filename, f"index '{index}' is not a number", line, "index",
                             "the host's number within its role, e.g. 3 for sdi03")
    return host_id(uai, role, int(index or 0)), None


def parse_hardware(text: str, filename: str) -> dict[str, Device]:
    """host id -> Device; InputError for bad or duplicate MACs and unidentified rows."""
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    by_norm = {normalise_column(c): c for c in reader.fieldnames or []}
    cols = {f: by_norm[a] for f, aliases in COLUMNS.items() for a in aliases if a in by_norm}
    if "mac" not in cols or not ("hostname" in cols or {"uai", "role"} <= set(cols)):
        raise InputError(Problem(filename, "the hardware file needs a 'mac' column and either "
                                 "'hostname' or 'uai' + 'role' + 'index'", 1,
                                 hint="header e.g.: uai,role,index,hostname,mac,serial,model,"
                                 "purchase_date"))
    problems: list[Problem] = []
    devices: dict[str, Device] = {}
    macs: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        host, problem = _row_host(row, cols, filename, line)
        if problem:
            problems.append(problem)
            continue
        assert host is not None
        raw_mac = row.get(cols["mac"], "") or ""
        mac = normalise_mac(raw_mac) if raw_mac.strip() else ""
        if mac is None:
            problems.append(Problem(filename, f"'{raw_mac}' is not a MAC address", line, "mac",
                                    "write it as 6 hexadecimal pairs, e.g. 02:00:5e:00:53:01"))
            continue
        if mac and mac in macs:
            problems.append(Problem(filename, f"MAC {mac} is already given on line {macs[mac]}",
                                    line, "mac", "one MAC address per device"))
            continue
        if host in devices:
            problems.append(Problem(filename, f"host {host} is already given on line "
                                    f"{devices[host].line}", line, "hostname",
                                    "one row per device"))
            continue
        raw_date = (row.get(cols.get("purchase_date", ""), "") or "").strip()
        date = normalise_date(raw_date)
        if date is None:
            problems.append(Problem(filename, f"'{raw_date}' is not a date", line,
                                    "purchase_date", "write it as YYYY-MM-DD (or DD/MM/YYYY), "
                                    "e.g. 2024-06-12; leave it empty when unknown"))
            continue
        if mac:
            macs[mac] = line
        devices[host] = Device(host, mac, *((row.get(cols.get(f, ""), "") or "").strip()
                                            for f in ("serial", "model")), date, line)
    if problems:
        raise InputError(problems)
    return devices


def read_hardware(path: Path) -> dict[str, Device]:
    text = read_text(path, "hardware file", "check 'hardware:' in the site file; export the "
                     "asset list as UTF-8 CSV", encoding="utf-8-sig")
    return parse_hardware(text, str(path))
