//! The embedded store: one SQLite file (or memory), implementing every storage port.
//!
//! SQLite calls block, so each one runs on Tokio's blocking pool behind one connection.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::{
    App, AppConfig, AppId, AppMode, Conversation, ConversationId, ConversationSort, ConversationVariable, Cursor,
    EndUser, EndUserId, Feedback, FeedbackSource, Invalid, KeyHash, Message, MessageId, Owner, Rating, SortField,
    Timestamp, UserRef, ValueType, VariableId, VariableNameFilter,
};
use crate::ports::{
    AppStore, ConversationStore, EndUserStore, FeedbackStore, MessageStore, RateLimiter, StoreError, StoreResult,
    VariableStore,
};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS apps (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, mode TEXT NOT NULL, config TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY, app_id TEXT NOT NULL REFERENCES apps(id), created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS end_users (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, session_id TEXT NOT NULL, created_at INTEGER NOT NULL,
    UNIQUE (app_id, session_id));
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, end_user_id TEXT NOT NULL, name TEXT NOT NULL, inputs TEXT NOT NULL,
    status TEXT NOT NULL, introduction TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_by_created ON conversations (app_id, end_user_id, created_at, id);
CREATE INDEX IF NOT EXISTS conversations_by_updated ON conversations (app_id, end_user_id, updated_at, id);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, end_user_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
    parent_message_id TEXT, inputs TEXT NOT NULL, query TEXT NOT NULL, answer TEXT NOT NULL,
    message_files TEXT NOT NULL, retriever_resources TEXT NOT NULL, agent_thoughts TEXT NOT NULL,
    status TEXT NOT NULL, error TEXT, metadata TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, created_at, id);
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
CREATE TABLE IF NOT EXISTS rate_windows (
    key TEXT NOT NULL, window_start INTEGER NOT NULL, hits INTEGER NOT NULL, PRIMARY KEY (key, window_start));
";

/// The SQLite-backed store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(unavailable)?;
        Self::init(conn)
    }

    /// A private database that lives as long as this value (for tests and experiments).
    pub fn in_memory() -> StoreResult<Self> {
        Self::init(Connection::open_in_memory().map_err(unavailable)?)
    }

    fn init(conn: Connection) -> StoreResult<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(unavailable)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(unavailable)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "the database has schema version {version}; this program knows up to {SCHEMA_VERSION}"
            )));
        }
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(unavailable)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let joined = tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Unavailable("connection lock poisoned".into()))?;
            f(&mut guard).map_err(classify)
        })
        .await;
        joined.map_err(|e| StoreError::Unavailable(e.to_string()))?
    }
}

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn classify(error: rusqlite::Error) -> StoreError {
    match error {
        rusqlite::Error::FromSqlConversionFailure(..) => StoreError::Corrupt(error.to_string()),
        rusqlite::Error::SqliteFailure(code, _) if code.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(error.to_string())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

fn corrupt(index: usize, message: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, message.into().into())
}

fn parse_col<T: FromStr<Err = Invalid>>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let raw: String = row.get(index)?;
    raw.parse().map_err(|e: Invalid| corrupt(index, e.0))
}

fn opt_col<T: FromStr<Err = Invalid>>(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<T>> {
    let raw: Option<String> = row.get(index)?;
    raw.map(|r| r.parse().map_err(|e: Invalid| corrupt(index, e.0))).transpose()
}

fn json_col<T: DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let raw: String = row.get(index)?;
    serde_json::from_str(&raw).map_err(|e| corrupt(index, e.to_string()))
}

