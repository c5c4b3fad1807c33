"""The site file: a city's (or agglomeration's) choices, written by the DSI in YAML."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import netaddr

from cartable import site_filtering as sf
from cartable import site_reimaging as srm
from cartable import site_report as sr
from cartable.directory import KINDS
from cartable.equipment import DEFAULT_PLAN, IMAGE_KEYS, ROLES
from cartable.errors import InputError, Problem
from cartable.files import read_text
from cartable.images.catalog import read_catalog
from cartable.naming import ADMIN_NAME_HINT, HOST_NAME_HINT, admin_name_problem, host_name_problem
from cartable.uai import normalise_uai, uai_problem
from cartable.yamlsrc import (Ctx, LDict, boolean, choice, integer, list_of, load_with_lines, map_of,
                              mapping, text)

LINKS = ("fibre", "cable", "adsl", "satellite", "4g")
_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SSH_KEY_RE = re.compile(r"^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) "
                         r"[A-Za-z0-9+/=]+( .*)?$")


@dataclass(frozen=True)
class Wave:
    name: str
    start: str | None
    communes: tuple[str, ...]
    circonscriptions: tuple[str, ...]
    uai: tuple[str, ...]


@dataclass(frozen=True)
class Override:
    link: str | None = None
    name: str | None = None
    wave: str | None = None
    equipment: dict[str, int] = field(default_factory=dict)
    hostnames: dict[str, str] = field(default_factory=dict)
    line: int | None = None
    filtering: sf.SchoolFiltering | None = None
    images: dict[str, str] = field(default_factory=dict)
    reimaging: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Site:
    """A validated site file. Paths are resolved against the site file's folder."""

    path: Path
    name: str
    domain: str
    directory: Path
    hardware: Path | None
    communes: tuple[str, ...]
    circonscriptions: tuple[str, ...]
    uai: tuple[str, ...]
    exclude: tuple[str, ...]
    kinds: tuple[str, ...]
    select_all: bool
    supernet: netaddr.IPNetwork
    other_networks: tuple[netaddr.IPNetwork, ...]
    pedagogical_prefix: dict[str, int]
    administrative_prefix: int
    first_host_offset: int
    proxy_host: str
    proxy_port: int
    ntp: tuple[str, ...]
    management_networks: tuple[netaddr.IPNetwork, ...]
    admins: tuple[dict[str, Any], ...]
    images: dict[str, str]
    catalog: Path | None
    plan: dict[str, dict[str, int]]
    class_equipment: bool
    pupils_per_class: int
    classes_default: int
    laptop_cart: int
    default_link: str
    waves: tuple[Wave, ...]
    overrides: dict[str, Override]
    lines: dict[str, int]
    filtering: sf.Filtering
    pupils: Path | None = None          # the per-school pupils file (report)
    renewal: dict[str, int] = field(default_factory=dict)  # family -> years (report)
    billing: sr.Billing | None = None   # the billing tariff (report)
    reimaging: dict[str, Any] = field(default_factory=dict)  # schedule (site_reimaging)


def _uai_key(key: Any, ctx: Ctx) -> str | None:
    return uai_problem(normalise_uai(str(key)))


def _role_key(key: Any, ctx: Ctx) -> str | None:
    if key in ROLES:
        return None
    return f"unknown equipment role '{key}' (known: {', '.join(sorted(ROLES))})"


def _kind_key(key: Any, ctx: Ctx) -> str | None:
    return None if key in KINDS else f"unknown school kind '{key}' (known: {', '.join(KINDS)})"


def _network(raw: Any, ctx: Ctx) -> Any:
    try:
        net = netaddr.IPNetwork(str(raw), version=4)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        ctx.fail(f"'{raw}' is not an IPv4 network", "write it as address/prefix, e.g. 10.35.0.0/16")
        return None
    if net.ip != net.network:
        ctx.fail(f"'{raw}' has host bits set", f"did you mean {net.cidr}?")
        return None
    return net


_COUNTS = map_of(_role_key, integer(0, 500))
_IMAGES = map_of(lambda k, c: None if k in IMAGE_KEYS else
                 f"unknown image key '{k}' (known: {', '.join(IMAGE_KEYS)})", text)
