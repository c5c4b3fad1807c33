"""`cartable image ...`: check the catalog, build an image version, print a changelog.

    cartable image check CATALOG [--packages FILE] [--store STORE] [--cache DIR]
    cartable image build CATALOG IMAGE --out STORE [--cache DIR] [--packages FILE] [--point-release]
    cartable image changelog OLD NEW [--markdown]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cartable.errors import report_errors
from cartable.images import archive
from cartable.images.build import build
from cartable.images.catalog import Catalog, check_packages, check_versions, read_catalog
from cartable.images.changelog import as_markdown, as_text, changes
from cartable.images.store import latest_versions, read_manifest

DEFAULT_CACHE = Path(os.environ.get("CARTABLE_CACHE", Path.home() / ".cache" / "cartable")) / "images"
EPILOG = """\
examples:
  cartable image check images/catalog.yml                       # packages exist, sets install
  cartable image check images/catalog.yml --store /srv/cartable/images   # + no version backwards
  cartable image build images/catalog.yml cycle3 --out /srv/cartable/images
  cartable image changelog /srv/cartable/images/cycle3/2026.1 /srv/cartable/images/cycle3/2026.2

See docs/images.md.
"""


def add_parser(top: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    area = top.add_parser("image", help="software images: check the catalog, build, changelog",
                          epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = area.add_subparsers(dest="verb", required=True, metavar="VERB")
    text = ("check the catalog: every package in Debian's lists, each image installs, "
            "(with --store) no version below the last build")
    check = verbs.add_parser("check", help=text, description=text)
    check.add_argument("catalog", type=Path, help="the catalog, e.g. images/catalog.yml")
    check.add_argument("--store", type=Path, help="the image store (versions already built)")
    text = "build one image version into the store (root, mmdebstrap, casync)"
    bld = verbs.add_parser("build", help=text, description=text)
    bld.add_argument("catalog", type=Path, help="the catalog, e.g. images/catalog.yml")
    bld.add_argument("image", help="an image of the catalog")
    bld.add_argument("--out", type=Path, required=True, metavar="STORE",
                     help="the image store (created if missing)")
    bld.add_argument("--point-release", action="store_true",
                     help="when the version is published with other content (package updates), "
                     "publish VERSION.N instead of refusing (the nightly job's mode)")
    for sub in (check, bld):
        sub.add_argument("--packages", type=Path, metavar="FILE",
                         help="a Packages index to check against (default: the mirror's, "
                         "downloaded, verified and cached)")
        sub.add_argument("--cache", type=Path, default=DEFAULT_CACHE, metavar="DIR",
                         help=f"package lists and .deb cache (default: {DEFAULT_CACHE})")
    text = "packages added, removed, upgraded between two versions (manifests)"
    log = verbs.add_parser("changelog", help=text, description=text)
    log.add_argument("old", type=Path, help="old version: its folder or manifest.json")
    log.add_argument("new", type=Path, help="new version: its folder or manifest.json")
    log.add_argument("--markdown", action="store_true", help="Markdown for the schools")


def _index(catalog: Catalog, packages: Path | None, cache: Path) -> archive.Index:
    if packages is None:
        deb = catalog.debian
        packages = archive.fetch_index(deb.mirror, deb.suite, deb.components[0],
                                       deb.architecture, cache / "lists")
    return archive.parse_index(archive.read_text(packages))


def run(args: argparse.Namespace) -> int:
    if args.verb == "changelog":
        diff = changes(read_manifest(args.old), read_manifest(args.new))
        sys.stdout.write(as_markdown(diff) if args.markdown else as_text(diff))
        return 0
    catalog = read_catalog(args.catalog)
    if args.verb == "check":
        if args.store:
            check_versions(catalog, latest_versions(args.store))
        results = check_packages(catalog, _index(catalog, args.packages, args.cache))
        for name, res in results.items():
            image = catalog.images[name]
            print(f"{name} {image.version}: {len(res.installed)} packages, "
                  f"~{res.installed_kb / 1024:.0f} MB installed")
        return 0
    check_packages(catalog, _index(catalog, args.packages, args.cache), [args.image])
    manifest = build(catalog, args.image, args.out, args.cache / "debs",
                     point_release=args.point_release)
    print(f"{manifest['image']} {manifest['version']}: {len(manifest['packages'])} packages, "
          f"{manifest['size'] / 1e6:.0f} MB, digest {manifest['digest']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`cartable-image VERB ...`: the same verbs, without the inventory's dependencies (netaddr):
    what the DSI's build host runs (role image_build)."""
    parser = argparse.ArgumentParser(prog="cartable-image", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_parser(parser.add_subparsers(dest="area", required=True, metavar="AREA"))
    return report_errors(
        "cartable-image",
        lambda: run(parser.parse_args(["image", *(sys.argv[1:] if argv is None else argv)])),
        suffix="; nothing published", outcome="nothing published")
