#!/usr/bin/env bash
# HTTP load on the local server (embedded store, echo model): a build of `colloquy` in the `local` profile (the release settings at opt-level 3)
# on a fresh data directory, one conversation of 25 messages seeded through the API, then
# `colloquy-bench-load` at 1, 8 and 64 connections (the echo model without pauses) against the read routes and the writes
# most chat apps send, with the server's peak RSS and the CPU time the server and the load
# generator spent per request. Prints a Markdown table (docs/benchmarks.md).
#   bench/load.sh [SECONDS]   (default 10 per run)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --profile local --locked -p colloquy -p colloquy-bench-load >&2
DATA=$(mktemp -d)
# Run copies: the target directory may be rebuilt by another build while this one measures.
cp "$TARGET/local/colloquy" "$TARGET/local/colloquy-bench-load" "$DATA/"
BIN=$DATA
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
COLLOQUY_ECHO_DELAY_MS=0 "$BIN/colloquy" serve --addr "127.0.0.1:$PORT" --data-dir "$DATA" >"$DATA/out.log" 2>"$DATA/err.log" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; rm -rf "$DATA"' EXIT
BASE="http://127.0.0.1:$PORT/v1"
for _ in $(seq 100); do curl -s -o /dev/null "$BASE/info" && break; sleep 0.1; done
KEY=$(sed -n 's/^Its API key (shown once): //p' "$DATA/out.log")
APP=$(sed -n 's/^Created the default chat app \(.*\)\.$/\1/p' "$DATA/out.log")
[ -n "$KEY" ] && [ -n "$APP" ] || { echo "no app or key printed" >&2; exit 1; }
# No per-user write limit, so the write routes are measured rather than their 429s.
echo '{"feedback_rate_limit_per_minute": 0}' >"$DATA/app.json"
"$BIN/colloquy" app update --app "$APP" --config "$DATA/app.json" --data-dir "$DATA" >&2

chat() {
    curl -s "$BASE/chat-messages" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        -d "{\"inputs\": {}, \"query\": \"question $1\", \"user\": \"bench\", \"response_mode\": \"blocking\"$2}"
}
FIRST=$(chat 0 "")
CONVERSATION=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["conversation_id"])' "$FIRST")
for i in $(seq 1 24); do chat "$i" ", \"conversation_id\": \"$CONVERSATION\"" >/dev/null; done
MESSAGE=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["message_id"])' "$FIRST")

peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }
header() {
    echo "| route | connections | req/s | p50 ms | p99 ms | max ms | non-2xx | server CPU µs/req | client CPU µs/req |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
}
header
run() {
    local label=$1 url=$2 method=${3:-GET} body=${4:-}
    for connections in 1 8 64; do
        local line
        if [ -n "$body" ]; then
            line=$(COLLOQUY_BENCH_SERVER_PID=$SERVER "$BIN/colloquy-bench-load" "$url" "$KEY" "$connections" "$SECONDS_PER_RUN" "$method" "$body")
        else
            line=$(COLLOQUY_BENCH_SERVER_PID=$SERVER "$BIN/colloquy-bench-load" "$url" "$KEY" "$connections" "$SECONDS_PER_RUN")
        fi
        python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("| %s | %d | %d | %.2f | %.2f | %.2f | %d | %s | %s |" % (sys.argv[2], r["connections"], r["rps"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["failures"], r["server_cpu_us_per_request"], r["client_cpu_us_per_request"]))' "$line" "$label"
    done
}
run "GET /v1/messages?limit=20" "$BASE/messages?user=bench&conversation_id=$CONVERSATION&limit=20"
run "GET /v1/conversations" "$BASE/conversations?user=bench"
# The read routes' own peak, before the writes grow the store (and the server's mapped pages).
echo
echo "server peak RSS after the read routes: $(peak_rss_mb) MB"
echo
header
run "POST /v1/messages/:id/feedbacks" "$BASE/messages/$MESSAGE/feedbacks" POST '{"rating": "like", "user": "bench"}'
run "POST /v1/chat-messages (blocking, echo)" "$BASE/chat-messages" POST \
    "{\"inputs\": {}, \"query\": \"hi\", \"user\": \"load\", \"response_mode\": \"blocking\"}"
echo
echo "server peak RSS after every route: $(peak_rss_mb) MB"
