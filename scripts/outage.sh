#!/usr/bin/env bash
# Reconnects after short healthy connections: the release binary against a
# simulator (a separate process, scripts/bench/outage_server.rs) that ends
# every connection 20 s after it opened (flush, then TCP shutdown), with 50
# codes at 1000 ticks/s in all, for 300 s. Prints the reconnect delays the
# tool chose, each reconnect as the server saw it, the share of the time
# without an acknowledged subscription, and ticks pushed vs written.
#
#   scripts/outage.sh            # 300 s
#   SECONDS=60 scripts/outage.sh # shorter (or: scripts/outage.sh 60)
#
# Everything stays on 127.0.0.1.
set -euo pipefail
# bash keeps its own SECONDS (seconds since start): read the caller's from
# the environment, where it is only when given.
secs="${1:-$(printenv SECONDS || echo 300)}"
cd "$(dirname "$0")/.."
cut=20
codes=50
rate=20 # per code: 50 × 20 = 1000 ticks/s

cargo build --release --quiet
cargo build --release --quiet --example outage_server
target_dir="${CARGO_TARGET_DIR:-target}"
tool="$target_dir/release/alltick-stream"
server="$target_dir/release/examples/outage_server"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The server serves until its stdin (fd 3 here) is closed after the tool
# has stopped.
mkfifo "$work/control"
"$server" "$cut" "$rate" <"$work/control" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
exec 3>"$work/control"
url=""
for _ in $(seq 100); do
    url="$(sed -n 's/^URL=//p' "$work/server.out")"
    [[ -n "$url" ]] && break
    sleep 0.1
done
[[ -n "$url" ]] || { echo "outage_server printed no URL" >&2; cat "$work/server.err" >&2; exit 1; }

mapfile -t symbols < <(seq -f 'S%02g.US' 1 "$codes")
echo "running $tool --url $url <$codes symbols> for ${secs} s; the server cuts every connection after ${cut} s" >&2
set +e
ALLTICK_TOKEN=bench timeout --preserve-status -s INT "$secs" \
    "$tool" --url "$url" "${symbols[@]}" </dev/null 2>"$work/tool.err" | wc -l >"$work/lines.txt"
status="${PIPESTATUS[0]}"
set -e
exec 3>&-
wait "$server_pid" || true
server_pid=""

delays="$(grep -o 'reconnecting in [0-9.]* s' "$work/tool.err" | awk '{print $3}' | paste -sd ' ' -)"
summary="$(tail -n 1 "$work/server.out")"
pushed="$(sed -n 's/.*pushed=\([0-9]*\).*/\1/p' <<<"$summary")"
echo "exit status:        $status"
echo "reconnect delays:   ${delays:-none} (s, as the tool chose them)"
grep '^reconnect ' "$work/server.out" | sed 's/^/  /' || true
echo "disconnected:       $(sed -n 's/.*disconnected=\([0-9.]*s\) share=\([0-9.]*%\).*/\1 of the window, \2/p' <<<"$summary") (from each cut to the next acknowledged subscription)"
echo "server:             $summary"
echo "ticks pushed:       $pushed"
echo "ticks written:      $(cat "$work/lines.txt")"
