#!/usr/bin/env bash
# Run the Recipes against `alltick-stream --demo` and check what they produce.
#
#   scripts/recipes/check.sh            # every recipe
#   scripts/recipes/check.sh jq-price redis
#
# The recipes are the fenced blocks that follow a `<!-- recipe: NAME -->`
# line, read from docs/RECIPES.md (RECIPES_DOC=path overrides), and run as
# written, each in its own temporary directory. In them `alltick-stream` is
# a shell function that runs `alltick-stream --demo` for a few seconds (then
# SIGTERM), copying its stdout to raw.jsonl so the result can be compared
# with what the tool wrote.
# Each recipe prints PASS, SKIP (a tool it needs is missing, with how to get
# it) or FAIL; the exit status is 1 if any failed. Everything runs on
# 127.0.0.1 (a redis-server on a free port, kcat's in-process mock Kafka
# cluster) and every step is bounded by `timeout`. Not part of `cargo test`.
#
# Needs: bash, python3, jq, awk, timeout, mkfifo. Optional: gawk, redis-server
# and redis-cli, kcat, systemd-analyze; pip (DuckDB is installed into a venv
# under the target directory; SKIP if that fails).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
target="${CARGO_TARGET_DIR:-$root/target}"

doc=${RECIPES_DOC:-$root/docs/RECIPES.md}
[ -f "$doc" ] || { echo "check.sh: no recipes file $doc" >&2; exit 2; }

echo "check.sh: building the release binary" >&2
cargo build --release --quiet || { echo "check.sh: cargo build failed" >&2; exit 1; }
BIN="$target/release/alltick-stream"

