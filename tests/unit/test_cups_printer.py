"""Unit tests of library/cups_printer.py, in the community.general style.

AnsibleModule.run_command is patched with FakeCups, a small in-memory CUPS that answers lpstat, lpoptions, lpadmin,
cupsenable/cupsdisable/cupsaccept/cupsreject, lpinfo and ipptool with the same (C locale) output as CUPS 2.4, so a
task can be run twice and the second run must change nothing. exit_json/fail_json raise, and the tests assert on the
module's result and on the commands it ran. tests/integration/cups_printer/run.sh runs the module against a real cupsd.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "library"))
import cups_printer  # a module of library/, not a package

MODIFYING = {"lpadmin", "cupsenable", "cupsdisable", "cupsaccept", "cupsreject"}
URI = "ipp://imp01.school.lan/ipp/print"


class AnsibleExitJson(Exception):
    """exit_json was called."""


class AnsibleFailJson(Exception):
    """fail_json was called."""


def exit_json(self: basic.AnsibleModule, **kwargs: Any) -> None:
    kwargs.setdefault("changed", False)
    kwargs["warnings"] = list(getattr(self, "_test_warnings", []))
    raise AnsibleExitJson(kwargs)


def fail_json(self: basic.AnsibleModule, **kwargs: Any) -> None:
    kwargs["failed"] = True
    raise AnsibleFailJson(kwargs)


def warn(self: basic.AnsibleModule, message: str) -> None:
    self._test_warnings = [*getattr(self, "_test_warnings", []), message]


# --- an in-memory CUPS --------------------------------------------------------------------------------------------


@dataclass
class FakeQueue:
    uri: str
    make_and_model: str
    info: str = ""
    location: str = ""
    shared: bool = True
    enabled: bool = False
    accepting: bool = False
    options: dict[str, str] = field(default_factory=dict)  # server-side defaults (Option lines), without -default
    ppd: dict[str, str] = field(default_factory=dict)  # PPD defaults
    attrs: dict[str, str] = field(default_factory=lambda: {"printer-error-policy": "retry-job"})


class FakeCups:
    """Answers the CUPS command line tools like CUPS 2.4 in the C locale."""

    models: ClassVar[dict[str, str]] = {
        "everywhere": "IPP Everywhere",
        "raw": "Raw Queue",
        "drv:///sample.drv/generic.ppd": "Generic PostScript Printer",
        "drv:///sample.drv/laserjet.ppd": "HP LaserJet Series PCL 4/5",
    }

    def __init__(self) -> None:
        self.queues: dict[str, FakeQueue] = {}
        self.default: str | None = None
        self.running = True
        self.reachable = True  # whether `lpadmin -m everywhere` can query the printer
        # CUPS 2.4: after `lpadmin -m everywhere` uploads a PPD over a queue that had a PPD, printer-make-and-model
        # stays the old one until the next such request (seen with cupsd 2.4.2-3+deb12u9).
        self.stale_make_and_model: set[str] = set()
        self.calls: list[list[str]] = []
        self.failures: dict[str, tuple[int, str, str]] = {}  # tool -> forced (rc, out, err)

    def add(self, name: str, **kwargs: Any) -> FakeQueue:
        kwargs.setdefault("uri", URI)
        kwargs.setdefault("make_and_model", "HP LaserJet M404 - IPP Everywhere")
        self.queues[name] = FakeQueue(**kwargs)
        return self.queues[name]

    def tools(self) -> list[str]:
        return [argv[0] for argv in self.calls]

    def modifying(self) -> list[str]:
        return [shlex.join(argv) for argv in self.calls if argv[0] in MODIFYING]

    # run_command(self, args, check_rc=False, ..., data=None, ..., environ_update=None, ...)
    def __call__(self, module: basic.AnsibleModule, args: list[str], **kwargs: Any) -> tuple[int, str, str]:
        assert isinstance(args, list), "run_command must get a list"
        assert kwargs.get("environ_update") == {"LANG": "C", "LC_ALL": "C"}
        argv = [os.path.basename(args[0]), *args[1:]]
        self.calls.append(argv)
        if argv[0] in self.failures:
            return self.failures[argv[0]]
        handler = getattr(self, "do_" + argv[0])
        return handler(argv[1:], kwargs.get("data"))

    def _unknown(self, name: str) -> tuple[int, str, str]:
        return 1, "", f'lpstat: Invalid destination name in list "{name}".\n'

    def do_lpstat(self, args: list[str], data: str | None) -> tuple[int, str, str]:
        if args == ["-r"]:
            return 0, "scheduler is running\n" if self.running else "scheduler is not running\n", ""
        if not self.running:
            return (0, "no system default destination\n", "") if args == ["-d"] else self._unknown(args[-1])
        if args == ["-d"]:
            return (
                0,
                f"system default destination: {self.default}\n" if self.default else "no system default destination\n",
                "",
            )
        if args == ["-H"]:
            return 0, "/run/cups/cups.sock\n", ""
        name = args[-1]
        queue = self.queues.get(name)
        if queue is None:
            return self._unknown(name)
        since = "since Mon Nov 23 07:03:48 2026"
        if args[:2] == ["-l", "-p"]:
            state = f"is idle.  enabled {since}" if queue.enabled else f"disabled {since} -\n\treason unknown"
            return (
                0,
                (
                    f"printer {name} {state}\n\tForm mounted:\n\tContent types: any\n\tPrinter types: unknown\n"
                    f"\tDescription: {queue.info}\n\tAlerts: none\n\tLocation: {queue.location}\n\tConnection: direct\n"
                    "\tOn fault: no alert\n\tAfter fault: continue\n"
                ),
                "",
            )
        if args[0] == "-v":
            return 0, f"device for {name}: {re.sub(r'//[^@/]*@', '//', queue.uri)}\n", ""
        if args[0] == "-a":
            if queue.accepting:
                return 0, f"{name} accepting requests {since}\n", ""
            return 0, f"{name} not accepting requests {since} -\n\treason unknown\n", ""
        raise AssertionError(f"unexpected lpstat {args}")

    def do_lpoptions(self, args: list[str], data: str | None) -> tuple[int, str, str]:
        name = args[1]
        queue = self.queues.get(name)
        if queue is None or not self.running:
            return 0, "", ""
        if args[2:] == ["-l"]:
            if not queue.ppd:
                return 1, "", f"lpoptions: Unable to get PPD file for {name}: Not Found\n"
            return 0, "".join(f"{key}/{key}: Choice1 *{value} Choice2\n" for key, value in queue.ppd.items()), ""
        values = {
            "copies": "1",
            "device-uri": re.sub(r"//[^@/]*@", "//", queue.uri),
            "job-sheets": "none,none",
            "printer-info": queue.info,
            "printer-is-accepting-jobs": "true" if queue.accepting else "false",
            "printer-is-shared": "true" if queue.shared else "false",
            "printer-location": queue.location,
            "printer-make-and-model": queue.make_and_model,
            "printer-state": "3",
            **queue.options,
        }
        text = " ".join(f"{k}='{v}'" if re.search(r"\s", v) else f"{k}={v}" for k, v in sorted(values.items()))
        return 0, text + "\n", ""

    def do_lpadmin(self, args: list[str], data: str | None) -> tuple[int, str, str]:
        if args[0] == "-d":
            self.default = args[1]
            return 0, "", ""
        if args[0] == "-x":
            self.queues.pop(args[1], None)
            self.default = None if self.default == args[1] else self.default
            return 0, "", ""
        assert args[0] == "-p"
        name, rest = args[1], args[2:]
        queue = self.queues.get(name) or FakeQueue(uri="file:///dev/null", make_and_model="Local Raw Printer")
        err = ""
        pairs = list(zip(rest[::2], rest[1::2], strict=True))
        for flag, value in pairs:
            if flag == "-v":
                queue.uri = value
            elif flag == "-m":
                if value not in self.models:
                    return 1, "", "lpadmin: cups-driverd failed to get PPD file - see error_log for details.\n"
                if value == "everywhere" and self.reachable:
                    had_ppd = name in self.queues and queue.make_and_model != "Local Raw Printer"
                    if had_ppd and not queue.make_and_model.endswith(" - IPP Everywhere"):
                        if name not in self.stale_make_and_model:
                            self.stale_make_and_model.add(name)
                            queue.ppd = {"PageSize": "Letter"}
                            continue
                    self.stale_make_and_model.discard(name)
                    queue.make_and_model, queue.ppd = "HP LaserJet M404 - IPP Everywhere", {"PageSize": "Letter"}
                elif value in ("everywhere", "raw"):
                    queue.make_and_model, queue.ppd = "Local Raw Printer", {}
                    err = "lpadmin: Raw queues are deprecated and will stop working in a future version of CUPS.\n"
                else:
                    queue.make_and_model, queue.ppd = self.models[value], {"PageSize": "Letter", "Duplex": "None"}
            elif flag == "-D":
                queue.info = value
            elif flag == "-L":
                queue.location = value
        for flag, value in pairs:
            if flag == "-o":
                key, raw = value.split("=", 1)
                text = raw[1:-1].replace("\\'", "'").replace("\\\\", "\\") if raw.startswith("'") else raw
                if key == "printer-error-policy" and text not in (
                    "abort-job",
                    "retry-job",
                    "retry-current-job",
                    "stop-printer",
                ):
                    return 1, "", f'lpadmin: Unknown printer-error-policy "{text}".\n'
                if key == "printer-is-shared":
                    queue.shared = text == "true"
                elif key.startswith("printer-"):
                    queue.attrs[key] = text
                elif key.endswith("-default"):
                    queue.options[key[: -len("-default")]] = text
                elif key in queue.ppd:
                    queue.ppd[key] = text
        self.queues[name] = queue
        return 0, "", err

    def _set(self, args: list[str], attribute: str, value: bool) -> tuple[int, str, str]:
        setattr(self.queues[args[0]], attribute, value)
        return 0, "", ""

    def do_cupsenable(self, args: list[str], data: str | None) -> tuple[int, str, str]:
        return self._set(args, "enabled", True)

    def do_cupsdisable(self, args: list[str], data: str | None) -> tuple[int, str, str]:
        return self._set(args, "enabled", False)

    def do_cupsaccept(self, args: list[str], data: str | None) -> tuple[int, str, str]:
        return self._set(args, "accepting", True)

    def do_cupsreject(self, args: list[str], data: str | None) -> tuple[int, str, str]:
        return self._set(args, "accepting", False)

    def do_lpinfo(self, args: list[str], data: str | None) -> tuple[int, str, str]:
        return 0, "".join(f"{model} {nick}\n" for model, nick in self.models.items()), ""

    def do_ipptool(self, args: list[str], data: str | None) -> tuple[int, str, str]:
        assert args[0] == "-j" and args[1].startswith("ipp://%2Frun%2Fcups%2Fcups.sock/printers/")
        assert args[2] == "/dev/stdin" and data
        name = args[1].rsplit("/", 1)[1]
        requested = re.search(r"requested-attributes (\S+)", data).group(1).split(",")
        queue = self.queues[name]
        attrs = dict(queue.attrs, **{f"{k}-default": v for k, v in queue.options.items()})
        found = {key: attrs[key] for key in requested if key in attrs}
        groups = [{"group-tag": "operation-attributes-tag"}, {"group-tag": "printer-attributes-tag", **found}]
        return 0, json.dumps(groups), ""


# --- running the module -------------------------------------------------------------------------------------------


@pytest.fixture
def cups() -> FakeCups:
    return FakeCups()


@pytest.fixture(autouse=True)
def patched(cups: FakeCups) -> Any:
    def get_bin_path(self: basic.AnsibleModule, arg: str, required: bool = False, opt_dirs: Any = None) -> str:
        return f"/usr/sbin/{arg}"

    with mock.patch.multiple(
        basic.AnsibleModule,
        exit_json=exit_json,
        fail_json=fail_json,
        warn=warn,
        get_bin_path=get_bin_path,
        run_command=lambda self, args, **kw: cups(self, args, **kw),
    ):
        yield


def run(cups: FakeCups, **args: Any) -> dict[str, Any]:
    """Run the module with args; return its result, failed or not. cups.calls holds this run's commands only."""
    cups.calls.clear()
    with patch_module_args(args):
        try:
            cups_printer.main()
        except (AnsibleExitJson, AnsibleFailJson) as exc:
            return exc.args[0]
    raise AssertionError("the module neither exited nor failed")


