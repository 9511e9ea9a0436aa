#!/usr/bin/env bash
# Runs every test suite of the workspace:
#   1. doc tests;
#   2. the node image, built as `make image` builds it (stage timings printed);
#   3. every test with nextest: unit and integration tests, the kickstart
#      corpus against pykickstart, the VM boots of the image (CD on SeaBIOS
#      and OVMF, USB, PXE) and a second build that must be byte-identical.
# The last line printed is nextest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${HVNODE_CACHE:=$HOME/.cache/hvnode}"
: "${HVNODE_VENV:=$HVNODE_CACHE/venv}"
: "${CARGO_TARGET_DIR:=$HVNODE_CACHE/target}"
export HVNODE_CACHE CARGO_TARGET_DIR
export HVNODE_KSVALIDATOR="${HVNODE_KSVALIDATOR:-$HVNODE_VENV/bin/ksvalidator}"
# In CI the slow suites must run, not skip.
export HVNODE_REQUIRE_ORACLE=1 HVNODE_REQUIRE_IMAGE=1

# shellcheck source=tests/phase.sh
. tests/phase.sh

phase "doc tests" cargo test --workspace --doc

echo "== building the node image" >&2
phase "release build" cargo build --release --workspace
export HVNODE_IMAGE_DIR="$HVNODE_CACHE/out"
phase "image build" "$CARGO_TARGET_DIR/release/hvnode" build image/hvnode.toml --out "$HVNODE_IMAGE_DIR"

# The VM tests and the image rebuild (the test group `heavy` of
# .config/nextest.toml) run after the others, on their own: they want the
# whole machine, and their times are then theirs.
heavy='(package(hvnode-vmtest) & binary(install)) | test(/reproducible/)'
rc=0
if cargo nextest --version >/dev/null 2>&1; then
    phase "unit and integration tests" cargo nextest run --workspace --no-fail-fast -E "not ($heavy)" || rc=$?
    phase "VM tests and image rebuild" cargo nextest run --workspace --no-fail-fast -E "$heavy" || rc=$?
else
    phase "all tests" cargo test --workspace --no-fail-fast -- --test-threads=1 || rc=$?
fi
exit $rc
