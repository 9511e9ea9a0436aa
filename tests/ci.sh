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

# The build cache grows with every run (incremental data of each compiled
# version, test executables of every clone and commit built, the last VM
# tests' disks). The VM tests write ~15 GiB of disks and images; a host
# disk that fills up under them fails them. When the disk runs short,
# those parts go first, oldest first. Only slower, never a failure: cargo
# rebuilds what is missing.
prune_cache() {
    local free_kib want_kib=$((40 * 1024 * 1024))
    mkdir -p "$CARGO_TARGET_DIR"
    free_kib=$(df -Pk "$CARGO_TARGET_DIR" | awk 'NR == 2 { print $4 }')
    if [ "${free_kib:-0}" -lt "$want_kib" ]; then
        echo "ci: $((free_kib / 1024 / 1024)) GiB free under $CARGO_TARGET_DIR; removing the last VM tests' files, incremental build data and test executables not built today" >&2
        rm -rf "$CARGO_TARGET_DIR"/debug/incremental "$CARGO_TARGET_DIR"/release/incremental "$CARGO_TARGET_DIR"/tmp
        # Executables (no extension) of test targets; libraries stay.
        find "$CARGO_TARGET_DIR"/debug/deps -maxdepth 1 -type f ! -name '*.*' -mtime +0 -delete 2>/dev/null || true
        free_kib=$(df -Pk "$CARGO_TARGET_DIR" | awk 'NR == 2 { print $4 }')
        echo "ci: $((free_kib / 1024 / 1024)) GiB free now" >&2
    fi
}
prune_cache
phase deps tests/deps.sh
phase fmt cargo fmt --all -- --check
phase clippy cargo clippy --workspace --all-targets -- -D warnings
tests/run-tests.sh
