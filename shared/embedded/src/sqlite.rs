//! The embedded store: one SQLite file (or memory), implementing every storage port.
//!
//! SQLite calls block, so each one runs on Tokio's blocking pool behind one connection.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::types::Type;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params, params_from_iter};
use serde::Serialize;
use serde::de::DeserializeOwned;

use colloquy_core::domain::{
    ABANDONED_ERROR, Annotation, AnnotationId, AnnotationJob, AnnotationSettings, App, AppConfig, AppId, AppMode,
    Conversation, ConversationId, ConversationSort, ConversationVariable, Cursor, EndUser, EndUserId, Feedback,
    FeedbackId, FeedbackSource, FileId, Invalid, JobId, JobStatus, KeyHash, Message, MessageId, Owner, Rating,
    ReplyAction, SortField, TaskId, Timestamp, UploadFile, UserRef, ValueType, VariableId, VariableNameFilter,
};
use colloquy_core::ports::{
    AnnotationStore, AppStore, ConversationStore, EndUserStore, FeedbackStore, FileStore, MessageStore, RateLimiter,
    StoreError, StoreResult, TaskControl, VariableStore,
};

const SCHEMA_VERSION: i64 = 4;

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
    status TEXT NOT NULL, error TEXT, metadata TEXT NOT NULL, created_at INTEGER NOT NULL, task_id TEXT);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, created_at, id);
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
    extension TEXT NOT NULL, mime_type TEXT NOT NULL, created_at INTEGER NOT NULL);
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
        migrate(&conn).map_err(unavailable)?;
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

    /// One row or none.
    async fn one<T: Send + 'static>(&self, sql: String, args: Args, map: MapRow<T>) -> StoreResult<Option<T>> {
        self.with(move |conn| conn.query_row(&sql, params_from_iter(args), map).optional()).await
    }

    /// Every row.
    async fn all<T: Send + 'static>(&self, sql: String, args: Args, map: MapRow<T>) -> StoreResult<Vec<T>> {
        self.with(move |conn| conn.prepare(&sql)?.query_map(params_from_iter(args), map)?.collect()).await
    }

    /// Runs one statement and returns how many rows it changed.
    async fn execute(&self, sql: String, args: Args) -> StoreResult<usize> {
        self.with(move |conn| conn.execute(&sql, params_from_iter(args))).await
    }
}

/// Brings a database of an earlier schema version up to this one (before [`SCHEMA`] runs,
/// whose indexes may need the new columns).
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0)).map(|n| n > 0);
    // Version 4: a message's running generation.
    if has("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'messages'")?
        && !has("SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'task_id'")?
    {
        conn.execute_batch("ALTER TABLE messages ADD COLUMN task_id TEXT")?;
    }
    Ok(())
}

