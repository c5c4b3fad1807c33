"""What the report reads, once validated: schools, their hosts, what the fleet says of itself."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# Room kinds of the workstations (cartable_room without the class number): French column
# names (postes_<name>) and labels.
ROOMS: dict[str, str] = {
    "direction": "direction",
    "bcd": "bcd",
    "computer_room": "salle_info",
    "class": "classes",
}
ROOM_LABELS: dict[str, str] = {
    "direction": "direction",
    "bcd": "BCD",
    "computer_room": "salle informatique",
    "class": "classes",
}
# Every room kind of the inventory, as materiel.csv names it.
ROOM_COLUMNS: dict[str, str] = {**ROOMS, "server": "serveur", "laptop_cart": "chariot_portables"}
RENEWAL_LABELS = {"due": "a_renouveler", "next": "dans_l_annee", "ok": "ok",
                  "unknown": "inconnu"}
STATES = ("ok", "failed", "unreachable", "running", "pending")
STATE_LABELS = {"ok": "terminé", "failed": "échec", "unreachable": "injoignable",
                "running": "en cours", "pending": "en attente", None: "hors campagne"}


@dataclass(frozen=True)
class Facts:
    """What Ansible's fact cache says of a host (each item may be missing)."""

    os: str | None = None
    disk_total_gb: float | None = None
    disk_free_gb: float | None = None
    image: str | None = None      # ansible_local.cartable_image.version
    reimaged: str | None = None   # ansible_local.cartable_image.reimaged (ISO date)
    collected: str | None = None  # ansible_date_time.iso8601


@dataclass(frozen=True)
class Host:
    name: str
    id: str                    # the stable id (hardware file key), = name unless renamed
    uai: str
    family: str                # role group: workstations, laptops, printers...
    room: str                  # direction, bcd, computer_room, class, server, laptop_cart...
    image: str | None          # the image the inventory plans for it
    model: str = ""
    purchase: dt.date | None = None
    facts: Facts | None = None


@dataclass(frozen=True)
class School:
    uai: str
    name: str
    kind: str
    commune_code: str
    commune_name: str
    link: str
    wave: str
    pupils: int | None
    pupils_source: str | None  # "annuaire" | "fichier" | None (unknown)
    hosts: tuple[Host, ...]


@dataclass(frozen=True)
class CampaignSchool:
    state: str
    wave: str | None
    started: str | None
    ended: str | None
    failed_hosts: tuple[str, ...]
    changed: int


@dataclass(frozen=True)
class Campaign:
    name: str
    playbook: str
    updated: str
    path: str
    schools: dict[str, CampaignSchool]
    check: bool = False  # a --check rehearsal: it deployed nothing


@dataclass(frozen=True)
class Previous:
    """A previous report folder: its schools (UAI -> name) and hosts (name -> UAI)."""

    path: str
    as_of: str
    schools: dict[str, str]
    hosts: dict[str, str]


@dataclass(frozen=True)
class Inputs:
    site: str
    as_of: dt.date
    schools: tuple[School, ...]
    campaign: Campaign | None = None
    previous: Previous | None = None
    sources: dict[str, str] = field(default_factory=dict)  # what was read, for the footer
    warnings: tuple[str, ...] = ()
