#!/usr/bin/env bash
# Serial depth of the local server's routes on DynamoDB: `colloquy serve --store dynamodb` on
# DynamoDB Local and moto, once with direct connections and once through `colloquy-delay-proxy`
# (bench/serial-depth), which holds every AWS request 5 ms before passing it on (about an
# in-region round trip). Per route, the p50 of sequential requests to each server, taken in turn:
# (p50 via proxy − p50 direct) / 5 ms is the number of AWS requests the route waits for one
# after another. With a cold key cache (COLLOQUY_KEY_CACHE_SECONDS=0) and a warm one (=10).
# First calibrates the proxy: a request that only passes through (DynamoDB Local's `GET /`,
# answered 400 at once) direct, through the proxy without delay, and with the delay.
#
#   bench/serial-depth.sh [RUNS] [ENV_FILE]
#
# RUNS: timed requests per route and path (default 100, after 10 warm-ups). ENV_FILE: the
# emulators of `scripts/emulators.sh start ENV_FILE`; without it a set of its own is started
# and stopped at the end (use a fresh set: a DynamoDB Local that just held the 300,000 items
# of bench/depth-dynamo.sh stays slow). Prints Markdown tables (docs/benchmarks.md, "Serial depth on
# DynamoDB (5 ms per AWS request)"); takes 3–6 minutes after the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
RUNS=${1:-100}
ENV_FILE=${2:-}
DELAY_MS=5
TARGET=${CARGO_TARGET_DIR:-target}

# NO_BUILD=1 uses the release binaries already in the target directory.
if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release --locked -p colloquy -p colloquy-bench-serial-depth >&2
fi
WORK=$(mktemp -d)
# Copies, so that a build in a shared target directory cannot swap them mid-run.
BIN="$WORK/bin"
mkdir "$BIN"
cp "$TARGET/release/colloquy" "$TARGET/release/colloquy-delay-proxy" "$TARGET/release/colloquy-bench-latency" "$BIN/"
PIDS=()
OWN_ENV=
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -n "$OWN_ENV" ]; then ./scripts/emulators.sh stop "$OWN_ENV"; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "$ENV_FILE" ]; then
    # shellcheck disable=SC1090
    . "$ENV_FILE"
else
    OWN_ENV="$WORK/emulators.env"
    ./scripts/emulators.sh start "$OWN_ENV"
    # shellcheck disable=SC1090
    . "$OWN_ENV"
fi
DDB_DIRECT=$AWS_ENDPOINT_URL_DYNAMODB
S3_DIRECT=$AWS_ENDPOINT_URL

# wait_http URL [LOG]: waits until URL answers at all (any status); else shows LOG and fails.
wait_http() {
    for _ in $(seq 600); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done
    echo "nothing answers at $1" >&2
    if [ -n "${2:-}" ]; then tail -5 "$2" >&2; fi
    return 1
}

# start_proxy NAME UPSTREAM DELAY_MS: sets PROXY to the proxy's base URL.
start_proxy() {
    local port
    port=$(free_port)
    "$BIN/colloquy-delay-proxy" --listen "127.0.0.1:$port" --upstream "$2" --delay-ms "$3" 2>"$WORK/proxy-$1.log" &
    PIDS+=($!)
    PROXY="http://127.0.0.1:$port"
    wait_http "$PROXY/__delay-proxy/count" "$WORK/proxy-$1.log"
}
start_proxy dynamodb "$DDB_DIRECT" "$DELAY_MS"
DDB_PROXY=$PROXY
start_proxy s3 "$S3_DIRECT" "$DELAY_MS"
S3_PROXY=$PROXY
start_proxy calibration "$DDB_DIRECT" 0
NO_DELAY_PROXY=$PROXY
COUNTS=(--count "$DDB_PROXY/__delay-proxy/count" --count "$S3_PROXY/__delay-proxy/count")

