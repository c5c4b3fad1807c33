"""Errors that tell a DSI engineer what is wrong, where, and how to fix it."""

from __future__ import annotations

import sys
from collections.abc import Callable
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


def report_errors(prog: str, action: Callable[[], int], suffix: str = "; nothing written",
                  outcome: str = "nothing written") -> int:
    """Run a command's action as every Cartable command does: bad input and unforeseen system
    errors are printed for a person (what, where, how to fix) with exit code 2, never a
    traceback; argparse's own exits (usage error 2, --help 0) pass through as codes.
    `outcome` follows the count of problems, `suffix` a system error."""
    try:
        return action()
    except SystemExit as exc:  # argparse: usage error (2) or --help (0)
        return exc.code if isinstance(exc.code, int) else 2
    except InputError as exc:
        print(f"{prog}: {len(exc.problems)} problem(s), {outcome}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except OSError as exc:  # anything the readers did not foresee: still no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{prog}: {where}{exc.strerror or exc}{suffix}", file=sys.stderr)
        return 2
