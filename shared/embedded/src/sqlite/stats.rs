//! An app's usage counters (table `stats`: one row per app, granularity and bucket start), kept
//! by the writes in their own transactions, and who was active in a recent bucket (table
//! `stats_active`, pruned to the last two days: only the current hour and day still gain users).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};

use colloquy_core::domain::{AppId, DAY_SECONDS, EndUserId, Granularity, Message, MessageId, Tally, Timestamp};
use colloquy_core::ports::{StatsStore, StoreResult};

use super::SqliteStore;
use super::codec::{Args, Fields, arg, args};
use super::feedback::rating;

/// Adds `tally` to the counters of `app`'s bucket of `granularity` that `at` falls in.
pub(super) fn add_tally(
    conn: &Connection,
    app: AppId,
    granularity: Granularity,
    at: Timestamp,
    tally: &Tally,
) -> rusqlite::Result<()> {
    if tally.is_empty() {
        return Ok(());
    }
    static UPSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let columns = Tally::FIELDS.join(", ");
        let values: Vec<String> = (4..4 + Tally::FIELDS.len()).map(|i| format!("?{i}")).collect();
        let sums: Vec<String> = Tally::FIELDS.iter().map(|f| format!("{f} = {f} + excluded.{f}")).collect();
        format!(
            "INSERT INTO stats (app_id, granularity, start, {columns}) VALUES (?1, ?2, ?3, {}) \
             ON CONFLICT (app_id, granularity, start) DO UPDATE SET {}",
            values.join(", "),
            sums.join(", ")
        )
    });
    let mut values: Args = args![app, granularity.tag(), granularity.bucket_of(at)];
    values.extend(tally.values().map(arg));
    conn.prepare_cached(&UPSERT)?.execute(params_from_iter(values))?;
    Ok(())
}

/// Counts a new message of `message`'s end user: the message, and the end user as active in
/// its hour and its day unless counted there already.
pub(super) fn count_message(conn: &Connection, m: &Message) -> rusqlite::Result<()> {
    let app = m.owner.app_id;
    let mut hour = Tally::message();
    if mark_active(conn, app, Granularity::Hour, m.created_at, m.owner.end_user_id)? {
        hour.end_users = 1;
    }
    add_tally(conn, app, Granularity::Hour, m.created_at, &hour)?;
    if mark_active(conn, app, Granularity::Day, m.created_at, m.owner.end_user_id)? {
        add_tally(conn, app, Granularity::Day, m.created_at, &Tally::end_user())?;
    }
    Ok(())
}

/// Records that `end_user` was active in the bucket `at` falls in; true when that is new (and
/// then forgets the app's markers of buckets that can no longer gain messages).
fn mark_active(
    conn: &Connection,
    app: AppId,
    granularity: Granularity,
    at: Timestamp,
    end_user: EndUserId,
) -> rusqlite::Result<bool> {
    let start = granularity.bucket_of(at);
    let new = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO stats_active (app_id, granularity, start, end_user_id) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params_from_iter(args![app, granularity.tag(), start, end_user]))?
        == 1;
    if new {
        conn.prepare_cached("DELETE FROM stats_active WHERE app_id = ?1 AND granularity = ?2 AND start < ?3")?
            .execute(params_from_iter(args![app, granularity.tag(), start - 2 * DAY_SECONDS]))?;
    }
    Ok(new)
}

/// The end user's rating kept on a message and the message's creation time, for counting a
/// change of that rating (`None` when the message is gone).
pub(super) fn rating_of(conn: &Connection, message: MessageId) -> rusqlite::Result<Option<(Option<String>, i64)>> {
    conn.prepare_cached("SELECT user_rating, created_at FROM messages WHERE id = ?1")?
        .query_row(params_from_iter(args![message]), |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
}

/// Counts the change of a message's end-user rating from `before` (as [`rating_of`] read it
/// before the write) to what is stored now.
pub(super) fn count_rating_change(
    conn: &Connection,
    app: AppId,
    message: MessageId,
    before: Option<(Option<String>, i64)>,
) -> rusqlite::Result<()> {
    let (Some((before, created_at)), Some((after, _))) = (before, rating_of(conn, message)?) else {
        return Ok(());
    };
    let parse = |raw: Option<String>| raw.as_deref().map(rating).transpose();
    let to_sql = |e: colloquy_core::domain::Invalid| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    };
    let change = Tally::rating(parse(before).map_err(to_sql)?, parse(after).map_err(to_sql)?);
    add_tally(conn, app, Granularity::Hour, Timestamp::from_micros(created_at), &change)
}

