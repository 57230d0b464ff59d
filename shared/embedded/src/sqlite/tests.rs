//! Unit tests of the SQLite adapter: schema migrations, and rows that do not decode.

use rusqlite::Connection;
use uuid::Uuid;

use colloquy_core::domain::{AnnotationId, AppId, ConversationId, FileId, MessageId, Owner};
use colloquy_core::ports::{AnnotationStore, FeedbackStore, FileStore, MessageStore, StoreError};

use super::SqliteStore;
use super::schema::SCHEMA_VERSION;

#[test]
fn a_version_3_database_gains_the_generating_state() {
    let path = std::env::temp_dir().join(format!("colloquy-v3-{}.db", Uuid::new_v4()));
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

/// Fresh ids for rows written directly.
struct Ids {
    app: AppId,
    owner: Owner,
    conversation: ConversationId,
    message: MessageId,
}

impl Ids {
    fn new() -> Self {
        let app = AppId::from_uuid(Uuid::now_v7());
        let owner = Owner { app_id: app, end_user_id: colloquy_core::domain::EndUserId::from_uuid(Uuid::now_v7()) };
        let conversation = ConversationId::from_uuid(Uuid::now_v7());
        Self { app, owner, conversation, message: MessageId::from_uuid(Uuid::now_v7()) }
    }
}

/// A store holding whatever `sql` writes, bypassing the adapter's own encoding.
fn store_with(sql: &str) -> SqliteStore {
    let store = SqliteStore::in_memory().unwrap();
    store.conn.lock().unwrap().execute_batch(sql).unwrap();
    store
}

/// The message of a [`StoreError::Corrupt`], or a panic naming what came instead.
fn corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Corrupt(message)) => message,
        other => panic!("expected a corrupt-data error, got {other:?}"),
    }
}

fn message_row(ids: &Ids, status: &str) -> String {
    format!(
        "INSERT INTO messages VALUES ('{}', '{}', '{}', '{}', NULL, '{{}}', 'q', 'a', '[]', '[]', '[]', '{status}',
            NULL, '{{}}', 1, NULL);",
        ids.message, ids.app, ids.owner.end_user_id, ids.conversation
    )
}

#[tokio::test]
async fn an_unknown_status_names_its_table_and_column() {
    let ids = Ids::new();
    let store = store_with(&message_row(&ids, "pending"));
    let message = corrupt(store.message_in(ids.conversation, ids.message).await);
    assert!(message.contains("messages.status") && message.contains("pending"), "{message}");
}

#[tokio::test]
async fn an_unknown_feedback_source_is_corrupt_not_a_user() {
    let ids = Ids::new();
    let store = store_with(&format!(
        "{} INSERT INTO feedbacks VALUES ('{}', '{}', '{}', '{}', '{}', 'like', NULL, 'robot', 1, 1);",
        message_row(&ids, "normal"),
        Uuid::now_v7(),
        ids.app,
        ids.conversation,
        ids.message,
        ids.owner.end_user_id
    ));
    let message = corrupt(store.app_feedbacks(ids.app, 0, 10).await);
    assert!(message.contains("feedbacks.from_source"), "{message}");
}

#[tokio::test]
async fn a_negative_hit_count_is_corrupt_not_zero() {
    let ids = Ids::new();
    let id = AnnotationId::from_uuid(Uuid::now_v7());
    let store = store_with(&format!("INSERT INTO annotations VALUES ('{id}', '{}', 'q', 'a', -3, NULL, 1);", ids.app));
    let message = corrupt(store.annotation(ids.app, id).await);
    assert!(message.contains("annotations.hit_count") && message.contains("-3"), "{message}");
}

#[tokio::test]
async fn a_value_of_the_wrong_type_names_its_column() {
    let ids = Ids::new();
    let id = FileId::from_uuid(Uuid::now_v7());
    let store = store_with(&format!(
        "INSERT INTO upload_files VALUES ('{id}', '{}', '{}', 'a.txt', 'large', 'txt', 'text/plain', 1);",
        ids.app, ids.owner.end_user_id
    ));
    let message = corrupt(store.file(ids.owner, id).await);
    assert!(message.contains("upload_files.size"), "{message}");
}

#[tokio::test]
async fn malformed_json_names_its_column() {
    let ids = Ids::new();
    let store = store_with(&message_row(&ids, "normal").replace("'[]', '[]', '[]'", "'[]', '{', '[]'"));
    let message = corrupt(store.message_in(ids.conversation, ids.message).await);
    assert!(message.contains("messages.retriever_resources"), "{message}");
}
