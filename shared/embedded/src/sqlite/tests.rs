//! Unit tests of the SQLite adapter: schema migrations, rows that do not decode, and the
//! query plans of the list statements.

use rusqlite::Connection;
use uuid::Uuid;

use colloquy_core::domain::{AnnotationId, AppId, ConversationId, FileId, MessageId, Owner, Tally};
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
    store.on_reader(|conn| {
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let task: Option<String> = conn.query_row("SELECT task_id FROM messages", [], |row| row.get(0)).unwrap();
        assert_eq!(task, None, "stored messages are not generating");
    });
    drop(store);
    assert!(SqliteStore::open(&path).is_ok(), "and it opens again");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[test]
fn a_version_4_database_keeps_each_end_users_rating_on_its_messages() {
    let path = std::env::temp_dir().join(format!("colloquy-v4-{}.db", Uuid::new_v4()));
    let (rated, unrated) = ("01a22a2f-2afd-7105-822d-5c3f1fd26210", "01a22a2f-2afd-7105-822d-5c3f1fd26211");
    {
        let old = Connection::open(&path).unwrap();
        old.execute_batch(&format!(
            "CREATE TABLE messages (
                id TEXT PRIMARY KEY, app_id TEXT NOT NULL, end_user_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
                parent_message_id TEXT, inputs TEXT NOT NULL, query TEXT NOT NULL, answer TEXT NOT NULL,
                message_files TEXT NOT NULL, retriever_resources TEXT NOT NULL, agent_thoughts TEXT NOT NULL,
                status TEXT NOT NULL, error TEXT, metadata TEXT NOT NULL, created_at INTEGER NOT NULL, task_id TEXT);
             CREATE TABLE feedbacks (
                id TEXT PRIMARY KEY, app_id TEXT NOT NULL, conversation_id TEXT NOT NULL, message_id TEXT NOT NULL,
                end_user_id TEXT, rating TEXT NOT NULL, content TEXT, from_source TEXT NOT NULL,
                created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
             INSERT INTO messages VALUES ('{rated}', 'a', 'u', 'c', NULL, '{{}}', 'q', 'a', '[]', '[]', '[]',
                'normal', NULL, '{{}}', 1, NULL);
             INSERT INTO messages VALUES ('{unrated}', 'a', 'u', 'c', NULL, '{{}}', 'q', 'a', '[]', '[]', '[]',
                'normal', NULL, '{{}}', 2, NULL);
             INSERT INTO feedbacks VALUES ('f1', 'a', 'c', '{rated}', 'u', 'dislike', NULL, 'user', 1, 1);
             INSERT INTO feedbacks VALUES ('f2', 'a', 'c', '{unrated}', NULL, 'like', NULL, 'admin', 1, 1);
             INSERT INTO feedbacks VALUES ('f3', 'a', 'c', '{unrated}', 'someone-else', 'like', NULL, 'user', 1, 1);
             PRAGMA user_version = 4;"
        ))
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    store.on_reader(|conn| {
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let ratings: Vec<(String, Option<String>)> = conn
            .prepare("SELECT id, user_rating FROM messages ORDER BY created_at")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // Only the message's own end user's rating: not an operator's, not another user's.
        assert_eq!(ratings, [(rated.to_owned(), Some("dislike".to_owned())), (unrated.to_owned(), None)]);
    });
    drop(store);
    assert!(SqliteStore::open(&path).is_ok(), "and it opens again");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[test]
fn a_version_5_database_gets_key_roles_and_conversation_counters_recounted() {
    let path = std::env::temp_dir().join(format!("colloquy-v5-{}.db", Uuid::new_v4()));
    {
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE api_keys (key_hash TEXT PRIMARY KEY, app_id TEXT NOT NULL, created_at INTEGER NOT NULL);
             CREATE TABLE conversations (
                id TEXT PRIMARY KEY, app_id TEXT NOT NULL, end_user_id TEXT NOT NULL, name TEXT NOT NULL,
                inputs TEXT NOT NULL, status TEXT NOT NULL, introduction TEXT NOT NULL, created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL);
             CREATE TABLE messages (
                id TEXT PRIMARY KEY, app_id TEXT NOT NULL, end_user_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
                parent_message_id TEXT, inputs TEXT NOT NULL, query TEXT NOT NULL, answer TEXT NOT NULL,
                message_files TEXT NOT NULL, retriever_resources TEXT NOT NULL, agent_thoughts TEXT NOT NULL,
                status TEXT NOT NULL, error TEXT, metadata TEXT NOT NULL, created_at INTEGER NOT NULL, task_id TEXT,
                user_rating TEXT);
             CREATE TABLE feedbacks (
                id TEXT PRIMARY KEY, app_id TEXT NOT NULL, conversation_id TEXT NOT NULL, message_id TEXT NOT NULL,
                end_user_id TEXT, rating TEXT NOT NULL, content TEXT, from_source TEXT NOT NULL,
                created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
             INSERT INTO api_keys VALUES ('h', 'a', 1);
             INSERT INTO conversations VALUES ('c', 'a', 'u', 'n', '{}', 'normal', '', 1, 1);
             INSERT INTO conversations VALUES ('empty', 'a', 'u', 'n', '{}', 'normal', '', 1, 1);
             INSERT INTO messages VALUES ('m1', 'a', 'u', 'c', NULL, '{}', 'q', 'a', '[]', '[]', '[]', 'normal',
                NULL, '{\"usage\": {\"latency\": 1.5, \"total_tokens\": 7}}', 5, NULL, 'like');
             INSERT INTO messages VALUES ('m2', 'a', 'u', 'c', NULL, '{}', 'q', 'a', '[]', '[]', '[]', 'normal',
                NULL, '{}', 9, NULL, NULL);
             INSERT INTO feedbacks VALUES ('f1', 'a', 'c', 'm1', 'u', 'like', NULL, 'user', 1, 1);
             INSERT INTO feedbacks VALUES ('f2', 'a', 'c', 'm2', NULL, 'dislike', NULL, 'admin', 1, 1);
             PRAGMA user_version = 5;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    store.on_reader(|conn| {
        let role: (String, Option<String>) =
            conn.query_row("SELECT role, shown FROM api_keys", [], |row| Ok((row.get(0)?, row.get(1)?))).unwrap();
        assert_eq!(role, ("app".to_owned(), None), "keys from before are app keys");
        let counts: Vec<(String, i64, Option<i64>, i64, i64)> = conn
            .prepare(
                "SELECT id, message_count, last_message_at, like_count, dislike_count FROM conversations ORDER BY id",
            )
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(counts, [("c".to_owned(), 2, Some(9), 1, 1), ("empty".to_owned(), 0, None, 0, 0)]);
    });
    drop(store);
    // Version 7 fills the usage counters from what is stored, once (a second open adds nothing).
    let store = SqliteStore::open(&path).unwrap();
    store.on_reader(|conn| {
        let stats: Vec<(String, i64, [i64; 8])> = conn
            .prepare(&format!(
                "SELECT granularity, start, {} FROM stats ORDER BY granularity",
                Tally::FIELDS.join(", ")
            ))
            .unwrap()
            .query_map([], |row| {
                let mut values = [0; 8];
                for (i, value) in values.iter_mut().enumerate() {
                    *value = row.get(i + 2)?;
                }
                Ok((row.get(0)?, row.get(1)?, values))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let hour = Tally {
            messages: 2,
            conversations: 2,
            end_users: 1,
            likes: 1,
            answers: 1,
            latency_ms: 1500,
            tokens: 7,
            ..Tally::default()
        };
        assert_eq!(stats, [("D".to_owned(), 0, Tally::end_user().values()), ("H".to_owned(), 0, hour.values())]);
    });
    drop(store);
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
    store.on_writer(|conn| conn.execute_batch(sql)).unwrap();
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
            NULL, '{{}}', 1, NULL, NULL);",
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
        "INSERT INTO upload_files VALUES ('{id}', '{}', '{}', 'a.txt', 'large', 'txt', 'text/plain', 1, NULL);",
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

#[tokio::test]
async fn the_rating_kept_on_a_message_follows_the_stored_feedback_through_a_stale_removal() {
    use colloquy_core::domain::{Feedback, FeedbackId, FeedbackSource, Rating, Timestamp};

    let ids = Ids::new();
    let store = store_with(&message_row(&ids, "normal"));
    let message = store.message_in(ids.conversation, ids.message).await.unwrap().unwrap();
    let rated = |rating| Feedback {
        id: FeedbackId::from_uuid(Uuid::now_v7()),
        app_id: ids.app,
        conversation_id: ids.conversation,
        message_id: ids.message,
        rating,
        content: None,
        source: FeedbackSource::User,
        from_end_user_id: Some(ids.owner.end_user_id),
        created_at: Timestamp::from_micros(1),
        updated_at: Timestamp::from_micros(1),
    };
    let copy = || {
        store.on_reader(|conn| {
            conn.query_row("SELECT user_rating FROM messages", [], |row| row.get::<_, Option<String>>(0)).unwrap()
        })
    };
    let first = rated(Rating::Like);
    assert!(store.save_feedback(&first, None, &message).await.unwrap());
    assert_eq!(copy().as_deref(), Some("like"));
    // One request removes the rating it read; another rates again; a third, which read the
    // first rating before both, removes it too late: the new rating stays, on the message too.
    assert!(store.delete_feedback(&first, &message).await.unwrap());
    assert_eq!(copy(), None);
    assert!(store.save_feedback(&rated(Rating::Dislike), None, &message).await.unwrap());
    assert!(store.delete_feedback(&first, &message).await.unwrap());
    assert_eq!(copy().as_deref(), Some("dislike"));
    // An operator's rating is not the end user's.
    let operator = Feedback { source: FeedbackSource::Admin, from_end_user_id: None, ..rated(Rating::Like) };
    assert!(store.save_feedback(&operator, None, &message).await.unwrap());
    assert_eq!(copy().as_deref(), Some("dislike"));
}

/// What SQLite plans for `sql`: one line per step (`SEARCH ...`, `SCAN ...`, `USE TEMP B-TREE ...`).
fn plan(store: &SqliteStore, sql: &str) -> Vec<String> {
    store.on_writer(|conn| {
        let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // The plan does not depend on the values (the store keeps no statistics, and each
        // connection has the query planner stability guarantee); NULL stands for each.
        let nulls = vec![rusqlite::types::Null; explain.parameter_count()];
        let details =
            explain.query_map(rusqlite::params_from_iter(nulls), |row| row.get::<_, String>("detail")).unwrap();
        details.collect::<Result<_, _>>().unwrap()
    })
}

/// A list statement as the store runs it, and the one index search it must plan.
struct ListStatement {
    name: String,
    sql: String,
    index: &'static str,
    /// The search's constraints as SQLite prints them: the equality prefix, then on a next
    /// page the row-value range that seeks to the cursor.
    seek: String,
}

/// Every list page, first and next.
fn list_statements() -> Vec<ListStatement> {
    use colloquy_core::domain::{ConversationList, ConversationSort, SortField};

    let mut statements = Vec::new();
    for after in [false, true] {
        let page = if after { "next page" } else { "first page" };
        let seek = |prefix: &str, columns: &str, op: &str| match after {
            true => format!("{prefix} AND ({columns}){op}(?,?)"),
            false => prefix.to_owned(),
        };
        statements.push(ListStatement {
            name: format!("messages, {page}"),
            sql: super::messages::history_sql(after),
            index: "messages_by_conversation",
            seek: seek("conversation_id=?", "created_at,id", "<"),
        });
        statements.push(ListStatement {
            name: format!("messages with their ratings, {page}"),
            sql: super::messages::rated_history_sql(after),
            index: "messages_by_conversation",
            seek: seek("conversation_id=?", "created_at,id", "<"),
        });
        statements.push(ListStatement {
            name: format!("variables, {page}"),
            sql: super::variables::list_sql(after),
            index: "variables_by_conversation",
            seek: seek("conversation_id=?", "created_at,id", ">"),
        });
        for (field, column) in [(SortField::CreatedAt, "created_at"), (SortField::UpdatedAt, "updated_at")] {
            for descending in [true, false] {
                let order = if descending { "descending" } else { "ascending" };
                let op = if descending { "<" } else { ">" };
                let sort = ConversationSort { field, descending };
                for list in [ConversationList::Active, ConversationList::Archived] {
                    statements.push(ListStatement {
                        name: format!("{list:?} conversations by {column} {order}, {page}"),
                        sql: super::conversations::list_sql(sort, &list, after),
                        index: if field == SortField::CreatedAt {
                            "conversations_by_created"
                        } else {
                            "conversations_by_updated"
                        },
                        seek: seek("app_id=? AND end_user_id=? AND archived=?", &format!("{column},id"), op),
                    });
                }
                let pinned = ConversationList::Pinned { archived: false };
                statements.push(ListStatement {
                    name: format!("pinned conversations by {column} {order}, {page}"),
                    sql: super::conversations::list_sql(sort, &pinned, after),
                    index: if field == SortField::CreatedAt {
                        "conversation_lists_by_created"
                    } else {
                        "conversation_lists_by_updated"
                    },
                    seek: seek("app_id=? AND end_user_id=? AND list=?", &format!("{column},conversation_id"), op),
                });
            }
        }
    }
    // Paged by number rather than by cursor, but still read in index order.
    statements.push(ListStatement {
        name: "annotations".into(),
        sql: super::annotations::list_sql(),
        index: "annotations_by_app",
        seek: "app_id=?".into(),
    });
    statements.push(ListStatement {
        name: "a conversation's first message".into(),
        sql: super::messages::first_message_sql(),
        index: "messages_by_conversation",
        seek: "conversation_id=?".into(),
    });
    statements
}

/// Each list seeks its index to the page, at any depth: a plan that scans, or sorts the rows
/// itself (`USE TEMP B-TREE FOR ORDER BY`), reads every row before the cursor.
#[test]
fn every_list_page_seeks_its_index() {
    let store = SqliteStore::in_memory().unwrap();
    for ListStatement { name, sql, index, seek } in list_statements() {
        let plan = plan(&store, &sql);
        let steps = plan.join("; ");
        assert!(!steps.contains("SCAN") && !steps.contains("TEMP B-TREE"), "{name}: {steps}");
        let searches = [format!("USING INDEX {index} ({seek})"), format!("USING COVERING INDEX {index} ({seek})")];
        // A list of `conversation_lists` then finds each row's conversation by its key.
        let joined = plan.len() == 2 && plan[1] == "SEARCH c USING INDEX sqlite_autoindex_conversations_1 (id=?)";
        // A page of history reads each message's replies through `messages_by_parent` alone.
        let replies = plan.len() == 3
            && plan[1] == "CORRELATED SCALAR SUBQUERY 1"
            && plan[2]
                == "SEARCH r USING COVERING INDEX messages_by_parent (conversation_id=? AND parent_message_id=?)";
        assert!(
            (plan.len() == 1 || joined || replies)
                && plan[0].starts_with("SEARCH ")
                && searches.iter().any(|s| plan[0].ends_with(s)),
            "{name}: expected one search of {index} ({seek}), got {steps}"
        );
    }
}

/// Operators' list of every conversation of an app: one search of `conversations_by_app` to
/// the page (with every filter a statement carries), and the end user's row by its key.
#[test]
fn the_app_wide_list_seeks_the_apps_index_at_any_depth() {
    use colloquy_core::domain::{ConversationFilter, Cursor, EndUserId, Rating, TimeRange, Timestamp};

    let store = SqliteStore::in_memory().unwrap();
    let ids = Ids::new();
    let t = Timestamp::from_micros;
    let filters = [
        ConversationFilter::default(),
        ConversationFilter {
            end_users: Some(vec![ids.owner.end_user_id, EndUserId::from_uuid(Uuid::now_v7())]),
            created: TimeRange { from: Some(t(1)), until: Some(t(9)) },
            updated: TimeRange { from: Some(t(2)), until: None },
            rating: Some(Rating::Dislike),
            name: None,
        },
    ];
    for filter in filters {
        for after in [None, Some(Cursor { at: t(5), id: ids.conversation })] {
            let (sql, _) = super::conversations::app_list(ids.app, &filter, after, 21);
            let plan = plan(&store, &sql);
            let steps = plan.join("; ");
            assert!(!steps.contains("SCAN") && !steps.contains("TEMP B-TREE"), "{steps}");
            assert!(plan[0].starts_with("SEARCH c USING INDEX conversations_by_app (app_id=?"), "{steps}");
            assert_eq!(after.is_some(), plan[0].contains("(updated_at,id)<(?,?)"), "{steps}");
            assert!(
                plan[1].starts_with("SEARCH e USING INDEX sqlite_autoindex_end_users")
                    || plan[1].contains("PRIMARY KEY"),
                "{steps}"
            );
        }
    }
}

/// A database file: reads run on read-only connections, and see only what was committed,
/// without waiting for a write in progress.
#[tokio::test]
async fn reads_are_read_only_and_do_not_wait_for_writes() {
    use colloquy_core::ports::AppStore;

    let dir = std::env::temp_dir().join(format!("colloquy-readers-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(&dir.join("colloquy.db")).unwrap();
    let written = store.on_reader(|conn| conn.execute("DELETE FROM apps", []));
    assert!(written.is_err(), "a reading connection cannot write: {written:?}");

    let (committed, pending) = (AppId::from_uuid(Uuid::now_v7()), AppId::from_uuid(Uuid::now_v7()));
    let insert = |id: AppId| format!("INSERT INTO apps VALUES ('{id}', 'a', 'chat', '{{}}', 1);");
    store
        .on_writer(|conn| conn.execute_batch(&format!("{} BEGIN IMMEDIATE; {}", insert(committed), insert(pending))))
        .unwrap();
    // The writer holds its transaction open: a read still answers, at once, from the last commit.
    assert!(store.app(committed).await.unwrap().is_some());
    assert!(store.app(pending).await.unwrap().is_none(), "an uncommitted row is not read");
    store.on_writer(|conn| conn.execute_batch("COMMIT")).unwrap();
    assert!(store.app(pending).await.unwrap().is_some(), "and a committed one is, at once");
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_changed_app_is_read_at_once_though_its_configuration_is_remembered() {
    use colloquy_core::domain::{ApiKey, App, AppConfig, AppMode, KeyRole, Timestamp};
    use colloquy_core::ports::AppStore;

    let dir = std::env::temp_dir().join(format!("colloquy-configs-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (server, other_process) =
        (SqliteStore::open(&dir.join("colloquy.db")).unwrap(), SqliteStore::open(&dir.join("colloquy.db")).unwrap());
    let record = ApiKey::generate(KeyRole::App).record(KeyRole::App, Timestamp::from_micros(1));
    let key = record.hash.clone();
    let id = AppId::from_uuid(Uuid::now_v7());
    let mut app = App::new(id, "a", AppMode::Chat, AppConfig::default(), Timestamp::from_micros(1)).unwrap();
    server.create_app(&app, &record).await.unwrap();
    let app_of = |grant: Option<colloquy_core::domain::Grant>| grant.map(|g| g.app);
    for _ in 0..2 {
        assert_eq!(app_of(server.app_for_key(&key).await.unwrap()), Some(app.clone()), "decoded, then remembered");
    }
    app.config.opening_statement = Some("changed here".into());
    assert!(server.update_app(&app).await.unwrap());
    assert_eq!(app_of(server.app_for_key(&key).await.unwrap()), Some(app.clone()));
    app.config.opening_statement = Some("changed by another process".into());
    assert!(other_process.update_app(&app).await.unwrap());
    assert_eq!(app_of(server.app_for_key(&key).await.unwrap()), Some(app.clone()));
    assert!(other_process.revoke_key(&key).await.unwrap());
    assert_eq!(app_of(server.app_for_key(&key).await.unwrap()), None, "a revoked key finds nothing, at once");
    drop((server, other_process));
    let _ = std::fs::remove_dir_all(&dir);
}
