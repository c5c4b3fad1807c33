"""`cartable-history`: seal, verify, purge and report on the connection history.

    cartable-history seal   --dir D [--leases FILE] [--today YYYY-MM-DD]
    cartable-history verify --dir D [--today YYYY-MM-DD]
    cartable-history purge  --dir D --keep-days 366 [--today YYYY-MM-DD]
    cartable-history report --dir D --from YYYY-MM-DD --to YYYY-MM-DD
                            [--host NAME] [--ip ADDRESS] [--blocked] [--csv OUT]

Exit codes: 0 done / intact, 1 verify found the history damaged, 2 bad input or a
failure (nothing written), never a traceback.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

from cartable.errors import InputError, Problem, report_errors
from cartable.history import chain, report

DIR = Path("/var/log/cartable/history")
LEASES = Path("/var/lib/misc/dnsmasq.leases")
EPILOG = """\
examples (as root; the daily timer runs seal, verify, purge):
  cartable-history seal   --dir /var/log/cartable/history
  cartable-history verify --dir /var/log/cartable/history
  cartable-history purge  --dir /var/log/cartable/history --keep-days 366
  cartable-history report --dir /var/log/cartable/history --from 2026-11-02 --to 2026-11-06 \\
      --host 0350607v-sdi03 --csv /root/controle.csv

See docs/history.md.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cartable-history", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The school's connection history: seal closed days into a hash chain, "
                    "verify it, purge after the retention period, report.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=text, description=text)
        sub.add_argument("--dir", type=Path, default=DIR, metavar="D",
                         help=f"the history folder (default {DIR})")
        return sub

    def today(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--today", metavar="YYYY-MM-DD",
                         help="the current day (default: the server's local date)")

    sub = verb("seal", "chain every closed day file (not today's) by hash; 0640 root:adm")
    sub.add_argument("--leases", type=Path, default=LEASES, metavar="FILE",
                     help=f"DHCP leases to snapshot for a day the logger kept no journal of "
                          f"(default {LEASES})")
    today(sub)
    sub = verb("verify", "check every sealed file against the chain (exit 1 when damaged)")
    sub.add_argument("--keep-days", type=int, default=366, metavar="N",
                     help="the retention purge must use (default 366): a purge of a younger "
                          "day is reported")
    today(sub)
    sub = verb("purge", "delete the days older than the retention period, recorded in the "
                        "chain")
    sub.add_argument("--keep-days", type=int, required=True, metavar="N",
                     help="a day N days old stays, N+1 days old goes (366 for one year)")
    today(sub)
    sub = verb("report", "who reached what in a period, blocked attempts by category and day")
    sub.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
    sub.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD")
    sub.add_argument("--host", metavar="NAME", help="one workstation, by name")
    sub.add_argument("--ip", metavar="ADDRESS", help="one client address")
    sub.add_argument("--blocked", action="store_true", help="blocked requests only")
    sub.add_argument("--csv", type=Path, metavar="OUT",
                     help="write the detail (per day, workstation, site, verdict) as CSV")
    return parser


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(Problem("command line", f"not a date: {value!r}", field=option,
                                 hint="write it YYYY-MM-DD, e.g. 2026-11-02")) from None


def _today(args: argparse.Namespace) -> date:
    return _date(args.today, "--today") if args.today else date.today()


def _folder(path: Path) -> Path:
    if not path.is_dir():
        what = "not a folder" if path.exists() else "no such folder"
        raise InputError(Problem(str(path), what, field="--dir",
                                 hint=f"the history folder, normally {DIR}"))
    return path


def _seal(args: argparse.Namespace) -> int:
    today, folder = _today(args), _folder(args.dir)
    added = chain.seal(folder, today, args.leases)
    for record in added:
        print(f"sealed {record.file} ({record.day}, sha256 {record.sha256[:16]}...)")
    records, _ = chain.read_chain(folder)
    head = records[-1].hash if records else chain.GENESIS
    print(f"{len(added)} file(s) sealed; chain: {len(records)} records, head {head}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    today, folder = _today(args), _folder(args.dir)
    records, findings, notes = chain.verify(folder, today, args.keep_days)
    if findings:
        print(f"BROKEN: {findings[0]}")
        for finding in findings[1:]:
            print(f"  also: {finding}")
    for note in notes:
        print(f"note: {note}")
    if findings:
        return 1
    head = records[-1].hash if records else chain.GENESIS
    sealed = sum(r.kind == chain.SEAL for r in records)
    purged = sum(r.kind == chain.PURGE for r in records)
    print(f"intact: {len(records)} records ({sealed} sealed, {purged} purged by retention), "
          f"head {head}")
    return 0


def _purge(args: argparse.Namespace) -> int:
    today, folder = _today(args), _folder(args.dir)
    if args.keep_days < 1:
        raise InputError(Problem("command line", f"{args.keep_days} is not a retention",
                                 field="--keep-days", hint="a number of days, 366 for a year"))
    added = chain.purge(folder, args.keep_days, today)
    for record in added:
        print(f"purged {record.file} ({record.day})")
    print(f"{len(added)} file(s) purged (kept: days at most {args.keep_days} days before "
          f"{today})")
    return 0


def _report(args: argparse.Namespace) -> int:
    problems = []
    start = end = None
    for value, option in ((args.start, "--from"), (args.end, "--to")):
        try:
            parsed = _date(value, option)
        except InputError as exc:
            problems += exc.problems
            continue
        start, end = (parsed, end) if option == "--from" else (start, parsed)
    if start and end and start > end:
        problems.append(Problem("command line", f"--from {start} is after --to {end}",
                                field="--from", hint="swap them"))
    if args.ip is not None:
        try:
            ipaddress.ip_address(args.ip)
        except ValueError:
            problems.append(Problem("command line", f"not an IP address: {args.ip!r}",
                                    field="--ip"))
    try:
        folder = _folder(args.dir)
    except InputError as exc:
        problems += exc.problems
    if args.csv is not None and not args.csv.parent.is_dir():
        problems.append(Problem(str(args.csv), "its folder does not exist", field="--csv"))
    if problems:
        raise InputError(problems)
    assert start is not None and end is not None
    query = report.Query(start, end, args.host, args.ip, args.blocked)
    totals = report.Totals()
    report.aggregate(report.read_lines(folder, query, totals), query, totals)
    sys.stdout.write(report.summary(folder, query, totals))
    if args.csv is not None:
        _write_atomically(args.csv, totals)
        print(f"\nDetail : {args.csv} ({len(totals.detail)} lignes)")
    return 0


def _write_atomically(path: Path, totals: report.Totals) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            report.write_csv(handle, totals)
        os.chmod(temp, 0o640)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    verbs = {"seal": _seal, "verify": _verify, "purge": _purge, "report": _report}
    return report_errors("cartable-history", lambda: verbs[args.verb](args), suffix="")

if __name__ == "__main__":
    sys.exit(main())