SCHEMA = mapping({
    "extends": text,
    "name": text,
    "domain": text,
    "directory": text,
    "hardware": text,
    "selection": mapping({
        "communes": list_of(text),
        "circonscriptions": list_of(text),
        "uai": list_of(text),
        "exclude": list_of(text),
        "kinds": list_of(choice(*KINDS)),
        "all": boolean,
    }),
    "address_plan": mapping({
        "supernet": _network,
        "other_networks": list_of(_network),
        "pedagogical_prefix": map_of(_kind_key, integer(16, 29)),
        "administrative_prefix": integer(16, 29),
        "first_host_offset": integer(2, 200),
    }, required=("supernet",)),
    "academic_proxy": mapping({"host": text, "port": integer(1, 65535)}, required=("host", "port")),
    "ntp": list_of(text),
    "management_networks": list_of(_network),
    "admins": list_of(mapping({
        "name": text,
        "ssh_keys": list_of(text),
        "state": choice("present", "absent"),
    }, required=("name", "ssh_keys"))),
    "catalog": text,
    "images": _IMAGES,
    "equipment": map_of(_kind_key, _COUNTS),
    "options": mapping({
        "class_equipment": boolean,
        "pupils_per_class": integer(1, 60),
        "classes_default": integer(1, 60),
        "laptop_cart": integer(0, 200),
    }),
    "default_link": choice(*LINKS),
    "waves": list_of(mapping({
        "name": text, "start": text, "communes": list_of(text),
        "circonscriptions": list_of(text), "uai": list_of(text),
    }, required=("name",))),
    "overrides": map_of(_uai_key, mapping({
        "link": choice(*LINKS),
        "name": text,
        "wave": text,
        "equipment": _COUNTS,
        "hostnames": map_of(lambda k, c: None, text),
        "filtering": sf.OVERRIDE_SCHEMA,
        "images": _IMAGES,
        "reimaging": srm.SCHEMA,
    })),
    "filtering": sf.SCHEMA,
    "reimaging": srm.SCHEMA,
    **sr.SCHEMA,
}, required=("name", "domain", "directory", "address_plan", "academic_proxy"))


def _check_semantics(data: dict[str, Any], raw: Any, filename: str) -> list[Problem]:
    """Cross-field checks the schema cannot express."""
    problems: list[Problem] = []
    lines = getattr(raw, "lines", {})
    if not _LABEL_RE.match(data.get("name", "x")):
        problems.append(Problem(filename, f"site name '{data['name']}' is not DNS-safe",
                                lines.get("name"), "name", "use lower-case letters, digits, '-'"))
    domain = data.get("domain", "x")
    if not all(_LABEL_RE.match(label) for label in domain.split(".")):
        problems.append(Problem(filename, f"domain '{domain}' is not a valid DNS domain",
                                lines.get("domain"), "domain", "e.g. ecoles.ville-exemple.fr"))
    plan = data.get("address_plan", {})
    supernet = plan.get("supernet")
    plan_line = getattr(raw.get("address_plan"), "lines", {}) if isinstance(raw, dict) else {}
    for other in plan.get("other_networks", []) or []:
        if supernet is not None and other is not None and \
                (other in supernet or supernet in other):  # CIDRs overlap only by nesting
            problems.append(Problem(
                filename, f"supernet {supernet} overlaps {other}, another network of the site",
                plan_line.get("supernet"), "address_plan.supernet",
                "choose a supernet that does not overlap other_networks"))
    for index, wave in enumerate(data.get("waves", [])):
        if not _LABEL_RE.match(wave.get("name", "")):
            problems.append(Problem(filename, f"wave name '{wave.get('name')}' is not a simple label",
                                    raw["waves"].lines[index], f"waves.{index}.name",
                                    "use lower-case letters, digits and '-', e.g. juillet-1"))
    admins_raw = raw.get("admins", []) if isinstance(raw, dict) else []
    for index, admin in enumerate(data.get("admins", [])):
        line = admins_raw.lines[index] if hasattr(admins_raw, "lines") else None
        name_problem = admin_name_problem(admin.get("name", ""))
        if name_problem:
            problems.append(Problem(filename, f"admin name {name_problem}", line, f"admins.{index}.name",
                                    ADMIN_NAME_HINT))
        for key in admin.get("ssh_keys", []):
            if not _SSH_KEY_RE.match(key):
                problems.append(Problem(filename, f"'{key[:30]}...' is not an SSH public key",
                                        line, f"admins.{index}.ssh_keys",
                                        "paste the line of the .pub file: 'ssh-ed25519 AAAA... comment'"))
    wave_names = [w.get("name") for w in data.get("waves", [])]
    overrides_raw = raw.get("overrides", {}) if isinstance(raw, dict) else {}
    for uai, override in data.get("overrides", {}).items():
        line = getattr(overrides_raw, "lines", {}).get(uai)
        if override.get("wave") and override["wave"] not in wave_names:
            problems.append(Problem(filename, f"override of {uai} names unknown wave "
                                    f"'{override['wave']}'", line, f"overrides.{uai}.wave",
                                    "known waves: " + (", ".join(wave_names) or "none")))
        for host, name in override.get("hostnames", {}).items():
            if host_name_problem(name):
                problems.append(Problem(filename, f"host name '{name}' is not DNS-safe",
                                        line, f"overrides.{uai}.hostnames.{host}", HOST_NAME_HINT))
    return problems + sf.check_filtering(data, raw, filename)


