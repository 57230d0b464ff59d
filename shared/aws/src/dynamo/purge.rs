//! The purge of a deleted conversation: deleting a conversation only lays a tombstone, and
//! the table's stream (read as `ChangedItem`s) drives this purge of everything that belonged
//! to it.

use std::collections::HashMap;

use colloquy_core::domain::{AppId, ConversationId, ErasureId, ExportId, FileId, MessageId, Owner, UploadFile};
use colloquy_core::ports::{StoreError, StoreResult};

use super::codec::{Read, s};
use super::keys::{
    ADMIN_FEEDBACK_SK, CONVERSATION_POINTER_SK, CONVERSATION_PREFIX, POINTER_SK, app_feedback_pk, app_feedback_sk,
    conversation_pointer_pk, conversation_sk, feedback_sk, key, messages_pk, owner_pk, pointer_pk, variables_pk,
};
use super::requests::sdk_error;
use super::{DynamoStore, Item};

/// The purge reads this many messages per page and deletes them in groups whose pointer,
/// feedback (the end user's and the operators') and list entries fit one BatchWriteItem
/// (5 × 5 = 25).
const PURGE_PAGE: i32 = 96;
const PURGE_GROUP: usize = 5;

/// The new image of a changed item, as a table stream delivers it; enough to recognise a
/// conversation tombstone.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ChangedItem {
    #[serde(rename = "PK")]
    pub pk: Option<String>,
    #[serde(rename = "SK")]
    pub sk: String,
    pub id: Option<String>,
    pub app_id: Option<String>,
    pub end_user_id: Option<String>,
    pub deleted: Option<bool>,
}

impl ChangedItem {
    /// The conversation this change deleted, if it is a conversation tombstone.
    pub fn deleted_conversation(&self) -> Option<(Owner, ConversationId)> {
        if self.deleted != Some(true) {
            return None;
        }
        self.conversation()
    }

    /// The conversation this removal took away while it was live: DynamoDB's TTL removed it
    /// (its app's retention); what belonged to it is left to purge. Read from the old image.
    pub fn expired_conversation(&self) -> Option<(Owner, ConversationId)> {
        if self.deleted == Some(true) || !self.pk.as_deref()?.starts_with("OWN#") {
            return None;
        }
        self.conversation()
    }

    /// Whose conversation the item is, and which, if it is a conversation.
    fn conversation(&self) -> Option<(Owner, ConversationId)> {
        if !self.sk.starts_with(CONVERSATION_PREFIX) {
            return None;
        }
        let owner = Owner {
            app_id: self.app_id.as_deref()?.parse().ok()?,
            end_user_id: self.end_user_id.as_deref()?.parse().ok()?,
        };
        Some((owner, self.id.as_deref()?.parse().ok()?))
    }

    /// The blob key of the file this removal took away (its item, from the old image): its
    /// bytes are left to delete.
    pub fn removed_file(&self) -> Option<String> {
        if !self.pk.as_deref()?.starts_with("FILE#") || self.sk != super::keys::FILE_SK {
            return None;
        }
        let app: AppId = self.app_id.as_deref()?.parse().ok()?;
        let id: FileId = self.id.as_deref()?.parse().ok()?;
        Some(UploadFile::key_for(app, id))
    }

    /// The erasure this change stored, if it is an erasure's job.
    pub fn erasure(&self) -> Option<(AppId, ErasureId)> {
        let app = self.pk.as_deref()?.strip_prefix(super::ERASURE_PREFIX)?.parse().ok()?;
        Some((app, self.sk.parse().ok()?))
    }

    /// The export this change stored, if it is an export's job.
    pub fn export(&self) -> Option<(AppId, ExportId)> {
        let app = self.pk.as_deref()?.strip_prefix(super::EXPORT_PREFIX)?.parse().ok()?;
        Some((app, self.sk.parse().ok()?))
    }
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub items_deleted: usize,
    /// Of which messages.
    pub messages: usize,
}

impl DynamoStore {
    /// Removes every item of a deleted (tombstoned) conversation, or of a fork cut short (its
    /// placeholder): messages, their pointers and
    /// feedback (also in the app's feedback list), variables, then the tombstone itself.
    /// Idempotent: run it again after any failure until it succeeds.
    pub async fn purge_conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<PurgeReport> {
        if let Some(item) = self.get(owner_pk(owner), conversation_sk(id)).await?
            && !super::items::is_gone(&item)?
        {
            return Err(StoreError::Conflict("the conversation is not deleted".into()));
        }
        let mut report = PurgeReport::default();
        loop {
            // A page of messages at a time, so memory stays bounded however long the history.
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(messages_pk(id)))
                .projection_expression("PK, SK, id")
                .limit(PURGE_PAGE)
                .send()
                .await
                .map_err(sdk_error)?;
            let items = output.items.unwrap_or_default();
            if items.is_empty() {
                break;
            }
            let mut messages: Vec<(MessageId, Item)> = Vec::with_capacity(items.len());
            for item in &items {
                let r = Read::new("message", item);
                messages.push((r.parse("id")?, key(messages_pk(id), r.s("SK")?)));
            }
            let feedback_keys = |m: MessageId| {
                [key(pointer_pk(m), feedback_sk(owner.end_user_id)), key(pointer_pk(m), ADMIN_FEEDBACK_SK)]
            };
            let feedbacks = self.batch_get(messages.iter().flat_map(|(m, _)| feedback_keys(*m)).collect()).await?;
            let mut listed: HashMap<MessageId, Vec<Item>> = HashMap::new();
            for feedback in &feedbacks {
                let r = Read::new("feedback", feedback);
                listed
                    .entry(r.parse("message_id")?)
                    .or_default()
                    .push(key(app_feedback_pk(owner.app_id), app_feedback_sk(r.time("created_at")?, r.parse("id")?)));
            }
            // Per group: what points at the messages first, then the messages, so a failure in
            // between leaves the messages to find again on the next run.
            for group in messages.chunks(PURGE_GROUP) {
                let mut dependents: Vec<Item> = Vec::with_capacity(group.len() * 5);
                for (message, _) in group {
                    dependents.push(key(pointer_pk(*message), POINTER_SK));
                    dependents.extend(feedback_keys(*message));
                    dependents.extend(listed.remove(message).unwrap_or_default());
                }
                report.items_deleted += self.batch_delete(dependents).await?;
                let message_keys = group.iter().map(|(_, key)| key.clone()).collect();
                let messages = self.batch_delete(message_keys).await?;
                report.items_deleted += messages;
                report.messages += messages;
            }
        }
        let variables = self.partition(variables_pk(id), None).await?;
        let variable_keys = variables
            .iter()
            .map(|item| Ok(key(variables_pk(id), Read::new("variable", item).s("SK")?)))
            .collect::<StoreResult<_>>()?;
        report.items_deleted += self.batch_delete(variable_keys).await?;
        // The pointer before the conversation: a purge cut short here runs again from the
        // tombstone (deleting a missing pointer is no error).
        self.delete(conversation_pointer_pk(id), CONVERSATION_POINTER_SK).await?;
        self.delete(owner_pk(owner), conversation_sk(id)).await?;
        report.items_deleted += 1;
        Ok(report)
    }
}
