#!/usr/bin/env bash
# Benchmark `alltick-stream replay --bars` on this machine.
#
#   scripts/bars_bench.sh              # N=2000000 trades, RUNS=3
#
# Measured, each the median of RUNS runs (wall time to the nanosecond from
# date, peak RSS from /usr/bin/time; output to /dev/null):
#   bars 1m      replay --speed max --bars 1m of an N-trade capture over 50
#                codes spanning about 35 minutes: trades/s = N / wall time
#   bars 1s      the same with --bars 1s (a bar per code and second written)
#   5000 codes   --bars 1m over 5000 codes: memory grows with the open bars,
#                not with the trades
#   plain        replay --speed max of the same capture, no bars: the reading
#                and merging alone
# With BEFORE=path/to/an/earlier/alltick-stream, each case also runs that
# binary, alternating with this one run by run, and the table has both.
# Prices and volumes vary in their digits (0 to 4 decimals), so every trade
# takes the exact-decimal paths.
set -uo pipefail
: "${N:=2000000}" "${RUNS:=3}"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
say() { echo "bars_bench: $*" >&2; }
[ -x /usr/bin/time ] || { apt-get update -qq >&2 && apt-get install -y -qq time >&2; } || { say "no /usr/bin/time"; exit 1; }
say "building"
cargo build --release --quiet --bin alltick-stream || exit 1
BIN=target/release/alltick-stream
TMP=$(mktemp -d "${TMPDIR:-/tmp}/alltick-bars-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

say "generating $N trades"
python3 scripts/bench/trades.py random "$N" 50 "$TMP/c50.jsonl"
python3 scripts/bench/trades.py random "$N" 5000 "$TMP/c5000.jsonl"

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
one() {  # one BINARY ARGS...: "trades/s rss_kib bars" of one run
    local bin=$1; shift
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$TMP/t" "$bin" replay --speed max "$@" > "$TMP/out" 2>/dev/null
    t1=$(date +%s%N)
    read -r rss < "$TMP/t"
    echo "$(awk -v n="$N" -v ns="$((t1 - t0))" 'BEGIN { printf "%.0f", n / (ns > 0 ? ns / 1e9 : 0.01) }') $rss $(wc -l < "$TMP/out")"
}

declare -A rate rss lines
cases=("bars 1m|--bars 1m $TMP/c50.jsonl" "bars 1s|--bars 1s $TMP/c50.jsonl" "5000 codes, bars 1m|--bars 1m $TMP/c5000.jsonl" "plain|$TMP/c50.jsonl")
bins=("$BIN")
[ -n "${BEFORE:-}" ] && bins+=("$BEFORE")
names=()
for c in "${cases[@]}"; do
    names+=("${c%%|*}")
    [ -n "${BEFORE:-}" ] && names+=("${c%%|*} (before)")
done
for r in $(seq 1 "$RUNS"); do
    # With BEFORE, which binary goes first alternates from run to run.
    order=("${bins[@]}")
    [ $((r % 2)) = 0 ] && [ "${#bins[@]}" = 2 ] && order=("${bins[1]}" "${bins[0]}")
    for c in "${cases[@]}"; do
        for bin in "${order[@]}"; do
            name=${c%%|*}
            [ "$bin" != "$BIN" ] && name="$name (before)"
            # shellcheck disable=SC2086
            read -r tps kib n < <(one "$bin" ${c#*|})
            rate[$name]+="$tps "; rss[$name]+="$kib "; lines[$name]=$n
            say "run $r: $name: $tps trades/s, $kib KiB, $n lines out"
        done
    done
done
echo "# bars benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, commit $(git rev-parse --short HEAD))"
echo
echo "| replay --speed max of $N trades | trades/s | peak RSS KiB | lines written |"
echo "| --- | ---: | ---: | ---: |"
for name in "${names[@]}"; do
    echo "| $name | $(printf '%s\n' ${rate[$name]} | median) | $(printf '%s\n' ${rss[$name]} | median) | ${lines[$name]} |"
done
