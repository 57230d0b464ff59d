//! Messages (table `messages`); storing one whose generation is running also registers its
//! task (table `tasks`).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params_from_iter};

use colloquy_core::domain::{
    ABANDONED_ERROR, AppId, Conversation, ConversationId, Cursor, Granularity, Message, MessageId, OpaqueJson, Owner,
    RatedMessage, Tally, Timestamp,
};
use colloquy_core::ports::{MessageStore, StoreResult};

use super::codec::{Args, Fields, args, to_json};
use super::feedback::rating;
use super::schema::COUNT_RATINGS;
use super::{SqliteStore, insert_sql, placeholders, stats};

pub(super) const COLUMNS: &str = "id, app_id, end_user_id, conversation_id, parent_message_id, inputs, query, answer, \
    message_files, retriever_resources, agent_thoughts, status, error, metadata, created_at, task_id";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    message_from_fields(&Fields::of("messages", row))
}

/// A message read from `f`'s row, column after column in the order of [`COLUMNS`].
fn message_from_fields(f: &Fields<'_, '_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: f.parse("id")?,
        owner: Owner { app_id: f.parse("app_id")?, end_user_id: f.parse("end_user_id")? },
        conversation_id: f.parse("conversation_id")?,
        // Nullable by design: the first message of a conversation has no parent.
        parent_message_id: f.parse_opt("parent_message_id")?,
        inputs: f.json("inputs")?,
        query: f.get("query")?,
        answer: f.get("answer")?,
        message_files: f.json("message_files")?,
        retriever_resources: f.json("retriever_resources")?,
        agent_thoughts: f.json("agent_thoughts")?,
        status: f.parse("status")?,
        // Nullable by design: only a failed message has an error.
        error: f.get("error")?,
        metadata: f.decode_text("metadata", |text| Ok(OpaqueJson::from_stored(text)))?,
        created_at: f.time("created_at")?,
        // Nullable by design: only a message whose generation is running has a task.
        task_id: f.parse_opt("task_id")?,
    })
}

/// A page of a conversation's history, newest first: `?1` the conversation, `?2` how many
/// rows; after a cursor, `?3` and `?4` its time and id. The cursor is a row-value comparison
/// so that SQLite seeks `messages_by_conversation` straight to it, however deep; the first
/// page has a statement of its own rather than a `?3 IS NULL OR ...`, which no index serves.
pub(super) fn history_sql(after_cursor: bool) -> String {
    history_of(COLUMNS, after_cursor)
}

/// [`history_sql`] selecting `columns`.
fn history_of(columns: &str, after_cursor: bool) -> String {
    let seek = if after_cursor { " AND (created_at, id) < (?3, ?4)" } else { "" };
    format!(
        "SELECT {columns} FROM messages WHERE conversation_id = ?1{seek} ORDER BY created_at DESC, id DESC LIMIT ?2"
    )
}

/// The values of a page of history ([`history_sql`], [`rated_history_sql`]).
fn history_args(conversation: ConversationId, before: Option<Cursor<MessageId>>, fetch: usize) -> Args {
    let mut values = args![conversation, fetch as i64];
    if let Some(cursor) = before {
        values.extend(args![cursor.at, cursor.id]);
    }
    values
}

/// [`history_sql`] with the rating the conversation's end user gave each message (column
/// `user_rating`, NULL when none; the feedback writes keep it on the message) and the ids of
/// its replies (column `replies`, comma-separated, NULL when none; found through
/// `messages_by_parent`).
pub(super) fn rated_history_sql(after_cursor: bool) -> String {
    let replies = "(SELECT group_concat(r.id) FROM messages r \
                   WHERE r.conversation_id = messages.conversation_id AND r.parent_message_id = messages.id) AS replies";
    history_of(&format!("{COLUMNS}, user_rating, {replies}"), after_cursor)
}

fn rated_message_from_row(row: &Row<'_>) -> rusqlite::Result<RatedMessage> {
    // In select order: the message's columns, then the rating (found where the message ends,
    // not by a search of every column's name), then the replies.
    let f = Fields::of("messages", row);
    let message = message_from_fields(&f)?;
    let rating = f.parse_opt_with("user_rating", rating)?;
    let replies = f.parse_opt_with("replies", |text| text.split(',').map(str::parse).collect())?;
    Ok(RatedMessage { message, rating, replies: in_order(replies.unwrap_or_default()) })
}

/// Message ids oldest first (they are time-ordered UUIDs).
fn in_order(mut ids: Vec<MessageId>) -> Vec<MessageId> {
    ids.sort_unstable_by_key(|id| id.as_uuid());
    ids
}

