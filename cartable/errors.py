"""Errors that tell a DSI engineer what is wrong, where, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one input file."""

    file: str
    message: str
    line: int | None = None  # 1-based line (YAML) or row (CSV, header = line 1)
    field: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        field = f" [{self.field}]" if self.field else ""
        hint = f"\n    fix: {self.hint}" if self.hint else ""
        return f"{where}:{field} {self.message}{hint}"


class InputError(Exception):
    """Bad input: one or more problems. The CLI prints them all and exits with code 2."""

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
