"""Reading the Annuaire de l'éducation, both editions, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cartable.directory import parse_directory, read_directory
from cartable.errors import InputError
from cartable.uai import uai_problem

from conftest import DIRECTORY, NEWER


def test_real_directory_keeps_open_public_schools_only() -> None:
    schools = read_directory(DIRECTORY)
    assert len(schools) == 421  # 315 élémentaire-level + 106 maternelles, public and open
    kinds = {s.kind for s in schools}
    assert kinds == {"maternelle", "elementaire", "primaire"}
    lucioles = next(s for s in schools if s.uai == "0350122T")
    assert (lucioles.kind, lucioles.commune_name, lucioles.pupils) == ("primaire", "Baulon", 143)
    assert lucioles.circonscription.endswith("de Bruz")


def test_newer_edition_renamed_and_dropped_columns() -> None:
    schools = {s.uai: s for s in read_directory(NEWER)}
    assert set(schools) == {"0350650S", "0350626R", "0350607V", "0350122T"}
    assert schools["0350122T"].commune_name == "Baulon"   # Libelle_commune
    assert all(s.pupils is None for s in schools.values())  # Nombre_d_eleves dropped


def test_comma_separated_export_is_read() -> None:
    text = ("Identifiant_de_l_etablissement,Nom_etablissement,Type_etablissement,"
            "Statut_public_prive,Code_commune,Nom_commune,Ecole_maternelle,Ecole_elementaire,etat\n"
            "0350122T,Ecole Les Lucioles,Ecole,Public,35016,Baulon,1,1,OUVERT\n")
    [school] = parse_directory(text, "x.csv")
    assert school.kind == "primaire"


def _header_without(column: str) -> str:
    text = DIRECTORY.read_text(encoding="utf-8-sig")
    header, *rows = text.splitlines()[:5]
    cols = header.split(";")
    index = cols.index(column)
    cut = lambda line: ";".join(v for i, v in enumerate(line.split(";")) if i != index)  # noqa: E731
    return "\n".join([cut(header)] + [cut(r) for r in rows]) + "\n"


def test_missing_required_column_is_named() -> None:
    with pytest.raises(InputError) as err:
        parse_directory(_header_without("Ecole_maternelle"), "annuaire.csv")
    message = str(err.value)
    assert "annuaire.csv:1" in message and "'maternelle' is missing" in message
    assert "ecole_maternelle" in message  # the column we accept


def test_wrong_check_letter_names_row_and_fix() -> None:
    text = DIRECTORY.read_text(encoding="utf-8-sig").splitlines()
    text[3] = text[3].replace(text[3][:8], text[3][:7] + "A", 1)
    with pytest.raises(InputError) as err:
        parse_directory("\n".join(text), "annuaire.csv")
    assert "annuaire.csv:4" in str(err.value) and "check letter" in str(err.value)


def test_duplicate_school_uai() -> None:
    text = DIRECTORY.read_text(encoding="utf-8-sig").splitlines()
    row = text[1]  # an open public school
    with pytest.raises(InputError) as err:
        parse_directory("\n".join(text[:3] + [row]), "annuaire.csv")
    assert "duplicate UAI 0350122T (first on line 2)" in str(err.value)


@pytest.mark.parametrize("uai,ok", [("0350122T", True), ("0350122U", False), ("350122T", False),
                                    ("0350122t", False), ("0350607V", True)])
def test_uai_check_letter(uai: str, ok: bool) -> None:
    assert (uai_problem(uai) is None) == ok


def test_unreadable_directory(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("Nom;Académie\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_directory(bad)
    with pytest.raises(InputError, match="not found"):
        read_directory(tmp_path / "absent.csv")
