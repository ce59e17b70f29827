#!/usr/bin/env bash
# Benchmark `alltick-stream replay` on this machine.
#
#   scripts/replay_bench.sh            # N=2000000 lines, RUNS=3
#
# Measured, each the median of RUNS runs:
#   one file   replay --speed max of an N-line capture into a pipe: lines/s at
#              the consumer (scripts/bench/latency_consumer.rs --count: from the
#              first line to the last), peak RSS (/usr/bin/time -v)
#   five files the same N lines split over 5 files (one per group of codes,
#              times interleaved): the cost of merging
#   pace       replay --speed 10 of a capture spanning 60 s: wall time (6 s is
#              the recorded pace ten times over)
# Captures are generated in a temporary directory (about 300 MB for N=2M).
set -uo pipefail
: "${N:=2000000}" "${RUNS:=3}"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
say() { echo "replay_bench: $*" >&2; }
[ -x /usr/bin/time ] || { apt-get update -qq >&2 && apt-get install -y -qq time >&2; } || { say "no /usr/bin/time"; exit 1; }
say "building"
cargo build --release --quiet --bin alltick-stream --example latency_consumer || exit 1
BIN=target/release/alltick-stream
CONSUMER=target/release/examples/latency_consumer
TMP=$(mktemp -d "${TMPDIR:-/tmp}/alltick-replay-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

say "generating $N lines"
python3 - "$TMP" "$N" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
files = [open(f"{d}/part{i}.jsonl", "w") for i in range(5)]
one = open(f"{d}/one.jsonl", "w")
t = 1796000000000
for i in range(n):
    c = i % 50
    if i % 3 == 0:
        t += 1
    line = ('{"type":"trade","symbol":"NASDAQ:C%d","code":"C%d.US","seq":%d,"time":%d,'
            '"price":123.45,"volume":100,"turnover":12345.00,"side":"buy"}\n') % (c, c, i + 1, t)
    one.write(line)
    files[c % 5].write(line)
# 60 s of recorded time, 1000 lines a second.
with open(f"{d}/minute.jsonl", "w") as f:
    for i in range(60000):
        f.write(('{"type":"trade","symbol":"NASDAQ:C0","code":"C0.US","seq":%d,"time":%d,'
                 '"price":1.5,"volume":1,"turnover":1.5,"side":null}\n') % (i + 1, 1796000000000 + i))
PY

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
run_max() {  # run_max FILES...: lines/s and peak RSS KiB of one run
    /usr/bin/time -f "%M" -o "$TMP/rss" "$BIN" replay --speed max "$@" 2>/dev/null |
        "$CONSUMER" --count "$N" --idle-timeout 30 > "$TMP/cons"
    echo "$(sed -n 's/.*rate=\([0-9.]*\).*/\1/p' "$TMP/cons") $(cat "$TMP/rss")"
}

one_rates=(); one_rss=(); five_rates=(); five_rss=(); pace=()
for r in $(seq 1 "$RUNS"); do
    read -r rate rss < <(run_max "$TMP/one.jsonl"); one_rates+=("$rate"); one_rss+=("$rss")
    read -r rate rss < <(run_max "$TMP"/part*.jsonl); five_rates+=("$rate"); five_rss+=("$rss")
    start=$(date +%s.%N)
    "$BIN" replay --speed 10 "$TMP/minute.jsonl" > /dev/null 2>&1
    pace+=("$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')")
    say "run $r: one ${one_rates[-1]}/s ${one_rss[-1]} KiB; five ${five_rates[-1]}/s ${five_rss[-1]} KiB; --speed 10 of 60 s: ${pace[-1]} s"
done
one=$(printf '%s\n' "${one_rates[@]}" | median)
five=$(printf '%s\n' "${five_rates[@]}" | median)
echo "# replay benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, commit $(git rev-parse --short HEAD))"
echo
echo "| replay --speed max of $N lines | lines/s | peak RSS KiB |"
echo "| --- | ---: | ---: |"
echo "| one file | $one | $(printf '%s\n' "${one_rss[@]}" | median) |"
echo "| the same lines in five files | $five | $(printf '%s\n' "${five_rss[@]}" | median) |"
echo
awk -v a="$one" -v b="$five" 'BEGIN { printf "merging five files costs %.1f%% of the one-file rate\n", (1 - b / a) * 100 }'
echo "--speed 10 of a capture spanning 60 s: $(printf '%s\n' "${pace[@]}" | median) s (median; target 6 s ± 5%)"
