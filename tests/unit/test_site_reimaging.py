"""The site file's `reimaging:` section: validation (file, line, field, fix) and the school
server's variables it becomes in the inventory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cartable.cli import main
from cartable.errors import InputError
from cartable.site import read_site
from cartable.site_reimaging import parse_every, parse_range

from conftest import MATERNELLE, PRIMAIRE

SECTION = {
    "every": "wednesday 12:00",
    "holidays": {"every": "nightly 21:00", "dates": ["2026-12-19..2027-01-03"]},
    "closed": ["2026-11-11", "2026-12-25..2027-01-01"],
    "batch": 3,
    "wait": 30,
    "rooms": {"bcd": {"every": ["friday 16:30", "mon,thu 7:45"]}, "direction": False},
}


@pytest.mark.parametrize(("text", "expected"), [
    ("wednesday 12:00", {"days": ["wednesday"], "time": "12:00"}),
    ("nightly 21:00", {"days": ["monday", "tuesday", "wednesday", "thursday", "friday",
                                "saturday", "sunday"], "time": "21:00"}),
    ("Thu,mon 7:05", {"days": ["monday", "thursday"], "time": "07:05"}),
    ("weekdays 18:30", {"days": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                        "time": "18:30"}),
    ("wednesday", None), ("wensday 12:00", None), ("daily 24:00", None), ("daily 12:60", None),
])
def test_every(text: str, expected: object) -> None:
    assert parse_every(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-19..2027-01-03", ("2026-12-19", "2027-01-03")),
    ("2026-11-11", ("2026-11-11", "2026-11-11")),
    ("2027-01-03..2026-12-19", None), ("2026-13-01", None), ("next week", None),
])
def test_date_ranges(text: str, expected: object) -> None:
    assert parse_range(text) == expected


def test_the_section_becomes_the_servers_variables(make_site) -> None:
    path = make_site(reimaging=SECTION, overrides={PRIMAIRE: {"reimaging": {
        "batch": 6, "rooms": {"computer_room": {"every": "tuesday 13:30"}}}}})
    assert main(["inventory", "build", str(path)]) == 0
    hosts = yaml.safe_load((path.parent / "hosts.yml").read_text())["all"]["children"]
    server = hosts[f"school_{PRIMAIRE.lower()}"]["hosts"][f"{PRIMAIRE.lower()}-srv"]
    assert server["reimaging__closed"] == [["2026-11-11", "2026-11-11"], ["2026-12-25", "2027-01-01"]]
    assert server["reimaging__holidays"] == [["2026-12-19", "2027-01-03"]]
    rooms = server["reimaging__rooms"]
    assert set(rooms) == {"bcd", "computer_room"}          # direction: false
    assert rooms["computer_room"] == {"every": ["tuesday 13:30"], "holidays_every": [
        "monday,tuesday,wednesday,thursday,friday,saturday,sunday 21:00"],
        "batch": 6, "batch_interval": 60, "wait": 30}
    assert rooms["bcd"]["every"] == ["friday 16:30", "monday,thursday 07:45"]
    # a maternelle has only its direction PC, which is never reimaged by schedule
    mat = hosts[f"school_{MATERNELLE.lower()}"]["hosts"][f"{MATERNELLE.lower()}-srv"]
    assert mat["reimaging__rooms"] == {}
    workstation = hosts[f"school_{PRIMAIRE.lower()}"]["hosts"][f"{PRIMAIRE.lower()}-sdi01"]
    assert not any(key.startswith("reimaging__") for key in workstation)


def test_without_the_section_the_inventory_has_no_reimaging_variables(make_site) -> None:
    path = make_site()
    assert main(["inventory", "build", str(path)]) == 0
    assert "reimaging__" not in (path.parent / "hosts.yml").read_text()


@pytest.mark.parametrize(("section", "field", "expected", "fix"), [
    ({"every": "wensday 12:00"}, "reimaging.every", "'wensday 12:00' is not a reimaging time",
     "e.g. 'wednesday 12:00'"),
    ({"every": "daily 12:00", "closed": ["2026-12-25..2026-12-20"]}, "reimaging.closed.0",
     "or its last day is before its first", "YYYY-MM-DD..YYYY-MM-DD"),
    ({"holidays": {"every": "nightly 21:00"}}, "reimaging.holidays",
     "missing required key 'dates'", "add 'dates:'"),
    ({"every": "daily 12:00", "rooms": {"gym": {"every": "daily 9:00"}}}, "reimaging.rooms.gym",
     "unknown room 'gym'", "class01"),
    ({"every": "daily 12:00", "batch": 0}, "reimaging.batch", "from 1 to 100", None),
    ({"evry": "daily 12:00"}, "reimaging.evry", "unknown key 'evry'", "did you mean 'every'?"),
])
def test_bad_sections(make_site, section: dict, field: str, expected: str, fix: str | None) -> None:
    path = make_site(reimaging=section)
    with pytest.raises(InputError) as err:
        read_site(path)
    [problem] = err.value.problems
    assert problem.file == str(path) and problem.field == field and expected in problem.message
    assert problem.line is not None
    assert fix is None or fix in (problem.hint or "")


def test_a_bad_section_exits_2_and_writes_nothing(make_site, capsys) -> None:
    path = make_site(overrides={PRIMAIRE: {"reimaging": {"every": "wednesday noon"}}})
    assert main(["inventory", "build", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"overrides.{PRIMAIRE}.reimaging.every" in err and "fix:" in err
    assert not (Path(path).parent / "hosts.yml").exists()
