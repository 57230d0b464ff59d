#!/usr/bin/env bash
# Export memory and speed: `colloquy export` (a build in the `local` profile) of apps seeded
# straight into SQLite with N messages in C conversations (answers of ~600 bytes, a third of the
# messages rated), to JSON Lines and CSV, with the program's peak RSS (GNU time's maximum
# resident set), its peak anonymous memory (RssAnon in /proc, sampled every 10 ms: the heap and
# stacks, without the database file's pages that SQLite maps into memory and the kernel can
# drop at will) and wall time. The heap should not grow with the messages: the export holds one
# page of messages and a few 64 KB chunks; only the set of conversation ids it has written
# grows (16 bytes and a hash-table slot per conversation). Prints a Markdown table.
#   bench/export.sh [SHAPES]   (default "10000:100 100000:1000 100000:10000", messages:conversations)
set -euo pipefail
cd "$(dirname "$0")/.."
SHAPES=${1:-"10000:100 100000:1000 100000:10000"}
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --profile local --locked -p colloquy >&2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp "$TARGET/local/colloquy" "$WORK/"

echo "| messages | conversations | format | file | peak RSS | peak anonymous | wall time | messages/s |"
echo "|---:|---:|---|---:|---:|---:|---:|---:|"
for shape in $SHAPES; do
    MESSAGES=${shape%%:*}
    CONVERSATIONS=${shape##*:}
    DATA="$WORK/data-$shape"
    mkdir -p "$DATA"
    APP=$("$WORK/colloquy" app create --name bench --json --data-dir "$DATA" | python3 -c 'import json,sys; print(json.load(sys.stdin)["app_id"])')
    python3 - "$DATA/colloquy.db" "$APP" "$MESSAGES" "$CONVERSATIONS" <<'PY'
import sqlite3, sys, uuid, json
db, app, messages, conversations = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
conn = sqlite3.connect(db)
t0 = 1_764_000_000 * 1_000_000
answer = "An answer of some length, as a model would give it. " * 12
per = messages // conversations
users = [str(uuid.uuid4()) for _ in range(50)]
for c in range(conversations):
    cid, user = str(uuid.uuid4()), users[c % len(users)]
    at = t0 + c * 1_000_000
    conn.execute(
        "INSERT INTO conversations (id, app_id, end_user_id, name, inputs, status, introduction, created_at, updated_at,"
        " message_count, last_message_at) VALUES (?, ?, ?, ?, '{}', 'normal', '', ?, ?, ?, ?)",
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
conn.commit()
PY
    for format in jsonl csv; do
        OUT="$WORK/out.$format"
        /usr/bin/time -f "%M %e" -o "$WORK/time" "$WORK/colloquy" export --app "$APP" --format "$format" -o "$OUT" --data-dir "$DATA" 2>"$WORK/err" >/dev/null &
        TIMER=$!
        ANON_KB=0
        while kill -0 "$TIMER" 2>/dev/null; do
            PID=$(pgrep -P "$TIMER" colloquy || true)
            if [ -n "$PID" ]; then
                NOW=$(awk '/RssAnon/ {print $2}' "/proc/$PID/status" 2>/dev/null || echo 0)
                [ "${NOW:-0}" -gt "$ANON_KB" ] && ANON_KB=$NOW
            fi
            sleep 0.01
        done
        wait "$TIMER" || { cat "$WORK/err" >&2; exit 1; }
        read -r RSS_KB WALL <"$WORK/time"
        LINES=$(($(wc -l <"$OUT") - $([ "$format" = csv ] && echo 1 || echo 0)))
        # CSV rows hold no newline here (the seeded texts have none), so lines are rows.
        [ "$LINES" -eq "$MESSAGES" ] || { echo "exported $LINES of $MESSAGES" >&2; exit 1; }
        SIZE=$(du -m "$OUT" | cut -f1)
        RATE=$(python3 -c "print(round($MESSAGES / max($WALL, 0.01)))")
        echo "| $MESSAGES | $CONVERSATIONS | $format | $SIZE MB | $((RSS_KB / 1024)) MB | $((ANON_KB / 1024)) MB | ${WALL} s | $RATE |"
    done
    rm -rf "$DATA"
done
