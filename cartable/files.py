"""Reading inputs and writing the inventory safely.

- every read failure (missing, a folder, permission denied, not UTF-8) is an InputError that
  names the file and says how to fix it;
- the generated files of a folder are replaced together or not at all (temp files in the same
  folder, fsync, rename; on failure the files renamed so far are put back, temps removed);
- one writer at a time per inventory folder (fcntl.flock on `.cartable.lock`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cartable.errors import InputError, Problem

LOCK_NAME = ".cartable.lock"


def read_text(path: Path, what: str, hint: str, encoding: str = "utf-8") -> str:
    """The text of an input file; InputError naming the file for anything that goes wrong."""
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise InputError(Problem(str(path), f"{what} not found", hint=hint)) from None
    except IsADirectoryError:
        raise InputError(Problem(str(path), f"{what} is a folder, not a file",
                                 hint=f"give the file itself; {hint}")) from None
    except PermissionError:
        raise InputError(Problem(str(path), f"{what} cannot be read: permission denied",
                                 hint="check the file's owner and mode (ls -l), or run as "
                                 "a user that may read it")) from None
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise InputError(Problem(str(path), f"{what} is not UTF-8 text ({exc.reason} at byte "
                                 f"{exc.start})", line,
                                 hint="save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)")) \
            from None
    except OSError as exc:
        raise InputError(Problem(str(path), f"{what} cannot be read: {exc.strerror or exc}",
                                 hint=hint)) from None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_together(folder: Path, files: dict[str, str]) -> None:
    """Replace every file of `files` (name -> text) in `folder`, all or none."""
    temps: dict[str, str] = {}
    old: dict[str, bytes | None] = {}
    done: list[str] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
            temps[name] = tmp
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            target = folder / name
            old[name] = target.read_bytes() if target.exists() else None
        for name, tmp in temps.items():
            os.replace(tmp, folder / name)
            done.append(name)
        _fsync_dir(folder)
    except OSError as exc:
        for name in done:  # put back what was already replaced
            previous = old[name]
            if previous is None:
                (folder / name).unlink(missing_ok=True)
            else:
                (folder / name).write_bytes(previous)
        raise InputError(Problem(str(exc.filename or folder),
                                 f"cannot write the inventory: {exc.strerror or exc}; "
                                 "nothing changed",
                                 hint="check the folder's owner, mode and free space")) from None
    finally:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)


@contextmanager
def exclusive_lock(path: Path, busy: str, hint: str) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created with its folder); InputError at once, saying
    `busy` and `hint`, if another process holds it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InputError(Problem(str(path), f"cannot create the lock file: {exc.strerror or exc}",
                                 hint="check the folder's owner and mode")) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise InputError(Problem(str(path), busy, hint=hint)) from None
        yield
    finally:
        os.close(fd)


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the inventory folder's lock; InputError at once if another writer holds it."""
    with exclusive_lock(folder / LOCK_NAME, "another cartable command is writing this inventory",
                        "wait for it to finish, then run this command again (its result may "
                        "change what this one would write)"):
        yield
