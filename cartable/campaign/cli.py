"""`cartable campaign ...`: run a playbook school by school, see where each school stands.

    cartable campaign run SITE PLAYBOOK [--wave W | --school UAI... | --failed]
                          [--check [--diff]] [--name NAME] [--forks N] [--inventory SRC...]
                          [--relay [--relay-command CMD]]
    cartable campaign status SITE [--name NAME] [--json | --csv]

Exit codes: 0 every school of the run ok, 1 some school failed, was unreachable or was
interrupted, 2 bad input (nothing run, nothing written).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from cartable.campaign import status as st
from cartable.campaign.engine import Campaign
from cartable.campaign.jobs import JobSpec, project_dir_of
from cartable.campaign.progress import Progress, summary, wanted
from cartable.campaign.report import check_summary, table, to_csv
from cartable.campaign.schools import School, known_waves, read_schools, select
from cartable.errors import InputError, Problem
from cartable.files import read_text
from cartable.site import Site, read_site

EPILOG = """\
examples:
  cartable campaign run inventories/rennes/site.yml playbooks/site.yml --wave juillet
  cartable campaign run inventories/rennes/site.yml playbooks/site.yml --check --diff
  cartable campaign run inventories/rennes/site.yml playbooks/site.yml --failed
  cartable campaign status inventories/rennes/site.yml --csv > summer.csv

One ansible-runner job per school (--limit school_<uai>), --forks schools at once. The state
of every school is saved after every change in <site folder>/campaigns/<name>/status.json;
running the same command again converges only the schools not yet ok (a school left
`running` by a killed controller included). The default name is the playbook's
(`site`, `site-check` in check mode). See docs/campaigns.md.
"""

DEFAULT_FORKS = 4


def add_parser(top: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    area = top.add_parser("campaign", help="run a playbook school by school, with a status "
                          "per school", epilog=EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = area.add_subparsers(dest="verb", required=True, metavar="VERB")
    text = ("converge the schools of a site (a wave, some schools, the failed ones) with one "
            "ansible-runner job per school")
    run = verbs.add_parser("run", help=text, description=text, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("site", type=Path, help="the site file, e.g. inventories/demo/site.yml")
    run.add_argument("playbook", type=Path, help="the playbook, e.g. playbooks/site.yml")
    which = run.add_mutually_exclusive_group()
    which.add_argument("--wave", help="only the schools of this wave (site file's waves:)")
    which.add_argument("--school", nargs="+", metavar="UAI", help="only these schools")
    which.add_argument("--failed", action="store_true",
                       help="only the schools that failed or were unreachable in this campaign")
    run.add_argument("--check", action="store_true", help="check mode: change nothing, "
                     "summarise what would change where")
    run.add_argument("--diff", action="store_true", help="show the differences (kept in each "
                     "school's job output, runs/<UAI>/artifacts/*/stdout)")
    run.add_argument("--name", help="the campaign's name (default: the playbook's, "
                     "+ '-check' in check mode)")
    run.add_argument("--forks", type=int, default=DEFAULT_FORKS, metavar="N",
                     help=f"schools converged at once (default {DEFAULT_FORKS}); each job uses "
                     "the forks of ansible.cfg for the school's hosts")
    run.add_argument("--relay", action="store_true",
                     help="each school's job runs on its school server (ansible-runner worker "
                     "there, reached by ssh as the inventory says; docs/campaigns.md)")
    run.add_argument("--relay-command", metavar="CMD",
                     help="with --relay: the command that runs `ansible-runner worker` on the "
                     "server instead of ssh ({server}: its inventory name), e.g. "
                     "'docker exec -i {server} ansible-runner worker'")
    run.add_argument("--relay-runner", default="ansible-runner", metavar="PATH",
                     help="with --relay: ansible-runner on the school servers (default: "
                     "ansible-runner, on their PATH)")
    run.add_argument("--inventory", "-i", type=Path, nargs="+", default=[], metavar="SRC",
                     help="more inventory sources after the site's hosts.yml (connection "
                     "settings, say)")
    text = "show the status of each school in a campaign (failures first)"
    show = verbs.add_parser("status", help=text, description=text)
    show.add_argument("site", type=Path, help="the site file")
    show.add_argument("--name", help="the campaign (default: the last one updated)")
    fmt = show.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="the status file as it is")
    fmt.add_argument("--csv", action="store_true", help="one row per school")


def run(args: argparse.Namespace) -> int:
    return _run(args) if args.verb == "run" else _status(args)


def _site(path: Path) -> Site:
    if path.is_dir():
        raise InputError(Problem(str(path), "this is a folder; give the site file in it",
                                 hint=f"e.g. {path / 'site.yml'}"))
    return read_site(path)


def _playbook(path: Path) -> None:
    hint = "give the path of a playbook, e.g. playbooks/site.yml"
    text = read_text(path, "playbook", hint)
    try:
        plays = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(Problem(str(path), f"not valid YAML: {getattr(exc, 'problem', exc)}",
                                 mark.line + 1 if mark else None, hint=hint)) from None
    if not isinstance(plays, list) or not plays:
        raise InputError(Problem(str(path), "not a playbook (a YAML list of plays)", hint=hint))


def _playbook_label(playbook: Path, project: Path) -> str:
    try:
        return str(playbook.resolve().relative_to(project))
    except ValueError:
        return str(playbook.resolve())


def _existing(path: Path, site: Site, playbook: str | None, check: bool | None) -> Any:
    """The campaign's status, if any, refused when it belongs to another site or playbook."""
    status = st.load(path)
    if status is None:
        return None
    if status.get("site") not in (None, site.name):
        raise InputError(Problem(str(path), f"this status belongs to site '{status['site']}', "
                                 f"not '{site.name}'", field="site",
                                 hint="give that site's file, or remove this campaign's folder"))
    if playbook is not None and status.get("playbook") != playbook:
        raise InputError(Problem(str(path), f"campaign '{status['campaign']}' runs "
                                 f"{status.get('playbook')}, not {playbook}", field="playbook",
                                 hint="give another --name for a campaign of this playbook"))
    if check is not None and bool(status.get("check")) != check:
        mode = "in check mode" if status.get("check") else "for real"
        raise InputError(Problem(str(path), f"campaign '{status['campaign']}' runs {mode}",
                                 field="check", hint="give another --name"))
    return status