fn time_col(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    row.get(index).map(Timestamp::from_micros)
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

const APP_COLUMNS: &str = "id, name, mode, config, created_at";

fn app_from_row(row: &Row<'_>) -> rusqlite::Result<App> {
    let mode: String = row.get(2)?;
    Ok(App {
        id: parse_col(row, 0)?,
        name: row.get(1)?,
        mode: AppMode::parse(&mode).map_err(|e| corrupt(2, e.0))?,
        config: json_col::<AppConfig>(row, 3)?,
        created_at: time_col(row, 4)?,
    })
}

#[async_trait]
impl AppStore for SqliteStore {
    async fn create_app(&self, app: &App, first_key: &KeyHash) -> StoreResult<()> {
        let (app, key) = (app.clone(), first_key.clone());
        self.with(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO apps (id, name, mode, config, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![app.id.to_string(), app.name, app.mode.as_str(), to_json(&app.config), app.created_at.micros()],
            )?;
            tx.execute(
                "INSERT INTO api_keys (key_hash, app_id, created_at) VALUES (?1, ?2, ?3)",
                params![key.as_str(), app.id.to_string(), app.created_at.micros()],
            )?;
            tx.commit()
        })
        .await
    }

    async fn update_app(&self, app: &App) -> StoreResult<bool> {
        let app = app.clone();
        self.with(move |conn| {
            conn.execute(
                "UPDATE apps SET name = ?2, mode = ?3, config = ?4 WHERE id = ?1",
                params![app.id.to_string(), app.name, app.mode.as_str(), to_json(&app.config)],
            )
            .map(|changed| changed == 1)
        })
        .await
    }

    async fn app(&self, id: AppId) -> StoreResult<Option<App>> {
        self.with(move |conn| {
            conn.query_row(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = ?1"), [id.to_string()], app_from_row)
                .optional()
        })
        .await
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, id"))?;
            stmt.query_map([], app_from_row)?.collect()
        })
        .await
    }

    async fn add_key(&self, app: AppId, key: &KeyHash, now: Timestamp) -> StoreResult<()> {
        let key = key.clone();
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO api_keys (key_hash, app_id, created_at) VALUES (?1, ?2, ?3)",
                params![key.as_str(), app.to_string(), now.micros()],
            )
            .map(drop)
        })
        .await
    }

    async fn app_for_key(&self, key: &KeyHash) -> StoreResult<Option<AppId>> {
        let key = key.clone();
        self.with(move |conn| {
            conn.query_row("SELECT app_id FROM api_keys WHERE key_hash = ?1", [key.as_str()], |row| parse_col(row, 0))
                .optional()
        })
        .await
    }

    async fn revoke_key(&self, key: &KeyHash) -> StoreResult<bool> {
        let key = key.clone();
        self.with(move |conn| conn.execute("DELETE FROM api_keys WHERE key_hash = ?1", [key.as_str()]).map(|n| n == 1))
            .await
    }
}

#[async_trait]
impl EndUserStore for SqliteStore {
    async fn end_user(&self, app: AppId, user: &UserRef, new: EndUser) -> StoreResult<EndUser> {
        let user = user.clone();
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO end_users (id, app_id, session_id, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (app_id, session_id) DO NOTHING",
                params![new.id.to_string(), app.to_string(), user.as_str(), new.created_at.micros()],
            )?;
            conn.query_row(
                "SELECT id, created_at FROM end_users WHERE app_id = ?1 AND session_id = ?2",
                params![app.to_string(), user.as_str()],
                |row| {
                    Ok(EndUser {
                        id: parse_col::<EndUserId>(row, 0)?,
                        app_id: app,
                        session_id: user.clone(),
                        created_at: time_col(row, 1)?,
                    })
                },
            )
        })
        .await
    }
}

const CONVERSATION_COLUMNS: &str =
    "id, app_id, end_user_id, name, inputs, status, introduction, created_at, updated_at";