def _check_images(data: dict[str, Any], raw: Any, path: Path) -> list[Problem]:
    """With a `catalog:`, every image named (per room kind, per school) is one of its images."""
    if "catalog" not in data:
        return []
    catalog_path = path.parent / data["catalog"]
    if not catalog_path.is_file():
        return [Problem(str(path), f"image catalog {catalog_path} not found",
                        raw.lines.get("catalog"), "catalog",
                        "'catalog' is relative to the site file, e.g. ../../images/catalog.yml")]
    known = read_catalog(catalog_path).images
    places = [("images", data.get("images", {}), raw.get("images"))]
    for uai, override in data.get("overrides", {}).items():
        places.append((f"overrides.{uai}.images", override.get("images", {}),
                       raw["overrides"][uai].get("images")))
    problems = []
    for where, images, raw_images in places:
        for key, name in images.items():
            if name not in known:
                problems.append(Problem(
                    str(path), f"unknown image '{name}' (not in {catalog_path})",
                    getattr(raw_images, "lines", {}).get(key), f"{where}.{key}",
                    "images of the catalog: " + ", ".join(sorted(known))))
    return problems


def parse_site(text_: str, path: Path) -> Site:
    """Validate a site file's text; InputError listing every problem."""
    return parse_site_data(load_with_lines(text_, str(path)), path)


def parse_site_data(raw: Any, path: Path) -> Site:
    """Validate a site file's data (as load_with_lines gives it)."""
    filename = str(path)
    if not isinstance(raw, dict):
        raise InputError(Problem(filename, "the site file must be a YAML mapping",
                                 hint="see inventories/demo/site.yml for an example"))
    problems: list[Problem] = []
    data = SCHEMA(raw, Ctx(filename, problems))
    problems += _check_semantics(data, raw, filename)
    if not problems:
        problems += _check_images(data, raw, path)
    if problems:
        raise InputError(problems)
    site = _to_site(data, raw, path)
    sf.check_resolved(site.filtering, filename)
    return site


