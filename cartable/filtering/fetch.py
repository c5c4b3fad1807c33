"""cartable-filter-fetch: the school server's nightly list update, and its age alert.

    cartable-filter-fetch update --manifest-url URL --public-key FILE --root DIR
        [--proxy URL] [--keep 3] [--jitter SECONDS] [--policy POLICY.json]
    cartable-filter-fetch status --root DIR --max-age-days N

update: wait a random 0..jitter seconds, fetch manifest.json and manifest.json.sig (through the
proxy, `Cache-Control: no-cache`), verify the Ed25519 signature; the current build already the
manifest's → nothing more (a no-change night costs the manifest and its signature). Else fetch
the delta from the current build (or the full build), rebuild the file, check its size and
SHA-256 against the manifest, write it into a new folder `<root>/builds/<id>/lists.cfl`
(fsynced), open and verify it (and the policy's categories), then replace the symlink
`<root>/current` by rename(2). The last --keep builds stay; `current`'s never goes.
`<root>/status.json` records each attempt.

Exit codes: 0 updated or unchanged; 1 fetch failure (network, HTTP error, timeout, local
write error): retry later; 2 bad input (unsigned, bad signature, wrong key, a manifest and a
signature that still do not match after --retries downloads, bad manifest, hash or size
mismatch, truncated, empty or corrupt build or delta, a policy category missing, bad
arguments).
In every failure nothing changes under `current`.

Runs on the school server: Python 3.11 standard library + Debian's python3-cryptography.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import lzma
import os
import random
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cartable.errors import InputError
from cartable.filtering.compiled import BuildError, fsync_dir, open_build
from cartable.filtering.delta import DeltaError, apply_delta

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
MANIFEST_FORMAT = "cartable-filter-manifest"
BUILD_FILE = "lists.cfl"
MAX_DOWNLOAD = 1 << 30
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
_PATH = re.compile(r"(?:builds|deltas)/[A-Za-z0-9][A-Za-z0-9._-]{0,150}\Z")
_SHA = re.compile(r"[0-9a-f]{64}\Z")


class FetchError(Exception):
    """A download that failed (network, HTTP status, timeout): try again later (exit 1)."""


class BadUpdate(Exception):
    """An update that must not be used (exit 2): signature, manifest, hash, content."""


def http_get(url: str, proxy: str | None, timeout: float = 60, missing_ok: bool = False,
             no_cache: bool = False, limit: int = MAX_DOWNLOAD) -> bytes:
    """The body of `url`, through `proxy` when given (never the environment's proxies).
    FileNotFoundError on 404 when missing_ok; FetchError on any other failure."""
    handler = urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {})
    opener = urllib.request.build_opener(handler)
    request = urllib.request.Request(url, headers={"User-Agent": "cartable-filter-fetch/1"})
    if no_cache:
        request.add_header("Cache-Control", "no-cache")
        request.add_header("Pragma", "no-cache")
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 404 and missing_ok:
            raise FileNotFoundError(url) from None
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FetchError(f"{url}: {reason}") from None
    if len(body) > limit:
        raise FetchError(f"{url}: larger than {limit} bytes")
    return body


@dataclass
class Update:
    manifest_url: str
    public_key: Path
    root: Path
    proxy: str | None = None
    keep: int = 3
    policy: Path | None = None
    timeout: float = 60
    retries: int = 3
    retry_delay: float = 30
    fetched: int = 0
    notes: list[str] = field(default_factory=list)

    def get(self, url: str, missing_ok: bool = False, no_cache: bool = False) -> bytes:
        body = http_get(url, self.proxy, self.timeout, missing_ok, no_cache)
        self.fetched += len(body)
        return body


def _check_manifest(data: bytes) -> dict:
    try:
        manifest = json.loads(data)
        if manifest["format"] != MANIFEST_FORMAT or manifest["version"] != 1:
            raise ValueError(f"format {manifest['format']!r} version {manifest['version']!r}")
        if not _ID.match(manifest["build"]):
            raise ValueError(f"build id {manifest['build']!r}")
        files = [manifest["full"], *manifest["deltas"].values()]
        shas = [manifest["sha256"], *manifest["deltas"].keys(), *(f["sha256"] for f in files)]
        if not all(isinstance(s, str) and _SHA.match(s) for s in shas):
            raise ValueError("a sha256 that is not 64 hex digits")
        if not all(isinstance(f["path"], str) and _PATH.match(f["path"]) for f in files):
            raise ValueError("a file path outside builds/ and deltas/")
        if not all(type(n) is int and n > 0 for n in [manifest["size"],
                                                       *(f["size"] for f in files)]):
            raise ValueError("a size that is not a positive integer")
        datetime.strptime(manifest["created"], "%Y-%m-%dT%H:%M:%SZ")
        if not isinstance(manifest["categories"], dict):
            raise ValueError("categories is not a mapping")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadUpdate(f"the signed manifest is not usable: {exc}") from None
    return dict(manifest)


def fetch_manifest(up: Update) -> tuple[dict, bytes, bytes]:
    """The verified manifest (and its raw bytes and signature); a manifest and a signature of
    two publications (published between the two downloads) are fetched again."""
    from cartable.filtering.signing import (SignatureError, SignatureMismatch, load_public,
                                            verify)
    key = load_public(up.public_key)
    sig_url = urllib.parse.urljoin(up.manifest_url, SIGNATURE)
    for attempt in range(1, up.retries + 1):
        data = up.get(up.manifest_url, no_cache=True)
        try:
            signature = up.get(sig_url, missing_ok=True, no_cache=True)
        except FileNotFoundError:
            raise BadUpdate(f"{sig_url}: absent: the manifest is unsigned") from None
        try:
            verify(key, data, signature)
        except SignatureMismatch as exc:
            if attempt == up.retries:
                raise BadUpdate(f"{exc}, {up.retries} times in a row: modified after signing?"
                                ) from None
            up.notes.append(f"{exc}: retrying in {up.retry_delay:g} s")
            time.sleep(up.retry_delay)
            continue
        except SignatureError as exc:
            raise BadUpdate(f"{up.manifest_url}: {exc}") from None
        return _check_manifest(data), data, signature
    raise AssertionError("unreachable")  # pragma: no cover


def current_build(root: Path) -> Path | None:
    """The build folder `current` points to, or None."""
    link = root / "current"
    if not link.is_symlink() and not link.exists():
        return None
    return link.resolve()


def _sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def _download_file(up: Update, entry: dict, what: str) -> bytes:
    url = urllib.parse.urljoin(up.manifest_url, entry["path"])
    packed = up.get(url)
    if len(packed) != entry["size"] or hashlib.sha256(packed).hexdigest() != entry["sha256"]:
        raise BadUpdate(f"{url}: {len(packed)} bytes whose SHA-256 is not the manifest's "
                        f"({entry['size']} bytes announced): truncated or corrupt {what}")
    try:
        return lzma.decompress(packed)
    except lzma.LZMAError as exc:
        raise BadUpdate(f"{url}: not a readable xz file ({exc})") from None


def rebuild(up: Update, manifest: dict, current: Path | None) -> tuple[bytes, str]:
    """The new compiled file's bytes (size and SHA-256 checked) and how they came."""
    old_sha = _sha256(current / BUILD_FILE) if current else None
    data, how = None, "full"
    if old_sha and old_sha in manifest["deltas"]:
        try:
            delta = _download_file(up, manifest["deltas"][old_sha], "delta")
            old = open_build(current / BUILD_FILE)  # type: ignore[operator]
            try:
                data, how = apply_delta(old, delta), "delta"
            finally:
                old.close()
        except (FetchError, BadUpdate, DeltaError, BuildError) as exc:
            up.notes.append(f"delta unusable ({exc}): fetching the full build")
    if data is None:
        data = _download_file(up, manifest["full"], "build")
    if len(data) != manifest["size"] or hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        raise BadUpdate(f"the {how} build is {len(data)} bytes whose SHA-256 is not the "
                        f"manifest's ({manifest['size']} bytes announced)")
    return data, how


def install(up: Update, manifest: dict, raw_manifest: bytes, signature: bytes,
            data: bytes) -> Path:
    """Write and verify builds/<id>/ (lists.cfl + the signed manifest); its path."""
    builds = up.root / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=builds, prefix=f".new-{manifest['build']}-"))
    try:
        for name, content in ((BUILD_FILE, data), (MANIFEST, raw_manifest),
                              (SIGNATURE, signature)):
            with open(staging / name, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(staging / name, 0o644)
        os.chmod(staging, 0o755)
        _verify_build(staging / BUILD_FILE, up.policy)
        target = builds / manifest["build"]
        if target.exists():
            if current_build(up.root) == target.resolve():
                raise BadUpdate(f"build {manifest['build']} is current with other content")
            shutil.rmtree(target)
        os.rename(staging, target)
        fsync_dir(builds)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _verify_build(path: Path, policy_path: Path | None) -> None:
    try:
        build = open_build(path)
    except BuildError as exc:
        raise BadUpdate(f"the new build does not verify: {exc}") from None
    try:
        if policy_path is not None:
            from cartable.filtering.helper import read_policy
            from cartable.filtering.policy import bind
            try:
                bind(read_policy(policy_path), build)
            except ValueError as exc:
                raise BadUpdate(f"the new build does not suit {policy_path}: {exc}") from None
    finally:
        build.close()


def swap(root: Path, target: Path) -> None:
    """Point `current` at `target` with one rename(2): a reader sees the old or the new."""
    tmp = root / f".current.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, root), tmp)
    os.replace(tmp, root / "current")
    fsync_dir(root)


def prune(root: Path, keep: int) -> list[str]:
    """Remove builds beyond the `keep` most recently installed (never current's)."""
    builds = root / "builds"
    current = current_build(root)
    for stale in builds.glob(".new-*"):
        shutil.rmtree(stale, ignore_errors=True)
    folders = sorted((p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    removed = []
    for folder in folders[keep:]:
        if current is not None and folder.resolve() == current:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    return removed


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_status(root: Path, status: dict) -> None:
    path = root / "status.json"
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    if status["result"] == "failed":
        status["last_success"] = previous.get("last_success")
    status = {k: status[k] for k in sorted(status)}
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".status.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(status, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        print(f"cartable-filter-fetch: cannot write {path}: {exc}", file=sys.stderr)


def update(up: Update) -> tuple[int, str]:
    """Run one update; (exit code, message). Writes status.json."""
    status: dict = {"last_attempt": _now(), "manifest_url": up.manifest_url}
    code, result, message, build = 0, "unchanged", "", None
    try:
        if up.policy is not None:  # a bad policy file is found before anything is fetched
            from cartable.filtering.helper import read_policy
            read_policy(up.policy)
        manifest, raw, signature = fetch_manifest(up)
        build = manifest["build"]
        current = current_build(up.root)
        if current and _sha256(current / BUILD_FILE) == manifest["sha256"]:
            message = f"unchanged: build {build} is current"
        else:
            data, how = rebuild(up, manifest, current)
            target = install(up, manifest, raw, signature, data)
            swap(up.root, target)
            result, status["method"] = "updated", how
            removed = prune(up.root, up.keep)
            message = (f"updated to build {build} ({how}, {up.fetched} bytes fetched)"
                       + (f"; removed {', '.join(removed)}" if removed else ""))
    except FetchError as exc:
        code, result, message = 1, "failed", f"fetch failure, nothing changed: {exc}"
    except BadUpdate as exc:
        code, result, message = 2, "failed", f"update rejected, nothing changed: {exc}"
    except InputError as exc:
        code, result = 2, "failed"
        message = "bad input, nothing changed: " + "; ".join(str(p) for p in exc.problems)
    except OSError as exc:
        code, result = 1, "failed"
        message = f"local failure, nothing changed: {exc.filename or ''} {exc.strerror or exc}"
    if result != "failed":
        status["last_success"] = status["last_attempt"]
    status.update(result=result, exit_code=code, message=message, build=build,
                  bytes_fetched=up.fetched, notes=up.notes)
    write_status(up.root, status)
    return code, message


def status_report(root: Path, max_age_days: float, now: datetime | None = None) \
        -> tuple[int, list[str], list[str]]:
    """(exit code, lines for stdout, lines for stderr) of `status`."""
    out, err = [], []
    current = current_build(root)
    path = current / BUILD_FILE if current else root / "current" / BUILD_FILE
    try:
        build = open_build(path)
    except BuildError as exc:
        return 1, out, [f"ALERT: no usable filter lists under {root}: {exc}"]
    categories = [f"{c} ({build.counts[c]})" for c in build.categories]
    build.close()
    assert current is not None
    try:
        manifest = json.loads((current / MANIFEST).read_text(encoding="utf-8"))
        created = datetime.strptime(manifest["created"], "%Y-%m-%dT%H:%M:%SZ") \
            .replace(tzinfo=timezone.utc)
    except (OSError, ValueError, KeyError):
        created = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    age = ((now or datetime.now(timezone.utc)) - created).total_seconds() / 86400
    out.append(f"build: {current.name}")
    out.append(f"created: {created:%Y-%m-%dT%H:%M:%SZ} ({age:.1f} days ago)")
    out.append(f"categories ({len(categories)}): {', '.join(categories)}")
    try:
        last = json.loads((root / "status.json").read_text(encoding="utf-8"))
        out.append(f"last attempt: {last.get('last_attempt')} {last.get('result')} "
                   f"({last.get('message')}); last success: {last.get('last_success')}")
    except (OSError, ValueError):
        out.append("last attempt: none recorded")
    if age > max_age_days:
        err.append(f"ALERT: filter lists of {root} are {age:.1f} days old "
                   f"(more than {max_age_days:g}): check cartable-filter-fetch's log and "
                   "the mirror")
        return 1, out, err
    return 0, out, err


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cartable-filter-fetch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    up = verbs.add_parser("update", help="fetch, verify and install the published lists")
    up.add_argument("--manifest-url", required=True, metavar="URL")
    up.add_argument("--public-key", required=True, type=Path, metavar="FILE")
    up.add_argument("--root", required=True, type=Path, metavar="DIR")
    up.add_argument("--proxy", metavar="URL", help="HTTP proxy (the academic proxy)")
    up.add_argument("--keep", type=int, default=3, metavar="N", help="builds kept (3)")
    up.add_argument("--jitter", type=float, default=0, metavar="SECONDS",
                    help="wait a random 0..SECONDS before starting (0)")
    up.add_argument("--policy", type=Path, metavar="POLICY.json",
                    help="refuse a build that lacks a category of this policy")
    up.add_argument("--timeout", type=float, default=60, metavar="SECONDS")
    up.add_argument("--retries", type=int, default=3, metavar="N",
                    help="manifest downloads when it and its signature do not match (3)")
    up.add_argument("--retry-delay", type=float, default=30, metavar="SECONDS")
    st = verbs.add_parser("status", help="print the current build; ALERT when too old")
    st.add_argument("--root", required=True, type=Path, metavar="DIR")
    st.add_argument("--max-age-days", required=True, type=float, metavar="N")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.verb == "status":
        code, out, err = status_report(args.root, args.max_age_days)
        for line in out:
            print(line)
        for line in err:
            print(line, file=sys.stderr)
        return code
    if args.keep < 1 or args.retries < 1 or args.jitter < 0:
        print("cartable-filter-fetch: --keep and --retries must be >= 1, --jitter >= 0",
              file=sys.stderr)
        return 2
    if args.jitter:
        time.sleep(random.uniform(0, args.jitter))
    up = Update(args.manifest_url, args.public_key, args.root, args.proxy, args.keep,
                args.policy, args.timeout, args.retries, args.retry_delay)
    code, message = update(up)
    for note in up.notes:
        print(f"cartable-filter-fetch: note: {note}", file=sys.stderr)
    print(f"cartable-filter-fetch: {message}", file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
