#!/usr/bin/env bash
# Fuzzes the kickstart parser with cargo-fuzz (libFuzzer) for N seconds
# (default 300), seeded with every kickstart of the repository, and prints
# libFuzzer's final statistics. Crashes land in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo-fuzz needs nightly features; the stable toolchain has them behind
# RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
corpus=fuzz/corpus/kickstart_parse
mkdir -p "$corpus"
cp kickstart/*.ks tests/kickstart-corpus/*.ks tests/kickstart-corpus/*.inc "$corpus"/
cargo fuzz run kickstart_parse "$corpus" -- -max_total_time="$seconds" -max_len=8192 -print_final_stats=1