def _selection(args: argparse.Namespace, site: Site, schools: list[School],
               status: Any, where: str) -> list[School]:
    if args.failed:
        if status is None:
            raise InputError(Problem(where, f"no campaign '{args.name}' yet: --failed reruns the "
                                     "failed schools of a campaign", field="--failed",
                                     hint="run it without --failed first, or give its --name"))
        by_uai = {s.uai: s for s in schools}
        return [by_uai[u] for u in st.to_run(status, sorted(status["schools"]), True)
                if u in by_uai]
    waves = known_waves(tuple(w.name for w in site.waves), schools)
    return select(schools, where=where, wave=args.wave, uais=args.school, waves=waves)


def _run(args: argparse.Namespace) -> int:
    site = _site(args.site)
    where = str(args.site)
    schools = read_schools(args.site.parent / "hosts.yml")
    _playbook(args.playbook)
    for extra in args.inventory:
        if not extra.exists():
            raise InputError(Problem(str(extra), "inventory source not found", field="--inventory"))
    if args.forks < 1:
        raise InputError(Problem(where, f"--forks {args.forks}: at least 1", field="--forks"))
    if args.relay_command and not args.relay:
        raise InputError(Problem(where, "--relay-command goes with --relay",
                                 field="--relay-command", hint="add --relay"))
    if args.diff and not args.check:
        raise InputError(Problem(where, "--diff goes with --check here (a real run keeps "
                                 "its differences in each job's output anyway)", field="--diff",
                                 hint="add --check"))
    project = project_dir_of(args.playbook)
    label = _playbook_label(args.playbook, project)
    args.name = st.check_name(args.name or args.playbook.stem + ("-check" if args.check else ""),
                              where)
    if args.name == st.REIMAGE:
        raise InputError(Problem(where, f"campaign name '{st.REIMAGE}' is kept by cartable reimage (the "
                                 "restored workstations' converges)", field="--name",
                                 hint="give another --name"))
    folder = st.campaign_dir(args.site.parent, args.name)
    chosen = _selection(args, site, schools, _existing(folder / st.STATUS, site, label,
                                                       args.check), where)
    with st.site_lock(args.site.parent):
        status = _existing(folder / st.STATUS, site, label, args.check) \
            or st.new_status(args.name, label, site.name, args.check)
        todo = [s for s in chosen if s.uai in st.to_run(status, [s.uai], args.failed)]
        skipped = [s.uai for s in chosen if s not in todo]
        if skipped:
            print(f"already ok in campaign {args.name}, not run again: {', '.join(skipped)}")
        if not todo:
            print(f"campaign {args.name}: nothing to run")
            return 0
        spec = JobSpec(args.playbook, (args.site.parent / "hosts.yml", *args.inventory), project,
                       check=args.check, diff=args.diff, relay=args.relay,
                       relay_command=tuple(shlex.split(args.relay_command or "")),
                       relay_runner=args.relay_runner)
        uais = [s.uai for s in todo]
        print(f"campaign {args.name}: {label} on {len(uais)} school(s), {args.forks} at once"
              f"{' (check mode)' if args.check else ''}; status: {folder / st.STATUS}",
              flush=True)
        progress = Progress(args.name, uais, args.forks, sys.stdout, sys.stderr,
                            wanted(sys.stderr))
        try:
            final = Campaign(folder, status, spec, args.forks, progress).run(todo)
        finally:
            progress.close()
    if args.check:
        sys.stdout.write(check_summary(final, uais))
    print(summary(final, uais))
    return 0 if all(final["schools"][u]["state"] == "ok" for u in uais) else 1


def _status(args: argparse.Namespace) -> int:
    site = _site(args.site)
    found = st.campaigns(args.site.parent)
    if not found:
        raise InputError(Problem(str(args.site.parent / st.FOLDER), "no campaign on this site yet",
                                 hint="start one: cartable campaign run SITE PLAYBOOK"))
    if args.name is None:  # the last rollout updated (reimage's own campaign only if alone)
        name = next((n for n, _ in found if n != st.REIMAGE), found[0][0])
    elif args.name in dict(found):
        name = args.name
    else:
        raise InputError(Problem(str(args.site.parent / st.FOLDER), f"no campaign '{args.name}'",
                                 field="--name", hint="known: " + ", ".join(n for n, _ in found)))
    status = _existing(st.campaign_dir(args.site.parent, name) / st.STATUS, site, None, None)
    if args.json:
        sys.stdout.write(json.dumps(status, indent=2) + "\n")
    elif args.csv:
        sys.stdout.write(to_csv(status))
    else:
        sys.stdout.write(table(status))
        others = [n for n, _ in found if n != name]
        if others and args.name is None:
            print(f"other campaigns: {', '.join(others)} (--name)")
    return 0