LASER = {
    "name": "laser",
    "device_uri": URI,
    "driverless": True,
    "description": "Laser N&B",
    "location": "Salle informatique",
    "shared": True,
    "default": True,
    "options": {"media-default": "iso_a4_210x297mm", "printer-error-policy": "abort-job", "PageSize": "A4"},
}


# --- create, no-op, update ----------------------------------------------------------------------------------------


def test_create_runs_lpadmin_then_options_enable_accept_default(cups: FakeCups) -> None:
    result = run(cups, **LASER)

    assert result["changed"] is True
    assert cups.modifying() == [
        f"lpadmin -p laser -v {URI} -m everywhere -D 'Laser N&B' -L 'Salle informatique' -o printer-is-shared=true",
        "lpadmin -p laser -o media-default=iso_a4_210x297mm -o printer-error-policy=abort-job -o PageSize=A4",
        "cupsenable laser",
        "cupsaccept laser",
        "lpadmin -d laser",
    ]
    assert result["commands"][0].startswith("/usr/sbin/lpadmin -p laser")
    queue = cups.queues["laser"]
    assert (queue.enabled, queue.accepting, queue.shared, cups.default) == (True, True, True, "laser")
    assert queue.options == {"media": "iso_a4_210x297mm"} and queue.ppd == {"PageSize": "A4"}
    assert queue.attrs["printer-error-policy"] == "abort-job"
    assert result["printer"] == {
        "name": "laser",
        "state": "present",
        "make_and_model": "HP LaserJet M404 - IPP Everywhere",
        "device_uri": URI,
        "model": "everywhere",
        "description": "Laser N&B",
        "location": "Salle informatique",
        "shared": True,
        "default": True,
        "options": {"media-default": "iso_a4_210x297mm", "printer-error-policy": "abort-job", "PageSize": "A4"},
    }
    assert result["warnings"] == []


