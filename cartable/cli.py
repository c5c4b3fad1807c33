"""cartable — command line.

    cartable inventory build   SITE [--replan]  write hosts.yml + allocations.yml next to the site file
    cartable inventory check   SITE   validate inputs; exit 1 if the files on disk are stale
    cartable inventory diff    SITE   show what build would change, write nothing
    cartable inventory grow    SITE UAI [--network N] [--yes]   give a school a larger subnet
    cartable inventory release SITE UAI|HOST...   free reserved schools or freed host addresses
    cartable filter compile --lists DIR --out FILE   compile the UT1 lists (docs/filtering.md)
    cartable filter check FILE HOST... [--policy P]  categories or verdict of hosts
    cartable filter keygen --out KEY                 the key pair that signs published lists
    cartable filter publish --origin SRC --publish DIR --key KEY   verify, compile, sign, publish
    cartable campaign run SITE PLAYBOOK [--wave W | --school UAI... | --failed] [--check --diff]
    cartable campaign status SITE [--name NAME] [--json | --csv]   (docs/campaigns.md)
    cartable report SITE [--as-of DATE] [--out DIR] [--previous DIR]  the fleet report (docs/report.md)
    cartable image check CATALOG [--store STORE]     packages exist, images install (docs/images.md)
    cartable image build CATALOG IMAGE --out STORE   build an image version into the store
    cartable image changelog OLD NEW [--markdown]    packages added, removed, upgraded
    cartable reimage now SITE --school UAI [--room R | --host H]   through the school server
    cartable reimage converge SITE                  the restored PCs not converged yet, by the relays
    cartable reimage status SITE [--json | --csv]    last restore of each PC, failures first

Exit codes: 0 ok, 1 stale (check) or differences not written (diff, grow without --yes)
or a campaign with schools not ok, 2 bad input or any other failure (nothing written).
"""

from __future__ import annotations

import argparse
import difflib
import sys
import time
from pathlib import Path

from cartable import allocate as al
from cartable.campaign import cli as campaign_cli
from cartable.errors import InputError, Problem, report_errors
from cartable.filtering import cli as filter_cli
from cartable.report import cli as report_cli
from cartable.images import cli as image_cli
from cartable.reimage import cli as reimage_cli
from cartable.files import locked, read_text, write_together
from cartable.inventory import build, grow, release
from cartable.site import Site, read_site

