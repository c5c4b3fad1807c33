"""Nightly deltas between two compiled lists (format-aware: entries, not bytes).

A compiled file (compiled.py) is sorted 64-bit keys + parallel category ids + a prefilter
derived from the keys + metadata. A delta is what a school needs to rebuild the new file from
its current one, byte for byte:

    fixed header  104 bytes: magic "CARTFLD\\0", version u16, reserved u16, metadata length u32,
                  removed count u64, added count u64, hash key (16 bytes),
                  SHA-256 of the old file (32 bytes), SHA-256 of the new file (32 bytes)
    metadata      the new file's metadata JSON (categories, sizes, aliases)
    removed       keys (u64 each) then category ids in the OLD file (u16 each), in file order
    added         keys (u64 each) then category ids in the NEW file (u16 each), in file order

Published compressed (lzma, `.cfd.xz`). Applying it (`apply_delta`) checks the old file's
SHA-256, removes and inserts the entries, renumbers categories when the set of categories
changed, and assembles the file with compiled.assemble: the result's SHA-256 must equal the
new one (checked here, and by the fetcher against the signed manifest).

Runs on the school server: Python 3.11 standard library only.
"""

from __future__ import annotations

import hashlib
import json
import struct
from array import array
from bisect import bisect_left

from cartable.filtering.compiled import Build, assemble

MAGIC = b"CARTFLD\x00"
VERSION = 1
_FIXED = struct.Struct("<8sHHIQQ16s32s32s")
_BLOCK = 4096  # entries compared at once when skipping identical runs


class DeltaError(Exception):
    """A delta that cannot be applied (corrupt, or made for another build)."""


def build_sha256(build: Build) -> str:
    """SHA-256 (hex) of a whole opened compiled file."""
    return hashlib.sha256(build._map).hexdigest()


def _names(meta: bytes) -> list[str]:
    return [c["name"] for c in json.loads(meta)["categories"]]


def _ranks(old: list[str], new: list[str]) -> tuple[list[int], list[int]]:
    """Category ids of both files mapped to one order (by name, as compile sorts them)."""
    union = {name: rank for rank, name in enumerate(sorted(set(old) | set(new)))}
    return [union[n] for n in old], [union[n] for n in new]


def make_delta(old: Build, new: Build) -> bytes:
    """The (uncompressed) delta that turns the file of `old` into the file of `new`."""
    if old.hash_key != new.hash_key:
        raise ValueError("the two builds use different hash keys: no delta possible")
    old_rank, new_rank = _ranks(list(old.categories), list(new.categories))
    same_ids = old_rank == new_rank
    ok, oc, nk, nc = old.keys, old.cats, new.keys, new.cats
    okb, ocb, nkb, ncb = (v.cast("B") for v in (ok, oc, nk, nc))
    removed: list[tuple[int, int]] = []
    added: list[tuple[int, int]] = []
    i = j = 0
    n, m = len(ok), len(nk)
    while i < n and j < m:
        if same_ids and i + _BLOCK <= n and j + _BLOCK <= m \
                and okb[i * 8:(i + _BLOCK) * 8] == nkb[j * 8:(j + _BLOCK) * 8] \
                and ocb[i * 2:(i + _BLOCK) * 2] == ncb[j * 2:(j + _BLOCK) * 2]:
            i += _BLOCK
            j += _BLOCK
            continue
        stop = i + _BLOCK
        while i < n and j < m and i < stop:
            a, b = ok[i], nk[j]
            if a == b:
                ra, rb = old_rank[oc[i]], new_rank[nc[j]]
                if ra == rb:
                    i += 1
                    j += 1
                elif ra < rb:
                    removed.append((a, oc[i]))
                    i += 1
                else:
                    added.append((b, nc[j]))
                    j += 1
            elif a < b:
                removed.append((a, oc[i]))
                i += 1
            else:
                added.append((b, nc[j]))
                j += 1
    removed.extend((ok[x], oc[x]) for x in range(i, n))
    added.extend((nk[x], nc[x]) for x in range(j, m))
    for view in (okb, ocb, nkb, ncb):
        view.release()
    return _encode(old, new, removed, added)


def _encode(old: Build, new: Build, removed: list[tuple[int, int]],
            added: list[tuple[int, int]]) -> bytes:
    parts = [_FIXED.pack(MAGIC, VERSION, 0, len(new.metadata), len(removed), len(added),
                         new.hash_key, bytes.fromhex(build_sha256(old)),
                         bytes.fromhex(build_sha256(new))), new.metadata]
    for entries in (removed, added):
        keys = array("Q", [k for k, _ in entries])
        cats = array("H", [c for _, c in entries])
        parts += [keys.tobytes(), cats.tobytes()]
    return b"".join(parts)


