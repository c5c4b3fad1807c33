"""The image store: one content-addressed chunk store shared by every image, and per version a
casync index and a manifest. Served as is over plain HTTP; a school's cache is a copy of it.

    STORE/chunks.castr/<4 hex>/<64 hex>.cacnk     zstd-compressed chunks (casync's layout)
    STORE/<image>/<version>/image.caidx           the directory archive's index
    STORE/<image>/<version>/manifest.json         what the version is (format below)
    STORE/<image>/latest                          the newest version's name (one line)

A restore environment extracts a version with
`casync extract --store=<STORE>/chunks.castr --seed=<old tree> <STORE>/<image>/<version>/image.caidx DIR`
and checks `casync digest DIR` against the manifest's `digest` (docs/images.md).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cartable.errors import InputError, Problem
from cartable.images.debver import catalog_version_key

CHUNKS = "chunks.castr"
INDEX = "image.caidx"
MANIFEST = "manifest.json"
FORMAT = 2          # 2: index_sha256 always present (the fetcher checks the index)
FORMATS = (1, 2)    # what the readers take (a format 1 manifest may lack index_sha256)
_CA_FORMAT_INDEX = 0x96824D9C7B129FF9
_CA_FORMAT_TABLE = 0xE75B9E112F17417D
_TABLE_TAIL = 0x4B4F050E5549ECD1


@dataclass(frozen=True)
class Chunk:
    end: int          # offset in the archive stream where the chunk ends
    id: str           # hex digest: its file is chunks.castr/<id[:4]>/<id>.cacnk


def read_index(path: Path) -> list[Chunk]:
    """The chunks of a casync index (.caidx/.caibx), in order."""
    data = path.read_bytes()
    if len(data) < 64 or struct.unpack_from("<QQ", data, 0)[1] != _CA_FORMAT_INDEX:
        raise InputError(Problem(str(path), "not a casync index", hint="give an image.caidx"))
    header_size = struct.unpack_from("<Q", data, 0)[0]
    size, kind = struct.unpack_from("<QQ", data, header_size)
    if kind != _CA_FORMAT_TABLE:
        raise InputError(Problem(str(path), "casync index without a chunk table"))
    chunks = []
    pos = header_size + 16
    while pos + 40 <= len(data):
        end = struct.unpack_from("<Q", data, pos)[0]
        chunk_id = data[pos + 8:pos + 40].hex()
        if end == 0:  # the tail: zero offset, then the table's size and marker
            break
        chunks.append(Chunk(end, chunk_id))
        pos += 40
    del size
    return chunks


def chunk_path(store: Path, chunk_id: str) -> Path:
    return store / CHUNKS / chunk_id[:4] / f"{chunk_id}.cacnk"


def chunk_bytes(store: Path, ids: set[str]) -> int:
    """Bytes on disk (compressed) of these chunks of the store."""
    return sum(chunk_path(store, i).stat().st_size for i in ids)


def store_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in (store / CHUNKS).rglob("*.cacnk"))


def version_dir(store: Path, image: str, version: str) -> Path:
    return store / image / version


def read_manifest(path: Path) -> dict[str, Any]:
    """A manifest: a manifest.json, or a version folder holding one."""
    if path.is_dir():
        path = path / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(Problem(str(path), "no such manifest",
                                 hint="give STORE/<image>/<version>/manifest.json")) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(Problem(str(path), f"not a manifest (bad JSON: {exc})")) from None
    if not isinstance(data, dict) or data.get("format") not in FORMATS or \
            not isinstance(data.get("packages"), dict):
        raise InputError(Problem(str(path), f"not a Cartable image manifest (format {FORMAT})"))
    return data


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def latest_versions(store: Path) -> dict[str, str]:
    """{image: its highest version} of the manifests in the store."""
    out: dict[str, str] = {}
    for manifest in sorted(store.glob(f"*/*/{MANIFEST}")):
        image, version = manifest.parent.parent.name, manifest.parent.name
        key = catalog_version_key(version)
        if key is None:
            continue
        if image not in out or key > (catalog_version_key(out[image]) or ()):
            out[image] = version
    return out
