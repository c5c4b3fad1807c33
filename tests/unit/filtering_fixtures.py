"""Small UT1-shaped trees and builds for the filtering tests."""

from __future__ import annotations

from pathlib import Path

from cartable.filtering.compiled import compile_lists, write_build
from cartable.filtering.lists import read_lists


def ut1_tree(root: Path, categories: dict[str, tuple[str, str]]) -> Path:
    """Write name -> (usage, domains text) as UT1 category folders under root; return root."""
    root.mkdir(parents=True, exist_ok=True)
    for name, (usage, domains) in categories.items():
        folder = root / name
        folder.mkdir()
        (folder / "usage").write_text(usage + "\n")
        if domains is not None:
            (folder / "domains").write_text(domains)
    return root


SAMPLE = {
    "games": ("black", "jeux.example\nplay.example.net\n"),
    "gambling": ("black", "casino.example\n"),
    "vpn": ("black\nvpn", "vpn.example\n"),
    "liste_blanche": ("white", "education.example\nwww.ecole.example\n"),
    "child": ("white\nchild", "enfants.example\njeux.example\n"),
}


def build_file(tmp: Path, categories: dict | None = None, name: str = "lists.cfl") -> Path:
    """Compile categories (default SAMPLE) into tmp/<name>; return its path."""
    tree = ut1_tree(tmp / f"ut1-{name}", categories or SAMPLE)
    out = tmp / name
    write_build(out, compile_lists(read_lists(tree)))
    return out