def test_second_run_changes_nothing(cups: FakeCups) -> None:
    run(cups, **LASER)
    result = run(cups, **LASER)

    assert result["changed"] is False
    assert result["commands"] == []
    assert cups.modifying() == []
    assert set(cups.tools()) == {"lpstat", "lpoptions", "ipptool"}  # reads only


def test_update_one_attribute_runs_one_command(cups: FakeCups) -> None:
    run(cups, **LASER)
    result = run(cups, **dict(LASER, location="Salle B"))

    assert result["changed"] is True
    assert cups.modifying() == ["lpadmin -p laser -L 'Salle B'"]
    assert cups.queues["laser"].location == "Salle B"
    assert result["printer"]["location"] == "Salle B"


def test_unset_settings_are_left_alone(cups: FakeCups) -> None:
    cups.add("laser", info="Old", location="Hall", shared=False, enabled=False, accepting=False)
    result = run(cups, name="laser")

    assert result["changed"] is False
    assert cups.modifying() == []
    assert result["printer"] == {
        "name": "laser",
        "state": "present",
        "make_and_model": "HP LaserJet M404 - IPP Everywhere",
    }


def test_device_uri_credentials_are_ignored_as_lpstat_hides_them(cups: FakeCups) -> None:
    cups.add("smb", uri="smb://user:secret@srv/queue", make_and_model="Local Raw Printer")
    result = run(cups, name="smb", uri="smb://user:other@srv/queue")
    assert result["changed"] is False

    result = run(cups, name="smb", uri="smb://user:secret@srv/queue2")
    assert cups.modifying() == ["lpadmin -p smb -v smb://user:secret@srv/queue2"]


