#!/usr/bin/env bash
# CI stage: the catalog against Debian's real lists; one small real image build (root,
# mmdebstrap, casync, Debian's mirror), twice.
# Packages are cached under .cache/images (a warm run takes ~2 min).
set -euo pipefail
cd "$(dirname "$0")/../../.."
missing=()
for tool in mmdebstrap casync; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
export CARTABLE_CACHE="$PWD/.cache"
# The catalog against the mirror's signed lists (every image: packages exist, sets install).
.venv/bin/cartable image check images/catalog.yml
exec .venv/bin/pytest -q -p no:cacheprovider tests/integration/images/test_build.py