def _to_site(data: dict[str, Any], raw: Any, path: Path) -> Site:
    base = path.parent
    sel = data.get("selection", {})
    plan = data["address_plan"]
    opts = data.get("options", {})
    equipment = {kind: dict(DEFAULT_PLAN[kind]) for kind in KINDS}
    for kind, counts in data.get("equipment", {}).items():
        equipment[kind] = {code: n for code, n in counts.items()}
    overrides = {
        normalise_uai(uai): Override(
            link=o.get("link"), name=o.get("name"), wave=o.get("wave"),
            equipment=o.get("equipment", {}), hostnames=o.get("hostnames", {}),
            line=raw["overrides"].lines.get(uai),
            filtering=sf.to_school_filtering(o.get("filtering")),
            images=dict(o.get("images", {})),
            reimaging=dict(o.get("reimaging", {})))
        for uai, o in data.get("overrides", {}).items()
    }
    return Site(
        path=path,
        name=data["name"],
        domain=data["domain"].lower(),
        directory=(base / data["directory"]),
        hardware=(base / data["hardware"]) if data.get("hardware") else None,
        communes=tuple(sel.get("communes", [])),
        circonscriptions=tuple(sel.get("circonscriptions", [])),
        uai=tuple(normalise_uai(u) for u in sel.get("uai", [])),
        exclude=tuple(normalise_uai(u) for u in sel.get("exclude", [])),
        kinds=tuple(sel.get("kinds", [])),
        select_all=sel.get("all", False),
        supernet=plan["supernet"],
        other_networks=tuple(plan.get("other_networks", [])),
        pedagogical_prefix={"maternelle": 25, "elementaire": 24, "primaire": 24,
                            **plan.get("pedagogical_prefix", {})},
        administrative_prefix=plan.get("administrative_prefix", 27),
        first_host_offset=plan.get("first_host_offset", 10),
        proxy_host=data["academic_proxy"]["host"],
        proxy_port=data["academic_proxy"]["port"],
        ntp=tuple(data.get("ntp", [])),
        management_networks=tuple(data.get("management_networks", [])),
        admins=tuple({"name": a["name"], "ssh_keys": list(a["ssh_keys"]),
                      "state": a.get("state", "present")} for a in data.get("admins", [])),
        images=dict(data.get("images", {})),
        catalog=(base / data["catalog"]) if data.get("catalog") else None,
        plan=equipment,
        class_equipment=opts.get("class_equipment", False),
        pupils_per_class=opts.get("pupils_per_class", 25),
        classes_default=opts.get("classes_default", 4),
        laptop_cart=opts.get("laptop_cart", 0),
        default_link=data.get("default_link", "fibre"),
        waves=tuple(Wave(w["name"], w.get("start"), tuple(w.get("communes", [])),
                         tuple(w.get("circonscriptions", [])),
                         tuple(normalise_uai(u) for u in w.get("uai", [])))
                    for w in data.get("waves", [])),
        overrides=overrides,
        lines=dict(raw.lines),
        filtering=sf.to_filtering(data),
        pupils=(base / data["pupils"]) if data.get("pupils") else None,
        renewal=dict(data.get("renewal", {})),
        billing=sr.to_billing(data, raw),
        reimaging=dict(data.get("reimaging", {})),
    )


def merge(base: Any, top: Any) -> Any:
    """`top` over `base`: mappings merged key by key (lines kept), anything else replaced."""
    if not (isinstance(base, dict) and isinstance(top, dict)):
        return top
    out = LDict(base)
    out.line = getattr(top, "line", 0)
    out.lines = {**getattr(base, "lines", {}), **getattr(top, "lines", {})}
    for key, value in top.items():
        out[key] = merge(base[key], value) if key in base else value
    return out


def _read_raw(path: Path, chain: tuple[Path, ...] = ()) -> Any:
    """The site file's data, with the file it `extends:` merged under it."""
    if chain and not path.exists():
        raise InputError(Problem(str(chain[-1]), f"site file {path} not found", field="extends",
                                 hint="'extends' is relative to the file that names it"))
    raw = load_with_lines(read_text(path, "site file", "give the path of a site file, e.g. "
                                    "inventories/demo/site.yml"), str(path))
    if not isinstance(raw, dict) or "extends" not in raw:
        return raw
    parent_path = (path.parent / str(raw["extends"])).resolve()
    if parent_path in chain or parent_path == path.resolve():
        raise InputError(Problem(str(path), f"'extends' loops back to {parent_path}",
                                 raw.lines["extends"], "extends", "remove the cycle"))
    parent = _read_raw(parent_path, chain + (path.resolve(),))
    if isinstance(parent, dict):
        for key in ("directory", "hardware", "pupils", "catalog"):  # relative to the file that names them
            if key in parent and key not in raw:
                parent[key] = os.path.relpath(parent_path.parent / str(parent[key]), path.parent)
    merged = merge(parent, raw)
    del merged["extends"]
    return merged


def read_site(path: Path) -> Site:
    """Read and validate a site file (and the file it extends, if any)."""
    raw = _read_raw(path)
    if isinstance(raw, dict) and not isinstance(raw, LDict):
        raw = merge(LDict(), raw)
    return parse_site_data(raw, path)
