//! The database schema: the tables and indexes, the `user_version` this program writes, and
//! the migrations that bring an older database up to it.

use rusqlite::Connection;

use colloquy_core::ports::{StoreError, StoreResult};

use super::unavailable;

/// The `user_version` of a database with [`SCHEMA`]; each change to the schema raises it.
pub(super) const SCHEMA_VERSION: i64 = 10;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS apps (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, mode TEXT NOT NULL, config TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY, app_id TEXT NOT NULL REFERENCES apps(id), created_at INTEGER NOT NULL,
    role TEXT NOT NULL DEFAULT 'app', shown TEXT, last_used_at INTEGER);
CREATE INDEX IF NOT EXISTS api_keys_by_app ON api_keys (app_id, created_at);
CREATE TABLE IF NOT EXISTS end_users (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, session_id TEXT NOT NULL, created_at INTEGER NOT NULL,
    UNIQUE (app_id, session_id));
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, end_user_id TEXT NOT NULL, name TEXT NOT NULL, inputs TEXT NOT NULL,
    status TEXT NOT NULL, introduction TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0, last_message_at INTEGER,
    like_count INTEGER NOT NULL DEFAULT 0, dislike_count INTEGER NOT NULL DEFAULT 0, expires_at INTEGER,
    metadata TEXT NOT NULL DEFAULT '{}', pinned INTEGER NOT NULL DEFAULT 0, archived INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS conversations_by_created ON conversations (app_id, end_user_id, archived, created_at, id);
CREATE INDEX IF NOT EXISTS conversations_by_updated ON conversations (app_id, end_user_id, archived, updated_at, id);
CREATE TABLE IF NOT EXISTS conversation_lists (
    conversation_id TEXT NOT NULL, list TEXT NOT NULL, app_id TEXT NOT NULL, end_user_id TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (conversation_id, list)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversation_lists_by_created
    ON conversation_lists (app_id, end_user_id, list, created_at, conversation_id);
CREATE INDEX IF NOT EXISTS conversation_lists_by_updated
    ON conversation_lists (app_id, end_user_id, list, updated_at, conversation_id);
CREATE INDEX IF NOT EXISTS conversations_by_app ON conversations (app_id, updated_at, id);
CREATE INDEX IF NOT EXISTS conversations_expiring ON conversations (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, end_user_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
    parent_message_id TEXT, inputs TEXT NOT NULL, query TEXT NOT NULL, answer TEXT NOT NULL,
    message_files TEXT NOT NULL, retriever_resources TEXT NOT NULL, agent_thoughts TEXT NOT NULL,
    status TEXT NOT NULL, error TEXT, metadata TEXT NOT NULL, created_at INTEGER NOT NULL, task_id TEXT,
    user_rating TEXT);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, created_at, id);