fn conversation_from_row(row: &Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: parse_col(row, 0)?,
        owner: Owner { app_id: parse_col(row, 1)?, end_user_id: parse_col(row, 2)? },
        name: row.get(3)?,
        inputs: json_col(row, 4)?,
        status: row.get(5)?,
        introduction: row.get(6)?,
        created_at: time_col(row, 7)?,
        updated_at: time_col(row, 8)?,
    })
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn insert_conversation(&self, c: &Conversation) -> StoreResult<()> {
        let c = c.clone();
        self.with(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO conversations ({CONVERSATION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    c.id.to_string(),
                    c.owner.app_id.to_string(),
                    c.owner.end_user_id.to_string(),
                    c.name,
                    to_json(&c.inputs),
                    c.status,
                    c.introduction,
                    c.created_at.micros(),
                    c.updated_at.micros()
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<Option<Conversation>> {
        self.with(move |conn| {
            conn.query_row(
                &format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3"),
                params![id.to_string(), owner.app_id.to_string(), owner.end_user_id.to_string()],
                conversation_from_row,
            )
            .optional()
        })
        .await
    }

    async fn conversations(
        &self,
        owner: Owner,
        sort: ConversationSort,
        after: Option<Cursor<ConversationId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Conversation>> {
        let column = match sort.field {
            SortField::CreatedAt => "created_at",
            SortField::UpdatedAt => "updated_at",
        };
        let (direction, beyond) = if sort.descending { ("DESC", "<") } else { ("ASC", ">") };
        self.with(move |conn| {
            let cursor = if after.is_some() {
                format!("AND ({column} {beyond} ?3 OR ({column} = ?3 AND id {beyond} ?4))")
            } else {
                "AND ?3 IS NULL AND ?4 IS NULL".to_owned()
            };
            let sql = format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE app_id = ?1 AND end_user_id = ?2 {cursor}
                 ORDER BY {column} {direction}, id {direction} LIMIT ?5"
            );
            let mut stmt = conn.prepare(&sql)?;
            stmt.query_map(
                params![
                    owner.app_id.to_string(),
                    owner.end_user_id.to_string(),
                    after.map(|c| c.at.micros()),
                    after.map(|c| c.id.to_string()),
                    fetch as i64
                ],
                conversation_from_row,
            )?
            .collect()
        })
        .await
    }

    async fn update_conversation(&self, c: &Conversation) -> StoreResult<bool> {
        let c = c.clone();
        self.with(move |conn| {
            conn.execute(
                "UPDATE conversations SET name = ?4, inputs = ?5, status = ?6, updated_at = ?7
                 WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3",
                params![
                    c.id.to_string(),
                    c.owner.app_id.to_string(),
                    c.owner.end_user_id.to_string(),
                    c.name,
                    to_json(&c.inputs),
                    c.status,
                    c.updated_at.micros()
                ],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn delete_conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<bool> {
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let id = id.to_string();
            let deleted = tx.execute(
                "DELETE FROM conversations WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3",
                params![id, owner.app_id.to_string(), owner.end_user_id.to_string()],
            )?;
            if deleted == 1 {
                for table in ["messages", "feedbacks", "conversation_variables"] {
                    tx.execute(&format!("DELETE FROM {table} WHERE conversation_id = ?1"), [&id])?;
                }
            }
            tx.commit()?;
            Ok(deleted == 1)
        })
        .await
    }
}

const MESSAGE_COLUMNS: &str = "id, app_id, end_user_id, conversation_id, parent_message_id, inputs, query, answer, \
    message_files, retriever_resources, agent_thoughts, status, error, metadata, created_at";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: parse_col(row, 0)?,
        owner: Owner { app_id: parse_col(row, 1)?, end_user_id: parse_col(row, 2)? },
        conversation_id: parse_col(row, 3)?,
        parent_message_id: opt_col(row, 4)?,
        inputs: json_col(row, 5)?,
        query: row.get(6)?,
        answer: row.get(7)?,
        message_files: json_col(row, 8)?,
        retriever_resources: json_col(row, 9)?,
        agent_thoughts: json_col(row, 10)?,
        status: row.get(11)?,
        error: row.get(12)?,
        metadata: json_col(row, 13)?,
        created_at: time_col(row, 14)?,
    })
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn insert_message(&self, m: &Message) -> StoreResult<()> {
        let m = m.clone();
        self.with(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO messages ({MESSAGE_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
                ),
                params![
                    m.id.to_string(),
                    m.owner.app_id.to_string(),
                    m.owner.end_user_id.to_string(),
                    m.conversation_id.to_string(),
                    m.parent_message_id.map(|id| id.to_string()),
                    to_json(&m.inputs),
                    m.query,
                    m.answer,
                    to_json(&m.message_files),
                    to_json(&m.retriever_resources),
                    to_json(&m.agent_thoughts),
                    m.status,
                    m.error,
                    to_json(&m.metadata),
                    m.created_at.micros()
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn message(&self, owner: Owner, id: MessageId) -> StoreResult<Option<Message>> {
        self.with(move |conn| {
            conn.query_row(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3"),
                params![id.to_string(), owner.app_id.to_string(), owner.end_user_id.to_string()],
                message_from_row,
            )
            .optional()
        })
        .await
    }

    async fn message_in(&self, conversation: ConversationId, id: MessageId) -> StoreResult<Option<Message>> {
        self.with(move |conn| {
            conn.query_row(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1 AND conversation_id = ?2"),
                params![id.to_string(), conversation.to_string()],
                message_from_row,
            )
            .optional()
        })
        .await
    }

    async fn messages_before(
        &self,
        conversation: ConversationId,
        before: Option<Cursor<MessageId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Message>> {
        self.with(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1
                 AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3))
                 ORDER BY created_at DESC, id DESC LIMIT ?4"
            ))?;
            stmt.query_map(
                params![
                    conversation.to_string(),
                    before.map(|c| c.at.micros()),
                    before.map(|c| c.id.to_string()),
                    fetch as i64
                ],
                message_from_row,
            )?
            .collect()
        })
        .await
    }

    async fn first_message(&self, conversation: ConversationId) -> StoreResult<Option<Message>> {
        self.with(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 ORDER BY created_at, id LIMIT 1"
                ),
                [conversation.to_string()],
                message_from_row,
            )
            .optional()
        })
        .await
    }
}

