"""The compiled list: one binary file per build, verified at open, looked up by suffix.

Layout (little-endian):

    fixed header  80 bytes: magic "CARTFLT\\0", version u16, filter bits u16, header length u32,
                  entry count u64, category count u32, metadata length u32,
                  hash key (16 bytes), SHA-256 of everything after the fixed header (32 bytes)
    metadata      JSON (sorted keys): categories [{name, usage, domains, source_sha256}],
                  aliases {alias: category}; padded with NULs to a multiple of 8 bytes
    keys          count x u64: blake2b(name, digest_size=8, key=hash key), sorted ascending
    categories    count x u16: the category id (index in metadata) of each key
    prefilter     2^bits bits (>= 8 per entry): bit (key >> (64 - bits)) set for every key, so
                  that most unlisted names (~90 %) skip the binary search

A name listed in several categories has one entry per category (equal keys, adjacent).
The hash key is a format constant (stored in the header), not a per-build random value, so that
two builds of nearly equal lists are nearly equal files (nightly deltas stay small) and the same
inputs give the same bytes. A collision needs ~2^64/N work for a chosen listed name: out of
reach for a pupil. The file is mapped (mmap): several helper processes share the same pages, and
a swap costs no copy. Builds are written to a temporary name, verified, then renamed.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
import sys
import tempfile
from array import array
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cartable.errors import InputError, Problem
from cartable.filtering.lists import ListSet

MAGIC = b"CARTFLT\x00"
VERSION = 1
HASH_KEY = hashlib.blake2b(b"cartable filter format 1", digest_size=16).digest()
_FIXED = struct.Struct("<8sHHIQII16s32s")
MAX_CATEGORIES = 0xFFFF


class BuildError(Exception):
    """A compiled list that must not be used (absent, unreadable, truncated, corrupt)."""


def name_hasher(key: bytes) -> Callable[[str], int]:
    """The 64-bit keyed hash of a (normalised) name."""
    base = hashlib.blake2b(digest_size=8, key=key)

    def digest(name: str) -> int:
        h = base.copy()
        h.update(name.encode("ascii", "surrogateescape"))
        return int.from_bytes(h.digest(), "little")

    return digest


def _metadata(lists: ListSet) -> bytes:
    cats = [{"name": c.name, "usage": list(c.usage), "domains": len(c.domains),
             "source_sha256": c.source_sha256} for c in lists.categories]
    text = json.dumps({"format": "cartable-filter", "categories": cats,
                       "aliases": dict(sorted(lists.aliases.items()))},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def compile_lists(lists: ListSet, key: bytes = HASH_KEY) -> bytes:
    """The bytes of the compiled file; the same lists always give the same bytes."""
    categories = sorted(lists.categories, key=lambda c: c.name)
    if len(categories) > MAX_CATEGORIES:
        raise ValueError(f"{len(categories)} categories: at most {MAX_CATEGORIES}")
    lists = ListSet(tuple(categories), lists.aliases)
    digest = name_hasher(key)
    ordered: list[int] = []
    for cid, category in enumerate(categories):
        ordered.extend((digest(name) << 16) | cid for name in category.domains)
    ordered.sort()  # equal values (a 64-bit collision inside one category) are kept: harmless
    keys = array("Q", [v >> 16 for v in ordered])
    cats = array("H", [v & 0xFFFF for v in ordered])
    del ordered
    return assemble(keys, cats, _metadata(lists), key)


def assemble(keys: array, cats: array, meta: bytes, key: bytes = HASH_KEY) -> bytes:
    """The bytes of a compiled file from its entries: `keys` (array "Q") sorted ascending with
    `cats` (array "H", category ids, ascending among equal keys) parallel to it, and the
    metadata JSON. compile_lists and the nightly deltas (delta.py) both build files here, so a
    delta applied to a build gives the very bytes a full compile gives."""
    if len(keys) != len(cats):
        raise ValueError(f"{len(keys)} keys but {len(cats)} category ids")
    if sys.byteorder != "little":  # pragma: no cover
        keys, cats = array("Q", keys), array("H", cats)
        keys.byteswap()
        cats.byteswap()
    n_cats = len(json.loads(meta)["categories"])
    bits = max(16, (8 * len(keys) - 1).bit_length())
    prefilter = bytearray(1 << (bits - 3))
    shift = 64 - bits
    for k in keys:
        i = k >> shift
        prefilter[i >> 3] |= 1 << (i & 7)
    header_len = _FIXED.size + len(meta)
    pad = b"\0" * (-header_len % 8)
    header_len += len(pad)
    body = (meta, pad, keys, cats, prefilter)  # hashed and joined without copies in between
    digest = hashlib.sha256()
    for part in body:
        digest.update(part)
    fixed = _FIXED.pack(MAGIC, VERSION, bits, header_len, len(keys), n_cats, len(meta),
                        key, digest.digest())
    return b"".join((fixed, *body))


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_build(path: Path, data: bytes) -> None:
    """Write `data` at `path` by rename, after checking the temporary copy opens; never leaves
    a partial file at `path`."""
    folder = path.parent
    tmp = ""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        open_build(Path(tmp)).close()
        os.replace(tmp, path)
        tmp = ""
        fsync_dir(folder)
    except OSError as exc:
        raise InputError(Problem(str(exc.filename or path),
                                 f"cannot write the compiled list: {exc.strerror or exc}; "
                                 "nothing written", hint="check the folder's owner, mode and "
                                 "free space")) from None
    except BuildError as exc:  # pragma: no cover - would be a compiler bug
        raise InputError(Problem(str(path), f"the compiled list does not verify: {exc}")) \
            from None
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)


@dataclass
class Build:
    """An opened, verified compiled list."""

    path: str
    identity: tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns
    categories: tuple[str, ...]
    usage: dict[str, tuple[str, ...]]
    aliases: dict[str, str]
    counts: dict[str, int]
    keys: memoryview
    cats: memoryview
    prefilter: memoryview
    shift: int
    _map: mmap.mmap
    _hash: Callable[[str], int]
    metadata: bytes = b""  # the raw metadata JSON (what assemble() takes back)
    hash_key: bytes = HASH_KEY

    def __len__(self) -> int:
        return len(self.keys)

    def resolve(self, category: str) -> str | None:
        """A category name of this build, following aliases; None when absent."""
        name = self.aliases.get(category, category)
        return name if name in self.usage else None

    def lookup(self, host: str) -> list[tuple[str, str]]:
        """(suffix, category) for the host and each parent suffix listed, most specific first.
        `host` must be normalised (lists.normalize_name)."""
        found: list[tuple[str, str]] = []
        keys, cats, names, total = self.keys, self.cats, self.categories, len(self.keys)
        prefilter, shift = self.prefilter, self.shift
        suffix = host
        while True:
            h = self._hash(suffix)
            bit = h >> shift
            if prefilter[bit >> 3] >> (bit & 7) & 1:
                i = bisect_left(keys, h)
                while i < total and keys[i] == h:
                    found.append((suffix, names[cats[i]]))
                    i += 1
            dot = suffix.find(".")
            if dot < 0:
                return found
            suffix = suffix[dot + 1:]

    def close(self) -> None:
        self.keys.release()
        self.cats.release()
        self.prefilter.release()
        self._map.close()


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def open_build(path: Path) -> Build:
    """Open and verify a compiled list; BuildError saying why it must not be used."""
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            if st.st_size < _FIXED.size:
                raise BuildError(f"{path}: {st.st_size} bytes, shorter than the header "
                                 "(truncated or not a compiled list)")
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise BuildError(f"{path}: {exc.strerror or exc}") from None
    try:
        return _verify(path, mapped, _identity(st))
    except BuildError:
        mapped.close()
        raise


def _verify(path: Path, mapped: mmap.mmap, identity: tuple[int, int, int, int]) -> Build:
    magic, version, bits, header_len, count, n_cats, meta_len, key, sha = \
        _FIXED.unpack_from(mapped, 0)
    if magic != MAGIC:
        raise BuildError(f"{path}: not a compiled list (bad magic)")
    if version != VERSION:
        raise BuildError(f"{path}: format version {version}, this helper reads {VERSION}")
    if sys.byteorder != "little":  # pragma: no cover
        raise BuildError("this helper runs on a big-endian machine: unsupported")
    if not 16 <= bits <= 40:
        raise BuildError(f"{path}: prefilter of 2^{bits} bits (corrupt)")
    expected = header_len + count * 10 + (1 << (bits - 3))
    if len(mapped) != expected or header_len < _FIXED.size + meta_len or header_len % 8:
        raise BuildError(f"{path}: {len(mapped)} bytes where the header announces {expected} "
                         "(truncated or corrupt)")
    if hashlib.sha256(memoryview(mapped)[_FIXED.size:]).digest() != sha:
        raise BuildError(f"{path}: SHA-256 mismatch (corrupt)")
    try:
        meta = json.loads(bytes(mapped[_FIXED.size:_FIXED.size + meta_len]))
        names = tuple(c["name"] for c in meta["categories"])
        usage = {c["name"]: tuple(c["usage"]) for c in meta["categories"]}
        counts = {c["name"]: int(c["domains"]) for c in meta["categories"]}
        aliases = {str(a): str(t) for a, t in meta["aliases"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"{path}: unreadable metadata ({exc})") from None
    if len(names) != n_cats:
        raise BuildError(f"{path}: {len(names)} categories named, {n_cats} announced")
    view = memoryview(mapped)
    keys = view[header_len:header_len + count * 8].cast("Q")
    cats = view[header_len + count * 8:header_len + count * 10].cast("H")
    prefilter = view[header_len + count * 10:]
    view.release()
    if count and max(cats) >= n_cats:
        keys.release()
        cats.release()
        prefilter.release()
        raise BuildError(f"{path}: a category id out of range (corrupt)")
    return Build(str(path), identity, names, usage, aliases, counts, keys, cats, prefilter,
                 64 - bits, mapped, name_hasher(key),
                 bytes(mapped[_FIXED.size:_FIXED.size + meta_len]), key)
