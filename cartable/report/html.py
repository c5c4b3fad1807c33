"""The HTML page: one self-contained file (CSS inline, plots as inline SVG, no script, no
link to anything), French labels, numbers formatted the French way."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

THIN = "\u202f"  # narrow no-break space: the French thousands separator
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")


def fr_number(value: Any, decimals: int = 0) -> str:
    """12345.678 -> '12 345,68' (decimals=2); None or '' -> '—'."""
    if value is None or value == "":
        return "—"
    number = Decimal(str(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    sign = "−" if number < 0 else ""
    whole, _, frac = f"{abs(number):.{decimals}f}".partition(".")
    groups = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    return sign + THIN.join(groups) + ("," + frac if frac else "")


def fr_money(value: Any) -> str:
    return "—" if value is None else fr_number(value, 2) + "\u00a0€"


def fr_date(value: Any) -> str:
    """'2026-11-01' -> '1er novembre 2026'."""
    if not value:
        return "—"
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    first = "1er" if day.day == 1 else str(day.day)
    return f"{first} {MONTHS[day.month - 1]} {day.year}"


def fr_datetime(value: Any) -> str:
    """'2026-10-31T18:00:00+00:00' -> '31 octobre 2026 à 18 h 00 (UTC+00:00)'."""
    if not value:
        return "—"
    when = dt.datetime.fromisoformat(str(value))
    offset = when.strftime("%z")
    zone = f" (UTC{offset[:3]}:{offset[3:]})" if offset else ""
    return f"{fr_date(when.date())} à {when.hour} h {when.minute:02d}{zone}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=fr_number, eur=fr_money, date_fr=fr_date, datetime_fr=fr_datetime)
    return env


def render(context: dict[str, Any]) -> str:
    """The page; `plots` values are trusted SVG text (made by plots.py)."""
    context = {**context, "plots": {k: (Markup(svg), note)
                                    for k, (svg, note) in context["plots"].items()}}
    return _environment().get_template("report.html.j2").render(**context)
