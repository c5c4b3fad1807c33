"""`cartable filter publish`: verify UT1 lists, compile them, publish a signed manifest with the
full build and deltas from the last builds (runs on the DSI's mirror host, controller venv).

Publish folder (served over HTTP(S) to the schools, through the academic proxy):

    manifest.json        what to fetch (see MANIFEST_FORMAT and docs/filtering.md)
    manifest.json.sig    detached Ed25519 signature (signing.py)
    builds/<id>.cfl.xz   full compiled lists, lzma-compressed
    deltas/<from>-<to>.cfd.xz   deltas (delta.py) from recent builds, lzma-compressed

State folder (the mirror's own): history.json (published builds, newest last), builds/<id>.cfl
(uncompressed, to make the next deltas), a lock. Verification failures raise InputError before
anything is written in the publish folder; new files are written first, then the signature,
then manifest.json (both by rename); files no longer named by the last two manifests go last.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import lzma
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cartable.errors import InputError, Problem
from cartable.filtering.compiled import BuildError, compile_lists, open_build, write_build
from cartable.filtering.delta import apply_delta, make_delta
from cartable.filtering.fetch import MANIFEST, MANIFEST_FORMAT, SIGNATURE, http_get
from cartable.filtering.lists import normalize_name, read_lists
from cartable.filtering.signing import load_private, sign

MIN_RATIO = 0.90
DEFAULT_KEEP = 7
# one well-known name per blocked category of the sample lists (data/ut1-blacklists)
DEFAULT_CANARIES = ("gambling:pokerstars.com", "games:miniclip.com", "vpn:nordvpn.com",
                    "doh:dns.google", "dating:meetic.fr", "social_networks:facebook.com",
                    "shortener:bit.ly", "remote-control:teamviewer.com")
XZ_PRESET = 6  # 9 saves nothing on hashes and needs 65 MiB to decompress


@dataclass(frozen=True)
class Options:
    origin: str
    publish: Path
    key: Path
    state: Path
    proxy: str | None = None
    canaries: tuple[str, ...] = DEFAULT_CANARIES
    keep: int = DEFAULT_KEEP


def default_state(publish: Path) -> Path:
    return publish.parent / f"{publish.name}.state"


def parse_canaries(values: tuple[str, ...]) -> list[tuple[str, str]]:
    problems, found = [], []
    for value in values:
        category, _, name = value.partition(":")
        try:
            if not category or not name:
                raise ValueError("expected CATEGORY:NAME")
            found.append((category, normalize_name(name)))
        except ValueError as exc:
            problems.append(Problem("--canary", f"{value!r}: {exc}", field="canary",
                                    hint="e.g. --canary gambling:pokerstars.com"))
    if problems:
        raise InputError(problems)
    return found


def read_md5sums(path: Path) -> dict[str, str]:
    """name -> md5 of an MD5SUM.LST (md5sum's output: `<md5>  <name>` or `<md5> *<name>`)."""
    sums: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace")
                                  .splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 32:
            raise InputError(Problem(str(path), f"not an md5sum line: {line.strip()!r}", number,
                                     hint="UT1's MD5SUM.LST holds `<md5>  <file>` lines"))
        sums[parts[1].strip().lstrip("*")] = parts[0].lower()
    return sums


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5sums(listing: Path, folder: Path) -> int:
    """Check every file an MD5SUM.LST names (relative to `folder`); the number checked."""
    problems = []
    sums = read_md5sums(listing)
    for name, expected in sums.items():
        path = folder / name
        if not path.is_file():
            problems.append(Problem(str(listing), f"{name}: listed but absent from the origin",
                                    hint="the origin is incomplete: try again later"))
        elif _md5(path) != expected:
            problems.append(Problem(str(listing), f"{name}: MD5 mismatch (the file is not the "
                                    "one the publisher listed)", hint="a damaged or partial "
                                    "download: try again later; nothing was published"))
    if problems:
        raise InputError(problems)
    return len(sums)


def _download(url: str, proxy: str | None, work: Path) -> Path:
    """Fetch UT1's tarball (and its MD5SUM.LST when the origin has one), check, extract;
    the extracted lists folder."""
    name = Path(urllib.parse.urlsplit(url).path).name or "blacklists.tar.gz"
    tarball = work / name
    tarball.write_bytes(http_get(url, proxy, timeout=600))
    md5_url = urllib.parse.urljoin(url, "MD5SUM.LST")
    try:
        (work / "MD5SUM.LST").write_bytes(http_get(md5_url, proxy, missing_ok=True))
    except FileNotFoundError:
        pass
    else:
        if name not in read_md5sums(work / "MD5SUM.LST"):
            raise InputError(Problem(md5_url, f"does not list {name}",
                                     hint="check the origin URL; nothing was published"))
        check_md5sums(work / "MD5SUM.LST", work)
    target = work / "extracted"
    target.mkdir()
    try:
        with tarfile.open(tarball) as archive:
            archive.extractall(target, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InputError(Problem(url, f"not a readable UT1 tarball ({exc})",
                                 hint="UT1 publishes blacklists.tar.gz")) from None
    entries = [p for p in target.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else target


def _history(state: Path) -> list[dict]:
    path = state / "history.json"
    if not path.exists():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")))


def _write(path: Path, data: bytes) -> None:
    """Write by rename, fsynced (a reader never sees a partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def _locked(state: Path) -> Iterator[None]:
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(Problem(str(state / "lock"), "another publish is running",
                                     hint="wait for it to finish")) from None
        yield


def _check_sizes(previous: dict[str, int], now: dict[str, int], where: str) -> None:
    problems = []
    for name, before in sorted(previous.items()):
        after = now.get(name, 0)
        if before and after < MIN_RATIO * before:
            problems.append(Problem(where, f"category {name!r}: {after} names, was {before} "
                                    f"({after / before:.0%} < {MIN_RATIO:.0%})",
                                    hint="a damaged or partial origin? nothing was published; "
                                    "if the shrink is genuine, publish with a new --state"))
    if problems:
        raise InputError(problems)


def _check_canaries(path: Path, canaries: list[tuple[str, str]], where: str) -> None:
    build = open_build(path)
    try:
        problems = []
        for category, name in canaries:
            found = {c for _, c in build.lookup(name)}
            if build.resolve(category) not in found:
                problems.append(Problem(where, f"canary {name} is not in category {category!r} "
                                        f"(found: {', '.join(sorted(found)) or 'nothing'})",
                                        field="canary", hint="a damaged origin? nothing was "
                                        "published; change --canary if UT1 dropped this name"))
        if problems:
            raise InputError(problems)
    finally:
        build.close()


def publish(opts: Options, log: Callable[[str], None] = print,
            now: datetime | None = None) -> str:
    """Verify, compile and publish; the build id published, or "" when unchanged."""
    key = load_private(opts.key)
    canaries = parse_canaries(opts.canaries)
    if opts.keep < 1:
        raise InputError(Problem("--keep", f"{opts.keep}: keep at least 1 build"))
    with _locked(opts.state):
        work = Path(tempfile.mkdtemp(dir=opts.state, prefix="work-"))
        try:
            return _publish(opts, key, canaries, work, log, now)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _publish(opts: Options, key: Ed25519PrivateKey, canaries: list[tuple[str, str]], work: Path,
             log: Callable[[str], None], now: datetime | None) -> str:
    if opts.origin.startswith(("http://", "https://")):
        folder = _download(opts.origin, opts.proxy, work)
    else:
        folder = Path(opts.origin)
        if (folder / "MD5SUM.LST").is_file():
            log(f"MD5SUM.LST: {check_md5sums(folder / 'MD5SUM.LST', folder)} file(s) match")
    lists = read_lists(folder)
    for category in lists.categories:
        for note in category.notes:
            print(f"note: {note}", file=sys.stderr)
    data = compile_lists(lists)
    sha = hashlib.sha256(data).hexdigest()
    history = _history(opts.state)
    if history and history[-1]["sha256"] == sha and (opts.publish / MANIFEST).exists():
        log(f"unchanged: build {history[-1]['id']} is already published")
        return ""
    candidate = work / "lists.cfl"
    write_build(candidate, data)  # verifies that it opens
    counts = {c.name: len(c.domains) for c in lists.categories}
    if history:
        _check_sizes(history[-1]["categories"], counts, opts.origin)
    _check_canaries(candidate, canaries, opts.origin)
    created = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    build_id = f"{created:%Y%m%dT%H%M%SZ}-{sha[:8]}"
    cached = opts.state / "builds" / f"{build_id}.cfl"
    cached.parent.mkdir(parents=True, exist_ok=True)
    os.replace(candidate, cached)
    full = lzma.compress(data, preset=XZ_PRESET)
    full_path = f"builds/{build_id}.cfl.xz"
    _write(opts.publish / full_path, full)
    deltas = _deltas(opts, history[-(opts.keep - 1):] if opts.keep > 1 else [], cached, sha)
    manifest = {"format": MANIFEST_FORMAT, "version": 1, "build": build_id,
                "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"), "sha256": sha,
                "size": len(data),
                "full": {"path": full_path, "sha256": hashlib.sha256(full).hexdigest(),
                         "size": len(full)},
                "deltas": deltas, "categories": counts, "aliases": lists.aliases}
    text = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8")
    old_manifest = _read_manifest(opts.publish)
    _write(opts.publish / SIGNATURE, sign(key, text).encode("ascii"))
    _write(opts.publish / MANIFEST, text)
    history.append({"id": build_id, "sha256": sha, "size": len(data),
                    "created": manifest["created"], "categories": counts})
    _write(opts.state / "history.json", json.dumps(history[-opts.keep:], indent=1).encode())
    _prune(opts, history[-opts.keep:], [manifest, old_manifest])
    log(f"published {build_id}: {sum(counts.values())} names, {len(data)} bytes "
        f"({len(full)} compressed), {len(deltas)} delta(s)")
    return build_id


def _deltas(opts: Options, previous: list[dict], cached: Path, sha: str) -> dict[str, dict]:
    deltas: dict[str, dict] = {}
    new = open_build(cached)
    try:
        for entry in previous:
            old_path = opts.state / "builds" / f"{entry['id']}.cfl"
            try:
                old = open_build(old_path)
            except BuildError as exc:
                print(f"note: no delta from {entry['id']}: {exc}", file=sys.stderr)
                continue
            try:
                raw = make_delta(old, new)
                if hashlib.sha256(apply_delta(old, raw)).hexdigest() != sha:
                    raise AssertionError("a delta does not rebuild the new list")  # a bug
            finally:
                old.close()
            packed = lzma.compress(raw, preset=XZ_PRESET)
            path = f"deltas/{entry['sha256'][:16]}-{sha[:16]}.cfd.xz"
            _write(opts.publish / path, packed)
            deltas[entry["sha256"]] = {"path": path, "size": len(packed),
                                       "sha256": hashlib.sha256(packed).hexdigest()}
    finally:
        new.close()
    return deltas


def _read_manifest(publish: Path) -> dict:
    try:
        return dict(json.loads((publish / MANIFEST).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _prune(opts: Options, history: list[dict], manifests: list[dict]) -> None:
    """Drop published files no manifest of the last two names (a school that read the previous
    manifest a moment ago still finds its files), and cached builds beyond --keep."""
    named = set()
    for manifest in manifests:
        if manifest.get("full"):
            named.add(manifest["full"]["path"])
        named.update(d["path"] for d in manifest.get("deltas", {}).values())
    for sub in ("builds", "deltas"):
        for path in (opts.publish / sub).glob("*.xz"):
            if f"{sub}/{path.name}" not in named:
                path.unlink(missing_ok=True)
    kept = {f"{e['id']}.cfl" for e in history}
    for path in (opts.state / "builds").glob("*.cfl"):
        if path.name not in kept:
            path.unlink(missing_ok=True)
