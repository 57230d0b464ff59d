//! The embedded store: one SQLite file (or memory), implementing every storage port.
//!
//! SQLite calls block. A bounded read (one row by its key, or one page of at most a few hundred
//! rows found by an index seek) runs where it is called: on a memory-mapped WAL database it
//! takes microseconds and never waits for a lock, less than a hop to Tokio's blocking pool and
//! back would cost (two thread wake-ups). Everything else (writes, which may wait for the file
//! lock, and reads whose length depends on the data) runs on the blocking pool: one hop per
//! call, however many statements it runs. A database file is opened in WAL mode by one writing
//! connection and a few read-only ones ([`READERS`]), so reads run side by side and never
//! wait for a write (nor a write for them); an in-memory database has the one connection,
//! which reads and writes. This module owns the connections and the helpers that run
//! statements; [`schema`] owns the tables, [`codec`] the conversions between rows and domain
//! values, and one module per entity implements that entity's port.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params_from_iter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use colloquy_core::ports::{StoreError, StoreResult};

use codec::Args;

mod codec;
mod schema;

mod annotations;
mod apps;
mod audit;
mod conversations;
mod end_users;
mod erasures;
mod expiry;
mod exports;
mod feedback;
mod files;
mod idempotency;
mod inventory;
mod messages;
mod rate_limits;
mod stats;
mod tasks;
mod variables;

#[cfg(any(test, feature = "test-util"))]
mod test_util;
#[cfg(test)]
mod tests;

/// The SQLite-backed store.
#[derive(Clone)]
pub struct SqliteStore {
    /// The one connection that writes (and, for an in-memory database, also reads).
    writer: Arc<Pool>,
    /// Read-only connections to a database file; `None` in memory, where reads use the writer.
    readers: Option<Arc<Pool>>,
    /// The configurations of the apps behind recent requests, decoded (see [`apps::Configs`]).
    configs: Arc<apps::Configs>,
}

/// How many read-only connections a database file gets: enough for every request in flight
/// on a small machine to read at once (a read holds one for a few microseconds to a
/// millisecond); each keeps its own page and statement caches, so more would mostly cost memory.
pub const READERS: usize = 4;

/// How many prepared statements a connection keeps: every fixed statement of the store
/// (fewer than a hundred, counting each sort and page kind of the lists) with room to spare, so
/// none is compiled twice. Statements whose text varies with their input (an `IN` list of
/// any length) are prepared without the cache.
const STATEMENT_CACHE_CAPACITY: usize = 128;

/// Reads one result row.
type MapRow<T> = fn(&Row<'_>) -> rusqlite::Result<T>;

/// Every row `sql` gives, decoded by `map` (with the statement's column names at hand, read
/// once for all its rows: `codec::rows_of`).
fn rows<T>(conn: &Connection, sql: &str, args: Args, map: MapRow<T>) -> rusqlite::Result<Vec<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    codec::rows_of(&mut statement, |statement| statement.query_map(params_from_iter(args), map)?.collect())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let writer = Connection::open(path).map_err(unavailable)?;
        writer.pragma_update(None, "journal_mode", "WAL").map_err(unavailable)?;
        configure(&writer)?;
        schema::prepare(&writer)?;
        // Opened after the schema is in place, read-only: a read cannot write, whatever its SQL.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let readers = (0..READERS)
            .map(|_| {
                let reader = Connection::open_with_flags(path, flags).map_err(unavailable)?;
                configure(&reader)?;
                Ok(reader)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Self { writer: Pool::new(vec![writer]), readers: Some(Pool::new(readers)), configs: Arc::default() })
    }

    /// A private database that lives as long as this value (for tests and experiments).
    pub fn in_memory() -> StoreResult<Self> {
        let conn = Connection::open_in_memory().map_err(unavailable)?;
        configure(&conn)?;
        schema::prepare(&conn)?;
        Ok(Self { writer: Pool::new(vec![conn]), readers: None, configs: Arc::default() })
    }

    /// Runs `f` with the writing connection on the blocking pool (one write at a time).
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.writer.run(f).await
    }

    /// Runs `f`, which only reads, with a reading connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.reading().run(f).await
    }

    /// Runs `f`, a bounded read (see the module's documentation), with a reading connection
    /// here, on the caller's thread.
    async fn read_here<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        self.reading().run_here(f).await
    }

    /// The connections that read: the read-only ones, or the writer in memory.
    fn reading(&self) -> &Arc<Pool> {
        self.readers.as_ref().unwrap_or(&self.writer)
    }

    /// One row or none, found by a key (a bounded read).
    async fn one<T>(&self, sql: String, args: Args, map: MapRow<T>) -> StoreResult<Option<T>> {
        self.read_here(move |conn| conn.prepare_cached(&sql)?.query_row(params_from_iter(args), map).optional()).await
    }

    /// One page: at most the statement's `LIMIT` rows, reached by an index seek (a bounded read).
    async fn page<T>(&self, sql: String, args: Args, map: MapRow<T>) -> StoreResult<Vec<T>> {
        self.read_here(move |conn| rows(conn, &sql, args, map)).await
    }

    /// Every row, however many (on the blocking pool).
    async fn all<T: Send + 'static>(&self, sql: String, args: Args, map: MapRow<T>) -> StoreResult<Vec<T>> {
        self.read(move |conn| rows(conn, &sql, args, map)).await
    }

    /// Runs one statement and returns how many rows it changed.
    async fn execute(&self, sql: String, args: Args) -> StoreResult<usize> {
        self.write(move |conn| conn.prepare_cached(&sql)?.execute(params_from_iter(args))).await
    }
}

