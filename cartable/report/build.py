"""Assemble the report: inputs -> figures -> the files of the output folder (name -> text)."""

from __future__ import annotations

from cartable.report import billing as bl
from cartable.report import compute, csvout, html, plots
from cartable.report.model import ROOM_LABELS, ROOMS, STATE_LABELS, STATES, Inputs
from cartable.site_report import FAMILIES, Billing


def _families(inputs: Inputs, renewal: dict[str, int]) -> list[dict]:
    out = []
    for family, label in FAMILIES.items():
        hosts = [h for s in inputs.schools for h in s.hosts if h.family == family]
        if not hosts:
            continue
        ages = [compute.age_years(h.purchase, inputs.as_of) for h in hosts if h.purchase]
        states = [compute.renewal_state(h, inputs.as_of, renewal) for h in hosts]
        out.append({"label": label, "count": len(hosts), "known": len(ages),
                    "mean_age": sum(ages) / len(ages) if ages else None,
                    "life": renewal.get(family), "due": states.count("due"),
                    "next": states.count("next")})
    return out


def build_report(inputs: Inputs, renewal: dict[str, int], billing: Billing | None,
                 site_file: str) -> dict[str, str]:
    """The files of the report folder. Pure but for matplotlib's rendering."""
    schools = [compute.school_row(s, inputs.as_of, renewal, inputs.campaign)
               for s in inputs.schools]
    communes = compute.commune_rows(schools)
    total = compute.total_row(schools)
    hosts = compute.host_rows(inputs.schools, inputs.as_of, renewal)
    files = {
        "ecoles.csv": csvout.to_csv(schools),
        "communes.csv": csvout.to_csv(communes),
        "materiel.csv": csvout.to_csv(hosts, list(hosts[0]) if hosts else ["machine", "uai"]),
    }
    statement = None
    if billing:
        rows, bill_total = bl.statement(billing, communes, site_file)
        files["facturation.csv"] = csvout.to_csv(rows)
        statement = {"title": billing.title, "tariff": billing.tariff, "invoice": billing.invoice,
                     "exceptions": sorted(billing.communes), "rows": rows, "total": bill_total}
    diff = compute.differences(inputs.previous, inputs.schools) if inputs.previous else None
    if diff is not None:
        files["evolution.csv"] = csvout.differences_csv(diff)
    campaign_waves = compute.campaign_by_wave(inputs.campaign, inputs.schools) \
        if inputs.campaign else {}
    figures = {
        "equipement": plots.equipment_per_commune(communes),
        "eleves-par-poste": plots.pupils_per_workstation(schools),
    }
    ages = compute.age_histogram(inputs.schools, inputs.as_of)
    if ages:
        figures["age"] = plots.age_histogram(ages)
    if inputs.campaign:
        figures["campagne"] = plots.campaign_progress(campaign_waves)
    files["rapport.html"] = html.render({
        "site": inputs.site, "as_of": inputs.as_of,
        "provisional": (inputs.as_of.month, inputs.as_of.day) != (11, 1),
        "schools": schools, "communes": communes, "total": total, "rooms": ROOMS,
        "room_labels": ROOM_LABELS,
        "missing_pupils": [s for s in schools if s["eleves"] is None],
        "families": _families(inputs, renewal), "renewal": renewal,
        "models": compute.model_rows(inputs.schools, inputs.as_of, renewal),
        "campaign": inputs.campaign, "campaign_waves": campaign_waves, "states": STATES,
        "state_labels": STATE_LABELS, "billing": statement, "diff": diff,
        "previous": inputs.previous, "plots": figures, "sources": inputs.sources,
        "warnings": list(inputs.warnings), "hosts_total": len(hosts),
        "facts_hosts": sum(1 for s in inputs.schools for h in s.hosts if h.facts),
    })
    return files
