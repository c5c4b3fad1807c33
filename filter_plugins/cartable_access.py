# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lock-out guard: would a converge leave Ansible (and the DSI) a way back in?

``ansible_user | cartable_lockout_problem(permit_root_login, admins, kept_logins)`` returns
``''`` when the account Ansible connects as can still log in after the common role has run,
else a sentence naming the variables to set. After the common role, SSH lets in:

* root, only if ``common__sshd_permit_root_login`` is not ``no``;
* the administrators of ``cartable_admins`` that are present and have a key;
* accounts made outside Cartable that keep their key (an image's deploy user), when the
  inventory declares them in ``validate_inventory__kept_logins``.

Used by roles/validate_inventory, which refuses the run before any host is touched.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

_FIX_ROOT = "common__sshd_permit_root_login: prohibit-password"


def _root_login_allowed(value: Any) -> bool:
    # YAML reads an unquoted `no` as False.
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise AnsibleFilterError(f"cartable_lockout_problem: common__sshd_permit_root_login {value!r} "
                                 "is not one of yes, prohibit-password, forced-commands-only, no")
    return value.strip().lower() not in ("no", "false")


def key_holders(admins: Any) -> list[str]:
    """Names of the administrators who will be able to log in: present, with at least one key."""
    if not isinstance(admins, list):
        return []
    return [admin["name"] for admin in admins
            if isinstance(admin, dict) and isinstance(admin.get("name"), str)
            and admin.get("state", "present") == "present"
            and isinstance(admin.get("ssh_keys"), list)
            and any(isinstance(key, str) and key.strip() for key in admin["ssh_keys"])]


def cartable_lockout_problem(user: Any, permit_root_login: Any = "no", admins: Any = None,
                             kept_logins: Any = None) -> str:
    """'' when `user` can still log in after the common role, else what to set."""
    if not isinstance(user, str) or not user:
        raise AnsibleFilterError(f"cartable_lockout_problem: ansible_user {user!r} is not an account name")
    kept = [name for name in (kept_logins or []) if isinstance(name, str)]
    holders = key_holders(admins)
    if user == "root":
        if _root_login_allowed(permit_root_login):
            return ""
        if not holders:
            return ("Ansible connects as root (ansible_user) and the common role refuses root logins "
                    "(common__sshd_permit_root_login: no) while cartable_admins has no administrator "
                    "with a key: after this run nobody could log in. Add an administrator with an SSH "
                    "key to the site file's `admins` (cartable_admins) and connect as that account "
                    f"(ansible_user), or set {_FIX_ROOT}")
        return ("Ansible connects as root (ansible_user) and the common role refuses root logins "
                "(common__sshd_permit_root_login: no): the next run could not connect. Set ansible_user "
                f"to an administrator of cartable_admins ({', '.join(holders)}), or set {_FIX_ROOT} "
                "for a first run")
    if user in holders or user in kept:
        return ""
    return (f"Ansible connects as '{user}' (ansible_user), which is not an administrator with a key in "
            "cartable_admins: after this run it could not log in. Add it to the site file's `admins` "
            "with its key, set ansible_user to an administrator"
            + (f" ({', '.join(holders)})" if holders else "")
            + ", or list it in validate_inventory__kept_logins if the account is made outside Cartable "
            "and keeps its key")


class FilterModule:
    """Cartable's access filters."""

    def filters(self) -> dict[str, Any]:
        return {"cartable_lockout_problem": cartable_lockout_problem}