def delta_shas(delta: bytes) -> tuple[str, str]:
    """(old file SHA-256, new file SHA-256) a delta is made for; DeltaError when unreadable."""
    fields = _header(delta)
    return fields[7].hex(), fields[8].hex()


def _header(delta: bytes) -> tuple:  # type: ignore[type-arg]
    if len(delta) < _FIXED.size:
        raise DeltaError(f"{len(delta)} bytes, shorter than a delta header (truncated)")
    fields = _FIXED.unpack_from(delta, 0)
    if fields[0] != MAGIC:
        raise DeltaError("not a delta (bad magic)")
    if fields[1] != VERSION:
        raise DeltaError(f"delta format version {fields[1]}, this reads {VERSION}")
    meta_len, n_removed, n_added = fields[3], fields[4], fields[5]
    if len(delta) != _FIXED.size + meta_len + 10 * (n_removed + n_added):
        raise DeltaError(f"{len(delta)} bytes, not what its header announces (truncated)")
    return fields


def _entries(delta: bytes, offset: int, count: int) -> tuple[array, array, int]:
    keys, cats = array("Q"), array("H")
    keys.frombytes(delta[offset:offset + 8 * count])
    offset += 8 * count
    cats.frombytes(delta[offset:offset + 2 * count])
    return keys, cats, offset + 2 * count


def apply_delta(old: Build, delta: bytes) -> bytes:
    """The new file's bytes: `old` with the delta applied; DeltaError when the delta does not
    fit `old` or the result is not the file it announces."""
    _, _, _, meta_len, n_removed, n_added, key, old_sha, new_sha = _header(delta)
    if build_sha256(old) != old_sha.hex():
        raise DeltaError("this delta was made for another build than the current one")
    if key != old.hash_key:
        raise DeltaError("the delta's hash key is not the current build's")
    meta = bytes(delta[_FIXED.size:_FIXED.size + meta_len])
    try:
        new_names = _names(meta)
    except (ValueError, KeyError, TypeError) as exc:
        raise DeltaError(f"unreadable metadata in the delta ({exc})") from None
    old_names = list(old.categories)
    old_rank, new_rank = _ranks(old_names, new_names)
    r_keys, r_cats, offset = _entries(delta, _FIXED.size + meta_len, n_removed)
    a_keys, a_cats, _ = _entries(delta, offset, n_added)
    if any(c >= len(old_names) for c in r_cats) or any(c >= len(new_names) for c in a_cats):
        raise DeltaError("a category id out of range in the delta (corrupt)")
    keys, cats = old.keys, old.cats
    # old positions to drop, then insertion points (in old positions) of the added entries
    drop: list[int] = []
    lo = 0
    for k, c in zip(r_keys, r_cats):
        i = bisect_left(keys, k, lo)
        while i < len(keys) and keys[i] == k and cats[i] != c:
            i += 1
        if i >= len(keys) or keys[i] != k:
            raise DeltaError("the delta removes an entry the current build does not have")
        drop.append(i)
        lo = i + 1
    inserts: list[int] = []
    lo = 0
    for k, c in zip(a_keys, a_cats):
        p = bisect_left(keys, k, lo)
        while p < len(keys) and keys[p] == k and old_rank[cats[p]] < new_rank[c]:
            p += 1
        inserts.append(p)
        lo = p
    new_id = {name: i for i, name in enumerate(new_names)}
    if old_names == new_names:
        cat_bytes = cats.cast("B")
    else:
        dropped = set(drop)
        lost = {old_names[cats[i]] for i in range(len(cats)) if i not in dropped
                and old_names[cats[i]] not in new_id}
        if lost:
            raise DeltaError(f"the delta keeps entries of removed categories {sorted(lost)}")
        table = [new_id.get(n, 0) for n in old_names]
        cat_bytes = memoryview(array("H", [table[c] for c in cats]).tobytes())
    key_bytes = keys.cast("B")
    out_keys, out_cats = array("Q"), array("H")
    pos = 0
    events = sorted([(p, 0, x) for x, p in enumerate(inserts)] + [(p, 1, 0) for p in drop])
    for p, kind, x in events:
        if p > pos:
            out_keys.frombytes(key_bytes[pos * 8:p * 8])
            out_cats.frombytes(cat_bytes[pos * 2:p * 2])
            pos = p
        if kind == 0:
            out_keys.append(a_keys[x])
            out_cats.append(a_cats[x])
        else:
            pos = p + 1
    out_keys.frombytes(key_bytes[pos * 8:])
    out_cats.frombytes(cat_bytes[pos * 2:])
    key_bytes.release()
    cat_bytes.release()
    data = assemble(out_keys, out_cats, meta, key)
    if hashlib.sha256(data).hexdigest() != new_sha.hex():
        raise DeltaError("the rebuilt list is not the one the delta announces (corrupt delta)")
    return data
