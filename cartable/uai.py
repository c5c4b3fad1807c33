"""The UAI (Unité administrative immatriculée): 7 digits and a check letter."""

from __future__ import annotations

import re

CHECK_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
_UAI_RE = re.compile(r"^[0-9]{7}[A-Z]$")


def check_letter(digits: str) -> str:
    """The check letter of the first 7 characters of a UAI (digits)."""
    return CHECK_LETTERS[int(digits) % 23]


def uai_problem(value: str) -> str | None:
    """Why `value` is not a valid UAI, or None when it is."""
    if not _UAI_RE.match(value):
        return f"'{value}' is not a UAI (expected 7 digits and a capital letter, e.g. 0350122T)"
    expected = check_letter(value[:7])
    if value[7] != expected:
        return f"UAI '{value}' has check letter '{value[7]}', expected '{expected}' (typo in the code?)"
    return None


def normalise_uai(value: str) -> str:
    """UAIs are written upper-case in the directory; accept lower-case in site files."""
    return value.strip().upper()