EPILOG = """\
examples:
  cartable inventory build inventories/demo/site.yml
  cartable inventory diff inventories/rennes/site.yml     # review before writing
  cartable inventory check inventories/rennes/site.yml    # in CI: inputs valid, files up to date
  cartable inventory release inventories/rennes/site.yml 0350607V

The site file names the school directory (Annuaire de l'éducation CSV) and the optional
hardware CSV; paths in it are relative to the site file. Files are written next to it
(or in --output). See README.md and docs/site-file.md.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cartable", description="Cartable: the computers of a city's primary schools, as code.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    top = parser.add_subparsers(dest="area", required=True, metavar="AREA")
    inv = top.add_parser("inventory", help="build the Ansible inventory from the school data",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = inv.add_subparsers(dest="verb", required=True, metavar="VERB")
    helps = {
        "build": "validate the inputs and write hosts.yml and allocations.yml",
        "check": "validate the inputs; exit 1 if the inventory on disk is not up to date",
        "diff": "show the changes build would make (unified diff); write nothing",
        "grow": "give a school that outgrew its subnet a larger one: show the change (diff), "
                "write it with --yes",
        "release": "free reserved schools (UAI) or the addresses of hosts that left the plan "
                   "(host id, listed under freed:)",
    }
    for verb, text in helps.items():
        sub = verbs.add_parser(verb, help=text, description=text)
        sub.add_argument("site", type=Path, help="the site file, e.g. inventories/demo/site.yml")
        if verb == "release":
            sub.add_argument("names", nargs="+", metavar="UAI|HOST",
                             help="UAI of a reserved school, or id of a freed host (0350607v-sdi12)")
        if verb == "grow":
            sub.add_argument("uai", help="the school that outgrew its subnet")
            sub.add_argument("--network", choices=al.NETWORKS, default="pedagogical",
                             help="which of its networks (default: pedagogical)")
            sub.add_argument("--yes", action="store_true", help="write the change shown")
        if verb == "build":
            sub.add_argument("--replan", action="store_true",
                             help="ignore the address plan and number every school again "
                             "(needed when allocations.yml is gone; renumbers the city)")
        if verb != "release":
            sub.add_argument("--directory", type=Path, metavar="CSV",
                             help="school directory CSV (default: 'directory:' of the site file)")
        sub.add_argument("--output", type=Path, metavar="DIR",
                         help="where the inventory lives (default: the site file's folder)")
    filter_cli.add_parser(top)
    campaign_cli.add_parser(top)
    report_cli.add_parser(top)
    image_cli.add_parser(top)
    reimage_cli.add_parser(top)
    return parser


def _current(path: Path) -> str:
    if not path.exists():
        return ""
    return read_text(path, f"the generated {path.name}",
                     "it is generated: restore it from version control or rebuild it")


def _diff(out_dir: Path, files: dict[str, str]) -> str:
    chunks = []
    for name, text in files.items():
        path = out_dir / name
        chunks += difflib.unified_diff(_current(path).splitlines(True), text.splitlines(True),
                                       f"a/{path}", f"b/{path}")
    return "".join(chunks)


def _site(path: Path) -> Site:
    if path.is_dir():
        raise InputError(Problem(str(path), "this is a folder; give the site file in it",
                                 hint=f"e.g. {path / 'site.yml'}"))
    return read_site(path)


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.area == "filter":
        return filter_cli.run(args)
    if args.area == "campaign":
        return campaign_cli.run(args)
    if args.area == "report":
        return report_cli.run(args)
    if args.area == "image":
        return image_cli.run(args)
    if args.area == "reimage":
        return reimage_cli.run(args)
    out_dir = args.output or args.site.parent
    if args.verb == "release":
        names = [n.lower() if "-" in n else n.upper() for n in args.names]
        with locked(out_dir):
            write_together(out_dir, {"allocations.yml": release(out_dir, names)})
        print(f"released {', '.join(names)} in {out_dir / 'allocations.yml'} "
              "(hosts.yml is unaffected: no host of it had these addresses)")
        return 0
    site = _site(args.site)
    if args.verb == "grow":
        with locked(out_dir):
            built, how = grow(site, out_dir, args.uai.upper(), args.network, args.directory)
            stale = [n for n, t in built.files.items() if _current(out_dir / n) != t]
            if not args.yes:
                sys.stdout.write(_diff(out_dir, built.files))
                print(f"{how}; nothing written: run again with --yes to write it")
                return 1
            write_together(out_dir, {n: built.files[n] for n in stale})
        print(f"{how}; wrote {', '.join(stale)} in {out_dir}")
        return 0
    started = time.perf_counter()
    if args.verb == "build":
        with locked(out_dir):
            return _build(args, site, out_dir, started)
    built = build(site, out_dir, args.directory)
    summary = (f"{site.name}: {built.schools} schools, {built.hosts} hosts, {built.groups} groups "
               f"({time.perf_counter() - started:.2f} s)")
    stale = [n for n, t in built.files.items() if _current(out_dir / n) != t]
    if args.verb == "diff":
        sys.stdout.write(_diff(out_dir, built.files))
        return 1 if stale else 0
    print(summary + ("; up to date" if not stale else f"; stale: {', '.join(stale)}"))
    return 1 if stale else 0


def _build(args: argparse.Namespace, site: Site, out_dir: Path, started: float) -> int:
    built = build(site, out_dir, args.directory, replan=args.replan)
    summary = (f"{site.name}: {built.schools} schools, {built.hosts} hosts, {built.groups} groups "
               f"({time.perf_counter() - started:.2f} s)")
    stale = [n for n, t in built.files.items() if _current(out_dir / n) != t]
    if stale:
        write_together(out_dir, {n: built.files[n] for n in stale})
    print(summary + (f"; wrote {', '.join(stale)} in {out_dir}" if stale else "; unchanged"))
    return 0


def main(argv: list[str] | None = None) -> int:
    return report_errors("cartable", lambda: run(sys.argv[1:] if argv is None else argv))

if __name__ == "__main__":
    sys.exit(main())
