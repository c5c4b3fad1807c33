# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Naming checks for Cartable's roles, from the same source as the Python side (cartable.naming).

* ``name | cartable_admin_name_problem``: why ``name`` cannot be an administrator's account
  (a sentence ending with how to fix it), or ``''`` when it can;
* ``name | cartable_host_name_problem``: the same for a host name (``<uai>-<role><NN>``,
  DNS- and NetBIOS-safe, at most 15 characters).

Returning a problem instead of failing lets validate_inventory list every problem at once;
an assert tests ``| length == 0``. The ``cartable`` package is imported from the repository
when it is not installed (ansible run from a clone, with only ansible in the venv).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

try:
    from cartable import naming
except ImportError:  # pragma: no cover - exercised by a test in a bare interpreter
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cartable import naming


def cartable_admin_name_problem(name: Any) -> str:
    """'' when `name` can be an administrator's account, else what is wrong and how to fix it."""
    problem = naming.admin_name_problem(name)
    return f"{problem} ({naming.ADMIN_NAME_HINT})" if problem else ""


def cartable_host_name_problem(name: Any) -> str:
    """'' when `name` can be a Cartable host name, else what is wrong and how to fix it."""
    problem = naming.host_name_problem(name)
    return f"{problem} ({naming.HOST_NAME_HINT})" if problem else ""


class FilterModule:
    """Cartable's naming filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "cartable_admin_name_problem": cartable_admin_name_problem,
            "cartable_host_name_problem": cartable_host_name_problem,
        }