def test_new_uri_on_a_driverless_queue_queries_the_printer_again(cups: FakeCups) -> None:
    cups.add("laser")
    run(cups, name="laser", uri="ipp://imp02.school.lan/ipp/print", driverless=True)
    assert cups.modifying() == ["lpadmin -p laser -v ipp://imp02.school.lan/ipp/print -m everywhere"]


# --- default ------------------------------------------------------------------------------------------------------


def test_default_moves_with_lpadmin_d(cups: FakeCups) -> None:
    cups.add("laser", enabled=True, accepting=True)
    cups.add("couleur", enabled=True, accepting=True)
    cups.default = "couleur"

    result = run(cups, name="laser", default=True)
    assert cups.modifying() == ["lpadmin -d laser"]
    assert cups.default == "laser" and result["printer"]["default"] is True
    assert run(cups, name="laser", default=True)["changed"] is False


def test_default_false_on_the_default_queue_warns_and_changes_nothing(cups: FakeCups) -> None:
    cups.add("laser")
    cups.default = "laser"

    result = run(cups, name="laser", default=False)
    assert result["changed"] is False
    assert cups.modifying() == []
    assert "CUPS cannot clear it" in result["warnings"][0]
    assert run(cups, name="other-not-default", default=False, uri=URI, model="raw")["warnings"] == []