/// Owned statement arguments, so a statement can move to the blocking pool.
type Args = Vec<SqlValue>;
type MapRow<T> = fn(&Row<'_>) -> rusqlite::Result<T>;

/// Builds [`Args`] from ids (as canonical strings), strings, integers and options of them.
macro_rules! args {
    ($($arg:expr),* $(,)?) => { vec![$(arg($arg)),*] };
}

/// Converts one statement argument.
fn arg(value: impl IntoArg) -> SqlValue {
    value.into_arg()
}

trait IntoArg {
    fn into_arg(self) -> SqlValue;
}

impl IntoArg for String {
    fn into_arg(self) -> SqlValue {
        SqlValue::Text(self)
    }
}

impl IntoArg for &str {
    fn into_arg(self) -> SqlValue {
        SqlValue::Text(self.to_owned())
    }
}

impl IntoArg for i64 {
    fn into_arg(self) -> SqlValue {
        SqlValue::Integer(self)
    }
}

impl IntoArg for Timestamp {
    fn into_arg(self) -> SqlValue {
        SqlValue::Integer(self.micros())
    }
}

impl<T: IntoArg> IntoArg for Option<T> {
    fn into_arg(self) -> SqlValue {
        self.map_or(SqlValue::Null, IntoArg::into_arg)
    }
}

macro_rules! id_args {
    ($($id:ty),*) => {$(
        impl IntoArg for $id {
            fn into_arg(self) -> SqlValue {
                SqlValue::Text(self.to_string())
            }
        }
    )*};
}

id_args!(AppId, EndUserId, ConversationId, MessageId, FeedbackId, VariableId, AnnotationId, JobId, TaskId, FileId);

impl IntoArg for f64 {
    fn into_arg(self) -> SqlValue {
        SqlValue::Real(self)
    }
}

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// A failed statement in the store's terms: a busy, locked, full or failing disk is worth
/// retrying (503); anything else is a fault that retrying will not fix (500).
fn classify(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, DiskFull, OutOfMemory, SystemIoFailure};
    match error {
        rusqlite::Error::FromSqlConversionFailure(..) => StoreError::Corrupt(error.to_string()),
        rusqlite::Error::SqliteFailure(code, _) if code.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(error.to_string())
        }
        rusqlite::Error::SqliteFailure(code, _)
            if matches!(code.code, DatabaseBusy | DatabaseLocked | DiskFull | OutOfMemory | SystemIoFailure) =>
        {
            StoreError::Unavailable(error.to_string())
        }
        other => StoreError::Failed(other.to_string()),
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

/// `INSERT INTO table (columns) VALUES (?1, ..., ?n)`.
fn insert_sql(table: &str, columns: &str) -> String {
    let placeholders: Vec<String> = (1..=columns.split(',').count()).map(|i| format!("?{i}")).collect();
    format!("INSERT INTO {table} ({columns}) VALUES ({})", placeholders.join(", "))
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
        let app_args = args![app.id, app.name.as_str(), app.mode.as_str(), to_json(&app.config), app.created_at];
        let key_args = args![first_key.as_str(), app.id, app.created_at];
        self.with(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(&insert_sql("apps", APP_COLUMNS), params_from_iter(app_args))?;
            tx.execute(
                "INSERT INTO api_keys (key_hash, app_id, created_at) VALUES (?1, ?2, ?3)",
                params_from_iter(key_args),
            )?;
            tx.commit()
        })
        .await
    }

    async fn update_app(&self, app: &App) -> StoreResult<bool> {
        let sql = "UPDATE apps SET name = ?2, mode = ?3, config = ?4 WHERE id = ?1";
        let changed =
            self.execute(sql.into(), args![app.id, app.name.as_str(), app.mode.as_str(), to_json(&app.config)]);
        Ok(changed.await? == 1)
    }

    async fn app(&self, id: AppId) -> StoreResult<Option<App>> {
        self.one(format!("SELECT {APP_COLUMNS} FROM apps WHERE id = ?1"), args![id], app_from_row).await
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        self.all(format!("SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, id"), args![], app_from_row).await
    }

    async fn add_key(&self, app: AppId, key: &KeyHash, now: Timestamp) -> StoreResult<()> {
        let sql = "INSERT INTO api_keys (key_hash, app_id, created_at) VALUES (?1, ?2, ?3)";
        self.execute(sql.into(), args![key.as_str(), app, now]).await.map(drop)
    }

    async fn app_for_key(&self, key: &KeyHash) -> StoreResult<Option<AppId>> {
        let sql = "SELECT app_id FROM api_keys WHERE key_hash = ?1";
        self.one(sql.into(), args![key.as_str()], |row| parse_col(row, 0)).await
    }

    async fn revoke_key(&self, key: &KeyHash) -> StoreResult<bool> {
        Ok(self.execute("DELETE FROM api_keys WHERE key_hash = ?1".into(), args![key.as_str()]).await? == 1)
    }
}

