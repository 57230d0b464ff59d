//! Feedback (`FeedbackStore`): an end user's rating of a message, stored in the message's
//! partition, and an entry in the app's feedback list.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};

use colloquy_core::domain::{
    AppId, Conversation, ConversationId, Feedback, FeedbackFilter, Granularity, ListedFeedback, Message, MessageId,
    Owner, Rating, Tally,
};
use colloquy_core::ports::{FeedbackStore, StoreError, StoreResult};

use super::codec::{Read, n, s};
use super::items::{DISLIKE_COUNT, LIKE_COUNT, NOT_RATED, USER_RATING, feedback_fields, feedback_from, pointer_from};
use super::keys::{
    ADMIN_FEEDBACK_SK, POINTER_SK, app_feedback_pk, app_feedback_sk, conversation_sk, feedback_sk, feedback_sk_of, key,
    message_sk, messages_pk, order, owner_pk, pointer_pk,
};
use super::requests::sdk_error;
use super::transact::{LIVE, Transaction};
use super::{DynamoStore, Item};

/// How many times a feedback write is tried against the feedback it read. A write fails its
/// condition only when another request changed that feedback since it was read, so every
/// retry follows another request's success: one end user's concurrent ratings of one message
/// (alternating, 50 at once in the race test) all land, the last after as many rounds.
const FEEDBACK_ATTEMPTS: u32 = 100;

/// The end user whose conversation an entry of the app's feedback list is in: the operators'
/// feedback names it apart (`conversation_end_user_id`), the end user's is theirs.
const CONVERSATION_END_USER: &str = "conversation_end_user_id";

/// A feedback list entry and the conversation it belongs to.
fn listed_from(item: &Item) -> StoreResult<(Feedback, Option<(Owner, ConversationId)>)> {
    let feedback = feedback_from(item)?;
    // Optional by design: only the operators' entries carry it.
    let end_user = match feedback.from_end_user_id {
        Some(end_user) => Some(end_user),
        None => Read::new("feedback", item).opt_parse(CONVERSATION_END_USER)?,
    };
    let conversation =
        end_user.map(|end_user_id| (Owner { app_id: feedback.app_id, end_user_id }, feedback.conversation_id));
    Ok((feedback, conversation))
}

impl DynamoStore {
    /// A transaction's update of the rating a message carries (the message must still exist:
    /// an update without a condition would create a partial message).
    fn rate_message(&self, message: &Message, rating: Option<Rating>) -> StoreResult<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(messages_pk(message.conversation_id), message_sk(message.created_at, message.id))))
            .update_expression("SET #rating = :rating")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#rating", USER_RATING)
            .expression_attribute_values(":rating", s(rating.map_or(NOT_RATED, Rating::as_str)))
            .build()
            .map_err(sdk_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A transaction's write on the rated message: the end user's rating copied onto it, or
    /// for the operators' feedback only the check that it still exists (theirs is not the end
    /// user's rating).
    fn on_message(&self, f: &Feedback, message: &Message, rating: Option<Rating>) -> StoreResult<TransactWriteItem> {
        if f.from_end_user_id.is_some() {
            return self.rate_message(message, rating);
        }
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(messages_pk(message.conversation_id), message_sk(message.created_at, message.id))))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(sdk_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// A transaction's change of a live conversation's like and dislike counts from a rating
    /// `from` to `to` (also the check that the conversation is live).
    fn count_ratings(
        &self,
        owner: Owner,
        conversation: ConversationId,
        from: Option<Rating>,
        to: Option<Rating>,
    ) -> StoreResult<TransactWriteItem> {
        let delta = |rating: Rating| i64::from(to == Some(rating)) - i64::from(from == Some(rating));
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(owner), conversation_sk(conversation))))
            .update_expression("ADD #likes :likes, #dislikes :dislikes")
            .condition_expression(LIVE)
            .expression_attribute_names("#likes", LIKE_COUNT)
            .expression_attribute_names("#dislikes", DISLIKE_COUNT)
            .expression_attribute_values(":likes", n(delta(Rating::Like)))
            .expression_attribute_values(":dislikes", n(delta(Rating::Dislike)))
            .build()
            .map_err(sdk_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Counts an end user's rating of `on` changing from `from` to `to` in the usage counters
    /// of `on`'s hour (operators' ratings are not counted there).
    async fn count_rating(&self, f: &Feedback, on: &Message, from: Option<Rating>, to: Option<Rating>) {
        if f.from_end_user_id.is_some() {
            let spread = on.id.as_uuid().as_u128();
            self.count(f.app_id, Granularity::Hour, on.created_at, spread, Tally::rating(from, to)).await;
        }
    }

    /// The query and answer of each rated message that still exists.
    async fn queries_and_answers(&self, rated: &[Feedback]) -> StoreResult<HashMap<MessageId, (String, String)>> {
        let ids: HashSet<MessageId> = rated.iter().map(|f| f.message_id).collect();
        let pointers = self.batch_get(ids.iter().map(|id| key(pointer_pk(*id), POINTER_SK)).collect()).await?;
        let mut keys = Vec::with_capacity(pointers.len());
        for pointer in &pointers {
            let (conversation, _, at) = pointer_from(pointer)?;
            let r = Read::new("message pointer", pointer);
            let id: MessageId = r.parse_with("PK", |pk| pk.trim_start_matches("MSG#").parse())?;
            keys.push(key(messages_pk(conversation), message_sk(at, id)));
        }
        let mut texts = HashMap::new();
        for message in self.batch_get(keys).await? {
            let r = Read::new("message", &message);
            texts.insert(r.parse("id")?, (r.s("query")?, r.s("answer")?));
        }
        Ok(texts)
    }

    /// Which of these conversations are live (exist and are not tombstoned).
    async fn live_conversations(
        &self,
        conversations: &HashSet<(Owner, ConversationId)>,
    ) -> StoreResult<HashSet<(Owner, ConversationId)>> {
        let keys = conversations.iter().map(|(owner, id)| key(owner_pk(*owner), conversation_sk(*id))).collect();
        let mut live = HashSet::new();
        for item in self.batch_get(keys).await? {
            let r = Read::new("conversation", &item);
            if !super::items::is_gone(&item)? {
                live.insert((r.owner()?, r.parse("id")?));
            }
        }
        Ok(live)
    }
}

