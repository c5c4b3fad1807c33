"""The lab's images (base: debootstrapped Debian 12 with systemd; infra: the surroundings'
services), tagged by the hash of their recipe (tests/lab/image/ and the host's mirrors)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from cartable_lab.common import (BASE_REPO, DEBIAN_SUITES, IMAGE_DIR, INFRA_REPO, LABEL, STATE, LabError,
                                 docker, log, run, sha, stage)


def parse_apt_sources() -> list[tuple[str, list[str]]]:
    """(uri, suites) of every enabled `deb` source of the host, in apt's order."""
    found: list[tuple[str, list[str]]] = []
    one_line = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(line) >= 3 and line[0] == "deb":
                found.append((line[1], [line[2]]))
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if "deb" not in fields.get("types", "").split():
                continue
            for uri in fields.get("uris", "").split():
                found.append((uri, fields.get("suites", "").split()))
    return found


def host_mirrors() -> tuple[str, str]:
    """The host's Debian mirror and security mirror (CARTABLE_LAB_MIRROR overrides the first)."""
    sources = parse_apt_sources()
    mirror = os.environ.get("CARTABLE_LAB_MIRROR", "")
    security = os.environ.get("CARTABLE_LAB_SECURITY_MIRROR", "")
    if not mirror:
        for uri, suites in sources:
            if any(s in DEBIAN_SUITES for s in suites):
                mirror = uri
                break
    if not security:
        for uri, suites in sources:
            if any(s.endswith("-security") or s.endswith("/updates") for s in suites):
                security = uri
                break
    if not mirror:
        raise LabError("no Debian mirror found in /etc/apt/sources.list*: set CARTABLE_LAB_MIRROR")
    return mirror.rstrip("/"), security.rstrip("/")


def recipe_files() -> list[Path]:
    """The files of the image recipe (tests/lab/image/), sorted."""
    return sorted(p for p in IMAGE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def recipe_hashes() -> tuple[str, str]:
    """(base, infra) recipe hashes: every file of tests/lab/image plus the mirrors used."""
    mirror, security = host_mirrors()
    base = hashlib.sha256()
    for path in recipe_files():
        if path.name == "Dockerfile.infra":
            continue
        rel = path.relative_to(IMAGE_DIR).as_posix()
        mode = "x" if os.access(path, os.X_OK) else "-"
        base.update(f"{rel}\0{mode}\0".encode() + path.read_bytes() + b"\0")
    base.update(f"mirror={mirror}\0security={security}".encode())
    base_hash = base.hexdigest()[:12]
    infra_hash = sha(base_hash + (IMAGE_DIR / "Dockerfile.infra").read_text())
    return base_hash, infra_hash


def image_tags() -> dict[str, str]:
    """The base and infra image tags of the current recipe."""
    base_hash, infra_hash = recipe_hashes()
    return {"base": f"{BASE_REPO}:{base_hash}", "infra": f"{INFRA_REPO}:{infra_hash}"}


def image_exists(tag: str) -> bool:
    """Whether docker has an image of that tag."""
    return run(["docker", "image", "inspect", tag], check=False).returncode == 0


def docker_build(dockerfile: Path, tag: str, build_args: dict[str, str], recipe: str) -> None:
    """Build an image with the legacy builder from an empty context, labelled with its recipe hash."""
    env = dict(os.environ, DOCKER_BUILDKIT="0")  # the legacy builder: docker.io 20.10 has no buildx
    with tempfile.TemporaryDirectory() as context:
        cmd = ["docker", "build", "--quiet", "-f", str(dockerfile), "-t", tag,
               "--label", f"{LABEL}=image", "--label", f"{LABEL}.recipe={recipe}"]
        for key, value in build_args.items():
            cmd += ["--build-arg", f"{key}={value}"]
        run([*cmd, context], env=env)


def build_images(force: bool = False) -> dict[str, str]:
    """Build the base and infra images unless an image of the current recipe exists; their tags."""
    tags = image_tags()
    mirror, security = host_mirrors()
    base_hash = tags["base"].split(":")[1]
    if force or not image_exists(tags["base"]):
        if os.geteuid() != 0:
            raise LabError("building the base image needs root (debootstrap)")
        with stage(f"image: debootstrap Debian 12 from {mirror}"):
            workdir = STATE / "image"
            workdir.mkdir(parents=True, exist_ok=True)
            tar = workdir / f"rootfs-{base_hash}.tar"
            try:
                run([str(IMAGE_DIR / "rootfs.sh"), str(tar), mirror, security], capture=False)
                rootfs_tag = f"{BASE_REPO}:rootfs-{base_hash}"
                run(["docker", "import", "--message", f"cartable lab rootfs {base_hash}",
                     str(tar), rootfs_tag])
            finally:
                tar.unlink(missing_ok=True)
        with stage("image: base layer (stop signal, init)"):
            docker_build(IMAGE_DIR / "Dockerfile.base", tags["base"], {"ROOTFS": rootfs_tag}, base_hash)
            docker("rmi", rootfs_tag, check=False)
    else:
        log(f"image {tags['base']} is up to date (recipe unchanged)")
    docker("tag", tags["base"], f"{BASE_REPO}:latest")
    if force or not image_exists(tags["infra"]):
        with stage("image: infra (squid, nginx, ippeveprinter, dhclient)"):
            docker_build(IMAGE_DIR / "Dockerfile.infra", tags["infra"], {"BASE": tags["base"]},
                         tags["infra"].split(":")[1])
    else:
        log(f"image {tags['infra']} is up to date (recipe unchanged)")
    docker("tag", tags["infra"], f"{INFRA_REPO}:latest")
    return tags