#[async_trait]
impl EndUserStore for SqliteStore {
    async fn end_user(&self, app: AppId, user: &UserRef, new: EndUser) -> StoreResult<EndUser> {
        let insert = "INSERT INTO end_users (id, app_id, session_id, created_at) VALUES (?1, ?2, ?3, ?4)
                      ON CONFLICT (app_id, session_id) DO NOTHING";
        self.execute(insert.into(), args![new.id, app, user.as_str(), new.created_at]).await?;
        let select = "SELECT id, created_at FROM end_users WHERE app_id = ?1 AND session_id = ?2";
        let found =
            self.one(select.into(), args![app, user.as_str()], |row| Ok((parse_col(row, 0)?, time_col(row, 1)?)));
        let (id, created_at) = found.await?.ok_or_else(|| StoreError::Unavailable("end user vanished".into()))?;
        Ok(EndUser { id, app_id: app, session_id: user.clone(), created_at })
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
        status: parse_col(row, 5)?,
        introduction: row.get(6)?,
        created_at: time_col(row, 7)?,
        updated_at: time_col(row, 8)?,
    })
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn insert_conversation(&self, c: &Conversation) -> StoreResult<()> {
        let sql = insert_sql("conversations", CONVERSATION_COLUMNS);
        let values = args![
            c.id,
            c.owner.app_id,
            c.owner.end_user_id,
            c.name.as_str(),
            to_json(&c.inputs),
            c.status.as_str(),
            c.introduction.as_str(),
            c.created_at,
            c.updated_at
        ];
        self.execute(sql, values).await.map(drop)
    }

    async fn conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<Option<Conversation>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3"
        );
        self.one(sql, args![id, owner.app_id, owner.end_user_id], conversation_from_row).await
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
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE app_id = ?1 AND end_user_id = ?2
             AND (?3 IS NULL OR {column} {beyond} ?3 OR ({column} = ?3 AND id {beyond} ?4))
             ORDER BY {column} {direction}, id {direction} LIMIT ?5"
        );
        let values = args![owner.app_id, owner.end_user_id, after.map(|c| c.at), after.map(|c| c.id), fetch as i64];
        self.all(sql, values, conversation_from_row).await
    }

    async fn update_conversation(&self, c: &Conversation) -> StoreResult<bool> {
        let sql = "UPDATE conversations SET name = ?4, inputs = ?5, status = ?6, updated_at = ?7
                   WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3";
        let values = args![
            c.id,
            c.owner.app_id,
            c.owner.end_user_id,
            c.name.as_str(),
            to_json(&c.inputs),
            c.status.as_str(),
            c.updated_at
        ];
        Ok(self.execute(sql.into(), values).await? == 1)
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
    message_files, retriever_resources, agent_thoughts, status, error, metadata, created_at, task_id";

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
        status: parse_col(row, 11)?,
        error: row.get(12)?,
        metadata: json_col(row, 13)?,
        created_at: time_col(row, 14)?,
        task_id: opt_col(row, 15)?,
    })
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn insert_message(&self, m: &Message) -> StoreResult<bool> {
        // Inserted only while the conversation exists: a delete that ran since the caller read
        // it leaves nothing behind (deletes remove the conversation and its messages at once).
        let placeholders: Vec<String> = (1..=MESSAGE_COLUMNS.split(',').count()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS}) SELECT {} WHERE EXISTS \
             (SELECT 1 FROM conversations WHERE id = ?4 AND app_id = ?2 AND end_user_id = ?3)",
            placeholders.join(", ")
        );
        let values = args![
            m.id,
            m.owner.app_id,
            m.owner.end_user_id,
            m.conversation_id,
            m.parent_message_id,
            to_json(&m.inputs),
            m.query.as_str(),
            m.answer.as_str(),
            to_json(&m.message_files),
            to_json(&m.retriever_resources),
            to_json(&m.agent_thoughts),
            m.status.as_str(),
            m.error.clone(),
            to_json(&m.metadata),
            m.created_at,
            m.task_id
        ];
        let task = m.task_id.map(|task| args![task, m.owner.app_id, m.owner.end_user_id, 0_i64, m.created_at]);
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let inserted = tx.execute(&sql, params_from_iter(values))? == 1;
            if inserted && let Some(task) = task {
                tx.execute(
                    &insert_sql("tasks", "id, app_id, end_user_id, stop_requested, started_at"),
                    params_from_iter(task),
                )?;
            }
            tx.commit()?;
            Ok(inserted)
        })
        .await
    }

    async fn update_message(&self, m: &Message) -> StoreResult<bool> {
        let sql = "UPDATE messages SET answer = ?2, status = ?3, error = ?4, metadata = ?5, message_files = ?6, \
                   task_id = ?7 WHERE id = ?1";
        let values = args![
            m.id,
            m.answer.as_str(),
            m.status.as_str(),
            m.error.clone(),
            to_json(&m.metadata),
            to_json(&m.message_files),
            m.task_id
        ];
        Ok(self.execute(sql.into(), values).await? == 1)
    }

    async fn mark_abandoned(&self, m: &Message) -> StoreResult<bool> {
        let Some(task) = m.task_id else { return Ok(false) };
        let sql = "UPDATE messages SET status = 'error', error = ?3, task_id = NULL WHERE id = ?1 AND task_id = ?2";
        Ok(self.execute(sql.into(), args![m.id, task, ABANDONED_ERROR]).await? == 1)
    }

    async fn message(&self, owner: Owner, id: MessageId) -> StoreResult<Option<Message>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3");
        self.one(sql, args![id, owner.app_id, owner.end_user_id], message_from_row).await
    }

    async fn message_in(&self, conversation: ConversationId, id: MessageId) -> StoreResult<Option<Message>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1 AND conversation_id = ?2");
        self.one(sql, args![id, conversation], message_from_row).await
    }

    async fn messages_before(
        &self,
        conversation: ConversationId,
        before: Option<Cursor<MessageId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1
             AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3))
             ORDER BY created_at DESC, id DESC LIMIT ?4"
        );
        let values = args![conversation, before.map(|c| c.at), before.map(|c| c.id), fetch as i64];
        self.all(sql, values, message_from_row).await
    }

    async fn first_message(&self, conversation: ConversationId) -> StoreResult<Option<Message>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 ORDER BY created_at, id LIMIT 1"
        );
        self.one(sql, args![conversation], message_from_row).await
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
        let sql = format!(
            "SELECT {FEEDBACK_COLUMNS} FROM feedbacks
             WHERE message_id = ?1 AND app_id = ?2 AND end_user_id = ?3 AND from_source = 'user'"
        );
        self.one(sql, args![message, owner.app_id, owner.end_user_id], feedback_from_row).await
    }

    async fn user_ratings(&self, owner: Owner, messages: &[MessageId]) -> StoreResult<Vec<(MessageId, Rating)>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = vec!["?"; messages.len()].join(", ");
        let sql = format!(
            "SELECT {FEEDBACK_COLUMNS} FROM feedbacks
             WHERE app_id = ? AND end_user_id = ? AND from_source = 'user' AND message_id IN ({placeholders})"
        );
        let mut values = args![owner.app_id, owner.end_user_id];
        values.extend(messages.iter().map(|id| arg(*id)));
        let rows = self.all(sql, values, feedback_from_row).await?;
        Ok(rows.into_iter().map(|f| (f.message_id, f.rating)).collect())
    }

    async fn save_feedback(&self, f: &Feedback) -> StoreResult<bool> {
        let existing_sql = "SELECT id FROM feedbacks WHERE message_id = ?1 AND end_user_id IS ?2 AND from_source = ?3";
        let f = f.clone();
        self.with(move |conn| {
            // Immediate: the check and the write hold the write lock, also against other processes.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let message = tx
                .query_row(
                    "SELECT 1 FROM messages WHERE id = ?1 AND conversation_id = ?2",
                    params_from_iter(args![f.message_id, f.conversation_id]),
                    |_| Ok(()),
                )
                .optional()?;
            if message.is_none() {
                return Ok(false);
            }
            let existing: Option<String> = tx
                .query_row(
                    existing_sql,
                    params_from_iter(args![f.message_id, f.from_end_user_id, f.source.as_str()]),
                    |row| row.get(0),
                )
                .optional()?;
            match existing {
                Some(id) => tx.execute(
                    "UPDATE feedbacks SET rating = ?2, content = ?3, updated_at = ?4 WHERE id = ?1",
                    params_from_iter(args![id, f.rating.as_str(), f.content.clone(), f.updated_at]),
                )?,
                None => tx.execute(
                    &insert_sql("feedbacks", FEEDBACK_COLUMNS),
                    params_from_iter(args![
                        f.id,
                        f.app_id,
                        f.conversation_id,
                        f.message_id,
                        f.from_end_user_id,
                        f.rating.as_str(),
                        f.content.clone(),
                        f.source.as_str(),
                        f.created_at,
                        f.updated_at
                    ]),
                )?,
            };
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn delete_feedback(&self, f: &Feedback) -> StoreResult<()> {
        self.execute("DELETE FROM feedbacks WHERE id = ?1".into(), args![f.id]).await.map(drop)
    }

    async fn app_feedbacks(&self, app: AppId, offset: u64, limit: u32) -> StoreResult<Vec<Feedback>> {
        let sql = format!(
            "SELECT {FEEDBACK_COLUMNS} FROM feedbacks WHERE app_id = ?1
             ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"
        );
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        self.all(sql, args![app, i64::from(limit), offset], feedback_from_row).await
    }
}

const VARIABLE_COLUMNS: &str =
    "id, app_id, conversation_id, name, value_type, value, description, created_at, updated_at";

fn variable_from_row(row: &Row<'_>) -> rusqlite::Result<ConversationVariable> {
    let value_type: String = row.get(4)?;
    Ok(ConversationVariable {
        id: parse_col(row, 0)?,
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
        let sql = insert_sql("conversation_variables", VARIABLE_COLUMNS);
        let values = args![
            v.id,
            v.app_id,
            v.conversation_id,
            v.name.as_str(),
            v.value_type.as_str(),
            to_json(&v.value),
            v.description.as_str(),
            v.created_at,
            v.updated_at
        ];
        self.execute(sql, values).await.map(drop)
    }

    async fn variables(
        &self,
        conversation: ConversationId,
        name: Option<&VariableNameFilter>,
        after: Option<Cursor<VariableId>>,
        fetch: usize,
    ) -> StoreResult<Vec<ConversationVariable>> {
        let sql = format!(
            "SELECT {VARIABLE_COLUMNS} FROM conversation_variables WHERE conversation_id = ?1
             AND (?2 IS NULL OR instr(lower(name), ?2) > 0)
             AND (?3 IS NULL OR created_at > ?3 OR (created_at = ?3 AND id > ?4))
             ORDER BY created_at, id LIMIT ?5"
        );
        let values = args![
            conversation,
            name.map(|n| n.needle().to_owned()),
            after.map(|c| c.at),
            after.map(|c| c.id),
            fetch as i64
        ];
        self.all(sql, values, variable_from_row).await
    }

    async fn variable(
        &self,
        conversation: ConversationId,
        id: VariableId,
    ) -> StoreResult<Option<ConversationVariable>> {
        let sql =
            format!("SELECT {VARIABLE_COLUMNS} FROM conversation_variables WHERE id = ?1 AND conversation_id = ?2");
        self.one(sql, args![id, conversation], variable_from_row).await
    }

    async fn update_variable(&self, v: &ConversationVariable) -> StoreResult<()> {
        let sql =
            "UPDATE conversation_variables SET value = ?3, updated_at = ?4 WHERE id = ?1 AND conversation_id = ?2";
        self.execute(sql.into(), args![v.id, v.conversation_id, to_json(&v.value), v.updated_at]).await.map(drop)
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

    async fn give_back(&self, key: &str, window_start: i64) -> StoreResult<()> {
        let sql = "UPDATE rate_windows SET hits = hits - 1 WHERE key = ?1 AND window_start = ?2 AND hits > 0";
        self.execute(sql.into(), args![key, window_start]).await.map(drop)
    }
}

const ANNOTATION_COLUMNS: &str = "id, app_id, question, answer, hit_count, embedding, created_at";

fn annotation_from_row(row: &Row<'_>) -> rusqlite::Result<Annotation> {
    let embedding: Option<String> = row.get(5)?;
    Ok(Annotation {
        id: parse_col(row, 0)?,
        app_id: parse_col(row, 1)?,
        question: row.get(2)?,
        answer: row.get(3)?,
        hit_count: row.get::<_, i64>(4)?.max(0) as u64,
        embedding: embedding
            .map(|raw| serde_json::from_str(&raw).map_err(|e| corrupt(5, e.to_string())))
            .transpose()?,
        created_at: time_col(row, 6)?,
    })
}

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<AnnotationJob> {
    let action: String = row.get(2)?;
    let status: String = row.get(3)?;
    Ok(AnnotationJob {
        id: parse_col(row, 0)?,
        app_id: parse_col(row, 1)?,
        action: ReplyAction::parse(&action).map_err(|e| corrupt(2, e.0))?,
        status: JobStatus::parse(&status).map_err(|e| corrupt(3, e.0))?,
        error: row.get(4)?,
        created_at: time_col(row, 5)?,
    })
}

#[async_trait]
impl AnnotationStore for SqliteStore {
    async fn insert_annotation(&self, a: &Annotation) -> StoreResult<()> {
        let embedding = a.embedding.as_ref().map(to_json);
        let values =
            args![a.id, a.app_id, a.question.as_str(), a.answer.as_str(), a.hit_count as i64, embedding, a.created_at];
        self.execute(insert_sql("annotations", ANNOTATION_COLUMNS), values).await.map(drop)
    }

    async fn annotation(&self, app: AppId, id: AnnotationId) -> StoreResult<Option<Annotation>> {
        let sql = format!("SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE id = ?1 AND app_id = ?2");
        self.one(sql, args![id, app], annotation_from_row).await
    }

    async fn update_annotation(&self, a: &Annotation) -> StoreResult<bool> {
        let sql = "UPDATE annotations SET question = ?3, answer = ?4, embedding = ?5 WHERE id = ?1 AND app_id = ?2";
        let embedding = a.embedding.as_ref().map(to_json);
        Ok(self.execute(sql.into(), args![a.id, a.app_id, a.question.as_str(), a.answer.as_str(), embedding]).await?
            == 1)
    }

    async fn delete_annotation(&self, app: AppId, id: AnnotationId) -> StoreResult<bool> {
        Ok(self.execute("DELETE FROM annotations WHERE id = ?1 AND app_id = ?2".into(), args![id, app]).await? == 1)
    }

    async fn annotations(
        &self,
        app: AppId,
        keyword: Option<&str>,
        offset: u64,
        limit: u32,
    ) -> StoreResult<(Vec<Annotation>, u64)> {
        let filter = "app_id = ?1 AND (?2 IS NULL OR instr(lower(question), lower(?2)) > 0 OR instr(lower(answer), lower(?2)) > 0)";
        let keyword = keyword.map(str::to_owned);
        let sql = format!(
            "SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4"
        );
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = self.all(sql, args![app, keyword.clone(), i64::from(limit), offset], annotation_from_row).await?;
        let total = self.one(format!("SELECT COUNT(*) FROM annotations WHERE {filter}"), args![app, keyword], |row| {
            row.get::<_, i64>(0)
        });
        Ok((rows, total.await?.unwrap_or(0).max(0) as u64))
    }

    async fn all_annotations(&self, app: AppId) -> StoreResult<Vec<Annotation>> {
        let sql = format!("SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE app_id = ?1 ORDER BY created_at, id");
        self.all(sql, args![app], annotation_from_row).await
    }

    async fn record_annotation_hit(&self, app: AppId, id: AnnotationId) -> StoreResult<()> {
        let sql = "UPDATE annotations SET hit_count = hit_count + 1 WHERE id = ?1 AND app_id = ?2";
        self.execute(sql.into(), args![id, app]).await.map(drop)
    }

    async fn annotation_settings(&self, app: AppId) -> StoreResult<Option<AnnotationSettings>> {
        let sql =
            "SELECT score_threshold, embedding_provider, embedding_model FROM annotation_settings WHERE app_id = ?1";
        self.one(sql.into(), args![app], |row| {
            Ok(AnnotationSettings {
                score_threshold: row.get::<_, f64>(0)? as f32,
                embedding_provider: row.get(1)?,
                embedding_model: row.get(2)?,
            })
        })
        .await
    }

    async fn save_annotation_settings(&self, app: AppId, settings: Option<&AnnotationSettings>) -> StoreResult<()> {
        match settings {
            None => {
                self.execute("DELETE FROM annotation_settings WHERE app_id = ?1".into(), args![app]).await.map(drop)
            }
            Some(s) => {
                let sql = "INSERT INTO annotation_settings (app_id, score_threshold, embedding_provider, embedding_model)
                           VALUES (?1, ?2, ?3, ?4) ON CONFLICT (app_id) DO UPDATE SET score_threshold = excluded.score_threshold,
                           embedding_provider = excluded.embedding_provider, embedding_model = excluded.embedding_model";
                let values =
                    args![app, f64::from(s.score_threshold), s.embedding_provider.as_str(), s.embedding_model.as_str()];
                self.execute(sql.into(), values).await.map(drop)
            }
        }
    }

    async fn save_job(&self, job: &AnnotationJob) -> StoreResult<()> {
        let sql = insert_sql("annotation_jobs", "id, app_id, action, status, error, created_at")
            + " ON CONFLICT (id) DO UPDATE SET status = excluded.status, error = excluded.error";
        let values =
            args![job.id, job.app_id, job.action.as_str(), job.status.as_str(), job.error.as_str(), job.created_at];
        self.execute(sql, values).await.map(drop)
    }

    async fn job(&self, app: AppId, id: JobId) -> StoreResult<Option<AnnotationJob>> {
        let sql =
            "SELECT id, app_id, action, status, error, created_at FROM annotation_jobs WHERE id = ?1 AND app_id = ?2";
        self.one(sql.into(), args![id, app], job_from_row).await
    }
}

#[async_trait]
impl TaskControl for SqliteStore {
    async fn request_stop(&self, task: TaskId, owner: Owner) -> StoreResult<()> {
        let sql = "UPDATE tasks SET stop_requested = 1 WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3";
        self.execute(sql.into(), args![task, owner.app_id, owner.end_user_id]).await.map(drop)
    }

    async fn stop_requested(&self, task: TaskId) -> StoreResult<bool> {
        let sql = "SELECT stop_requested FROM tasks WHERE id = ?1";
        Ok(self.one(sql.into(), args![task], |row| row.get::<_, i64>(0)).await? == Some(1))
    }

    async fn finish_task(&self, task: TaskId) -> StoreResult<()> {
        self.execute("DELETE FROM tasks WHERE id = ?1".into(), args![task]).await.map(drop)
    }

    async fn end_abandoned(&self, now: Timestamp) -> StoreResult<usize> {
        let before = Message::abandoned_before(now);
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let ended = tx.execute(
                "UPDATE messages SET status = 'error', error = ?2, task_id = NULL
                 WHERE task_id IS NOT NULL AND created_at < ?1",
                params_from_iter(args![before, ABANDONED_ERROR]),
            )?;
            tx.execute("DELETE FROM tasks WHERE started_at < ?1", params_from_iter(args![before]))?;
            tx.commit()?;
            Ok(ended)
        })
        .await
    }
}

const FILE_COLUMNS: &str = "id, app_id, end_user_id, name, size, extension, mime_type, created_at";

#[async_trait]
impl FileStore for SqliteStore {
    async fn insert_file(&self, f: &UploadFile) -> StoreResult<()> {
        let values = args![
            f.id,
            f.owner.app_id,
            f.owner.end_user_id,
            f.name.as_str(),
            i64::try_from(f.size).unwrap_or(i64::MAX),
            f.extension.as_str(),
            f.mime_type.as_str(),
            f.created_at
        ];
        self.execute(insert_sql("upload_files", FILE_COLUMNS), values).await.map(drop)
    }

    async fn file(&self, owner: Owner, id: FileId) -> StoreResult<Option<UploadFile>> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM upload_files WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3");
        self.one(sql, args![id, owner.app_id, owner.end_user_id], |row| {
            Ok(UploadFile {
                id: parse_col(row, 0)?,
                owner: Owner { app_id: parse_col(row, 1)?, end_user_id: parse_col(row, 2)? },
                name: row.get(3)?,
                size: row.get::<_, i64>(4)?.max(0) as u64,
                extension: row.get(5)?,
                mime_type: row.get(6)?,
                created_at: time_col(row, 7)?,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_3_database_gains_the_generating_state() {
        let path = std::env::temp_dir().join(format!("colloquy-v3-{}.db", uuid::Uuid::new_v4()));
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE messages (
                    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, end_user_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
                    parent_message_id TEXT, inputs TEXT NOT NULL, query TEXT NOT NULL, answer TEXT NOT NULL,
                    message_files TEXT NOT NULL, retriever_resources TEXT NOT NULL, agent_thoughts TEXT NOT NULL,
                    status TEXT NOT NULL, error TEXT, metadata TEXT NOT NULL, created_at INTEGER NOT NULL);
                 INSERT INTO messages VALUES ('01a22a2f-2afd-7105-822d-5c3f1fd26210', 'a', 'u', 'c', NULL, '{}',
                    'q', 'a', '[]', '[]', '[]', 'normal', NULL, '{}', 1);
                 PRAGMA user_version = 3;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let conn = store.conn.lock().unwrap();
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let task: Option<String> = conn.query_row("SELECT task_id FROM messages", [], |row| row.get(0)).unwrap();
        assert_eq!(task, None, "stored messages are not generating");
        drop(conn);
        drop(store);
        assert!(SqliteStore::open(&path).is_ok(), "and it opens again");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
