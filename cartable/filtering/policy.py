"""A school's filtering policy and the verdict on one host.

Policy, as a plain mapping (the site file will carry it; a JSON file for the helper):

    name: maternelle
    mode: blocklist | allowlist        # allowlist: only hosts of allow_categories (+ local allow)
    block: [adult, games, doh, vpn]    # UT1 categories refused (in both modes)
    allow_categories: [liste_blanche, child]   # allowlist mode only
    allow: [ac-rennes.fr]              # local allow list (site + school), a name and its subdomains
    deny: [example.org]                # local deny list

Precedence: an IP address is always refused; then local allow > local deny > categories
(blocked categories, then, in allowlist mode, the white categories). A name matches itself and
every subdomain. The verdict names the category (or the reason) for the block page and the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cartable.errors import InputError, Problem
from cartable.filtering.compiled import Build
from cartable.filtering.lists import is_ip_literal, normalize_name

MODES = ("blocklist", "allowlist")
_KEYS = {"name", "mode", "block", "allow_categories", "allow", "deny"}

# reasons carried by a refusal that is not a category
IP_ADDRESS = "ip-address"
LOCAL_DENY = "local-deny"
NOT_ALLOWED = "not-in-allowlist"
INVALID_HOST = "invalid-host"
UNAVAILABLE = "filter-unavailable"


@dataclass(frozen=True)
class Policy:
    name: str
    mode: str
    block: frozenset[str]
    allow_categories: frozenset[str]
    allow: frozenset[str]
    deny: frozenset[str]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str  # the category, a reason above, or "" (allowed, nothing matched)

    def reply(self) -> str:
        """The external ACL reply (without channel ID)."""
        if self.allowed:
            return f"OK log={self.reason}" if self.reason else "OK"
        return f"ERR message={self.reason} log={self.reason}"


UNAVAILABLE_VERDICT = Verdict(False, UNAVAILABLE)


def _names(value: Any, where: str, source: str, problems: list[Problem]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(Problem(source, f"{value!r} is not a list of names", field=where,
                                hint="write a list, e.g. [example.org]"))
        return []
    return value


def _domains(value: Any, where: str, source: str, problems: list[Problem]) -> frozenset[str]:
    out = set()
    for i, raw in enumerate(_names(value, where, source, problems)):
        try:
            name = normalize_name(raw)
        except ValueError as exc:
            problems.append(Problem(source, f"{raw!r} is not a domain name: {exc}",
                                    field=f"{where}[{i}]", hint="one domain per entry, e.g. "
                                    "example.org (it covers its subdomains); no URL, no path"))
            continue
        if is_ip_literal(name):
            problems.append(Problem(source, f"{raw!r} is an IP address", field=f"{where}[{i}]",
                                    hint="local lists take domain names: IP addresses are "
                                    "always refused"))
            continue
        out.add(name)
    return frozenset(out)


def policy_from_dict(data: Any, source: str = "policy") -> Policy:
    """A Policy from a plain mapping; InputError naming every bad field and value."""
    problems: list[Problem] = []
    if not isinstance(data, Mapping):
        raise InputError(Problem(source, f"the policy is {type(data).__name__}, not a mapping",
                                 hint="write name, mode, block, allow_categories, allow, deny"))
    for key in sorted(set(data) - _KEYS):
        problems.append(Problem(source, f"unknown key {key!r}", field=str(key),
                                hint=f"known keys: {', '.join(sorted(_KEYS))}"))
    name = data.get("name", "policy")
    if not isinstance(name, str) or not name:
        problems.append(Problem(source, f"{name!r} is not a name", field="name"))
    mode = data.get("mode", "blocklist")
    if mode not in MODES:
        problems.append(Problem(source, f"unknown mode {mode!r}", field="mode",
                                hint=f"one of {', '.join(MODES)}"))
    block = frozenset(_names(data.get("block"), "block", source, problems))
    white = frozenset(_names(data.get("allow_categories"), "allow_categories", source,
                             problems))
    if mode == "allowlist" and not white and not data.get("allow"):
        problems.append(Problem(source, "allowlist mode with nothing to allow",
                                field="allow_categories",
                                hint="name white categories (e.g. liste_blanche, child) or "
                                "local allow entries"))
    if mode == "blocklist" and white:
        problems.append(Problem(source, "allow_categories is only used in allowlist mode",
                                field="allow_categories",
                                hint="remove it, or set mode: allowlist"))
    allow = _domains(data.get("allow"), "allow", source, problems)
    deny = _domains(data.get("deny"), "deny", source, problems)
    if problems:
        raise InputError(problems)
    return Policy(str(name), str(mode), block, white, allow, deny)


def unknown_categories(policy: Policy, build: Build) -> list[str]:
    """Categories the policy names that the build does not have (the build can't serve it)."""
    return sorted(c for c in policy.block | policy.allow_categories if build.resolve(c) is None)


@dataclass(frozen=True)
class Rules:
    """A policy bound to a build: category names resolved once (aliases followed)."""

    policy: Policy
    build: Build
    block: frozenset[str]
    white: frozenset[str]


def bind(policy: Policy, build: Build) -> Rules:
    """The rules of `policy` on `build`; ValueError naming the categories the build lacks
    (a build without a blocked category must not filter: it would let that category through)."""
    missing = unknown_categories(policy, build)
    if missing:
        raise ValueError(f"the compiled list has no category {', '.join(missing)}")
    return Rules(policy, build, frozenset(build.resolve(c) or c for c in policy.block),
                 frozenset(build.resolve(c) or c for c in policy.allow_categories))


def _suffixes(host: str) -> list[str]:
    out = [host]
    while "." in host:
        host = host.split(".", 1)[1]
        out.append(host)
    return out


def judge_name(rules: Rules, host: str) -> Verdict:
    """The verdict on a normalised host name (not an address)."""
    policy = rules.policy
    if policy.allow or policy.deny:
        suffixes = _suffixes(host)
        if any(s in policy.allow for s in suffixes):
            return Verdict(True, "local-allow")
        if any(s in policy.deny for s in suffixes):
            return Verdict(False, LOCAL_DENY)
    listed = [c for _, c in rules.build.lookup(host)]
    for category in listed:
        if category in rules.block:
            return Verdict(False, category)
    if policy.mode == "allowlist":
        for category in listed:
            if category in rules.white:
                return Verdict(True, category)
        return Verdict(False, NOT_ALLOWED)
    return Verdict(True, "")


def judge(rules: Rules | None, value: str) -> Verdict:
    """The verdict on what squid sends: a host, host:port (CONNECT) or a URL. Never raises for
    bad input; no usable build (None) means filter-unavailable."""
    host = host_of(value)
    if not host:
        return Verdict(False, INVALID_HOST)
    if is_ip_literal(host):
        return Verdict(False, IP_ADDRESS)
    if rules is None:
        return UNAVAILABLE_VERDICT
    try:
        name = normalize_name(host)
    except ValueError:
        return Verdict(False, INVALID_HOST)
    return judge_name(rules, name)


def host_of(value: str) -> str:
    """The host of `example.org`, `example.org:443`, `[2001:db8::1]:443` or
    `http://user@example.org:8080/path`; "" when there is none."""
    text = value.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    for sep in "/?#":
        text = text.split(sep, 1)[0]
    text = text.rsplit("@", 1)[-1]
    if text.startswith("["):
        return text[:text.find("]") + 1] if "]" in text else ""
    if text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text
