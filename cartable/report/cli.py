"""`cartable report SITE`: the fleet report (HTML + CSV) of a site, docs/report.md.

    cartable report SITE [--as-of DATE] [--out DIR] [--previous DIR] [--pupils CSV]
                         [--facts DIR] [--no-billing]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from cartable.errors import InputError, Problem
from cartable.report.build import build_report
from cartable.report.inputs import read_inputs
from cartable.report.write import write_folder
from cartable.site import read_site

EPILOG = """\
examples:
  cartable report inventories/demo/site.yml                 # situation on 1 November
  cartable report inventories/demo/site.yml --as-of 2026-11-01 --out /srv/rapports/2026
  cartable report inventories/demo/site.yml --previous inventories/demo/reports/2025-11-01

Reads the generated inventory (hosts.yml beside the site file), the hardware file (models,
purchase dates), the pupils file and the billing tariff of the site file, Ansible's fact cache
and the latest campaign status (campaigns/*/status.json beside the site file) when present.
Writes rapport.html (self-contained) and CSV files into one folder, all at once.
See docs/report.md.
"""


def add_parser(top: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    text = "the fleet report: equipment, pupils, renewal, billing (HTML + CSV)"
    sub = top.add_parser("report", help=text, description=text, epilog=EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.add_argument("site", type=Path, help="the site file, e.g. inventories/demo/site.yml")
    sub.add_argument("--as-of", metavar="DATE", help="situation date YYYY-MM-DD (default: "
                     "1 November of the current school year; today in September-October)")
    sub.add_argument("--out", type=Path, metavar="DIR",
                     help="the report folder, replaced as a whole (default: "
                     "reports/<DATE> beside the site file)")
    sub.add_argument("--previous", type=Path, metavar="DIR", help="a previous report folder "
                     "to compare with (default: the latest earlier one beside --out)")
    sub.add_argument("--pupils", type=Path, metavar="CSV",
                     help="pupils file uai,pupils (default: 'pupils:' of the site file)")
    sub.add_argument("--facts", type=Path, metavar="DIR", help="Ansible's jsonfile fact cache "
                     "(default: the one Ansible's configuration names, when jsonfile)")
    sub.add_argument("--no-billing", action="store_true",
                     help="no billing statement (the site file then needs no tariff)")


def default_as_of(today: dt.date) -> dt.date:
    """1 November of the current school year (it starts on 1 September); today before it."""
    start = today.year if today.month >= 9 else today.year - 1
    return min(dt.date(start, 11, 1), today)


def parse_as_of(raw: str | None, today: dt.date) -> dt.date:
    if raw is None:
        return default_as_of(today)
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise InputError(Problem("--as-of", f"'{raw}' is not a date",
                                 hint="write it as YYYY-MM-DD, e.g. 2026-11-01")) from None
    if day > today:
        raise InputError(Problem("--as-of", f"{raw} is in the future (today is "
                                 f"{today.isoformat()})", hint="the report states what is: "
                                 "give today's date or an earlier one"))
    return day


def ansible_fact_cache() -> Path | None:
    """The jsonfile fact cache Ansible's configuration names (relative to its ansible.cfg)."""
    from ansible.config.manager import ConfigManager  # noqa: PLC0415 - slow import, only here
    config = ConfigManager()
    if config.get_config_value("CACHE_PLUGIN") not in ("jsonfile", "ansible.builtin.jsonfile"):
        return None
    where = config.get_config_value("CACHE_PLUGIN_CONNECTION")
    if not where:
        return None
    path = Path(where).expanduser()
    if not path.is_absolute() and config._config_file:
        path = Path(config._config_file).parent / path
    return path


def previous_report(out: Path, as_of: dt.date) -> Path | None:
    """The latest report folder beside `out` named by a date before `as_of`."""
    candidates = []
    for folder in out.parent.glob("*/ecoles.csv") if out.parent.is_dir() else []:
        try:
            day = dt.date.fromisoformat(folder.parent.name)
        except ValueError:
            continue
        if day < as_of and folder.parent != out:
            candidates.append((day, folder.parent))
    return max(candidates)[1] if candidates else None


def run(args: argparse.Namespace, today: dt.date | None = None) -> int:
    started = time.perf_counter()
    as_of = parse_as_of(args.as_of, today or dt.date.today())
    if args.site.is_dir():
        raise InputError(Problem(str(args.site), "this is a folder; give the site file in it",
                                 hint=f"e.g. {args.site / 'site.yml'}"))
    site = read_site(args.site)
    if site.billing is None and not args.no_billing:
        raise InputError(Problem(str(site.path), "no billing tariff in the site file",
                                 field="billing.tariff", hint="add billing: {tariff: {...}} "
                                 "(docs/site-file.md#the-report), or pass --no-billing"))
    out = args.out or site.path.parent / "reports" / as_of.isoformat()
    previous = args.previous or previous_report(out, as_of)
    facts = args.facts if args.facts else ansible_fact_cache()
    inputs = read_inputs(site, as_of, site.path.parent / "hosts.yml", args.pupils or site.pupils,
                         facts, previous)
    files = build_report(inputs, site.renewal, None if args.no_billing else site.billing,
                         str(site.path))
    write_folder(out, files)
    for warning in inputs.warnings:
        print(f"cartable: warning: {warning}", file=sys.stderr)
    missing = [s.uai for s in inputs.schools if s.pupils is None]
    if missing:
        print(f"cartable: warning: {len(missing)} school(s) without a pupil count (not counted, "
              f"flagged in the report): {', '.join(missing[:10])}"
              f"{'...' if len(missing) > 10 else ''}; add them to the pupils file",
              file=sys.stderr)
    hosts = sum(len(s.hosts) for s in inputs.schools)
    print(f"{site.name}: report as of {as_of.isoformat()}: {len(inputs.schools)} schools, "
          f"{hosts} hosts; wrote {', '.join(sorted(files))} in {out} "
          f"({time.perf_counter() - started:.2f} s)")
    return 0
