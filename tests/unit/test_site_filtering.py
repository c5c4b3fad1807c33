"""The site file's `filtering:` section: policies per school kind, local lists, the policy each
school gets in the inventory, and every bad input named with file:line, exit 2, nothing written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from cartable.cli import main
from cartable.errors import InputError
from cartable.filtering.categories import UT1_CATEGORIES
from cartable.filtering.policy import policy_from_dict
from cartable.site import read_site
from cartable.site_filtering import BYPASS, DEFAULT_BLOCK, school_policy

from conftest import DIRECTORY, ELEMENTAIRE, MATERNELLE, PRIMAIRE, REPO

UT1 = REPO / "data" / "ut1-blacklists"
# The site file of these tests: the filtering section starts at line 7.
HEAD = (f"name: t\ndomain: ecoles.test\ndirectory: {DIRECTORY}\n"
        f"selection: {{uai: [{MATERNELLE}, {ELEMENTAIRE}, {PRIMAIRE}]}}\n"
        "address_plan: {supernet: 10.35.0.0/16}\nacademic_proxy: {host: proxy.test, port: 3128}\n")
SECTION = """\
filtering:
  policies:
    cycle3:
      mode: blocklist
      block: [gambling, games]
      allow: [jeux-educatifs.example.org]
      deny: [forum.example.org]
    petits:
      mode: allowlist
      allow_categories: [liste_blanche, child]
  kinds:
    maternelle: petits
    primaire: cycle3
  allow: [ac-rennes.fr, Toutatice.FR.]
  deny: [video.example.net]
overrides:
  0350607V:
    filtering:
      policy: petits
      allow: [musee.example.fr]
      deny: [ads.example.com]
