//! Conversations (table `conversations`); deleting one also deletes its messages, feedback
//! and variables.

use async_trait::async_trait;
use rusqlite::{Row, params, params_from_iter};

use colloquy_core::domain::{
    AppId, Conversation, ConversationFilter, ConversationId, ConversationList, ConversationSort, ConversationState,
    ConversationSummary, ConversationVariable, Cursor, Granularity, Message, Metadata, Owner, Rating, SortField, Tally,
    Timestamp, UserRef,
};
use colloquy_core::ports::{ConversationStore, StoreResult};

use super::codec::{Args, Conditions, Fields, arg, args, to_json};
use super::{SqliteStore, insert_sql, qualified, stats};

pub(super) const COLUMNS: &str = "id, app_id, end_user_id, name, inputs, status, introduction, created_at, updated_at, \
     expires_at, metadata, pinned, archived";

pub(super) fn conversation_from_row(row: &Row<'_>) -> rusqlite::Result<Conversation> {
    let f = Fields::of("conversations", row);
    Ok(Conversation {
        id: f.parse("id")?,
        owner: Owner { app_id: f.parse("app_id")?, end_user_id: f.parse("end_user_id")? },
        name: f.get("name")?,
        inputs: f.json("inputs")?,
        status: f.parse("status")?,
        introduction: f.get("introduction")?,
        created_at: f.time("created_at")?,
        updated_at: f.time("updated_at")?,
        // Nullable by design: a conversation of an app that keeps them.
        expires_at: f.time_opt("expires_at")?,
        state: ConversationState {
            metadata: f.parse_with("metadata", Metadata::parse_stored)?,
            pinned: f.get("pinned")?,
            archived: f.get("archived")?,
        },
    })
}

/// A conversation with whose it is and its counters (the columns of [`SUMMARY_SQL`]).
fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<ConversationSummary> {
    let f = Fields::of("conversations", row);
    Ok(ConversationSummary {
        conversation: conversation_from_row(row)?,
        // Nullable by design: a conversation whose end user row is missing.
        user: f.get("user")?,
        message_count: f.count("message_count")?,
        // Nullable by design: a conversation without messages.
        last_message_at: f.time_opt("last_message_at")?,
        like_count: f.count("like_count")?,
        dislike_count: f.count("dislike_count")?,
    })
}

/// Conversations of an app with their end user's `user` string and counters; `WHERE` follows.
static SUMMARY_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {}, c.message_count AS message_count, c.last_message_at AS last_message_at,
             c.like_count AS like_count, c.dislike_count AS dislike_count, e.session_id AS user
         FROM conversations c LEFT JOIN end_users e ON e.id = c.end_user_id",
        qualified("c", COLUMNS)
    )
});

/// The statement of one batch of an app's conversations, newest activity first, through
/// `conversations_by_app` (`?1` the app, `?2` how many rows; after a cursor `?3`, `?4`), with
/// every filter but the name's, which is checked on the rows (SQLite's `lower` knows ASCII only).
pub(super) fn app_list(
    app: AppId,
    filter: &ConversationFilter,
    after: Option<Cursor<ConversationId>>,
    fetch: usize,
) -> (String, Args) {
    let mut q = Conditions::new(format!("{} WHERE c.app_id = ?1", *SUMMARY_SQL), args![app, fetch as i64]);
    if let Some(cursor) = after {
        q.and(" AND (c.updated_at, c.id) < (?, ?)", args![cursor.at, cursor.id]);
    }
    q.within("c.created_at", filter.created);
    q.within("c.updated_at", filter.updated);
    if let Some(end_users) = &filter.end_users {
        q.one_of("c.end_user_id", end_users.iter().map(|id| arg(*id)).collect());
    }
    match filter.rating {
        Some(Rating::Like) => q.sql.push_str(" AND c.like_count > 0"),
        Some(Rating::Dislike) => q.sql.push_str(" AND c.dislike_count > 0"),
        None => {}
    }
    q.sql.push_str(" ORDER BY c.updated_at DESC, c.id DESC LIMIT ?2");
    (q.sql, q.values)
}

