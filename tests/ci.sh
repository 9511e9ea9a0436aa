#!/usr/bin/env bash
# Everything CI runs (`make test`, `.ci/run`), phase by phase: dependencies,
# formatting and lints, then tests/run-tests.sh (doc tests, release build,
# node image, unit and integration tests, VM tests). Ends, pass or fail,
# with the time of each phase, of each VM test and image rebuild, and the
# total.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${HVNODE_CACHE:=$HOME/.cache/hvnode}"
: "${CARGO_TARGET_DIR:=$HVNODE_CACHE/target}"
export HVNODE_CACHE CARGO_TARGET_DIR
HVNODE_PHASES=$(mktemp)
export HVNODE_PHASES
started=$(date +%s)

report() {
    local rc=$?
    echo "== CI time" >&2
    tests/phases.py "$HVNODE_PHASES" "$CARGO_TARGET_DIR/nextest/default/junit.xml" \
        "$(($(date +%s) - started))" >&2 || true
    rm -f "$HVNODE_PHASES"
    return $rc
}
trap report EXIT

# shellcheck source=tests/phase.sh
. tests/phase.sh
phase deps tests/deps.sh
phase fmt cargo fmt --all -- --check
phase clippy cargo clippy --workspace --all-targets -- -D warnings
tests/run-tests.sh