#[async_trait]
impl FeedbackStore for DynamoStore {
    async fn user_feedback(&self, owner: Owner, message: MessageId) -> StoreResult<Option<Feedback>> {
        let item = self.get(pointer_pk(message), feedback_sk(owner.end_user_id)).await?;
        let feedback = item.as_ref().map(feedback_from).transpose()?;
        Ok(feedback.filter(|f| f.app_id == owner.app_id))
    }

    async fn operator_feedback(&self, app: AppId, message: MessageId) -> StoreResult<Option<Feedback>> {
        let item = self.get(pointer_pk(message), ADMIN_FEEDBACK_SK).await?;
        let feedback = item.as_ref().map(feedback_from).transpose()?;
        Ok(feedback.filter(|f| f.app_id == app))
    }

    /// The feedback, its entry in the app's list, the message's copy of the rating and the
    /// conversation's counts, written together, conditional on the conversation being live and
    /// on the stored feedback being what the caller read (`previous`), so the counts change by
    /// exactly what changed. When a concurrent request got in between (created the end user's
    /// feedback first, or changed it), the stored one is read again and updated instead (its
    /// id and `created_at` kept, so its list entry stays the one).
    async fn save_feedback(&self, f: &Feedback, previous: Option<Rating>, on: &Message) -> StoreResult<bool> {
        let sk = feedback_sk_of(f.from_end_user_id);
        let (mut f, mut previous) = (f.clone(), previous);
        for _ in 0..FEEDBACK_ATTEMPTS {
            let mut own = Put::builder()
                .table_name(&self.table)
                .set_item(Some(feedback_fields(&f, key(pointer_pk(f.message_id), sk.clone()))));
            own = match previous {
                None => own.condition_expression("attribute_not_exists(PK)"),
                Some(old) => own
                    .condition_expression("id = :id AND rating = :old")
                    .expression_attribute_values(":id", s(f.id.to_string()))
                    .expression_attribute_values(":old", s(old.as_str())),
            };
            let mut listed = feedback_fields(&f, key(app_feedback_pk(f.app_id), app_feedback_sk(f.created_at, f.id)));
            listed.insert(CONVERSATION_END_USER.into(), s(on.owner.end_user_id.to_string()));
            let writes = vec![
                self.count_ratings(on.owner, f.conversation_id, previous, Some(f.rating))?,
                TransactWriteItem::builder().put(own.build().map_err(sdk_error)?).build(),
                self.put_item(listed, None)?,
                self.on_message(&f, on, Some(f.rating))?,
            ];
            match self.transact_checked(writes).await? {
                Transaction::Done => {
                    self.count_rating(&f, on, previous, Some(f.rating)).await;
                    return Ok(true);
                }
                // The conversation or the message is gone.
                Transaction::Refused(failed) if failed[0] || failed[3] => return Ok(false),
                Transaction::Refused(_) => match self.get(pointer_pk(f.message_id), sk.clone()).await? {
                    Some(existing) => {
                        let existing = feedback_from(&existing)?;
                        (f.id, f.created_at, previous) = (existing.id, existing.created_at, Some(existing.rating));
                    }
                    None => previous = None,
                },
            }
        }
        Err(StoreError::Unavailable("the feedback kept changing under concurrent writes".into()))
    }

