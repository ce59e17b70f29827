#!/usr/bin/env bash
# Memory with several connections: the release binary against the simulator
# (a separate process, scripts/bench/sim_server.rs) with 9000 symbols over
# three connections of 3000, for SECS seconds (default 60), under
# /usr/bin/time -v. Prints peak RSS, ticks written and connections opened.
#
#   scripts/rss_connections.sh [SECS] [TICKS_PER_SEC_PER_CODE]
#
# Everything stays on 127.0.0.1. Needs /usr/bin/time (GNU time).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
rate="${2:-1}"
symbols=9000

cargo build --release --quiet
cargo build --release --quiet --example sim_server
target_dir="${CARGO_TARGET_DIR:-target}"
tool="$target_dir/release/alltick-stream"
server="$target_dir/release/examples/sim_server"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The server outlives the tool by a margin, then prints its summary.
"$server" "$rate" $((secs + 15)) >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
url=""
for _ in $(seq 100); do
    url="$(sed -n 's/^URL=//p' "$work/server.out")"
    [[ -n "$url" ]] && break
    sleep 0.1
done
[[ -n "$url" ]] || { echo "sim_server printed no URL" >&2; cat "$work/server.err" >&2; exit 1; }

# S0001.US … S9000.US, on the command line.
mapfile -t codes < <(seq -f 'S%04g.US' 1 "$symbols")

echo "running $tool --url $url --connections 3 --max-symbols 3000 <$symbols symbols> for ${secs} s" >&2
# timeout sends SIGINT (a normal stop, status 0); GNU time reports the
# largest resident set among its waited-for descendants, i.e. the tool's.
set +e
ALLTICK_TOKEN=bench /usr/bin/time -v -o "$work/time.txt" \
    timeout --preserve-status -s INT "$secs" \
    "$tool" --url "$url" --connections 3 --max-symbols 3000 "${codes[@]}" \
    </dev/null 2>"$work/tool.err" | wc -l >"$work/lines.txt"
status="${PIPESTATUS[0]}"
set -e

wait "$server_pid" || true
server_pid=""

peak_kib="$(sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$work/time.txt")"
opened="$(grep -c ': connected to ' "$work/tool.err" || true)"
echo "exit status:          $status"
echo "peak RSS:             ${peak_kib} KiB ($((peak_kib / 1024)) MiB)"
echo "ticks written:        $(cat "$work/lines.txt")"
echo "connections opened:   $opened (tool's stderr: 'connected to')"
echo "server:               $(tail -n 1 "$work/server.out")"
echo "tool stderr ($(wc -l <"$work/tool.err") lines, at most 10 shown):"
if (($(wc -l <"$work/tool.err") <= 10)); then
    sed 's/^/  /' "$work/tool.err"
else
    head -n 5 "$work/tool.err" | sed 's/^/  /'
    echo "  …"
    tail -n 5 "$work/tool.err" | sed 's/^/  /'
fi
