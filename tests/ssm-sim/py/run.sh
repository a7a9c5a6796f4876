#!/usr/bin/env bash
# Runs the simulator's Python checks (boto3 and AWS CLI conformance, moto cross-check).
# Creates or updates the venv under ${PATCHFLEET_CACHE:-$HOME/.cache/patchfleet}/venv
# from requirements.txt, builds the ssm-sim binary unless SSM_SIM_BIN is set,
# and runs pytest with any extra arguments given.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${PATCHFLEET_CACHE:-$HOME/.cache/patchfleet}"
venv="$cache/venv"
stamp="$venv/.ssm-sim-requirements"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
if ! cmp -s "$here/requirements.txt" "$stamp"; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$stamp"
fi
if [[ -z "${SSM_SIM_BIN:-}" ]]; then
    target="${CARGO_TARGET_DIR:-$repo/target}"
    (cd "$repo" && CARGO_TARGET_DIR="$target" cargo build --quiet -p ssm-sim --bin ssm-sim)
    export SSM_SIM_BIN="$target/debug/ssm-sim"
fi
export PATH="$venv/bin:$PATH"
cd "$here"
exec "$venv/bin/python" -m pytest -q "$@"
