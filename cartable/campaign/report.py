"""A campaign's status as a table (failures first), as CSV, and the check-mode summary."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

ORDER = {"failed": 0, "unreachable": 1, "running": 2, "pending": 3, "ok": 4}
COLUMNS = ("uai", "wave", "state", "changed", "started", "ended", "seconds", "failed_hosts",
           "failed_tasks", "error")


def _seconds(school: dict[str, Any]) -> str:
    try:
        start = datetime.fromisoformat(school["started"])
        end = datetime.fromisoformat(school["ended"])
    except (TypeError, ValueError):
        return ""
    return str(int((end - start).total_seconds()))


def rows(status: dict[str, Any]) -> list[dict[str, str]]:
    """One row per school: failed, unreachable, running, pending, then ok; by UAI within."""
    out = []
    for uai, school in sorted(status["schools"].items(),
                              key=lambda item: (ORDER[item[1]["state"]], item[0])):
        errors = school.get("errors") or []
        out.append({
            "uai": uai, "wave": school.get("wave") or "", "state": school["state"],
            "changed": str(school.get("changed", 0)), "started": school.get("started") or "",
            "ended": school.get("ended") or "", "seconds": _seconds(school),
            "failed_hosts": " ".join(school.get("failed_hosts") or []),
            "failed_tasks": "; ".join(school.get("failed_tasks") or []),
            "error": errors[0]["msg"] if errors else "",
        })
    return out


def table(status: dict[str, Any]) -> str:
    """A plain-text table for people; long cells are cut (the JSON has them whole)."""
    shown = ("uai", "wave", "state", "changed", "seconds", "failed_hosts", "failed_tasks", "error")
    limits = {"failed_hosts": 40, "failed_tasks": 40, "error": 60}
    cells = [[_cut(r[c], limits.get(c)) for c in shown] for r in rows(status)]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(shown)]
    lines = [f"campaign {status['campaign']} ({status.get('playbook')}"
             f"{', check mode' if status.get('check') else ''}), updated {status.get('updated')}",
             "  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]
    counts: dict[str, int] = {}
    for school in status["schools"].values():
        counts[school["state"]] = counts.get(school["state"], 0) + 1
    lines.append(", ".join(f"{counts[s]} {s}" for s in ORDER if s in counts) or "no school yet")
    return "\n".join(lines) + "\n"


def _cut(value: str, limit: int | None) -> str:
    return value if limit is None or len(value) <= limit else value[:limit - 1] + "…"


def to_csv(status: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(status))
    return buffer.getvalue()


def check_summary(status: dict[str, Any], uais: list[str]) -> str:
    """What a check-mode run would change, school by school and task by task."""
    lines = ["would change (check mode):"]
    quiet = []
    for uai in uais:
        school = status["schools"][uai]
        changes = school.get("changes") or {}
        if not changes:
            if school["state"] == "ok":
                quiet.append(uai)
            continue
        hosts = sorted({h for hs in changes.values() for h in hs})
        lines.append(f"  {uai} ({school.get('wave') or '-'}): {len(changes)} task(s) on "
                     f"{len(hosts)} host(s)")
        for task, on in changes.items():
            lines.append(f"    {task}: {', '.join(on)}")
        if school.get("artifacts"):
            lines.append(f"    (differences: {school['artifacts']}/stdout)")
    if len(lines) == 1:
        lines.append("  nothing")
    if quiet:
        lines.append(f"  no change: {', '.join(quiet)}")
    return "\n".join(lines) + "\n"
