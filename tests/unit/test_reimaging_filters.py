"""filter_plugins/cartable_reimaging.py: systemd calendars, timers and rooms of the schedule."""

from __future__ import annotations

import subprocess
import shutil

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import filters_of

FILTERS = filters_of("cartable_reimaging")
calendar = FILTERS["cartable_reimage_calendar"]
timers = FILTERS["cartable_reimage_timers"]
hosts = FILTERS["cartable_reimage_hosts"]
EVERY_DAY = "monday,tuesday,wednesday,thursday,friday,saturday,sunday"


@pytest.mark.parametrize(("slot", "expected"), [
    ("wednesday 12:00", "Wed *-*-* 12:00:00"),
    ("monday,thursday 07:45", "Mon,Thu *-*-* 07:45:00"),
    ("thursday,monday 07:45", "Mon,Thu *-*-* 07:45:00"),
    (f"{EVERY_DAY} 21:00", "*-*-* 21:00:00"),
])
def test_calendar(slot: str, expected: str) -> None:
    assert calendar(slot) == expected


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
@pytest.mark.parametrize("slot", ["wednesday 12:00", "monday,thursday 07:45", f"{EVERY_DAY} 21:00"])
def test_systemd_reads_the_calendar(slot: str) -> None:
    result = subprocess.run(["systemd-analyze", "calendar", calendar(slot)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert slot.split()[1] in result.stdout


@pytest.mark.parametrize("slot", ["wednesday 12h", "wensday 12:00", "daily 12:00", "monday 24:00", 7])
def test_calendar_refuses_what_the_site_file_never_gives(slot: object) -> None:
    with pytest.raises(AnsibleFilterError, match="is not '<days> HH:MM'"):
        calendar(slot)


def test_timers_one_per_room_and_slot_kind_sorted() -> None:
    result = timers({
        "computer_room": {"every": ["wednesday 12:00"], "holidays_every": [f"{EVERY_DAY} 21:00"]},
        "bcd": {"every": ["friday 16:30", "monday 07:45"], "holidays_every": []},
        "class01": {"every": [], "holidays_every": []},
    })
    assert result == [
        {"name": "cartable-reimage-bcd-regular", "room": "bcd", "slot": "regular",
         "on_calendar": ["Fri *-*-* 16:30:00", "Mon *-*-* 07:45:00"]},
        {"name": "cartable-reimage-computer_room-holidays", "room": "computer_room", "slot": "holidays",
         "on_calendar": ["*-*-* 21:00:00"]},
        {"name": "cartable-reimage-computer_room-regular", "room": "computer_room", "slot": "regular",
         "on_calendar": ["Wed *-*-* 12:00:00"]},
    ]


def test_timers_refuse_a_non_mapping() -> None:
    with pytest.raises(AnsibleFilterError, match="is not a mapping of rooms"):
        timers(["computer_room"])


def test_hosts_by_room() -> None:
    hostvars = {
        "0350607v-sdi02": {"cartable_mac": "52-54-00-35-07-12", "cartable_room": "computer_room",
                           "cartable_network": "pedagogical"},
        "0350607v-sdi01": {"cartable_mac": "52:54:00:35:07:11", "cartable_room": "computer_room"},
        "0350607v-bcd01": {"cartable_room": "bcd"},
    }
    assert hosts(sorted(hostvars), hostvars) == {
        "bcd": [{"name": "0350607v-bcd01", "mac": "", "network": "pedagogical"}],
        "computer_room": [{"name": "0350607v-sdi01", "mac": "52:54:00:35:07:11", "network": "pedagogical"},
                          {"name": "0350607v-sdi02", "mac": "52:54:00:35:07:12", "network": "pedagogical"}],
    }


def test_hosts_refuse_a_malformed_mac() -> None:
    with pytest.raises(AnsibleFilterError, match="0350607v-sdi01: cartable_mac '52:54:00' is not a MAC"):
        hosts(["0350607v-sdi01"], {"0350607v-sdi01": {"cartable_mac": "52:54:00"}})


def test_rooms_take_the_schedules_settings_over_the_defaults() -> None:
    members = {"bcd": [{"name": "b"}], "computer_room": [{"name": "s"}]}
    result = FILTERS["cartable_reimage_rooms"](
        members, {"computer_room": {"every": ["wednesday 12:00"], "batch": 6, "wait": 30}},
        {"batch": 4, "batch_interval": 60, "wait": 45})
    assert result == {"bcd": {"hosts": [{"name": "b"}], "batch": 4, "batch_interval": 60, "wait": 45},
                      "computer_room": {"hosts": [{"name": "s"}], "batch": 6, "batch_interval": 60, "wait": 30}}


def test_rooms_need_every_default() -> None:
    with pytest.raises(AnsibleFilterError, match="defaults lack wait"):
        FILTERS["cartable_reimage_rooms"]({}, {}, {"batch": 4, "batch_interval": 60})


def test_networks_address_and_broadcast() -> None:
    networks = {"pedagogical": {"subnet": "10.250.42.0/25"}, "administrative": {"subnet": "10.250.42.128/27"}}
    assert FILTERS["cartable_reimage_networks"](networks, {"pedagogical": "10.250.42.1"}) == {
        "pedagogical": {"address": "10.250.42.1", "broadcast": "10.250.42.127"}}
    with pytest.raises(AnsibleFilterError, match="10.250.43.1 is not in network pedagogical"):
        FILTERS["cartable_reimage_networks"](networks, {"pedagogical": "10.250.43.1"})
