"""Read what the report needs: the generated inventory, the pupils file, the hardware file,
Ansible's fact cache, the current campaign's status and a previous report. Bad input is an
InputError naming file, line and value; absent optional sources are simply absent."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import yaml

from cartable.campaign.status import REIMAGE
from cartable.directory import normalise_column
from cartable.equipment import ROLE_GROUPS
from cartable.errors import InputError, Problem
from cartable.files import read_text
from cartable.hardware import Device, read_hardware
from cartable.report.model import (STATES, Campaign, CampaignSchool, Facts, Host, Inputs,
                                   Previous, School)
from cartable.site import Site
from cartable.uai import normalise_uai

try:  # libyaml without implicit typing: every scalar a string (3 x faster on 6,000 hosts)
    _LOADER: type = yaml.CBaseLoader
except AttributeError:  # pragma: no cover
    _LOADER = yaml.BaseLoader

PUPIL_COLUMNS = {"uai": ("uai", "identifiant_de_l_etablissement", "ecole"),
                 "pupils": ("pupils", "eleves", "effectif", "nombre_d_eleves")}


def read_inventory(path: Path) -> dict[str, Any]:
    """The generated hosts.yml as data, scalars as strings; InputError when missing, broken."""
    text = read_text(path, "the generated inventory (hosts.yml)",
                     "build it first: cartable inventory build SITE")
    try:
        tree = yaml.load(text, Loader=_LOADER)  # noqa: S506 - no object construction
    except yaml.YAMLError as exc:
        raise InputError(Problem(str(path), f"YAML syntax error: {exc}",
                                 hint="it is generated: rebuild it (cartable inventory build)")) \
            from None
    if not isinstance(tree, dict) or not isinstance(tree.get("all"), dict):
        raise InputError(Problem(str(path), "not a Cartable inventory (no 'all' group)",
                                 hint="rebuild it: cartable inventory build SITE"))
    return tree


def parse_pupils(text: str, filename: str, known: set[str]) -> dict[str, int]:
    """UAI -> pupils from a CSV (uai, pupils); InputError for unknown UAI, bad counts."""
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    by_norm = {normalise_column(c): c for c in reader.fieldnames or []}
    cols = {f: next((by_norm[a] for a in aliases if a in by_norm), None)
            for f, aliases in PUPIL_COLUMNS.items()}
    if not all(cols.values()):
        raise InputError(Problem(filename, "the pupils file needs the columns 'uai' and "
                                 "'pupils'", 1, hint="header: uai,pupils (one row per school)"))
    problems: list[Problem] = []
    counts: dict[str, int] = {}
    lines: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        raw_uai = (row.get(cols["uai"] or "") or "").strip()
        uai = normalise_uai(raw_uai)
        raw = (row.get(cols["pupils"] or "") or "").strip()
        if uai not in known:
            problems.append(Problem(filename, f"UAI '{raw_uai}' is not a school of the "
                                    "inventory", line, "uai", "check the UAI, or remove the row "
                                    "(the inventory's schools: hosts.yml, school_<uai> groups)"))
        elif uai in lines:
            problems.append(Problem(filename, f"{uai} is already given on line {lines[uai]}",
                                    line, "uai", "one row per school"))
        elif not raw.isdigit():
            problems.append(Problem(filename, f"'{raw}' is not a number of pupils", line,
                                    "pupils", "a whole number, e.g. 143"))
        else:
            counts[uai], lines[uai] = int(raw), line
    if problems:
        raise InputError(problems)
    return counts


def _fact(facts: dict[str, Any], key: str) -> Any:
    return facts.get(f"ansible_{key}", facts.get(key))


def facts_of(data: dict[str, Any]) -> Facts:
    """The report's view of one host's cached facts."""
    os_name = " ".join(str(v) for v in (_fact(data, "distribution"),
                                        _fact(data, "distribution_version")) if v)
    disk_total = disk_free = None
    for mount in _fact(data, "mounts") or []:
        if isinstance(mount, dict) and mount.get("mount") == "/":
            disk_total = round(mount.get("size_total", 0) / 1e9, 1)
            disk_free = round(mount.get("size_available", 0) / 1e9, 1)
    local = (_fact(data, "local") or {}).get("cartable_image") or {}
    when = _fact(data, "date_time") or {}
    return Facts(os=os_name or None, disk_total_gb=disk_total, disk_free_gb=disk_free,
                 image=local.get("version"), reimaged=local.get("reimaged"),
                 collected=when.get("iso8601"))


def fact_cache(folder: Path) -> Any:
    """Ansible's jsonfile fact cache in `folder`, through Ansible's own cache plugin (its file
    names and payload format are Ansible's business: 2.21 writes s1_<host> = {"__payload__"})."""
    from ansible.plugins.loader import cache_loader  # noqa: PLC0415 - slow import, only here
    return cache_loader.get("jsonfile", _uri=str(folder), _prefix="", _timeout=0)


def read_facts(folder: Path | None, names: set[str]) -> tuple[dict[str, Facts], list[str]]:
    """Facts of the inventory's hosts from a jsonfile fact cache, however old (the report
    shows when they were gathered)."""
    if folder is None or not folder.is_dir():
        return {}, []
    cache = fact_cache(folder)
    out: dict[str, Facts] = {}
    warnings = []
    for host in sorted(set(cache.keys()) & names):
        try:
            data = cache.get(host)
        except Exception as exc:  # noqa: BLE001 - a damaged cache entry is not the user's input
            warnings.append(f"{folder}: the cached facts of {host} are unreadable, ignored ({exc})")
            continue
        facts = facts_of(data) if isinstance(data, dict) else Facts()
        if facts != Facts():  # a play without gather_facts caches {} for every host
            out[host] = facts
    return out, warnings


def _timestamp(iso: str) -> float:
    """Seconds since the epoch of an ISO 8601 time (UTC when it gives no offset)."""
    when = dt.datetime.fromisoformat(iso)
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def _campaign(path: Path) -> Campaign:
    text = read_text(path, "campaign status", "it is written by cartable campaign")
    try:
        data = json.loads(text)
        schools = {
            normalise_uai(uai): CampaignSchool(
                state=s["state"], wave=s.get("wave"), started=s.get("started"),
                ended=s.get("ended"), failed_hosts=tuple(s.get("failed_hosts") or ()),
                changed=int(s.get("changed") or 0))
            for uai, s in data["schools"].items()}
        campaign = Campaign(str(data["campaign"]), str(data.get("playbook", "")),
                            str(data["updated"]), str(path), schools,
                            check=bool(data.get("check", False)))
        _timestamp(campaign.updated)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(Problem(str(path), f"not a campaign status file ({exc!r})",
                                 hint="expected {campaign, playbook, updated, schools: {UAI: "
                                 "{state, wave, ...}}}; run the campaign again or remove it"))\
            from None
    bad = sorted({s.state for s in schools.values()} - set(STATES))
    if bad:
        raise InputError(Problem(str(path), f"unknown state(s) {', '.join(bad)}", field="state",
                                 hint="one of: " + ", ".join(STATES)))
    return campaign


def read_campaign(site_folder: Path) -> Campaign | None:
    """The most recently updated campaign of <site folder>/campaigns/*/status.json, if any;
    a check-mode rehearsal (`cartable campaign run --check`) deploys nothing: not counted, nor
    `cartable reimage`'s campaign (converges after restores, not a rollout)."""
    paths = sorted(p for p in (site_folder / "campaigns").glob("*/status.json") if p.parent.name != REIMAGE)
    campaigns = [c for c in (_campaign(p) for p in paths) if not c.check]
    if not campaigns:
        return None
    return max(campaigns, key=lambda c: (_timestamp(c.updated), c.name))


def _csv_rows(path: Path) -> list[dict[str, str]]:
    text = read_text(path, "previous report file", "give a folder written by cartable report")
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=";"))