/// A page of one of an end user's lists in `sort` order: `?1` the app, `?2` the end user,
/// `?3` how many rows; for a list of `conversation_lists`, `?4` its key; after a cursor, the
/// next two its sort time and id. The cursor is a row-value comparison so that SQLite seeks
/// the list's index (`conversations_by_*`, which lead with `archived`, or
/// `conversation_lists_by_*`) straight to it, however deep; the first page has a statement of
/// its own rather than a `? IS NULL OR ...`, which no index serves.
pub(super) fn list_sql(sort: ConversationSort, list: &ConversationList, after_cursor: bool) -> String {
    let column = match sort.field {
        SortField::CreatedAt => "created_at",
        SortField::UpdatedAt => "updated_at",
    };
    let (direction, beyond) = if sort.descending { ("DESC", "<") } else { ("ASC", ">") };
    let archived = match list {
        ConversationList::Active => Some(0),
        ConversationList::Archived => Some(1),
        ConversationList::Pinned { .. } | ConversationList::Metadata { .. } => None,
    };
    match archived {
        Some(archived) => {
            let seek = if after_cursor { format!(" AND ({column}, id) {beyond} (?4, ?5)") } else { String::new() };
            format!(
                "SELECT {COLUMNS} FROM conversations WHERE app_id = ?1 AND end_user_id = ?2 AND archived = {archived}\
                 {seek} ORDER BY {column} {direction}, id {direction} LIMIT ?3"
            )
        }
        None => {
            let seek = if after_cursor {
                format!(" AND (l.{column}, l.conversation_id) {beyond} (?5, ?6)")
            } else {
                String::new()
            };
            format!(
                "SELECT {} FROM conversation_lists l JOIN conversations c ON c.id = l.conversation_id \
                 WHERE l.app_id = ?1 AND l.end_user_id = ?2 AND l.list = ?4{seek} \
                 ORDER BY l.{column} {direction}, l.conversation_id {direction} LIMIT ?3",
                qualified("c", COLUMNS)
            )
        }
    }
}

/// Puts a conversation in the lists of its state (and in no other): one row per list but the
/// archived one (its column's index serves it).
pub(super) fn write_lists(tx: &rusqlite::Transaction<'_>, c: &Conversation) -> rusqlite::Result<()> {
    let id = c.id.to_string();
    tx.prepare_cached("DELETE FROM conversation_lists WHERE conversation_id = ?1")?.execute([&id])?;
    for list in c.state.lists() {
        if list == ConversationList::Archived {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO conversation_lists (conversation_id, list, app_id, end_user_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            id,
            list.key(),
            c.owner.app_id.to_string(),
            c.owner.end_user_id.to_string(),
            c.created_at.micros(),
            c.updated_at.micros()
        ])?;
    }
    Ok(())
}

/// The values of a row, in the order of [`COLUMNS`].
pub(super) fn conversation_args(c: &Conversation) -> StoreResult<Args> {
    Ok(args![
        c.id,
        c.owner.app_id,
        c.owner.end_user_id,
        c.name.as_str(),
        to_json(&c.inputs)?,
        c.status.as_str(),
        c.introduction.as_str(),
        c.created_at,
        c.updated_at,
        c.expires_at,
        c.state.metadata.to_stored(),
        c.state.pinned,
        c.state.archived
    ])
}

