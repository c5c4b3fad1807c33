"""YAML with line numbers, and a small strict schema checker that names file, line and key.

Site files are written by hand: a typo in a key must not pass silently, so every mapping is
checked against the keys it may hold, with a "did you mean" from difflib.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from cartable.errors import InputError, Problem

try:  # libyaml when available: same result, faster
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _BaseLoader = yaml.SafeLoader


class LDict(dict):
    """A mapping that remembers the 1-based line of itself and of each key."""

    line: int = 0
    lines: dict[Any, int]


class LList(list):
    """A sequence that remembers the 1-based line of itself and of each item."""

    line: int = 0
    lines: list[int]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader building LDict/LList (pure Python: marks are needed)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LDict:
    loader.flatten_mapping(node)
    result = LDict()
    result.line = node.start_mark.line + 1
    result.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> LList:
    result = LList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.lines = [child.start_mark.line + 1 for child in node.value]
    return result


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | str:
    """Digits with a leading zero are codes, not (octal) numbers: commune 01053 stays '01053'."""
    value = loader.construct_scalar(node)
    if isinstance(value, str) and re.fullmatch(r"0[0-9_]+", value):
        return value
    return loader.construct_yaml_int(node)


_LineLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_with_lines(text: str, filename: str) -> Any:
    """Parse YAML keeping line numbers; InputError on a syntax error."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(Problem(filename, f"YAML syntax error: {problem}", line,
                                 hint="check indentation and quoting around this line")) from None


def load_fast(path: Path) -> Any:
    """Parse a generated YAML file with libyaml (no line numbers)."""
    return load_fast_text(path.read_text(encoding="utf-8"))


def load_fast_text(text: str) -> Any:
    """Parse generated YAML text with libyaml (no line numbers); yaml.YAMLError if broken."""
    return yaml.load(text, Loader=_BaseLoader)  # noqa: S506


# --- schema -------------------------------------------------------------------------------

Check = Callable[[Any, "Ctx"], Any]


@dataclass
class Ctx:
    """Where a value is: file, line, dotted path; collects problems."""

    filename: str
    problems: list[Problem]
    path: str = ""
    line: int | None = None

    def at(self, key: Any, line: int | None) -> "Ctx":
        path = f"{self.path}.{key}" if self.path else str(key)
        return Ctx(self.filename, self.problems, path, line or self.line)

    def fail(self, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.filename, message, self.line, self.path or None, hint))


_MISSING = object()


def mapping(fields: dict[str, Check], required: tuple[str, ...] = ()) -> Check:
    """A mapping with known keys; unknown keys are errors with a suggestion."""

    def check(value: Any, ctx: Ctx) -> Any:
        if not isinstance(value, dict):
            ctx.fail(f"expected a mapping, got {type(value).__name__}")
            return {}
        lines = getattr(value, "lines", {})
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = ctx.at(key, lines.get(key))
            if key not in fields:
                close = difflib.get_close_matches(str(key), fields, n=1)
                hint = f"did you mean '{close[0]}'?" if close else \
                    "allowed keys: " + ", ".join(sorted(fields))
                sub.fail(f"unknown key '{key}'", hint)
                continue
            out[key] = fields[key](item, sub)
        for key in required:
            if key not in value:
                ctx.fail(f"missing required key '{key}'",
                         f"add '{key}:' under {ctx.path or 'the top level'}")
        return out

    return check


def map_of(key_check: Callable[[Any, Ctx], str | None], value: Check) -> Check:
    """A mapping with free keys validated by key_check (returns an error or None)."""

    def check(raw: Any, ctx: Ctx) -> Any:
        if not isinstance(raw, dict):
            ctx.fail(f"expected a mapping, got {type(raw).__name__}")
            return {}
        lines = getattr(raw, "lines", {})
        out: dict[Any, Any] = {}
        for key, item in raw.items():
            sub = ctx.at(key, lines.get(key))
            why = key_check(key, sub)
            if why:
                sub.fail(why)
                continue
            out[key] = value(item, sub)
        return out

    return check


def list_of(item: Check) -> Check:
    def check(raw: Any, ctx: Ctx) -> Any:
        if not isinstance(raw, list):
            ctx.fail(f"expected a list, got {type(raw).__name__}", "write it as [a, b] or '- a' lines")
            return []
        lines = getattr(raw, "lines", [])
        return [item(v, ctx.at(i, lines[i] if i < len(lines) else None)) for i, v in enumerate(raw)]

    return check


def text(raw: Any, ctx: Ctx) -> Any:
    """A string; numbers are accepted as their text (commune codes like 35238)."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        ctx.fail(f"expected text, got {type(raw).__name__}")
        return ""
    return str(raw)


def integer(low: int, high: int) -> Check:
    def check(raw: Any, ctx: Ctx) -> Any:
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
            ctx.fail(f"expected a whole number from {low} to {high}, got {raw!r}")
            return low
        return raw

    return check


def boolean(raw: Any, ctx: Ctx) -> Any:
    if not isinstance(raw, bool):
        ctx.fail(f"expected true or false, got {raw!r}")
        return False
    return raw


def choice(*allowed: str) -> Check:
    def check(raw: Any, ctx: Ctx) -> Any:
        if raw not in allowed:
            ctx.fail(f"'{raw}' is not one of: {', '.join(allowed)}")
            return allowed[0]
        return raw

    return check