# latency URL [ARGS...]: one JSON line of colloquy-bench-latency.
latency() { "$BIN/colloquy-bench-latency" "$@" --runs "$RUNS"; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# A table and bucket of their own; an app without a feedback rate limit, so the feedback
# route is measured rather than its 429s; no speech engines (none of the routes uses them).
export COLLOQUY_STORE=dynamodb COLLOQUY_TTS=none COLLOQUY_STT=none COLLOQUY_ECHO_DELAY_MS=0 COLLOQUY_LOG=warn
RUN_ID=$(python3 -c 'import uuid; print(uuid.uuid4().hex[:12])')
export COLLOQUY_TABLE="colloquy-serial-$RUN_ID" COLLOQUY_BUCKET="colloquy-serial-$RUN_ID"
"$BIN/colloquy" aws init >&2
echo '{"feedback_rate_limit_per_minute": 0}' >"$WORK/app.json"
CREATED=$("$BIN/colloquy" app create --name serial-depth --config "$WORK/app.json" --json)
KEY=$(field "$CREATED" api_key)

# start_server NAME KEY_CACHE_SECONDS DYNAMODB_URL S3_URL: sets SERVER to the API's base URL.
start_server() {
    local port
    port=$(free_port)
    AWS_ENDPOINT_URL_DYNAMODB=$3 AWS_ENDPOINT_URL=$4 COLLOQUY_KEY_CACHE_SECONDS=$2 \
        "$BIN/colloquy" serve --addr "127.0.0.1:$port" >"$WORK/server-$1.log" 2>&1 &
    PIDS+=($!)
    SERVER="http://127.0.0.1:$port/v1"
    wait_http "$SERVER/info" "$WORK/server-$1.log"
}

# Seed through a direct server: one end user with 25 conversations, the first of 25 messages.
start_server seed 0 "$DDB_DIRECT" "$S3_DIRECT"
SEED=$SERVER
chat() {
    curl -sf "$SEED/chat-messages" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        -d "{\"inputs\": {}, \"query\": \"question $1\", \"user\": \"bench\", \"response_mode\": \"blocking\"$2}"
}
ANSWER=$(chat 0 "")
CONVERSATION=$(field "$ANSWER" conversation_id)
MESSAGE=$(field "$ANSWER" message_id)
for i in $(seq 1 24); do ANSWER=$(chat "$i" ", \"conversation_id\": \"$CONVERSATION\""); done
NEWEST_MESSAGE=$(field "$ANSWER" message_id)
for i in $(seq 1 24); do ANSWER=$(chat "c$i" ""); done
NEWEST_CONVERSATION=$(field "$ANSWER" conversation_id)

ROUTES=(
    "GET /v1/messages?limit=20|messages?user=bench&conversation_id=$CONVERSATION&limit=20||"
    "GET /v1/messages?limit=20&first_id|messages?user=bench&conversation_id=$CONVERSATION&limit=20&first_id=$NEWEST_MESSAGE||"
    "GET /v1/conversations|conversations?user=bench||"
    "GET /v1/conversations?last_id|conversations?user=bench&last_id=$NEWEST_CONVERSATION||"
    "GET /v1/info|info||"
    "POST /v1/messages/:id/feedbacks|messages/$MESSAGE/feedbacks|POST|{\"rating\": \"like\", \"user\": \"bench\"}"
    "POST /v1/chat-messages (blocking, echo)|chat-messages|POST|{\"inputs\": {}, \"query\": \"hi\", \"user\": \"load\", \"response_mode\": \"blocking\"}"
)

# route_args LABEL|PATH|METHOD|BODY: sets LABEL, URL_PATH and ARGS (the latency probe's options).
route_args() {
    local method body
    IFS='|' read -r LABEL URL_PATH method body <<<"$1"
    ARGS=(--key "$KEY" --method "${method:-GET}")
    if [ -n "$body" ]; then ARGS+=(--body "$body"); fi
}

# A freshly started DynamoDB Local is several times slower until the JVM has compiled its hot
# paths: every route, 50 times, on the seeding server first.
for route in "${ROUTES[@]}"; do
    route_args "$route"
    "$BIN/colloquy-bench-latency" "$SEED/$URL_PATH" "${ARGS[@]}" --warm-ups 0 --runs 50 >/dev/null
done
kill "${PIDS[-1]}"

echo "Proxy calibration: DynamoDB Local's \`GET /\` (400 at once), $RUNS rounds on keep-alive connections"
echo
echo "| path | p50 ms | p90 ms | mean ms |"
echo "|---|---:|---:|---:|"
CALIBRATION=$(latency "$DDB_DIRECT/" "$NO_DELAY_PROXY/" "$DDB_PROXY/" --any-status --warm-ups 50)
python3 - "$CALIBRATION" "$DELAY_MS" <<'PY'
import json, sys
runs = json.loads(sys.argv[1])["urls"]
for name, r in zip(["direct", "through the proxy, no delay", f"through the proxy, {sys.argv[2]} ms"], runs):
    print("| %s | %.2f | %.2f | %.2f |" % (name, r["p50_ms"], r["p90_ms"], r["mean_ms"]))
direct, hop, delayed = (r["p50_ms"] for r in runs)
print()
print("The proxy's own hop: %.2f ms; with the delay it adds %.2f ms per request." % (hop - direct, delayed - direct))
print()
PY
PER_REQUEST=$(python3 -c 'import json,sys; u=json.loads(sys.argv[1])["urls"]; print(round(u[2]["p50_ms"] - u[0]["p50_ms"], 2))' "$CALIBRATION")

echo "| route | key cache | p50 direct ms | p50 via proxy ms | serial depth (Δ ÷ $DELAY_MS ms) | Δ ÷ $PER_REQUEST ms (calibrated) | AWS requests per call |"
echo "|---|---|---:|---:|---:|---:|---:|"
for CACHE in 0 10; do
    start_server "direct-$CACHE" "$CACHE" "$DDB_DIRECT" "$S3_DIRECT"
    DIRECT=$SERVER
    start_server "proxied-$CACHE" "$CACHE" "$DDB_PROXY" "$S3_PROXY"
    PROXIED=$SERVER
    if [ "$CACHE" = 0 ]; then CACHE_LABEL="cold (0 s)"; else CACHE_LABEL="warm ($CACHE s)"; fi
    for route in "${ROUTES[@]}"; do
        route_args "$route"
        # Direct and proxied requests in turn; only the proxied server's go through the proxies.
        measured=$(latency "$DIRECT/$URL_PATH" "$PROXIED/$URL_PATH" "${ARGS[@]}" "${COUNTS[@]}")
        python3 - "$LABEL" "$CACHE_LABEL" "$measured" "$DELAY_MS" "$PER_REQUEST" <<'PY'
import json, sys
label, cache, measured, delay, per_request = sys.argv[1:]
measured = json.loads(measured)
d, p = measured["urls"]
if d["failures"] or p["failures"]:
    sys.exit(f"{label}: {d['failures']} direct and {p['failures']} proxied answers were not 2xx")
delta = p["p50_ms"] - d["p50_ms"]
print("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f |" % (
    label, cache, d["p50_ms"], p["p50_ms"], delta / float(delay), delta / float(per_request), measured["forwarded_per_round"]))
PY
    done
    kill "${PIDS[-1]}" "${PIDS[-2]}"
done
