"""Debian's package lists: read a `Packages` index, fetch it (signed, cached), resolve a set.

The resolver answers "does this package set install?" well enough to catch a catalog mistake
before a build: it follows Depends and Pre-Depends (alternatives, versions, Provides) from the
requested packages and the base system, choosing the first alternative that exists, as apt
does by default. It does not weigh Conflicts/Breaks: the build (apt inside mmdebstrap) does
and fails with apt's own message. It runs in milliseconds, without root or apt, so CI and the
adviser's merge request get the answer at once with the catalog's line.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import re
import shutil
import subprocess
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from cartable.errors import InputError, Problem
from cartable.images.debver import satisfies

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
_FIELDS = ("Package", "Version", "Architecture", "Provides", "Depends", "Pre-Depends",
           "Priority", "Essential", "Installed-Size")
_DEP_RE = re.compile(r"^\s*([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?\s*"
                     r"(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^)\s]+)\s*\))?\s*(?:\[[^]]*\])?\s*(?:<[^>]*>\s*)*$")


@dataclass(frozen=True)
class Dep:
    name: str
    relation: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.name} ({self.relation} {self.version})" if self.relation else self.name


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    priority: str = "optional"
    essential: bool = False
    installed_kb: int = 0
    depends: tuple[tuple[Dep, ...], ...] = ()
    provides: tuple[Dep, ...] = ()


@dataclass
class Index:
    """Every package of a Packages file, by name, and who provides each virtual name."""

    packages: dict[str, Package] = field(default_factory=dict)
    providers: dict[str, list[tuple[Package, str | None]]] = field(default_factory=dict)

    def base(self) -> list[str]:
        """What mmdebstrap's minbase variant installs first: Essential, required, apt."""
        names = {p.name for p in self.packages.values() if p.essential or p.priority == "required"}
        return sorted(names | ({"apt"} & self.packages.keys()))


def parse_relations(text: str) -> tuple[tuple[Dep, ...], ...]:
    """'a (>= 1) | b, c:any' -> ((a>=1, b), (c,)); unparseable alternatives are skipped."""
    groups = []
    for group in text.split(","):
        alts = []
        for alt in group.split("|"):
            match = _DEP_RE.match(alt)
            if match:
                alts.append(Dep(match[1], match[2], match[3]))
        if alts:
            groups.append(tuple(alts))
    return tuple(groups)


