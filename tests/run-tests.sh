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

cargo test --workspace --doc

echo "== building the node image" >&2
cargo build --release --workspace
export HVNODE_IMAGE_DIR="$HVNODE_CACHE/out"
"$CARGO_TARGET_DIR/release/hvnode" build image/hvnode.toml --out "$HVNODE_IMAGE_DIR"

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace --no-fail-fast -- --test-threads=1
fi
