#!/usr/bin/env bash
# Benchmark `alltick-stream serve --speed max`: how fast a capture goes out
# to a client.
#
#   scripts/serve_bench.sh [--quick]
#
# Writes a synthetic capture of N trade lines (default 2,000,000; --quick
# 200,000) for CODES codes (default 10), one line a millisecond, in the
# tool's own line format; serves it with `serve --speed max` on 127.0.0.1;
# connects scripts/bench/raw_client.rs (tungstenite, no parsing: the client
# side costs as little as this stack allows), subscribed to every code, and
# pipes its output into scripts/bench/latency_consumer.rs --count, which
# times the lines from the first to the last (so start-up, connect and
# subscribe are excluded).
#
# Measured per run: ticks/s at the consumer; serve's CPU seconds per
# million ticks (utime+stime from /proc/PID/stat after the run) and its
# peak RSS (VmHWM), which stays flat however large the capture is (each
# connection streams the files). Median of RUNS runs (default 3).
#
# Tunables (environment): N, CODES, RUNS, BIN (the alltick-stream binary,
# default target/release/alltick-stream). The result line is printed on
# stdout; progress goes to stderr. Needs: cargo, awk.
set -uo pipefail

QUICK=0
for a in "$@"; do
    case "$a" in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p;}' "$0"; exit 0 ;;
        *) echo "serve_bench.sh: unknown argument $a (use --quick)" >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then : "${N:=200000}"; else : "${N:=2000000}"; fi
: "${CODES:=10}" "${RUNS:=3}"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
say() { echo "serve_bench: $*" >&2; }

cargo build --release --bin alltick-stream --example raw_client --example latency_consumer >&2 \
    || { say "build failed"; exit 1; }
: "${BIN:=$ROOT/target/release/alltick-stream}"
RAW="$ROOT/target/release/examples/raw_client"
CONSUMER="$ROOT/target/release/examples/latency_consumer"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/alltick-serve-bench.XXXXXX")
SERVE_PID=""
cleanup() {
    [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

CAPTURE="$TMP/capture.jsonl"
say "writing $N lines for $CODES codes to $CAPTURE"
awk -v n="$N" -v m="$CODES" 'BEGIN {
    t0 = 1796083200000
    for (i = 0; i < n; i++) {
        c = sprintf("C%d.US", i % m)
        side = (i % 3 == 0) ? "\"buy\"" : ((i % 3 == 1) ? "\"sell\"" : "null")
        printf "{\"type\":\"trade\",\"symbol\":\"%s\",\"code\":\"%s\",\"seq\":%.0f,\"time\":%.0f,\"price\":%d.%02d,\"volume\":%d,\"turnover\":%d.%02d,\"side\":%s}\n",
            c, c, i + 1, t0 + i, 100 + i % 400, i % 100, 100 * (1 + i % 9), 10000 + i % 90000, i % 100, side
    }
}' > "$CAPTURE" || { say "cannot write the capture"; exit 1; }
say "capture: $(du -h "$CAPTURE" | cut -f1)"
CODE_LIST=$(awk -v m="$CODES" 'BEGIN { for (i = 0; i < m; i++) printf "C%d.US ", i }')
CLK_TCK=$(getconf CLK_TCK)

run_once() {
    local err="$TMP/serve.err" port="" i
    "$BIN" serve --listen 127.0.0.1:0 --speed max "$CAPTURE" 2> "$err" &
    SERVE_PID=$!
    for i in $(seq 200); do
        port=$(grep -o 'listening on ws://127.0.0.1:[0-9]*' "$err" | grep -o '[0-9]*$')
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { say "serve did not start: $(cat "$err")"; return 1; }
    # The first line is the answer to the subscription.
    # shellcheck disable=SC2086
    "$RAW" "ws://127.0.0.1:$port/quote-stock-b-ws-api" --count $((N + 1)) $CODE_LIST \
        | "$CONSUMER" --count $((N + 1)) > "$TMP/consumer.out"
    local stat cpu rss
    stat=$(cut -d' ' -f14,15 "/proc/$SERVE_PID/stat")
    cpu=$(echo "$stat" | awk -v hz="$CLK_TCK" -v n="$N" '{ printf "%.3f", ($1 + $2) / hz / n * 1e6 }')
    rss=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVE_PID/status")
    kill "$SERVE_PID" 2>/dev/null
    wait "$SERVE_PID" 2>/dev/null
    SERVE_PID=""
    local rate
    rate=$(grep -o 'rate=[0-9.]*' "$TMP/consumer.out" | cut -d= -f2)
    grep -q 'complete=0' "$TMP/consumer.out" && { say "incomplete: $(cat "$TMP/consumer.out")"; return 1; }
    echo "$rate $cpu $rss"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

: > "$TMP/runs"
for r in $(seq "$RUNS"); do
    out=$(run_once) || exit 1
    say "run $r: ticks/s cpu_s_per_M peak_rss_MiB = $out"
    echo "$out" >> "$TMP/runs"
done
RATE=$(cut -d' ' -f1 "$TMP/runs" | median)
CPU=$(cut -d' ' -f2 "$TMP/runs" | median)
RSS=$(cut -d' ' -f3 "$TMP/runs" | median)
printf 'serve --speed max: %.0f ticks/s, %s CPU s per 1M ticks, peak RSS %s MiB (N=%s, %s codes, median of %s runs, %s)\n' \
    "$RATE" "$CPU" "$RSS" "$N" "$CODES" "$RUNS" "$(date -u '+%Y-%m-%d')"
