//! Feedback (`FeedbackStore`): an end user's rating of a message, stored in the message's
//! partition, and an entry in the app's feedback list.

use std::collections::HashSet;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use colloquy_core::domain::{AppId, ConversationId, Feedback, Message, MessageId, Owner, Rating};
use colloquy_core::ports::{FeedbackStore, StoreError, StoreResult};

use super::DynamoStore;
use super::codec::{Read, s};
use super::items::{NOT_RATED, USER_RATING, feedback_fields, feedback_from};
use super::keys::{
    app_feedback_pk, app_feedback_sk, conversation_sk, feedback_sk, key, message_sk, messages_pk, owner_pk, pointer_pk,
};
use super::requests::sdk_error;
use super::transact::{TRANSACT_ATTEMPTS, Transaction};

/// The conversation a feedback belongs to, if an end user gave it.
fn conversation_of(f: &Feedback) -> Option<(Owner, ConversationId)> {
    f.from_end_user_id.map(|end_user_id| (Owner { app_id: f.app_id, end_user_id }, f.conversation_id))
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

    /// Which of these conversations are live (exist and are not tombstoned).
    async fn live_conversations(
        &self,
        conversations: &HashSet<(Owner, ConversationId)>,
    ) -> StoreResult<HashSet<(Owner, ConversationId)>> {
        let keys = conversations.iter().map(|(owner, id)| key(owner_pk(*owner), conversation_sk(*id))).collect();
        let mut live = HashSet::new();
        for item in self.batch_get(keys).await? {
            let r = Read::new("conversation", &item);
            if !r.flag("deleted")? {
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

    /// The feedback, its entry in the app's list and the message's copy of the rating, written
    /// together with a check that the conversation is live. The feedback is created only where none exists, or replaces the
    /// one with its id; when a concurrent request created the end user's feedback first, that
    /// one is updated instead (its id and `created_at` kept, so its list entry stays the one).
    async fn save_feedback(&self, f: &Feedback, on: &Message) -> StoreResult<bool> {
        let end_user =
            f.from_end_user_id.ok_or_else(|| StoreError::Conflict("only end-user feedback is stored".into()))?;
        let owner = Owner { app_id: f.app_id, end_user_id: end_user };
        let mut f = f.clone();
        for _ in 0..TRANSACT_ATTEMPTS {
            let own = Put::builder()
                .table_name(&self.table)
                .set_item(Some(feedback_fields(&f, key(pointer_pk(f.message_id), feedback_sk(end_user)))))
                .condition_expression("attribute_not_exists(PK) OR id = :id")
                .expression_attribute_values(":id", s(f.id.to_string()))
                .build()
                .map_err(sdk_error)?;
            let listed = feedback_fields(&f, key(app_feedback_pk(f.app_id), app_feedback_sk(f.created_at, f.id)));
            let writes = vec![
                self.live_check(owner, f.conversation_id)?,
                TransactWriteItem::builder().put(own).build(),
                self.put_item(listed, None)?,
                self.rate_message(on, Some(f.rating))?,
            ];
            match self.transact_checked(writes).await? {
                Transaction::Done => return Ok(true),
                // The conversation or the message is gone.
                Transaction::Refused(failed) if failed[0] || failed[3] => return Ok(false),
                Transaction::Refused(_) => {
                    if let Some(existing) = self.get(pointer_pk(f.message_id), feedback_sk(end_user)).await? {
                        let existing = feedback_from(&existing)?;
                        (f.id, f.created_at) = (existing.id, existing.created_at);
                    }
                }
            }
        }
        Err(StoreError::Unavailable("the feedback kept changing under concurrent writes".into()))
    }

    async fn delete_feedback(&self, f: &Feedback, on: &Message) -> StoreResult<bool> {
        let end_user =
            f.from_end_user_id.ok_or_else(|| StoreError::Conflict("only end-user feedback is stored".into()))?;
        let writes = vec![
            self.delete_item(pointer_pk(f.message_id), feedback_sk(end_user))?,
            self.delete_item(app_feedback_pk(f.app_id), app_feedback_sk(f.created_at, f.id))?,
            self.rate_message(on, None)?,
        ];
        // Refused only when the message is gone.
        Ok(matches!(self.transact_checked(writes).await?, Transaction::Done))
    }

    /// Offset pages cost reads proportional to `offset + limit` (Dify's API is offset-based).
    /// Entries of deleted conversations are skipped at once, before the purge removes them.
    async fn app_feedbacks(&self, app: AppId, offset: u64, limit: u32) -> StoreResult<Vec<Feedback>> {
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let wanted = skip.saturating_add(limit as usize);
        let mut checked: HashSet<(Owner, ConversationId)> = HashSet::new();
        let mut live: HashSet<(Owner, ConversationId)> = HashSet::new();
        let mut kept = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .scan_index_forward(false)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(app_feedback_pk(app)))
                .limit(i32::try_from((wanted - kept.len()).max(1)).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            let page: Vec<Feedback> =
                output.items.unwrap_or_default().iter().map(feedback_from).collect::<StoreResult<_>>()?;
            let unknown: HashSet<_> =
                page.iter().filter_map(conversation_of).filter(|c| !checked.contains(c)).collect();
            if !unknown.is_empty() {
                live.extend(self.live_conversations(&unknown).await?);
                checked.extend(unknown);
            }
            kept.extend(page.into_iter().filter(|f| conversation_of(f).is_some_and(|c| live.contains(&c))));
            start = output.last_evaluated_key;
            if start.is_none() || kept.len() >= wanted {
                break;
            }
        }
        Ok(kept.into_iter().skip(skip).take(limit as usize).collect())
    }
}
