"""filter_plugins/cartable_netboot.py: the network-boot entries and their checks."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import load_plugin

FILTERS = load_plugin("cartable_netboot").FilterModule().filters()
problems_of = FILTERS["cartable_netboot_problems"]
hosts_of = FILTERS["cartable_netboot_hosts"]
resolve = FILTERS["cartable_netboot_resolve"]


def pc(name: str = "0350607v-sdi01", **changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "mac": "52:54:00:35:07:11", "image": "cycle3",
                             "action": "restore", "mode": "sync"}
    entry.update(changes)
    return entry


def test_a_workstation_ready_for_restore_has_no_problem() -> None:
    assert problems_of([pc(), pc("0350607v-sdi02", action="local", mac=None)]) == []


def test_restore_without_a_mac_is_named_with_the_fix() -> None:
    [problem] = problems_of([pc(mac=None)])
    assert problem["subject"] == "0350607v-sdi01"
    assert "no cartable_mac" in problem["text"] and "hardware CSV" in problem["text"]


@pytest.mark.parametrize(("key", "value", "variable"), [
    ("image", "cycle 3", "cartable_image"), ("image", "../cycle3", "cartable_image"),
    ("version", "2026.1;reboot", "netboot__version"), ("version", "-1", "netboot__version"),
    ("campaign", "$(id)", "netboot__campaign")])
def test_names_the_boot_scripts_cannot_carry_are_refused(key: str, value: str, variable: str) -> None:
    # they become iPXE words, kernel arguments, file names on the server and shell words
    [problem] = problems_of([pc(**{key: value})])
    assert f"{variable} '{value}'" in problem["text"] and "letters, digits" in problem["text"]


def test_a_version_yaml_reads_as_a_number_is_refused() -> None:
    # netboot__version: 2026.10 unquoted is the float 2026.1
    [problem] = problems_of([pc(version=2026.1)])
    assert "netboot__version 2026.1 is a number in YAML" in problem["text"] and "quote it" in problem["text"]
    with pytest.raises(AnsibleFilterError, match="is a number in YAML"):
        hosts_of(["pc"], {"pc": {"cartable_mac": "52:54:00:35:07:11", "cartable_image": "cycle3",
                                 "netboot__version": 2026.1}})
    assert problems_of([pc(version=2, campaign=3)]) == []  # whole numbers are what they say


def test_usual_names_and_versions_pass() -> None:
    assert problems_of([pc(image="cycle3", version="2026.1", campaign="2"),
                        pc(image="CE2_cm1-v2", version="latest", campaign=None)]) == []


def test_restore_without_an_image() -> None:
    [problem] = problems_of([pc(image=None)])
    assert "no cartable_image" in problem["text"]


@pytest.mark.parametrize(("key", "value", "variable"), [("action", "wipe", "netboot__action"),
                                                        ("mode", "full", "netboot__mode")])
def test_unknown_action_or_mode(key: str, value: str, variable: str) -> None:
    [problem] = problems_of([pc(**{key: value})])
    assert f"{variable} '{value}'" in problem["text"]


def test_entries_refuse_a_malformed_mac() -> None:
    with pytest.raises(AnsibleFilterError, match="not a MAC address"):
        hosts_of(["pc"], {"pc": {"cartable_mac": "52:54:00:35:07"}})


def test_entries_take_host_settings_over_defaults_and_skip_hosts_without_a_mac() -> None:
    hostvars = {
        "0350607v-sdi02": {"cartable_mac": "52-54-00-35-07-12", "cartable_image": "cycle2",
                           "netboot__action": "restore", "netboot__mode": "new"},
        "0350607v-sdi01": {"cartable_mac": "52:54:00:35:07:11", "cartable_image": "cycle3"},
        "0350607v-sdi03": {"cartable_image": "cycle3"},
    }
    entries = hosts_of(sorted(hostvars), hostvars, {"action": "local", "version": "2026.1"})
    assert entries == [
        {"name": "0350607v-sdi01", "mac": "52:54:00:35:07:11", "mac_hyphens": "52-54-00-35-07-11",
         "image": "cycle3", "version": "2026.1", "action": "local", "mode": "sync", "campaign": "1"},
        {"name": "0350607v-sdi02", "mac": "52:54:00:35:07:12", "mac_hyphens": "52-54-00-35-07-12",
         "image": "cycle2", "version": "2026.1", "action": "restore", "mode": "new", "campaign": "1"},
    ]


def test_entries_refuse_a_restore_without_a_mac_naming_the_host() -> None:
    hostvars = {"0350607v-sdi03": {"cartable_image": "cycle3", "netboot__action": "restore"}}
    with pytest.raises(AnsibleFilterError, match="0350607v-sdi03: is marked for reimaging.*no cartable_mac"):
        hosts_of(["0350607v-sdi03"], hostvars)


@pytest.mark.parametrize("bad", ["0350607v-sdi01", {"a": 1}, None])
def test_entries_refuse_a_non_list(bad: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="not a list of host names"):
        hosts_of(bad, {})


def test_resolve_leaves_the_version_to_boot_time_and_says_what_decides_it() -> None:
    entries = [{"name": "a", "image": "cycle3", "version": "latest"},
               {"name": "b", "image": "cycle2", "version": "2026.1"},
               {"name": "c", "image": "", "version": "latest"}]
    got = resolve(entries, "/srv/cartable-netboot/", "/srv/cartable/images")
    # latest: the versions script the boot chains (written while the cache holds the version)
    assert got[0]["version_file"] == "/srv/cartable-netboot/www/versions/cycle3.ipxe"
    assert got[0]["restorable_if"] == got[0]["version_file"] and got[0]["missing"] == ""
    # pinned: no versions script, the cache's manifest of that version
    assert got[1]["version_file"] == ""
    assert got[1]["restorable_if"] == "/srv/cartable/images/cycle2/2026.1/manifest.json"
    assert (got[2]["restorable_if"], got[2]["missing"]) == ("", "no cartable_image")
    assert "resolved_version" not in got[0]   # nothing frozen at converge time


def test_resolve_without_a_restore_environment_restores_nothing() -> None:
    got = resolve([{"name": "a", "image": "cycle3", "version": "latest"}], "/n", "/c", False)
    assert got[0]["restorable_if"] == "" and "no restore environment" in got[0]["missing"]


def test_resolve_refuses_bad_arguments() -> None:
    with pytest.raises(AnsibleFilterError, match="not a list of boot entries"):
        resolve("cycle3", "/n", "/c")
    with pytest.raises(AnsibleFilterError, match="cache_dir 'images' is not an absolute path"):
        resolve([], "/n", "images")


