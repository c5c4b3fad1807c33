"""cartable — command line.

    cartable inventory build   SITE   write hosts.yml + allocations.yml next to the site file
    cartable inventory check   SITE   validate inputs; exit 1 if the files on disk are stale
    cartable inventory diff    SITE   show what build would change, write nothing
    cartable inventory release SITE UAI...   free the subnets of schools that left the selection

Exit codes: 0 ok, 1 stale (check) or differences (diff), 2 bad input (nothing written).
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
import time
from pathlib import Path

from cartable.errors import InputError
from cartable.inventory import build, release
from cartable.site import read_site

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
        "release": "free the subnets of schools that left the selection (marked reserved)",
    }
    for verb, text in helps.items():
        sub = verbs.add_parser(verb, help=text, description=text)
        sub.add_argument("site", type=Path, help="the site file, e.g. inventories/demo/site.yml")
        if verb == "release":
            sub.add_argument("uai", nargs="+", help="UAI of a reserved school")
            continue
        sub.add_argument("--directory", type=Path, metavar="CSV",
                         help="school directory CSV (default: 'directory:' of the site file)")
        sub.add_argument("--output", type=Path, metavar="DIR",
                         help="where the inventory lives (default: the site file's folder)")
    return parser


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _current(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _diff(out_dir: Path, files: dict[str, str]) -> str:
    chunks = []
    for name, text in files.items():
        path = out_dir / name
        chunks += difflib.unified_diff(_current(path).splitlines(True), text.splitlines(True),
                                       f"a/{path}", f"b/{path}")
    return "".join(chunks)


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.verb == "release":
        out_dir = args.site.parent
        text = release(out_dir, [u.upper() for u in args.uai])
        _write_atomic(out_dir / "allocations.yml", text)
        print(f"released {', '.join(args.uai)}; rebuild to refresh hosts.yml")
        return 0
    site = read_site(args.site)
    out_dir = args.output or args.site.parent
    started = time.perf_counter()
    built = build(site, out_dir, args.directory)
    elapsed = time.perf_counter() - started
    summary = (f"{site.name}: {built.schools} schools, {built.hosts} hosts, {built.groups} groups "
               f"({elapsed:.2f} s)")
    stale = [n for n, t in built.files.items() if _current(out_dir / n) != t]
    if args.verb == "diff":
        sys.stdout.write(_diff(out_dir, built.files))
        return 1 if stale else 0
    if args.verb == "check":
        print(summary + ("; up to date" if not stale else f"; stale: {', '.join(stale)}"))
        return 1 if stale else 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in stale:
        _write_atomic(out_dir / name, built.files[name])
    print(summary + (f"; wrote {', '.join(stale)} in {out_dir}" if stale else "; unchanged"))
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except InputError as exc:
        print(f"cartable: {len(exc.problems)} problem(s), nothing written:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