    /// The feedback, its list entry and the message's copy of the rating, with the
    /// conversation's counts, conditional on the feedback being the one read; when it changed
    /// meanwhile, the stored one is removed instead.
    async fn delete_feedback(&self, f: &Feedback, on: &Message) -> StoreResult<bool> {
        let sk = feedback_sk_of(f.from_end_user_id);
        let mut current = f.clone();
        for _ in 0..FEEDBACK_ATTEMPTS {
            let own = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(pointer_pk(current.message_id), sk.clone())))
                .condition_expression("id = :id AND rating = :old")
                .expression_attribute_values(":id", s(current.id.to_string()))
                .expression_attribute_values(":old", s(current.rating.as_str()))
                .build()
                .map_err(sdk_error)?;
            let writes = vec![
                TransactWriteItem::builder().delete(own).build(),
                self.delete_item(app_feedback_pk(current.app_id), app_feedback_sk(current.created_at, current.id))?,
                self.on_message(&current, on, None)?,
                self.count_ratings(on.owner, current.conversation_id, Some(current.rating), None)?,
            ];
            match self.transact_checked(writes).await? {
                Transaction::Done => {
                    self.count_rating(&current, on, Some(current.rating), None).await;
                    return Ok(true);
                }
                // The message or its conversation is gone.
                Transaction::Refused(failed) if failed[2] || failed[3] => return Ok(false),
                Transaction::Refused(_) => match self.get(pointer_pk(current.message_id), sk.clone()).await? {
                    Some(existing) => current = feedback_from(&existing)?,
                    // Removed by a concurrent request: what was asked for is done.
                    None => return Ok(true),
                },
            }
        }
        Err(StoreError::Unavailable("the feedback kept changing under concurrent writes".into()))
    }

    /// One BatchGetItem: the end user's and the operators' feedback on each message.
    async fn feedbacks_on(&self, conversation: &Conversation, messages: &[MessageId]) -> StoreResult<Vec<Feedback>> {
        let end_user = conversation.owner.end_user_id;
        let keys = messages
            .iter()
            .flat_map(|id| [key(pointer_pk(*id), feedback_sk(end_user)), key(pointer_pk(*id), ADMIN_FEEDBACK_SK)])
            .collect();
        let mut found = Vec::new();
        for item in self.batch_get(keys).await? {
            let feedback = feedback_from(&item)?;
            if feedback.app_id == conversation.owner.app_id && feedback.conversation_id == conversation.id {
                found.push(feedback);
            }
        }
        Ok(found)
    }

    /// Offset pages cost reads proportional to `offset + limit` (Dify's API is offset-based);
    /// the time range is a key condition, the other filters are checked on the entries read
    /// (pages of at least 100 entries then). Entries of deleted conversations are skipped at
    /// once, before the purge removes them. The page's messages (for their query and answer)
    /// are read with two BatchGetItems: their pointers, then them.
    async fn listed_feedbacks(
        &self,
        app: AppId,
        filter: &FeedbackFilter,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Vec<ListedFeedback>> {
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let wanted = skip.saturating_add(limit as usize);
        let mut checked: HashSet<(Owner, ConversationId)> = HashSet::new();
        let mut live: HashSet<(Owner, ConversationId)> = HashSet::new();
        let mut kept = Vec::new();
        let mut start = None;
        // List sort keys are `<created>#<id>`: a bare `<time>` sorts before every key at that time.
        let (lower, upper) = (filter.created.from.map(order), filter.created.until.map(order));
        // An empty range (which a BETWEEN would refuse) finds nothing.
        if lower.as_ref().zip(upper.as_ref()).is_some_and(|(l, u)| l >= u) {
            return Ok(Vec::new());
        }
        let condition = match (&lower, &upper) {
            (None, None) => "PK = :pk",
            (Some(_), None) => "PK = :pk AND SK >= :lower",
            (None, Some(_)) => "PK = :pk AND SK < :upper",
            (Some(_), Some(_)) => "PK = :pk AND SK BETWEEN :lower AND :upper",
        };
        loop {
            let mut page_size = (wanted - kept.len()).max(1);
            if !filter.is_empty() {
                page_size = page_size.clamp(100, 1000);
            }
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .scan_index_forward(false)
                .key_condition_expression(condition)
                .expression_attribute_values(":pk", s(app_feedback_pk(app)))
                .limit(i32::try_from(page_size).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start);
            if let Some(lower) = &lower {
                query = query.expression_attribute_values(":lower", s(lower));
            }
            if let Some(upper) = &upper {
                query = query.expression_attribute_values(":upper", s(upper));
            }
            let output = query.send().await.map_err(sdk_error)?;
            let mut page: Vec<(Feedback, Option<(Owner, ConversationId)>)> =
                output.items.unwrap_or_default().iter().map(listed_from).collect::<StoreResult<_>>()?;
            page.retain(|(f, _)| filter.matches(f));
            let unknown: HashSet<_> = page.iter().filter_map(|(_, c)| *c).filter(|c| !checked.contains(c)).collect();
            if !unknown.is_empty() {
                live.extend(self.live_conversations(&unknown).await?);
                checked.extend(unknown);
            }
            kept.extend(page.into_iter().filter(|(_, c)| c.is_some_and(|c| live.contains(&c))).map(|(f, _)| f));
            start = output.last_evaluated_key;
            if start.is_none() || kept.len() >= wanted {
                break;
            }
        }
        let page: Vec<Feedback> = kept.into_iter().skip(skip).take(limit as usize).collect();
        let texts = self.queries_and_answers(&page).await?;
        Ok(page
            .into_iter()
            .map(|feedback| {
                let (query, answer) = texts.get(&feedback.message_id).cloned().unzip();
                ListedFeedback { feedback, query, answer }
            })
            .collect())
    }
}
