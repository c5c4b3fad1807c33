"""The site file's `reimaging:` section: when each school's rooms are reimaged (issue 10).

    reimaging:                         # every school (a school's override merges over it)
      every: wednesday 12:00           # "<days> HH:MM": daily|nightly|weekdays|monday..sunday
      holidays:                        # during these date ranges, `every` of holidays replaces it
        every: nightly 21:00
        dates: [2026-12-19..2027-01-03, 2027-02-14..2027-03-01]
      closed: [2026-11-11, 2026-12-25..2027-01-01]   # days (or ranges) the school is closed
      batch: 4                         # PCs woken at once
      batch_interval: 60               # seconds between two batches
      wait: 45                         # minutes to wait for the restore reports
      rooms:                           # per room (a room kind, or a class room classNN)
        bcd: {every: friday 16:30}     # replaces the school's keys for that room
        direction: false               # never reimaged by schedule (on demand only)

Everything is checked here (file, line, field, how to fix); the school server's job
(roles/reimaging) gets the resolved schedule as host variables of the school's server.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from cartable.yamlsrc import Ctx, integer, list_of, mapping, text

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_WORDS = {"daily": DAYS, "nightly": DAYS, "weekdays": DAYS[:5], "weekends": DAYS[5:],
             **{day: (day,) for day in DAYS}, **{day[:3]: (day,) for day in DAYS}}
ROOM_KINDS = ("direction", "bcd", "computer_room", "class", "laptop_cart")
_EVERY_RE = re.compile(r"^\s*(?P<days>[a-z, ]+?)\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})\s*$")
_ROOM_RE = re.compile(r"^class\d{2}$")
EVERY_HINT = ("write '<days> HH:MM', days being daily, nightly, weekdays, weekends, a day "
              "(monday..sunday, mon..sun) or several separated by commas, e.g. 'wednesday 12:00'")
DATES_HINT = "write a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD (first day..last day)"
DEFAULTS = {"batch": 4, "batch_interval": 60, "wait": 45}


def parse_every(value: str) -> dict[str, Any] | None:
    """'wednesday 12:00' -> {'days': ['wednesday'], 'time': '12:00'}; None if malformed."""
    match = _EVERY_RE.match(value.lower())
    if not match:
        return None
    hour, minute = int(match["hour"]), int(match["minute"])
    if hour > 23 or minute > 59:
        return None
    days: list[str] = []
    for word in (w.strip() for w in match["days"].split(",")):
        if word not in DAY_WORDS:
            return None
        days += [d for d in DAY_WORDS[word] if d not in days]
    return {"days": sorted(days, key=DAYS.index), "time": f"{hour:02d}:{minute:02d}"}


def parse_range(value: Any) -> tuple[str, str] | None:
    """'2026-12-19..2027-01-03' or a date -> (first, last) ISO dates; None if malformed."""
    raw = value.isoformat() if isinstance(value, dt.date) else str(value).strip()
    first, _, last = raw.partition("..")
    try:
        start = dt.date.fromisoformat(first.strip())
        end = dt.date.fromisoformat(last.strip()) if last else start
    except ValueError:
        return None
    if end < start:
        return None
    return (start.isoformat(), end.isoformat())


def _every(raw: Any, ctx: Ctx) -> Any:
    values = raw if isinstance(raw, list) else [raw]
    out = []
    for value in values:
        if not isinstance(value, str) or parse_every(value) is None:
            ctx.fail(f"'{value}' is not a reimaging time", EVERY_HINT)
            continue
        out.append(parse_every(value))
    return out


def _range(raw: Any, ctx: Ctx) -> Any:
    parsed = parse_range(raw)
    if parsed is None:
        ctx.fail(f"'{raw}' is not a date or a date range (or its last day is before its first)",
                 DATES_HINT)
    return parsed


_SLOT = {
    "every": _every,
    "holidays": mapping({"every": _every}, required=("every",)),
    "batch": integer(1, 100),
    "batch_interval": integer(0, 3600),
    "wait": integer(1, 24 * 60),
}
_ROOM = mapping(_SLOT)


def _room_value(raw: Any, ctx: Ctx) -> Any:
    if raw is False:
        return False
    return _ROOM(raw, ctx)


def _rooms(raw: Any, ctx: Ctx) -> Any:
    if not isinstance(raw, dict):
        ctx.fail(f"expected a mapping of rooms, got {type(raw).__name__}")
        return {}
    lines = getattr(raw, "lines", {})
    out = {}
    for key, value in raw.items():
        sub = ctx.at(key, lines.get(key))
        if key not in ROOM_KINDS and not _ROOM_RE.match(str(key)):
            sub.fail(f"unknown room '{key}'",
                     f"a room kind ({', '.join(ROOM_KINDS)}) or a class room (class01, class02...)")
            continue
        out[key] = _room_value(value, sub)
    return out


SCHEMA = mapping({
    "every": _every,
    "holidays": mapping({"every": _every, "dates": list_of(_range)}, required=("every", "dates")),
    "closed": list_of(_range),
    "batch": integer(1, 100),
    "batch_interval": integer(0, 3600),
    "wait": integer(1, 24 * 60),
    "rooms": _rooms,
})


def merged(site: dict[str, Any] | None, school: dict[str, Any] | None) -> dict[str, Any]:
    """A school's reimaging section: its override's keys over the site's (rooms room by room)."""
    out = dict(site or {})
    for key, value in (school or {}).items():
        if key == "rooms":
            out["rooms"] = {**out.get("rooms", {}), **value}
        elif key == "holidays" and "dates" not in value and "holidays" in out:
            out["holidays"] = {**out["holidays"], **value}
        else:
            out[key] = value
    return out


def _room_of(workstation_room: str, rooms: dict[str, Any]) -> Any:
    """The room's own settings: its exact name, else its kind (class07 -> class), else {}."""
    if workstation_room in rooms:
        return rooms[workstation_room]
    kind = "class" if _ROOM_RE.match(workstation_room) else workstation_room
    return rooms.get(kind, {})


def school_vars(section: dict[str, Any], rooms_present: list[str]) -> dict[str, Any]:
    """The school server's variables (roles/reimaging) for the rooms the school has."""
    if not section:
        return {}
    holidays = section.get("holidays", {})
    rooms = {}
    for room in sorted(set(rooms_present)):
        own = _room_of(room, section.get("rooms", {}))
        if own is False:
            continue
        every = own.get("every", section.get("every", []))
        holiday_every = own.get("holidays", {}).get("every", holidays.get("every", []))
        if not every and not holiday_every:
            continue
        rooms[room] = {
            "every": [_slot_text(slot) for slot in every],
            "holidays_every": [_slot_text(slot) for slot in holiday_every],
            **{key: own.get(key, section.get(key, DEFAULTS[key])) for key in DEFAULTS},
        }
    return {
        "reimaging__rooms": rooms,
        "reimaging__holidays": [list(r) for r in holidays.get("dates", [])],
        "reimaging__closed": [list(r) for r in section.get("closed", [])],
    }


def _slot_text(slot: dict[str, Any]) -> str:
    return f"{','.join(slot['days'])} {slot['time']}"