const FEEDBACK_COLUMNS: &str =
    "id, app_id, conversation_id, message_id, end_user_id, rating, content, from_source, created_at, updated_at";

fn feedback_from_row(row: &Row<'_>) -> rusqlite::Result<Feedback> {
    let rating: String = row.get(5)?;
    let source: String = row.get(7)?;
    Ok(Feedback {
        id: parse_col(row, 0)?,
        app_id: parse_col(row, 1)?,
        conversation_id: parse_col(row, 2)?,
        message_id: parse_col(row, 3)?,
        from_end_user_id: opt_col(row, 4)?,
        rating: Rating::parse(Some(&rating.into())).ok().flatten().ok_or_else(|| corrupt(5, "unknown rating"))?,
        content: row.get(6)?,
        source: if source == "admin" { FeedbackSource::Admin } else { FeedbackSource::User },
        created_at: time_col(row, 8)?,
        updated_at: time_col(row, 9)?,
    })
}

#[async_trait]
impl FeedbackStore for SqliteStore {
    async fn user_feedback(&self, owner: Owner, message: MessageId) -> StoreResult<Option<Feedback>> {
        self.with(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {FEEDBACK_COLUMNS} FROM feedbacks
                     WHERE message_id = ?1 AND app_id = ?2 AND end_user_id = ?3 AND from_source = 'user'"
                ),
                params![message.to_string(), owner.app_id.to_string(), owner.end_user_id.to_string()],
                feedback_from_row,
            )
            .optional()
        })
        .await
    }

    async fn user_ratings(&self, owner: Owner, messages: &[MessageId]) -> StoreResult<Vec<(MessageId, Rating)>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = messages.iter().map(ToString::to_string).collect();
        self.with(move |conn| {
            let placeholders = vec!["?"; ids.len()].join(", ");
            let mut stmt = conn.prepare(&format!(
                "SELECT {FEEDBACK_COLUMNS} FROM feedbacks
                 WHERE app_id = ? AND end_user_id = ? AND from_source = 'user' AND message_id IN ({placeholders})"
            ))?;
            let mut values = vec![owner.app_id.to_string(), owner.end_user_id.to_string()];
            values.extend(ids);
            stmt.query_map(rusqlite::params_from_iter(values), feedback_from_row)?
                .map(|row| row.map(|f| (f.message_id, f.rating)))
                .collect()
        })
        .await
    }

    async fn save_feedback(&self, f: &Feedback) -> StoreResult<()> {
        let f = f.clone();
        self.with(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO feedbacks ({FEEDBACK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (id) DO UPDATE SET rating = excluded.rating, content = excluded.content,
                     updated_at = excluded.updated_at"
                ),
                params![
                    f.id.to_string(),
                    f.app_id.to_string(),
                    f.conversation_id.to_string(),
                    f.message_id.to_string(),
                    f.from_end_user_id.map(|id| id.to_string()),
                    f.rating.as_str(),
                    f.content,
                    f.source.as_str(),
                    f.created_at.micros(),
                    f.updated_at.micros()
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn delete_feedback(&self, f: &Feedback) -> StoreResult<()> {
        let id = f.id;
        self.with(move |conn| conn.execute("DELETE FROM feedbacks WHERE id = ?1", [id.to_string()]).map(drop)).await
    }

    async fn app_feedbacks(&self, app: AppId, offset: u64, limit: u32) -> StoreResult<Vec<Feedback>> {
        self.with(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {FEEDBACK_COLUMNS} FROM feedbacks WHERE app_id = ?1
                 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"
            ))?;
            stmt.query_map(params![app.to_string(), i64::from(limit), offset as i64], feedback_from_row)?.collect()
        })
        .await
    }
}

