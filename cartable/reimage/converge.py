"""After a restore, the restored workstations' place in the school: `cartable reimage now`
converges them (playbooks/workstations.yml: common's apt proxy, print_client, proxy_client)
as their school's job of the campaign `reimage` (cartable campaign status SITE --name reimage),
by their school server's relay: the relay's key, written by the restore for the image's
connection user, is a restored PC's only way in (the controller's own key comes with common's
converge). The function also runs jobs from the controller (`relay=False`), for the tests and
for images that carry the controller's key.

Only the workstations whose restore report says `ok` are converged: a failed restore left its
disk unbootable (the next boot restores again), there is nothing to converge there. After a
scheduled restore (the server's timers: no controller in the loop), `cartable reimage converge`
takes the workstations whose last restore (the fetched status) is newer than the one their last
successful converge followed: `reimaging/converged.json` beside the site file keeps that time
per workstation, only for the hosts a job reached without failure (a PC switched off is taken
again next time, its school's other PCs are not).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from cartable.campaign import status as st
from cartable.campaign.engine import Campaign
from cartable.campaign.jobs import JobSpec, project_dir_of
from cartable.campaign.relay import inventory_cli
from cartable.campaign.schools import School
from cartable.errors import InputError, Problem
from cartable.images.catalog import read_catalog
from cartable.reimage import status as st_reimage
from cartable.site import read_site

CAMPAIGN = st.REIMAGE
CONVERGED = "converged.json"
Todo = dict[str, dict[str, str]]  # UAI -> {workstation: the time of its restore}


def restored(report: dict[str, Any]) -> dict[str, str]:
    """The hosts of a reimaging run report whose restore succeeded (in the report's order), with
    the time of that restore."""
    return {str(h["name"]): str(h.get("time", "")) for h in report.get("hosts", [])
            if h.get("result") == "ok" and h.get("name")}


def _when(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def newer(time: str, than: str | None) -> bool:
    """Whether a restore at `time` comes after the one at `than` (ISO 8601; None: none yet)."""
    if than is None:
        return True
    a, b = _when(time), _when(than)
    if a is None or b is None or (a.tzinfo is None) != (b.tzinfo is None):
        return time != than  # not comparable as times: any other value is another restore
    return a > b


def unconverged(rows: list[dict[str, str]], done: dict[str, str]) -> Todo:
    """Per school, the workstations whose last restore (a status line `ok`) is newer than the
    one their last successful converge followed (`done`: host -> that restore's time)."""
    todo: Todo = {}
    for line in rows:
        if line["state"] == "ok" and line["restored"] and newer(line["restored"], done.get(line["host"])):
            todo.setdefault(line["school"], {})[line["host"]] = line["restored"]
    return todo


def plan(todo: Todo, schools: list[School]) -> tuple[Todo, list[str]]:
    """`todo` limited to the inventory: its schools (by UAI, any case) and each school's own
    workstations; the rest, one line each saying why it is left."""
    by_uai = {s.uai.upper(): s for s in schools}
    kept: Todo = {}
    left: list[str] = []
    for uai, hosts in todo.items():
        school = by_uai.get(uai.upper())
        if school is None:
            left.append(f"school {uai} is not in the inventory: its restored workstations are left "
                        f"(a stale {st_reimage.FOLDER}/{uai}.json? remove it)")
            continue
        mine = {h: t for h, t in hosts.items() if h in school.hosts}
        left += [f"{h} is not a workstation of school {school.uai} in the inventory: left" for h in hosts if h not in mine]
        if mine:
            kept[school.uai] = mine
    return kept, left


def read_converged(site_dir: Path) -> dict[str, str]:
    """`reimaging/converged.json`: each workstation's restore time that a converge followed."""
    path = site_dir / st_reimage.FOLDER / CONVERGED
    if not path.exists():
        return {}
    data = st_reimage.read_json(path, dict, "a mapping of workstation to restore time (JSON)",
                                "remove it: the next converge takes every restored workstation")
    return {str(k): str(v) for k, v in data.items()}


def record_converged(site_dir: Path, times: dict[str, str]) -> None:
    """Add `times` (host -> the restore time converged) to `reimaging/converged.json`, whole; an
    older time never replaces a newer one. The caller holds the site's lock."""
    data = read_converged(site_dir)
    # a time that is not one (empty, unreadable) is not recorded: that PC is converged again later
    news = {h: t for h, t in times.items() if _when(t) is not None and newer(t, data.get(h))}
    if not news:
        return
    data.update(news)
    path = site_dir / st_reimage.FOLDER / CONVERGED
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, part = tempfile.mkstemp(dir=path.parent, prefix=f".{CONVERGED}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(dict(sorted(data.items())), indent=1) + "\n")
        os.replace(part, path)
    finally:
        Path(part).unlink(missing_ok=True)


def in_place(entry: dict[str, Any], hosts: list[str]) -> list[str]:
    """The `hosts` a school's job reached (its final stats) without a failure."""
    reached = set(entry.get("processed") or [])
    return [h for h in hosts if h in reached and h not in entry["failed_hosts"]]


def _status(folder: Path, site: str, playbook: str) -> dict[str, Any]:
    """The `reimage` campaign's status (new if none), refused when it is another site's."""
    path = folder / st.STATUS
    status = st.load(path)
    if status is None:
        return st.new_status(CAMPAIGN, playbook, site, False)
    if status.get("site") not in (None, site):
        raise InputError(Problem(str(path), f"this status belongs to site '{status['site']}', not '{site}'",
                                 field="site", hint="give that site's file, or remove this folder"))
    status["playbook"] = playbook
    return status


def login_problems(site: Path, hosts: list[str], inventories: tuple[Path, ...] = ()) -> list[Problem]:
    """Workstations the relay could not log into after their restore: the only account a restored
    PC accepts the relay's key for is its image's connection user (the site's catalog,
    settings.connection_user), so their `ansible_user` must be that (a templated one is left to
    Ansible). No catalog: not checked."""
    catalog = read_site(site).catalog
    if catalog is None or not hosts:
        return []
    user = read_catalog(catalog).settings.connection_user
    where = str(site.parent / "hosts.yml")
    if not user:
        return [Problem(str(catalog), "settings.connection_user is empty: a restored PC has no account "
                        "the relay can log into", field="settings.connection_user",
                        hint="set it (default cartable) and rebuild the images, or restore with --no-converge")]
    spec = JobSpec(Path("-"), (site.parent / "hosts.yml", *inventories), site.parent)
    try:
        listed = json.loads(inventory_cli(spec, "--list"))
    except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
        return [Problem(where, f"the inventory cannot be read: {exc}", hint="fix it, then run this again")]
    hostvars = (listed.get("_meta") or {}).get("hostvars") or {}
    problems = []
    for host in hosts:
        given = (hostvars.get(host) or {}).get("ansible_user")
        if isinstance(given, str) and "{{" in given:
            continue  # decided by Ansible at run time
        if given != user:
            said = f"ansible_user is '{given}'" if given is not None else "no ansible_user"
            problems.append(Problem(where, f"{host}: {said}, but its restored image accepts the relay only as "
                                    f"'{user}' (the catalog's settings.connection_user, {catalog})",
                                    field="ansible_user",
                                    hint=f"set ansible_user: {user} for the workstations (group_vars/workstations.yml)"))
    return problems


def converge(site: Path, todo: Todo, schools: list[School], playbook: Path, *, forks: int = 4,
             relay: bool = False, relay_command: tuple[str, ...] = (), relay_runner: str = "ansible-runner",
             inventories: tuple[Path, ...] = ()) -> dict[str, dict[str, Any]]:
    """Converge the workstations of `todo` (as `plan` keeps them: the keys are `schools`' UAIs)
    with `playbook`, one job per school, `forks` schools at once (one run of the campaign
    `reimage`: its signals, its status); record those each job reached without failure. The
    schools' entries in the campaign's status, by UAI."""
    chosen = [s for s in schools if todo.get(s.uai)]
    if not chosen:
        return {}
    name = read_site(site).name
    project = project_dir_of(playbook)
    try:
        label = str(playbook.resolve().relative_to(project))
    except ValueError:
        label = str(playbook.resolve())
    folder = st.campaign_dir(site.parent, CAMPAIGN)
    hosts = tuple(h for s in chosen for h in todo[s.uai])  # each job: these, within its school
    spec = JobSpec(playbook, (site.parent / "hosts.yml", *inventories), project, relay=relay,
                   relay_command=relay_command, relay_runner=relay_runner, hosts=hosts)
    with st.site_lock(site.parent):
        status = _status(folder, name, label)
        for school in chosen:  # to run again; if interrupted before its job starts: nobody reached
            if school.uai in status["schools"]:
                status["schools"][school.uai].update(state="pending", processed=[])
        final = Campaign(folder, status, spec, forks).run(chosen)
        entries: dict[str, dict[str, Any]] = {s.uai: final["schools"][s.uai] for s in chosen}
        record_converged(site.parent, {h: t for s in chosen for h, t in todo[s.uai].items()
                                       if h in in_place(entries[s.uai], list(todo[s.uai]))})
    return entries
