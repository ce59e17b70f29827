#!/usr/bin/env bash
# Soak: run the release binary against the simulator with random faults
# (drops, resets, close frames, silence, garbage, rate-limit answers, server
# restarts, oversized frames) for MINUTES (default 1), then check the output:
# per-code seq order without duplicates, every missing tick inside a logged
# outage, peak RSS flat after the first minute. Everything stays on 127.0.0.1.
#
#   scripts/soak.sh 10
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-1}"
cargo build --release --quiet
cargo build --release --quiet --example soak
exec target/release/examples/soak "$minutes" target/release/alltick-stream
