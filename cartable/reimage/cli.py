"""`cartable reimage ...`: reimage workstations now through their school server; the status.

    cartable reimage now SITE --school UAI [--room R | --host H] [--wait MINUTES]
                         [--no-converge | --relay-command CMD] [--relay-runner PATH]
                         [--no-scan] [--forks N] [--playbook P]
    cartable reimage converge SITE [--school UAI...] [--no-fetch] [--relay-command CMD]
                              [--relay-runner PATH] [--no-scan] [--forks N] [--playbook P]
    cartable reimage status SITE [--school UAI...] [--no-fetch] [--json | --csv]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from cartable.errors import InputError, Problem
from cartable.reimage import status as st
from cartable.campaign.schools import School, read_schools
from cartable.reimage.converge import (CAMPAIGN, Todo, converge, in_place, login_problems, plan, read_converged,
                                       restored, unconverged)
from cartable.reimage.targets import target

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
EPILOG = """\
examples:
  cartable reimage now inventories/demo/site.yml --school 0350607V --room computer_room
  cartable reimage now inventories/demo/site.yml --school 0350607V --host 0350607v-sdi03
  cartable reimage now inventories/demo/site.yml --school 0350607V --no-converge   # restore only
  cartable reimage converge inventories/demo/site.yml   # after the schedules: restored, not converged
  cartable reimage status inventories/demo/site.yml            # failures first
  cartable reimage status inventories/demo/site.yml --no-fetch --csv > reimaging.csv

