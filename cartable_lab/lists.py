"""The lab's filtering lists: UT1's publisher and the DSI's mirror job, as in production.

- The "UT1 publisher" is the internet container serving `blacklists.tar.gz` (a reproducible
  tarball of the sample the repo ships, data/ut1-blacklists) at http://ut1.cartable.test/.
- The DSI's mirror job is `cartable filter publish`, run here by the controller through the
  academic proxy (as the DSI's mirror host does at night): it verifies, compiles and signs,
  into .cache/lab/www/lists, which the internet container serves as http://listes.dsi.cartable.test/.
- The signing key is generated at lab time (.cache/lab/filter/lists.key, never committed); its
  public half goes to the connection inventory (school_proxy__lists_public_key).
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from cartable_lab.common import ROOT, STATE, VENV_BIN, LabError, log, run

UT1_SAMPLE = ROOT / "data" / "ut1-blacklists"
KEY = STATE / "filter" / "lists.key"
WWW = STATE / "www"


def ut1_tarball(source: Path = UT1_SAMPLE) -> bytes:
    """blacklists.tar.gz as UT1 lays it out (blacklists/<category>/domains...), byte-stable:
    sorted members, fixed owner and times, symlinks kept (UT1's aliases)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source)
            if rel.parts[0].startswith(".") or path.suffix in (".md", ".pdf"):
                continue
            info = tar.gettarinfo(str(path), arcname=str(Path("blacklists") / rel))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            info.mode = 0o755 if info.isdir() else 0o644
            if info.isfile():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def write_if_changed(path: Path, data: bytes) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_bytes() == data:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(path)
    return True


def public_key() -> str:
    """The publication's public key (text), generating the key pair on first use."""
    if not KEY.exists():
        KEY.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        run([str(VENV_BIN / "cartable"), "filter", "keygen", "--out", str(KEY)])
    return Path(str(KEY) + ".pub").read_text().strip()


def publish(model: dict) -> None:
    """Serve the UT1 tarball, then run the DSI's mirror job through the academic proxy."""
    topo = model["topology"]
    sites = {folder: name for name, folder in (topo["internet"].get("file_sites") or {}).items()}
    if "ut1" not in sites or "lists" not in sites:
        raise LabError("tests/lab/topology.yml: internet.file_sites must name the `ut1` and `lists` folders")
    if write_if_changed(WWW / "ut1" / "blacklists.tar.gz", ut1_tarball()):
        log(f"UT1 origin: {WWW / 'ut1' / 'blacklists.tar.gz'} (from {UT1_SAMPLE.relative_to(ROOT)})")
    (WWW / "lists").mkdir(parents=True, exist_ok=True)
    public_key()
    proxy = topo["academic_proxy"]
    proc = run([str(VENV_BIN / "cartable"), "filter", "publish",
                "--origin", f"http://{sites['ut1']}/blacklists.tar.gz",
                "--proxy", f"http://{proxy['addresses']['academic']}:{proxy['port']}",
                "--publish", str(WWW / "lists"), "--key", str(KEY),
                "--state", str(STATE / "filter" / "mirror")], check=False)
    if proc.returncode != 0:
        raise LabError(f"cartable filter publish failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    log("DSI publication: " + (proc.stdout.strip().splitlines() or ["done"])[-1])


def connection_vars(model: dict) -> dict:
    """What the school servers need to fetch the lab's publication."""
    sites = {folder: name for name, folder in (model["topology"]["internet"].get("file_sites") or {}).items()}
    return {"school_proxy__lists_manifest_url": f"http://{sites['lists']}/manifest.json",
            "school_proxy__lists_public_key": public_key()}
