//! What the database holds of an app or of some of its end users, table by table
//! (`colloquy inspect`, and the tests' proof that nothing is left).

use async_trait::async_trait;
use rusqlite::{Connection, params_from_iter};

use colloquy_core::domain::{AppId, EndUserId, FileId};
use colloquy_core::ports::{Holdings, Inventory, StoreResult};

use super::SqliteStore;
use super::codec::{Args, arg};

/// The tables with an `app_id` column (and `apps` by its `id`).
const APP_TABLES: [&str; 18] = [
    "api_keys",
    "end_users",
    "conversations",
    "conversation_lists",
    "messages",
    "feedbacks",
    "conversation_variables",
    "annotations",
    "annotation_settings",
    "annotation_jobs",
    "tasks",
    "upload_files",
    "audit_log",
    "stats",
    "stats_active",
    "exports",
    "erasures",
    "apps",
];

fn count(conn: &Connection, sql: &str, values: Args) -> rusqlite::Result<u64> {
    conn.query_row(sql, params_from_iter(values), |row| row.get::<_, i64>(0)).map(|n| n.max(0) as u64)
}

fn files(conn: &Connection, sql: &str, values: Args) -> rusqlite::Result<Vec<FileId>> {
    let mut statement = conn.prepare(sql)?;
    let ids = statement.query_map(params_from_iter(values), |row| row.get::<_, String>(0))?;
    ids.map(|id| {
        id.and_then(|id| {
            id.parse()
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
        })
    })
    .collect()
}

fn app_holdings(conn: &Connection, app: AppId) -> rusqlite::Result<Holdings> {
    let mut holdings = Holdings::default();
    for table in APP_TABLES {
        let column = if table == "apps" { "id" } else { "app_id" };
        holdings.add(table, count(conn, &format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?1"), vec![arg(app)])?);
    }
    holdings.files = files(conn, "SELECT id FROM upload_files WHERE app_id = ?1", vec![arg(app)])?;
    Ok(holdings)
}

fn user_holdings(conn: &Connection, app: AppId, users: &[EndUserId]) -> rusqlite::Result<Holdings> {
    let mut holdings = Holdings::default();
    // ?1 is the app; the end users follow.
    let ids = (2..2 + users.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    let mut values: Args = vec![arg(app)];
    values.extend(users.iter().map(|u| arg(*u)));
    let theirs = format!("app_id = ?1 AND end_user_id IN ({ids})");
    let conversations = format!("SELECT id FROM conversations WHERE {theirs}");
    let queries = [
        ("end_users", format!("SELECT COUNT(*) FROM end_users WHERE app_id = ?1 AND id IN ({ids})")),
        ("conversations", format!("SELECT COUNT(*) FROM conversations WHERE {theirs}")),
        ("conversation_lists", format!("SELECT COUNT(*) FROM conversation_lists WHERE {theirs}")),
        ("messages", format!("SELECT COUNT(*) FROM messages WHERE {theirs}")),
        // Their own ratings anywhere, and every rating (operators' too) in their conversations.
        (
            "feedbacks",
            format!(
                "SELECT COUNT(*) FROM feedbacks WHERE app_id = ?1 AND (end_user_id IN ({ids}) OR conversation_id IN ({conversations}))"
            ),
        ),
        (
            "conversation_variables",
            format!(
                "SELECT COUNT(*) FROM conversation_variables WHERE app_id = ?1 AND conversation_id IN ({conversations})"
            ),
        ),
        ("tasks", format!("SELECT COUNT(*) FROM tasks WHERE {theirs}")),
        ("upload_files", format!("SELECT COUNT(*) FROM upload_files WHERE {theirs}")),
        ("stats_active", format!("SELECT COUNT(*) FROM stats_active WHERE {theirs}")),
        // Windows of the keys that name them (`…:<app>:<end user>`).
        (
            "rate_windows",
            format!(
                "SELECT COUNT(*) FROM rate_windows WHERE {}",
                (2..2 + users.len())
                    .map(|i| format!("key LIKE '%' || ?1 || ':' || ?{i}"))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            ),
        ),
    ];
    for (kind, sql) in queries {
        holdings.add(kind, count(conn, &sql, values.clone())?);
    }
    holdings.files = files(conn, &format!("SELECT id FROM upload_files WHERE {theirs}"), values)?;
    Ok(holdings)
}

#[async_trait]
impl Inventory for SqliteStore {
    async fn inventory(&self, app: AppId, end_users: Option<&[EndUserId]>) -> StoreResult<Holdings> {
        let users = end_users.map(<[EndUserId]>::to_vec);
        self.read(move |conn| match users {
            Some(users) if users.is_empty() => Ok(Holdings::default()),
            Some(users) => user_holdings(conn, app, &users),
            None => app_holdings(conn, app),
        })
        .await
    }
}
