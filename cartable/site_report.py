"""The site file's report sections: the pupils file, the renewal policy, the billing tariff.

    pupils: pupils.csv            # per-school counts (uai, pupils): override / fill the directory
    renewal:                      # years of service after which a device is due for renewal
      workstations: 6
      laptops: 5
    billing:
      title: Quote-parts 2026     # the statement's title
      invoice: 48000.00           # optional: the amount to share; default: the tariff's total
      tariff: {per_workstation: 40.00, per_laptop: 20.00, per_pupil: 2.50,
               per_school: 150.00, fixed: 300.00}
      communes:                   # per commune (INSEE code): what differs from the tariff
        "35238": {fixed: 0}

Money is validated here (Decimal, >= 0, at most 4 decimals); which commune a key names is
checked by the report against the inventory (the site file alone does not know the communes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from cartable.yamlsrc import Ctx, integer, map_of, mapping, text

# Equipment families (the inventory's role groups): their French column names and labels.
COLUMNS: dict[str, str] = {
    "workstations": "postes",
    "laptops": "portables",
    "school_servers": "serveurs",
    "printers": "imprimantes",
    "scanners": "scanners",
    "projectors": "videoprojecteurs",
}
FAMILIES: dict[str, str] = {
    "workstations": "postes",
    "laptops": "portables",
    "school_servers": "serveurs",
    "printers": "imprimantes",
    "scanners": "scanners",
    "projectors": "vidéoprojecteurs",
}
TARIFF_KEYS = ("per_workstation", "per_laptop", "per_pupil", "per_school", "fixed")


def money(raw: Any, ctx: Ctx) -> Any:
    """A non-negative amount of euros with at most 4 decimals, as a Decimal."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        ctx.fail(f"expected an amount in euros, got {type(raw).__name__}", "e.g. 42.50")
        return Decimal(0)
    try:
        value = Decimal(str(raw).strip().replace(" ", "").replace(",", "."))
    except InvalidOperation:
        ctx.fail(f"'{raw}' is not an amount in euros", "write it as a number, e.g. 42.50")
        return Decimal(0)
    exponent = value.as_tuple().exponent
    if not value.is_finite() or value < 0 or not isinstance(exponent, int) or exponent < -4:
        ctx.fail(f"'{raw}' is not an amount in euros (>= 0, at most 4 decimals)",
                 "write it as a number, e.g. 42.50")
        return Decimal(0)
    return value


def _family_key(key: Any, ctx: Ctx) -> str | None:
    return None if key in FAMILIES else \
        f"unknown equipment family '{key}' (known: {', '.join(FAMILIES)})"


def _any_key(key: Any, ctx: Ctx) -> str | None:
    return None


_TARIFF = mapping({k: money for k in TARIFF_KEYS})
SCHEMA: dict[str, Any] = {
    "pupils": text,
    "renewal": map_of(_family_key, integer(1, 30)),
    "billing": mapping({
        "title": text,
        "invoice": money,
        "tariff": _TARIFF,
        "communes": map_of(_any_key, _TARIFF),
    }, required=("tariff",)),
}


@dataclass(frozen=True)
class Billing:
    """The tariff of the site: unit prices, an optional invoice, per-commune exceptions."""

    title: str
    tariff: dict[str, Decimal]
    invoice: Decimal | None = None
    communes: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # commune key -> site file line
    line: int | None = None


def to_billing(data: dict[str, Any], raw: Any) -> Billing | None:
    """The validated `billing:` section as a Billing (None when absent)."""
    billing = data.get("billing")
    if billing is None:
        return None
    raw_billing = raw.get("billing", {}) if isinstance(raw, dict) else {}
    raw_communes = raw_billing.get("communes", {}) if isinstance(raw_billing, dict) else {}
    tariff = {k: billing["tariff"].get(k, Decimal(0)) for k in TARIFF_KEYS}
    return Billing(
        title=billing.get("title", "Quotes-parts des communes"),
        tariff=tariff,
        invoice=billing.get("invoice"),
        communes={str(k): dict(v) for k, v in billing.get("communes", {}).items()},
        lines={str(k): n for k, n in getattr(raw_communes, "lines", {}).items()},
        line=getattr(raw, "lines", {}).get("billing"),
    )
