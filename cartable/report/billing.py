"""The billing statement: each commune's share under the site's tariff, to the cent.

Rule (docs/report.md#billing): each commune's amount at the tariff is
    per_workstation x workstations + per_laptop x laptops + per_pupil x pupils (known counts)
    + per_school x schools + fixed
with the commune's own prices where `billing.communes` gives them. The invoice is
`billing.invoice` when given (the amount to share: each commune's exact share is
invoice x its amount / the sum of the amounts), else the sum of the amounts rounded to the cent
(half up). Shares are computed exactly (fractions), rounded DOWN to the cent, and the cents
still missing to reach the invoice (fewer than the number of communes) go one each to the
communes whose dropped fraction is largest; ties go to the smaller INSEE code (largest
remainder, Hamilton's method). So the shares always add up to the invoice exactly and each
share is within one cent of its exact value.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from cartable.errors import InputError, Problem
from cartable.site_report import Billing

UNITS = {"per_workstation": "postes", "per_laptop": "portables", "per_pupil": "eleves",
         "per_school": "ecoles"}


def distribute(exact: list[Fraction], order: list[str], total_cents: int) -> list[int]:
    """Cents per item: floors, then one more cent to the largest remainders (ties: `order`,
    ascending) until the total is reached. Needs 0 <= total - sum(floors) <= len(exact)."""
    cents = [int((x * 100) // 1) for x in exact]
    missing = total_cents - sum(cents)
    if not 0 <= missing <= len(exact):
        raise ValueError(f"cannot distribute {missing} cents over {len(exact)} shares")
    ranked = sorted(range(len(exact)), key=lambda i: (-(exact[i] * 100 - cents[i]), order[i]))
    for i in ranked[:missing]:
        cents[i] += 1
    return cents


def commune_keys(billing: Billing, communes: list[dict], filename: str) -> dict[str, str]:
    """billing.communes key -> INSEE code; a key naming no commune of the report is an error."""
    by_code = {c["code_commune"] for c in communes}
    by_name = {c["commune"].casefold(): c["code_commune"] for c in communes}
    out, problems = {}, []
    for key in billing.communes:
        code = key if key in by_code else by_name.get(key.casefold())
        if code is None:
            problems.append(Problem(filename, f"billing.communes names '{key}', which is no "
                                    "commune of the inventory", billing.lines.get(key),
                                    f"billing.communes.{key}", "use the INSEE code of a commune "
                                    "of the selection (communes.csv of a report, or the "
                                    "commune_<code> groups of hosts.yml)"))
        else:
            out[key] = code
    if problems:
        raise InputError(problems)
    return out


def _amounts(commune: dict, prices: dict[str, Decimal]) -> dict[str, Decimal]:
    parts = {key: prices[key] * Decimal(commune[unit] or 0) for key, unit in UNITS.items()}
    parts["fixed"] = prices["fixed"]
    return parts


def statement(billing: Billing, communes: list[dict], filename: str) -> tuple[list[dict], dict]:
    """(one row per commune, the total row); InputError when the invoice has nothing to be
    shared by."""
    keys = commune_keys(billing, communes, filename)
    own = {code: billing.communes[key] for key, code in keys.items()}
    amounts = []
    for c in communes:
        prices = {**billing.tariff, **own.get(c["code_commune"], {})}
        amounts.append(_amounts(c, prices))
    raw = [sum(a.values(), Decimal(0)) for a in amounts]
    total_raw = sum(raw, Decimal(0))
    invoice = billing.invoice if billing.invoice is not None else \
        total_raw.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if total_raw == 0 and invoice > 0:
        raise InputError(Problem(filename, f"the invoice ({invoice} €) cannot be shared: every "
                                 "commune's amount at the tariff is 0", billing.line, "billing",
                                 hint="give prices in billing.tariff"))
    invoice_cents = int(invoice * 100)
    if invoice_cents != invoice * 100:
        raise InputError(Problem(filename, f"invoice {invoice} has fractions of a cent",
                                 billing.line, "billing.invoice", "round it to the cent"))
    scale = Fraction(invoice) / Fraction(total_raw) if total_raw else Fraction(0)
    exact = [Fraction(r) * scale for r in raw]
    cents = distribute(exact, [c["code_commune"] for c in communes], invoice_cents)
    rows = []
    for c, parts, r, share in zip(communes, amounts, raw, cents):
        rows.append({
            "code_commune": c["code_commune"], "commune": c["commune"],
            "ecoles": c["ecoles"], "postes": c["postes"], "portables": c["portables"],
            "eleves": c["eleves"], "ecoles_sans_effectif": c["ecoles_sans_effectif"],
            "part_postes": parts["per_workstation"], "part_portables": parts["per_laptop"],
            "part_eleves": parts["per_pupil"], "part_ecoles": parts["per_school"],
            "part_fixe": parts["fixed"], "montant_tarif": r,
            "quote_part": Decimal(share) / 100,
        })
    total = {"code_commune": "", "commune": "Total"}
    for column in ("ecoles", "postes", "portables", "eleves", "ecoles_sans_effectif",
                   "part_postes", "part_portables", "part_eleves", "part_ecoles", "part_fixe",
                   "montant_tarif", "quote_part"):
        total[column] = sum((r[column] for r in rows), Decimal(0) if column.startswith(
            ("part", "montant", "quote")) else 0)
    total["facture"] = invoice
    return rows, total