def _stanzas(text: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                out.append(current)
            current = {}
        elif line[0] in " \t":
            if key in current:
                current[key] += " " + line.strip()
        else:
            key, _, value = line.partition(":")
            current[key] = value.strip()
    if current:
        out.append(current)
    return out


def read_text(path: Path) -> str:
    """A Packages file's text: plain, .xz or .gz."""
    data = path.read_bytes()
    if data[:6] == b"\xfd7zXZ\x00":
        data = lzma.decompress(data)
    elif data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", "replace")


def parse_index(text: str) -> Index:
    index = Index()
    for stanza in _stanzas(text):
        name, version = stanza.get("Package"), stanza.get("Version")
        if not name or not version:
            continue
        pkg = Package(
            name=name, version=version, priority=stanza.get("Priority", "optional"),
            essential=stanza.get("Essential") == "yes",
            installed_kb=int(stanza.get("Installed-Size", "0") or 0),
            depends=parse_relations(stanza.get("Pre-Depends", "")) +
            parse_relations(stanza.get("Depends", "")),
            provides=tuple(alt for group in parse_relations(stanza.get("Provides", ""))
                           for alt in group))
        old = index.packages.get(name)
        if old is None or satisfies(version, ">>", old.version):
            index.packages[name] = pkg
    for pkg in index.packages.values():
        for prov in pkg.provides:
            index.providers.setdefault(prov.name, []).append((pkg, prov.version))
    return index


def trim(text: str, keep: set[str]) -> str:
    """The stanzas of `keep` only, with the fields the resolver reads (test fixtures)."""
    out = []
    for stanza in _stanzas(text):
        if stanza.get("Package") in keep:
            out.append("".join(f"{k}: {stanza[k]}\n" for k in _FIELDS if k in stanza))
    return "\n".join(out)


# --- resolving -----------------------------------------------------------------------------

@dataclass
class Resolution:
    installed: dict[str, Package]
    missing: list[str]                         # requested names the archive does not have
    unresolved: list[tuple[list[str], str]]    # (chain from a requested package, the dependency)

    @property
    def installed_kb(self) -> int:
        return sum(p.installed_kb for p in self.installed.values())


def _candidate(index: Index, dep: Dep) -> Package | None:
    pkg = index.packages.get(dep.name)
    if pkg and (dep.relation is None or satisfies(pkg.version, dep.relation, dep.version or "")):
        return pkg
    for provider, prov_version in index.providers.get(dep.name, []):
        if dep.relation is None or (prov_version and
                                    satisfies(prov_version, dep.relation, dep.version or "")):
            return provider
    return None


def _met(chosen: dict[str, Package], index: Index, dep: Dep) -> bool:
    pkg = chosen.get(dep.name)
    if pkg and (dep.relation is None or satisfies(pkg.version, dep.relation, dep.version or "")):
        return True
    return any(provider.name in chosen and
               (dep.relation is None or (v and satisfies(v, dep.relation, dep.version or "")))
               for provider, v in index.providers.get(dep.name, []))


def resolve(index: Index, wanted: list[str], base: list[str] | None = None) -> Resolution:
    """Install `base` then `wanted`, following dependencies; report what cannot be met."""
    chosen: dict[str, Package] = {}
    parents: dict[str, str | None] = {}
    queue: deque[str] = deque()
    missing = []
    for name in list(base if base is not None else index.base()) + list(wanted):
        pkg = _candidate(index, Dep(name))
        if pkg is None:
            missing.append(name)
        elif pkg.name not in chosen:
            chosen[pkg.name] = pkg
            parents[pkg.name] = None
            queue.append(pkg.name)
    unresolved = []
    while queue:
        pkg = chosen[queue.popleft()]
        for group in pkg.depends:
            if any(_met(chosen, index, d) for d in group):
                continue
            pick = next((c for c in (_candidate(index, d) for d in group) if c), None)
            if pick is None:
                unresolved.append((_chain(parents, pkg.name), " | ".join(map(str, group))))
            elif pick.name not in chosen:
                chosen[pick.name] = pick
                parents[pick.name] = pkg.name
                queue.append(pick.name)
    return Resolution(chosen, missing, unresolved)


def _chain(parents: dict[str, str | None], name: str) -> list[str]:
    chain = [name]
    while parents.get(chain[-1]):
        chain.append(parents[chain[-1]] or "")
    return chain[::-1]


# --- fetching ------------------------------------------------------------------------------

def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - http(s) mirror
            return response.read()
    except OSError as exc:
        raise InputError(Problem(url, f"cannot download: {exc}",
                                 hint="check the mirror in the catalog and the network/proxy "
                                 "(http_proxy), or give --packages FILE")) from None


def fetch_index(mirror: str, suite: str, component: str, arch: str, cache: Path) -> Path:
    """The suite's Packages.xz, verified (InRelease signature, SHA-256), cached by digest."""
    base = f"{mirror.rstrip('/')}/dists/{suite}"
    release = _get(f"{base}/InRelease")
    if not (shutil.which("gpgv") and KEYRING.exists()):
        raise InputError(Problem(f"{base}/InRelease", "cannot verify the archive's signature",
                                 hint="apt-get install gpgv debian-archive-keyring"))
    verified = subprocess.run(["gpgv", "--keyring", str(KEYRING), "--output", "-", "-"],
                              input=release, capture_output=True, check=False)
    if verified.returncode != 0:
        raise InputError(Problem(f"{base}/InRelease", "bad signature: "
                                 + verified.stderr.decode(errors="replace").strip()[-200:]))
    wanted = f"{component}/binary-{arch}/Packages.xz"
    sha = _sha256_of(verified.stdout.decode(errors="replace"), wanted)
    if sha is None:
        raise InputError(Problem(f"{base}/InRelease", f"{wanted} is not listed",
                                 hint="check suite, component and architecture in the catalog"))
    path = cache / f"{suite}_{component}_{arch}_{sha[:16]}_Packages.xz"
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == sha:
        return path
    data = _get(f"{base}/{wanted}")
    if hashlib.sha256(data).hexdigest() != sha:
        raise InputError(Problem(f"{base}/{wanted}", "SHA-256 differs from InRelease",
                                 hint="the mirror is being updated: try again in a few minutes"))
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def _sha256_of(release: str, name: str) -> str | None:
    in_sha256 = False
    for line in release.splitlines():
        if line and not line[0].isspace():
            in_sha256 = line.startswith("SHA256:")
        elif in_sha256:
            parts = line.split()
            if len(parts) == 3 and parts[2] == name:
                return parts[0]
    return None
