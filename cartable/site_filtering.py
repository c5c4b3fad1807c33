"""The site file's `filtering:` section: named policies, the policy of each school kind, local
allow/deny lists (site-wide and per school), and the resolved policy of one school.

The resolved policy is the mapping the filter helper reads (cartable/filtering/policy.py):
`{name, mode, block, allow_categories, allow, deny}`, lists sorted, emitted per school as
`cartable_filter_policy`. Every policy blocks the filter bypasses (BYPASS) whatever it says.
Defaults and their reasons: docs/site-file.md#filtering.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from cartable.directory import KINDS
from cartable.errors import InputError, Problem
from cartable.filtering.categories import UT1_CATEGORIES
from cartable.filtering.lists import is_ip_literal, normalize_name
from cartable.filtering.policy import MODES, policy_from_dict
from cartable.yamlsrc import Ctx, choice, list_of, map_of, mapping

# Categories every policy blocks (added when a policy leaves them out): the ways around a
# filter. One service of these categories is let through with a local `allow` entry.
BYPASS = ("doh", "redirector", "remote-control", "residential-proxies", "strict_redirector", "vpn")
# What the built-in policies block besides BYPASS (docs/site-file.md says why, and what not).
# adult, mixed_adult and most of these are not in the repository's sample lists (data/).
DEFAULT_BLOCK = ("adult", "agressif", "arjel", "chat", "cryptojacking", "dangerous_material",
                 "dating", "ddos", "drogue", "dynamic-dns", "gambling", "hacking", "lingerie",
                 "malware", "mixed_adult", "phishing", "sect", "social_networks", "stalkerware",
                 "warez")
DEFAULT_POLICIES: dict[str, dict[str, Any]] = {
    "maternelle": {"mode": "allowlist", "allow_categories": ["child", "liste_blanche"],
                   "block": list(DEFAULT_BLOCK)},
    "elementaire": {"mode": "blocklist", "block": list(DEFAULT_BLOCK)},
}
DEFAULT_KINDS = {"maternelle": "maternelle", "elementaire": "elementaire",
                 "primaire": "elementaire"}
_POLICY_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
FIELDS = ("name", "mode", "block", "allow_categories", "allow", "deny")


@dataclass(frozen=True)
class SchoolFiltering:
    """`overrides.<UAI>.filtering`: another policy and extra local entries for one school."""

    policy: str | None = None
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True)
class Filtering:
    """The validated `filtering:` section, defaults applied."""

    policies: dict[str, dict[str, Any]]  # name -> {mode, block, allow_categories, allow, deny}
    kinds: dict[str, str]
    allow: tuple[str, ...]
    deny: tuple[str, ...]


# --- schema checks (yamlsrc) -------------------------------------------------------------

def category(raw: Any, ctx: Ctx) -> Any:
    """A UT1 category name (UT1_CATEGORIES); None when it is not one."""
    if isinstance(raw, str) and raw in UT1_CATEGORIES:
        return raw
    close = difflib.get_close_matches(str(raw), UT1_CATEGORIES, n=1)
    ctx.fail(f"unknown UT1 category {raw!r}",
             (f"did you mean '{close[0]}'? " if close else "") +
             "categories are those of UT1's global_usage (cartable/filtering/categories.py)")
    return None


def _host_part(text_: str) -> str:
    """The host of an entry written as a URL, host/path or host:port (IPv6 kept whole)."""
    host = text_.split("://", 1)[-1].split("/", 1)[0]
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    return host.split(":", 1)[0] if host.count(":") == 1 else host


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return ":" not in host and is_ip_literal(host)


def host_entry(raw: Any, ctx: Ctx) -> Any:
    """A local list entry: a host name (normalised); None, and a problem saying why, otherwise."""
    hint = "one host name per entry, e.g. example.org (it covers its subdomains)"
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        got = "a list" if isinstance(raw, list) else "a mapping" if isinstance(raw, dict) else \
            type(raw).__name__
        ctx.fail(f"expected a host name, got {got}", hint)
        return None
    text_ = str(raw).strip()
    if not text_ or any(c.isspace() for c in text_):
        ctx.fail(f"{raw!r} is not a host name: it " +
                 ("is empty" if not text_ else "contains a space"), hint)
        return None
    host = _host_part(text_)
    if _is_address(host):
        ctx.fail(f"{raw!r} is an IP address, not a host name",
                 "local lists take host names: requests to IP addresses are always refused")
        return None
    if "://" in text_:
        ctx.fail(f"{raw!r} is a URL, not a host name", f"write its host only: {host}")
        return None
    if "/" in text_:
        ctx.fail(f"{raw!r} has a path: the filter judges host names, not URLs",
                 f"write the host only: {host}")
        return None
    if ":" in text_:
        ctx.fail(f"{raw!r} has a port: the filter judges host names",
                 f"write the host only: {host}")
        return None
    if text_.startswith(("*", ".")):
        ctx.fail(f"{raw!r} is a pattern, not a host name",
                 f"write {text_.lstrip('*.')}: a name covers its subdomains")
        return None
    try:
        name = normalize_name(text_)
    except ValueError as exc:
        ctx.fail(f"{raw!r} is not a host name: {exc}", hint)
        return None
    if "." not in name:
        ctx.fail(f"{raw!r} is a single label (a top-level domain or a local name): it would "
                 "cover every name under it", "write a host name with its domain, e.g. "
                 "example.org")
        return None
    return name


def _policy_key(key: Any, ctx: Ctx) -> str | None:
    if isinstance(key, str) and _POLICY_NAME.match(key):
        return None
    return (f"policy name {key!r} is not a simple name (lower-case letters, digits, '-', '_', "
            "at most 63 characters)")


def _kind_key(key: Any, ctx: Ctx) -> str | None:
    return None if key in KINDS else f"unknown school kind '{key}' (known: {', '.join(KINDS)})"


def _policy_ref(raw: Any, ctx: Ctx) -> Any:
    """A policy name (checked against the policies later); "" when there is none."""
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str):
        ctx.fail(f"expected a policy name, got {type(raw).__name__}")
        return ""
    return raw


_HOSTS = list_of(host_entry)
POLICY_SCHEMA = mapping({
    "mode": choice(*MODES),
    "block": list_of(category),
    "allow_categories": list_of(category),
    "allow": _HOSTS,
    "deny": _HOSTS,
})
SCHEMA = mapping({
    "policies": map_of(_policy_key, POLICY_SCHEMA),
    "kinds": map_of(_kind_key, _policy_ref),
    "allow": _HOSTS,
    "deny": _HOSTS,
})
OVERRIDE_SCHEMA = mapping({"policy": _policy_ref, "allow": _HOSTS, "deny": _HOSTS})


# --- cross-field checks ------------------------------------------------------------------

def _lines(raw: Any, *keys: Any) -> Any:
    """The raw node at `keys` (None when absent or of another shape)."""
    for key in keys:
        if isinstance(raw, dict) and key in raw:
            raw = raw[key]
        else:
            return None
    return raw


def _key_line(raw: Any, key: Any) -> int | None:
    return getattr(raw, "lines", {}).get(key) if isinstance(raw, dict) else None


def _item_line(raw: Any, index: int) -> int | None:
    lines = getattr(raw, "lines", [])
    return lines[index] if isinstance(raw, list) and index < len(lines) else None


def _covering(name: str, allows: dict[str, str]) -> str | None:
    """The allow entry (and where it is) that covers `name`: itself or a parent domain."""
    parts = name.split(".")
    for i in range(len(parts)):
        suffix = ".".join(parts[i:])
        if suffix in allows:
            return f"{suffix!r} ({allows[suffix]})"
    return None


def _dead_denies(deny: list[Any], raw_deny: Any, field: str, allows: dict[str, str],
                 filename: str) -> list[Problem]:
    """Deny entries an allow entry always wins over (local allow > local deny)."""
    problems = []
    for index, name in enumerate(deny):
        why = _covering(name, allows) if name else None
        if why:
            problems.append(Problem(filename, f"{name!r} is denied but allowed by {why}: the "
                                    "local allow list wins, so this entry does nothing",
                                    _item_line(raw_deny, index), f"{field}.{index}",
                                    "remove one of the two entries"))
    return problems


def _allows(names: list[Any], where: str) -> dict[str, str]:
    return {name: where for name in names if name}


def _unknown_policy(name: str, names: list[str], line: int | None, field: str,
                    filename: str) -> Problem:
    close = difflib.get_close_matches(name, names, n=1)
    return Problem(filename, f"unknown policy {name!r}", line, field,
                   (f"did you mean '{close[0]}'? " if close else "") +
                   f"policies: {', '.join(names)} (define it under filtering.policies)")


def _policy_problems(name: str, policy: dict[str, Any], raw_policies: Any,
                     site_allow: dict[str, str], filename: str) -> list[Problem]:
    """One policy of `filtering.policies`: its mode against its categories, its lists."""
    problems = []
    raw_policy = _lines(raw_policies, name)
    field = f"filtering.policies.{name}"
    mode = policy.get("mode", "blocklist")
    white = [c for c in policy.get("allow_categories", []) if c]
    if mode == "allowlist" and not white and not policy.get("allow") and not site_allow:
        problems.append(Problem(filename, f"policy {name!r} is an allowlist with nothing to "
                                "allow", _key_line(raw_policies, name), field,
                                "add allow_categories (e.g. [liste_blanche, child]) or local "
                                "allow entries"))
    if mode == "blocklist" and white:
        problems.append(Problem(filename, f"policy {name!r}: allow_categories is only used in "
                                "allowlist mode", _key_line(raw_policy, "allow_categories"),
                                f"{field}.allow_categories", "remove it, or set mode: allowlist"))
    elif mode == "allowlist":
        blocked = set(policy.get("block", [])) | set(BYPASS)
        for index, cat in enumerate(policy.get("allow_categories", [])):
            if cat in blocked:
                problems.append(Problem(
                    filename, f"policy {name!r} both blocks and allows category {cat!r}: a "
                    "blocked category wins, so it allows nothing",
                    _item_line(_lines(raw_policy, "allow_categories"), index),
                    f"{field}.allow_categories.{index}", "remove it from one of the lists"))
    allows = {**site_allow, **_allows(policy.get("allow", []), f"{field}.allow")}
    return problems + _dead_denies(policy.get("deny", []), _lines(raw_policy, "deny"),
                                   f"{field}.deny", allows, filename)


def _kind_problems(kinds: dict[str, str], raw_kinds: Any, names: list[str],
                   filename: str) -> list[Problem]:
    """`filtering.kinds`: each kind names a policy that exists."""
    problems = []
    for kind, name in kinds.items():
        line = _key_line(raw_kinds, kind)
        if not name:
            problems.append(Problem(filename, f"school kind {kind!r} maps to no policy", line,
                                    f"filtering.kinds.{kind}",
                                    f"name one of: {', '.join(names)}; or remove the line "
                                    f"(default: {DEFAULT_KINDS[kind]})"))
        elif name not in names:
            problems.append(_unknown_policy(name, names, line, f"filtering.kinds.{kind}",
                                            filename))
    return problems


def _override_problems(uai: str, school: dict[str, Any], raw_school: Any,
                       policies: dict[str, dict[str, Any]], site_allow: dict[str, str],
                       filename: str) -> list[Problem]:
    """`overrides.<UAI>.filtering`: a known policy; no deny entry an allow entry cancels."""
    problems = []
    field = f"overrides.{uai}.filtering"
    name = school.get("policy")
    if name and name not in policies:
        problems.append(_unknown_policy(name, sorted(policies), _key_line(raw_school, "policy"),
                                        f"{field}.policy", filename))
    allows = dict(site_allow)
    if name in policies:  # without a policy of its own, the school's kind decides
        allows.update(_allows(list(policies[name].get("allow", [])),
                              f"filtering.policies.{name}.allow"))
    allows.update(_allows(school.get("allow", []), f"{field}.allow"))
    return problems + _dead_denies(school.get("deny", []), _lines(raw_school, "deny"),
                                   f"{field}.deny", allows, filename)


def check_filtering(data: dict[str, Any], raw: Any, filename: str) -> list[Problem]:
    """The checks the schema cannot express: policy names, modes, lists that cancel out."""
    section = data.get("filtering", {})
    raw_section = _lines(raw, "filtering")
    policies = {**DEFAULT_POLICIES, **section.get("policies", {})}
    site_allow = _allows(section.get("allow", []), "filtering.allow")
    problems = _dead_denies(section.get("deny", []), _lines(raw_section, "deny"),
                            "filtering.deny", site_allow, filename)
    for name, policy in section.get("policies", {}).items():
        problems += _policy_problems(name, policy, _lines(raw_section, "policies"), site_allow,
                                     filename)
    problems += _kind_problems(section.get("kinds", {}), _lines(raw_section, "kinds"),
                               sorted(policies), filename)
    for uai, override in data.get("overrides", {}).items():
        if override.get("filtering"):
            problems += _override_problems(uai, override["filtering"],
                                           _lines(raw, "overrides", uai, "filtering"),
                                           policies, site_allow, filename)
    return problems


# --- the site's filtering, and a school's policy ------------------------------------------

def _clean(names: Any) -> tuple[str, ...]:
    return tuple(sorted({n for n in names or [] if n}))


def to_filtering(data: dict[str, Any]) -> Filtering:
    """The `filtering:` section (validated data) with the defaults applied."""
    section = data.get("filtering", {})
    policies = {}
    for name, policy in {**DEFAULT_POLICIES, **section.get("policies", {})}.items():
        policies[name] = {"mode": policy.get("mode", "blocklist"),
                          "block": _clean(policy.get("block")),
                          "allow_categories": _clean(policy.get("allow_categories")),
                          "allow": _clean(policy.get("allow")), "deny": _clean(policy.get("deny"))}
    kinds = {**DEFAULT_KINDS, **{k: v for k, v in section.get("kinds", {}).items() if v}}
    return Filtering(policies, kinds, _clean(section.get("allow")), _clean(section.get("deny")))


def to_school_filtering(data: dict[str, Any] | None) -> SchoolFiltering | None:
    if not data:
        return None
    return SchoolFiltering(data.get("policy") or None, _clean(data.get("allow")),
                           _clean(data.get("deny")))


def school_policy(filtering: Filtering, kind: str,
                  school: SchoolFiltering | None = None) -> dict[str, Any]:
    """The policy of one school, as the filter helper reads it (JSON-able, lists sorted):
    its kind's policy (or the override's), BYPASS added, local lists of policy + site + school."""
    name = school.policy if school and school.policy else filtering.kinds[kind]
    policy = filtering.policies[name]
    extra_allow = school.allow if school else ()
    extra_deny = school.deny if school else ()
    out = {
        "name": name,
        "mode": policy["mode"],
        "block": sorted(set(policy["block"]) | set(BYPASS)),
        "allow_categories": list(policy["allow_categories"]),
        "allow": sorted(set(policy["allow"]) | set(filtering.allow) | set(extra_allow)),
        "deny": sorted(set(policy["deny"]) | set(filtering.deny) | set(extra_deny)),
    }
    policy_from_dict(out, f"policy {name}")  # what the helper will accept (InputError if not)
    return out


def check_resolved(filtering: Filtering, filename: str) -> None:
    """Every policy resolves to one the helper accepts; InputError otherwise (a bug guard)."""
    problems: list[Problem] = []
    for name in sorted(filtering.policies):
        try:
            school_policy(filtering, KINDS[0], SchoolFiltering(policy=name))
        except InputError as exc:
            problems += [Problem(filename, p.message, None, f"filtering.policies.{name}."
                                 f"{p.field}" if p.field else None, p.hint) for p in exc.problems]
    if problems:
        raise InputError(problems)