def read_previous(folder: Path) -> Previous:
    """A previous report folder (its ecoles.csv and materiel.csv)."""
    schools_rows, hosts_rows = _csv_rows(folder / "ecoles.csv"), _csv_rows(folder / "materiel.csv")
    try:
        schools = {r["uai"]: r["nom"] for r in schools_rows}
        hosts = {r["machine"]: r["uai"] for r in hosts_rows}
        as_of = schools_rows[0]["date_situation"] if schools_rows else ""
    except KeyError as exc:
        raise InputError(Problem(str(folder), f"column {exc} missing in the previous report",
                                 hint="give a folder written by cartable report")) from None
    return Previous(str(folder), as_of, schools, hosts)


def _room_kind(room: str) -> str:
    return "class" if room.startswith("class") and room[5:].isdigit() else room


def schools_of(tree: dict[str, Any], site: Site, devices: dict[str, Device],
               pupils: dict[str, int]) -> list[School]:
    """The inventory's schools with their hosts, hardware data and pupil counts."""
    children = tree["all"].get("children") or {}
    family = {h: g for g in ROLE_GROUPS for h in ((children.get(g) or {}).get("hosts") or {})}
    communes = {}
    for name, group in children.items():
        if name.startswith("commune_") and group:
            for school_group in group.get("children") or {}:
                communes[school_group] = (group.get("vars") or {}).get("cartable_commune_name", "")
    out = []
    for name, group in children.items():
        v = (group or {}).get("vars") or {}
        if not name.startswith("school_") or "cartable_school_uai" not in v:
            continue
        uai = str(v["cartable_school_uai"])
        renames = site.overrides[uai].hostnames if uai in site.overrides else {}
        ids = {new: old for old, new in renames.items()}
        hosts = []
        for host, hv in (group.get("hosts") or {}).items():
            hv = hv or {}
            device = devices.get(ids.get(host, host))
            hosts.append(Host(
                name=host, id=ids.get(host, host), uai=uai, family=family.get(host, "other"),
                room=_room_kind(str(hv.get("cartable_room", ""))), image=hv.get("cartable_image"),
                model=device.model if device else "",
                purchase=dt.date.fromisoformat(device.purchase_date)
                if device and device.purchase_date else None))
        raw_pupils = str(v.get("cartable_school_pupils", ""))
        directory_pupils = int(raw_pupils) if raw_pupils.isdigit() else None
        count = pupils.get(uai, directory_pupils)
        source = "fichier" if uai in pupils else ("annuaire" if count is not None else None)
        out.append(School(uai=uai, name=str(v.get("cartable_school_name", "")),
                          kind=str(v.get("cartable_school_kind", "")),
                          commune_code=str(v.get("cartable_school_commune", "")),
                          commune_name=communes.get(name, ""),
                          link=str(v.get("cartable_school_link", "")),
                          wave=str(v.get("cartable_school_wave", "")),
                          pupils=count, pupils_source=source, hosts=tuple(hosts)))
    return sorted(out, key=lambda s: (s.commune_name, s.commune_code, s.uai))


