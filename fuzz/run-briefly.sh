#!/usr/bin/env sh
# Run every fuzz target for a short time (CI smoke run). Needs nightly Rust and cargo-fuzz;
# exits 0 with a message when they are missing, so a plain stable toolchain is not blocked.
set -eu
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${1:-30}"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz or nightly toolchain not installed; skipping fuzz smoke run"
    exit 0
fi
for target in pickle zip safetensors gguf secrets; do
    echo "fuzzing $target for ${SECONDS_PER_TARGET}s"
    cargo +nightly fuzz run "$target" -- -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048
done
