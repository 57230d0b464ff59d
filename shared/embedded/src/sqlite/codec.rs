//! Conversions between domain values and SQLite values.
//!
//! Going in, [`args!`] turns ids, text, numbers, timestamps and options of them into owned
//! statement arguments, and [`to_json`] encodes the columns that hold JSON. Coming out,
//! [`Fields`] reads a row by column name; a value that is missing, of the wrong SQL type or
//! does not decode is an error naming its table and column, never a default.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, Type, Value as SqlValue, ValueRef};
use rusqlite::{Row, Statement};
use serde::Serialize;
use serde::de::DeserializeOwned;

use colloquy_core::domain::{
    AnnotationId, AppId, AuditId, ConversationId, EndUserId, ErasureId, ExportId, FeedbackId, FileId, Invalid, JobId,
    MessageId, TaskId, TimeRange, Timestamp, VariableId,
};
use colloquy_core::ports::{StoreError, StoreResult};

/// Owned statement arguments, so a statement can move to the blocking pool.
pub(super) type Args = Vec<SqlValue>;

/// Builds [`Args`] from ids (as canonical strings), strings, integers, reals, timestamps and
/// options of them (`None` is `NULL`).
macro_rules! args {
    ($($arg:expr),* $(,)?) => { vec![$($crate::sqlite::codec::arg($arg)),*] };
}

pub(super) use args;

/// A statement whose optional conditions bind their values as the next numbered parameters.
pub(super) struct Conditions {
    pub sql: String,
    pub values: Args,
}

impl Conditions {
    /// `sql` so far, with `values` bound to `?1`, `?2`, ...
    pub(super) fn new(sql: String, values: Args) -> Self {
        Self { sql, values }
    }

    /// Appends `condition` (SQL text with one `?` per value), binding `values` in order.
    pub(super) fn and(&mut self, condition: &str, values: Args) {
        let mut parts = condition.split('?');
        self.sql.push_str(parts.next().unwrap_or_default());
        for (part, value) in parts.zip(values) {
            self.values.push(value);
            self.sql.push_str(&format!("?{}{part}", self.values.len()));
        }
    }

    /// ` AND column >= ?` and ` AND column < ?` for a time range's given ends.
    pub(super) fn within(&mut self, column: &str, range: TimeRange) {
        if let Some(from) = range.from {
            self.and(&format!(" AND {column} >= ?"), vec![arg(from)]);
        }
        if let Some(until) = range.until {
            self.and(&format!(" AND {column} < ?"), vec![arg(until)]);
        }
    }

    /// ` AND column IN (...)` (an empty list matches nothing).
    pub(super) fn one_of(&mut self, column: &str, values: Args) {
        if values.is_empty() {
            self.sql.push_str(&format!(" AND {column} IN (NULL)"));
            return;
        }
        let marks = vec!["?"; values.len()].join(", ");
        self.and(&format!(" AND {column} IN ({marks})"), values);
    }
}

/// Converts one statement argument.
pub(super) fn arg(value: impl IntoArg) -> SqlValue {
    value.into_arg()
}

/// A value that can be bound to a statement.
pub(super) trait IntoArg {
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

/// A flag, as SQLite keeps booleans: 0 or 1.
impl IntoArg for bool {
    fn into_arg(self) -> SqlValue {
        SqlValue::Integer(i64::from(self))
    }
}

impl IntoArg for f64 {
    fn into_arg(self) -> SqlValue {
        SqlValue::Real(self)
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

id_args!(
    AppId,
    EndUserId,
    ConversationId,
    MessageId,
    FeedbackId,
    VariableId,
    AnnotationId,
    JobId,
    TaskId,
    FileId,
    AuditId,
    ExportId,
    ErasureId
);

/// The JSON text stored for `value`.
pub(super) fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Failed(format!("a value does not encode as JSON: {e}")))
}

/// A stored value that does not decode into its domain type.
#[derive(Debug)]
pub(super) struct CorruptColumn {
    table: &'static str,
    column: String,
    problem: String,
}

impl fmt::Display for CorruptColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}.{}: {}", self.table, self.column, self.problem)
    }
}

impl std::error::Error for CorruptColumn {}

/// `text` decoded as JSON. The empty array and object that most rows hold (a message's files,
/// sources, agent thoughts and inputs) are built without running the JSON parser; what they
/// decode into, and which types refuse them, is the same.
fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    use serde_json::{Map, Value};
    let decoded = match text {
        // Neither allocates; serde_json decodes them exactly as it decodes parsed text.
        "[]" => T::deserialize(Value::Array(Vec::new())),
        "{}" => T::deserialize(Value::Object(Map::new())),
        _ => serde_json::from_str(text),
    };
    decoded.map_err(|e| e.to_string())
}

/// The text a column holds, or what it holds instead.
fn text_of(value: ValueRef<'_>) -> Result<&str, String> {
    match value {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).map_err(|e| e.to_string()),
        ValueRef::Null => Err("is NULL".to_owned()),
        other => Err(format!("holds a {} value", other.data_type())),
    }
}

