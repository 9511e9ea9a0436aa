#!/usr/bin/env bash
# Fuzzes one parser with cargo-fuzz (libFuzzer) for SECONDS (default 300) and
# prints libFuzzer's final statistics. Crashes land in fuzz/artifacts/<target>/.
#
#   tests/fuzz.sh [SECONDS] [TARGET]     (or FUZZ_TARGET=TARGET tests/fuzz.sh)
#   tests/fuzz.sh --list                 names the targets
#
# Targets (fuzz/fuzz_targets/):
#   kickstart_parse       the kickstart parser, render/parse round trip (default);
#                         seeded with every kickstart of the repository
#   console_request       the console's session cookie, Origin check, urlencoded
#                         forms (CSRF field, login form) and CSRF comparison
#   registration_replies  the engine's answers: SSH key, CA PEM, fingerprints,
#                         error-page messages
#   helper_request        the privileged helper's reading of its clients' frames
#                         into requests, and their round trip
#   vdsm_frames           the VDSM service's STOMP frames split across reads,
#                         their round trip, and the JSON-RPC in their bodies
# Every target but kickstart_parse is seeded from fuzz/seeds/<target>/ (committed);
# the working corpus fuzz/corpus/<target>/ grows as libFuzzer finds new paths and is
# not committed. `make fuzz FUZZ_TARGET=… FUZZ_SECONDS=…` calls this script.
# FUZZ_SANITIZER=none builds without AddressSanitizer: about 3.4 times as many
# executions a second for kickstart_parse (1,250 against 370 on one core), enough
# for safe Rust; switching rebuilds every dependency. FUZZ_RUNS=N stops after N
# executions instead (SECONDS still bounds the run).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--list" ]; then
    ls fuzz/fuzz_targets | sed 's/\.rs$//'
    exit 0
fi
seconds="${1:-300}"
target="${2:-${FUZZ_TARGET:-kickstart_parse}}"
target="${target:-kickstart_parse}"
if [ ! -f "fuzz/fuzz_targets/$target.rs" ]; then
    echo "fuzz.sh: no fuzz target $target; the targets are:" >&2
    ls fuzz/fuzz_targets | sed 's/\.rs$//' >&2
    exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo-fuzz needs nightly features; the stable toolchain has them behind
# RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
corpus="fuzz/corpus/$target"
mkdir -p "$corpus"
case "$target" in
kickstart_parse)
    cp kickstart/*.ks tests/kickstart-corpus/*.ks tests/kickstart-corpus/*.inc "$corpus"/
    max_len=8192
    ;;
*)
    cp "fuzz/seeds/$target"/* "$corpus"/
    max_len=4096
    ;;
esac
cargo fuzz run --sanitizer "${FUZZ_SANITIZER:-address}" "$target" "$corpus" -- -max_total_time="$seconds" -max_len="$max_len" ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -print_final_stats=1