def with_facts(schools: list[School], facts: dict[str, Facts]) -> list[School]:
    if not facts:
        return schools
    return [dataclasses.replace(s, hosts=tuple(dataclasses.replace(h, facts=facts.get(h.name))
                                               for h in s.hosts)) for s in schools]


def read_inputs(site: Site, as_of: dt.date, inventory: Path, pupils_file: Path | None,
                facts_dir: Path | None, previous: Path | None) -> Inputs:
    """Everything the report needs, validated."""
    tree = read_inventory(inventory)
    devices = read_hardware(site.hardware) if site.hardware else {}
    known = {str((g.get("vars") or {}).get("cartable_school_uai"))
             for n, g in (tree["all"].get("children") or {}).items()
             if n.startswith("school_") and g and "cartable_school_uai" in (g.get("vars") or {})}
    pupils = {}
    if pupils_file:
        pupils = parse_pupils(read_text(pupils_file, "pupils file",
                                        "check 'pupils:' in the site file or --pupils",
                                        encoding="utf-8-sig"), str(pupils_file), known)
    schools = schools_of(tree, site, devices, pupils)
    names = {h.name for s in schools for h in s.hosts}
    facts, warnings = read_facts(facts_dir, names)
    sources = {"inventaire": str(inventory)}
    if site.hardware:
        sources["matériel"] = str(site.hardware)
    if pupils_file:
        sources["effectifs"] = str(pupils_file)
    if facts:
        sources["faits Ansible"] = f"{facts_dir} ({len(facts)} machines)"
    campaign = read_campaign(site.path.parent)
    if campaign:
        sources["campagne"] = campaign.path
    return Inputs(site=site.name, as_of=as_of, schools=tuple(with_facts(schools, facts)),
                  campaign=campaign, previous=read_previous(previous) if previous else None,
                  sources=sources, warnings=tuple(warnings))