#[async_trait]
impl ConversationStore for SqliteStore {
    /// The `user` string is the end user's row's (joined where it is listed).
    async fn insert_conversation(&self, c: &Conversation, _user: &UserRef) -> StoreResult<()> {
        let (values, app, at) = (conversation_args(c)?, c.owner.app_id, c.created_at);
        let c = c.clone();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached(&insert_sql("conversations", COLUMNS))?.execute(params_from_iter(values))?;
            write_lists(&tx, &c)?;
            stats::add_tally(&tx, app, Granularity::Hour, at, &Tally::conversation())?;
            tx.commit()
        })
        .await
    }

    /// One transaction: the conversation, its lists, its messages (its counters set from them)
    /// and its variables.
    async fn insert_fork(
        &self,
        c: &Conversation,
        _user: &UserRef,
        messages: &[Message],
        variables: &[ConversationVariable],
    ) -> StoreResult<()> {
        let values = conversation_args(c)?;
        let rows = messages.iter().map(super::messages::message_args).collect::<StoreResult<Vec<_>>>()?;
        let vars = variables.iter().map(super::variables::variable_args).collect::<StoreResult<Vec<_>>>()?;
        let (count, last) = (messages.len() as i64, messages.iter().map(|m| m.created_at.micros()).max());
        let c = c.clone();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached(&insert_sql("conversations", COLUMNS))?.execute(params_from_iter(values))?;
            write_lists(&tx, &c)?;
            for row in rows {
                tx.prepare_cached(&insert_sql("messages", super::messages::COLUMNS))?.execute(params_from_iter(row))?;
            }
            tx.prepare_cached("UPDATE conversations SET message_count = ?2, last_message_at = ?3 WHERE id = ?1")?
                .execute(params![c.id.to_string(), count, last])?;
            for row in vars {
                tx.prepare_cached(&insert_sql("conversation_variables", super::variables::COLUMNS))?
                    .execute(params_from_iter(row))?;
            }
            stats::add_tally(&tx, c.owner.app_id, Granularity::Hour, c.created_at, &Tally::conversation())?;
            tx.commit()
        })
        .await
    }

    async fn conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<Option<Conversation>> {
        let sql = format!("SELECT {COLUMNS} FROM conversations WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3");
        self.one(sql, args![id, owner.app_id, owner.end_user_id], conversation_from_row).await
    }

    async fn conversations(
        &self,
        owner: Owner,
        sort: ConversationSort,
        list: &ConversationList,
        after: Option<Cursor<ConversationId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Conversation>> {
        let mut values = args![owner.app_id, owner.end_user_id, fetch as i64];
        if matches!(list, ConversationList::Pinned { .. } | ConversationList::Metadata { .. }) {
            values.extend(args![list.key()]);
        }
        if let Some(cursor) = after {
            values.extend(args![cursor.at, cursor.id]);
        }
        self.page(list_sql(sort, list, after.is_some()), values, conversation_from_row).await
    }

    /// Reads batches through the app's index until `fetch` rows pass the filter (only the
    /// name filter can make a batch come back short of it) or the app has no more.
    async fn app_conversations(
        &self,
        app: AppId,
        filter: &ConversationFilter,
        after: Option<Cursor<ConversationId>>,
        fetch: usize,
    ) -> StoreResult<Vec<ConversationSummary>> {
        let batch = if filter.name.is_some() { fetch.max(50) * 4 } else { fetch };
        let mut kept = Vec::with_capacity(fetch);
        let mut cursor = after;
        loop {
            let (sql, values) = app_list(app, filter, cursor, batch);
            let rows = self.page(sql, values, summary_from_row).await?;
            let exhausted = rows.len() < batch;
            cursor = rows.last().map(|s| Cursor { at: s.conversation.updated_at, id: s.conversation.id });
            kept.extend(rows.into_iter().filter(|s| filter.matches(s)));
            if exhausted || kept.len() >= fetch {
                kept.truncate(fetch);
                return Ok(kept);
            }
        }
    }

    async fn app_conversation(&self, app: AppId, id: ConversationId) -> StoreResult<Option<ConversationSummary>> {
        let sql = format!("{} WHERE c.id = ?1 AND c.app_id = ?2", *SUMMARY_SQL);
        self.one(sql, args![id, app], summary_from_row).await
    }

    /// The conversation's row and its place in its lists (their rows' update time).
    async fn update_conversation(&self, c: &Conversation) -> StoreResult<bool> {
        let values = args![
            c.id,
            c.owner.app_id,
            c.owner.end_user_id,
            c.name.as_str(),
            to_json(&c.inputs)?,
            c.status.as_str(),
            c.updated_at,
            c.expires_at
        ];
        let (id, at) = (c.id.to_string(), c.updated_at.micros());
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let updated = tx
                .prepare_cached(
                    "UPDATE conversations SET name = ?4, inputs = ?5, status = ?6, updated_at = ?7, expires_at = ?8
                     WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3",
                )?
                .execute(params_from_iter(values))?;
            tx.prepare_cached("UPDATE conversation_lists SET updated_at = ?2 WHERE conversation_id = ?1")?
                .execute(params![id, at])?;
            tx.commit()?;
            Ok(updated == 1)
        })
        .await
    }

    /// Its metadata, pinned and archived, and the lists they put it in, in one transaction.
    async fn set_conversation_state(&self, c: &Conversation) -> StoreResult<bool> {
        let values = args![
            c.id,
            c.owner.app_id,
            c.owner.end_user_id,
            c.state.metadata.to_stored(),
            c.state.pinned,
            c.state.archived
        ];
        let c = c.clone();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let updated = tx
                .prepare_cached(
                    "UPDATE conversations SET metadata = ?4, pinned = ?5, archived = ?6
                     WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3",
                )?
                .execute(params_from_iter(values))?;
            if updated == 1 {
                // The lists take the stored times, which a concurrent message may have moved.
                let mut stored = c;
                (stored.created_at, stored.updated_at) = tx.query_row(
                    "SELECT created_at, updated_at FROM conversations WHERE id = ?1",
                    [stored.id.to_string()],
                    |row| Ok((Timestamp::from_micros(row.get(0)?), Timestamp::from_micros(row.get(1)?))),
                )?;
                write_lists(&tx, &stored)?;
            }
            tx.commit()?;
            Ok(updated == 1)
        })
        .await
    }

    async fn delete_conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<bool> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let id = id.to_string();
            let deleted = tx
                .prepare_cached("DELETE FROM conversations WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3")?
                .execute(params![id, owner.app_id.to_string(), owner.end_user_id.to_string()])?;
            if deleted == 1 {
                for table in ["messages", "feedbacks", "conversation_variables", "conversation_lists"] {
                    tx.prepare_cached(&format!("DELETE FROM {table} WHERE conversation_id = ?1"))?.execute([&id])?;
                }
            }
            tx.commit()?;
            Ok(deleted == 1)
        })
        .await
    }
}
