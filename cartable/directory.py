"""Read the Annuaire de l'éducation CSV (the official school directory) by column name.

Editions differ: the 2023 schema has ``Code postal`` with a space, later ones ``Code_postal``;
some drop ``Nombre_d_eleves`` or add a byte-order mark; exports may use ``,`` instead of ``;``.
Columns are matched on a normalised name (case, accents, spaces and dashes folded) against
the known aliases below; a missing required column is named with the aliases we accept.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from cartable.errors import InputError, Problem
from cartable.files import read_text
from cartable.uai import uai_problem

KINDS = ("maternelle", "elementaire", "primaire")

# field -> accepted column names (normalised), first is the 2023 name.
COLUMNS: dict[str, tuple[str, ...]] = {
    "uai": ("identifiant_de_l_etablissement", "uai", "numero_uai", "code_uai"),
    "name": ("nom_etablissement", "nom_de_l_etablissement", "appellation_officielle"),
    "type": ("type_etablissement", "type_d_etablissement"),
    "status": ("statut_public_prive", "secteur_public_prive", "statut"),
    "commune_code": ("code_commune", "code_insee_commune", "code_commune_insee"),
    "commune_name": ("nom_commune", "libelle_commune", "commune"),
    "maternelle": ("ecole_maternelle",),
    "elementaire": ("ecole_elementaire",),
    "state": ("etat", "etat_etablissement"),
    "pupils": ("nombre_d_eleves", "nombre_eleves", "nb_eleves"),
    "circonscription": ("nom_circonscription", "libelle_circonscription", "circonscription"),
}
REQUIRED = ("uai", "name", "type", "status", "commune_code", "commune_name",
            "maternelle", "elementaire", "state")


@dataclass(frozen=True)
class School:
    """An open public primary school of the directory."""

    uai: str
    name: str
    kind: str
    commune_code: str
    commune_name: str
    circonscription: str
    pupils: int | None
    line: int


def normalise_column(name: str) -> str:
    """'Code postal' / 'code-postal' / '\\ufeffCode_Postal' → 'code_postal'."""
    folded = unicodedata.normalize("NFKD", name.replace("\ufeff", "").strip())
    ascii_name = folded.encode("ascii", "ignore").decode().lower()
    for char in " -'.":
        ascii_name = ascii_name.replace(char, "_")
    while "__" in ascii_name:
        ascii_name = ascii_name.replace("__", "_")
    return ascii_name.strip("_")


def map_columns(header: list[str], filename: str) -> dict[str, str]:
    """field -> the header's column for it; InputError naming every missing required column."""
    by_norm = {normalise_column(col): col for col in header}
    found: dict[str, str] = {}
    for field, aliases in COLUMNS.items():
        for alias in aliases:
            if alias in by_norm:
                found[field] = by_norm[alias]
                break
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        raise InputError([
            Problem(filename, f"required column for '{f}' is missing", line=1, field=f,
                    hint="the directory needs one of the columns: " + ", ".join(COLUMNS[f])
                    + " (is this the Annuaire de l'éducation CSV, with its header row?)")
            for f in missing
        ])
    return found


def _flag(value: str) -> bool:
    return value.strip() in ("1", "O", "OUI", "oui", "true", "True")


def school_kind(maternelle: str, elementaire: str) -> str | None:
    """maternelle / elementaire / primaire (both), None for neither."""
    mat, ele = _flag(maternelle), _flag(elementaire)
    if mat and ele:
        return "primaire"
    if mat:
        return "maternelle"
    if ele:
        return "elementaire"
    return None


def _is_kept(row: dict[str, str], cols: dict[str, str]) -> bool:
    kind = normalise_column(row[cols["type"]])
    status = normalise_column(row[cols["status"]])
    state = normalise_column(row[cols["state"]])
    return kind == "ecole" and status == "public" and state == "ouvert"


def parse_directory(text: str, filename: str) -> list[School]:
    """Open public schools of the directory text, in file order. Raises InputError."""
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    cols = map_columns(list(reader.fieldnames or []), filename)
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    schools: list[School] = []
    for row in reader:
        line = reader.line_num
        uai = (row.get(cols["uai"]) or "").strip()
        why = uai_problem(uai)
        if why:
            problems.append(Problem(filename, why, line, cols["uai"],
                                    "correct the UAI in the directory (or take a fresh export)"))
            continue
        if not _is_kept(row, cols):
            continue  # colleges, private schools, closed ones; multi-line rows live there too
        if uai in seen:
            problems.append(Problem(filename, f"duplicate UAI {uai} (first on line {seen[uai]})",
                                    line, cols["uai"], "each school must appear once"))
            continue
        seen[uai] = line
        kind = school_kind(row[cols["maternelle"]], row[cols["elementaire"]])
        if kind is None:
            continue
        pupils_raw = (row.get(cols["pupils"], "") if "pupils" in cols else "").strip()
        schools.append(School(
            uai=uai,
            name=row[cols["name"]].strip(),
            kind=kind,
            commune_code=row[cols["commune_code"]].strip(),
            commune_name=row[cols["commune_name"]].strip(),
            circonscription=(row.get(cols["circonscription"], "") if "circonscription" in cols
                             else "").strip(),
            pupils=int(pupils_raw) if pupils_raw.isdigit() else None,
            line=line,
        ))
    if problems:
        raise InputError(problems)
    return schools


def read_directory(path: Path) -> list[School]:
    """parse_directory on a file; InputError if it cannot be read."""
    text = read_text(path, "directory file", "check 'directory:' in the site file or --directory; "
                     "export the directory as UTF-8 CSV", encoding="utf-8-sig")
    return parse_directory(text, str(path))