# --- enable / disable ---------------------------------------------------------------------------------------------


def test_disable_rejects_and_stops(cups: FakeCups) -> None:
    cups.add("laser", enabled=True, accepting=True)
    result = run(cups, name="laser", enabled=False)

    assert cups.modifying() == ["cupsreject laser", "cupsdisable laser"]
    assert result["printer"]["enabled"] is False
    assert run(cups, name="laser", enabled=False)["changed"] is False


def test_enable_runs_only_what_is_missing(cups: FakeCups) -> None:
    cups.add("laser", enabled=False, accepting=True)
    result = run(cups, name="laser", enabled=True)

    assert cups.modifying() == ["cupsenable laser"]
    assert result["printer"]["enabled"] is True


def test_new_queue_can_be_created_disabled(cups: FakeCups) -> None:
    run(cups, name="raw", uri="socket://10.0.0.9:9100", model="raw", enabled=False)
    assert cups.modifying()[-2:] == ["cupsreject raw", "cupsdisable raw"]
    assert (cups.queues["raw"].enabled, cups.queues["raw"].accepting) == (False, False)


# --- options ------------------------------------------------------------------------------------------------------


def test_only_the_option_that_differs_is_set(cups: FakeCups) -> None:
    run(cups, **LASER)
    options = dict(LASER["options"], **{"printer-error-policy": "retry-job"})
    result = run(cups, **dict(LASER, options=options))

    assert cups.modifying() == ["lpadmin -p laser -o printer-error-policy=retry-job"]
    assert result["printer"]["options"]["printer-error-policy"] == "retry-job"


def test_option_values_are_normalised_and_quoted(cups: FakeCups) -> None:
    cups.add("laser", ppd={"PageSize": "Letter"})
    run(
        cups,
        name="laser",
        options={"job-sheets-default": ["none", "none"], "foo-default": "a b'c", "copies-default": 2},
    )

    # job-sheets is already none,none (lpoptions lists it); the value with a blank and a quote is quoted for
    # cupsParseOptions(), which lpadmin uses to read -o.
    assert [argv for argv in cups.calls if argv[0] == "lpadmin"] == [
        ["lpadmin", "-p", "laser", "-o", "foo-default='a b\\'c'", "-o", "copies-default=2"]
    ]
    assert cups.queues["laser"].options == {"foo": "a b'c", "copies": "2"}
    assert run(cups, name="laser", options={"foo-default": "a b'c", "copies-default": 2})["changed"] is False


def test_option_cups_does_not_keep_is_reported(cups: FakeCups) -> None:
    cups.add("laser", ppd={"PageSize": "Letter"})
    result = run(cups, name="laser", options={"media": "A4"})  # CUPS maps it onto the PPD: not readable as media

    assert result["changed"] is True
    assert "CUPS reports option media=None" in result["warnings"][0]


def test_options_read_without_ipptool_warn(cups: FakeCups) -> None:
    cups.add("laser")
    with mock.patch.object(
        basic.AnsibleModule,
        "get_bin_path",
        lambda self, arg, required=False, opt_dirs=None: None if arg == "ipptool" else f"/usr/bin/{arg}",
    ):
        result = run(cups, name="laser", options={"printer-error-policy": "retry-job"})
    assert "ipptool (cups-ipp-utils) is not installed" in result["warnings"][0]


# --- model --------------------------------------------------------------------------------------------------------


