# Copyright: Cartable contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a school server's proxy needs from the inventory, checked (validate_inventory, and any
role that wants to assert its inputs).

* ``proxy | cartable_academic_proxy_problems``: what is wrong with ``cartable_academic_proxy``
  (``{host, port}``, the academic proxy the school proxy chains to), as sentences; ``[]`` when
  it is usable;
* ``policy | cartable_filter_policy_problems``: the same for ``cartable_filter_policy``, read
  exactly as the filter helper reads it (``cartable.filtering.policy.policy_from_dict``: an
  unknown mode or field is refused), plus categories that UT1 does not publish.

The ``cartable`` package is imported from the repository when it is not installed (ansible
run from a clone, with only ansible in the venv), as in cartable_naming.py.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

try:
    from cartable.errors import InputError
    from cartable.filtering.categories import UT1_CATEGORIES
    from cartable.filtering.policy import policy_from_dict
except ImportError:  # pragma: no cover - exercised by ansible run from a bare clone
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cartable.errors import InputError
    from cartable.filtering.categories import UT1_CATEGORIES
    from cartable.filtering.policy import policy_from_dict

_PROXY_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def cartable_academic_proxy_problems(proxy: Any) -> list[str]:
    """What is wrong with cartable_academic_proxy for a school proxy to chain to it."""
    if proxy is None:
        return ["cartable_academic_proxy is not set: the school proxy cannot converge, it has no "
                "academic proxy to chain to (site file: academic_proxy: {host, port})"]
    if not isinstance(proxy, Mapping):
        return [f"cartable_academic_proxy '{proxy}' is not a mapping {{host, port}}: the school proxy "
                "cannot converge (site file: academic_proxy)"]
    missing = [key for key in ("host", "port") if key not in proxy]
    if missing:
        return [f"cartable_academic_proxy lacks {', '.join(missing)}: the school proxy cannot converge "
                "(site file: academic_proxy: {host, port})"]
    texts = []
    host, port = proxy["host"], proxy["port"]
    if not isinstance(host, str) or not (_PROXY_HOST.match(host) or _is_address(host)):
        texts.append(f"cartable_academic_proxy.host '{host}' is not a host name or address")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        texts.append(f"cartable_academic_proxy.port '{proxy['port']}' is not a port (1-65535)")
    return texts


def cartable_filter_policy_problems(policy: Any) -> list[str]:
    """What is wrong with cartable_filter_policy, read as the filter helper reads it."""
    if policy is None:
        return ["cartable_filter_policy is not set: the school proxy has no filtering policy "
                "(site file: filtering; rebuild the inventory)"]
    try:
        policy_from_dict(policy, "cartable_filter_policy")
    except InputError as exc:
        return [f"cartable_filter_policy{'.' + p.field if p.field else ''}: {p.message}"
                + (f" ({p.hint})" if p.hint else "") for p in exc.problems]
    return [f"cartable_filter_policy.{key}: unknown UT1 category '{name}'"
            for key in ("block", "allow_categories") for name in policy.get(key) or []
            if name not in UT1_CATEGORIES]


class FilterModule:
    """Checks of the school proxy's inventory variables."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "cartable_academic_proxy_problems": cartable_academic_proxy_problems,
            "cartable_filter_policy_problems": cartable_filter_policy_problems,
        }
