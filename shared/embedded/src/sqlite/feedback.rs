//! Feedback on messages: at most one per message, user (or operator) and source (table
//! `feedbacks`).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params_from_iter};

use colloquy_core::domain::{
    AppId, Conversation, Feedback, FeedbackFilter, FeedbackSource, Invalid, ListedFeedback, Message, MessageId, Owner,
    Rating,
};
use colloquy_core::ports::{FeedbackStore, StoreResult};

use super::codec::{Conditions, Fields, arg, args};
use super::schema::COUNT_RATINGS;
use super::{SqliteStore, insert_sql, qualified, stats};

const COLUMNS: &str =
    "id, app_id, conversation_id, message_id, end_user_id, rating, content, from_source, created_at, updated_at";

/// Copies the rating the message's own end user gave it (`?1` the message) onto the message,
/// where a page of history reads it (`rated_history_sql`): NULL when there is none. Read from
/// the table in the writing transaction rather than taken from the request, so that a removal
/// racing a new rating can never leave the copy out of step with the feedback that is stored.
const COPY_RATING: &str = "UPDATE messages SET user_rating = (SELECT f.rating FROM feedbacks f
     WHERE f.message_id = ?1 AND f.end_user_id = messages.end_user_id AND f.from_source = 'user') WHERE id = ?1";

/// Recounts the likes and dislikes of `?1`'s conversation (`?1` a conversation id), in the
/// transaction that changed its feedback.
static COUNT_CONVERSATION_RATINGS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("UPDATE conversations SET {COUNT_RATINGS} WHERE id = ?1"));

/// A stored rating: exactly the text [`Rating::as_str`] writes.
pub(super) fn rating(raw: &str) -> Result<Rating, Invalid> {
    [Rating::Like, Rating::Dislike]
        .into_iter()
        .find(|rating| rating.as_str() == raw)
        .ok_or_else(|| Invalid(format!("'{raw}' is not a rating")))
}

/// A stored source: exactly the text [`FeedbackSource::as_str`] writes.
fn source(raw: &str) -> Result<FeedbackSource, Invalid> {
    [FeedbackSource::User, FeedbackSource::Admin]
        .into_iter()
        .find(|source| source.as_str() == raw)
        .ok_or_else(|| Invalid(format!("'{raw}' is not a feedback source")))
}

fn feedback_from_row(row: &Row<'_>) -> rusqlite::Result<Feedback> {
    let f = Fields::of("feedbacks", row);
    Ok(Feedback {
        id: f.parse("id")?,
        app_id: f.parse("app_id")?,
        conversation_id: f.parse("conversation_id")?,
        message_id: f.parse("message_id")?,
        // Nullable by design: an operator's feedback has no end user.
        from_end_user_id: f.parse_opt("end_user_id")?,
        rating: f.parse_with("rating", rating)?,
        // Nullable by design: a rating without a comment.
        content: f.get("content")?,
        source: f.parse_with("from_source", source)?,
        created_at: f.time("created_at")?,
        updated_at: f.time("updated_at")?,
    })
}

