"""`cartable filter ...`: compile the UT1 lists, check hosts against a build (and a policy).

    cartable filter compile --lists DIR --out FILE [--categories CAT...]
    cartable filter check FILE HOST... [--policy POLICY.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cartable.errors import InputError, Problem
from cartable.filtering.compiled import (Build, BuildError, compile_lists, open_build,
                                         write_build)
from cartable.filtering.helper import BUILD_FILE, build_path, read_policy
from cartable.filtering.lists import is_ip_literal, normalize_name, read_lists
from cartable.filtering.policy import bind, host_of, judge

EPILOG = """\
examples:
  cartable filter compile --lists data/ut1-blacklists --out /tmp/build/lists.cfl
  cartable filter check /tmp/build/lists.cfl www.example.org casino.example
  cartable filter check /tmp/build --policy maternelle.json www.education.gouv.fr

The compiled file is written by rename (never half-written) and verified by the helper
(cartable-filter-helper) at open. See docs/filtering.md.
"""


def add_parser(top: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    area = top.add_parser("filter", help="compile the web-filtering lists and check hosts",
                          epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = area.add_subparsers(dest="verb", required=True, metavar="VERB")
    text = "compile UT1 categories into one verified binary list (same inputs, same bytes)"
    comp = verbs.add_parser("compile", help=text, description=text)
    comp.add_argument("--lists", type=Path, required=True, metavar="DIR",
                      help="the UT1 folder (one folder per category)")
    comp.add_argument("--out", type=Path, required=True, metavar="FILE",
                      help=f"the compiled file (a folder: {BUILD_FILE} in it)")
    comp.add_argument("--categories", nargs="+", metavar="CAT",
                      help="only these categories (default: every category of DIR)")
    text = "print the categories (or, with --policy, the verdict) of each host"
    check = verbs.add_parser("check", help=text, description=text)
    check.add_argument("build", type=Path, metavar="FILE", help="a compiled list or its folder")
    check.add_argument("hosts", nargs="+", metavar="HOST", help="host names, host:port or URLs")
    check.add_argument("--policy", type=Path, metavar="POLICY.json",
                       help="judge under this policy (OK/ERR as the helper answers)")


def run(args: argparse.Namespace) -> int:
    if args.verb == "compile":
        return _compile(args)
    return _check(args)


def _compile(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    out = args.out / BUILD_FILE if args.out.is_dir() else args.out
    lists = read_lists(args.lists, args.categories)
    for category in lists.categories:
        for note in category.notes:
            print(f"note: {note}", file=sys.stderr)
    data = compile_lists(lists)
    write_build(out, data)
    entries = sum(len(c.domains) for c in lists.categories)
    aliases = f", aliases {len(lists.aliases)}" if lists.aliases else ""
    print(f"{out}: {len(lists.categories)} categories{aliases}, {entries} names, "
          f"{len(data)} bytes ({time.perf_counter() - started:.2f} s)")
    return 0


def _check(args: argparse.Namespace) -> int:
    path = build_path(args.build)
    try:
        build = open_build(path)
    except BuildError as exc:
        raise InputError(Problem(str(path), f"unusable compiled list: {exc}",
                                 hint="compile it again (cartable filter compile)")) from None
    rules = None
    if args.policy:
        policy = read_policy(args.policy)
        try:
            rules = bind(policy, build)
        except ValueError as exc:
            raise InputError(Problem(str(args.policy), str(exc), field="block/allow_categories",
                                     hint=f"categories of this build: "
                                     f"{', '.join(build.categories)}")) from None
    for value in args.hosts:
        if rules is not None:
            print(f"{value}: {judge(rules, value).reply()}")
            continue
        print(f"{value}: {_listing(build, value)}")
    return 0


def _listing(build: Build, value: str) -> str:
    host = host_of(value)
    if is_ip_literal(host):
        return "an IP address (always refused)"
    try:
        name = normalize_name(host)
    except ValueError as exc:
        return f"not a host name ({exc})"
    found = build.lookup(name)
    if not found:
        return "not listed"
    return ", ".join(f"{category} (as {suffix})" for suffix, category in found)
