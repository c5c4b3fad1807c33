# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print filters for Cartable's roles: a school's printers, its CUPS queues, a room's default.

Written once for print_server (the queues of the school server), print_client (a
workstation's default destination) and the lab's print proof. Each filter is documented in
a sidecar file next to this one, ``filter_plugins/<filter name>.yml`` (read by
``ansible-doc -t filter NAME``). Bad input raises ``AnsibleFilterError`` naming the filter,
the printer or variable and the value.

The room rule: a room's default queue is the school's printer of the kind the room prints
to (``room_printer_kinds[room]``), one located in the room first, then by name; else a
printer located in the room; else none (``''``). A queue is named after the printer's
inventory hostname.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

# Keys of the settings of cartable_print_queues, with their defaults.
QUEUE_SETTINGS: dict[str, Any] = {
    "uri_scheme": "ipp",
    "uri_port": 631,
    "uri_path": "/ipp/print",
    "driverless": True,
    "model": "",
    "kind_descriptions": {},
    "room_locations": {},
    "options": {},
}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _fail(filter_name: str, where: str, value: Any, problem: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"{filter_name}: {where} {value!r} {problem}")


def _text(value: Any, filter_name: str, where: str) -> str:
    """A string variable (None and undefined-as-missing count as empty)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(filter_name, where, value, f"is of type {type(value).__name__}, "
                                               "expected a string")
    return value


def _mapping(value: Any, filter_name: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(filter_name, where, value, f"is of type {type(value).__name__}, "
                                               "expected a mapping (dict)")
    return value


def _bool(value: Any, filter_name: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _fail(filter_name, where, value, "is not a boolean (true or false)")


def _printers(value: Any, filter_name: str) -> list[Mapping[str, Any]]:
    """The printers' host variables, sorted by inventory name."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise _fail(filter_name, "input", value, "is not a list of printers' host variables "
                                                 "(groups[...] | map('extract', hostvars))")
    printers = []
    for index, printer in enumerate(value):
        printer = _mapping(printer, filter_name, f"printer #{index}")
        name = printer.get("inventory_hostname")
        if not isinstance(name, str) or not name:
            raise _fail(filter_name, f"printer #{index}", dict(printer).get(
                "inventory_hostname"), "has no inventory_hostname; pass host variables "
                                       "(map('extract', hostvars))")
        printers.append(printer)
    return sorted(printers, key=lambda printer: printer["inventory_hostname"])


def school_printers(groups: Mapping[str, Any], uai: str) -> list[str]:
    """Inventory names of the printers of school ``uai``, sorted."""
    name = "cartable_school_printers"
    groups = _mapping(groups, name, "input")
    if not isinstance(uai, str) or not uai.strip():
        raise _fail(name, "cartable_school_uai", uai, "is not a school code (UAI, e.g. "
                                                      "'0350607V')")
    school = set(groups.get(f"school_{uai.strip().lower()}", None) or [])
    return sorted(host for host in groups.get("printers", None) or [] if host in school)


def print_queues(printers: Any, settings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One CUPS queue per printer: name, device_uri, model, description, location, options,
    kind, room. device_uri and model are '' when they cannot be derived."""
    name = "cartable_print_queues"
    given = dict(_mapping(settings if settings is not None else {}, name, "settings"))
    unknown = sorted(set(given) - set(QUEUE_SETTINGS))
    if unknown:
        raise _fail(name, "settings", unknown, f"are not settings; known: "
                                               f"{', '.join(QUEUE_SETTINGS)}")
    conf = {**QUEUE_SETTINGS, **given}
    descriptions = _mapping(conf["kind_descriptions"], name, "settings kind_descriptions")
    locations = _mapping(conf["room_locations"], name, "settings room_locations")
    base_options = _mapping(conf["options"], name, "settings options")
    default_driverless = _bool(conf["driverless"], name, "settings driverless")
    default_model = _text(conf["model"], name, "settings model")
    queues = []
    for printer in _printers(printers, name):
        host = printer["inventory_hostname"]
        kind = _text(printer.get("cartable_printer_kind"), name, f"{host}: cartable_printer_kind")
        room = _text(printer.get("cartable_room"), name, f"{host}: cartable_room")
        address = _text(printer.get("ansible_host"), name, f"{host}: ansible_host")
        uri = _text(printer.get("cartable_printer_uri"), name, f"{host}: cartable_printer_uri")
        if not uri and address:
            uri = f"{conf['uri_scheme']}://{address}:{conf['uri_port']}{conf['uri_path']}"
        driverless = printer.get("cartable_printer_driverless")
        driverless = default_driverless if driverless is None else _bool(
            driverless, name, f"{host}: cartable_printer_driverless")
        model = "everywhere" if driverless else (
            _text(printer.get("cartable_printer_model"), name, f"{host}: cartable_printer_model")
            or default_model)
        options = _mapping(printer.get("cartable_printer_options") or {}, name,
                           f"{host}: cartable_printer_options")
        queues.append({
            "name": host,
            "device_uri": uri,
            "model": model,
            "description": descriptions.get(kind, host),
            "location": locations.get(room, room),
            "options": {**base_options, **options},
            "kind": kind,
            "room": room,
        })
    return queues


def room_queue(printers: Any, room: str, room_printer_kinds: Mapping[str, Any]) -> str:
    """The default queue of ``room`` among the printers (the room rule), or ''."""
    name = "cartable_room_queue"
    room = _text(room, name, "room")
    kinds = _mapping(room_printer_kinds, name, "room_printer_kinds")
    kind = _text(kinds.get(room), name, f"room_printer_kinds[{room!r}]") if room else ""
    found = [(printer["inventory_hostname"],
              _text(printer.get("cartable_printer_kind"), name,
                    f"{printer['inventory_hostname']}: cartable_printer_kind"),
              _text(printer.get("cartable_room"), name,
                    f"{printer['inventory_hostname']}: cartable_room"))
             for printer in _printers(printers, name)]
    of_kind = [(host, where) for host, printer_kind, where in found
               if kind and printer_kind == kind]
    in_room = [host for host, _kind, where in found if room and where == room]
    candidates = ([host for host, where in of_kind if where == room]
                  + [host for host, _where in of_kind] + in_room)
    return candidates[0] if candidates else ""


class FilterModule:
    """Cartable's print filters; all names start with ``cartable_``."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "cartable_school_printers": school_printers,
            "cartable_print_queues": print_queues,
            "cartable_room_queue": room_queue,
        }
