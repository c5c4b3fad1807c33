"""`cartable reimage status`: each workstation's last restore, failures first.

Reads the files the status playbook fetched (`<site folder>/reimaging/<UAI>.json`, the output
of `cartable-reimage status --json` on each school server)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from cartable.errors import InputError, Problem

FOLDER = "reimaging"
_UAI_FILE = re.compile(r"^[0-9]{7}[A-Za-z]$")
COLUMNS = ("state", "school", "host", "room", "image", "version", "restored", "seconds", "result", "note")
ORDER = {"failed": 0, "never": 1, "pending": 2, "ok": 3}


def row(entry: dict[str, Any]) -> dict[str, str]:
    """One workstation's line: its state (failed, never, pending, ok) and why."""
    last_run = entry.get("last_run") or {}
    result = str(entry.get("result") or "")
    if last_run.get("result") == "failed":
        state, note = "failed", f"run {last_run.get('run', '')}: {last_run.get('reason', '')}"
    elif result and result != "ok":
        state, note = "failed", f"the restore reported '{result}'"
    elif not result:
        state, note = "never", "no restore reported yet"
    else:
        state, note = "ok", ""
    if entry.get("requested") and state != "failed":
        state, note = "pending", "restore requested, waiting for its report"
    elif entry.get("requested"):
        note += " (restore still requested: it restores at its next network boot)"
    return {"state": state, "school": str(entry.get("school", "")), "host": str(entry.get("name", "")),
            "room": str(entry.get("room", "")), "image": str(entry.get("image", "")),
            "version": str(entry.get("version", "")), "restored": str(entry.get("restored", "")),
            "seconds": str(entry.get("seconds", "")), "result": result, "note": note}


def rows(entries: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Lines sorted failures first, then never restored, pending, ok; by school and host."""
    return sorted((row(e) for e in entries), key=lambda r: (ORDER[r["state"]], r["school"], r["host"]))


def read_fetched(site_dir: Path, uais: list[str] | None = None) -> list[dict[str, Any]]:
    """The fetched status files of the site (all, or the given schools')."""
    folder = site_dir / FOLDER
    # <UAI>.json: one per school server (the folder also keeps converged.json, runs/)
    files = sorted(f for f in folder.glob("*.json") if _UAI_FILE.match(f.stem)) if folder.is_dir() else []
    if uais:
        files = [f for f in files if f.stem.upper() in {u.upper() for u in uais}]
    if not files:
        raise InputError(Problem(str(folder), "no reimaging status fetched from the school servers",
                                 hint="run cartable reimage status SITE without --no-fetch (it runs "
                                      "playbooks/reimage_status.yml)"))
    entries: list[dict[str, Any]] = []
    for path in files:
        entries += read_json(path, list, "a reimaging status (a JSON list)", "fetch it again (cartable reimage status SITE)")
    return entries


def read_json(path: Path, kind: type, what: str, hint: str) -> Any:
    """A JSON file of this folder that must hold a `kind`; InputError naming the file if not."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(Problem(str(path), f"not {what}: {exc}", hint=hint)) from None
    if not isinstance(data, kind):
        raise InputError(Problem(str(path), f"not {what}", hint=hint))
    return data


def table(lines: list[dict[str, str]]) -> str:
    if not lines:
        return "no workstation\n"
    heads = {"state": "state", "school": "school", "host": "workstation", "room": "room", "image": "image",
             "version": "version", "restored": "last restore", "seconds": "duration (s)",
             "result": "result", "note": "note"}
    widths = {c: max(len(heads[c]), *(len(line[c]) for line in lines)) for c in COLUMNS}
    out = ["  ".join(heads[c].ljust(widths[c]) for c in COLUMNS).rstrip()]
    out += ["  ".join(line[c].ljust(widths[c]) for c in COLUMNS).rstrip() for line in lines]
    counts = {s: sum(line["state"] == s for line in lines) for s in ORDER}
    out.append(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return "\n".join(out) + "\n"


def to_csv(lines: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(lines)
    return buffer.getvalue()


def to_json(lines: list[dict[str, str]]) -> str:
    return json.dumps(lines, indent=2) + "\n"
