"""`cartable filter ...`: compile the UT1 lists, check hosts against a build (and a policy).

    cartable filter compile --lists DIR --out FILE [--categories CAT...]
    cartable filter check FILE HOST... [--policy POLICY.json]
    cartable filter keygen --out KEY
    cartable filter publish --origin SRC --publish DIR --key KEY [--proxy URL] [--state DIR]
                            [--canary CATEGORY:NAME ...] [--keep N]

Standalone on the DSI's mirror host (no PyYAML, netaddr: the role filter_mirror installs
cartable/errors.py and cartable/filtering/ only), `publish_main` and `keygen_main` are the
commands cartable-filter-publish and cartable-filter-keygen (same options, same exit codes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cartable.errors import InputError, Problem, report_errors
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
  cartable filter keygen --out /etc/cartable/filter-signing.key
  cartable filter publish --publish /srv/cartable/filter --key /etc/cartable/filter-signing.key \
      --origin https://dsi.ut-capitole.fr/blacklists/download/blacklists.tar.gz

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
    keygen = verbs.add_parser("keygen", help=KEYGEN, description=KEYGEN)
    _keygen_arguments(keygen)
    pub = verbs.add_parser("publish", help=PUBLISH, description=PUBLISH)
    _publish_arguments(pub)


KEYGEN = "create the Ed25519 key pair that signs the published lists (KEY, KEY.pub)"
PUBLISH = ("verify UT1 lists (MD5SUM.LST, sizes, canaries), compile, publish a signed manifest "
           "with the full build and deltas; exit 2 and publish nothing when a check fails")


def _keygen_arguments(keygen: argparse.ArgumentParser) -> None:
    keygen.add_argument("--out", type=Path, required=True, metavar="KEY",
                        help="private key file (0600); the public key goes to KEY.pub")


def _publish_arguments(pub: argparse.ArgumentParser) -> None:
    pub.add_argument("--origin", required=True, metavar="SRC",
                     help="a UT1 folder, or the http(s) URL of UT1's blacklists.tar.gz")
    pub.add_argument("--publish", type=Path, required=True, metavar="DIR",
                     help="the folder served to the schools")
    pub.add_argument("--key", type=Path, required=True, metavar="KEY", help="private key")
    pub.add_argument("--proxy", metavar="URL", help="HTTP proxy to reach the origin")
    pub.add_argument("--state", type=Path, metavar="DIR",
                     help="the mirror's state (history, builds for deltas); default DIR.state")
    pub.add_argument("--canary", nargs="+", metavar="CATEGORY:NAME",
                     help="names that must be in their category (default: a few well-known "
                     "names of the sample's blocked categories)")
    pub.add_argument("--keep", type=int, default=7, metavar="N",
                     help="builds kept; deltas from the N-1 previous ones (7)")


def run(args: argparse.Namespace) -> int:
    if args.verb == "compile":
        return _compile(args)
    if args.verb == "keygen":
        from cartable.filtering.signing import generate
        pub = generate(args.out)
        print(f"{args.out}: private key (0600: keep it on the mirror host or in ansible-vault)")
        print(f"{pub}: public key (goes to the inventory and the school servers)")
        return 0
    if args.verb == "publish":
        return _publish(args)
    return _check(args)


def _publish(args: argparse.Namespace) -> int:
    from cartable.filtering.fetch import FetchError
    from cartable.filtering.publish import DEFAULT_CANARIES, Options, default_state, publish
    opts = Options(args.origin, args.publish, args.key, args.state or default_state(args.publish),
                   args.proxy, tuple(args.canary or DEFAULT_CANARIES), args.keep)
    try:
        publish(opts)
    except FetchError as exc:
        print(f"cartable: cannot fetch the origin: {exc}; nothing published", file=sys.stderr)
        return 1
    return 0


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


# --- standalone commands of the mirror host (role filter_mirror) -------------------------------

def _standalone(verb: str, prog: str, argv: list[str] | None) -> int:
    """Run one verb as its own command; errors as `cartable` reports them (exit 2, no traceback).
    Exit codes of publish: 0 published or unchanged, 1 origin unreachable, 2 a check failed."""
    parser = argparse.ArgumentParser(prog=prog, description=KEYGEN if verb == "keygen" else PUBLISH)
    (_keygen_arguments if verb == "keygen" else _publish_arguments)(parser)

    def action() -> int:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        args.verb = verb
        return run(args)

    return report_errors(prog, action)


def publish_main(argv: list[str] | None = None) -> int:
    """cartable-filter-publish: `cartable filter publish` without the rest of cartable."""
    return _standalone("publish", "cartable-filter-publish", argv)


def keygen_main(argv: list[str] | None = None) -> int:
    """cartable-filter-keygen: `cartable filter keygen` without the rest of cartable."""
    return _standalone("keygen", "cartable-filter-keygen", argv)
