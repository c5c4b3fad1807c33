"""The image catalog (images/catalog.yml): what teachers chose, edited by the ICT advisers.

Reading it checks its shape (file, line, key); `check_packages` checks every package against
Debian's package lists and that each image's set resolves; `check_versions` that no image's
version goes backwards from the store's last build. See docs/images.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cartable.errors import InputError, Problem
from cartable.files import read_text
from cartable.images.archive import Index, resolve
from cartable.images.debver import catalog_version_key
from cartable.yamlsrc import Ctx, boolean, list_of, load_with_lines, map_of, mapping, text

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
_PKG_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
PROXY_MODES = ("wpad", "none")
PRINTER_MODES = ("server", "none")
POCKETS = ("updates", "security")
# settings.workstation (the default): what makes a tree a PC that boots from its disk after a
# restore, takes its address by DHCP and can be managed by the school server's relay (ssh +
# python3). Without it the tree is a chroot (a container or a test), its manifest says
# bootable: false and netboot never restores it.
WORKSTATION_PACKAGES = ("linux-image-amd64", "systemd-sysv", "udev", "ifupdown",
                        "isc-dhcp-client", "openssh-server", "python3", "sudo")
# settings.connection_user: the account the school server's relay logs into a restored PC as
# (the inventory's ansible_user for workstations): in the image, locked (no password), sudo
# without password; netboot's restore writes its authorized_keys (the relay's key).
_LOGIN_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Debian:
    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    security_mirror: str | None = "http://deb.debian.org/debian-security"
    components: tuple[str, ...] = ("main",)
    architecture: str = "amd64"
    variant: str = "minbase"
    pockets: tuple[str, ...] = ("updates", "security")   # besides the release: what a point release folds in


@dataclass(frozen=True)
class Settings:
    locale: str = "fr_FR.UTF-8"
    keyboard: str = "fr"
    timezone: str = "Europe/Paris"
    proxy: str = "wpad"
    printers: str = "server"
    workstation: bool = True       # a PC's image: kernel, network, SSH (see WORKSTATION_PACKAGES)
    connection_user: str = "cartable"   # workstation only; "" for none


@dataclass(frozen=True)
class Image:
    name: str
    title: str
    version: str
    base: str
    sets: tuple[str, ...]
    packages: tuple[str, ...]      # the whole request: base + sets + own packages, sorted
    line: int
    version_line: int
    lines: dict[str, int]          # package -> catalog line where it is named (first)


@dataclass(frozen=True)
class Catalog:
    path: Path
    debian: Debian
    settings: Settings
    images: dict[str, Image]

    def image(self, name: str) -> Image:
        if name not in self.images:
            raise InputError(Problem(str(self.path), f"unknown image '{name}'", field="images",
                                     hint="known images: " + ", ".join(sorted(self.images))))
        return self.images[name]


def _name_key(key: Any, ctx: Ctx) -> str | None:
    return None if isinstance(key, str) and _NAME_RE.match(key) else \
        f"'{key}' is not a simple name (lower-case letters, digits, '-')"


def _package(raw: Any, ctx: Ctx) -> Any:
    value = text(raw, ctx)
    if value and not _PKG_RE.match(value):
        ctx.fail(f"'{value}' is not a Debian package name",
                 "package names are lower-case: letters, digits, '+', '-', '.'")
    return value


def _login(raw: Any, ctx: Ctx) -> Any:
    value = text(raw, ctx)
    if value == "root" or (value and not _LOGIN_RE.match(value)):
        ctx.fail(f"'{value}' cannot be the connection user",
                 "a Linux login other than root: lower-case letters, digits, '_', '-' "
                 "(32 at most), e.g. cartable (the workstations' ansible_user); '' for none")
    return value


def _choice(*allowed: str) -> Any:
    def check(raw: Any, ctx: Ctx) -> Any:
        if raw not in allowed:
            ctx.fail(f"'{raw}' is not one of: {', '.join(allowed)}")
        return raw
    return check


SCHEMA = mapping({
    "debian": mapping({
        "suite": text, "mirror": text, "security_mirror": text,
        "components": list_of(text), "architecture": text,
        "variant": _choice("minbase", "required", "important", "standard"),
        "pockets": list_of(_choice(*POCKETS)),
    }),
    "settings": mapping({
        "locale": text, "keyboard": text, "timezone": text,
        "proxy": _choice(*PROXY_MODES), "printers": _choice(*PRINTER_MODES),
        "workstation": boolean, "connection_user": _login,
    }),
    "bases": map_of(_name_key, list_of(_package)),
    "sets": map_of(_name_key, list_of(_package)),
    "images": map_of(_name_key, mapping({
        "title": text, "version": text, "base": text,
        "sets": list_of(text), "packages": list_of(_package),
    }, required=("version", "base"))),
}, required=("images",))


def read_catalog(path: Path) -> Catalog:
    """Read and validate a catalog; InputError listing every problem."""
    if path.is_dir():
        raise InputError(Problem(str(path), "this is a folder; give the catalog file in it",
                                 hint=f"e.g. {path / 'catalog.yml'}"))
    raw = load_with_lines(read_text(path, "image catalog", "e.g. images/catalog.yml"), str(path))
    return parse_catalog(raw, path)


def parse_catalog(raw: Any, path: Path) -> Catalog:
    filename = str(path)
    if not isinstance(raw, dict):
        raise InputError(Problem(filename, "the catalog must be a YAML mapping",
                                 hint="see images/catalog.yml"))
    problems: list[Problem] = []
    data = SCHEMA(raw, Ctx(filename, problems))
    images: dict[str, Image] = {}
    bases, sets = data.get("bases", {}), data.get("sets", {})
    for name, spec in data.get("images", {}).items():
        image = _image(name, spec, raw["images"][name], bases, sets, raw, filename, problems)
        if image:
            images[name] = image
    if problems:
        raise InputError(problems)
    deb = data.get("debian", {})
    debian = Debian(**{k: tuple(v) if isinstance(v, list) else v for k, v in deb.items()})
    return Catalog(path, debian, Settings(**data.get("settings", {})), images)


def _image(name: str, spec: dict[str, Any], raw: Any, bases: dict[str, list[str]],
           sets: dict[str, list[str]], top: Any, filename: str,
           problems: list[Problem]) -> Image | None:
    lines = getattr(raw, "lines", {})
    line = top["images"].lines[name]
    start = len(problems)
    version = spec.get("version", "")
    if catalog_version_key(version) is None:
        problems.append(Problem(filename, f"version '{version}' of image '{name}' is not "
                                "numbers separated by dots", lines.get("version"),
                                f"images.{name}.version", "e.g. '2026.1' (quote it)"))
    base = spec.get("base", "")
    if base not in bases:
        problems.append(Problem(filename, f"image '{name}' names unknown base '{base}'",
                                lines.get("base"), f"images.{name}.base",
                                "known bases: " + (", ".join(sorted(bases)) or "none")))
    for index, set_name in enumerate(spec.get("sets", [])):
        if set_name not in sets:
            problems.append(Problem(filename, f"image '{name}' names unknown package set "
                                    f"'{set_name}'", raw["sets"].lines[index],
                                    f"images.{name}.sets",
                                    "known sets: " + (", ".join(sorted(sets)) or "none")))
    if len(problems) > start:
        return None
    where: dict[str, int] = {}
    sources = [(top["bases"][base], bases[base])] + \
        [(top["sets"][s], sets[s]) for s in spec.get("sets", [])] + \
        [(raw.get("packages", []), spec.get("packages", []))]
    for raw_list, names in sources:
        for pkg, pkg_line in zip(names, getattr(raw_list, "lines", [])):
            where.setdefault(pkg, pkg_line)
    return Image(name, spec.get("title", name), version, base, tuple(spec.get("sets", [])),
                 tuple(sorted(where)), line, lines.get("version", line), where)


def settings_packages(settings: Settings) -> tuple[str, ...]:
    """What the settings need in every image (locale, keyboard, time zone, printing, and a
    workstation's kernel, network and SSH)."""
    extra = ("cups-client",) if settings.printers == "server" else ()
    if settings.workstation:
        extra += WORKSTATION_PACKAGES
    return ("keyboard-configuration", "locales", "tzdata") + extra


def request(catalog: Catalog, image: Image) -> list[str]:
    """The packages a build asks apt for: the image's and those its settings need."""
    return sorted(set(image.packages) | set(settings_packages(catalog.settings)))


def check_packages(catalog: Catalog, index: Index, names: list[str] | None = None) -> dict[str, Any]:
    """Every package exists and each image's set resolves; InputError otherwise.

    Returns {image: Resolution} for the images checked."""
    problems: list[Problem] = []
    results = {}
    for name in names or sorted(catalog.images):
        image = catalog.image(name)
        result = resolve(index, request(catalog, image))
        results[name] = result
        for pkg in result.missing:
            problems.append(Problem(
                str(catalog.path), f"unknown package '{pkg}' (image '{name}'): not in Debian "
                f"{catalog.debian.suite} {'/'.join(catalog.debian.components)}",
                image.lines.get(pkg), f"images.{name}", "check the spelling on "
                f"https://packages.debian.org/{catalog.debian.suite}/{pkg}"))
        for chain, dep in result.unresolved:
            problems.append(Problem(
                str(catalog.path), f"image '{name}' does not install: {' -> '.join(chain)} "
                f"depends on '{dep}', which no package of {catalog.debian.suite} provides",
                image.lines.get(chain[0]), f"images.{name}",
                f"remove or replace '{chain[0]}'"))
    if problems:
        raise InputError(problems)
    return results


def check_versions(catalog: Catalog, previous: dict[str, str]) -> None:
    """No image version below the last one built ({image: version} from the store)."""
    problems = []
    for name, old in sorted(previous.items()):
        image = catalog.images.get(name)
        if image is None:
            continue
        new_key, old_key = catalog_version_key(image.version), catalog_version_key(old)
        # 2026.1.2 is a point release of 2026.1 (package updates): 2026.1 is not backwards
        if new_key is not None and old_key is not None and new_key < old_key[:len(new_key)]:
            problems.append(Problem(
                str(catalog.path), f"version {image.version} of image '{name}' goes backwards: "
                f"{old} is already built", image.version_line, f"images.{name}.version",
                f"give a version above {old} (a rollback is a new version of the old content)"))
    if problems:
        raise InputError(problems)
