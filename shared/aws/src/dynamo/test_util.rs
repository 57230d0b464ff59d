//! Helpers for tests and benchmarks only (the `test-util` feature; production builds leave
//! them out): bulk imports of messages and conversations, and a count of what is left of a
//! conversation after a purge.

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures_util::StreamExt;

use colloquy_core::domain::{
    AppId, Conversation, ConversationId, KeyHash, Message, MessageId, Owner, Timestamp, UserRef,
};
use colloquy_core::ports::{StoreError, StoreResult};

use super::codec::{Read, n, s};
use super::items::{USER_RATING, conversation_item, message_item, pointer_item};
use super::keys::{
    ADMIN_FEEDBACK_SK, CONVERSATION_POINTER_SK, KEY_SK, POINTER_SK, app_feedback_pk, conversation_pointer_pk,
    conversation_sk, feedback_sk, key, key_pk, message_sk, messages_pk, owner_pk, pointer_pk, variables_pk,
};
use super::requests::sdk_error;
use super::{DynamoStore, Item};

/// An import sends its BatchWriteItem requests (25 writes each) in slices of eight requests
/// sent in turn, [`IMPORT_CONCURRENCY`] slices at once: DynamoDB Local serves concurrent
/// requests, and a benchmark seeds 300,000 items.
const IMPORT_CONCURRENCY: usize = 4;
const IMPORT_SLICE: usize = 25 * 8;

impl DynamoStore {
    /// Stores many messages at once (BatchWriteItem, 25 items per request, a few requests at
    /// a time; two items per message), without the checks of `insert_message`.
    pub async fn import_messages(&self, messages: &[Message]) -> StoreResult<()> {
        self.import(messages.iter().flat_map(|m| [message_item(m), pointer_item(m)])).await
    }

    /// Stores many conversations at once, as `import_messages` does, without the checks of
    /// `insert_conversation`.
    pub async fn import_conversations(&self, conversations: &[Conversation]) -> StoreResult<()> {
        let user = UserRef::parse("imported").map_err(|e| StoreError::Failed(e.0))?;
        self.import(conversations.iter().map(|c| conversation_item(c, &user))).await
    }

    /// Puts every item, [`IMPORT_CONCURRENCY`] slices of [`IMPORT_SLICE`] at a time; returns
    /// once all are stored, or with the first failure.
    async fn import(&self, items: impl Iterator<Item = Item>) -> StoreResult<()> {
        let requests = items
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(item)).build().map_err(sdk_error)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let mut slices = futures_util::stream::iter(requests.chunks(IMPORT_SLICE))
            .map(|slice| self.batch_write(slice.to_vec()))
            .buffer_unordered(IMPORT_CONCURRENCY);
        while let Some(result) = slices.next().await {
            result?;
        }
        Ok(())
    }

    /// Every item still stored for a conversation and the given messages of it (for checks
    /// after a purge): messages, pointers, feedback, list entries, variables, the conversation.
    pub async fn conversation_item_count(
        &self,
        owner: Owner,
        id: ConversationId,
        messages: &[MessageId],
    ) -> StoreResult<usize> {
        let mut count = self.partition(messages_pk(id), None).await?.len();
        let keys: Vec<Item> = messages
            .iter()
            .flat_map(|m| {
                [
                    key(pointer_pk(*m), POINTER_SK),
                    key(pointer_pk(*m), feedback_sk(owner.end_user_id)),
                    key(pointer_pk(*m), ADMIN_FEEDBACK_SK),
                ]
            })
            .collect();
        count += self.batch_get(keys).await?.len();
        count += self.partition(variables_pk(id), None).await?.len();
        count += usize::from(self.get(owner_pk(owner), conversation_sk(id)).await?.is_some());
        count += usize::from(self.get(conversation_pointer_pk(id), CONVERSATION_POINTER_SK).await?.is_some());
        let conversation = id.to_string();
        for entry in self.partition(app_feedback_pk(owner.app_id), None).await? {
            if Read::new("feedback", &entry).s("conversation_id")? == conversation {
                count += 1;
            }
        }
        Ok(count)
    }
}

/// Items as older versions wrote them, to test that they are still read right.
impl DynamoStore {
    /// A key as keys were stored before they carried a copy of their app (its app's id only),
    /// and not in its app's key list.
    pub async fn put_key_without_copy(&self, hash: &KeyHash, app: AppId, now: Timestamp) -> StoreResult<()> {
        let mut item = key(key_pk(hash), KEY_SK);
        item.insert("app_id".into(), s(app.to_string()));
        item.insert("created_at".into(), n(now.micros()));
        self.put(item).await
    }

    /// Removes the rating a message item carries, as messages were stored before they did.
    pub async fn forget_rating_copy(&self, message: &Message) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(messages_pk(message.conversation_id), message_sk(message.created_at, message.id))))
            .update_expression("REMOVE #rating")
            .expression_attribute_names("#rating", USER_RATING)
            .send()
            .await
            .map_err(sdk_error)
            .map(drop)
    }
}