/// The first message of a conversation (a generated name is drawn from it): `?1` the conversation.
pub(super) fn first_message_sql() -> String {
    format!("SELECT {COLUMNS} FROM messages WHERE conversation_id = ?1 ORDER BY created_at, id LIMIT 1")
}

/// The values of a row, in the order of [`COLUMNS`].
pub(super) fn message_args(m: &Message) -> StoreResult<Args> {
    Ok(args![
        m.id,
        m.owner.app_id,
        m.owner.end_user_id,
        m.conversation_id,
        m.parent_message_id,
        to_json(&m.inputs)?,
        m.query.as_str(),
        m.answer.as_str(),
        to_json(&m.message_files)?,
        to_json(&m.retriever_resources)?,
        to_json(&m.agent_thoughts)?,
        m.status.as_str(),
        m.error.clone(),
        m.metadata.as_str(),
        m.created_at,
        m.task_id
    ])
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn insert_message(&self, m: &Message) -> StoreResult<bool> {
        // Inserted only while the conversation exists: a delete that ran since the caller read
        // it leaves nothing behind (deletes remove the conversation and its messages at once).
        let sql = format!(
            "INSERT INTO messages ({COLUMNS}) SELECT {} WHERE EXISTS \
             (SELECT 1 FROM conversations WHERE id = ?4 AND app_id = ?2 AND end_user_id = ?3)",
            placeholders(COLUMNS)
        );
        let values = message_args(m)?;
        let task = m.task_id.map(|task| args![task, m.owner.app_id, m.owner.end_user_id, 0_i64, m.created_at]);
        let counted = args![m.conversation_id, m.created_at];
        let m = m.clone();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let inserted = tx.prepare_cached(&sql)?.execute(params_from_iter(values))? == 1;
            if inserted {
                tx.prepare_cached(
                    "UPDATE conversations SET message_count = message_count + 1,
                         last_message_at = max(coalesce(last_message_at, ?2), ?2) WHERE id = ?1",
                )?
                .execute(params_from_iter(counted))?;
                stats::count_message(&tx, &m)?;
            }
            if inserted && let Some(task) = task {
                let insert_task = insert_sql("tasks", "id, app_id, end_user_id, stop_requested, started_at");
                tx.prepare_cached(&insert_task)?.execute(params_from_iter(task))?;
            }
            tx.commit()?;
            Ok(inserted)
        })
        .await
    }

    /// One transaction: each message as `insert_message` stores it (the first finds the
    /// conversation gone, or none is written).
    async fn insert_messages(&self, messages: &[Message]) -> StoreResult<bool> {
        let sql = format!(
            "INSERT INTO messages ({COLUMNS}) SELECT {} WHERE EXISTS \
             (SELECT 1 FROM conversations WHERE id = ?4 AND app_id = ?2 AND end_user_id = ?3)",
            placeholders(COLUMNS)
        );
        let rows = messages.iter().map(|m| Ok((message_args(m)?, m.clone()))).collect::<StoreResult<Vec<_>>>()?;
        self.write(move |conn| {
            let tx = conn.transaction()?;
            for (values, m) in rows {
                if tx.prepare_cached(&sql)?.execute(params_from_iter(values))? != 1 {
                    return Ok(false);
                }
                tx.prepare_cached(
                    "UPDATE conversations SET message_count = message_count + 1,
                         last_message_at = max(coalesce(last_message_at, ?2), ?2) WHERE id = ?1",
                )?
                .execute(rusqlite::params![m.conversation_id.to_string(), m.created_at.micros()])?;
                stats::count_message(&tx, &m)?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// One transaction: the messages and their feedback, then the conversation's counters
    /// counted again from what is left.
    async fn delete_messages(&self, conversation: &Conversation, messages: &[Message]) -> StoreResult<u64> {
        let id = conversation.id.to_string();
        let ids: Vec<String> = messages.iter().map(|m| m.id.to_string()).collect();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let mut removed = 0;
            for message in &ids {
                let deleted = tx
                    .prepare_cached("DELETE FROM messages WHERE id = ?1 AND conversation_id = ?2")?
                    .execute([message, &id])?;
                if deleted == 1 {
                    tx.prepare_cached("DELETE FROM feedbacks WHERE message_id = ?1")?.execute([message])?;
                    removed += 1;
                }
            }
            tx.prepare_cached(&format!(
                "UPDATE conversations SET
                     message_count = (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = conversations.id),
                     last_message_at = (SELECT MAX(created_at) FROM messages m WHERE m.conversation_id = conversations.id),
                     {COUNT_RATINGS}
                 WHERE id = ?1"
            ))?
            .execute([&id])?;
            tx.commit()?;
            Ok(removed)
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
            m.metadata.as_str(),
            to_json(&m.message_files)?,
            m.task_id
        ];
        // The first outcome stored for a message that was generating counts its answer.
        let answer = Tally::answer(m).map(|tally| (m.id, m.owner.app_id, m.created_at, tally));
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let was_generating = match answer {
                Some((id, ..)) => tx
                    .prepare_cached("SELECT task_id IS NOT NULL FROM messages WHERE id = ?1")?
                    .query_row(params_from_iter(args![id]), |row| row.get::<_, bool>(0))
                    .optional()?
                    .unwrap_or(false),
                None => false,
            };
            let updated = tx.prepare_cached(sql)?.execute(params_from_iter(values))? == 1;
            if updated
                && was_generating
                && let Some((_, app, at, tally)) = answer
            {
                stats::add_tally(&tx, app, Granularity::Hour, at, &tally)?;
            }
            tx.commit()?;
            Ok(updated)
        })
        .await
    }

    async fn mark_abandoned(&self, m: &Message) -> StoreResult<bool> {
        let Some(task) = m.task_id else { return Ok(false) };
        let sql = "UPDATE messages SET status = 'error', error = ?3, task_id = NULL WHERE id = ?1 AND task_id = ?2";
        Ok(self.execute(sql.into(), args![m.id, task, ABANDONED_ERROR]).await? == 1)
    }

    async fn message(&self, owner: Owner, id: MessageId) -> StoreResult<Option<Message>> {
        let sql = format!("SELECT {COLUMNS} FROM messages WHERE id = ?1 AND app_id = ?2 AND end_user_id = ?3");
        self.one(sql, args![id, owner.app_id, owner.end_user_id], message_from_row).await
    }

    async fn app_message(&self, app: AppId, id: MessageId) -> StoreResult<Option<Message>> {
        let sql = format!("SELECT {COLUMNS} FROM messages WHERE id = ?1 AND app_id = ?2");
        self.one(sql, args![id, app], message_from_row).await
    }

    async fn message_in(&self, conversation: ConversationId, id: MessageId) -> StoreResult<Option<Message>> {
        let sql = format!("SELECT {COLUMNS} FROM messages WHERE id = ?1 AND conversation_id = ?2");
        self.one(sql, args![id, conversation], message_from_row).await
    }

    async fn message_time(&self, conversation: ConversationId, id: MessageId) -> StoreResult<Option<Timestamp>> {
        let sql = "SELECT created_at FROM messages WHERE id = ?1 AND conversation_id = ?2";
        self.one(sql.into(), args![id, conversation], |row| Fields::of("messages", row).time("created_at")).await
    }

    async fn messages_before(
        &self,
        conversation: ConversationId,
        before: Option<Cursor<MessageId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Message>> {
        self.page(history_sql(before.is_some()), history_args(conversation, before, fetch), message_from_row).await
    }

    async fn rated_messages_before(
        &self,
        conversation: ConversationId,
        before: Option<Cursor<MessageId>>,
        fetch: usize,
    ) -> StoreResult<Vec<RatedMessage>> {
        let values = history_args(conversation, before, fetch);
        self.page(rated_history_sql(before.is_some()), values, rated_message_from_row).await
    }

    async fn root_messages(&self, conversation: &Conversation) -> StoreResult<Vec<MessageId>> {
        let sql = "SELECT id FROM messages WHERE conversation_id = ?1 AND parent_message_id IS NULL";
        let ids =
            self.page(sql.to_owned(), args![conversation.id], |row| Fields::of("messages", row).parse("id")).await?;
        Ok(in_order(ids))
    }

    async fn first_message(&self, conversation: ConversationId) -> StoreResult<Option<Message>> {
        self.one(first_message_sql(), args![conversation], message_from_row).await
    }

    async fn messages_after(
        &self,
        conversation: ConversationId,
        after: Option<Cursor<MessageId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Message>> {
        let seek = if after.is_some() { " AND (created_at, id) > (?3, ?4)" } else { "" };
        let sql =
            format!("SELECT {COLUMNS} FROM messages WHERE conversation_id = ?1{seek} ORDER BY created_at, id LIMIT ?2");
        self.page(sql, history_args(conversation, after, fetch), message_from_row).await
    }
}
