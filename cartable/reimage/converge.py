"""After a restore, the restored workstations' place in the school: `cartable reimage now`
converges them (playbooks/workstations.yml: common's apt proxy, print_client, proxy_client)
as one school's job of the campaign `reimage` (cartable campaign status SITE --name reimage),
by their school server's relay: the relay's key, written by the restore for the image's
connection user, is a restored PC's only way in (the controller's own key comes with common's
converge). The function also runs a job from the controller (`relay=False`), for the tests and
for images that carry the controller's key.

Only the workstations whose restore report says `ok` are converged: a failed restore left its
disk unbootable (the next boot restores again), there is nothing to converge there. After a
scheduled restore (the server's timers: no controller in the loop), `cartable reimage converge`
takes the workstations whose last restore (the fetched status) was not converged yet:
`reimaging/converged.json` beside the site file keeps, per workstation, the restore time its
last successful converge followed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cartable.campaign import status as st
from cartable.campaign.engine import Campaign
from cartable.campaign.jobs import JobSpec, project_dir_of
from cartable.campaign.relay import inventory_cli
from cartable.campaign.schools import School, read_schools
from cartable.errors import InputError, Problem
from cartable.images.catalog import read_catalog
from cartable.reimage import status as st_reimage
from cartable.site import read_site

CAMPAIGN = "reimage"
CONVERGED = "converged.json"


def restored(report: dict[str, Any]) -> dict[str, str]:
    """The hosts of a reimaging run report whose restore succeeded (in the report's order), with
    the time of that restore."""
    return {str(h["name"]): str(h.get("time", "")) for h in report.get("hosts", [])
            if h.get("result") == "ok" and h.get("name")}


def unconverged(rows: list[dict[str, str]], done: dict[str, str]) -> dict[str, dict[str, str]]:
    """Per school, the workstations whose last restore (a status line `ok`) was not converged yet:
    `done` maps a host to the restore time its last successful converge followed."""
    todo: dict[str, dict[str, str]] = {}
    for line in rows:
        if line["state"] == "ok" and line["restored"] and done.get(line["host"]) != line["restored"]:
            todo.setdefault(line["school"], {})[line["host"]] = line["restored"]
    return todo


def read_converged(site_dir: Path) -> dict[str, str]:
    """`reimaging/converged.json`: each workstation's restore time that a converge followed."""
    path = site_dir / st_reimage.FOLDER / CONVERGED
    if not path.exists():
        return {}
    data = st_reimage.read_json(path, dict, "a mapping of workstation to restore time (JSON)",
                                "remove it: the next converge takes every restored workstation")
    return {str(k): str(v) for k, v in data.items()}


def record_converged(site_dir: Path, times: dict[str, str]) -> None:
    """Add `times` (host -> the restore time converged) to `reimaging/converged.json`, whole."""
    path = site_dir / st_reimage.FOLDER / CONVERGED
    data = {**read_converged(site_dir), **times}
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n", encoding="utf-8")
    os.replace(part, path)


def _school(hosts_yml: Path, uai: str) -> School:
    for school in read_schools(hosts_yml):
        if school.uai.upper() == uai.upper():
            return school
    raise InputError(Problem(str(hosts_yml), f"no school {uai} in this inventory",
                             hint="rebuild it: cartable inventory build SITE"))


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
    settings.connection_user), so their `ansible_user` must be that. No catalog: not checked."""
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
        listed = json.loads(inventory_cli(spec, "--list", "--limit", ",".join(hosts)))
    except RuntimeError as exc:
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


def converge(site: Path, uai: str, hosts: list[str], playbook: Path, *, relay: bool = False,
             relay_command: tuple[str, ...] = (), relay_runner: str = "ansible-runner",
             inventories: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Converge `hosts` of school `uai` with `playbook` (one job, the school's other hosts left
    alone); the school's entry in the `reimage` campaign's status."""
    name = read_site(site).name
    school = _school(site.parent / "hosts.yml", uai)
    project = project_dir_of(playbook)
    try:
        label = str(playbook.resolve().relative_to(project))
    except ValueError:
        label = str(playbook.resolve())
    folder = st.campaign_dir(site.parent, CAMPAIGN)
    spec = JobSpec(playbook, (site.parent / "hosts.yml", *inventories), project, relay=relay,
                   relay_command=relay_command, relay_runner=relay_runner, hosts=tuple(hosts))
    with st.site_lock(site.parent):
        status = _status(folder, name, label)
        final = Campaign(folder, status, spec, 1).run([school])
    entry: dict[str, Any] = final["schools"][uai]
    return entry
