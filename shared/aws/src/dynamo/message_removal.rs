//! Removing some messages of a live conversation (`MessageStore::delete_messages`): a few at a
//! time, newest first, each group in one transaction with the conversation's counters.

use std::collections::HashSet;

use colloquy_core::domain::{Conversation, Message, MessageId, Rating};
use colloquy_core::ports::StoreResult;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::DynamoStore;
use super::codec::{Read, n};
use super::items::{DISLIKE_COUNT, LAST_MESSAGE_AT, LIKE_COUNT, MESSAGE_COUNT, ROOTS, feedback_from};
use super::keys::{
    ADMIN_FEEDBACK_SK, POINTER_SK, app_feedback_pk, app_feedback_sk, conversation_sk, feedback_sk, key, message_sk,
    messages_pk, owner_pk, pointer_pk,
};
use super::requests::{condition_met, sdk_error};
use super::transact::{LIVE, Transaction};

/// Messages removed per transaction: each brings its item, pointer, up to two feedback items
/// and their two list entries (6 writes), with one update of the conversation and at most one
/// of a parent left behind (≤ 92 of 100).
const GROUP: usize = 15;

impl DynamoStore {
    pub(super) async fn remove_messages(&self, conversation: &Conversation, messages: &[Message]) -> StoreResult<u64> {
        let owner = conversation.owner;
        let mut removed = 0;
        let gone: HashSet<MessageId> = messages.iter().map(|m| m.id).collect();
        for group in messages.chunks(GROUP) {
            // A removed message whose parent stays leaves its parent's replies (or the
            // conversation's roots) in the same transaction.
            let mut unlink = Vec::new();
            let mut root = None;
            for m in group {
                match m.parent_message_id {
                    None => root = Some(m.id),
                    Some(parent) if !gone.contains(&parent) => {
                        if let Some((_, _, at)) = self.pointer(parent).await? {
                            unlink.push(self.replies_update("DELETE", m, parent, at)?);
                        }
                    }
                    Some(_) => {}
                }
            }
            let feedback_keys = |m: MessageId| {
                [key(pointer_pk(m), feedback_sk(owner.end_user_id)), key(pointer_pk(m), ADMIN_FEEDBACK_SK)]
            };
            let feedbacks = self.batch_get(group.iter().flat_map(|m| feedback_keys(m.id)).collect()).await?;
            let (mut likes, mut dislikes) = (0_i64, 0_i64);
            let mut deletes: Vec<(String, String)> = Vec::with_capacity(group.len() * 6);
            for feedback in &feedbacks {
                let r = Read::new("feedback", feedback);
                let stored = feedback_from(feedback)?;
                match stored.rating {
                    Rating::Like => likes += 1,
                    Rating::Dislike => dislikes += 1,
                }
                deletes.push((r.s("PK")?, r.s("SK")?));
                deletes.push((app_feedback_pk(owner.app_id), app_feedback_sk(stored.created_at, stored.id)));
            }
            for m in group {
                deletes.push((pointer_pk(m.id), POINTER_SK.to_owned()));
                deletes.push((messages_pk(m.conversation_id), message_sk(m.created_at, m.id)));
            }
            let count = i64::try_from(group.len()).unwrap_or(i64::MAX);
            let mut counts = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(owner_pk(owner), conversation_sk(conversation.id))))
                .update_expression("ADD #count :messages, #likes :likes, #dislikes :dislikes")
                .condition_expression(LIVE)
                .expression_attribute_names("#count", MESSAGE_COUNT)
                .expression_attribute_names("#likes", LIKE_COUNT)
                .expression_attribute_names("#dislikes", DISLIKE_COUNT)
                .expression_attribute_values(":messages", n(-count))
                .expression_attribute_values(":likes", n(-likes))
                .expression_attribute_values(":dislikes", n(-dislikes));
            if let Some(root) = root {
                counts = counts
                    .update_expression("ADD #count :messages, #likes :likes, #dislikes :dislikes DELETE #roots :root")
                    .expression_attribute_names("#roots", ROOTS)
                    .expression_attribute_values(":root", AttributeValue::Ss(vec![root.to_string()]));
            }
            let counts = counts.build().map_err(sdk_error)?;
            let mut writes = vec![TransactWriteItem::builder().update(counts).build()];
            writes.extend(unlink);
            for (pk, sk) in deletes {
                writes.push(self.delete_item(pk, sk)?);
            }
            match self.transact_checked(writes).await? {
                Transaction::Done => removed += group.len() as u64,
                // The conversation is gone (its purge removes the rest).
                Transaction::Refused(_) => return Ok(removed),
            }
        }
        // The newest message left is the last one.
        let newest = self.newest_first(messages_pk(conversation.id), None, 1).await?;
        let newest = newest.first().map(|item| Read::new("message", item).n("created_at")).transpose()?;
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(owner), conversation_sk(conversation.id))))
            .condition_expression(LIVE)
            .expression_attribute_names("#last", LAST_MESSAGE_AT);
        request = match newest {
            Some(at) => request.update_expression("SET #last = :at").expression_attribute_values(":at", n(at)),
            None => request.update_expression("REMOVE #last"),
        };
        condition_met(request.send().await)?;
        Ok(removed)
    }
}
