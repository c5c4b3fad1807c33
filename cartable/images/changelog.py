"""What changed between two versions of an image, for the DSI to send to the schools."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cartable.images.debver import compare


@dataclass(frozen=True)
class Changes:
    image: str
    old: str
    new: str
    added: list[tuple[str, str]]
    removed: list[tuple[str, str]]
    upgraded: list[tuple[str, str, str]]
    downgraded: list[tuple[str, str, str]]
    requested_added: list[str]
    requested_removed: list[str]


def changes(old: dict[str, Any], new: dict[str, Any]) -> Changes:
    a, b = old["packages"], new["packages"]
    moved = [(n, a[n], b[n]) for n in sorted(a.keys() & b.keys()) if a[n] != b[n]]
    return Changes(
        image=new.get("image", "?"), old=old.get("version", "?"), new=new.get("version", "?"),
        added=[(n, b[n]) for n in sorted(b.keys() - a.keys())],
        removed=[(n, a[n]) for n in sorted(a.keys() - b.keys())],
        upgraded=[m for m in moved if compare(m[2], m[1]) > 0],
        downgraded=[m for m in moved if compare(m[2], m[1]) < 0],
        requested_added=sorted(set(new.get("requested", [])) - set(old.get("requested", []))),
        requested_removed=sorted(set(old.get("requested", [])) - set(new.get("requested", []))))


def as_text(c: Changes) -> str:
    lines = [f"{c.image} {c.old} -> {c.new}: {len(c.added)} added, {len(c.removed)} removed, "
             f"{len(c.upgraded)} upgraded, {len(c.downgraded)} downgraded"]
    if c.requested_added or c.requested_removed:
        lines.append("catalog: " + ", ".join([f"+{n}" for n in c.requested_added] +
                                             [f"-{n}" for n in c.requested_removed]))
    lines += [f"  + {n} {v}" for n, v in c.added]
    lines += [f"  - {n} {v}" for n, v in c.removed]
    lines += [f"  ^ {n} {o} -> {v}" for n, o, v in c.upgraded]
    lines += [f"  v {n} {o} -> {v}" for n, o, v in c.downgraded]
    return "\n".join(lines) + "\n"


def as_markdown(c: Changes) -> str:
    out = [f"## {c.image} {c.old} → {c.new}", ""]
    if c.requested_added or c.requested_removed:
        out += ["Chosen by the teachers: " + ", ".join(
            [f"**{n}** added" for n in c.requested_added] +
            [f"**{n}** removed" for n in c.requested_removed]), ""]
    out += [f"{len(c.added)} packages added, {len(c.removed)} removed, {len(c.upgraded)} "
            f"upgraded, {len(c.downgraded)} downgraded.", ""]
    rows = ([(n, "", v, "added") for n, v in c.added] +
            [(n, v, "", "removed") for n, v in c.removed] +
            [(n, o, v, "upgraded") for n, o, v in c.upgraded] +
            [(n, o, v, "downgraded") for n, o, v in c.downgraded])
    if rows:
        out += ["| package | old | new | change |", "|---|---|---|---|"]
        out += [f"| {n} | {o} | {v} | {what} |" for n, o, v, what in rows]
    return "\n".join(out) + "\n"