thread_local! {
    /// The column names of the statement whose rows this thread is decoding, while
    /// [`rows_of`] runs: each column a [`Fields`] reads is then checked against a name already
    /// in memory instead of one fetched from SQLite (a C string measured and checked as UTF-8
    /// again for every column of every row). Empty at any other time.
    static NAMES: RefCell<Vec<Box<str>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `read`, which decodes rows of `statement` and of no other statement (it runs no
/// query of its own), with the statement's column names at hand for [`Fields`].
pub(super) fn rows_of<'c, T>(statement: &mut Statement<'c>, read: impl FnOnce(&mut Statement<'c>) -> T) -> T {
    /// Forgets the names however `read` ends, unwinding included.
    struct Forget;
    impl Drop for Forget {
        fn drop(&mut self) {
            NAMES.with_borrow_mut(Vec::clear);
        }
    }
    NAMES.with_borrow_mut(|names| {
        names.clear();
        names.extend(statement.column_names().into_iter().map(Box::from));
    });
    let _forget = Forget;
    read(statement)
}

/// One result row of `table`, read by column name.
///
/// Every read is strict: a nullable column is read as an `Option` (a `NULL` there is a value
/// of the domain, such as a message without a parent), and everything else must be present
/// and decode, or the read fails with a [`CorruptColumn`].
pub(super) struct Fields<'r, 's> {
    row: &'r Row<'s>,
    table: &'static str,
    /// Where the next column is looked for first: a row is usually read in the order its
    /// statement selects the columns, so each is found at once rather than by a search of
    /// every name.
    next: Cell<usize>,
}

impl<'r, 's> Fields<'r, 's> {
    pub(super) fn of(table: &'static str, row: &'r Row<'s>) -> Self {
        Self { row, table, next: Cell::new(0) }
    }

    /// The position of `column` in the row.
    fn index(&self, column: &str) -> rusqlite::Result<usize> {
        let statement = self.row.as_ref();
        let guess = self.next.get();
        // Inside `rows_of` the names are at hand; otherwise SQLite gives them (`column_name`
        // is an error past the last column, so no separate bounds check).
        let found =
            NAMES.with_borrow(|names| (!names.is_empty()).then(|| names.get(guess).is_some_and(|n| **n == *column)));
        let at_guess = match found {
            Some(at_guess) => at_guess,
            None => statement.column_name(guess).is_ok_and(|n| n == column),
        };
        let index = if at_guess { guess } else { statement.column_index(column)? };
        self.next.set(index + 1);
        Ok(index)
    }

    /// The value of `column` as SQLite gives it: text, an integer, a real, or an `Option` of
    /// one for a nullable column.
    pub(super) fn get<T: FromSql>(&self, column: &str) -> rusqlite::Result<T> {
        self.decode(column, Ok)
    }

    /// A text column parsed by the domain type's own rules (ids, statuses).
    pub(super) fn parse<T: FromStr<Err = Invalid>>(&self, column: &str) -> rusqlite::Result<T> {
        self.parse_with(column, str::parse)
    }

    /// A nullable text column parsed like [`Fields::parse`].
    pub(super) fn parse_opt<T: FromStr<Err = Invalid>>(&self, column: &str) -> rusqlite::Result<Option<T>> {
        self.parse_opt_with(column, str::parse)
    }

    /// A text column parsed by `parse` (read in place, not copied first).
    pub(super) fn parse_with<T>(
        &self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> rusqlite::Result<T> {
        self.decode_text(column, |text| parse(text).map_err(|e| e.0))
    }

    /// A nullable text column parsed by `parse`.
    pub(super) fn parse_opt_with<T>(
        &self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> rusqlite::Result<Option<T>> {
        self.decode_opt_text(column, |text| parse(text).map_err(|e| e.0))
    }

    /// A column holding JSON (decoded in place, not copied first).
    pub(super) fn json<T: DeserializeOwned>(&self, column: &str) -> rusqlite::Result<T> {
        self.decode_text(column, from_json)
    }

    /// A nullable column holding JSON.
    pub(super) fn json_opt<T: DeserializeOwned>(&self, column: &str) -> rusqlite::Result<Option<T>> {
        self.decode_opt_text(column, from_json)
    }

    /// A timestamp (microseconds since the epoch).
    pub(super) fn time(&self, column: &str) -> rusqlite::Result<Timestamp> {
        self.get(column).map(Timestamp::from_micros)
    }

    /// A timestamp that may be NULL (the caller says why it may).
    pub(super) fn time_opt(&self, column: &str) -> rusqlite::Result<Option<Timestamp>> {
        self.get::<Option<i64>>(column).map(|micros| micros.map(Timestamp::from_micros))
    }

    /// A count or a size: an integer that is never negative.
    pub(super) fn count(&self, column: &str) -> rusqlite::Result<u64> {
        self.decode(column, |n: i64| u64::try_from(n).map_err(|_| format!("{n} is negative")))
    }

    /// Reads `column` as `T` and converts it with `convert`, whose error says what is wrong.
    /// A column the statement does not select is a bug, reported as it is.
    fn decode<T: FromSql, U>(&self, column: &str, convert: impl FnOnce(T) -> Result<U, String>) -> rusqlite::Result<U> {
        let index = self.index(column)?;
        let kind = self.row.get_ref(index)?.data_type();
        let raw = self.row.get(index).map_err(|error| {
            let problem = match error {
                rusqlite::Error::InvalidColumnType(..) if kind == Type::Null => "is NULL".to_owned(),
                rusqlite::Error::InvalidColumnType(..) => format!("holds a {kind} value"),
                rusqlite::Error::IntegralValueOutOfRange(_, n) => format!("{n} is out of range"),
                rusqlite::Error::FromSqlConversionFailure(_, _, source) => source.to_string(),
                other => return other,
            };
            self.corrupt(index, kind, column, problem)
        })?;
        convert(raw).map_err(|problem| self.corrupt(index, kind, column, problem))
    }

    /// Reads `column`, which must hold text, and converts the text where it lies.
    pub(super) fn decode_text<U>(
        &self,
        column: &str,
        convert: impl FnOnce(&str) -> Result<U, String>,
    ) -> rusqlite::Result<U> {
        self.decode_ref(column, |value| convert(text_of(value)?))
    }

    /// [`Fields::decode_text`] for a nullable column.
    fn decode_opt_text<U>(
        &self,
        column: &str,
        convert: impl FnOnce(&str) -> Result<U, String>,
    ) -> rusqlite::Result<Option<U>> {
        self.decode_ref(column, |value| match value {
            ValueRef::Null => Ok(None),
            value => convert(text_of(value)?).map(Some),
        })
    }

    /// Reads `column` as SQLite holds it, borrowed from the row, and converts it with `convert`.
    fn decode_ref<U>(
        &self,
        column: &str,
        convert: impl FnOnce(ValueRef<'_>) -> Result<U, String>,
    ) -> rusqlite::Result<U> {
        let index = self.index(column)?;
        let value = self.row.get_ref(index)?;
        convert(value).map_err(|problem| self.corrupt(index, value.data_type(), column, problem))
    }

    fn corrupt(&self, index: usize, kind: Type, column: &str, problem: impl Into<String>) -> rusqlite::Error {
        let source = CorruptColumn { table: self.table, column: column.to_owned(), problem: problem.into() };
        rusqlite::Error::FromSqlConversionFailure(index, kind, Box::new(source))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::{Fields, NAMES, from_json, rows_of};

    #[test]
    fn empty_collections_decode_as_the_parser_would() {
        assert_eq!(from_json::<Vec<Value>>("[]").unwrap(), Vec::<Value>::new());
        assert_eq!(from_json::<Map<String, Value>>("{}").unwrap(), Map::new());
        assert_eq!(from_json::<Value>("[]").unwrap(), json!([]));
        assert_eq!(from_json::<Value>("{}").unwrap(), json!({}));
        assert!(from_json::<Vec<Value>>("{}").is_err(), "an object is not a list");
        assert!(from_json::<Map<String, Value>>("[]").is_err(), "nor a list an object");
        assert_eq!(from_json::<Vec<Value>>("[1]").unwrap(), vec![json!(1)]);
        assert!(from_json::<Vec<Value>>("[").is_err());
    }

    #[test]
    fn rows_read_with_their_statements_names_at_hand_decode_as_without_them() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a TEXT, b INTEGER); INSERT INTO t VALUES ('x', 1), ('y', 2);").unwrap();
        // In select order, out of order, and a column the statement does not have.
        let read = |row: &rusqlite::Row<'_>| {
            let f = Fields::of("t", row);
            let b: i64 = f.get("b")?;
            let a: String = f.get("a")?;
            Ok((a, b))
        };
        let mut statement = conn.prepare("SELECT a, b FROM t ORDER BY a").unwrap();
        let without: Vec<(String, i64)> = statement.query_map([], read).unwrap().collect::<Result<_, _>>().unwrap();
        let with: Vec<(String, i64)> = rows_of(&mut statement, |s| {
            assert_eq!(NAMES.with_borrow(|n| n.len()), 2, "the names are at hand while the rows are read");
            s.query_map([], read).unwrap().collect::<Result<_, _>>().unwrap()
        });
        assert_eq!(with, without);
        assert_eq!(with, [("x".to_owned(), 1), ("y".to_owned(), 2)]);
        let missing = rows_of(&mut statement, |s| {
            s.query_map([], |row| Fields::of("t", row).get::<String>("c")).unwrap().collect::<Result<Vec<_>, _>>()
        });
        assert!(missing.is_err(), "a column the statement lacks is an error, as without the names");
        assert!(NAMES.with_borrow(Vec::is_empty), "forgotten afterwards, whatever the outcome");
    }
}
