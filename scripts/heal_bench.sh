#!/usr/bin/env bash
# Benchmark what `--heal` costs the live stream: `--bars 1m --output` with
# and without `--heal`, against the same flood of ticks, on this machine.
#
#   scripts/heal_bench.sh                # N=2000000 ticks over M=50 codes, RUNS=5
#   SECTIONS=heal scripts/bench.sh       # the same
#
# Each run starts the flood server (scripts/bench/flood_server.rs: it pushes
# N ticks as fast as the client reads them) and the tool, which writes 1m
# bars into files. With --heal the run is a restart into a capture (a bar
# line minutes old), so a heal is in progress all along: a gap of every
# code from that line to the first acknowledgement, its bars held, each
# code's first trade looked for, and K-lines asked of an HTTP API that is
# down (a closed port), tried again with backoff. The two cases alternate,
# run by run. Measured: ticks/s (the server's own push rate: the client's
# reading sets it), CPU seconds per million ticks (user + system from
# /usr/bin/time -v, over the whole process) and peak RSS; the table gives
# the median of RUNS runs and heal against bars alone.
#
# Then the bars' lateness (LAT_RUNS=2 runs of each case, 0 to skip): the
# flood paced at LAT_RATE=20000 ticks/s for LAT_SECS=150 s, the same two
# cases, and scripts/bench/bar_lateness.py watching the output files: for
# every bar of the minutes after the start (none of them touched by the
# restart's gap), when its line appeared against its end plus the grace
# (2 s), polled every 5 ms. With --heal, the HTTP API answers every
# request with 429 (waited out and asked again), so the heal is in progress
# all along.
set -uo pipefail
: "${N:=2000000}" "${M:=50}" "${RUNS:=5}" "${LAT_RUNS:=2}" "${LAT_RATE:=20000}" "${LAT_SECS:=150}"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
say() { echo "heal_bench: $*" >&2; }
[ -x /usr/bin/time ] || { apt-get update -qq >&2 && apt-get install -y -qq time >&2; } || { say "no /usr/bin/time"; exit 1; }
say "building"
cargo build --release --quiet --bin alltick-stream --example flood_server || exit 1
BIN=target/release/alltick-stream
SERVER=target/release/examples/flood_server
TMP=$(mktemp -d "${TMPDIR:-/tmp}/alltick-heal-bench.XXXXXX")
SRV=""; TOOL=""; BUSY=""
cleanup() {
    for p in $TOOL $SRV $BUSY; do kill "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
CODES=$(for i in $(seq 0 $((M - 1))); do printf 'C%d.US ' "$i"; done)
DEAD=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
API=$DEAD

# start CASE [FLOOD ARGS...]: the flood server and the tool for CASE, into
# $TMP/out (sets SRV, TOOL).
start() {
    local case=$1 dir="$TMP/out" port="" i
    shift
    rm -rf "$dir"; mkdir -p "$dir"
    local extra=()
    if [ "$case" = heal ]; then
        # A capture whose last line is ten minutes old: the start is a restart.
        local then=$(( ($(date +%s) - 600) / 60 * 60000 ))
        printf '{"type":"bar","symbol":"C0.US","code":"C0.US","interval":"1m","start":%d,"end":%d,"open":1,"high":1,"low":1,"close":1,"volume":1,"turnover":1,"trades":1}\n' \
            "$then" $((then + 60000)) > "$dir/$(date -u +%Y-%m-%d).jsonl"
        extra=(--heal --heal-wait 600 --stock-api "http://127.0.0.1:$API" --forex-api "http://127.0.0.1:$API")
    fi
    "$SERVER" 0 "$@" > "$TMP/server.out" 2> "$TMP/server.err" &
    SRV=$!
    for i in $(seq 1 100); do
        port=$(sed -n 's/^PORT=//p' "$TMP/server.out")
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { say "flood_server did not start"; exit 1; }
    /usr/bin/time -v -o "$TMP/time.out" env ALLTICK_TOKEN=bench-token "$BIN" \
        --url "ws://127.0.0.1:$port/quote-stock-b-ws-api" --bars 1m "${extra[@]}" \
        --output "$dir/%Y-%m-%d.jsonl" $CODES < /dev/null > /dev/null 2> "$TMP/tool.err" &
    TOOL=$!
}

# stop: SIGINT to the tool itself (GNU time, its parent, ignores it), then
# the server.
stop() {
    pkill -INT -P "$TOOL"; wait "$TOOL" 2>/dev/null; TOOL=""
    kill "$SRV"; wait "$SRV" 2>/dev/null; SRV=""
}

# one CASE: append "CASE rate cpu_per_m rss_kib" of one run to the results.
one() {
    local case=$1 dir="$TMP/out" i
    start "$case" --count "$N"
    for i in $(seq 1 1200); do
        grep -q 'pushed' "$TMP/server.err" && break
        sleep 0.05
    done
    # What the socket still holds is read within a moment of the last push.
    sleep 0.5
    stop
    local rate user sys rss
    rate=$(sed -n 's/.*(\([0-9.]*\) ticks\/s).*/\1/p' "$TMP/server.err" | head -1)
    user=$(sed -n 's/.*User time (seconds): //p' "$TMP/time.out")
    sys=$(sed -n 's/.*System time (seconds): //p' "$TMP/time.out")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$TMP/time.out")
    if [ "$case" = heal ] && ! grep -q 'not running' "$dir"/*.jsonl; then
        say "heal run without its restart gap: $(tail -3 "$TMP/tool.err")"
    fi
    awk -v c="$case" -v r="${rate:-0}" -v u="$user" -v s="$sys" -v n="$N" -v m="$rss" \
        'BEGIN { printf "%s %.0f %.3f %d\n", c, r, (u + s) / n * 1e6, m }' | tee -a "$TMP/results" >&2
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# alternate RUNS FUNCTION WHAT: FUNCTION of each case, the cases taking
# turns, RUNS times.
alternate() {
    local run case
    for run in $(seq 1 "$1"); do
        for case in bars heal; do
            say "$2 run $run: $case (case, $3):"
            "$2" "$case"
        done
    done
}
alternate "$RUNS" one "ticks/s, CPU s per M, peak RSS KiB"
# col FILE CASE K: the median of field K of CASE's lines in FILE.
col() { awk -v c="$2" -v k="$3" '$1 == c { print $k }' "$1" | median; }
# table TITLE FILE HEADER...: the medians of FILE's fields 2.. per case.
table() {
    local title=$1 file=$2 case k
    shift 2
    printf '\n%s\n\n| --bars 1m --output |' "$title"; printf ' %s |' "$@"
    printf '\n| --- |'; printf ' ---: |%.0s' "$@"; echo
    for case in bars heal; do
        printf '| %s |' "$([ "$case" = heal ] && echo "with --heal, a heal in progress" || echo "alone")"
        for k in $(seq 2 $(($# + 1))); do printf ' %s |' "$(col "$file" "$case" "$k")"; done
        echo
    done
}
col_r() { col "$TMP/results" "$@"; }
table "scripts/heal_bench.sh: N=$N ticks over M=$M codes, median of $RUNS runs ($(date -u '+%Y-%m-%d'), $(nproc) cores)" \
    "$TMP/results" "ticks/s" "CPU s per M ticks" "peak RSS KiB"
awk -v a="$(col_r bars 2)" -v b="$(col_r heal 2)" -v c="$(col_r bars 3)" -v d="$(col_r heal 3)" \
    'BEGIN { printf "\nheal against alone: ticks/s %.3f×, CPU per tick %.3f×\n", b / a, d / c }'

# lateness CASE: append "CASE bars p50 p99 max" of one paced run.
lateness() {
    local case=$1 from
    start "$case" --rate "$LAT_RATE" --count $((LAT_RATE * (LAT_SECS + 30)))
    # The first minute that starts 5 s or more after the tool: its first
    # trades (which end the restart's gap) come before it.
    from=$(( ($(date +%s) + 5 + 59) / 60 * 60000 ))
    local got
    got=$(python3 scripts/bench/bar_lateness.py "$TMP/out" "$from" "$LAT_SECS" 2000)
    stop
    if [ "$case" = heal ] && ! grep -q 'stopped before its bars were healed' "$TMP/out"/*.jsonl; then
        say "heal run whose heal was not in progress to the end: $(tail -3 "$TMP/tool.err")"
    fi
    echo "$case $got" | sed 's/[a-z0-9]*=//g' | tee -a "$TMP/lateness" >&2
}
if [ "$LAT_RUNS" -gt 0 ]; then
    # An HTTP API that answers every request with 429: the tool waits and
    # asks again, so the restart's heal stays in progress all run long.
    python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(429); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()' > "$TMP/busy.port" &
    BUSY=$!
    for i in $(seq 1 100); do [ -s "$TMP/busy.port" ] && break; sleep 0.05; done
    API=$(cat "$TMP/busy.port")
    alternate "$LAT_RUNS" lateness "bars, p50, p99, max ms past end + grace"
    table "Bars' lateness: $LAT_RATE ticks/s over M=$M codes for $LAT_SECS s, ms from end + grace to the line in its file, median of $LAT_RUNS runs" \
        "$TMP/lateness" bars "p50 ms" "p99 ms" "max ms"
fi
