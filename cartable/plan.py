"""Which schools a site takes, and which hosts each school gets."""

from __future__ import annotations

from dataclasses import dataclass

from cartable.directory import School
from cartable.equipment import ROLES, class_count, host_id
from cartable.errors import InputError, Problem
from cartable.site import Site


@dataclass(frozen=True)
class HostSpec:
    """One planned host of a school."""

    id: str                 # stable id, key of the address plan
    name: str               # host name (the id unless renamed in an override)
    role: str               # role code
    network: str            # pedagogical | administrative
    room: str


def _line(site: Site, key: str) -> int | None:
    return site.lines.get(key)


def select_schools(site: Site, schools: list[School]) -> list[School]:
    """The site's schools, sorted by UAI; InputError for unknown or empty selections."""
    file = str(site.path)
    problems: list[Problem] = []
    by_uai = {s.uai: s for s in schools}
    communes = {s.commune_code for s in schools}
    circos = {s.circonscription.casefold() for s in schools}

    def unknown(values: tuple[str, ...], known: set[str], what: str, field: str,
                fold: bool = False) -> None:
        for value in values:
            if (value.casefold() if fold else value) not in known:
                problems.append(Problem(file, f"{what} '{value}' matches no open public school "
                                        "of the directory", _line(site, "selection"), field,
                                        f"check the {what} against {site.directory.name}"))

    unknown(site.uai, set(by_uai), "UAI", "selection.uai")
    unknown(site.exclude, set(by_uai), "UAI", "selection.exclude")
    unknown(site.communes, communes, "commune code", "selection.communes")
    unknown(site.circonscriptions, circos, "circonscription", "selection.circonscriptions", True)
    for uai, override in site.overrides.items():
        if uai not in by_uai:
            problems.append(Problem(file, f"override for {uai}, which is not an open public "
                                    "school of the directory", override.line, "overrides",
                                    "remove the override or fix the UAI"))
    if problems:
        raise InputError(problems)
    wanted_circos = {c.casefold() for c in site.circonscriptions}
    selected = [
        s for s in schools
        if (site.select_all or s.uai in site.uai or s.commune_code in site.communes
            or s.circonscription.casefold() in wanted_circos)
        and s.uai not in site.exclude and (not site.kinds or s.kind in site.kinds)
    ]
    if not selected:
        raise InputError(Problem(file, "the selection is empty: no school matches", 
                                 _line(site, "selection"), "selection",
                                 "list communes (INSEE codes), circonscriptions or UAIs under "
                                 "selection"))
    not_selected = sorted(set(site.overrides) - {s.uai for s in selected})
    if not_selected:
        raise InputError([Problem(file, f"override for {u}, which the selection does not take",
                                  site.overrides[u].line, "overrides",
                                  "select the school or remove its override") for u in not_selected])
    return sorted(selected, key=lambda s: s.uai)


def school_counts(site: Site, school: School) -> dict[str, int]:
    """Role code -> number of hosts for this school (plan, Metz options, override)."""
    counts = {"srv": 1, **site.plan[school.kind]}
    classes = class_count(school.pupils, site.pupils_per_class, site.classes_default)
    if site.class_equipment:
        counts["cls"] = counts.get("cls", 0) + classes
        counts["prj"] = counts.get("prj", 0) + classes
    if site.laptop_cart:
        counts["lap"] = counts.get("lap", 0) + site.laptop_cart
    override = site.overrides.get(school.uai)
    if override:
        counts.update(override.equipment)
    counts["srv"] = 1  # every school has its server
    return {code: counts[code] for code in ROLES if counts.get(code)}


def school_hosts(site: Site, school: School) -> list[HostSpec]:
    """The school's hosts, in catalogue order then index."""
    override = site.overrides.get(school.uai)
    renames = override.hostnames if override else {}
    hosts = []
    for code, count in school_counts(site, school).items():
        role = ROLES[code]
        for index in range(1, count + 1):
            hid = host_id(school.uai, code, index)
            room = f"class{index:02d}" if role.room == "class" else role.room
            hosts.append(HostSpec(hid, renames.get(hid, hid), code, role.network, room))
    unknown = sorted(set(renames) - {h.id for h in hosts})
    if unknown:
        raise InputError([Problem(str(site.path), f"rename of {h}, which the plan of "
                                  f"{school.uai} does not have", override.line if override else None,
                                  f"overrides.{school.uai}.hostnames",
                                  "use a host id such as " + hosts[-1].id) for h in unknown])
    return hosts


def school_wave(site: Site, school: School) -> str:
    """The deployment wave of a school: its override, else the first wave that matches it."""
    override = site.overrides.get(school.uai)
    if override and override.wave:
        return override.wave
    for wave in site.waves:
        if (school.uai in wave.uai or school.commune_code in wave.communes
                or school.circonscription.casefold() in {c.casefold() for c in wave.circonscriptions}):
            return wave.name
    return "unscheduled"
