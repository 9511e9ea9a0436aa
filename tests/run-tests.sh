#!/usr/bin/env bash
# Runs every test suite of the workspace. The kickstart corpus test finds the
# reference validator through HVNODE_KSVALIDATOR (set here from the venv that
# tests/deps.sh made).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${HVNODE_CACHE:=$HOME/.cache/hvnode}"
: "${HVNODE_VENV:=$HVNODE_CACHE/venv}"
export HVNODE_KSVALIDATOR="${HVNODE_KSVALIDATOR:-$HVNODE_VENV/bin/ksvalidator}"
# The corpus test must not silently skip in CI: it fails when the oracle is missing.
export HVNODE_REQUIRE_ORACLE=1

if cargo nextest --version >/dev/null 2>&1; then
    # nextest does not run doctests: run them first, so that the last line
    # printed is nextest's summary of the whole run.
    cargo test --workspace --doc
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace --no-fail-fast
fi
