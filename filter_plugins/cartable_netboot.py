# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the school server's network boot (role netboot) needs from the inventory.

* ``workstations | cartable_netboot_problems``: for each workstation summary
  (``{name, mac, image, action, mode}``; validate_inventory builds them from ``cartable_mac``,
  ``cartable_image``, ``netboot__action``, ``netboot__mode``), what stops its network boot, as
  ``{subject, text}`` problems: a workstation marked for a restore without a MAC (its boot
  script is found by MAC) or without an image, an unknown action or mode (a malformed MAC is
  validate_inventory's MAC check; ``cartable_netboot_hosts`` refuses it too).
* ``host names | cartable_netboot_hosts(hostvars, defaults)``: the boot entry of each
  workstation that has a MAC: ``{name, mac, mac_hyphens, image, version, action, mode,
  campaign}``, sorted by name; ``defaults`` gives ``action``, ``mode``, ``version`` and
  ``campaign`` for hosts that do not set ``netboot__action``, ``netboot__mode``,
  ``netboot__version`` or ``netboot__campaign``. A problem of ``cartable_netboot_problems``
  raises ``AnsibleFilterError`` naming every host concerned.
* ``entries | cartable_netboot_resolve(netboot_dir, cache_dir, restore_env)``: each entry with
  what decides its restore *at boot time* (the cache changes between converges: the nightly
  fetch brings new versions): ``version_file``, for version ``latest``, the script
  ``NETBOOT_DIR/www/versions/IMAGE.ipxe`` that sets ``cartable-version`` (written by
  cartable-netboot-versions only while the cache holds that version's manifest); ``restorable_if``,
  the file whose presence makes the entry restorable (that script, or the pinned version's
  ``CACHE_DIR/IMAGE/VERSION/manifest.json``; ``""`` when nothing can); ``missing``, why the entry
  can never be restored until a converge changes it (no image, no restore environment).

Actions: ``local`` (boot the local disk; the default, so an unknown machine is never
wiped) and ``restore`` (restore ``image`` at ``version`` in ``mode`` ``sync`` or ``new``).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError

ACTIONS = ("local", "restore")
MODES = ("sync", "new")
# image names, versions and campaigns go into iPXE scripts, kernel arguments, file names and
# shell words on the school server and the restore environment: nothing else is accepted
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
DEFAULTS = {"action": "local", "mode": "sync", "version": "latest", "campaign": "1"}


def _load_net() -> Any:
    """cartable_net.py beside this file (filter plugins are not a package)."""
    spec = importlib.util.spec_from_file_location("cartable_net_for_netboot",
                                                  Path(__file__).with_name("cartable_net.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_NET = _load_net()


def _problem(subject: Any, text: str) -> dict[str, str]:
    return {"subject": str(subject), "text": text}


def host_problems(host: Mapping[str, Any]) -> list[dict[str, str]]:
    """What stops one workstation's network boot (empty when nothing does)."""
    name, problems = host.get("name"), []
    action, mode = host.get("action"), host.get("mode")
    if action not in ACTIONS:
        problems.append(_problem(name, f"netboot__action '{action}' is not one of {', '.join(ACTIONS)}"))
    if mode not in MODES:
        problems.append(_problem(name, f"netboot__mode '{mode}' is not one of {', '.join(MODES)}"))
    mac = host.get("mac")
    if mac in (None, ""):
        if action == "restore":
            problems.append(_problem(name, "is marked for reimaging (netboot__action: restore) but has no "
                                           "cartable_mac: the school server finds a workstation's boot "
                                           "script by its MAC; add the MAC to the hardware CSV and rebuild "
                                           "the inventory"))
    if action == "restore" and not host.get("image"):
        problems.append(_problem(name, "is marked for reimaging (netboot__action: restore) but has no "
                                       "cartable_image: give its room kind an image in the site file "
                                       "(images:) and rebuild the inventory"))
    for key, variable in (("image", "cartable_image"), ("version", "netboot__version"),
                          ("campaign", "netboot__campaign")):
        value = host.get(key)
        if isinstance(value, float):
            problems.append(_problem(name, f"{variable} {value} is a number in YAML (2026.10 would read 2026.1): "
                                           f"quote it ({variable}: \"{value}\")"))
        elif value not in (None, "") and not _TOKEN.fullmatch(str(value)):
            problems.append(_problem(name, f"{variable} '{value}' is not a name the boot scripts can carry: "
                                           "use letters, digits, '.', '_' and '-' only, starting with a "
                                           "letter or a digit (e.g. cycle3, 2026.1)"))
    return problems


def cartable_netboot_problems(hosts: Any) -> list[dict[str, str]]:
    """Every workstation's network-boot problems, host by host."""
    if not isinstance(hosts, (list, tuple)) or not all(isinstance(host, Mapping) for host in hosts):
        raise AnsibleFilterError(f"cartable_netboot_problems: {hosts!r} is not a list of host summaries")
    return [problem for host in hosts for problem in host_problems(host)]


def cartable_netboot_hosts(names: Any, hostvars: Any, defaults: Any = None) -> list[dict[str, Any]]:
    """The boot entry of each named workstation that has a MAC, sorted by name."""
    if isinstance(names, (str, Mapping)) or not isinstance(names, (list, tuple)):
        raise AnsibleFilterError(f"cartable_netboot_hosts: {names!r} is not a list of host names")
    if defaults is not None and not isinstance(defaults, Mapping):
        raise AnsibleFilterError(f"cartable_netboot_hosts: defaults {defaults!r} is not a mapping")
    chosen = {**DEFAULTS, **(defaults or {})}
    summaries = []
    for name in sorted(names):
        variables = hostvars[name]
        summaries.append({
            "name": name,
            "mac": variables.get("cartable_mac"),
            "image": variables.get("cartable_image"),
            "version": variables.get("netboot__version", chosen["version"]),
            "action": variables.get("netboot__action", chosen["action"]),
            "mode": variables.get("netboot__mode", chosen["mode"]),
            "campaign": variables.get("netboot__campaign", chosen["campaign"]),
        })
    problems = cartable_netboot_problems(summaries)
    summaries = [{**summary, "version": str(summary["version"]), "campaign": str(summary["campaign"])}
                 for summary in summaries]
    if problems:
        raise AnsibleFilterError("cartable_netboot_hosts: " + "; ".join(
            f"{problem['subject']}: {problem['text']}" for problem in problems))
    entries = []
    for summary in summaries:
        if summary["mac"] in (None, ""):
            continue
        mac = _NET.mac(summary["mac"])
        entries.append({**summary, "name": _NET.dns_label(summary["name"]), "mac": mac,
                        "mac_hyphens": mac.replace(":", "-")})
    return entries


def cartable_netboot_resolve(entries: Any, netboot_dir: Any, cache_dir: Any,
                             restore_env: Any = True) -> list[dict[str, Any]]:
    """Each entry with what decides its restore at boot time (version_file, restorable_if, missing)."""
    if not isinstance(entries, (list, tuple)) or not all(isinstance(entry, Mapping) for entry in entries):
        raise AnsibleFilterError(f"cartable_netboot_resolve: {entries!r} is not a list of boot entries")
    for label, folder in (("netboot_dir", netboot_dir), ("cache_dir", cache_dir)):
        if not isinstance(folder, str) or not folder.startswith("/"):
            raise AnsibleFilterError(f"cartable_netboot_resolve: {label} {folder!r} is not an absolute path")
    netboot, cache = netboot_dir.rstrip("/"), cache_dir.rstrip("/")
    resolved = []
    for entry in entries:
        image, version = entry.get("image") or "", str(entry.get("version", "latest"))
        version_file = restorable_if = missing = ""
        if not image:
            missing = "no cartable_image"
        elif not restore_env:
            missing = "this school server has no restore environment (netboot__restore_env_url or _src)"
        if image and version == "latest":
            version_file = f"{netboot}/www/versions/{image}.ipxe"
        if not missing:
            restorable_if = version_file or f"{cache}/{image}/{version}/manifest.json"
        resolved.append({**entry, "version_file": version_file, "restorable_if": restorable_if,
                         "missing": missing})
    return resolved


class FilterModule:
    """Cartable's network-boot filters."""

    def filters(self) -> dict[str, Any]:
        return {"cartable_netboot_problems": cartable_netboot_problems,
                "cartable_netboot_hosts": cartable_netboot_hosts,
                "cartable_netboot_resolve": cartable_netboot_resolve}
