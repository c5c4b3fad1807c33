"""The CSV files of the report: `;`-separated UTF-8, plain numbers (`.` decimal point, no
thousands separator), empty for unknown, data rows only (no total rows)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any


def cell(value: Any, column: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        places = 2 if column in ("quote_part", "facture") else None
        if places is None:
            text = format(value, "f")
            return text.rstrip("0").rstrip(".") if "." in text else text
        return f"{value:.2f}"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_csv(rows: list[dict], columns: list[str] | None = None) -> str:
    columns = columns or (list(rows[0]) if rows else [])
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(c), c) for c in columns])
    return out.getvalue()


def differences_csv(diff: dict[str, list]) -> str:
    rows = []
    for change, items in diff.items():
        for ident, other in items:
            rows.append({"changement": change, "identifiant": ident, "detail": other})
    return to_csv(rows, ["changement", "identifiant", "detail"])
