"""A campaign's status file: `<site folder>/campaigns/<name>/status.json`.

    {"campaign": str, "playbook": str, "updated": iso8601,
     "schools": {"<UAI>": {"state": "pending|running|ok|failed|unreachable", "wave": str|null,
                           "started": iso|null, "ended": iso|null, "failed_hosts": [..],
                           "failed_tasks": [..], "changed": int, ...}}, ...}

Other readers (reports) rely on exactly these keys; the fields added here are extra:
top level `site` (the site's name), `check` (a check-mode campaign); per school
`unreachable_hosts`, `errors` ([{host, task, msg}]), `changes` ({task: [hosts]}, check mode),
`runs` (jobs run so far), `artifacts` (the last job's ansible-runner folder, relative to the
campaign's folder), `job` (the tag its processes carry, to end a job a killed controller left).

The file is replaced atomically (temporary file in the same folder, fsync, rename) after every
change, so a controller killed at any moment leaves the last state whole. One campaign runs
per site at a time: `campaigns/.lock` (flock) is held for the whole run.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cartable.errors import InputError, Problem
from cartable.files import exclusive_lock, read_text

STATES = ("pending", "running", "ok", "failed", "unreachable")
DONE = "ok"
FOLDER = "campaigns"
STATUS = "status.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def campaign_dir(site_dir: Path, name: str) -> Path:
    return site_dir / FOLDER / name


def check_name(name: str, where: str) -> str:
    if not _NAME_RE.match(name):
        raise InputError(Problem(where, f"campaign name '{name}' is not a simple name",
                                 field="--name", hint="letters, digits, '.', '_' and '-' only, "
                                 "e.g. summer-2027"))
    return name


def new_school(wave: str | None) -> dict[str, Any]:
    return {"state": "pending", "wave": wave, "started": None, "ended": None,
            "failed_hosts": [], "failed_tasks": [], "changed": 0, "unreachable_hosts": [],
            "errors": [], "changes": {}, "runs": 0, "artifacts": None, "job": None, "processed": []}


def new_status(name: str, playbook: str, site: str, check: bool) -> dict[str, Any]:
    return {"campaign": name, "playbook": playbook, "updated": now(), "site": site,
            "check": check, "schools": {}}


def load(path: Path) -> dict[str, Any] | None:
    """The status at `path`, None if there is none; InputError if it is not one."""
    if not path.exists():
        return None
    text = read_text(path, "the campaign status", "it is written by `cartable campaign run`; "
                     "remove the campaign's folder to start it again")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(Problem(str(path), f"not valid JSON ({exc.msg})", exc.lineno,
                                 hint="remove the campaign's folder to start it again")) from None
    if (not isinstance(data, dict) or not isinstance(data.get("schools"), dict)
            or not isinstance(data.get("campaign"), str)):
        raise InputError(Problem(str(path), "not a campaign status (campaign, schools missing)",
                                 hint="remove the campaign's folder to start it again"))
    for uai, school in data["schools"].items():
        if not isinstance(school, dict) or school.get("state") not in STATES:
            raise InputError(Problem(str(path), f"school {uai} has no valid state",
                                     field=f"schools.{uai}.state",
                                     hint=f"one of {', '.join(STATES)}"))
    return data


def save(path: Path, status: dict[str, Any]) -> None:
    """Replace the status file atomically, with `updated` set to now."""
    status["updated"] = now()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(status, handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        Path(tmp).unlink(missing_ok=True)


# The campaign `cartable reimage` keeps (the restored workstations' converges, school by school):
# not a rollout, so never the default campaign (status, the fleet report), and a name
# `cartable campaign run --name` refuses.
REIMAGE = "reimage"


def campaigns(site_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every campaign of a site with its status, the most recently updated first."""
    folder = site_dir / FOLDER
    found = []
    for path in sorted(folder.glob(f"*/{STATUS}")) if folder.is_dir() else []:
        status = load(path)
        if status is not None:
            found.append((path.parent.name, status))
    return sorted(found, key=lambda item: str(item[1].get("updated", "")), reverse=True)


@contextmanager
def site_lock(site_dir: Path) -> Iterator[None]:
    """Hold `campaigns/.lock`; InputError at once if another campaign runs on this site."""
    with exclusive_lock(site_dir / FOLDER / ".lock", "another campaign is running on this site",
                        "wait for it to end (cartable campaign status SITE shows it), then run "
                        "this one again"):
        yield


def to_run(status: dict[str, Any], uais: list[str], only_failed: bool) -> list[str]:
    """Which of `uais` a run converges: not finished yet (or, with only_failed, failed)."""
    schools = status["schools"]
    if only_failed:
        return [u for u in uais if u in schools and schools[u]["state"] in ("failed", "unreachable")]
    return [u for u in uais if u not in schools or schools[u]["state"] != DONE]


def counts(status: dict[str, Any], uais: list[str] | None = None) -> dict[str, int]:
    """How many schools (of `uais`, default all) are in each state."""
    out = dict.fromkeys(STATES, 0)
    for uai, school in status["schools"].items():
        if uais is None or uai in uais:
            out[school["state"]] += 1
    return out
