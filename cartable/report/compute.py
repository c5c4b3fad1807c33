"""The report's figures: pure functions of the validated inputs (no I/O).

Rows are plain dicts keyed by the CSV column names (csvout writes them as they are, the HTML
template formats them), so the CSV and the page can never disagree.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

from cartable.report.model import (RENEWAL_LABELS, ROOM_COLUMNS, ROOMS, STATES, Campaign, Host,
                                   Previous, School)
from cartable.site_report import COLUMNS

COUNTED = tuple(COLUMNS.values())  # family columns counted per school and commune
SUMMED = (*COUNTED, *(f"postes_{r}" for r in ROOMS.values()), "postes_pedagogiques", "eleves",
          "ecoles", "ecoles_sans_effectif", "age_connu", "a_renouveler",
          "a_renouveler_dans_l_annee", "age_inconnu")


def add_years(day: dt.date, years: int) -> dt.date:
    """The same day `years` later (29 February -> 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def age_years(purchase: dt.date, as_of: dt.date) -> int:
    """Full years of service at `as_of` (0 for a device bought later)."""
    years = as_of.year - purchase.year - ((as_of.month, as_of.day) < (purchase.month, purchase.day))
    return max(years, 0)


def renewal_state(host: Host, as_of: dt.date, renewal: dict[str, int]) -> str:
    """'due' (its years of service are reached), 'next' (within a year), 'ok', or 'unknown'
    (no purchase date, or no policy for its family)."""
    life = renewal.get(host.family)
    if host.purchase is None or life is None:
        return "unknown"
    due = add_years(host.purchase, life)
    if due <= as_of:
        return "due"
    return "next" if due <= add_years(as_of, 1) else "ok"


def pedagogical_stations(hosts: Iterable[Host]) -> int:
    """Workstations pupils use (every workstation but the head's office) and laptops."""
    return sum(1 for h in hosts if (h.family == "workstations" and h.room != "direction")
               or h.family == "laptops")


def ratio(pupils: int | None, stations: int) -> float | None:
    return None if pupils is None or stations == 0 else round(pupils / stations, 2)


def school_row(school: School, as_of: dt.date, renewal: dict[str, int],
               campaign: Campaign | None) -> dict:
    """One school's figures."""
    hosts = school.hosts
    families = Counter(h.family for h in hosts)
    rooms = Counter(h.room for h in hosts if h.family == "workstations")
    renewals = Counter(renewal_state(h, as_of, renewal) for h in hosts)
    ages = [age_years(h.purchase, as_of) for h in hosts if h.purchase]
    stations = pedagogical_stations(hosts)
    planned = sorted({h.image for h in hosts if h.image})
    deployed = Counter(h.facts.image for h in hosts if h.facts and h.facts.image)
    reimaged = [h.facts.reimaged for h in hosts if h.facts and h.facts.reimaged]
    state = campaign.schools.get(school.uai) if campaign else None
    return {
        "date_situation": as_of.isoformat(),
        "uai": school.uai, "nom": school.name, "type": school.kind,
        "code_commune": school.commune_code, "commune": school.commune_name,
        "liaison": school.link, "vague": school.wave,
        **{column: families.get(f, 0) for f, column in COLUMNS.items()},
        **{f"postes_{column}": rooms.get(r, 0) for r, column in ROOMS.items()},
        "postes_pedagogiques": stations,
        "eleves": school.pupils,
        "source_effectif": school.pupils_source or "inconnu",
        "eleves_par_poste": ratio(school.pupils, stations),
        "ecoles": 1,
        "ecoles_sans_effectif": int(school.pupils is None),
        "age_connu": len(ages),
        "age_moyen": round(sum(ages) / len(ages), 1) if ages else None,
        "age_max": max(ages) if ages else None,
        "a_renouveler": renewals.get("due", 0),
        "a_renouveler_dans_l_annee": renewals.get("next", 0),
        "age_inconnu": len(hosts) - len(ages),
        "images_prevues": " ".join(planned),
        "images_deployees": " ".join(f"{i}:{n}" for i, n in sorted(deployed.items())),
        "derniere_reimage": max(reimaged) if reimaged else "",
        "machines_avec_faits": sum(1 for h in hosts if h.facts),
        "campagne_etat": state.state if state else "",
    }


def sum_rows(rows: list[dict], key: dict) -> dict:
    """The SUMMED columns of `rows` added up, on top of `key` (pupils: known counts only)."""
    out = dict(key)
    for column in SUMMED:
        out[column] = sum(r[column] or 0 for r in rows)
    out["eleves_par_poste"] = ratio(out["eleves"], out["postes_pedagogiques"])
    return out


def commune_rows(rows: list[dict]) -> list[dict]:
    """Per commune (INSEE code order), the sums of its schools."""
    by_code: dict[str, list[dict]] = {}
    for row in rows:
        by_code.setdefault(row["code_commune"], []).append(row)
    return [sum_rows(group, {"date_situation": group[0]["date_situation"],
                             "code_commune": code, "commune": group[0]["commune"]})
            for code, group in sorted(by_code.items())]


def total_row(rows: list[dict]) -> dict:
    return sum_rows(rows, {"code_commune": "", "commune": "Total"})


def host_rows(schools: Iterable[School], as_of: dt.date, renewal: dict[str, int]) -> list[dict]:
    """One row per inventory host (materiel.csv)."""
    out = []
    for school in schools:
        for h in school.hosts:
            life = renewal.get(h.family)
            f = h.facts
            out.append({
                "machine": h.name, "uai": h.uai, "code_commune": school.commune_code,
                "famille": COLUMNS.get(h.family, h.family),
                "salle": ROOM_COLUMNS.get(h.room, h.room), "modele": h.model,
                "date_achat": h.purchase.isoformat() if h.purchase else "",
                "age": age_years(h.purchase, as_of) if h.purchase else "",
                "renouvellement": add_years(h.purchase, life).isoformat()
                if h.purchase and life else "",
                "etat_renouvellement": RENEWAL_LABELS[renewal_state(h, as_of, renewal)],
                "image_prevue": h.image or "",
                "image_deployee": (f.image or "") if f else "",
                "derniere_reimage": (f.reimaged or "") if f else "",
                "systeme": (f.os or "") if f else "",
                "disque_go": f.disk_total_gb if f and f.disk_total_gb is not None else "",
                "disque_libre_go": f.disk_free_gb if f and f.disk_free_gb is not None else "",
                "faits_du": (f.collected or "") if f else "",
            })
    return out


def age_histogram(schools: Iterable[School], as_of: dt.date) -> dict[str, Counter]:
    """family -> Counter(age in full years) of the hosts with a purchase date."""
    out: dict[str, Counter] = {}
    for school in schools:
        for h in school.hosts:
            if h.purchase:
                out.setdefault(h.family, Counter())[age_years(h.purchase, as_of)] += 1
    return out


def campaign_by_wave(campaign: Campaign, schools: Iterable[School]) -> dict[str, Counter]:
    """wave -> Counter(state) of the campaign's schools (wave of the status, else the
    school's wave in the inventory); schools of the inventory absent from it are pending."""
    waves = {s.uai: s.wave for s in schools}
    out: dict[str, Counter] = {}
    for uai, wave in waves.items():
        entry = campaign.schools.get(uai)
        state = entry.state if entry else "pending"
        out.setdefault((entry.wave if entry and entry.wave else wave), Counter())[state] += 1
    return {w: Counter({s: c[s] for s in STATES if c[s]}) for w, c in sorted(out.items())}


def differences(previous: Previous, schools: Iterable[School]) -> dict[str, list]:
    """Schools added or left, hosts added or removed since the previous report."""
    schools = list(schools)
    now_schools = {s.uai: s.name for s in schools}
    now_hosts = {h.name: h.uai for s in schools for h in s.hosts}
    return {
        "ecoles_ajoutees": sorted((u, n) for u, n in now_schools.items()
                                  if u not in previous.schools),
        "ecoles_parties": sorted((u, n) for u, n in previous.schools.items()
                                 if u not in now_schools),
        "machines_ajoutees": sorted((h, u) for h, u in now_hosts.items()
                                    if h not in previous.hosts),
        "machines_retirees": sorted((h, u) for h, u in previous.hosts.items()
                                    if h not in now_hosts),
    }


def model_rows(schools: Iterable[School], as_of: dt.date, renewal: dict[str, int]) -> list[dict]:
    """Per family and model (hosts with a model): how many, bought when, how many due."""
    groups: dict[tuple[str, str], list[Host]] = {}
    for school in schools:
        for h in school.hosts:
            if h.model:
                groups.setdefault((h.family, h.model), []).append(h)
    rows = []
    for (family, model), hosts in groups.items():
        dates = sorted(h.purchase for h in hosts if h.purchase)
        rows.append({"famille": COLUMNS.get(family, family), "modele": model,
                     "nombre": len(hosts), "premier_achat": dates[0] if dates else None,
                     "dernier_achat": dates[-1] if dates else None,
                     "a_renouveler": sum(renewal_state(h, as_of, renewal) == "due"
                                         for h in hosts)})
    return sorted(rows, key=lambda r: (-r["nombre"], r["famille"], r["modele"]))
