"""Site file validation: every error names the file, the line and the key."""

from __future__ import annotations

import pytest

from cartable.errors import InputError
from cartable.site import read_site


def _error(path) -> str:
    with pytest.raises(InputError) as err:
        read_site(path)
    return str(err.value)


def test_valid_site_defaults(make_site) -> None:
    site = read_site(make_site())
    assert site.pedagogical_prefix == {"maternelle": 25, "elementaire": 24, "primaire": 24}
    assert site.administrative_prefix == 27 and site.default_link == "fibre"
    assert site.plan["elementaire"]["sdi"] == 12 and site.plan["maternelle"] == {"dir": 1, "mfp": 1}


def test_unknown_key_is_a_typo_with_suggestion(make_site) -> None:
    path = make_site(text="name: t\ndomain: e.test\ndirectory: x.csv\n"
                          "adress_plan:\n  supernet: 10.0.0.0/16\n"
                          "academic_proxy: {host: p, port: 3128}\n")
    message = _error(path)
    assert f"{path}:4:" in message and "unknown key 'adress_plan'" in message
    assert "did you mean 'address_plan'?" in message
    assert "missing required key 'address_plan'" in message


def test_nested_unknown_key(make_site) -> None:
    path = make_site(address_plan={"supernet": "10.35.0.0/16", "supernett": "x"})
    assert "[address_plan.supernett] unknown key" in _error(path)


def test_bad_network_and_host_bits(make_site) -> None:
    assert "is not an IPv4 network" in _error(make_site(address_plan={"supernet": "10.35.0/33"}))
    assert "did you mean 10.35.0.0/16" in _error(make_site(address_plan={"supernet": "10.35.1.0/16"}))


def test_supernet_overlapping_another_network(make_site) -> None:
    path = make_site(address_plan={"supernet": "10.35.0.0/16", "other_networks": ["10.35.200.0/24"]})
    assert "overlaps 10.35.200.0/24" in _error(path)


def test_bad_values(make_site) -> None:
    message = _error(make_site(default_link="dsl", academic_proxy={"host": "p", "port": 99999},
                               equipment={"maternelle": {"sdx": 2}}))
    assert "'dsl' is not one of: fibre" in message
    assert "from 1 to 65535" in message
    assert "unknown equipment role 'sdx'" in message


def test_override_with_bad_uai_and_unknown_wave(make_site) -> None:
    message = _error(make_site(overrides={"0350607A": {"link": "adsl"},
                                          "0350607V": {"wave": "septembre"}}))
    assert "check letter 'A', expected 'V'" in message
    assert "unknown wave 'septembre'" in message


def test_yaml_syntax_error_has_a_line(make_site) -> None:
    path = make_site(text="name: t\nselection:\n  uai: [0350607V\n")
    assert f"{path}:" in _error(path) and "YAML syntax error" in _error(path)


def test_extends_merges_the_parent_site(make_site, tmp_path) -> None:
    parent = make_site(images={"computer_room": "salle-2026"}, hardware="hw.csv",
                       overrides={"0350607V": {"link": "adsl"}})
    child = tmp_path / "lab" / "site.yml"
    child.parent.mkdir()
    child.write_text("extends: ../site/site.yml\nname: lab\nselection: {uai: [0350607V]}\n"
                     "overrides:\n  0350607V: {equipment: {sdi: 2}}\n")
    site = read_site(child)
    assert site.name == "lab" and site.uai == ("0350607V",)
    assert site.images == {"computer_room": "salle-2026"}
    assert site.overrides["0350607V"].link == "adsl"              # from the parent
    assert site.overrides["0350607V"].equipment == {"sdi": 2}     # from the child
    assert site.hardware and site.hardware.resolve() == parent.parent / "hw.csv"


def test_extends_errors(make_site, tmp_path) -> None:
    child = tmp_path / "child.yml"
    child.write_text("extends: absent.yml\nname: x\n")
    assert "absent.yml not found" in _error(child)
    child.write_text("extends: child.yml\nname: x\n")
    assert "loops back" in _error(child)
    child.write_text("extends: site/site.yml\nnmae: x\n")
    make_site()
    assert "unknown key 'nmae'" in _error(child)


def test_admins_are_checked(make_site) -> None:
    message = _error(make_site(admins=[{"name": "Jean Dupont", "ssh_keys": ["AAAA"]},
                                       {"name": "jdupont", "ssh_keys": ["ssh-ed25519 AAAAC3 jd"],
                                        "state": "gone"}]))
    assert "admin name 'Jean Dupont' is not a valid account name" in message
    assert "is not an SSH public key" in message
    assert "'gone' is not one of: present, absent" in message
    site = read_site(make_site(admins=[{"name": "jdupont", "ssh_keys": ["ssh-ed25519 AAAAC3 jd"]}]))
    assert site.admins == ({"name": "jdupont", "ssh_keys": ["ssh-ed25519 AAAAC3 jd"],
                            "state": "present"},)
