"""Nightly deltas: applying make_delta(old, new) to old gives new's exact bytes, whatever
changed (names, categories added or removed, names moving between categories); a delta for
another build, truncated or corrupt, is refused. And the school-side modules stay within the
standard library (+ cryptography)."""

from __future__ import annotations

import ast
import random
import sys
from pathlib import Path

import pytest

from cartable.filtering.compiled import compile_lists, open_build, write_build
from cartable.filtering.delta import DeltaError, apply_delta, delta_shas, make_delta
from cartable.filtering.lists import read_lists

from filtering_fixtures import ut1_tree

REPO = Path(__file__).resolve().parents[2]


def build(tmp: Path, name: str, categories: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    tree = ut1_tree(tmp / f"ut1-{name}", {c: ("black", "\n".join(n) + "\n")
                                          for c, n in categories.items()})
    data = compile_lists(read_lists(tree))
    write_build(tmp / f"{name}.cfl", data)
    return open_build(tmp / f"{name}.cfl"), data


def mutate(rng: random.Random, cats: dict[str, list[str]], day: int) -> dict[str, list[str]]:
    new = {c: list(n) for c, n in cats.items()}
    for c in new:
        for _ in range(rng.randrange(20)):
            if new[c]:
                new[c].pop(rng.randrange(len(new[c])))
        new[c] += [f"d{day}-{rng.randrange(10**6)}.example" for _ in range(rng.randrange(20))]
        if rng.random() < 0.3:  # a name also listed in another category
            other = rng.choice(sorted(cats))
            if cats[other]:
                new[c].append(rng.choice(cats[other]))
    return {c: n or ["never-empty.example"] for c, n in new.items()}


@pytest.mark.parametrize("seed", range(4))
def test_a_delta_rebuilds_the_new_file_byte_for_byte(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    cats = {c: [f"{c}{i}.example" for i in range(300)] for c in ("b", "d", "f")}
    old, _ = build(tmp_path, "old", cats)
    new_cats = mutate(rng, cats, 1)
    if seed == 1:
        new_cats["a"] = ["first-category.example", "b7.example"]  # ids of the others shift
    if seed == 2:
        del new_cats["d"]  # a category gone
    if seed == 3:
        new_cats = {"e": cats["b"][:10]}  # almost everything goes
    new, data = build(tmp_path, "new", new_cats)
    delta = make_delta(old, new)
    assert apply_delta(old, delta) == data
    assert len(delta) < len(data) or seed == 3
    old.close()
    new.close()


def test_an_unchanged_list_gives_an_empty_delta(tmp_path: Path) -> None:
    cats = {"b": [f"n{i}.example" for i in range(10000)]}
    old, data = build(tmp_path, "old", cats)
    new, _ = build(tmp_path, "new", cats)
    delta = make_delta(old, new)
    assert apply_delta(old, delta) == data
    assert len(delta) < 300  # header and metadata only
    old.close()
    new.close()


def test_a_delta_for_another_build_or_damaged_is_refused(tmp_path: Path) -> None:
    a, _ = build(tmp_path, "a", {"b": ["x.example", "y.example"]})
    b, _ = build(tmp_path, "b", {"b": ["x.example", "z.example"]})
    c, _ = build(tmp_path, "c", {"b": ["w.example"]})
    delta = make_delta(a, b)
    assert delta_shas(delta)[0] != delta_shas(make_delta(c, b))[0]
    with pytest.raises(DeltaError, match="another build"):
        apply_delta(c, delta)
    with pytest.raises(DeltaError, match="truncated"):
        apply_delta(a, delta[:-3])
    with pytest.raises(DeltaError, match="bad magic"):
        apply_delta(a, b"X" + delta[1:])
    damaged = bytearray(delta)
    damaged[-3] ^= 0x10  # inside the added entries' keys
    with pytest.raises(DeltaError):
        apply_delta(a, bytes(damaged))
    for build_ in (a, b, c):
        build_.close()


SCHOOL_MODULES = ["errors.py", "filtering/compiled.py", "filtering/lists.py",
                  "filtering/policy.py", "filtering/helper.py", "filtering/delta.py",
                  "filtering/signing.py", "filtering/fetch.py"]


@pytest.mark.parametrize("module", SCHOOL_MODULES)
def test_school_side_modules_import_only_the_stdlib_and_cryptography(module: str) -> None:
    tree = ast.parse((REPO / "cartable" / module).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    outside = {m for m in imported
               if m.split(".")[0] not in sys.stdlib_module_names
               and m.split(".")[0] != "cryptography"
               and m != "cartable.errors" and not m.startswith("cartable.filtering.")}
    assert not outside, f"{module} imports {outside}: the school server has only the stdlib"
    if module != "filtering/signing.py":
        assert not {m for m in imported if m.startswith("cryptography")}, \
            f"{module}: only signing.py may need python3-cryptography"
    assert "cartable.filtering.publish" not in imported  # the mirror's side
