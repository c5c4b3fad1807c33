"""A small DSI image store as `cartable image build` lays it out: two versions of `essai`,
v2 sharing all but one chunk with v1 (zstd chunks named by the SHA-512/256 of their content)."""

import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path


def publish(store: Path, version: str, contents: list[bytes]) -> None:
    index = struct.pack("<QQQQQQ", 48, 0x96824D9C7B129FF9, 0, 16384, 65536, 262144)
    index += struct.pack("<QQ", 2**64 - 1, 0xE75B9E112F17417D)
    end = 0
    for content in contents:
        chunk_id = hashlib.new("sha512_256", content).hexdigest()
        path = store / "chunks.castr" / chunk_id[:4] / f"{chunk_id}.cacnk"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(subprocess.run(["zstd", "-q", "-c"], input=content,
                                        capture_output=True, check=True).stdout)
        end += len(content)
        index += struct.pack("<Q", end) + bytes.fromhex(chunk_id)
    index += struct.pack("<QQQQQ", 0, 0, 48, 16 + 40 * len(contents) + 40, 0x4B4F050E5549ECD1)
    folder = store / "essai" / version
    folder.mkdir(parents=True)
    (folder / "image.caidx").write_bytes(index)
    (folder / "manifest.json").write_text(json.dumps({
        "format": 1, "image": "essai", "version": version, "packages": {},
        "index": "image.caidx", "index_sha256": hashlib.sha256(index).hexdigest()}))
    (store / "essai" / "latest").write_text(version + "\n")


def blocks(seed: int, n: int) -> list[bytes]:
    return [hashlib.sha256(f"{seed}-{i}".encode()).digest() * 4096 for i in range(n)]


if __name__ == "__main__":
    out = Path(sys.argv[1])
    publish(out / "v1", "2026.1", blocks(1, 8))
    publish(out / "v2", "2026.1", blocks(1, 8))
    publish(out / "v2", "2026.2", blocks(1, 7) + blocks(2, 1))