#[async_trait]
impl FeedbackStore for SqliteStore {
    async fn user_feedback(&self, owner: Owner, message: MessageId) -> StoreResult<Option<Feedback>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM feedbacks
             WHERE message_id = ?1 AND app_id = ?2 AND end_user_id = ?3 AND from_source = 'user'"
        );
        self.one(sql, args![message, owner.app_id, owner.end_user_id], feedback_from_row).await
    }

    /// The counts are recounted from the table in the writing transaction, so `_previous` is
    /// not needed here.
    async fn operator_feedback(&self, app: AppId, message: MessageId) -> StoreResult<Option<Feedback>> {
        let sql =
            format!("SELECT {COLUMNS} FROM feedbacks WHERE message_id = ?1 AND app_id = ?2 AND from_source = 'admin'");
        self.one(sql, args![message, app], feedback_from_row).await
    }

    async fn save_feedback(&self, f: &Feedback, _previous: Option<Rating>, _on: &Message) -> StoreResult<bool> {
        let existing_sql = "SELECT id FROM feedbacks WHERE message_id = ?1 AND end_user_id IS ?2 AND from_source = ?3";
        let f = f.clone();
        self.write(move |conn| {
            // Immediate: the check and the write hold the write lock, also against other processes.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let message = tx
                .prepare_cached("SELECT 1 FROM messages WHERE id = ?1 AND conversation_id = ?2")?
                .query_row(params_from_iter(args![f.message_id, f.conversation_id]), |_| Ok(()))
                .optional()?;
            if message.is_none() {
                return Ok(false);
            }
            let existing: Option<String> = tx
                .prepare_cached(existing_sql)?
                .query_row(params_from_iter(args![f.message_id, f.from_end_user_id, f.source.as_str()]), |row| {
                    Fields::of("feedbacks", row).get("id")
                })
                .optional()?;
            match existing {
                Some(id) => tx
                    .prepare_cached("UPDATE feedbacks SET rating = ?2, content = ?3, updated_at = ?4 WHERE id = ?1")?
                    .execute(params_from_iter(args![id, f.rating.as_str(), f.content.clone(), f.updated_at]))?,
                None => tx.prepare_cached(&insert_sql("feedbacks", COLUMNS))?.execute(params_from_iter(args![
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
                ]))?,
            };
            let before = stats::rating_of(&tx, f.message_id)?;
            tx.prepare_cached(COPY_RATING)?.execute(params_from_iter(args![f.message_id]))?;
            stats::count_rating_change(&tx, f.app_id, f.message_id, before)?;
            tx.prepare_cached(&COUNT_CONVERSATION_RATINGS)?.execute(params_from_iter(args![f.conversation_id]))?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Removes the row, and the end user's rating kept on the message with it.
    async fn delete_feedback(&self, f: &Feedback, on: &Message) -> StoreResult<bool> {
        let (feedback, message, conversation, app) = (f.id, on.id, on.conversation_id, f.app_id);
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached("DELETE FROM feedbacks WHERE id = ?1")?.execute(params_from_iter(args![feedback]))?;
            let before = stats::rating_of(&tx, message)?;
            tx.prepare_cached(COPY_RATING)?.execute(params_from_iter(args![message]))?;
            stats::count_rating_change(&tx, app, message, before)?;
            tx.prepare_cached(&COUNT_CONVERSATION_RATINGS)?.execute(params_from_iter(args![conversation]))?;
            let message = tx
                .prepare_cached("SELECT 1 FROM messages WHERE id = ?1")?
                .query_row(params_from_iter(args![message]), |_| Ok(()))
                .optional()?;
            tx.commit()?;
            Ok(message.is_some())
        })
        .await
    }

    async fn feedbacks_on(&self, conversation: &Conversation, messages: &[MessageId]) -> StoreResult<Vec<Feedback>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {COLUMNS} FROM feedbacks WHERE conversation_id = ?1");
        let mut q = Conditions::new(sql, args![conversation.id]);
        q.one_of("message_id", messages.iter().map(|id| arg(*id)).collect());
        q.sql.push_str(" ORDER BY created_at, id");
        self.all(q.sql, q.values, feedback_from_row).await
    }

    /// One statement through `feedbacks_by_app`, joined to each feedback's message.
    async fn listed_feedbacks(
        &self,
        app: AppId,
        filter: &FeedbackFilter,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Vec<ListedFeedback>> {
        let sql = format!(
            "SELECT {}, m.query AS query, m.answer AS answer FROM feedbacks f
             LEFT JOIN messages m ON m.id = f.message_id WHERE f.app_id = ?1",
            qualified("f", COLUMNS)
        );
        // An offset beyond what SQLite can count skips every row, as the largest one does.
        let mut q = Conditions::new(sql, args![app, i64::from(limit), i64::try_from(offset).unwrap_or(i64::MAX)]);
        if let Some(rating) = filter.rating {
            q.and(" AND f.rating = ?", args![rating.as_str()]);
        }
        if let Some(source) = filter.source {
            q.and(" AND f.from_source = ?", args![source.as_str()]);
        }
        if let Some(conversation) = filter.conversation {
            q.and(" AND f.conversation_id = ?", args![conversation]);
        }
        q.within("f.created_at", filter.created);
        if let Some(end_users) = &filter.end_users {
            q.one_of("f.end_user_id", end_users.iter().map(|id| arg(*id)).collect());
        }
        match filter.has_content {
            Some(true) => q.sql.push_str(" AND f.content IS NOT NULL AND f.content != ''"),
            Some(false) => q.sql.push_str(" AND (f.content IS NULL OR f.content = '')"),
            None => {}
        }
        q.sql.push_str(" ORDER BY f.created_at DESC, f.id DESC LIMIT ?2 OFFSET ?3");
        self.all(q.sql, q.values, |row| {
            let f = Fields::of("feedbacks", row);
            Ok(ListedFeedback {
                feedback: feedback_from_row(row)?,
                // Nullable by design: the message may be gone.
                query: f.get("query")?,
                answer: f.get("answer")?,
            })
        })
        .await
    }
}