def test_model_drift_is_detected_through_make_and_model(cups: FakeCups) -> None:
    cups.add("generic", make_and_model="Generic PostScript Printer", ppd={"PageSize": "A4"})
    args = {"name": "generic", "model": "drv:///sample.drv/generic.ppd", "options": {"PageSize": "A4"}}

    assert run(cups, **args)["changed"] is False
    assert "lpinfo" in cups.tools()

    result = run(cups, **dict(args, model="drv:///sample.drv/laserjet.ppd"))
    # A new PPD resets its defaults, so the options are set again after -m.
    assert cups.modifying() == [
        "lpadmin -p generic -m drv:///sample.drv/laserjet.ppd",
        "lpadmin -p generic -o PageSize=A4",
    ]
    assert result["printer"]["model"] == "HP LaserJet Series PCL 4/5"

    run(cups, **dict(args, model="raw"))
    assert cups.modifying() == ["lpadmin -p generic -m raw", "lpadmin -p generic -o PageSize=A4"]
    assert run(cups, name="generic", model="raw")["changed"] is False
    assert run(cups, name="generic", driverless=True)["changed"] is True


def test_driver_to_everywhere_rereads_after_cups_reported_the_old_make_and_model(cups: FakeCups) -> None:
    # CUPS 2.4 reports the old driver after the first `lpadmin -m everywhere` over a PPD: the module asks again.
    cups.add("laser", make_and_model="Generic PostScript Printer", ppd={"PageSize": "A4"})
    result = run(cups, name="laser", driverless=True)

    assert result["changed"] is True
    assert cups.modifying() == ["lpadmin -p laser -m everywhere", "lpadmin -p laser -m everywhere"]
    assert result["commands"] == ["/usr/sbin/lpadmin -p laser -m everywhere"] * 2
    assert result["printer"]["model"] == "everywhere"
    assert run(cups, name="laser", driverless=True)["changed"] is False


def test_model_not_listed_by_lpinfo_is_left_alone_with_a_warning(cups: FakeCups) -> None:
    cups.add("generic", make_and_model="Generic PostScript Printer")
    result = run(cups, name="generic", model="lsb/usr/vendor/unknown.ppd")

    assert result["changed"] is False
    assert "is not listed by lpinfo -m" in result["warnings"][0]


def test_driverless_queue_that_cups_made_raw_fails(cups: FakeCups) -> None:
    cups.reachable = False
    result = run(cups, name="laser", uri="ipp://127.0.0.1:9/ipp/print", driverless=True)

    assert result["failed"] is True
    assert "instead of model 'everywhere'" in result["msg"]
    assert "is the printer at ipp://127.0.0.1:9/ipp/print reachable?" in result["msg"]


def test_lpadmin_deprecation_notices_are_returned(cups: FakeCups) -> None:
    result = run(cups, name="raw", uri="socket://10.0.0.9:9100", model="raw")
    assert result["messages"] == [
        "lpadmin: Raw queues are deprecated and will stop working in a future version of CUPS."
    ]


# --- absent -------------------------------------------------------------------------------------------------------


def test_absent_deletes_then_does_nothing(cups: FakeCups) -> None:
    cups.add("old")
    result = run(cups, name="old", state="absent", _ansible_diff=True)

    assert cups.modifying() == ["lpadmin -x old"]
    assert "old" not in cups.queues
    assert result["printer"] == {"name": "old", "state": "absent"}
    assert result["diff"]["before"]["state"] == "present"

    assert run(cups, name="old", state="absent")["changed"] is False
    assert cups.modifying() == []


# --- check mode and diff ------------------------------------------------------------------------------------------


def test_check_mode_create_runs_no_modifying_command(cups: FakeCups) -> None:
    result = run(cups, _ansible_check_mode=True, _ansible_diff=True, **LASER)

    assert result["changed"] is True
    assert cups.modifying() == []
    assert cups.queues == {}
    assert [cmd.split()[0] for cmd in result["commands"]] == ["/usr/sbin/lpadmin"] * 2 + [
        "/usr/sbin/cupsenable",
        "/usr/sbin/cupsaccept",
        "/usr/sbin/lpadmin",
    ]
    assert result["diff"]["before"] == {"name": "laser", "state": "absent"}
    assert result["diff"]["after"]["state"] == "present"
    assert result["diff"]["after"]["location"] == "Salle informatique"


