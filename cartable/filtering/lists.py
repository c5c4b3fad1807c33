"""Reading the UT1 blacklists (https://dsi.ut-capitole.fr/blacklists/) and normalising names.

Layout: one folder per category holding `domains` (one domain a line), `urls` (host/path),
`expressions` and `usage` (`black`, `white`, and free words). Quirks handled here:
- a category may be a symlink to another one (an alias: both names reach the same entries);
- a category may have no `domains` file (only urls/expressions): it compiles empty, with a note;
- lines may be blank, comments (#), upper case, end with a dot, start with `*.` or `.`,
  or be internationalised (IDN, turned into punycode); anything else is skipped and reported.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

from cartable.errors import InputError, Problem

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_NAME = re.compile(r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                   r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)\Z")
MAX_NOTES = 5


@dataclass(frozen=True)
class Category:
    """One UT1 category as read from disk."""

    name: str
    usage: tuple[str, ...]
    domains: AbstractSet[str]  # not copied into a frozenset: 5 M names would be held twice
    source_sha256: str  # of the raw domains file ("" when there is none)
    skipped: int = 0
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ListSet:
    """The categories of one UT1 folder, and the aliases (symlinked categories) among them."""

    categories: tuple[Category, ...]
    aliases: dict[str, str]


def normalize_name(text: str) -> str:
    """A domain as stored and looked up: lower case, punycode, no trailing dot or `*.`.

    Raises ValueError saying what is wrong (empty, a space, a path, a bad label...)."""
    if len(text) <= 253 and _NAME.match(text):  # already normal: the common case, fast
        return text
    name = text.strip().lower()
    if name.startswith("*."):
        name = name[2:]
    name = name.lstrip(".").rstrip(".")
    if not name:
        raise ValueError("empty name")
    if not name.isascii():
        try:
            name = ".".join(_to_ascii(label) for label in name.split("."))
        except UnicodeError as exc:
            raise ValueError(f"not a valid internationalised name ({exc})") from None
    if len(name) > 253:
        raise ValueError("longer than 253 characters")
    for label in name.split("."):
        if not _LABEL.match(label):
            raise ValueError(f"label {label!r} is not a DNS label (letters, digits, - and _)")
    return name


def _to_ascii(label: str) -> str:
    if label.isascii():
        return label
    return label.encode("idna").decode("ascii")


def is_ip_literal(host: str) -> bool:
    """True for an address rather than a name: IPv4, IPv6 (bracketed or not), and the numeric
    forms browsers accept as IPv4 (`2130706433`, `0x7f.1`: a numeric last label)."""
    bare = host.strip().strip("[]").split("%", 1)[0]
    if ":" in bare:
        try:
            ipaddress.ip_address(bare)
            return True
        except ValueError:
            return False
    # every IPv4 form (dotted, decimal, hex, octal, short) ends with a numeric label
    last = bare.rstrip(".").rsplit(".", 1)[-1].lower()
    return bool(last) and bool(_NUMERIC_LABEL.match(last))


def parse_domains(lines: Iterable[bytes], where: str) -> tuple[set[str], int, list[str]]:
    """The names of a `domains` file, the number of lines skipped, and notes on the first ones
    (lines are streamed: a 5 M-line file is never held whole in memory)."""
    names: set[str] = set()
    skipped = 0
    notes: list[str] = []
    for number, data in enumerate(lines, 1):
        raw = data.decode("utf-8", "replace")
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            names.add(normalize_name(line))
        except ValueError as exc:
            skipped += 1
            if len(notes) < MAX_NOTES:
                notes.append(f"{where}:{number}: skipped {raw.strip()!r}: {exc}")
    return names, skipped, notes


def _usage(folder: Path) -> tuple[str, ...]:
    path = folder / "usage"
    if not path.is_file():
        return ()
    words = path.read_text(encoding="utf-8", errors="replace").split()
    return tuple(sorted({w.lower() for w in words if not w.startswith("#")}))


def read_category(folder: Path, name: str) -> Category:
    """One category folder (already resolved if it was a symlink)."""
    domains_file = folder / "domains"
    usage = _usage(folder)
    if not domains_file.is_file():
        return Category(name, usage, frozenset(), "", 0,
                        (f"{folder}: no domains file; the category compiles empty "
                         "(its urls/expressions are not used)",))
    digest = hashlib.sha256()

    def lines() -> Iterator[bytes]:
        with open(domains_file, "rb") as handle:
            for line in handle:
                digest.update(line)
                yield line

    names, skipped, notes = parse_domains(lines(), str(domains_file))
    if skipped > len(notes):
        notes.append(f"{domains_file}: {skipped} line(s) skipped in all")
    return Category(name, usage, names, digest.hexdigest(), skipped, tuple(notes))


def _category_folders(root: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(root.iterdir())
            if p.is_dir() and not p.name.startswith(".")}


def read_lists(root: Path, only: Iterable[str] | None = None) -> ListSet:
    """The categories under `root` (all of them, or `only` those); InputError when the folder
    is not a UT1 folder or a requested category is absent."""
    if not root.is_dir():
        raise InputError(Problem(str(root), "the UT1 lists folder does not exist or is not a "
                                 "folder", hint="give the extracted `blacklists` folder"))
    folders = _category_folders(root)
    wanted = sorted(set(only)) if only is not None else sorted(folders)
    missing = [name for name in wanted if name not in folders]
    if missing:
        raise InputError([Problem(str(root / name), f"category {name!r} not found",
                                  field="--categories",
                                  hint=f"categories here: {', '.join(sorted(folders))}")
                          for name in missing])
    aliases: dict[str, str] = {}
    categories: list[Category] = []
    for name in wanted:
        folder = folders[name]
        target = folder.resolve()
        if folder.is_symlink() and target.parent == root.resolve() and target.name != name:
            aliases[name] = target.name
            if target.name in wanted:
                continue
        categories.append(read_category(target, name))
    # an alias whose target was not selected stands for itself (it was read under its name)
    aliases = {a: t for a, t in aliases.items() if t in wanted}
    if not categories:
        raise InputError(Problem(str(root), "no category found",
                                 hint="give the extracted `blacklists` folder (one folder per "
                                 "category, each with a domains file)"))
    return ListSet(tuple(categories), aliases)
