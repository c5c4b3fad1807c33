"""Naming rules that the Python side and the Ansible side both apply: one source for each.

``cartable/site.py`` checks the site file with them; ``filter_plugins/cartable_naming.py``
exposes them to the roles (``common``, ``validate_inventory``). Pure functions, no I/O.
"""

from __future__ import annotations

import re

# An administrator's account: a portable Unix user name (useradd's default NAME_REGEX),
# at most 32 characters. `root` is never an administrator of Cartable.
ADMIN_NAME_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
ADMIN_NAME_RE = re.compile(ADMIN_NAME_PATTERN)
RESERVED_ADMIN_NAMES = frozenset({"root"})
ADMIN_NAME_HINT = "lower-case letters, digits, '-' or '_', starting with a letter or '_', at most 32; not root"

# A host name: one DNS label of at most 15 characters (NetBIOS-safe), lower case.
# Generated names are `<uai lower-case>-<role code><NN>` (e.g. 0350607v-sdi03) or
# `<uai lower-case>-srv`; a site file may rename a host to any name of this form.
HOST_NAME_MAX = 15
HOST_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,%d}[a-z0-9])?$" % (HOST_NAME_MAX - 2)
HOST_NAME_RE = re.compile(HOST_NAME_PATTERN)
HOST_NAME_HINT = f"1-{HOST_NAME_MAX} lower-case letters, digits or '-', not starting or ending with '-'"


def admin_name_problem(name: object) -> str | None:
    """Why `name` cannot be an administrator's account name, or None when it can.

    The text says what is wrong; ADMIN_NAME_HINT says how to fix it.
    """
    if not isinstance(name, str):
        return f"{name!r} is not a valid account name (not text)"
    if not ADMIN_NAME_RE.match(name):
        return f"'{name}' is not a valid account name"
    if name in RESERVED_ADMIN_NAMES:
        return f"'{name}' is reserved: administrators log in with their own account and sudo"
    return None


def host_name_problem(name: object) -> str | None:
    """Why `name` cannot be a Cartable host name, or None (HOST_NAME_HINT: how to fix it)."""
    if not isinstance(name, str):
        return f"host name {name!r} is not DNS-safe (not text)"
    if not HOST_NAME_RE.match(name):
        return f"host name '{name}' is not DNS-safe"
    return None


def host_name(uai: str, code: str, index: int) -> str:
    """The generated name of a school's index-th host of a role: ``0350607v-sdi03``, ``0350607v-srv``."""
    if code == "srv":
        return f"{uai.lower()}-srv"
    return f"{uai.lower()}-{code}{index:02d}"