#[cfg(test)]
impl SqliteStore {
    /// Runs `f` on the writing connection, here and now (tests only).
    fn on_writer<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        f(self.writer.lock().first().expect("the writer is idle"))
    }

    /// Runs `f` on a reading connection (the writer in memory), here and now (tests only).
    fn on_reader<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        f(self.readers.as_ref().unwrap_or(&self.writer).lock().first().expect("a reader is idle"))
    }
}

/// The settings every connection gets.
fn configure(conn: &Connection) -> StoreResult<()> {
    conn.busy_timeout(Duration::from_secs(5)).map_err(unavailable)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    // The query planner stability guarantee: a plan never depends on the values bound. Without
    // it, a statement with `LIMIT ?` is compiled again every time it runs (the planner looks
    // at the bound limit, so binding one marks the statement stale), which undoes the cache.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(unavailable)?;
    // The database file is read through a memory map shared by every connection: a reader
    // whose page cache a write made stale reads the pages again from the map, not with a
    // system call each.
    conn.pragma_update(None, "mmap_size", MMAP_BYTES).map_err(unavailable)?;
    Ok(())
}

/// How much of the database file connections map (address space, not memory).
const MMAP_BYTES: i64 = 1 << 30;

/// Connections lent out one call at a time. A caller waits (asynchronously, in turn) for a
/// free connection before it takes a thread of the blocking pool, so no thread sits blocked
/// on a busy connection.
struct Pool {
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection: holding one guarantees an idle connection to take.
    permits: Arc<Semaphore>,
}

impl Pool {
    fn new(connections: Vec<Connection>) -> Arc<Self> {
        let permits = Arc::new(Semaphore::new(connections.len()));
        Arc::new(Self { idle: Mutex::new(connections), permits })
    }

    /// Runs `f` with one of the connections on the blocking pool.
    async fn run<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let mut lease = self.lease().await?;
        let joined = tokio::task::spawn_blocking(move || lease.with(f)).await;
        joined.map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    /// Runs `f` with one of the connections on the caller's thread.
    async fn run_here<T>(self: &Arc<Self>, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        self.lease().await?.with(f)
    }

    /// An idle connection, waited for in turn.
    async fn lease(self: &Arc<Self>) -> StoreResult<Lease> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        let conn = self.lock().pop().ok_or_else(|| StoreError::Unavailable("no idle connection".into()))?;
        Ok(Lease { conn: Some(conn), pool: Arc::clone(self), _permit: permit })
    }

    /// The idle connections (a panic elsewhere while holding the list leaves it usable).
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A connection lent to one call: back to the pool when dropped (after the call, or as a
/// failed call unwinds), and only then is its permit released.
struct Lease {
    conn: Option<Connection>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    fn with<T>(&mut self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        match self.conn.as_mut() {
            Some(conn) => f(conn).map_err(classify),
            None => Err(StoreError::Unavailable("no connection".into())),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.lock().push(conn);
        }
    }
}

/// `?1, ..., ?n`: one numbered placeholder for each of the comma-separated `columns`.
fn placeholders(columns: &str) -> String {
    let numbered: Vec<String> = (1..=columns.split(',').count()).map(|i| format!("?{i}")).collect();
    numbered.join(", ")
}

/// `t.a AS a, t.b AS b, ...`: the comma-separated `columns` of the table aliased `t` in a
/// join, under their own names (which is how rows are decoded).
fn qualified(alias: &str, columns: &str) -> String {
    let named: Vec<String> = columns.split(", ").map(|c| format!("{alias}.{c} AS {c}")).collect();
    named.join(", ")
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
