#!/usr/bin/env bash
# History at a plan's pace: `alltick-stream history` for 200 codes (one
# request each) against the simulated HTTP API keeping to the same plan
# (a separate process, refusing and counting every request over the limits).
# Prints the pace the server saw against the plan's allowance (after the
# first window's burst), the most requests in one window, the refusals, the
# wall time and the tool's peak RSS.
#
#   scripts/history_bench.sh                 # premium, 200 codes
#   PLAN=basic CODES=20 scripts/history_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PLAN=${PLAN:-premium}
CODES=${CODES:-200}
cargo build --release --quiet --bin alltick-stream --example history_server
BIN=${BIN:-target/release/alltick-stream}
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT
mkfifo "$work/ctl"
target/release/examples/history_server "$PLAN" 3600 <"$work/ctl" >"$work/server.out" &
exec 3>"$work/ctl"
for _ in $(seq 50); do grep -q '^FOREX=' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
stock=$(sed -n 's/^STOCK=//p' "$work/server.out")
forex=$(sed -n 's/^FOREX=//p' "$work/server.out")
# Forex-like codes: C000 … C199 (one page each, the latest 500 bars).
codes=$(seq -f 'C%03g' 0 $((CODES - 1)))
/usr/bin/time -f '%e %M' -o "$work/time" \
    env ALLTICK_TOKEN=bench "$BIN" history --plan "$PLAN" --stock-api "$stock" --forex-api "$forex" \
    $codes >"$work/bars.jsonl" 2>"$work/stderr" || { cat "$work/stderr"; exit 1; }
exec 3>&-
wait %1 2>/dev/null || true
read -r wall rss <"$work/time"
summary=$(tail -n 1 "$work/server.out")
per_sec=$(sed -n 's/.*per_sec=\([0-9.]*\).*/\1/p' <<<"$summary")
refused=$(sed -n 's/.*refused=\([0-9]*\).*/\1/p' <<<"$summary")
allowed=$(case $PLAN in free) echo 0.1 ;; basic) echo 1 ;; premium) echo 10 ;; *) echo 20 ;; esac)
bars=$(wc -l <"$work/bars.jsonl")
echo "plan=$PLAN codes=$CODES bars=$bars wall_s=$wall peak_rss_kib=$rss"
echo "server: $summary"
awk -v p="$per_sec" -v a="$allowed" -v r="$refused" 'BEGIN {
    printf "pace: %.2f requests/s of %s allowed = %.1f%% of the allowance, %d refused\n", p, a, 100 * p / a, r }'
