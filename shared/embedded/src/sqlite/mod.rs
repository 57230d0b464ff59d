//! The embedded store: one SQLite file (or memory), implementing every storage port.
//!
//! SQLite calls block, so each one runs on Tokio's blocking pool behind one connection. This
//! module owns the connection and the helpers that run statements; [`schema`] owns the tables,
//! [`codec`] the conversions between rows and domain values, and one module per entity
//! implements that entity's port.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};

use colloquy_core::ports::{StoreError, StoreResult};

use codec::Args;

mod codec;
mod schema;

mod annotations;
mod apps;
mod conversations;
mod end_users;
mod feedback;
mod files;
mod messages;
mod rate_limits;
mod tasks;
mod variables;

#[cfg(any(test, feature = "test-util"))]
mod test_util;
#[cfg(test)]
mod tests;

/// The SQLite-backed store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

/// How many prepared statements the connection keeps: every fixed statement of the store
/// (fewer than a hundred, counting each sort and page kind of the lists) with room to spare, so
/// none is compiled twice. Statements whose text varies with their input (an `IN` list of
/// any length) are prepared without the cache.
const STATEMENT_CACHE_CAPACITY: usize = 128;

/// Reads one result row.
type MapRow<T> = fn(&Row<'_>) -> rusqlite::Result<T>;

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
        conn.busy_timeout(Duration::from_secs(5)).map_err(unavailable)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        schema::prepare(&conn)?;
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
        self.with(move |conn| conn.prepare_cached(&sql)?.query_row(params_from_iter(args), map).optional()).await
    }

    /// Every row.
    async fn all<T: Send + 'static>(&self, sql: String, args: Args, map: MapRow<T>) -> StoreResult<Vec<T>> {
        self.with(move |conn| conn.prepare_cached(&sql)?.query_map(params_from_iter(args), map)?.collect()).await
    }

    /// Runs one statement and returns how many rows it changed.
    async fn execute(&self, sql: String, args: Args) -> StoreResult<usize> {
        self.with(move |conn| conn.prepare_cached(&sql)?.execute(params_from_iter(args))).await
    }
}

/// `?1, ..., ?n`: one numbered placeholder for each of the comma-separated `columns`.
fn placeholders(columns: &str) -> String {
    let numbered: Vec<String> = (1..=columns.split(',').count()).map(|i| format!("?{i}")).collect();
    numbered.join(", ")
}

/// `INSERT INTO table (columns) VALUES (?1, ..., ?n)`.
fn insert_sql(table: &str, columns: &str) -> String {
    format!("INSERT INTO {table} ({columns}) VALUES ({})", placeholders(columns))
}

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// A failed statement in the store's terms: a busy, locked, full or failing disk is worth
/// retrying (503); anything else is a fault that retrying will not fix (500). A value that
/// does not decode comes from [`codec::Fields`], whose error names the table and column.
fn classify(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, DiskFull, OutOfMemory, SystemIoFailure};
    match error {
        rusqlite::Error::FromSqlConversionFailure(_, _, source) => StoreError::Corrupt(source.to_string()),
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
