#!/usr/bin/env bash
# An end user's export and erasure on the local server (a build in the `local` profile), with
# apps seeded straight into SQLite: one end user ("alice") with N messages in C conversations
# (answers of ~600 bytes, a third rated) and F uploaded files of 10 KB, beside another end user
# with as much. Measures `GET /v1/end-users/alice/export` (its size, wall time, and the server's
# peak anonymous memory while it runs — RssAnon sampled every 10 ms, the heap and stacks without
# the database pages SQLite maps — against the same figure before it), then `DELETE
# /v1/end-users/alice` (the request, which removes her conversations before answering, and the
# whole erasure, polled until done), and checks that nothing of hers is left (`colloquy
# inspect`) and that the other user's data is whole. Prints a Markdown table.
#   bench/lifecycle.sh [SHAPES]   (default "5000:50:20 50000:500:100", messages:conversations:files)
set -euo pipefail
cd "$(dirname "$0")/.."
SHAPES=${1:-"5000:50:20 50000:500:100"}
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --profile local --locked -p colloquy >&2
WORK=$(mktemp -d)
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
cp "$TARGET/local/colloquy" "$WORK/"

anon_kb() { awk '/RssAnon/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

echo "| messages | conversations | files | export | export time | server heap before → peak | erase request | whole erasure | left |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for shape in $SHAPES; do
    IFS=: read -r MESSAGES CONVERSATIONS FILES <<<"$shape"
    DATA="$WORK/data-$shape"
    mkdir -p "$DATA"
    CREATED=$("$WORK/colloquy" app create --name bench --json --data-dir "$DATA")
    APP=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["app_id"])' "$CREATED")
    KEY=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_key"])' "$CREATED")
    python3 - "$DATA" "$APP" "$MESSAGES" "$CONVERSATIONS" "$FILES" <<'PY'
import os, sqlite3, sys, uuid, json
data, app, messages, conversations, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
conn = sqlite3.connect(os.path.join(data, "colloquy.db"))
t0 = 1_764_000_000 * 1_000_000
answer = "An answer of some length, as a model would give it. " * 12
per = messages // conversations
for name in ("alice", "bob"):
    user = str(uuid.uuid5(uuid.UUID(app), name))
    conn.execute("INSERT INTO end_users (id, app_id, session_id, created_at) VALUES (?, ?, ?, ?)", (user, app, name, t0))
    for c in range(conversations):
        cid = str(uuid.uuid4())
        at = t0 + c * 1_000_000
        conn.execute(
            "INSERT INTO conversations (id, app_id, end_user_id, name, inputs, status, introduction, created_at,"
            " updated_at, message_count, last_message_at) VALUES (?, ?, ?, ?, '{}', 'normal', '', ?, ?, ?, ?)",
            (cid, app, user, f"conversation {c}", at, at + per * 1_000, per, at + (per - 1) * 1_000))
        rows = []
        for m in range(per):
            rating = ("like", "dislike", None)[m % 3]
            rows.append((str(uuid.uuid4()), app, user, cid, f"question {m} of conversation {c}", answer,
                         json.dumps({"usage": {"latency": 0.5, "total_tokens": 120}}), at + m * 1_000, rating))
        conn.executemany(
            "INSERT INTO messages (id, app_id, end_user_id, conversation_id, inputs, query, answer, message_files,"
            " retriever_resources, agent_thoughts, status, metadata, created_at, user_rating)"
            " VALUES (?, ?, ?, ?, '{}', ?, ?, '[]', '[]', '[]', 'normal', ?, ?, ?)", rows)
    os.makedirs(os.path.join(data, "files", "files", app), exist_ok=True)
    for f in range(files):
        fid = str(uuid.uuid4())
        with open(os.path.join(data, "files", "files", app, fid), "wb") as out:
            out.write(os.urandom(10_240))
        conn.execute(
            "INSERT INTO upload_files (id, app_id, end_user_id, name, size, extension, mime_type, created_at)"
            " VALUES (?, ?, ?, ?, 10240, 'png', 'image/png', ?)", (fid, app, user, f"f{f}.png", t0))
conn.commit()
PY
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    COLLOQUY_LOG=warn "$WORK/colloquy" serve --addr "127.0.0.1:$PORT" --data-dir "$DATA" >"$WORK/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v1/info" -H "Authorization: Bearer $KEY" >/dev/null && break; sleep 0.1; done
    BASE="http://127.0.0.1:$PORT/v1"
    BEFORE=$(anon_kb "$SERVER")
    START=$(date +%s.%N)
    curl -sf "$BASE/end-users/alice/export" -H "Authorization: Bearer $KEY" -o "$WORK/export.json" &
    CURL=$!
    PEAK=$BEFORE
    while kill -0 "$CURL" 2>/dev/null; do
        NOW=$(anon_kb "$SERVER"); [ "${NOW:-0}" -gt "$PEAK" ] && PEAK=$NOW
        sleep 0.01
    done
    wait "$CURL"
    EXPORT_S=$(python3 -c "print(round($(date +%s.%N) - $START, 2))")
    python3 - "$WORK/export.json" "$MESSAGES" "$FILES" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
messages = sum(len(c["messages"]) for c in doc["conversations"])
assert messages == int(sys.argv[2]) and len(doc["files"]) == int(sys.argv[3]), (messages, len(doc["files"]))
PY
    SIZE=$(du -m "$WORK/export.json" | cut -f1)
    START=$(date +%s.%N)
    JOB=$(curl -sf -X DELETE "$BASE/end-users/alice" -H "Authorization: Bearer $KEY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
    REQUEST_S=$(python3 -c "print(round($(date +%s.%N) - $START, 2))")
    until curl -sf "$BASE/end-users/alice/erasures/$JOB" -H "Authorization: Bearer $KEY" | grep -q '"status":"done"'; do sleep 0.02; done
    WHOLE_S=$(python3 -c "print(round($(date +%s.%N) - $START, 2))")
    kill "$SERVER"; wait "$SERVER" || true; SERVER=""
    LEFT=$("$WORK/colloquy" inspect --app "$APP" --user alice --json --data-dir "$DATA" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
    BOB=$("$WORK/colloquy" inspect --app "$APP" --user bob --json --data-dir "$DATA" | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["messages"])')
    [ "$LEFT" -eq 0 ] && [ "$BOB" -eq "$MESSAGES" ] || { echo "left $LEFT of alice's, bob has $BOB messages" >&2; exit 1; }
    echo "| $MESSAGES | $CONVERSATIONS | $FILES | $SIZE MB | ${EXPORT_S} s | $((BEFORE / 1024)) → $((PEAK / 1024)) MB | ${REQUEST_S} s | ${WHOLE_S} s | $LEFT |"
    rm -rf "$DATA"
done
