# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the school server's scheduled reimaging (role reimaging) derives from the inventory.

* ``'wednesday 12:00' | cartable_reimage_calendar``: the systemd ``OnCalendar=`` expression
  (``Wed *-*-* 12:00:00``) of a schedule slot as the site file gives it (cartable/site_reimaging.py
  normalises it to ``<days, comma-separated> HH:MM``).
* ``reimaging__rooms | cartable_reimage_timers``: one timer per room and kind of slot
  (``regular``: ``every``; ``holidays``: ``holidays_every``) with its ``OnCalendar=`` lines:
  ``{name, room, slot, on_calendar}``, sorted by name. The job decides at run time whether the
  day is a holiday or closed (the timers only say when to look).
* ``host names | cartable_reimage_hosts(hostvars)``: the school's workstations by room:
  ``{room: [{name, mac, network}]}`` (MACs normalised, hosts sorted); a workstation without a
  MAC gets ``mac: ''`` (it cannot be woken nor found by the network boot: the job reports it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import netaddr
from ansible.errors import AnsibleFilterError

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SLOT_RE = re.compile(r"^(?P<days>[a-z]+(,[a-z]+)*) (?P<hour>[01]\d|2[0-3]):(?P<minute>[0-5]\d)$")
_UNIT_RE = re.compile(r"[^A-Za-z0-9_-]")
_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")


def cartable_reimage_calendar(slot: Any) -> str:
    """'monday,thursday 07:45' -> 'Mon,Thu *-*-* 07:45:00'; every day -> '*-*-* HH:MM:00'."""
    match = _SLOT_RE.match(str(slot).strip().lower()) if isinstance(slot, str) else None
    if not match or any(day not in DAYS for day in match["days"].split(",")):
        raise AnsibleFilterError(
            f"cartable_reimage_calendar: {slot!r} is not '<days> HH:MM' with days among "
            f"{', '.join(DAYS)} (the inventory's reimaging__rooms, from the site file)")
    days = sorted(set(match["days"].split(",")), key=DAYS.index)
    when = f"*-*-* {match['hour']}:{match['minute']}:00"
    if len(days) == len(DAYS):
        return when
    return ",".join(day[:3].capitalize() for day in days) + " " + when


def cartable_reimage_timers(rooms: Any) -> list[dict[str, Any]]:
    """One timer per room and slot kind that has times."""
    if not isinstance(rooms, Mapping):
        raise AnsibleFilterError(f"cartable_reimage_timers: {rooms!r} is not a mapping of rooms")
    timers = []
    for room, settings in rooms.items():
        if not isinstance(settings, Mapping):
            raise AnsibleFilterError(f"cartable_reimage_timers: room {room}: {settings!r} is not a mapping")
        for slot, key in (("regular", "every"), ("holidays", "holidays_every")):
            times = settings.get(key) or []
            if isinstance(times, str):
                times = [times]
            if times:
                timers.append({"name": f"cartable-reimage-{_UNIT_RE.sub('-', str(room))}-{slot}",
                               "room": str(room), "slot": slot,
                               "on_calendar": [cartable_reimage_calendar(t) for t in times]})
    return sorted(timers, key=lambda timer: timer["name"])


def cartable_reimage_hosts(names: Any, hostvars: Any) -> dict[str, list[dict[str, str]]]:
    """The named workstations grouped by room (cartable_room), with their MAC and network."""
    if isinstance(names, (str, Mapping)) or not isinstance(names, (list, tuple)):
        raise AnsibleFilterError(f"cartable_reimage_hosts: {names!r} is not a list of host names")
    rooms: dict[str, list[dict[str, str]]] = {}
    for name in sorted(names):
        variables = hostvars[name]
        mac = str(variables.get("cartable_mac") or "").lower()
        if mac and not _MAC_RE.match(mac):
            raise AnsibleFilterError(f"cartable_reimage_hosts: {name}: cartable_mac {mac!r} is not a MAC "
                                     "(six hex pairs, e.g. 52:54:00:35:07:11)")
        room = str(variables.get("cartable_room") or "unassigned")
        rooms.setdefault(room, []).append({"name": name, "mac": mac.replace("-", ":"),
                                           "network": str(variables.get("cartable_network", "pedagogical"))})
    return dict(sorted(rooms.items()))


SETTINGS = ("batch", "batch_interval", "wait")


def cartable_reimage_rooms(hosts: Any, schedule: Any, defaults: Any) -> dict[str, dict[str, Any]]:
    """Each room's workstations with its batch size, interval and wait (schedule over defaults)."""
    if not isinstance(hosts, Mapping) or not isinstance(schedule, Mapping) or not isinstance(defaults, Mapping):
        raise AnsibleFilterError("cartable_reimage_rooms: hosts by room, the schedule's rooms and the "
                                 f"defaults must be mappings, got {hosts!r}, {schedule!r}, {defaults!r}")
    missing = [key for key in SETTINGS if key not in defaults]
    if missing:
        raise AnsibleFilterError(f"cartable_reimage_rooms: defaults lack {', '.join(missing)}")
    return {room: {"hosts": list(members),
                   **{key: (schedule.get(room) or {}).get(key, defaults[key]) for key in SETTINGS}}
            for room, members in sorted(hosts.items())}


def cartable_reimage_networks(networks: Any, addresses: Any) -> dict[str, dict[str, str]]:
    """The server's address and the broadcast address of each school network it is on."""
    if not isinstance(networks, Mapping) or not isinstance(addresses, Mapping):
        raise AnsibleFilterError("cartable_reimage_networks: cartable_school_networks and cartable_addresses "
                                 f"must be mappings, got {networks!r}, {addresses!r}")
    out = {}
    for name in sorted(set(networks) & set(addresses)):
        try:
            subnet = netaddr.IPNetwork(str(networks[name]["subnet"]), version=4)
            address = netaddr.IPAddress(str(addresses[name]), version=4)
        except (KeyError, TypeError, netaddr.AddrFormatError, ValueError) as exc:
            raise AnsibleFilterError(f"cartable_reimage_networks: network {name}: {exc}") from None
        if address not in subnet:
            raise AnsibleFilterError(f"cartable_reimage_networks: the server's address {address} is not in "
                                     f"network {name} ({subnet})")
        out[name] = {"address": str(address), "broadcast": str(subnet.broadcast)}
    return out


class FilterModule:
    """Cartable's scheduled reimaging filters."""

    def filters(self) -> dict[str, Any]:
        return {"cartable_reimage_calendar": cartable_reimage_calendar,
                "cartable_reimage_timers": cartable_reimage_timers,
                "cartable_reimage_hosts": cartable_reimage_hosts,
                "cartable_reimage_rooms": cartable_reimage_rooms,
                "cartable_reimage_networks": cartable_reimage_networks}