/// Fills the counters from what a database of schema version 6 or older holds (its markers of
/// activity from its messages), in the transaction that raises its version.
pub(super) const BACKFILL: &str = "
INSERT OR IGNORE INTO stats_active (app_id, granularity, start, end_user_id)
    SELECT DISTINCT app_id, 'H', created_at / 3600000000 * 3600, end_user_id FROM messages;
INSERT OR IGNORE INTO stats_active (app_id, granularity, start, end_user_id)
    SELECT DISTINCT app_id, 'D', created_at / 86400000000 * 86400, end_user_id FROM messages;
INSERT INTO stats (app_id, granularity, start, end_users)
    SELECT app_id, granularity, start, COUNT(*) FROM stats_active WHERE true GROUP BY app_id, granularity, start
    ON CONFLICT (app_id, granularity, start) DO UPDATE SET end_users = end_users + excluded.end_users;
INSERT INTO stats (app_id, granularity, start, conversations)
    SELECT app_id, 'H', created_at / 3600000000 * 3600, COUNT(*) FROM conversations WHERE true GROUP BY 1, 3
    ON CONFLICT (app_id, granularity, start) DO UPDATE SET conversations = conversations + excluded.conversations;
INSERT INTO stats (app_id, granularity, start, messages, likes, dislikes, answers, latency_ms, tokens)
    SELECT app_id, 'H', created_at / 3600000000 * 3600, COUNT(*),
        coalesce(SUM(user_rating = 'like'), 0), coalesce(SUM(user_rating = 'dislike'), 0),
        coalesce(SUM(answered), 0), coalesce(SUM(CASE WHEN answered THEN latency_ms END), 0),
        coalesce(SUM(CASE WHEN answered THEN tokens END), 0)
    FROM (SELECT app_id, created_at, user_rating,
            task_id IS NULL AND json_extract(metadata, '$.usage.latency') IS NOT NULL AS answered,
            CAST(round(json_extract(metadata, '$.usage.latency') * 1000) AS INTEGER) AS latency_ms,
            coalesce(json_extract(metadata, '$.usage.total_tokens'), 0) AS tokens
          FROM messages WHERE json_valid(metadata))
    WHERE true GROUP BY 1, 3
    ON CONFLICT (app_id, granularity, start) DO UPDATE SET messages = messages + excluded.messages,
        likes = likes + excluded.likes, dislikes = dislikes + excluded.dislikes,
        answers = answers + excluded.answers, latency_ms = latency_ms + excluded.latency_ms,
        tokens = tokens + excluded.tokens;
DELETE FROM stats_active WHERE start < (SELECT max(start) FROM stats_active) - 2 * 86400;
";

fn tally_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Tally)> {
    let f = Fields::of("stats", row);
    Ok((f.get("start")?, Tally::read(|field| f.get(field))?))
}

#[async_trait]
impl StatsStore for SqliteStore {
    async fn tallies(
        &self,
        app: AppId,
        granularity: Granularity,
        from: i64,
        until: i64,
    ) -> StoreResult<Vec<(i64, Tally)>> {
        let sql = format!(
            "SELECT start, {} FROM stats WHERE app_id = ?1 AND granularity = ?2 AND start >= ?3 AND start < ?4 \
             ORDER BY start",
            Tally::FIELDS.join(", ")
        );
        self.all(sql, args![app, granularity.tag(), from, until], tally_from_row).await
    }
}
