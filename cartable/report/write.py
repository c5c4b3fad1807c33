"""Write the report folder all at once: files rendered into a temporary folder beside it, then
renamed into place (an existing report folder is replaced, never left half-written)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from cartable.errors import InputError, Problem


def write_folder(out: Path, files: dict[str, str]) -> None:
    """Replace `out` by a folder holding exactly `files` (name -> text)."""
    tmp = old = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
        for name, text in files.items():
            with open(tmp / name, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o755)
        if out.exists():
            if not out.is_dir():
                raise InputError(Problem(str(out), "the output exists and is not a folder",
                                         hint="give --out a folder (it is replaced)"))
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
            os.rename(out, old / "previous")
        os.rename(tmp, out)
        tmp = None
    except OSError as exc:
        if old is not None and not out.exists():
            os.rename(old / "previous", out)  # put the previous report back
        raise InputError(Problem(str(exc.filename or out), "cannot write the report: "
                                 f"{exc.strerror or exc}; nothing changed",
                                 hint="check the folder's owner, mode and free space")) from None
    finally:
        for leftover in (tmp, old):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)
