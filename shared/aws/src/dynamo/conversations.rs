//! Conversations (`ConversationStore`): one partition per end user, listed through the two
//! local secondary indexes (by update and by creation time); a delete lays a tombstone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use colloquy_core::domain::{Conversation, ConversationId, ConversationSort, Cursor, Owner, SortField, Timestamp};
use colloquy_core::ports::{ConversationStore, StoreError, StoreResult};

use super::DynamoStore;
use super::codec::{json, n, s, ttl};
use super::items::{conversation_from, conversation_item, live};
use super::keys::{conversation_index_sk, conversation_sk, key, owner_pk};
use super::requests::{condition_met, sdk_error, written_by};
use super::table::INDEXES;
use super::transact::LIVE;

/// Tombstoned conversations expire (TTL) after this long.
const TOMBSTONE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[async_trait]
impl ConversationStore for DynamoStore {
    async fn insert_conversation(&self, c: &Conversation) -> StoreResult<()> {
        if self.put_new("conversation", conversation_item(c)).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict("the conversation exists".into()))
        }
    }

    async fn conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<Option<Conversation>> {
        live(self.get(owner_pk(owner), conversation_sk(id)).await?)?.as_ref().map(conversation_from).transpose()
    }

    async fn conversations(
        &self,
        owner: Owner,
        sort: ConversationSort,
        after: Option<Cursor<ConversationId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Conversation>> {
        let (index, attribute) = match sort.field {
            SortField::UpdatedAt => INDEXES[0],
            SortField::CreatedAt => INDEXES[1],
        };
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .consistent_read(true)
            .scan_index_forward(!sort.descending)
            .limit(i32::try_from(fetch).unwrap_or(i32::MAX))
            .expression_attribute_values(":pk", s(owner_pk(owner)));
        query = match after {
            None => query.key_condition_expression("PK = :pk"),
            Some(cursor) => {
                let beyond = if sort.descending { "<" } else { ">" };
                query
                    .key_condition_expression(format!("PK = :pk AND {attribute} {beyond} :cursor"))
                    .expression_attribute_values(":cursor", s(conversation_index_sk(cursor.at, cursor.id)))
            }
        };
        // Tombstones carry no index keys, so the index holds live conversations only.
        let output = query.send().await.map_err(sdk_error)?;
        output.items.unwrap_or_default().iter().map(conversation_from).collect()
    }

    async fn update_conversation(&self, c: &Conversation) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(c.owner), conversation_sk(c.id))))
            .update_expression(
                "SET #name = :name, inputs = :inputs, #status = :status, updated_at = :at, LSI1SK = :lsi",
            )
            .condition_expression(LIVE)
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":name", s(&c.name))
            .expression_attribute_values(":inputs", json(&c.inputs))
            .expression_attribute_values(":status", s(c.status.as_str()))
            .expression_attribute_values(":at", n(c.updated_at.micros()))
            .expression_attribute_values(":lsi", s(conversation_index_sk(c.updated_at, c.id)))
            .send()
            .await;
        condition_met(result)
    }

    /// One request: a tombstone that hides the conversation from every read at once; the
    /// purge (run from the table's stream) removes what belonged to it.
    async fn delete_conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<bool> {
        let now = Timestamp::from_micros(
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0),
        );
        // The tombstone names the request that laid it, so a retry of this very request
        // (its first response lost) is told apart from a conversation deleted before.
        let request = uuid::Uuid::new_v4().to_string();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(owner), conversation_sk(id))))
            .update_expression("SET deleted = :yes, expires_at = :ttl, written_by = :request REMOVE LSI1SK, LSI2SK")
            .condition_expression(LIVE)
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":ttl", ttl(now, TOMBSTONE_TTL))
            .expression_attribute_values(":request", s(&request))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(service)) => match service.err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    written_by("conversation", failed.item(), &request)
                }
                _ => Err(sdk_error(SdkError::ServiceError(service))),
            },
            Err(e) => Err(sdk_error(e)),
        }
    }
}
