#!/usr/bin/env bash
# Benchmark the Parquet form (src/form/parquet/) against DuckDB's COPY.
#
#   scripts/parquet_bench.sh           # N=2000000 trades, RUNS=3
#   CODECS=zstd:3 scripts/parquet_bench.sh   # the shipped codec only
#
# Two captures of N trade lines: "random", the generator of
# scripts/bars_bench.sh (50 codes, random prices of 0 to 4 decimals, random
# volumes and turnovers: the worst case for a dictionary), and "walk" (50
# codes, each price a random walk in cents, round-lot volumes, turnover =
# price x volume, sides buy/sell/null: closer to a real day). Each is written
# by scripts/bench/parquet_bench.rs with every codec asked for (CODECS, default
# "zstd:1 zstd:3 zstd:9 snappy none"; snappy needs the crate feature, built
# here with --features parquet/snap) and row groups of GROUP_ROWS rows (default
# "65536"), and by DuckDB (python package) with zstd and snappy, decimals
# read from the JSON text (exact): `seq` UBIGINT, `time` as a timestamp
# (epoch_ms), prices DECIMAL(18,8), volume and turnover DECIMAL(38,8).
#
# The tool itself is measured too: `alltick-stream replay --speed max
# --format parquet CAPTURE > OUT` (BIN= another build).
#
# Measured, each the median of RUNS runs: rows/s (N / wall time), peak RSS
# (/usr/bin/time -f %M) and the file's size. DuckDB's wall time includes
# starting Python and importing duckdb, also measured and printed on its own.
# With CHECK=1 each of our files is checked against its capture with
# scripts/parquet_check.py (pyarrow, DuckDB and polars).
set -uo pipefail
: "${N:=2000000}" "${RUNS:=3}" "${CODECS:=zstd:1 zstd:3 zstd:9 snappy none}" "${GROUP_ROWS:=65536}" "${CHECK:=0}"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
say() { echo "parquet_bench: $*" >&2; }
[ -x /usr/bin/time ] || { apt-get update -qq >&2 && apt-get install -y -qq time >&2; } || { say "no /usr/bin/time"; exit 1; }
python3 -c 'import duckdb' 2>/dev/null || { say "pip install duckdb (and pyarrow polars for CHECK=1)"; exit 1; }
say "building"
cargo build --release --quiet --example parquet_bench --features parquet/snap || exit 1
# The tool itself, as shipped (zstd only): `replay --speed max --format parquet`.
cargo build --release --quiet --bin alltick-stream || exit 1
BENCH=target/release/examples/parquet_bench
TOOL=${BIN:-target/release/alltick-stream}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/alltick-parquet-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

say "generating $N trades, twice"
python3 scripts/bench/trades.py random "$N" 50 "$TMP/random.jsonl"
python3 scripts/bench/trades.py walk "$N" "$TMP/walk.jsonl"

# The tool as a command of (capture, out): exec'd, so the RSS is its own.
printf 'exec %s replay --speed max --format parquet "$1" > "$2"\n' "$TOOL" > "$TMP/tool.sh"

cat > "$TMP/duck.py" <<'PY'
import sys, duckdb
src, out, codec = sys.argv[1:4]
duckdb.sql(f"""COPY (SELECT type, symbol, code, seq, epoch_ms(time) AS time,
    price::DECIMAL(18,8) AS price, volume::DECIMAL(38,8) AS volume,
    turnover::DECIMAL(38,8) AS turnover, side
  FROM read_json('{src}', format = 'newline_delimited', columns = {{
    type: 'VARCHAR', symbol: 'VARCHAR', code: 'VARCHAR', seq: 'UBIGINT', time: 'BIGINT',
    price: 'VARCHAR', volume: 'VARCHAR', turnover: 'VARCHAR', side: 'VARCHAR'}}))
  TO '{out}' (FORMAT parquet, COMPRESSION {codec})""")
PY

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
one() {  # one OUT COMMAND...: "rows/s rss_kib bytes" of one run
    local out=$1; shift
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$TMP/t" "$@" > /dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; return 1; }
    t1=$(date +%s%N)
    read -r rss < "$TMP/t"
    echo "$(awk -v n="$N" -v ns="$((t1 - t0))" 'BEGIN { printf "%.0f", n / (ns / 1e9) }') $rss $(stat -c %s "$out")"
}

start=()
for r in $(seq 1 "$RUNS"); do
    t0=$(date +%s%N); python3 -c 'import duckdb; duckdb.sql("SELECT 1").fetchall()'; t1=$(date +%s%N)
    start+=("$(( (t1 - t0) / 1000000 ))")
done

echo "# Parquet benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, commit $(git rev-parse --short HEAD), N=$N, median of $RUNS)"
echo
echo "| capture | writer | rows/s | peak RSS KiB | bytes |"
echo "| --- | --- | ---: | ---: | ---: |"
for capture in random walk; do
    cases=()
    for codec in $CODECS; do
        for group in $GROUP_ROWS; do
            cases+=("ours $codec, groups of $group|$BENCH $TMP/$capture.jsonl OUT --codec $codec --group $group")
        done
    done
    cases+=("alltick-stream replay --format parquet|sh $TMP/tool.sh $TMP/$capture.jsonl OUT")
    cases+=("DuckDB zstd|python3 $TMP/duck.py $TMP/$capture.jsonl OUT zstd")
    cases+=("DuckDB snappy|python3 $TMP/duck.py $TMP/$capture.jsonl OUT snappy")
    for c in "${cases[@]}"; do
        name=${c%%|*}
        out="$TMP/out.parquet"
        cmd=${c#*|}
        cmd=${cmd/OUT/$out}
        rates=() rsses=() size=0
        for r in $(seq 1 "$RUNS"); do
            # shellcheck disable=SC2086
            read -r tps kib size < <(one "$out" $cmd) || exit 1
            rates+=("$tps"); rsses+=("$kib")
            say "$capture, $name, run $r: $tps rows/s, $kib KiB, $size bytes"
        done
        if [ "$CHECK" = 1 ] && [ "${name%% *}" = ours ]; then
            python3 scripts/parquet_check.py "$out" "$TMP/$capture.jsonl" >&2 || exit 1
        fi
        echo "| $capture | $name | $(printf '%s\n' "${rates[@]}" | median) | $(printf '%s\n' "${rsses[@]}" | median) | $size |"
    done
done
echo
echo "Starting Python and importing duckdb: $(printf '%s\n' "${start[@]}" | median) ms (in DuckDB's wall time)."