const VARIABLE_COLUMNS: &str =
    "id, app_id, conversation_id, name, value_type, value, description, created_at, updated_at";

fn variable_from_row(row: &Row<'_>) -> rusqlite::Result<ConversationVariable> {
    let value_type: String = row.get(4)?;
    Ok(ConversationVariable {
        id: parse_col::<VariableId>(row, 0)?,
        app_id: parse_col(row, 1)?,
        conversation_id: parse_col(row, 2)?,
        name: row.get(3)?,
        value_type: ValueType::parse(&value_type).map_err(|e| corrupt(4, e.0))?,
        value: json_col(row, 5)?,
        description: row.get(6)?,
        created_at: time_col(row, 7)?,
        updated_at: time_col(row, 8)?,
    })
}

#[async_trait]
impl VariableStore for SqliteStore {
    async fn insert_variable(&self, v: &ConversationVariable) -> StoreResult<()> {
        let v = v.clone();
        self.with(move |conn| {
            conn.execute(
                &format!("INSERT INTO conversation_variables ({VARIABLE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    v.id.to_string(),
                    v.app_id.to_string(),
                    v.conversation_id.to_string(),
                    v.name,
                    v.value_type.as_str(),
                    to_json(&v.value),
                    v.description,
                    v.created_at.micros(),
                    v.updated_at.micros()
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn variables(
        &self,
        conversation: ConversationId,
        name: Option<&VariableNameFilter>,
        after: Option<Cursor<VariableId>>,
        fetch: usize,
    ) -> StoreResult<Vec<ConversationVariable>> {
        let needle = name.map(|n| n.needle().to_owned());
        self.with(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {VARIABLE_COLUMNS} FROM conversation_variables WHERE conversation_id = ?1
                 AND (?2 IS NULL OR instr(lower(name), ?2) > 0)
                 AND (?3 IS NULL OR created_at > ?3 OR (created_at = ?3 AND id > ?4))
                 ORDER BY created_at, id LIMIT ?5"
            ))?;
            stmt.query_map(
                params![
                    conversation.to_string(),
                    needle,
                    after.map(|c| c.at.micros()),
                    after.map(|c| c.id.to_string()),
                    fetch as i64
                ],
                variable_from_row,
            )?
            .collect()
        })
        .await
    }

    async fn variable(
        &self,
        conversation: ConversationId,
        id: VariableId,
    ) -> StoreResult<Option<ConversationVariable>> {
        self.with(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {VARIABLE_COLUMNS} FROM conversation_variables WHERE id = ?1 AND conversation_id = ?2"
                ),
                params![id.to_string(), conversation.to_string()],
                variable_from_row,
            )
            .optional()
        })
        .await
    }

    async fn update_variable(&self, v: &ConversationVariable) -> StoreResult<()> {
        let v = v.clone();
        self.with(move |conn| {
            conn.execute(
                "UPDATE conversation_variables SET value = ?3, updated_at = ?4 WHERE id = ?1 AND conversation_id = ?2",
                params![v.id.to_string(), v.conversation_id.to_string(), to_json(&v.value), v.updated_at.micros()],
            )
            .map(drop)
        })
        .await
    }
}

#[async_trait]
impl RateLimiter for SqliteStore {
    async fn try_hit(&self, key: &str, window_start: i64, limit: u32) -> StoreResult<bool> {
        let key = key.to_owned();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM rate_windows WHERE key = ?1 AND window_start < ?2", params![key, window_start])?;
            let counted = tx.execute(
                "INSERT INTO rate_windows (key, window_start, hits) VALUES (?1, ?2, 1)
                 ON CONFLICT (key, window_start) DO UPDATE SET hits = hits + 1 WHERE hits < ?3",
                params![key, window_start, i64::from(limit)],
            )?;
            tx.commit()?;
            Ok(counted == 1)
        })
        .await
    }
}
