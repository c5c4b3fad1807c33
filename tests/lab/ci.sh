#!/usr/bin/env bash
# The lab's part of `make test` / CI: the Docker engine, the lab images, every role's molecule
# scenario, the lab scenario, the lab's own tests. Installs what it needs (docker.io,
# debootstrap: see tests/lab/lab.py engine); every stage prints its duration; the first failure
# stops the run with a non-zero code. Without a Docker engine nothing here skips: it fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg" CARTABLE_ANSIBLE_CONFIG="$PWD/ansible.cfg"

declare -a SUMMARY=()
stage() {
    local name=$1; shift
    local start=$SECONDS
    echo "=== lab stage: $name"
    if "$@"; then
        SUMMARY+=("$(printf '%-28s %5ds  ok' "$name" $((SECONDS - start)))")
    else
        local rc=$?
        SUMMARY+=("$(printf '%-28s %5ds  FAILED (%d)' "$name" $((SECONDS - start)) "$rc")")
        printf '%s\n' "${SUMMARY[@]}"
        exit "$rc"
    fi
}

stage "bootstrap (venv)" scripts/bootstrap
stage "docker engine" python tests/lab/lab.py engine
stage "lab images" python tests/lab/lab.py image
stage "molecule: roles" make --no-print-directory molecule-roles
stage "molecule: lab scenario" make --no-print-directory molecule-lab
stage "lab tests (pytest)" pytest tests/lab
stage "lab down" python tests/lab/lab.py down

echo "=== lab stage durations"
printf '%s\n' "${SUMMARY[@]}"
