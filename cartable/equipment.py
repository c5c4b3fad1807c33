"""The equipment catalogue (what each role code means) and the default plan per school kind.

Host names are ``<uai lower-case>-<role code><NN>``, e.g. ``0350607v-sdi03``: DNS-safe, at most
15 characters (NetBIOS-safe too), stable because the UAI and the role never change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cartable.naming import host_name


@dataclass(frozen=True)
class Role:
    """What a role code stands for."""

    code: str
    title: str
    group: str            # Ansible role group
    room: str             # room key; "class" rooms are numbered per class
    network: str          # pedagogical | administrative
    image: str | None     # key in the site's `images` (workstations, laptops)
    printer_kind: str | None = None


ROLES: dict[str, Role] = {r.code: r for r in (
    Role("srv", "school server", "school_servers", "server", "pedagogical", None),
    Role("dir", "head's office PC", "workstations", "direction", "administrative", "direction"),
    Role("mfp", "colour inkjet multifunction printer", "printers", "direction", "administrative",
         None, "colour_inkjet_mfp"),
    Role("bcd", "library (BCD) PC", "workstations", "bcd", "pedagogical", "bcd"),
    Role("clr", "colour network laser (shared with municipal staff)", "printers", "bcd",
         "pedagogical", None, "colour_laser"),
    Role("sdi", "computer-room PC", "workstations", "computer_room", "pedagogical",
         "computer_room"),
    Role("bwl", "B/W network laser", "printers", "computer_room", "pedagogical", None, "bw_laser"),
    Role("scn", "scanner", "scanners", "computer_room", "pedagogical", None),
    Role("cls", "class PC", "workstations", "class", "pedagogical", "class"),
    Role("prj", "class projector", "projectors", "class", "pedagogical", None),
    Role("lap", "laptop (cart)", "laptops", "laptop_cart", "pedagogical", "laptop"),
)}
ROLE_GROUPS = tuple(sorted({r.group for r in ROLES.values()}))
IMAGE_KEYS = tuple(sorted({r.image for r in ROLES.values() if r.image}))

# Dijon's TICE convention; primaire (maternelle + élémentaire) takes the élémentaire plan.
DEFAULT_PLAN: dict[str, dict[str, int]] = {
    "elementaire": {"dir": 1, "mfp": 1, "bcd": 1, "clr": 1, "sdi": 12, "bwl": 1, "scn": 1},
    "maternelle": {"dir": 1, "mfp": 1},
    "primaire": {"dir": 1, "mfp": 1, "bcd": 1, "clr": 1, "sdi": 12, "bwl": 1, "scn": 1},
}


def class_count(pupils: int | None, pupils_per_class: int, default: int) -> int:
    """Classes of a school: ceil(pupils / pupils_per_class), or the default when unknown."""
    if pupils is None or pupils <= 0:
        return default
    return math.ceil(pupils / pupils_per_class)


def host_id(uai: str, code: str, index: int) -> str:
    """The stable id (and default host name) of a school's index-th host of a role."""
    return host_name(uai, code, index)
