"""Policies: what a pupil's request gets, and the errors a DSI engineer sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartable.errors import InputError
from cartable.filtering.compiled import open_build
from cartable.filtering.policy import Verdict, bind, host_of, judge, policy_from_dict

from filtering_fixtures import build_file


@pytest.fixture
def build(tmp_path: Path):
    opened = open_build(build_file(tmp_path))
    yield opened
    opened.close()


def _rules(build, **policy):
    return bind(policy_from_dict({"name": "test", **policy}), build)


def test_blocked_category_is_refused_with_its_name(build) -> None:
    rules = _rules(build, block=["games", "gambling"])
    assert judge(rules, "www.casino.example") == Verdict(False, "gambling")
    assert judge(rules, "casino.example:443").reply() == "ERR message=gambling log=gambling"
    assert judge(rules, "http://play.example.net/x?y").reply().startswith("ERR message=games")
    assert judge(rules, "vpn.example") == Verdict(True, "")  # vpn not blocked by this policy
    assert judge(rules, "www.elsewhere.example").reply() == "OK"


def test_allowlist_mode_allows_only_white_categories_and_local_allow(build) -> None:
    rules = _rules(build, mode="allowlist", allow_categories=["liste_blanche", "child"],
                   block=["games"], allow=["mairie.example"])
    assert judge(rules, "www.education.example") == Verdict(True, "liste_blanche")
    assert judge(rules, "enfants.example").reply() == "OK log=child"
    assert judge(rules, "www.mairie.example") == Verdict(True, "local-allow")
    assert judge(rules, "www.elsewhere.example") == Verdict(False, "not-in-allowlist")
    # white (child) and blocked (games) at once: blocked wins
    assert judge(rules, "jeux.example") == Verdict(False, "games")


def test_local_allow_beats_local_deny_beats_categories(build) -> None:
    rules = _rules(build, block=["gambling"], allow=["casino.example", "both.example"],
                   deny=["both.example", "news.example", "sub.ok.example"])
    assert judge(rules, "www.casino.example") == Verdict(True, "local-allow")
    assert judge(rules, "both.example") == Verdict(True, "local-allow")
    assert judge(rules, "a.news.example") == Verdict(False, "local-deny")
    assert judge(rules, "ok.example") == Verdict(True, "")
    assert judge(rules, "x.sub.ok.example") == Verdict(False, "local-deny")


@pytest.mark.parametrize("value", ["1.2.3.4", "1.2.3.4:443", "http://1.2.3.4/", "[::1]:443",
                                   "http://[2001:db8::1]/x", "2130706433", "0x7f.1:443",
                                   "http://127.1/"])
def test_ip_literals_are_refused_even_when_nothing_is_blocked(build, value: str) -> None:
    rules = _rules(build, allow=["example.org"])
    assert judge(rules, value) == Verdict(False, "ip-address")


@pytest.mark.parametrize("value", ["", "-", "http:///path", "bad host", "a..b"])
def test_garbage_is_refused(build, value: str) -> None:
    assert not judge(_rules(build), value).allowed


def test_no_build_means_filter_unavailable() -> None:
    assert judge(None, "www.example.org").reply() == \
        "ERR message=filter-unavailable log=filter-unavailable"


def test_a_build_without_a_category_the_policy_names_is_refused(build) -> None:
    with pytest.raises(ValueError, match="no category adult"):
        _rules(build, block=["games", "adult"])


@pytest.mark.parametrize("value, host", [
    ("example.org", "example.org"), ("example.org:443", "example.org"),
    ("http://u:p@example.org:8080/a/b", "example.org"), ("[::1]:443", "[::1]"),
    ("ftp://example.org", "example.org"), ("2001:db8::1", "2001:db8::1")])
def test_host_of(value: str, host: str) -> None:
    assert host_of(value) == host


def test_bad_policy_names_every_field_and_value() -> None:
    with pytest.raises(InputError) as err:
        policy_from_dict({"name": "x", "mode": "strict", "block": "games",
                          "allow": ["ok.example", "http://a.example/x", "10.0.0.1"],
                          "colour": 1}, "site.yml")
    text = str(err.value)
    for expected in ("[colour] unknown key", "[mode] unknown mode 'strict'",
                     "[block] 'games' is not a list", "[allow[1]] 'http://a.example/x'",
                     "[allow[2]] '10.0.0.1' is an IP address"):
        assert expected in text
    with pytest.raises(InputError, match="nothing to allow"):
        policy_from_dict({"mode": "allowlist"})
    with pytest.raises(InputError, match="only used in allowlist mode"):
        policy_from_dict({"allow_categories": ["child"]})
