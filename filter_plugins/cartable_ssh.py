# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The management path of a school: its workstations are reached through its server.

The DSI's controller is not on the school LANs and the school server forwards nothing, so
SSH to a workstation (or a printer) goes through the school server: the generated inventory
sets, in each school group, ``ansible_ssh_common_args`` to
``{{ cartable_ssh_options|d("") }} {{ "<uai>-srv"|cartable_ssh_jump(hostvars) }}``
and, on the server itself, only ``{{ cartable_ssh_options|d("") }}``. The server's
name is written literally (not derived from ``inventory_hostname``) so that the value is the
same whichever host a task is delegated from.

Documented in the sidecar ``filter_plugins/cartable_ssh_jump.yml`` (ansible-doc -t filter).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError


def _get(hostvars: Mapping[str, Any], key: str) -> Any:
    try:
        value = hostvars[key]
    except KeyError:
        return None
    return None if value is None or value == "" else value


def ssh_jump(server: str, hostvars: Mapping[str, Any]) -> str:
    """``-o ProxyCommand=...`` that reaches %h:%p through ``server`` (its address, user, port,
    key and ``cartable_ssh_options`` as the inventory gives them), as one shell-quoted word."""
    if not isinstance(server, str) or not server:
        raise AnsibleFilterError(f"cartable_ssh_jump: the school server name {server!r} is not a "
                                 "host name (the school group's cartable_school_server)")
    try:
        hv = hostvars[server]
    except KeyError:
        raise AnsibleFilterError(f"cartable_ssh_jump: the school server {server!r} is not in the "
                                 "inventory") from None
    address = _get(hv, "ansible_host") or server
    user = _get(hv, "ansible_user")
    port = _get(hv, "ansible_port")
    key = _get(hv, "ansible_ssh_private_key_file")
    options = _get(hv, "cartable_ssh_options") or ""
    if not isinstance(options, str):
        raise AnsibleFilterError(f"cartable_ssh_jump: cartable_ssh_options of {server} is "
                                 f"{type(options).__name__}, expected a string of ssh options")
    words = ["ssh", *shlex.split(options),
             # Reuse the controller's master connection to the server when there is one; never
             # become a master from inside a ProxyCommand; never prompt.
             "-o", "ControlMaster=no", "-o", "BatchMode=yes"]
    if key:
        words += ["-i", str(key)]
    if port:
        try:
            words += ["-p", str(int(port))]
        except (TypeError, ValueError):
            raise AnsibleFilterError(f"cartable_ssh_jump: ansible_port of {server} is {port!r}, "
                                     "not a port number") from None
    words.append(f"{user}@{address}" if user else str(address))
    # ssh expands %-tokens in a ProxyCommand: the inner ssh's own (ControlPath=.../%C) are
    # passed through as %%, and only %h:%p are the outer connection's target.
    words = [w.replace("%", "%%") for w in words]
    words[-1:-1] = ["-W", "%h:%p"]
    return "-o " + shlex.quote("ProxyCommand=" + shlex.join(words))


class FilterModule:
    """The management path filter."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"cartable_ssh_jump": ssh_jump}