The school server does the work (role reimaging: marks the workstations for a restore, wakes
them in batches with Wake-on-LAN, waits for their restore reports). Then the workstations
restored are converged by the school server's relay (playbooks/workstations.yml: their apt
cache, printers and proxy), as the school's job of the campaign `reimage` (cartable campaign
status SITE --name reimage): the relay's key, written by the restore, is a restored PC's only
way in. After the scheduled restores (the servers' timers), `converge` does the same for the
workstations restored since their last converge (reimaging/converged.json). See docs/netboot.md.
"""


def add_parser(top: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    area = top.add_parser("reimage", help="reimage workstations now through their school server; status",
                          epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = area.add_subparsers(dest="verb", required=True, metavar="VERB")
    text = "reimage a school, a room or a workstation now (the school server wakes and restores them)"
    now = verbs.add_parser("now", help=text, description=text, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    now.add_argument("site", type=Path, help="the site file, e.g. inventories/demo/site.yml")
    now.add_argument("--school", required=True, metavar="UAI", help="the school")
    which = now.add_mutually_exclusive_group()
    which.add_argument("--room", help="one room of the school (cartable_room, e.g. computer_room)")
    which.add_argument("--host", help="one workstation (inventory name)")
    now.add_argument("--wait", type=float, metavar="MINUTES",
                     help="minutes the server waits for the restore reports (default: the room's)")
    after = now.add_mutually_exclusive_group()
    after.add_argument("--no-converge", action="store_true",
                       help="restore only: leave the restored workstations' place in the school "
                       "(apt cache, printers, proxy) to `cartable reimage converge` or a campaign")
    _converge_options(now, after)
    text = ("converge the workstations restored since their last converge (the scheduled restores), "
            "by their school server's relay")
    conv = verbs.add_parser("converge", help=text, description=text, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    _site_and_schools(conv)
    _converge_options(conv, conv)
    text = "each workstation's image version, last restore, duration and result, failures first"
    stat = verbs.add_parser("status", help=text, description=text, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    _site_and_schools(stat)
    out = stat.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--csv", action="store_true")


def _site_and_schools(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("site", type=Path, help="the site file, e.g. inventories/demo/site.yml")
    parser.add_argument("--school", action="append", metavar="UAI", help="only these schools (repeatable)")
    parser.add_argument("--no-fetch", action="store_true",
                        help="read what was fetched last (reimaging/ beside the site file), ask no server")


def _converge_options(parser: argparse.ArgumentParser, group: Any) -> None:
    group.add_argument("--relay-command", metavar="CMD",
                       help="the command that runs the relay's `ansible-runner worker` on the "
                       "school server instead of ssh ({server}: its inventory name)")
    parser.add_argument("--relay-runner", default="ansible-runner", metavar="PATH",
                        help="ansible-runner on the school server (default: on its PATH, as roles/relay "
                        "installs it)")
    parser.add_argument("--no-scan", action="store_true",
                        help="do not run playbooks/relays.yml first (its scan learns the host keys of "
                        "PCs restored for the first time); for relays given every key "
                        "(relay__known_hosts)")
    parser.add_argument("--forks", type=int, default=4, metavar="N",
                        help="schools converged at once (default 4)")
    parser.add_argument("--playbook", type=Path, default=PLAYBOOKS / "workstations.yml",
                        help="the playbook that converges the restored workstations "
                        "(default: playbooks/workstations.yml)")


def _hosts_yml(site: Path) -> Path:
    if not site.is_file():
        raise InputError(Problem(str(site), "site file not found", hint="give the path of a site file, "
                                 "e.g. inventories/demo/site.yml"))
    return site.parent / "hosts.yml"


def _playbook(playbook: str, inventory: Path, limit: str, extravars: dict[str, object]) -> tuple[str, int | None, str]:
    """Run one of Cartable's playbooks with ansible-runner: (status, rc, stdout)."""
    import ansible_runner  # imported late: only these commands need it

    with tempfile.TemporaryDirectory(prefix="cartable-reimage-") as private:
        runner = ansible_runner.run(
            private_data_dir=private, project_dir=str(REPO), playbook=str(PLAYBOOKS / playbook),
            inventory=str(inventory.resolve()), limit=limit, extravars=extravars, quiet=True,
            envvars={"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                     "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
            suppress_env_files=True)
        output = runner.stdout.read() if runner.stdout else ""
        return runner.status, runner.rc, output


def _check_playbook(args: argparse.Namespace) -> None:
    if args.forks < 1:
        raise InputError(Problem(str(args.site), f"--forks {args.forks}: at least 1", field="--forks"))
    if not args.playbook.is_file():
        raise InputError(Problem(str(args.playbook), "playbook not found", field="--playbook",
                                 hint="give the playbook that converges workstations, e.g. "
                                 "playbooks/workstations.yml" + (", or --no-converge" if args.verb == "now" else "")))


def _planned(hosts_yml: Path, todo: Todo) -> tuple[Todo, list[School]]:
    """`todo` within the inventory (what is left is warned about), and its schools."""
    schools = read_schools(hosts_yml)
    kept, left = plan(todo, schools)
    for line in left:
        print(f"warning: {line}", file=sys.stderr)
    return kept, [s for s in schools if s.uai in kept]


def _converge_restored(args: argparse.Namespace, hosts_yml: Path, kept: Todo, schools: list[School]) -> bool:
    """Converge the restored workstations `kept` (UAI -> {host: restore time}, within the
    inventory) by their servers' relays, `--forks` schools at once; False when one is not in
    place. Those in place are recorded (reimaging/converged.json).

    First the relay role on their school servers (playbooks/relays.yml, unless --no-scan): its
    scan learns the host keys of the school's PCs it does not know yet, a PC restored for the
    first time included (its key was made at its first boot); a known PC's key is never replaced."""
    if not kept:
        print("no restored workstation to converge")
        return True
    servers = sorted({s.server for s in schools if s.server})
    if not args.no_scan and servers:
        print(f"{', '.join(servers)}: the relay learns the host keys of new PCs (playbooks/relays.yml)", flush=True)
        state, rc, output = _playbook("relays.yml", hosts_yml, ":".join(servers), {})
        if state != "successful":
            sys.stderr.write(output[-2000:])
            print(f"warning: the relay role did not run everywhere ({state}, rc {rc}): a PC restored for "
                  "the first time is unknown to its relay and will be unreachable", file=sys.stderr)
    count = sum(len(h) for h in kept.values())
    print(f"converging {count} restored workstation(s) of {len(kept)} school(s) by their school servers' "
          f"relays with {args.playbook} (campaign {CAMPAIGN}, {args.forks} school(s) at once)", flush=True)
    try:
        entries = converge(args.site, kept, schools, args.playbook, forks=args.forks, relay=True,
                           relay_command=tuple(shlex.split(args.relay_command or "")),
                           relay_runner=args.relay_runner)
    except InputError as exc:  # another campaign holds the site: the restores themselves are done
        print(f"cartable reimage: restored, not converged: {exc}\n  later: cartable reimage converge "
              f"{args.site}", file=sys.stderr)
        return False
    everywhere = True
    for uai, entry in sorted(entries.items()):
        hosts = list(kept[uai])
        placed = in_place(entry, hosts)
        missing = [h for h in hosts if h not in placed]
        print(f"{uai}: converge {entry['state']}: {len(placed)}/{len(hosts)} workstation(s) in place, "
              f"{entry['changed']} change(s)" + (f"; not in place: {', '.join(missing)}" if missing else ""))
        for error in entry["errors"][:5]:
            print(f"  {error.get('host') or '-'}: {error.get('task') or ''}: {error.get('msg', '')}", file=sys.stderr)
        everywhere = everywhere and not missing and entry["state"] == "ok"
    return everywhere


def _fetch(hosts_yml: Path, dest: Path, uais: list[str] | None) -> None:
    """Each school server's reimaging status into reimaging/<UAI>.json (a silent server: warned)."""
    dest.mkdir(exist_ok=True)
    limit = "school_servers" if not uais else ":".join(target(hosts_yml, uai).server for uai in uais)
    state, rc, _output = _playbook("reimage_status.yml", hosts_yml, limit, {"reimage_dest": str(dest)})
    if state != "successful":
        print(f"warning: some school servers did not answer ({state}, rc {rc}); their last fetched "
              "status is used", file=sys.stderr)


def _converge_verb(args: argparse.Namespace, hosts_yml: Path, dest: Path) -> int:
    _check_playbook(args)
    for uai in args.school or []:
        target(hosts_yml, uai)  # an unknown school: exit 2, before anything
    done = read_converged(args.site.parent)
    if not args.no_fetch:
        _fetch(hosts_yml, dest, args.school)
    todo = unconverged(st.rows(st.read_fetched(args.site.parent, args.school)), done)
    kept, schools = _planned(hosts_yml, todo)
    if not kept:
        print("every restored workstation was converged since its last restore: nothing to converge")
        return 0
    problems = login_problems(args.site, sorted(h for hosts in kept.values() for h in hosts))
    if problems:
        raise InputError(problems)
    return 0 if _converge_restored(args, hosts_yml, kept, schools) else 1


def run(args: argparse.Namespace) -> int:
    hosts_yml = _hosts_yml(args.site)
    dest = (args.site.parent / st.FOLDER).resolve()
    if args.verb == "converge":
        return _converge_verb(args, hosts_yml, dest)
    if args.verb == "now":
        if not args.no_converge:
            _check_playbook(args)
        chosen = target(hosts_yml, args.school, args.room, args.host)
        if not args.no_converge:  # before any restore: a PC the relay could not log into after it
            read_converged(args.site.parent)  # and a broken record, found now rather than after
            problems = login_problems(args.site, list(chosen.hosts))
            if problems:
                raise InputError(problems)
        if chosen.without_mac:
            print(f"warning: {len(chosen.without_mac)} workstation(s) without a MAC cannot be woken nor "
                  f"restored (the run report lists them as failures): {', '.join(chosen.without_mac)}",
                  file=sys.stderr)
        job_args = [*chosen.args, *(["--wait", str(args.wait)] if args.wait is not None else [])]
        print(f"{chosen.server}: cartable-reimage now {' '.join(job_args)} ({len(chosen.hosts)} workstation(s))")
        dest.mkdir(exist_ok=True)
        state, rc, output = _playbook("reimage_now.yml", hosts_yml, chosen.server,
                                      {"reimage_args": job_args, "reimage_dest": str(dest)})
        if state != "successful":
            sys.stderr.write(output[-4000:])
            print(f"cartable reimage: the school server's job did not run ({state}, rc {rc})", file=sys.stderr)
            return 2
        report = json.loads((dest / "runs" / f"{chosen.uai}.json").read_text(encoding="utf-8"))
        lines = [{"state": "ok" if h["result"] == "ok" else "failed", "school": chosen.uai, "host": h["name"],
                  "room": h.get("room", ""), "image": h.get("image", ""), "version": h.get("version", ""),
                  "restored": h.get("time", ""), "seconds": h.get("seconds", ""), "result": h["result"],
                  "note": h.get("reason", "")} for h in report["hosts"]]
        sys.stdout.write(st.table(lines))
        restore_ok = report.get("failed", 0) == 0
        if args.no_converge:
            return 0 if restore_ok else 1
        converged = _converge_restored(args, hosts_yml, *_planned(hosts_yml, {chosen.uai: restored(report)}))
        return 0 if converged and restore_ok else 1
    if not args.no_fetch:
        _fetch(hosts_yml, dest, args.school)
    lines = st.rows(st.read_fetched(args.site.parent, args.school))
    sys.stdout.write(st.to_json(lines) if args.json else st.to_csv(lines) if args.csv else st.table(lines))
    return 0