def test_check_mode_update_and_absent_run_no_modifying_command(cups: FakeCups) -> None:
    run(cups, **LASER)
    before = repr(cups.queues["laser"])

    result = run(cups, _ansible_check_mode=True, **dict(LASER, location="Salle B", enabled=False))
    assert result["changed"] is True and cups.modifying() == []
    assert len(result["commands"]) == 3
    assert result["printer"]["location"] == "Salle B" and result["printer"]["enabled"] is False

    result = run(cups, _ansible_check_mode=True, name="laser", state="absent")
    assert result["changed"] is True and cups.modifying() == []
    assert repr(cups.queues["laser"]) == before


def test_diff_shows_before_and_after_of_managed_settings(cups: FakeCups) -> None:
    run(cups, **LASER)
    result = run(
        cups, _ansible_diff=True, name="laser", location="Salle B", options={"printer-error-policy": "stop-printer"}
    )

    assert result["diff"] == {
        "before": {
            "name": "laser",
            "state": "present",
            "make_and_model": "HP LaserJet M404 - IPP Everywhere",
            "location": "Salle informatique",
            "options": {"printer-error-policy": "abort-job"},
        },
        "after": {
            "name": "laser",
            "state": "present",
            "make_and_model": "HP LaserJet M404 - IPP Everywhere",
            "location": "Salle B",
            "options": {"printer-error-policy": "stop-printer"},
        },
    }


def test_no_diff_without_diff_mode(cups: FakeCups) -> None:
    assert "diff" not in run(cups, **LASER)


# --- failures and validation --------------------------------------------------------------------------------------


def test_failed_command_reports_rc_stdout_stderr_cmd(cups: FakeCups) -> None:
    cups.add("laser")
    result = run(cups, name="laser", options={"printer-error-policy": "bogus"})

    assert result["failed"] is True
    assert result["rc"] == 1
    assert result["stderr"] == 'lpadmin: Unknown printer-error-policy "bogus".\n'
    assert result["stdout"] == ""
    assert result["cmd"] == "/usr/sbin/lpadmin -p laser -o printer-error-policy=bogus"
    assert result["msg"] == 'lpadmin failed: lpadmin: Unknown printer-error-policy "bogus".'
    assert result["commands"] == [result["cmd"]]


def test_failure_in_a_later_command_lists_the_commands_already_run(cups: FakeCups) -> None:
    cups.failures["cupsenable"] = (1, "", "cupsenable: Forbidden\n")
    result = run(cups, name="raw", uri="socket://10.0.0.9:9100", model="raw")

    assert result["failed"] is True and result["rc"] == 1 and result["stderr"] == "cupsenable: Forbidden\n"
    assert [cmd.split()[0].rsplit("/", 1)[1] for cmd in result["commands"]] == ["lpadmin", "cupsenable"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"name": "new", "driverless": True}, "queue 'new' does not exist; to create it set device_uri"),
        ({"name": "new", "uri": URI}, "to create it set model (model=everywhere or driverless=true"),
        ({"name": "new"}, "to create it set device_uri and model"),
    ],
)
def test_creating_without_uri_or_model_names_the_option(cups: FakeCups, args: dict[str, Any], message: str) -> None:
    result = run(cups, _ansible_check_mode=True, **args)
    assert result["failed"] is True
    assert message in result["msg"]
    assert cups.modifying() == [] and cups.queues == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"name": "bad name"}, "not a valid CUPS queue name"),
        ({"name": "q@remote"}, "not a valid CUPS queue name"),
        ({"name": "x" * 128}, "not a valid CUPS queue name"),
        ({"name": "q", "driverless": True, "model": "raw"}, "driverless=true means model=everywhere"),
        ({"name": "q", "options": {"printer-is-shared": True}}, "options.printer-is-shared: use the shared option"),
        ({"name": "q", "options": {"device-uri": "x"}}, "use the device_uri option"),
        ({"name": "q", "options": {"bad key": "x"}}, "'bad key' is not a valid CUPS option name"),
        ({"name": "q", "options": {"media-default": None}}, "options.media-default has no value"),
    ],
)
def test_bad_input_fails_before_any_command(cups: FakeCups, args: dict[str, Any], message: str) -> None:
    result = run(cups, **args)
    assert result["failed"] is True
    assert message in result["msg"]
    assert cups.calls == []


