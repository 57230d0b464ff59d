#!/usr/bin/env bash
# The official Dify clients and schemathesis against a fresh local server:
#   - PyPI dify-client 0.1.10 (tests/compat/python), with plain HTTP for the routes it lacks;
#   - npm dify-client 2.3.2 (tests/compat/node);
#   - schemathesis 4.32.5 over openapi.yaml, zero failures allowed.
# Installs the clients outside the clone (except node_modules, gitignored), builds and starts
# `colloquy serve` on a free port with a new data directory and an app from tests/compat/app.json,
# checks that the process it started is the one listening, and stops it by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE="${COLLOQUY_EMULATOR_CACHE:-$HOME/.cache/colloquy-emulators}"
log() { echo "[compat] $*" >&2; }
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

if ! "$CACHE/compat/bin/python" -c "import dify_client, schemathesis" >/dev/null 2>&1; then
    log "installing dify-client==0.1.10 and schemathesis==4.32.5"
    python3 -m venv "$CACHE/compat"
    "$CACHE/compat/bin/pip" install -q "dify-client==0.1.10" "schemathesis==4.32.5"
fi
( cd tests/compat/node && npm ci -q --no-audit --no-fund >/dev/null )
# The server finds the engines where this installs them.
./scripts/speech-engines.sh >/dev/null

cargo build --locked --bin colloquy
DATA=$(mktemp -d)
PORT=$(free_port)
colloquy() { target/debug/colloquy --data-dir "$DATA" "$@"; }
CREATED=$(colloquy app create --name "Compat" --mode advanced-chat --config tests/compat/app.json --json)
KEY=$(printf '%s' "$CREATED" | python3 -c 'import json, sys; print(json.load(sys.stdin)["api_key"])')
APP_ID=$(printf '%s' "$CREATED" | python3 -c 'import json, sys; print(json.load(sys.stdin)["app_id"])')
# The operator routes (a Colloquy extension) take an operator key.
OPERATOR_KEY=$(colloquy key create --app "$APP_ID" --role operator)
COLLOQUY_LOG=warn target/debug/colloquy --data-dir "$DATA" serve --addr "127.0.0.1:$PORT" > "$DATA/server.log" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
    kill -0 "$PID" 2>/dev/null || { log "the server exited:"; cat "$DATA/server.log" >&2; exit 1; }
    if curl -sf -o /dev/null "http://127.0.0.1:$PORT/openapi.yaml" && owns_port "$PID" "$PORT"; then
        break
    fi
    sleep 0.1
done
owns_port "$PID" "$PORT" || { log "port $PORT is not ours"; exit 1; }
export COMPAT_BASE="http://127.0.0.1:$PORT/v1" COMPAT_KEY="$KEY"

log "PyPI dify-client"
"$CACHE/compat/bin/python" -m unittest discover -s tests/compat/python -p 'test_*.py' -v
log "npm dify-client"
node --test tests/compat/node/
log "schemathesis"
"$CACHE/compat/bin/schemathesis" --config-file tests/compat/schemathesis.toml run openapi.yaml --url "http://127.0.0.1:$PORT" \
    -H "Authorization: Bearer $KEY" --max-examples 15 --workers 1 --seed 1 --no-color
log "schemathesis (the operator routes, with an operator key)"
"$CACHE/compat/bin/schemathesis" --config-file tests/compat/schemathesis.toml run openapi.yaml --url "http://127.0.0.1:$PORT" \
    -H "Authorization: Bearer $OPERATOR_KEY" --include-path-regex '^/v1/(app/(conversations|messages/|audit-log|stats|exports)|end-users/)' \
    --max-examples 15 --workers 1 --seed 1 --no-color