CREATE INDEX IF NOT EXISTS messages_by_parent ON messages (conversation_id, parent_message_id, id);
CREATE INDEX IF NOT EXISTS messages_generating ON messages (created_at) WHERE task_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS feedbacks (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, conversation_id TEXT NOT NULL, message_id TEXT NOT NULL,
    end_user_id TEXT, rating TEXT NOT NULL, content TEXT, from_source TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS feedbacks_one_per_user ON feedbacks (message_id, end_user_id, from_source);
CREATE INDEX IF NOT EXISTS feedbacks_by_app ON feedbacks (app_id, created_at, id);
CREATE INDEX IF NOT EXISTS feedbacks_by_conversation ON feedbacks (conversation_id);
CREATE TABLE IF NOT EXISTS conversation_variables (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, conversation_id TEXT NOT NULL, name TEXT NOT NULL,
    value_type TEXT NOT NULL, value TEXT NOT NULL, description TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS variables_by_conversation ON conversation_variables (conversation_id, created_at, id);
CREATE TABLE IF NOT EXISTS annotations (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    hit_count INTEGER NOT NULL, embedding TEXT, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS annotations_by_app ON annotations (app_id, created_at, id);
CREATE TABLE IF NOT EXISTS annotation_settings (
    app_id TEXT PRIMARY KEY, score_threshold REAL NOT NULL, embedding_provider TEXT NOT NULL,
    embedding_model TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS annotation_jobs (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, action TEXT NOT NULL, status TEXT NOT NULL, error TEXT NOT NULL,
    created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, end_user_id TEXT NOT NULL, stop_requested INTEGER NOT NULL,
    started_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS upload_files (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, end_user_id TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,
    extension TEXT NOT NULL, mime_type TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER);
CREATE INDEX IF NOT EXISTS files_expiring ON upload_files (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS files_by_owner ON upload_files (app_id, end_user_id, created_at, id);
CREATE TABLE IF NOT EXISTS audit_log (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT, detail TEXT, expires_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_app ON audit_log (app_id, id);
CREATE TABLE IF NOT EXISTS stats (
    app_id TEXT NOT NULL, granularity TEXT NOT NULL, start INTEGER NOT NULL,
    messages INTEGER NOT NULL DEFAULT 0, conversations INTEGER NOT NULL DEFAULT 0,
    end_users INTEGER NOT NULL DEFAULT 0, likes INTEGER NOT NULL DEFAULT 0, dislikes INTEGER NOT NULL DEFAULT 0,
    answers INTEGER NOT NULL DEFAULT 0, latency_ms INTEGER NOT NULL DEFAULT 0, tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, granularity, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stats_active (
    app_id TEXT NOT NULL, granularity TEXT NOT NULL, start INTEGER NOT NULL, end_user_id TEXT NOT NULL,
    PRIMARY KEY (app_id, granularity, start, end_user_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS exports (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, format TEXT NOT NULL, range_from INTEGER, range_until INTEGER,
    status TEXT NOT NULL, expected INTEGER NOT NULL, exported INTEGER NOT NULL, size INTEGER, error TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS exports_by_app ON exports (app_id, created_at);
CREATE TABLE IF NOT EXISTS erasures (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, user TEXT, end_users TEXT NOT NULL, status TEXT NOT NULL,
    conversations INTEGER NOT NULL, messages INTEGER NOT NULL, files INTEGER NOT NULL, other INTEGER NOT NULL,
    error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS erasures_by_app ON erasures (app_id, created_at);
CREATE TABLE IF NOT EXISTS idempotent_requests (
    app_id TEXT NOT NULL, end_user_id TEXT NOT NULL, key_hash TEXT NOT NULL, fingerprint TEXT NOT NULL,
    claim TEXT NOT NULL, started_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    status INTEGER, content_type TEXT, body BLOB, stream TEXT,
    PRIMARY KEY (app_id, end_user_id, key_hash));
CREATE INDEX IF NOT EXISTS idempotent_requests_expiring ON idempotent_requests (expires_at);
CREATE TABLE IF NOT EXISTS rate_windows (
    key TEXT NOT NULL, window_start INTEGER NOT NULL, hits INTEGER NOT NULL, PRIMARY KEY (key, window_start));
";

/// Brings the database on `conn` to [`SCHEMA_VERSION`]: refuses one written by a newer
/// program, migrates an older one, then creates whatever is missing.
pub(super) fn prepare(conn: &Connection) -> StoreResult<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(unavailable)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}; this program knows up to {SCHEMA_VERSION}"
        )));
    }
    migrate(conn).map_err(unavailable)?;
    conn.execute_batch(SCHEMA).map_err(unavailable)?;
    in_transaction(conn, |conn| {
        // Read again under the lock: another process may have upgraded the file meanwhile.
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version < 7 {
            // Version 7: usage counters, filled from what is stored (once: the new version is
            // written in the same transaction).
            conn.execute_batch(super::stats::BACKFILL)?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
    })
    .map_err(unavailable)
}

/// Runs `f` in one immediate transaction (so another process opening the same file waits).
fn in_transaction(conn: &Connection, f: impl FnOnce(&Connection) -> rusqlite::Result<()>) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match f(conn) {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(error) => {
            // The error is the one to report; a failed rollback leaves nothing committed either.
            let _ = conn.execute_batch("ROLLBACK");
            Err(error)
        }
    }
}

/// Brings a database of an earlier schema version up to this one (before [`SCHEMA`] runs,
/// whose indexes may need the new columns), in one immediate transaction: a crash leaves the
/// old schema (the next start migrates again), and another process opening the same file at
/// the same time waits for the lock, then finds the columns there.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    in_transaction(conn, add_columns)
}

fn add_columns(conn: &Connection) -> rusqlite::Result<()> {
    let has = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0)).map(|n| n > 0);
    let table =
        |name: &str| has(&format!("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{name}'"));
    let column = |table: &str, name: &str| {
        has(&format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = '{name}'"))
    };
    if table("messages")? {
        // Version 4: a message's running generation.
        if !column("messages", "task_id")? {
            conn.execute_batch("ALTER TABLE messages ADD COLUMN task_id TEXT")?;
        }
        // Version 5: the rating the message's end user gave it, kept on the message by the
        // feedback writes so that a page of history reads no other table; filled from the feedback.
        if !column("messages", "user_rating")? {
            conn.execute_batch("ALTER TABLE messages ADD COLUMN user_rating TEXT")?;
            if table("feedbacks")? {
                conn.execute_batch(
                    "UPDATE messages SET user_rating = (SELECT f.rating FROM feedbacks f WHERE f.message_id = messages.id
                         AND f.end_user_id = messages.end_user_id AND f.from_source = 'user')
                     WHERE id IN (SELECT message_id FROM feedbacks WHERE from_source = 'user')",
                )?;
            }
        }
    }
    // Version 6: keys have a role, a shown start and a last use; conversations keep their
    // counters (filled from what is stored).
    if table("api_keys")? && !column("api_keys", "role")? {
        conn.execute_batch(
            "ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'app';
             ALTER TABLE api_keys ADD COLUMN shown TEXT;
             ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;",
        )?;
    }
    if table("conversations")? && !column("conversations", "message_count")? {
        conn.execute_batch(
            "ALTER TABLE conversations ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE conversations ADD COLUMN last_message_at INTEGER;
             ALTER TABLE conversations ADD COLUMN like_count INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE conversations ADD COLUMN dislike_count INTEGER NOT NULL DEFAULT 0;",
        )?;
        if table("messages")? {
            conn.execute_batch(
                "UPDATE conversations SET
                     message_count = (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = conversations.id),
                     last_message_at = (SELECT MAX(created_at) FROM messages m WHERE m.conversation_id = conversations.id)",
            )?;
        }
        if table("feedbacks")? {
            conn.execute_batch(&format!("UPDATE conversations SET {COUNT_RATINGS}"))?;
        }
    }
    // Version 9: metadata, pinned, archived; an end user's lists leave archived ones out, so
    // their indexes lead with `archived` (the old ones are replaced).
    if table("conversations")? && !column("conversations", "archived")? {
        conn.execute_batch(
            "ALTER TABLE conversations ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
             ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE conversations ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
             DROP INDEX IF EXISTS conversations_by_created;
             DROP INDEX IF EXISTS conversations_by_updated;",
        )?;
    }
    // Version 8: retention — when a conversation or a file expires (none did before).
    for table_name in ["conversations", "upload_files"] {
        if table(table_name)? && !column(table_name, "expires_at")? {
            conn.execute_batch(&format!("ALTER TABLE {table_name} ADD COLUMN expires_at INTEGER"))?;
        }
    }
    Ok(())
}

/// The assignments that recount a conversation's likes and dislikes from its feedback (every
/// source), for an `UPDATE conversations SET ...` whose row is the conversation.
pub(super) const COUNT_RATINGS: &str = "
    like_count = (SELECT COUNT(*) FROM feedbacks f WHERE f.conversation_id = conversations.id AND f.rating = 'like'),
    dislike_count = (SELECT COUNT(*) FROM feedbacks f WHERE f.conversation_id = conversations.id AND f.rating = 'dislike')";
