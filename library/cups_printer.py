#!/usr/bin/python

# Copyright (c) 2026, Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cups_printer
short_description: Manage a CUPS print queue with lpadmin
description:
  - Create, update or delete one CUPS print queue (a "printer" in CUPS words) on the host, with the CUPS command line
    tools C(lpstat), C(lpoptions), C(lpadmin), C(cupsenable)/C(cupsdisable) and C(cupsaccept)/C(cupsreject).
  - The module reads the current queue first and only runs the commands needed for what differs, so a second run
    reports no change. Every command runs with C(LANG=C) and C(LC_ALL=C) so that the output it parses is stable.
  - 'How each setting is read back: O(device_uri) with C(lpstat -v), O(description), O(location) and O(enabled) with
    C(lpstat -l -p), O(enabled) also with C(lpstat -a), O(default) with C(lpstat -d), O(shared), the make and model and
    O(options) with C(lpoptions -p). See O(options) and O(model) for the limits of that read-back.'
  - The module fails before touching anything if the CUPS scheduler does not answer (C(lpstat -r)), because the client
    tools then report every queue as absent.
author:
  - Cartable contributors (@cartable)
extends_documentation_fragment:
  - action_common_attributes
attributes:
  check_mode:
    support: full
    details: Only read-only commands (C(lpstat), C(lpoptions), C(lpinfo -m), C(ipptool) Get-Printer-Attributes) run.
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of the queue. Up to 127 printable characters, without spaces, C(/), C(\), C(?), C(#), C(@) or quotes.
      - CUPS compares queue names without regard to case.
    type: str
    required: true
  state:
    description:
      - V(present) creates the queue or brings it to the wanted settings; V(absent) deletes it with C(lpadmin -x).
    type: str
    choices: [absent, present]
    default: present
  device_uri:
    description:
      - Device URI of the queue, for example V(ipp://printer.school.lan/ipp/print) or V(socket://10.1.2.3:9100).
      - Required to create a queue.
      - CUPS never reports the user name and password of a URI (C(lpstat -v) strips them), so the comparison ignores
        them too; a change of credentials alone is not detected.
    type: str
    aliases: [uri]
  model:
    description:
      - The driver, as a model name listed by C(lpinfo -m) and passed to C(lpadmin -m). V(everywhere) makes a driverless
        IPP Everywhere queue (C(lpadmin) queries the printer at O(device_uri) to build the PPD), V(raw) a queue without
        driver; a name such as V(drv:///sample.drv/generic.ppd) selects a PPD from an installed driver.
      - Required, or O(driverless=true), to create a queue.
      - 'CUPS does not record which model name a queue was made from, so on an existing queue the model is compared
        through the make and model CUPS reports (C(printer-make-and-model) in C(lpoptions -p NAME)): V(raw) matches
        C(Local Raw Printer); V(everywhere) matches a make and model ending in C( - IPP Everywhere), which is how CUPS
        names the PPD it generates; any other model matches when its NickName in C(lpinfo -m) equals the make and model.
        A model that C(lpinfo -m) does not list cannot be checked: the module warns and leaves the driver alone.'
      - Two V(everywhere) queues for different printers look alike, so when O(device_uri) changes and the task asks
        for O(model=everywhere) (or O(driverless=true)), the module runs C(lpadmin -m everywhere) again to query the
        new printer. Without O(model), the queue keeps the PPD of the old printer.
      - Changing the model replaces the PPD and its defaults, so all O(options) are set again afterwards.
      - After creating or changing the model the module reads the queue back and fails if the driver is not the one
        asked for. CUPS, asked for V(everywhere) on a printer it cannot reach, quietly makes a raw queue instead.
      - CUPS 2.4 keeps reporting the old make and model after C(lpadmin -m everywhere) replaced the PPD of a queue that
        had a driver (the new PPD is in place); the module then runs C(lpadmin -m everywhere) once more, which
        refreshes it, before reading the queue back.
    type: str
  driverless:
    description:
      - Shortcut for O(model=everywhere). V(false) has no effect.
    type: bool
    default: false
  location:
    description:
      - Human readable location of the printer (C(printer-location), C(lpadmin -L)).
      - When not set, the module leaves the location as it is.
    type: str
  description:
    description:
      - Human readable description of the queue (C(printer-info), C(lpadmin -D)).
      - When not set, the module leaves the description as it is.
    type: str
    aliases: [info]
  shared:
    description:
      - Whether CUPS shares the queue with other hosts (C(printer-is-shared)). Sharing also needs the server itself to
        share printers (C(cupsctl --share-printers)), which this module does not manage.
      - When not set, an existing queue keeps its setting and a new queue gets CUPS' default.
    type: bool
  default:
    description:
      - V(true) makes this queue the server's default destination (C(lpadmin -d)).
      - CUPS has no command to clear the default destination, so V(false) on the current default only warns; make
        another queue the default instead.
      - The current default is read with C(lpstat -d), which prefers C(LPDEST), C(PRINTER) and a C(Default) line of
        C(lpoptions) files to the server's default; keep those unset for the user Ansible runs as.
      - When not set, the module leaves the default alone.
    type: bool
  enabled:
    description:
      - V(true) makes the queue accept jobs and print them (C(cupsaccept) and C(cupsenable)); V(false) makes it refuse
        new jobs and stop printing (C(cupsreject) and C(cupsdisable)).
      - When not set, an existing queue keeps its state and a new queue is enabled.
    type: bool
  options:
    description:
      - Default options of the queue, each set with C(lpadmin -p NAME -o KEY=VALUE). Booleans become V(true) or V(false)
        and lists are joined with commas.
      - 'Each option is read back, in this order: from C(lpoptions -p NAME), which lists the server-side defaults (an
        option set as V(KEY-default) is listed as V(KEY)); from the PPD defaults (C(lpoptions -p NAME -l), keys such as
        V(PageSize) or V(Duplex)); then, if C(ipptool) (package cups-ipp-utils) is installed, as the queue attribute
        V(KEY) or V(KEY-default) (this is how V(printer-error-policy) and V(printer-op-policy) are read).'
      - Give values in the form CUPS reports them, or the module sees a difference on every run. For example
        V(media-default=iso_a4_210x297mm) or V(PageSize=A4), not V(media=A4) (which CUPS maps onto the PPD and
        reports as V(iso_a4_210x297mm)). Options the printer does not support are dropped by CUPS. After a change the
        module reads the options back and warns about every option CUPS did not keep.
      - Use O(device_uri), O(description), O(location) and O(shared) rather than their C(-o) forms.
    type: dict
    default: {}
requirements:
  - CUPS client tools (C(lpstat), C(lpadmin), C(lpoptions), C(cupsenable), C(cupsaccept); Debian package cups-client)
    and a running CUPS scheduler.
  - C(ipptool) (Debian package cups-ipp-utils) to read back options that C(lpoptions) does not list.
notes:
  - Commands go to the CUPS server the client tools are configured for (C(CUPS_SERVER), C(client.conf)), normally
    the local scheduler. Administrative operations need root or a member of the C(SystemGroup) of C(cups-files.conf).
  - C(lpadmin) prints deprecation notices for raw queues and printer drivers on CUPS 2.4; the module returns them in
    RV(messages).
seealso:
  - name: lpadmin(8)
    description: The CUPS command that configures queues.
    link: https://www.cups.org/doc/man-lpadmin.html
"""

EXAMPLES = r"""
- name: Driverless queue for the computer room laser, shared on the school LAN, default of the server
  cups_printer:
    name: salle-info-laser
    device_uri: ipp://0781234a-imp01.school.lan/ipp/print
    driverless: true
    description: Laser N&B - salle informatique
    location: Salle informatique
    shared: true
    default: true
    options:
      media-default: iso_a4_210x297mm
      sides-default: two-sided-long-edge
      printer-error-policy: retry-job

- name: Raw queue to a JetDirect port
  cups_printer:
    name: bcd-couleur
    uri: socket://10.20.3.40:9100
    model: raw
    info: Laser couleur BCD

- name: Take a queue offline while the printer is repaired (jobs are refused)
  cups_printer:
    name: direction-mfp
    enabled: false

- name: Remove a queue
  cups_printer:
    name: old-printer
    state: absent
"""

RETURN = r"""
commands:
  description: The commands that changed the queue, or would have in check mode.
  returned: always
  type: list
  elements: str
  sample: ["/usr/sbin/lpadmin -p salle-info-laser -L 'Salle informatique'", "/usr/sbin/cupsenable salle-info-laser"]
messages:
  description: What the modifying commands printed on standard error (CUPS' deprecation notices, for example).
  returned: always
  type: list
  elements: str
  sample: ["lpadmin: Raw queues are deprecated and will stop working in a future version of CUPS."]
printer:
  description:
    - The queue as CUPS reports it at the end of the run (as the module expects it to be, in check mode).
    - Only the settings the task manages are listed, besides RV(printer.name), RV(printer.state) and
      RV(printer.make_and_model).
  returned: always
  type: dict
  contains:
    name:
      description: Name of the queue.
      type: str
    state:
      description: V(present) or V(absent).
      type: str
    device_uri:
      description: Device URI without credentials.
      type: str
    make_and_model:
      description: The make and model CUPS reports (the PPD's NickName).
      type: str
    model:
      description: V(raw), V(everywhere), or the make and model for a queue made from another driver.
      type: str
    description:
      description: Description of the queue.
      type: str
    location:
      description: Location of the queue.
      type: str
    shared:
      description: Whether the queue is shared.
      type: bool
    default:
      description: Whether the queue is the server's default destination.
      type: bool
    enabled:
      description: Whether the queue both accepts and prints jobs.
      type: bool
    options:
      description: The managed options as CUPS reports them (V(null) when CUPS does not report one).
      type: dict
  sample:
    name: salle-info-laser
    state: present
    device_uri: ipp://0781234a-imp01.school.lan/ipp/print
    make_and_model: HP LaserJet M404 - IPP Everywhere
    model: everywhere
    location: Salle informatique
    shared: true
    default: true
    enabled: true
    options:
      media-default: iso_a4_210x297mm
"""

import json
import re
import shlex
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ansible.module_utils.basic import AnsibleModule

LANG_C = {"LANG": "C", "LC_ALL": "C"}

# lpadmin's validate_name() rejects control characters, space and these; "@" would name a remote queue.
NAME_RE = re.compile(r"""^[^\x00-\x20\x7f/\\?'"#@]{1,127}$""")
OPTION_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Options that have their own module parameter.
RESERVED_OPTIONS = {
    "device-uri": "device_uri",
    "printer-info": "description",
    "printer-location": "location",
    "printer-is-shared": "shared",
    "ppd-name": "model",
}
# lpstat's answer for a queue that does not exist (the scheduler is checked separately).
ABSENT_MARKERS = ("Invalid destination name", "Unknown destination", "No destinations added")
RAW_MAKE_AND_MODEL = "Local Raw Printer"
EVERYWHERE_SUFFIX = " - IPP Everywhere"
MANAGED_KEYS = ("device_uri", "model", "description", "location", "shared", "default", "enabled")


class CupsError(Exception):
    """A command failed; carries what fail_json reports."""

    def __init__(self, msg: str, cmd: list[str], rc: int, out: str, err: str) -> None:
        super().__init__(msg)
        self.details = {"msg": msg, "cmd": shlex.join(cmd), "rc": rc, "stdout": out, "stderr": err}


# --- parsers: pure functions over the C-locale output of the CUPS tools -------------------------------------------


def parse_lpstat_long(out: str) -> dict[str, Any]:
    """`lpstat -l -p NAME`: enabled, description, location."""
    result: dict[str, Any] = {"enabled": None, "description": "", "location": ""}
    for line in out.splitlines():
        if line.startswith("printer "):
            result["enabled"] = "disabled since" not in line
        elif line.startswith("\tDescription:"):
            result["description"] = line[len("\tDescription:") :].strip()
        elif line.startswith("\tLocation:"):
            result["location"] = line[len("\tLocation:") :].strip()
    return result


def parse_lpstat_device(out: str) -> str | None:
    """`lpstat -v NAME`: 'device for NAME: URI'."""
    for line in out.splitlines():
        if line.startswith("device for ") and ": " in line:
            return line.split(": ", 1)[1].strip()
    return None


def parse_lpstat_accepting(out: str) -> bool:
    """`lpstat -a NAME`: 'NAME accepting requests since ...' or 'NAME not accepting requests ...'."""
    first = out.splitlines()[0] if out.strip() else ""
    return " accepting requests" in first and " not accepting requests" not in first


def parse_lpstat_default(out: str) -> str | None:
    """`lpstat -d`: 'system default destination: NAME' or 'no system default destination'."""
    match = re.search(r"^system default destination: (\S+)", out, re.MULTILINE)
    return match.group(1) if match else None


_LPOPTION_RE = re.compile(r"([^\s=]+)=('(.*?)'(?=\s+[^\s=']+=|\s*$)|(\S*))", re.DOTALL)


def parse_lpoptions(out: str) -> dict[str, str]:
    """`lpoptions -p NAME`: key=value pairs; values with blanks are single-quoted, inner quotes are not escaped."""
    options: dict[str, str] = {}
    for match in _LPOPTION_RE.finditer(out.strip()):
        value = match.group(3) if match.group(3) is not None else match.group(4)
        options[match.group(1)] = value
    return options


def parse_lpoptions_ppd(out: str) -> dict[str, str]:
    """`lpoptions -p NAME -l`: 'PageSize/Media Size: Letter *A4 Legal' -> {'PageSize': 'A4'}."""
    options: dict[str, str] = {}
    for line in out.splitlines():
        keyword, sep, choices = line.partition(":")
        if not sep:
            continue
        for choice in choices.split():
            if choice.startswith("*"):
                options[keyword.split("/", 1)[0].strip()] = choice[1:]
                break
    return options


def parse_ipptool_json(out: str) -> dict[str, str]:
    """`ipptool -j`: printer attributes; the first of duplicated attributes wins (CUPS lists the server-side first)."""

    def keep_first(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            result.setdefault(key, value)
        return result

    try:
        groups = json.loads(out, object_pairs_hook=keep_first)
    except ValueError:
        return {}
    attributes: dict[str, str] = {}
    for group in groups if isinstance(groups, list) else []:
        if isinstance(group, dict) and group.get("group-tag") == "printer-attributes-tag":
            for key, value in group.items():
                if key != "group-tag":
                    attributes.setdefault(key, option_value(value))
    return attributes


def parse_lpinfo_models(out: str) -> dict[str, str]:
    """`lpinfo -m`: 'MODEL NICKNAME' per line."""
    models: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            models.setdefault(parts[0], parts[1].strip())
    return models


# --- pure helpers -------------------------------------------------------------------------------------------------


def option_value(value: Any) -> str:
    """The text CUPS uses for a value: true/false, comma-joined lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(option_value(item) for item in value)
    return str(value)


def quote_option(key: str, value: str) -> str:
    """KEY=VALUE for lpadmin -o, quoted the way cupsParseOptions() reads it."""
    if value and not re.search(r"[\s'\"\\]", value):
        return f"{key}={value}"
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"{key}='{escaped}'"


def strip_credentials(uri: str | None) -> str | None:
    """The URI without user:password@, as lpstat -v shows it."""
    if not uri:
        return uri
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def classify_model(make_and_model: str | None) -> str | None:
    """'raw' or 'everywhere' when the make and model tells, else None."""
    if make_and_model == RAW_MAKE_AND_MODEL:
        return "raw"
    if make_and_model and make_and_model.endswith(EVERYWHERE_SUFFIX):
        return "everywhere"
    return None


def model_matches(wanted: str, current: dict[str, Any], nickname: str | None) -> bool | None:
    """Whether the queue's driver is the wanted model; None when it cannot be told."""
    detected = current["model"]
    if wanted in ("raw", "everywhere"):
        return detected == wanted
    if detected is not None:
        return False
    if nickname is None:
        return None
    return nickname == current["make_and_model"]


def lookup_option(key: str, *sources: dict[str, str]) -> str | None:
    """KEY in the first source that has it; KEY-default is also looked up as KEY (lpoptions strips the suffix)."""
    short = key[: -len("-default")] if key.endswith("-default") else None
    for source in sources:
        if key in source:
            return source[key]
        if short and short in source:
            return source[short]
    return None


def plan_commands(
    name: str, current: dict[str, Any] | None, wanted: dict[str, Any], model_changed: bool
) -> list[list[str]]:
    """The commands (tool name first) that bring the queue from current to wanted. current=None: create."""
    creating = current is None
    cur: dict[str, Any] = current or {}
    commands: list[list[str]] = []

    args: list[str] = []
    uri_changed = bool(wanted["device_uri"]) and strip_credentials(wanted["device_uri"]) != cur.get("device_uri")
    if creating or uri_changed:
        args += ["-v", wanted["device_uri"]]
    requery = uri_changed and wanted["model"] == "everywhere"
    if creating or model_changed or requery:
        args += ["-m", wanted["model"]]
    for key, flag in (("description", "-D"), ("location", "-L")):
        if wanted[key] is not None and (creating or wanted[key] != cur.get(key)):
            args += [flag, wanted[key]]
    if wanted["shared"] is not None and (creating or wanted["shared"] != cur.get("shared")):
        args += ["-o", quote_option("printer-is-shared", option_value(wanted["shared"]))]
    if args:
        commands.append(["lpadmin", "-p", name, *args])

    new_driver = creating or model_changed or requery
    options = [
        (key, value)
        for key, value in wanted["options"].items()
        if new_driver or cur.get("options", {}).get(key) != value
    ]
    if options:
        commands.append(
            ["lpadmin", "-p", name] + [arg for key, value in options for arg in ("-o", quote_option(key, value))]
        )

    enabled = True if creating and wanted["enabled"] is None else wanted["enabled"]
    if enabled is True:
        if creating or not cur.get("enabled"):
            commands.append(["cupsenable", name])
        if creating or not cur.get("accepting"):
            commands.append(["cupsaccept", name])
    elif enabled is False:
        if creating or cur.get("accepting"):
            commands.append(["cupsreject", name])
        if creating or cur.get("enabled"):
            commands.append(["cupsdisable", name])

    if wanted["default"] and (creating or not cur.get("default")):
        commands.append(["lpadmin", "-d", name])
    return commands


def describe(name: str, queue: dict[str, Any] | None, wanted: dict[str, Any]) -> dict[str, Any]:
    """The queue restricted to what the task manages, for diff and the result."""
    if queue is None:
        return {"name": name, "state": "absent"}
    result: dict[str, Any] = {"name": name, "state": "present", "make_and_model": queue.get("make_and_model")}
    for key in MANAGED_KEYS:
        if wanted.get(key) is not None:
            result[key] = queue.get(key)
    if wanted.get("model") is not None:
        result["model"] = queue.get("model") or queue.get("make_and_model")
    if wanted.get("enabled") is not None:
        result["enabled"] = bool(queue.get("enabled") and queue.get("accepting"))
    if wanted.get("options"):
        result["options"] = {key: queue.get("options", {}).get(key) for key in wanted["options"]}
    return result


def predict(current: dict[str, Any] | None, wanted: dict[str, Any], model_changed: bool) -> dict[str, Any]:
    """The queue as it should be after plan_commands() ran (for check mode)."""
    queue = dict(current or {"enabled": True, "accepting": True, "default": False, "options": {}})
    for key in ("description", "location", "shared", "default", "enabled"):
        if wanted[key] is not None:
            queue[key] = wanted[key]
    if wanted["enabled"] is not None:
        queue["accepting"] = wanted["enabled"]
    if wanted["device_uri"]:
        queue["device_uri"] = strip_credentials(wanted["device_uri"])
    if current is None or model_changed:
        queue["model"] = wanted["model"]
    queue["options"] = dict(queue.get("options", {}), **wanted["options"])
    return queue


def wanted_settings(params: dict[str, Any]) -> dict[str, Any]:
    """Module parameters as the settings to compare; raises ValueError on contradictory or bad input."""
    if not NAME_RE.match(params["name"]):
        raise ValueError(
            f"name {params['name']!r} is not a valid CUPS queue name: use 1 to 127 printable characters without "
            "spaces, '/', '\\', '?', '#', '@' or quotes"
        )
    model = params["model"]
    if params["driverless"]:
        if model not in (None, "everywhere"):
            raise ValueError(f"driverless=true means model=everywhere, but model is {model!r}; set only one of them")
        model = "everywhere"
    options: dict[str, str] = {}
    for key, value in (params["options"] or {}).items():
        if key in RESERVED_OPTIONS:
            raise ValueError(f"options.{key}: use the {RESERVED_OPTIONS[key]} option of this module instead")
        if not OPTION_KEY_RE.match(key):
            raise ValueError(f"options: {key!r} is not a valid CUPS option name")
        if value is None:
            raise ValueError(f"options.{key} has no value")
        options[key] = option_value(value)
    return {
        "device_uri": params["device_uri"],
        "model": model,
        "description": params["description"],
        "location": params["location"],
        "shared": params["shared"],
        "default": params["default"],
        "enabled": params["enabled"],
        "options": options,
    }


# --- the module: commands against CUPS ----------------------------------------------------------------------------


class CupsPrinter:
    """Reads and changes one queue through the CUPS client tools."""

    def __init__(self, module: AnsibleModule, name: str) -> None:
        self.module = module
        self.name = name
        self.commands: list[str] = []
        self.messages: list[str] = []
        self._bins: dict[str, str] = {}

    def bin(self, tool: str, required: bool = True) -> str | None:
        if tool not in self._bins:
            path = self.module.get_bin_path(tool, required=required)
            if path is None:
                return None
            self._bins[tool] = path
        return self._bins[tool]

    def run(self, argv: list[str], check_rc: bool = True, data: str | None = None) -> tuple[int, str, str]:
        cmd = [self.bin(argv[0]) or argv[0], *argv[1:]]
        rc, out, err = self.module.run_command(cmd, environ_update=LANG_C, data=data)
        if check_rc and rc != 0:
            raise CupsError(f"{argv[0]} failed: {(err or out).strip() or 'rc=' + str(rc)}", cmd, rc, out, err)
        return rc, out, err

    def apply(self, argv: list[str]) -> None:
        cmd = [self.bin(argv[0]) or argv[0], *argv[1:]]
        self.commands.append(shlex.join(cmd))
        if self.module.check_mode:
            return
        _rc, _out, err = self.run(argv)
        self.messages.extend(line for line in err.splitlines() if line.strip())

    def check_scheduler(self) -> None:
        rc, out, err = self.run(["lpstat", "-r"], check_rc=False)
        if rc != 0 or "scheduler is running" not in out:
            raise CupsError(
                "the CUPS scheduler is not running or not reachable (lpstat -r); start cupsd first",
                [self.bin("lpstat") or "lpstat", "-r"],
                rc,
                out,
                err,
            )

    def read(self, option_keys: list[str]) -> dict[str, Any] | None:
        """The queue as CUPS reports it, or None when it does not exist."""
        rc, out, err = self.run(["lpstat", "-l", "-p", self.name], check_rc=False)
        if rc != 0:
            if any(marker in err + out for marker in ABSENT_MARKERS):
                return None
            cmd = [self.bin("lpstat") or "lpstat", "-l", "-p", self.name]
            raise CupsError(f"lpstat failed: {(err or out).strip()}", cmd, rc, out, err)
        queue = parse_lpstat_long(out)
        queue["device_uri"] = parse_lpstat_device(self.run(["lpstat", "-v", self.name])[1])
        queue["accepting"] = parse_lpstat_accepting(self.run(["lpstat", "-a", self.name])[1])
        default = parse_lpstat_default(self.run(["lpstat", "-d"])[1])
        queue["default"] = default is not None and default.lower() == self.name.lower()
        lpoptions = parse_lpoptions(self.run(["lpoptions", "-p", self.name])[1])
        queue["shared"] = {"true": True, "false": False}.get(lpoptions.get("printer-is-shared", ""))
        queue["make_and_model"] = lpoptions.get("printer-make-and-model")
        queue["model"] = classify_model(queue["make_and_model"])
        queue["options"] = self.read_options(option_keys, lpoptions, queue["model"] == "raw")
        return queue

    def read_options(self, keys: list[str], lpoptions: dict[str, str], raw: bool) -> dict[str, str | None]:
        found = {key: lookup_option(key, lpoptions) for key in keys}
        missing = [key for key, value in found.items() if value is None]
        if missing and not raw:
            rc, out, _err = self.run(["lpoptions", "-p", self.name, "-l"], check_rc=False)
            ppd = parse_lpoptions_ppd(out) if rc == 0 else {}
            found.update({key: ppd[key] for key in missing if key in ppd})
            missing = [key for key in missing if found[key] is None]
        if missing:
            attributes = self.printer_attributes(missing + [f"{key}-default" for key in missing])
            found.update({key: lookup_option(key, attributes) or attributes.get(f"{key}-default") for key in missing})
        return found

    def printer_attributes(self, names: list[str]) -> dict[str, str]:
        """Get-Printer-Attributes with ipptool from the server the client tools use (lpstat -H); {} without it."""
        if self.bin("ipptool", required=False) is None:
            self.module.warn(f"ipptool (cups-ipp-utils) is not installed: options {names} cannot be read back")
            return {}
        server = self.run(["lpstat", "-H"])[1].strip()
        host = quote(server, safe="") if server.startswith("/") else server
        uri = f"ipp://{host}/printers/{quote(self.name, safe='')}"
        test = (
            "{\nOPERATION Get-Printer-Attributes\nGROUP operation-attributes-tag\n"
            "ATTR charset attributes-charset utf-8\nATTR naturalLanguage attributes-natural-language en\n"
            "ATTR uri printer-uri $uri\n"
            f"ATTR keyword requested-attributes {','.join(names)}\n}}\n"
        )
        rc, out, _err = self.run(["ipptool", "-j", uri, "/dev/stdin"], check_rc=False, data=test)
        return parse_ipptool_json(out) if rc == 0 else {}

    def model_nickname(self, model: str) -> str | None:
        """NickName of a model in lpinfo -m, None when not listed."""
        return parse_lpinfo_models(self.run(["lpinfo", "-m"])[1]).get(model)


def model_change(cups: CupsPrinter, current: dict[str, Any] | None, model: str | None) -> bool:
    """Whether the existing queue needs `lpadmin -m`; warns when it cannot be told."""
    if current is None or model is None:
        return False
    nickname = None
    if model not in ("raw", "everywhere") and current["model"] is None:
        nickname = cups.model_nickname(model)
    matches = model_matches(model, current, nickname)
    if matches is None:
        cups.module.warn(
            f"model {model!r} is not listed by lpinfo -m, so the driver of queue {cups.name!r} "
            f"({current['make_and_model']!r}) cannot be compared with it and is left alone"
        )
        return False
    return not matches


def verify(cups: CupsPrinter, after: dict[str, Any] | None, wanted: dict[str, Any], driver_set: bool) -> None:
    """After a change: fail when the driver is not the one asked for, warn about options CUPS did not keep."""
    if after is None:
        raise CupsError(
            f"queue {cups.name!r} does not exist after lpadmin succeeded", ["lpstat", "-p", cups.name], 0, "", ""
        )
    model = wanted["model"]
    if driver_set and model in ("raw", "everywhere") and after["model"] != model:
        hint = (
            f" (is the printer at {wanted['device_uri'] or after['device_uri']} reachable?)"
            if model == "everywhere"
            else ""
        )
        raise CupsError(
            f"CUPS made queue {cups.name!r} with driver {after['make_and_model']!r} instead of model {model!r}{hint}; "
            "see the CUPS error_log",
            ["lpoptions", "-p", cups.name],
            0,
            "",
            "",
        )
    for key, value in wanted["options"].items():
        got = after["options"].get(key)
        if got != value:
            cups.module.warn(
                f"CUPS reports option {key}={got!r} for queue {cups.name!r} after setting {key}={value!r}: the printer "
                "may not support it or CUPS reports it in another form; the next run will set it again"
            )


def ensure(module: AnsibleModule, cups: CupsPrinter, wanted: dict[str, Any]) -> dict[str, Any]:
    """Compare, change what differs, and return the result (without the commands)."""
    name = cups.name
    current = cups.read(list(wanted["options"]))
    if module.params["state"] == "absent":
        if current is not None:
            cups.apply(["lpadmin", "-x", name])
        return result_dict(module, name, current, None, wanted)

    if current is None:
        missing = [opt for opt in ("device_uri", "model") if not wanted[opt]]
        if missing:
            hint = " (model=everywhere or driverless=true for a driverless queue, model=raw for no driver)"
            module.fail_json(
                msg=f"queue {name!r} does not exist; to create it set {' and '.join(missing)}"
                + (hint if "model" in missing else "")
            )
    elif wanted["default"] is False and current["default"]:
        module.warn(
            f"queue {name!r} is the default destination and CUPS cannot clear it: make another queue the default"
        )

    changed_model = model_change(cups, current, wanted["model"])
    planned = plan_commands(name, current, wanted, changed_model)
    for argv in planned:
        cups.apply(argv)
    after = current
    if planned and module.check_mode:
        after = predict(current, wanted, changed_model)
    elif planned:
        after = cups.read(list(wanted["options"]))
        driver_set = any("-m" in argv for argv in planned)
        if driver_set and stale_everywhere(current, after, wanted):
            # CUPS 2.4 keeps reporting the old make and model when lpadmin uploads an IPP Everywhere PPD over a queue
            # that already had a PPD (the new PPD is in place); the same request again refreshes it.
            cups.apply(["lpadmin", "-p", name, "-m", "everywhere"])
            after = cups.read(list(wanted["options"]))
        verify(cups, after, wanted, driver_set=driver_set)
    return result_dict(module, name, current, after, wanted)


def stale_everywhere(current: dict[str, Any] | None, after: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """Whether CUPS still reports the driver the queue had before `lpadmin -m everywhere` replaced its PPD."""
    return (
        wanted["model"] == "everywhere"
        and current is not None
        and after is not None
        and after["model"] != "everywhere"
        and current.get("make_and_model") not in (None, RAW_MAKE_AND_MODEL)
        and after.get("make_and_model") == current.get("make_and_model")
    )


def result_dict(
    module: AnsibleModule,
    name: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    wanted: dict[str, Any],
) -> dict[str, Any]:
    result: dict[str, Any] = {"printer": describe(name, after, wanted)}
    if module._diff:
        result["diff"] = {"before": describe(name, before, wanted), "after": result["printer"]}
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["absent", "present"]),
            device_uri=dict(type="str", aliases=["uri"]),
            model=dict(type="str"),
            driverless=dict(type="bool", default=False),
            location=dict(type="str"),
            description=dict(type="str", aliases=["info"]),
            shared=dict(type="bool"),
            default=dict(type="bool"),
            enabled=dict(type="bool"),
            options=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    module.run_command_environ_update = LANG_C
    try:
        wanted = wanted_settings(module.params)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    cups = CupsPrinter(module, module.params["name"])
    try:
        cups.check_scheduler()
        result = ensure(module, cups, wanted)
    except CupsError as exc:
        module.fail_json(commands=cups.commands, messages=cups.messages, **exc.details)
    module.exit_json(changed=bool(cups.commands), commands=cups.commands, messages=cups.messages, **result)


if __name__ == "__main__":
    main()