work=$(mktemp -d "${TMPDIR:-/tmp}/alltick-recipes.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

# --- the recipe blocks -------------------------------------------------------

mkdir -p "$work/blocks"
awk -v dir="$work/blocks" '
    /^<!-- recipe: [a-z0-9-]+ -->$/ { name = $3; want = 1; next }
    want && /^```[a-z]+$/ { lang = substr($0, 4); f = dir "/" name "." lang; inblock = 1; want = 0; printf "" > f; next }
    inblock && /^```$/ { inblock = 0; close(f); next }
    inblock { print > f }
' "$doc"

pass=0 fail=0 skip=0
say_pass() { echo "PASS $1"; pass=$((pass + 1)); }
say_skip() { echo "SKIP $1: $2"; skip=$((skip + 1)); }
say_fail() {
    echo "FAIL $1: $2"
    fail=$((fail + 1))
    local f
    for f in "$dir"/*.log "$dir"/*.err; do
        [ -s "$f" ] && { echo "--- $(basename "$f"):"; tail -n 20 "$f"; }
    done
}

# A fresh directory with the prelude scripts run before each block.
new_dir() {
    dir="$work/$1"
    mkdir -p "$dir"
    cat >"$dir/prelude.sh" <<EOF
BIN='$BIN'
RUN_SECS=\${RUN_SECS:-3}
alltick-stream() {
    timeout -s TERM -k 5 "\$RUN_SECS" "\$BIN" --demo "\$@" 2>>tool.log | tee -a raw.jsonl
}
EOF
}

# run_block NAME [LANG]: run the recipe's block in $dir, bounded, with
# stdout to out.txt and stderr to block.err. Extra env comes from the caller;
# BLOCK_SED, if set, is a sed script applied to a shell block first.
run_block() {
    local name=$1 lang=${2:-sh} f="$work/blocks/$1.${2:-sh}"
    [ -f "$f" ] || { echo "no block for recipe $name in $doc" >"$dir/block.err"; return 99; }
    if [ "$lang" = sh ]; then
        { cat "$dir/prelude.sh"; sed -e "${BLOCK_SED:-}" "$f"; } >"$dir/script.sh"
        echo 'wait' >>"$dir/script.sh"
        (cd "$dir" && timeout -k 5 60 bash script.sh >out.txt 2>block.err)
    else
        cp "$f" "$dir/script.py"
        (cd "$dir" && timeout -k 5 60 python3 script.py >out.txt 2>block.err)
    fi
}

# Assertions in Python (exact decimals). Usage: py NAME ARGS... (in $dir).
cat >"$work/asserts.py" <<'EOF'
import json, sys
from decimal import Decimal

def lines(path):
    with open(path) as f:
        return [json.loads(l, parse_float=Decimal, parse_int=Decimal) for l in f if l.strip()]

def key(t):
    return (t["code"], t["seq"])

def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)

what, args = sys.argv[1], sys.argv[2:]
raw = lines("raw.jsonl")
if len(raw) < 2:
    fail(f"the tool wrote {len(raw)} trades")
if what == "select":
    field, op, value = args
    want = [key(t) for t in raw if (t[field] > Decimal(value) if op == ">" else t[field] == value)]
    got = lines("out.txt")
    if [key(t) for t in got] != want:
        fail(f"selected {len(got)} trades, expected {len(want)}")
    for g, t in zip(got, (t for t in raw if key(t) in set(want))):
        if g != t:
            fail(f"trade changed: {g} != {t}")
elif what == "last":
    last = {}
    for t in raw:
        last[t["symbol"]] = t["price"]
    if args == ["capture"]:  # one object, pretty-printed
        got = [json.load(open("out.txt"), parse_float=Decimal, parse_int=Decimal)]
    else:
        got = lines("out.txt")
    if args == ["live"] and len(got) != len(raw):
        fail(f"{len(got)} maps for {len(raw)} trades")
    if got[-1] != last:
        fail(f"last prices {got[-1]} != {last}")
elif what == "tail-is":
    symbol, n = args[0], int(args[1])
    got = lines("ticks.jsonl")
    if [t["symbol"] for t in got[-n:]] != [symbol] * n:
        fail(f"the last {n} trades are not all {symbol}: {[t['symbol'] for t in got[-n:]]}")
else:
    fail(f"unknown assertion {what}")
EOF
py() { (cd "$dir" && python3 "$work/asserts.py" "$@") 2>>"$dir/assert.err"; }

# wait_until SECS COMMAND...: poll COMMAND every 0.1 s, at most SECS seconds.
wait_until() {
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}
has_lines() { [ -f "$1" ] && [ "$(grep -c "$2" "$1")" -ge "$3" ]; }

# --- the checks --------------------------------------------------------------

check_jq-price() {
    run_block jq-price || { say_fail "$1" "block failed"; return; }
    py select price '>' 200 && say_pass "$1" || say_fail "$1" "wrong selection"
}

check_jq-symbol() {
    run_block jq-symbol || { say_fail "$1" "block failed"; return; }
    grep -q '"NASDAQ:AAPL"' "$dir/out.txt" || { say_fail "$1" "no AAPL trade selected"; return; }
    py select symbol '==' NASDAQ:AAPL && say_pass "$1" || say_fail "$1" "wrong selection"
}

check_jq-last-capture() {
    (cd "$dir" && . ./prelude.sh && alltick-stream NASDAQ:AAPL NASDAQ:TSLA >ticks.jsonl)
    run_block jq-last-capture || { say_fail "$1" "block failed"; return; }
    py last capture && say_pass "$1" || say_fail "$1" "wrong last prices"
}

check_jq-last-live() {
    run_block jq-last-live || { say_fail "$1" "block failed"; return; }
    py last live && say_pass "$1" || say_fail "$1" "wrong maps"
}

check_fifo-shell() {
    # The block starts the tool in the background; its two writers come and
    # go, 2 s apart so that the tool reads the first line alone (with `<ctl`
    # in place of `<>ctl` it would then see EOF and miss the second).
    BLOCK_SED='/^echo .*>ctl/a sleep 2' RUN_SECS=7 run_block fifo-shell ||
        { say_fail "$1" "block failed"; return; }
    grep -q '"symbol":"NYSE:IBM"' "$dir/ticks.jsonl" || { say_fail "$1" "+NYSE:IBM had no effect"; return; }
    py tail-is NYSE:IBM 3 || { say_fail "$1" "-NASDAQ:AAPL had no effect"; return; }
    say_pass "$1"
}

check_fifo-python() {
    (
        cd "$dir" && mkfifo ctl &&
            exec timeout -s TERM 6 "$BIN" --demo NASDAQ:AAPL <>ctl >ticks.jsonl 2>tool.log
    ) &
    local tool=$!
    pids+=("$tool")
    if ! wait_until 10 has_lines "$dir/ticks.jsonl" NASDAQ:AAPL 1; then
        say_fail "$1" "the tool wrote nothing"; wait "$tool"; return
    fi
    run_block fifo-python python || { say_fail "$1" "writer failed"; wait "$tool"; return; }
    wait "$tool"
    cp "$dir/ticks.jsonl" "$dir/raw.jsonl"
    grep -q '"symbol":"NYSE:IBM"' "$dir/ticks.jsonl" || { say_fail "$1" "+NYSE:IBM had no effect"; return; }
    py tail-is NYSE:IBM 3 || { say_fail "$1" "-NASDAQ:AAPL had no effect"; return; }
    # With nothing holding the FIFO open, the writer fails at once.
    if (cd "$dir" && timeout 5 python3 script.py >/dev/null 2>enxio.log); then
        say_fail "$1" "the writer did not fail without a reader"; return
    fi
    grep -q 'No such device or address' "$dir/enxio.log" || { say_fail "$1" "no ENXIO without a reader"; return; }
    say_pass "$1"
}

check_daily-output() {
    new_dir "daily-output"
    run_block daily-output || { say_fail "$1" "block failed"; return; }
    local today="$dir/ticks-$(date -u +%F).jsonl"
    [ -s "$today" ] || { say_fail "$1" "no $today"; return; }
    # Run it again: the file grows, no line is in it twice, every line parses.
    run_block daily-output || { say_fail "$1" "second run failed"; return; }
    if ! python3 - "$dir" <<'PY'
import glob, json, sys
seen, n = set(), 0
for f in glob.glob(sys.argv[1] + "/ticks-*.jsonl"):
    for line in open(f):
        v = json.loads(line)
        if v["type"] == "trade":
            k = (v["code"], v["seq"], v["time"])
            assert k not in seen, k
            seen.add(k)
            n += 1
assert n > 0
PY
    then
        say_fail "$1" "a line twice or not JSON"; return
    fi
    say_pass "$1"
}

check_daily-files() {
    local awks=(awk) a today
    command -v gawk >/dev/null && awks+=(gawk)
    for a in "${awks[@]}"; do
        new_dir "daily-files-$a"
        mkdir -p "$dir/bin" && ln -s "$(command -v "$a")" "$dir/bin/awk"
        # Local time 9 h ahead of UTC: files must still follow UTC days.
        TZ=JST-9 PATH="$dir/bin:$PATH" run_block daily-files || { say_fail "$1 ($a)" "block failed"; continue; }
        # Live: everything in the day files, in order (one file unless
        # midnight UTC passed during the run).
        today="ticks-$(date -u +%F).jsonl"
        if [ ! -f "$dir/$today" ] || ! (cd "$dir" && cat ticks-*.jsonl | cmp -s - raw.jsonl); then
            say_fail "$1 ($a)" "day files differ from the tool's output"; continue
        fi
        # Across midnight UTC, with a late trade from the day before.
        mkdir "$dir/midnight"
        cat >"$dir/midnight/feed.jsonl" <<'EOF'
{"type":"trade","symbol":"NASDAQ:AAPL","code":"AAPL.US","seq":1,"time":1767657599999,"price":1.00,"volume":1,"turnover":1.00,"side":"buy"}
{"type":"trade","symbol":"NASDAQ:AAPL","code":"AAPL.US","seq":2,"time":1767657600000,"price":2.00,"volume":1,"turnover":2.00,"side":"buy"}
{"type":"trade","symbol":"NASDAQ:TSLA","code":"TSLA.US","seq":1,"time":1767657599998,"price":3.00,"volume":1,"turnover":3.00,"side":"buy"}
EOF
        (
            cd "$dir/midnight" &&
                { echo 'alltick-stream() { cat feed.jsonl; }'; cat "$work/blocks/daily-files.sh"; } >script.sh &&
                TZ=JST-9 PATH="$dir/bin:$PATH" timeout 20 bash script.sh
        )
        if [ "$(grep -c . "$dir/midnight/ticks-2026-01-05.jsonl")" != 2 ] ||
            ! grep -q '"seq":2' "$dir/midnight/ticks-2026-01-06.jsonl" ||
            [ "$(ls "$dir/midnight" | grep -c '^ticks-')" != 2 ]; then
            say_fail "$1 ($a)" "midnight split wrong: $(cd "$dir/midnight" && wc -l ticks-* | tr '\n' ' ')"
            continue
        fi
        say_pass "$1 ($a)"
    done
}

# DuckDB: the Python package in a venv (its CLI is not on PyPI); `duckdb -c`
# in the block runs the same SQL through it.
duckdb_python() {
    local venv="$target/recipes-venv"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import duckdb' 2>/dev/null; then
        rm -rf "$venv"
        python3 -m venv "$venv" >/dev/null 2>&1 &&
            timeout 300 "$venv/bin/pip" install --quiet duckdb >"$work/pip.log" 2>&1 ||
            { rm -rf "$venv"; return 1; }
    fi
    echo "$venv/bin/python"
}

duckdb_fixture() {
    # The tool's output plus trades that DOUBLE would not keep exact.
    (cd "$dir" && . ./prelude.sh && alltick-stream NASDAQ:AAPL NASDAQ:TSLA >"ticks-$(date -u +%F).jsonl")
    cat >"$dir/ticks-2020-11-16.jsonl" <<'EOF'
{"type":"trade","symbol":"NASDAQ:AAPL","code":"AAPL.US","seq":1605509068000001,"time":1605509068000,"price":123456789012.123456,"volume":300,"turnover":12345.60,"side":"buy"}
{"type":"trade","symbol":"EURUSD","code":"EURUSD","seq":1605509068000002,"time":1605509068001,"price":1.08765,"volume":null,"turnover":null,"side":null}
EOF
    cat "$dir"/ticks-*.jsonl >"$dir/all.jsonl"
}

# Compare a Parquet or CSV file with all.jsonl, value by value.
duckdb_compare() {
    "$1" - "$2" <<'EOF' 2>>"$dir/assert.err"
import csv, json, sys
from decimal import Decimal
import duckdb
out = sys.argv[1]
want = [json.loads(l, parse_float=Decimal) for l in open("all.jsonl")]
cols = ["type", "symbol", "code", "seq", "time", "price", "volume", "turnover", "side"]
if out.endswith(".parquet"):
    rel = duckdb.sql(f"SELECT {', '.join(cols)}, epoch_ms(ts) AS ts_ms FROM '{out}'")
    types = dict(zip(rel.columns, map(str, rel.types)))
    if types["price"] != "DECIMAL(18,6)":
        sys.exit(f"price is {types['price']}")
    got = [dict(zip(rel.columns, r)) for r in rel.fetchall()]
else:
    got = list(csv.DictReader(open(out)))
    for g in got:
        for k in ("seq", "time", "price", "volume", "turnover"):
            g[k] = Decimal(g[k]) if g[k] != "" else None
        g["side"] = g["side"] or None
key = lambda t: (t["code"], int(t["seq"]))
got.sort(key=key); want.sort(key=key)
if len(got) != len(want):
    sys.exit(f"{len(got)} rows, expected {len(want)}")
for g, w in zip(got, want):
    for c in cols:
        gv, wv = g[c], w[c]
        if isinstance(wv, (int, Decimal)) and gv is not None:
            gv, wv = Decimal(gv), Decimal(wv)
        if gv != wv:
            sys.exit(f"{c}: {g[c]!r} != {w[c]!r} in {w}")
    if "ts_ms" in g and g["ts_ms"] != w["time"]:
        sys.exit(f"ts {g['ts_ms']} != time {w['time']}")
EOF
}

check_duckdb() {
    local python
    python=$(duckdb_python) || { say_skip "$1" "cannot pip install duckdb: $(tail -n 1 "$work/pip.log" 2>/dev/null)"; return; }
    duckdb_fixture
    mkdir -p "$dir/bin"
    printf '#!/bin/sh\n[ "$1" = -c ] || exit 2\nexec %s -c "import duckdb, sys; duckdb.connect().execute(sys.argv[1])" "$2"\n' \
        "$python" >"$dir/bin/duckdb"
    chmod +x "$dir/bin/duckdb"
    command -v duckdb >/dev/null && echo "check.sh: using the duckdb Python package, not $(command -v duckdb)" >&2
    PATH="$dir/bin:$PATH" run_block duckdb || { say_fail "$1" "block failed"; return; }
    (cd "$dir" && duckdb_compare "$python" ticks.parquet && duckdb_compare "$python" ticks.csv) &&
        say_pass "$1" || say_fail "$1" "converted values differ"
}

check_to-parquet() {
    local python
    python=$(duckdb_python) || { say_skip "$1" "cannot pip install duckdb: $(tail -n 1 "$work/pip.log" 2>/dev/null)"; return; }
    duckdb_fixture
    mkdir -p "$dir/bin" "$dir/scripts/recipes"
    ln -s "$root/scripts/recipes/to_parquet.py" "$dir/scripts/recipes/to_parquet.py"
    printf '#!/bin/sh\nexec %s "$@"\n' "$python" >"$dir/bin/python3"
    chmod +x "$dir/bin/python3"
    PATH="$dir/bin:$PATH" run_block to-parquet || { say_fail "$1" "block failed"; return; }
    (cd "$dir" && duckdb_compare "$python" ticks.parquet) || { say_fail "$1" "converted values differ"; return; }
    # CSV too, by the output's extension.
    (cd "$dir" && PATH="$dir/bin:$PATH" python3 scripts/recipes/to_parquet.py ticks.csv 'ticks-*.jsonl' 2>>block.err &&
        duckdb_compare "$python" ticks.csv) && say_pass "$1" || say_fail "$1" "CSV differs"
}

check_duckdb-bars() {
    local python
    python=$(duckdb_python) || { say_skip "$1" "cannot pip install duckdb: $(tail -n 1 "$work/pip.log" 2>/dev/null)"; return; }
    mkdir -p "$dir/bin"
    printf '#!/bin/sh\n[ "$1" = -c ] || exit 2\nexec %s -c "import duckdb, sys; duckdb.connect().execute(sys.argv[1])" "$2"\n' \
        "$python" >"$dir/bin/duckdb"
    chmod +x "$dir/bin/duckdb"
    RUN_SECS=4 PATH="$dir/bin:$PATH" run_block duckdb-bars || { say_fail "$1" "block failed"; return; }
    # The Parquet rows hold the bar lines' values, exactly.
    (cd "$dir" && "$python" - <<'EOF' 2>>assert.err
import json, sys
from datetime import timezone
from decimal import Decimal
import duckdb
want = [json.loads(l, parse_float=Decimal) for l in open("bars.jsonl")]
rel = duckdb.sql("SELECT * FROM 'bars.parquet'")
types = dict(zip(rel.columns, map(str, rel.types)))
if types["close"] != "DECIMAL(18,6)" or not types["start"].startswith("TIMESTAMP"):
    sys.exit(f"types {types}")
got = [dict(zip(rel.columns, r)) for r in rel.fetchall()]
if not want or len(got) != len(want):
    sys.exit(f"{len(got)} rows, {len(want)} bars")
for g, w in zip(got, want):
    for k in ("symbol", "code", "interval", "trades"):
        if g[k] != w[k]:
            sys.exit(f"{k}: {g[k]!r} != {w[k]!r}")
    for k in ("open", "high", "low", "close", "volume", "turnover"):
        if (g[k] is None) != (w[k] is None) or (g[k] is not None and Decimal(g[k]) != Decimal(w[k])):
            sys.exit(f"{k}: {g[k]!r} != {w[k]!r}")
    if round(g["start"].replace(tzinfo=timezone.utc).timestamp() * 1000) != w["start"]:
        sys.exit(f"start {g['start']} != {w['start']}")
EOF
    ) && say_pass "$1" || say_fail "$1" "Parquet differs from the bar lines"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

check_redis() {
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
        { say_skip "$1" "needs redis-server and redis-cli (apt-get install redis-server redis-tools)"; return; }
    local port rpid
    port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
    rpid=$!
    pids+=("$rpid")
    local rc=(command redis-cli -h 127.0.0.1 -p "$port")
    xlen_at_least() { [ "$("${rc[@]}" XLEN ticks 2>/dev/null || echo 0)" -ge "$1" ]; }
    wait_until 10 "${rc[@]}" ping >/dev/null 2>&1 || { say_fail "$1" "redis-server did not start"; return; }
    # The block says -p 6379; point it at this server.
    cat >>"$dir/prelude.sh" <<EOF
redis-cli() { local a=() x; for x in "\$@"; do [ "\$x" = 6379 ] && x=$port; a+=("\$x"); done; command redis-cli "\${a[@]}"; }
EOF
    RUN_SECS=5 run_block redis &
    local block=$!
    # Entries arrive while the tool runs, not only at EOF.
    local live=no
    wait_until 10 has_lines "$dir/raw.jsonl" '"type":"trade"' 3 &&
        wait_until 5 xlen_at_least 2 && live=yes
    wait "$block" || { say_fail "$1" "block failed"; kill "$rpid"; return; }
    "${rc[@]}" --raw XRANGE ticks - + | awk 'NR % 3 == 0' >"$dir/stream.jsonl"
    [ "$live" = yes ] || { say_fail "$1" "nothing reached Redis while the tool ran"; kill "$rpid"; return; }
    cmp -s "$dir/stream.jsonl" "$dir/raw.jsonl" || {
        say_fail "$1" "stream entries differ from the tool's lines ($(wc -l <"$dir/stream.jsonl") vs $(wc -l <"$dir/raw.jsonl"))"
        kill "$rpid"; return
    }
    # Quotes and backslashes (in a code the server sent, say) arrive intact.
    mkdir "$dir/quotes"
    cp "$dir/prelude.sh" "$dir/quotes/prelude.sh"
    cat >"$dir/quotes/raw.jsonl" <<'FEED'
{"type":"trade","symbol":"O'X","code":"O'X","seq":1,"time":1,"price":1,"volume":null,"turnover":null,"side":null}
{"type":"trade","symbol":"A\\'B \"q\" '","code":"A\\'B","seq":2,"time":2,"price":2,"volume":null,"turnover":null,"side":null}
FEED
    echo 'alltick-stream() { cat raw.jsonl; }' >>"$dir/quotes/prelude.sh"
    "${rc[@]}" DEL ticks >/dev/null
    (dir=$dir/quotes; run_block redis) || { say_fail "$1" "block failed on quotes"; kill "$rpid"; return; }
    "${rc[@]}" --raw XRANGE ticks - + | awk 'NR % 3 == 0' >"$dir/quotes/stream.jsonl"
    kill "$rpid"; wait "$rpid" 2>/dev/null
    cmp -s "$dir/quotes/stream.jsonl" "$dir/quotes/raw.jsonl" ||
        { say_fail "$1" "lines with quotes changed: $(cat "$dir/quotes/stream.jsonl")"; return; }
    say_pass "$1"
}

# kcat with librdkafka's mock cluster (test.mock.num.brokers): the producer
# in the block hosts a Kafka-protocol broker on 127.0.0.1 in its own process
# (ignoring -b) and prints its address; a consumer reads the topic back
# while the producer still runs.
kcat_check() {
    local name=$1 keyed=$2
    command -v kcat >/dev/null || { say_skip "$name" "needs kcat (apt-get install kcat)"; return; }
    echo 'test.mock.num.brokers=1' >"$dir/kcat.conf"
    KCAT_CONFIG="$dir/kcat.conf" RUN_SECS=8 run_block "$name" &
    local block=$! addr=""
    wait_until 10 grep -qs 'replaced with' "$dir/block.err" &&
        addr=$(grep -o 'replaced with [0-9.:]*' "$dir/block.err" | awk '{ print $3 }')
    if [ -z "$addr" ] || ! wait_until 10 has_lines "$dir/raw.jsonl" '"type":"trade"' 6; then
        wait "$block"; say_fail "$name" "no mock cluster or no trades"; return
    fi
    sleep 1 # let the producer deliver what it has read
    env -u KCAT_CONFIG timeout 15 kcat -C -b "$addr" -t ticks -o beginning -e -q -f '%p\t%k\t%s\n' \
        >"$dir/consumed.txt" 2>"$dir/consumer.err"
    wait "$block" || { say_fail "$name" "block failed"; return; }
    (cd "$dir" && python3 - "$keyed" <<'EOF' 2>>"$dir/assert.err") || { say_fail "$name" "consumed messages wrong"; return; }
import json, sys
keyed = sys.argv[1] == "yes"
raw = open("raw.jsonl").read().splitlines()
got = [l.split("\t", 2) for l in open("consumed.txt").read().splitlines()]
if len(got) < 5:
    sys.exit(f"only {len(got)} messages consumed")
pos = {line: i for i, line in enumerate(raw)}
per_partition = {}
for part, key, msg in got:
    if msg not in pos:
        sys.exit(f"message is not a line of the tool's output: {msg}")
    if keyed and key != json.loads(msg)["code"]:
        sys.exit(f"key {key!r} is not the code of {msg}")
    if not keyed and key != "":
        sys.exit(f"unexpected key {key!r}")
    per_partition.setdefault(part, []).append(pos[msg])
for part, idx in per_partition.items():
    if idx != sorted(idx):
        sys.exit(f"partition {part} is out of order")
if keyed:
    codes = {}
    for part, key, _ in got:
        codes.setdefault(key, set()).add(part)
    if any(len(p) != 1 for p in codes.values()):
        sys.exit(f"a code spans partitions: {codes}")
if len(got) != len(set(m for _, _, m in got)):
    sys.exit("duplicate messages")
EOF
    say_pass "$name"
}
check_kafka() { kcat_check "$1" no; }
check_kafka-keyed() { kcat_check "$1" yes; }

check_systemd-unit() {
    local unit="$root/scripts/alltick-stream.service" k
    for k in 'Restart=always' 'RestartSec=5' 'User=alltick' 'EnvironmentFile=/etc/alltick-stream/env' \
        'StandardOutput=append:/var/lib/alltick-stream/ticks.jsonl' 'NoNewPrivileges=yes' \
        'ProtectSystem=strict' 'ReadWritePaths=/var/lib/alltick-stream' 'PrivateTmp=yes' \
        'ExecStart=/usr/local/bin/alltick-stream '; do
        grep -q "^$k" "$unit" || { say_fail "$1" "missing $k"; return; }
    done
    grep -q 'ALLTICK_TOKEN=[^.]' "$unit" && { say_fail "$1" "a token in the unit"; return; }
    command -v systemd-analyze >/dev/null ||
        { say_skip "$1" "keys present; systemd-analyze not installed, unit not verified"; return; }
    # verify wants ExecStart's binary to exist: point it at the build.
    sed "s#^ExecStart=/usr/local/bin/alltick-stream#ExecStart=$BIN#" "$unit" >"$dir/alltick-stream.service"
    (cd "$dir" && systemd-analyze verify alltick-stream.service >verify.log 2>&1) &&
        ! grep -q . "$dir/verify.log" || { say_fail "$1" "systemd-analyze verify complained"; return; }
    say_pass "$1"
}

# --- main --------------------------------------------------------------------

all=(jq-price jq-symbol jq-last-capture jq-last-live fifo-shell fifo-python daily-output daily-files
    duckdb to-parquet duckdb-bars redis kafka kafka-keyed systemd-unit)
# Every marked block must have a check, and every check (but the unit) a block.
for f in "$work"/blocks/*; do
    [ -e "$f" ] || continue
    n=$(basename "${f%.*}")
    [[ " ${all[*]} " == *" $n "* ]] || { dir=$work; say_fail "$n" "a recipe block without a check in check.sh"; }
done
for n in "${all[@]}"; do
    [ "$n" = systemd-unit ] && continue
    ls "$work/blocks/$n".* >/dev/null 2>&1 || { dir=$work; say_fail "$n" "no <!-- recipe: $n --> block in $doc"; }
done

for n in "${@:-${all[@]}}"; do
    [[ " ${all[*]} " == *" $n "* ]] || { echo "check.sh: no recipe $n (recipes: ${all[*]})" >&2; exit 2; }
    ls "$work/blocks/$n".* >/dev/null 2>&1 || [ "$n" = systemd-unit ] || continue
    new_dir "$n"
    "check_$n" "$n"
done

echo "recipes: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
