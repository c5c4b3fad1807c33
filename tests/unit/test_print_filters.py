"""Tests of filter_plugins/cartable_print.py: the school's printers, queues, room defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import filters_of

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "filter_plugins" / "cartable_print.py"
BIN = Path(sys.executable).parent


FILTERS: dict[str, Callable[..., Any]] = filters_of("cartable_print")
school_printers = FILTERS["cartable_school_printers"]
print_queues = FILTERS["cartable_print_queues"]
room_queue = FILTERS["cartable_room_queue"]

KINDS = {"computer_room": "bw_laser", "bcd": "colour_laser", "direction": "colour_inkjet_mfp"}


def printer(name: str, kind: str = "", room: str = "", **extra: Any) -> dict[str, Any]:
    host: dict[str, Any] = {"inventory_hostname": name, "ansible_host": "10.35.0.20", **extra}
    if kind:
        host["cartable_printer_kind"] = kind
    if room:
        host["cartable_room"] = room
    return host


# --- cartable_school_printers --------------------------------------------------------------

def test_school_printers_are_the_schools_printers_sorted() -> None:
    groups = {"printers": ["0350607v-bwl02", "0350001a-bwl01", "0350607v-bwl01"],
              "school_0350607v": ["0350607v-srv", "0350607v-bwl02", "0350607v-bwl01"],
              "school_0350001a": ["0350001a-bwl01"]}
    assert school_printers(groups, "0350607V") == ["0350607v-bwl01", "0350607v-bwl02"]


def test_school_printers_of_a_school_without_printers() -> None:
    assert school_printers({"school_0350607v": ["0350607v-srv"]}, "0350607V") == []
    assert school_printers({"printers": ["x"]}, "0350607V") == []


@pytest.mark.parametrize("uai", ["", "  ", None, 350607])
def test_school_printers_refuse_a_missing_uai(uai: Any) -> None:
    with pytest.raises(AnsibleFilterError, match=r"cartable_school_printers: cartable_school_uai"):
        school_printers({}, uai)


def test_school_printers_refuse_groups_that_are_not_a_mapping() -> None:
    with pytest.raises(AnsibleFilterError, match=r"cartable_school_printers: input \['a'\]"):
        school_printers(["a"], "0350607V")


# --- cartable_print_queues -----------------------------------------------------------------

def test_queue_from_the_defaults_and_the_printers_vars() -> None:
    settings = {"kind_descriptions": {"bw_laser": "Laser noir et blanc"},
                "room_locations": {"computer_room": "Salle informatique"},
                "options": {"media-default": "iso_a4_210x297mm", "sides-default": "one-sided"}}
    queues = print_queues([printer("s-bwl01", "bw_laser", "computer_room",
                                   cartable_printer_options={"sides-default": "two-sided"})],
                          settings)
    assert queues == [{
        "name": "s-bwl01", "device_uri": "ipp://10.35.0.20:631/ipp/print", "model": "everywhere",
        "description": "Laser noir et blanc", "location": "Salle informatique",
        "options": {"media-default": "iso_a4_210x297mm", "sides-default": "two-sided"},
        "kind": "bw_laser", "room": "computer_room"}]


def test_queues_are_sorted_and_unknown_kinds_rooms_fall_back_to_names() -> None:
    queues = print_queues([printer("s-b", "plotter", "gym"), printer("s-a")])
    assert [q["name"] for q in queues] == ["s-a", "s-b"]
    assert (queues[1]["description"], queues[1]["location"]) == ("s-b", "gym")
    assert (queues[0]["kind"], queues[0]["room"], queues[0]["location"]) == ("", "", "")


def test_queue_uri_from_settings_or_the_printers_own() -> None:
    settings = {"uri_scheme": "ipps", "uri_port": 443, "uri_path": "/ipp"}
    assert print_queues([printer("p")], settings)[0]["device_uri"] == "ipps://10.35.0.20:443/ipp"
    own = printer("p", cartable_printer_uri="socket://10.35.0.21:9100")
    assert print_queues([own], settings)[0]["device_uri"] == "socket://10.35.0.21:9100"
    assert print_queues([printer("p", ansible_host="")])[0]["device_uri"] == ""


def test_queue_model_of_a_printer_without_ipp_everywhere() -> None:
    old = printer("p", cartable_printer_driverless=False, cartable_printer_model="drv:///x.ppd")
    assert print_queues([old])[0]["model"] == "drv:///x.ppd"
    bare = printer("p", cartable_printer_driverless="no")
    assert print_queues([bare])[0]["model"] == ""
    assert print_queues([bare], {"model": "lsb/usr/y.ppd"})[0]["model"] == "lsb/usr/y.ppd"
    assert print_queues([printer("p")], {"driverless": False, "model": "m"})[0]["model"] == "m"


@pytest.mark.parametrize(("printers", "settings", "message"), [
    ([printer("p", cartable_printer_options=["duplex"])], {},
     r"p: cartable_printer_options \['duplex'\] is of type list"),
    ([printer("p", cartable_printer_driverless="maybe")], {},
     r"p: cartable_printer_driverless 'maybe' is not a boolean"),
    ([printer("p", cartable_room=12)], {}, r"p: cartable_room 12 is of type int"),
    ([{"ansible_host": "10.35.0.20"}], {}, r"printer #0 None has no inventory_hostname"),
    (["p"], {}, r"printer #0 'p' is of type str"),
    ("p", {}, r"input 'p' is not a list of printers"),
    ([], {"uri_sheme": "ipp"}, r"settings \['uri_sheme'\] are not settings"),
    ([], {"kind_descriptions": "x"}, r"settings kind_descriptions 'x' is of type str"),
    ([], {"driverless": "sometimes"}, r"settings driverless 'sometimes' is not a boolean"),
])
def test_print_queues_refuse_bad_values_by_name(printers: Any, settings: Any, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=rf"^cartable_print_queues: {message}"):
        print_queues(printers, settings)


# --- cartable_room_queue -------------------------------------------------------------------

SCHOOL = [printer("s-mfp01", "colour_inkjet_mfp", "direction"),
          printer("s-bwl02", "bw_laser", "computer_room"),
          printer("s-bwl01", "bw_laser", "bcd"),
          printer("s-cl01", "colour_laser", "class")]


def test_room_queue_prefers_the_rooms_kind_in_the_room() -> None:
    assert room_queue(SCHOOL, "computer_room", KINDS) == "s-bwl02"


def test_room_queue_takes_the_kind_elsewhere_by_name() -> None:
    assert room_queue(SCHOOL[:1] + SCHOOL[2:], "computer_room", KINDS) == "s-bwl01"
    assert room_queue(SCHOOL, "bcd", KINDS) == "s-cl01"


def test_room_queue_falls_back_to_a_printer_of_the_room_then_none() -> None:
    assert room_queue(SCHOOL, "class", KINDS) == "s-cl01"
    assert room_queue(SCHOOL[1:], "direction", KINDS) == ""
    assert room_queue(SCHOOL, "gym", KINDS) == ""
    assert room_queue(SCHOOL, "", KINDS) == ""
    assert room_queue([], "computer_room", KINDS) == ""


@pytest.mark.parametrize(("printers", "room", "kinds", "message"), [
    (SCHOOL, "bcd", ["bcd"], r"room_printer_kinds \['bcd'\] is of type list"),
    (SCHOOL, "bcd", {"bcd": ["colour_laser"]},
     r"room_printer_kinds\['bcd'\] \['colour_laser'\] is of type list"),
    (SCHOOL, 3, KINDS, r"room 3 is of type int"),
    ([printer("p", cartable_printer_kind=1)], "bcd", KINDS, r"p: cartable_printer_kind 1"),
    ({"p": {}}, "bcd", KINDS, r"input \{'p': \{\}\} is not a list of printers"),
])
def test_room_queue_refuses_bad_values_by_name(printers: Any, room: Any, kinds: Any,
                                               message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=rf"^cartable_room_queue: {message}"):
        room_queue(printers, room, kinds)


# --- documentation: one sidecar per filter, readable by ansible-doc ------------------------

def test_every_print_filter_is_documented() -> None:
    sidecars = {p.stem for p in PLUGIN.parent.glob("cartable_*.yml")
                if "of cartable_print.py" in p.read_text(encoding="utf-8")}
    assert sidecars == set(FILTERS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="0")
    result = subprocess.run([BIN / "ansible-doc", "-t", "filter", "--json", *sorted(FILTERS)],
                            cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    docs = json.loads(result.stdout)
    for name, func in FILTERS.items():
        doc = docs[name]["doc"]
        assert doc["name"] == name
        params = list(func.__code__.co_varnames[:func.__code__.co_argcount])
        assert set(doc["options"]) == {"_input", *params[1:]}, name
        assert docs[name]["examples"] and docs[name]["return"]["_value"]
