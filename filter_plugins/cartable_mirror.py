# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hours of the DSI's mirror job: UT1 asks that its lists be fetched outside 08:00-19:00 GMT.

The role filter_mirror asserts that no hour ``cartable_calendar_hours`` returns for its timer
(``OnCalendar`` and ``RandomizedDelaySec``) falls in 8..18. The calendar must name its time
zone (UTC): a bare time would follow the host's zone (02:00 in Paris is 01:00 UTC in winter,
00:00 in summer), which is right today but not what the check can promise.

Documented in the sidecar ``filter_plugins/cartable_calendar_hours.yml`` (ansible-doc -t filter).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError

UTC_NAMES = {"UTC", "GMT", "ETC/UTC", "ETC/GMT", "UCT", "ZULU"}
# systemd.time(7): the shorthands, all at 00:00:00 but hourly and minutely.
SHORTHANDS = {"minutely": range(24), "hourly": range(24), "daily": [0], "midnight": [0],
              "weekly": [0], "monthly": [0], "yearly": [0], "annually": [0],
              "quarterly": [0], "semiannually": [0]}
_PART = re.compile(r"^(?:(\*)|(\d{1,2})(?:\.\.(\d{1,2}))?)(?:/(\d{1,2}))?$")


def _fail(calendar: object, why: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"cartable_calendar_hours: OnCalendar {calendar!r}: {why}")


def _hours(field: str, calendar: str) -> set[int]:
    """The hours of a systemd hour field: ``*``, ``2``, ``1,3``, ``0..5``, ``0/6``, ``1..5/2``."""
    hours: set[int] = set()
    for part in field.split(","):
        found = _PART.match(part)
        if not found:
            raise _fail(calendar, f"cannot read the hour {part!r} (give e.g. 02, 1,3, 0..5)")
        star, first, last, step = found.groups()
        start = 0 if star else int(first)
        stop = 23 if star or (last is None and step) else int(last if last is not None else first)
        if start > 23 or stop > 23 or stop < start:
            raise _fail(calendar, f"the hour {part!r} is not within 0..23")
        hours.update(range(start, stop + 1, int(step) if step else 1))
    return hours


def calendar_hours(calendar: str, delay: int = 0) -> list[int]:
    """The UTC hours (0..23) in which a timer with ``OnCalendar=calendar`` and
    ``RandomizedDelaySec=delay`` (seconds) may start its job, sorted."""
    if not isinstance(calendar, str) or not calendar.strip():
        raise _fail(calendar, "give a systemd calendar, e.g. '*-*-* 02:00:00 UTC'")
    if not isinstance(delay, int) or isinstance(delay, bool) or delay < 0:
        raise _fail(calendar, f"RandomizedDelaySec {delay!r} is not a number of seconds >= 0")
    words = calendar.split()
    if words[-1].upper() not in UTC_NAMES:
        raise _fail(calendar, "name the time zone UTC at the end (e.g. '*-*-* 02:00:00 UTC'): "
                    "the hours UT1 allows are in GMT, whatever the host's time zone")
    words = words[:-1]
    if len(words) == 1 and words[0].lower() in SHORTHANDS:
        hours = set(SHORTHANDS[words[0].lower()])
    else:
        times = [w for w in words if ":" in w]
        if len(times) > 1:
            raise _fail(calendar, "more than one time of day")
        hours = _hours(times[0].split(":")[0], calendar) if times else {0}
    # A start at hour h may run until h:59:59 + delay: every hour it may reach counts.
    spread = -(-delay // 3600)
    return sorted({(h + extra) % 24 for h in hours for extra in range(spread + 1)})


class FilterModule:
    """The mirror's timer hours."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"cartable_calendar_hours": calendar_hours}