def test_scheduler_not_running_fails_instead_of_seeing_no_queue(cups: FakeCups) -> None:
    cups.running = False
    result = run(cups, **LASER)

    assert result["failed"] is True
    assert "scheduler is not running" in result["msg"]
    assert result["cmd"] == "/usr/sbin/lpstat -r"
    assert cups.tools() == ["lpstat"]


def test_lpstat_error_other_than_unknown_queue_fails(cups: FakeCups) -> None:
    def lpstat(self: FakeCups, args: list[str], data: str | None) -> tuple[int, str, str]:
        return (0, "scheduler is running\n", "") if args == ["-r"] else (1, "", "lpstat: Forbidden\n")

    with mock.patch.object(FakeCups, "do_lpstat", lpstat):
        result = run(cups, name="laser")
    assert result["failed"] is True
    assert result["msg"] == "lpstat failed: lpstat: Forbidden"
    assert result["cmd"] == "/usr/sbin/lpstat -l -p laser"


# --- parsers ------------------------------------------------------------------------------------------------------


def test_parse_lpoptions_quoted_values_with_unescaped_quotes() -> None:
    out = "copies=1 foo='a b'c' printer-info='Laser N&B' printer-is-shared=true empty= last='x y'\n"
    assert cups_printer.parse_lpoptions(out) == {
        "copies": "1",
        "foo": "a b'c",
        "printer-info": "Laser N&B",
        "printer-is-shared": "true",
        "empty": "",
        "last": "x y",
    }


def test_parse_lpoptions_ppd_takes_the_starred_choice() -> None:
    out = "PageSize/Media Size: *A4 Env10 Letter\nColorModel/Output Mode: *Gray\nDuplex/2-Sided: None *DuplexNoTumble\n"
    assert cups_printer.parse_lpoptions_ppd(out) == {"PageSize": "A4", "ColorModel": "Gray", "Duplex": "DuplexNoTumble"}


def test_parse_ipptool_json_keeps_the_first_duplicate() -> None:
    out = (
        '[{"group-tag": "operation-attributes-tag"}, {"group-tag": "printer-attributes-tag",'
        ' "media-default": "iso_a5_148x210mm", "job-sheets-default": ["none", "none"],'
        ' "printer-is-shared": true, "media-default": "iso_a4_210x297mm"}]'
    )
    assert cups_printer.parse_ipptool_json(out) == {
        "media-default": "iso_a5_148x210mm",
        "job-sheets-default": "none,none",
        "printer-is-shared": "true",
    }
    assert cups_printer.parse_ipptool_json("not json") == {}


def test_parse_lpstat_outputs() -> None:
    assert cups_printer.parse_lpstat_default("system default destination: laser\n") == "laser"
    assert cups_printer.parse_lpstat_default("no system default destination\n") is None
    assert cups_printer.parse_lpstat_accepting("laser not accepting requests since Mon -\n\treason\n") is False
    assert cups_printer.parse_lpstat_accepting("laser accepting requests since Mon\n") is True
    assert cups_printer.parse_lpstat_device("device for laser: ipp://h/ipp/print\n") == "ipp://h/ipp/print"
    assert cups_printer.parse_lpstat_long("printer laser now printing laser-3.  enabled since Mon\n")["enabled"] is True


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("smb://user:pw@srv/q", "smb://srv/q"),
        ("ipp://h:631/ipp/print", "ipp://h:631/ipp/print"),
        ("hp:/net/HP_LaserJet?ip=10.0.0.1", "hp:/net/HP_LaserJet?ip=10.0.0.1"),
    ],
)
def test_strip_credentials(uri: str, expected: str) -> None:
    assert cups_printer.strip_credentials(uri) == expected


def test_documentation_yaml_is_valid() -> None:
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(cups_printer.DOCUMENTATION)
    spec_options = {
        "name",
        "state",
        "device_uri",
        "model",
        "driverless",
        "location",
        "description",
        "shared",
        "default",
        "enabled",
        "options",
    }
    assert set(doc["options"]) == spec_options
    assert yaml.safe_load(cups_printer.EXAMPLES)
    assert set(yaml.safe_load(cups_printer.RETURN)) == {"commands", "messages", "printer"}
