#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/fuzz_targets: the envelope parser, the circuit-name parser,
# the prove-job input parsers, the SRS file reader) for SECONDS each (default 60), starting
# from fuzz/seeds and keeping what it finds in fuzz/corpus. A crash stops the script with the
# failing input under fuzz/artifacts/TARGET/.
#
#   usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Installs cargo-fuzz when it is missing. cargo-fuzz passes nightly flags to rustc; with the
# stable toolchain of these machines RUSTC_BOOTSTRAP=1 lets rustc take them, and
# `--sanitizer none` avoids the sanitizer runtimes that only nightly toolchains ship (the
# targets still run under libFuzzer's coverage guidance, and Rust's own checks catch
# overflows and out-of-bounds accesses: the build keeps debug assertions).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
each="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(envelope circuit_name batch_input srs_file)
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "seeds/$target"
    echo "== fuzzing $target for ${each}s" >&2
    cargo fuzz run --sanitizer none "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$each" -rss_limit_mb=4096 -max_len=1048576
done
