"""Tests of filter_plugins/cartable_mirror.py: the hours of the mirror's timer (UT1 asks for
no download from 08:00 to 19:00 GMT)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import filters_of

hours = filters_of("cartable_mirror")["cartable_calendar_hours"]


def test_the_default_timer_runs_at_2_and_3_utc() -> None:
    assert hours("*-*-* 02:00:00 UTC", 3600) == [2, 3]
    assert hours("*-*-* 02:00:00 UTC") == [2]


@pytest.mark.parametrize(("calendar", "expected"), [
    ("Mon..Fri 18,22:30 UTC", [18, 22]),
    ("*-*-* 0..3:15 UTC", [0, 1, 2, 3]),
    ("*-*-* 0/6:00 UTC", [0, 6, 12, 18]),
    ("*-*-* 1..9/4:00 Etc/UTC", [1, 5, 9]),
    ("daily UTC", [0]),
    ("hourly UTC", list(range(24))),
    ("Sat *-*-* UTC", [0]),
    ("23:30 GMT", [23]),
])
def test_hour_fields(calendar: str, expected: list[int]) -> None:
    assert hours(calendar) == expected


def test_the_delay_wraps_around_midnight() -> None:
    assert hours("*-*-* 23:00:00 UTC", 5400) == [0, 1, 23]


def test_a_late_start_with_a_long_delay_reaches_working_hours() -> None:
    found = hours("*-*-* 06:00:00 UTC", 2 * 3600)
    assert 8 in found and set(found) & set(range(8, 19))


@pytest.mark.parametrize(("calendar", "delay", "message"), [
    ("*-*-* 02:00:00", 0, "name the time zone UTC"),
    ("*-*-* 02:00:00 Europe/Paris", 0, "name the time zone UTC"),
    ("*-*-* 25:00:00 UTC", 0, "not within 0..23"),
    ("*-*-* x:00 UTC", 0, "cannot read the hour 'x'"),
    ("", 0, "give a systemd calendar"),
    ("*-*-* 02:00:00 UTC", -1, "RandomizedDelaySec -1"),
])
def test_what_cannot_be_checked_fails_saying_why(calendar: str, delay: int, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        hours(calendar, delay)
