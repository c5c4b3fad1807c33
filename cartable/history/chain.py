"""The hash chain of closed days: seal, verify, purge (retention).

`<folder>/chain`, one record a line, tab-separated:

    kind  day  file  sha256(file)  info  hash

`file` is `YYYY-MM-DD.log.gz` (seal compresses the closed day) or `leases-YYYY-MM-DD`;
`hash` = sha256(previous record's hash + "\\n" + the five other fields joined by tabs), the
first record chaining to 64 zeros. `kind` is `seal` (the file as it was closed) or `purge`
(the file deleted by retention, recorded BEFORE it is deleted, with its hash and the rule
applied: `keep=366 on=YYYY-MM-DD`). So:

- a byte changed in a sealed file: its sha256 differs from its seal record;
- a sealed file removed without a purge record: missing;
- a record edited, removed or inserted: every later hash differs;
- a purge of a day still inside the retention period: the purge record says so.

Truncating the end of the chain is only detectable against a copy of its last hash (the
`head` printed by seal and verify, kept in the journal of the systemd unit).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from cartable.history.formats import DAY_RE, LEASES_RE, leases_file

CHAIN = "chain"
GENESIS = "0" * 64
SEAL, PURGE = "seal", "purge"
MODE = 0o640


@dataclass(frozen=True)
class Record:
    kind: str
    day: str
    file: str
    sha256: str
    info: str
    hash: str
    number: int = 0  # line in the chain file (read_chain), 0 for a new record

    @property
    def body(self) -> str:
        return "\t".join((self.kind, self.day, self.file, self.sha256, self.info))

    @property
    def line(self) -> str:
        return f"{self.body}\t{self.hash}\n"


def link(previous: str, kind: str, day: str, file: str, sha256: str, info: str) -> Record:
    body = "\t".join((kind, day, file, sha256, info))
    digest = hashlib.sha256(f"{previous}\n{body}".encode()).hexdigest()
    return Record(kind, day, file, sha256, info, digest)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def day_of(name: str) -> date | None:
    """The day a history file belongs to (`YYYY-MM-DD.log`, `leases-YYYY-MM-DD`)."""
    match = DAY_RE.match(name) or LEASES_RE.match(name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def history_files(folder: Path) -> dict[str, date]:
    return {p.name: d for p in folder.iterdir() if (d := day_of(p.name)) and p.is_file()}


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the history (verify's answer)."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def read_chain(folder: Path) -> tuple[list[Record], list[Finding]]:
    """The records in order, and what breaks the chain itself (a bad line, a bad hash)."""
    path = folder / CHAIN
    records: list[Record] = []
    findings: list[Finding] = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return [], []
    previous = GENESIS
    for number, text in enumerate(lines, 1):
        parts = text.split("\t")
        where = f"{CHAIN}:{number}"
        if len(parts) != 6 or parts[0] not in (SEAL, PURGE):
            findings.append(Finding(where, f"not a chain record: {text[:80]!r}"))
            continue
        record = Record(*parts, number=number)
        expected = link(previous, *parts[:5])
        if expected.hash != record.hash:
            findings.append(Finding(
                where, f"record of {record.file} ({record.kind}) does not chain: hash "
                f"{record.hash[:16]}..., expected {expected.hash[:16]}... (the chain was "
                "edited, or a record removed or inserted before it)"))
        # the next records are checked against this one as stored: one damage, one finding
        records.append(record)
        previous = record.hash
    return records, findings


@contextmanager
def _locked_chain(folder: Path) -> Iterator[tuple[int, str]]:
    """The chain opened for appending under an exclusive lock, with its last hash."""
    fd = os.open(folder / CHAIN, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        lines = (folder / CHAIN).read_text(encoding="utf-8", errors="replace").splitlines()
        last = lines[-1].rsplit("\t", 1)[-1] if lines else GENESIS
        # chain after the last line as stored: a damage earlier stays where verify finds it
        yield fd, last if len(last) == 64 else GENESIS
        os.fsync(fd)
    finally:
        os.close(fd)


def _append(fd: int, record: Record) -> None:
    os.write(fd, record.line.encode())
    os.fsync(fd)


def _protect(path: Path, as_root: bool) -> None:
    if as_root:
        import grp  # noqa: PLC0415 - only where chown applies
        os.chown(path, 0, grp.getgrnam("adm").gr_gid)
    os.chmod(path, MODE)


def seal(folder: Path, today: date, leases: Path | None = None,
         as_root: bool | None = None) -> list[Record]:
    """Seal every closed day (before `today`) not sealed yet; return the new records.

    `YYYY-MM-DD.log` is compressed into `YYYY-MM-DD.log.gz` (reproducible gzip; the .log is
    removed once the .gz is written), which is sealed: 0640, root:adm when run as root.

    A day without a leases journal from the logger gets a snapshot of `leases` (the file
    as seen now) as `leases-YYYY-MM-DD`, sealed with it."""
    as_root = os.geteuid() == 0 if as_root is None else as_root
    added: list[Record] = []
    with _locked_chain(folder) as (fd, previous):
        records, _ = read_chain(folder)
        done = {r.file for r in records}
        _protect(folder / CHAIN, as_root)
        files = history_files(folder)
        for name, day in sorted(files.items()):
            if day >= today or not name.endswith(".log"):
                continue
            packed = f"{name}.gz"
            if packed not in done:
                _compress(folder / name, folder / packed)
                files[packed] = day
            elif not _same(folder / name, folder / packed):
                continue  # a .log beside its sealed .gz, different: verify reports it
            (folder / name).unlink()
            del files[name]
            snapshot = folder / leases_file(day)
            if leases is not None and snapshot.name not in files and snapshot.name not in done:
                _snapshot(leases, snapshot)
                files[snapshot.name] = day
        for name, day in sorted(files.items(), key=lambda item: (item[1], item[0])):
            if day >= today or name in done:
                continue
            path = folder / name
            _protect(path, as_root)
            stat = path.stat()
            record = link(previous, SEAL, day.isoformat(), name, file_sha256(path),
                          f"bytes={stat.st_size}")
            _append(fd, record)
            added.append(record)
            previous = record.hash
    return added


def _compress(source: Path, target: Path) -> None:
    """gzip `source` into `target` (by rename; no name or time inside: reproducible)."""
    temp = target.with_name(f".{target.name}.tmp")
    private = (lambda name, flags: os.open(name, flags, 0o600))  # 0640 once sealed
    with open(source, "rb") as raw, open(temp, "wb", opener=private) as out:
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as packed:
            shutil.copyfileobj(raw, packed, 1 << 20)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, target)


def _same(plain: Path, packed: Path) -> bool:
    try:
        with gzip.open(packed, "rb") as handle:
            return file_sha256(plain) == hashlib.sha256(handle.read()).hexdigest()
    except (OSError, EOFError):
        return False


def _snapshot(source: Path, target: Path) -> None:
    try:
        content = source.read_bytes()
    except OSError as exc:
        content = f"# unreadable: {exc.strerror}\n".encode()
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    header = (f"#cartable-history-leases/1\n# snapshot of {source} taken {stamp} by "
              "cartable-history seal (no journal from the logger for this day)\n").encode()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, MODE)
    try:
        os.write(fd, header + content)
        os.fsync(fd)
    finally:
        os.close(fd)


def purge(folder: Path, keep_days: int, today: date) -> list[Record]:
    """Delete the files of every day more than `keep_days` before `today` (a file
    `keep_days` days old stays, one day older goes), each purge recorded first."""
    added: list[Record] = []
    with _locked_chain(folder) as (fd, previous):
        for name, day in sorted(history_files(folder).items(), key=lambda i: (i[1], i[0])):
            if (today - day).days <= keep_days:
                continue
            path = folder / name
            record = link(previous, PURGE, day.isoformat(), name, file_sha256(path),
                          f"keep={keep_days} on={today.isoformat()}")
            _append(fd, record)
            path.unlink()
            added.append(record)
            previous = record.hash
    return added


def verify(folder: Path, today: date, keep_days: int = 366
           ) -> tuple[list[Record], list[Finding], list[str]]:
    """(records, findings in chain order, notes). No finding = the history is intact.

    A purge by a retention shorter than `keep_days` is a finding (a way to hide a day)."""
    records, findings = read_chain(folder)
    notes: list[str] = []
    files = history_files(folder)
    sealed: dict[str, tuple[int, Record]] = {}
    purged: dict[str, Record] = {}
    for record in records:
        number = record.number
        where = f"{CHAIN}:{number}"
        if record.kind == SEAL:
            if record.file in sealed or record.file in purged:
                findings.append(Finding(where, f"{record.file} sealed twice"))
            sealed[record.file] = (number, record)
            continue
        purged[record.file] = record
        info = dict(part.split("=", 1) for part in record.info.split() if "=" in part)
        try:
            age = (date.fromisoformat(info["on"]) - date.fromisoformat(record.day)).days
            keep = int(info["keep"])
        except (KeyError, ValueError):
            findings.append(Finding(where, f"purge of {record.file}: unreadable rule "
                                           f"{record.info!r}"))
            continue
        if age <= keep or keep < keep_days:
            findings.append(Finding(where, f"purge of {record.file} {age} days old, by a "
                                           f"retention of {keep} days (expected: {keep_days})"))
        if record.file in sealed and sealed[record.file][1].sha256 != record.sha256:
            findings.append(Finding(where, f"{record.file} was changed after its seal "
                                           f"(chain:{sealed[record.file][0]}) and then purged"))
    for name, (number, record) in sealed.items():
        path = folder / name
        if name in purged:
            if path.exists():
                notes.append(f"{name}: purged (chain) but still present: run purge again")
            continue
        if not path.is_file():
            findings.append(Finding(
                name, f"missing: sealed on chain:{number} (day {record.day}), never purged"))
            continue
        digest = file_sha256(path)
        if digest != record.sha256:
            findings.append(Finding(
                name, f"content differs from its seal (chain:{number}): sha256 "
                f"{digest[:16]}..., sealed {record.sha256[:16]}..."))
    for name, day in sorted(files.items(), key=lambda i: (i[1], i[0])):
        if name in sealed or name in purged:
            continue
        if (today - day).days >= 2:
            findings.append(Finding(name, f"closed on {day.isoformat()} but not sealed (is "
                                          "the daily seal running? was the chain replaced?)"))
        elif day < today:
            notes.append(f"{name}: closed, not sealed yet (run seal)")
    findings.sort(key=lambda f: _order(f, sealed))
    return records, findings, notes


def _order(finding: Finding, sealed: dict[str, tuple[int, Record]]) -> tuple[int, str]:
    if finding.where.startswith(f"{CHAIN}:"):
        return int(finding.where.split(":")[1]), finding.where
    if finding.where in sealed:
        return sealed[finding.where][0], finding.where
    return 1 << 30, finding.where