"""


def _site(make_site, section: str = SECTION) -> Path:
    return make_site(text=HEAD + section)


def _error(path: Path) -> str:
    with pytest.raises(InputError) as err:
        read_site(path)
    return str(err.value)


def _policies(path: Path) -> dict[str, dict]:
    """uai -> cartable_filter_policy of the built inventory."""
    assert main(["inventory", "build", str(path)]) == 0
    children = yaml.safe_load((path.parent / "hosts.yml").read_text())["all"]["children"]
    return {uai: children[f"school_{uai.lower()}"]["vars"]["cartable_filter_policy"]
            for uai in (MATERNELLE, ELEMENTAIRE, PRIMAIRE)}


# --- what schools get ---------------------------------------------------------------------

def test_without_a_filtering_section_the_built_in_policies_apply(make_site) -> None:
    policies = _policies(make_site())
    blocked = sorted(set(DEFAULT_BLOCK) | set(BYPASS))
    assert policies[MATERNELLE] == {
        "name": "maternelle", "mode": "allowlist", "block": blocked,
        "allow_categories": ["child", "liste_blanche"], "allow": [], "deny": []}
    assert policies[ELEMENTAIRE] == policies[PRIMAIRE] == {
        "name": "elementaire", "mode": "blocklist", "block": blocked, "allow_categories": [],
        "allow": [], "deny": []}
    for category in ("adult", "doh", "vpn", "redirector", "residential-proxies", "gambling"):
        assert category in blocked
    for category in ("games", "shortener", "audio-video", "press"):  # see docs/site-file.md
        assert category not in blocked


def test_policies_per_kind_site_and_school_lists_merge(make_site) -> None:
    policies = _policies(_site(make_site))
    assert policies[MATERNELLE] == {
        "name": "petits", "mode": "allowlist", "block": sorted(BYPASS),
        "allow_categories": ["child", "liste_blanche"],
        "allow": ["ac-rennes.fr", "toutatice.fr"], "deny": ["video.example.net"]}
    # elementaire is not in `kinds`: the built-in mapping (elementaire) still applies
    assert policies[ELEMENTAIRE]["name"] == "elementaire"
    assert policies[ELEMENTAIRE]["allow"] == ["ac-rennes.fr", "toutatice.fr"]
    # the primaire's override: another policy and its own entries, added to the site's
    assert policies[PRIMAIRE] == {
        "name": "petits", "mode": "allowlist", "block": sorted(BYPASS),
        "allow_categories": ["child", "liste_blanche"],
        "allow": ["ac-rennes.fr", "musee.example.fr", "toutatice.fr"],
        "deny": ["ads.example.com", "video.example.net"]}


def test_the_bypass_categories_are_blocked_by_every_policy(make_site) -> None:
    site = read_site(_site(make_site))
    assert site.filtering.policies["cycle3"]["block"] == ("gambling", "games")
    resolved = school_policy(site.filtering, "primaire")
    assert resolved["name"] == "cycle3" and resolved["deny"] == ["forum.example.org",
                                                                 "video.example.net"]
    assert set(BYPASS) <= set(resolved["block"])
    assert set(BYPASS) == {"doh", "vpn", "redirector", "strict_redirector",
                           "residential-proxies", "remote-control"}


def test_a_resolved_policy_is_what_the_helper_reads(make_site) -> None:
    for policy in _policies(_site(make_site)).values():
        loaded = policy_from_dict(json.loads(json.dumps(policy)))
        assert loaded.name == policy["name"] and loaded.mode == policy["mode"]
        assert sorted(loaded.block) == policy["block"] and sorted(loaded.allow) == policy["allow"]


def test_the_inventory_is_deterministic(make_site) -> None:
    path = _site(make_site)
    assert main(["inventory", "build", str(path)]) == 0
    first = (path.parent / "hosts.yml").read_text()
    (path.parent / "hosts.yml").unlink()
    (path.parent / "allocations.yml").unlink()
    assert main(["inventory", "build", str(path)]) == 0
    assert (path.parent / "hosts.yml").read_text() == first


# --- bad input: file:line, what, how to fix -------------------------------------------------

def test_unknown_category(make_site) -> None:
    path = _site(make_site, SECTION.replace("block: [gambling, games]",
                                            "block:\n        - gambling\n        - jeux"))
    message = _error(path)
    assert f"{path}:13: [filtering.policies.cycle3.block.1] unknown UT1 category 'jeux'" in message
    path = _site(make_site, SECTION.replace("[liste_blanche, child]", "[liste_blanche, childs]"))
    assert f"{path}:16: [filtering.policies.petits.allow_categories.1] unknown UT1 category " \
           "'childs'\n    fix: did you mean 'child'?" in _error(path)


def test_a_category_the_sample_lacks_is_still_a_ut1_category(make_site) -> None:
    assert not (UT1 / "adult").exists()
    site = read_site(_site(make_site, SECTION.replace("[gambling, games]", "[adult, gambling]")))
    assert site.filtering.policies["cycle3"]["block"] == ("adult", "gambling")


def test_unknown_policy_in_kinds_and_overrides(make_site) -> None:
    path = _site(make_site, SECTION.replace("primaire: cycle3", "primaire: cycle-3")
                 .replace("policy: petits", "policy: tout-petits"))
    message = _error(path)
    assert f"{path}:19: [filtering.kinds.primaire] unknown policy 'cycle-3'\n" \
           "    fix: did you mean 'cycle3'? policies: cycle3, elementaire, maternelle, petits" \
           in message
    assert f"{path}:25: [overrides.0350607V.filtering.policy] unknown policy 'tout-petits'" \
           in message


@pytest.mark.parametrize("value", ["", "~", "null"])
def test_a_kind_mapping_to_nothing(make_site, value: str) -> None:
    path = _site(make_site, SECTION.replace("maternelle: petits", f"maternelle: {value}"))
    assert f"{path}:18: [filtering.kinds.maternelle] school kind 'maternelle' maps to no " \
           "policy\n    fix: name one of: cycle3, elementaire, maternelle, petits; or remove " \
           "the line (default: maternelle)" in _error(path)


def test_an_unknown_kind(make_site) -> None:
    path = _site(make_site, SECTION.replace("maternelle: petits", "college: petits"))
    assert f"{path}:18: [filtering.kinds.college] unknown school kind 'college'" in _error(path)


@pytest.mark.parametrize(("entry", "text"), [
    ("'jeux video.fr'", "'jeux video.fr' is not a host name: it contains a space"),
    ("https://www.example.org/page", "'https://www.example.org/page' is a URL, not a host name"
                                     "\n    fix: write its host only: www.example.org"),
    ("example.org/jeux", "'example.org/jeux' has a path: the filter judges host names, not URLs"),
    ("example.org:8080", "'example.org:8080' has a port"),
    ("10.1.2.3", "'10.1.2.3' is an IP address, not a host name\n    fix: local lists take host "
                 "names: requests to IP addresses are always refused"),
    ("'2001:db8::1'", "'2001:db8::1' is an IP address"),
    ("'2130706433'", "'2130706433' is an IP address"),
    ("http://10.1.2.3/x", "'http://10.1.2.3/x' is an IP address"),
    ("'*.example.org'", "'*.example.org' is a pattern, not a host name\n    fix: write "
                        "example.org: a name covers its subdomains"),
    ("fr", "'fr' is a single label"),
    ("exa_mple!.org", "'exa_mple!.org' is not a host name: label 'exa_mple!' is not a DNS label"),
    ("''", "'' is not a host name: it is empty"),
    ("[a, b]", "expected a host name, got a list"),
])
def test_malformed_local_entries(make_site, entry: str, text: str) -> None:
    path = _site(make_site, SECTION.replace("deny: [forum.example.org]",
                                            f"deny:\n        - ok.example.org\n        - {entry}"))
    assert f"{path}:15: [filtering.policies.cycle3.deny.1] {text}" in _error(path)


def test_malformed_entries_of_the_site_and_of_a_school(make_site) -> None:
    path = _site(make_site, SECTION.replace("[ac-rennes.fr, Toutatice.FR.]",
                                            "[ac-rennes.fr, 'https://ent.example.fr/']")
                 .replace("[musee.example.fr]", "\n        - 192.168.0.1"))
    message = _error(path)
    assert f"{path}:20: [filtering.allow.1] 'https://ent.example.fr/' is a URL" in message
    assert f"{path}:27: [overrides.0350607V.filtering.allow.0] '192.168.0.1' is an IP address" \
        in message


def test_policy_shape_errors(make_site) -> None:
    path = _site(make_site, SECTION.replace("mode: blocklist", "mode: blacklist")
                 .replace("    petits:\n      mode: allowlist\n      allow_categories: "
                          "[liste_blanche, child]\n",
                          "    petits:\n      mode: allowlist\n      allowed: [child]\n")
                 .replace("  allow: [ac-rennes.fr, Toutatice.FR.]\n", ""))
    message = _error(path)
    assert f"{path}:10: [filtering.policies.cycle3.mode] 'blacklist' is not one of: blocklist, " \
           "allowlist" in message
    assert f"{path}:16: [filtering.policies.petits.allowed] unknown key 'allowed'" in message
    assert f"{path}:14: [filtering.policies.petits] policy 'petits' is an allowlist with " \
           "nothing to allow" in message


def test_an_allowlist_of_the_site_allow_list_only(make_site) -> None:
    path = _site(make_site, SECTION.replace("allow_categories: [liste_blanche, child]",
                                            "allow_categories: []"))
    assert _policies(path)[MATERNELLE]["allow"] == ["ac-rennes.fr", "toutatice.fr"]


def test_allow_categories_in_blocklist_mode_and_a_category_both_ways(make_site) -> None:
    path = _site(make_site, SECTION.replace("block: [gambling, games]",
                                            "block: [gambling]\n      allow_categories: [child]")
                 .replace("allow_categories: [liste_blanche, child]",
                          "allow_categories: [liste_blanche, vpn]"))
    message = _error(path)
    assert f"{path}:12: [filtering.policies.cycle3.allow_categories] policy 'cycle3': " \
           "allow_categories is only used in allowlist mode" in message
    assert f"{path}:17: [filtering.policies.petits.allow_categories.1] policy 'petits' both " \
           "blocks and allows category 'vpn'" in message


def test_a_deny_entry_an_allow_entry_always_wins_over(make_site) -> None:
    path = _site(make_site, SECTION.replace("deny: [forum.example.org]",
                                            "deny: [forum.jeux-educatifs.example.org]")
                 .replace("deny: [video.example.net]", "deny: [www.ac-rennes.fr]"))
    message = _error(path)
    assert f"{path}:13: [filtering.policies.cycle3.deny.0] 'forum.jeux-educatifs.example.org' " \
           "is denied but allowed by 'jeux-educatifs.example.org' (filtering.policies.cycle3." \
           "allow): the local allow list wins, so this entry does nothing" in message
    assert f"{path}:21: [filtering.deny.0] 'www.ac-rennes.fr' is denied but allowed by " \
           "'ac-rennes.fr' (filtering.allow)" in message


def test_bad_filtering_input_exits_2_and_writes_nothing(make_site, capsys) -> None:
    path = _site(make_site, SECTION.replace("[gambling, games]", "[gambling, jeux]"))
    assert main(["inventory", "build", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:11: [filtering.policies.cycle3.block.1] unknown UT1 category 'jeux'" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in path.parent.iterdir()) == ["site.yml"]


# --- the categories and the shipped sites -------------------------------------------------

def test_the_category_list_is_ut1s_global_usage_and_the_sample() -> None:
    text = (UT1 / "global_usage").read_text(encoding="utf-8")
    pairs = re.findall(r"^NAME:\s*(\S+)\s*\nDEFAULT_TYPE:\s*(\S+)", text, re.M)
    shipped = {name: kind for name, kind in pairs}
    for folder in UT1.iterdir():
        if folder.is_dir():
            shipped.setdefault(folder.name, (folder / "usage").read_text().split()[0])
    assert UT1_CATEGORIES == shipped


def test_the_lab_policy_uses_the_sample_and_blocks_the_lab_test_sites() -> None:
    hosts = yaml.safe_load((REPO / "inventories/lab/hosts.yml").read_text())
    policy = hosts["all"]["children"]["school_0350607v"]["vars"]["cartable_filter_policy"]
    sample = {p.name for p in UT1.iterdir() if p.is_dir()}
    assert set(policy["block"]) | set(policy["allow_categories"]) <= sample
    sites = yaml.safe_load((REPO / "tests/lab/topology.yml").read_text())["sites"]
    assert set(sites["blocked"]) <= set(policy["block"])
    for name in sites["allowed"]:
        assert not any(name == d or name.endswith("." + d) for d in policy["deny"])
    assert policy_from_dict(policy).name == "elementaire"


def test_the_example_of_the_documentation_is_valid(make_site) -> None:
    doc = (REPO / "docs" / "site-file.md").read_text(encoding="utf-8")
    example = doc.split("## Filtering", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    policies = _policies(_site(make_site, example))
    assert policies[PRIMAIRE]["name"] == "maternelle"
    assert policies[PRIMAIRE]["deny"] == ["youtube.com"]
    assert policies[ELEMENTAIRE]["name"] == "cycle3"
