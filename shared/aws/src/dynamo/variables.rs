//! Conversation variables (`VariableStore`): one partition per conversation.

use async_trait::async_trait;

use colloquy_core::domain::{ConversationId, ConversationVariable, Cursor, VariableId, VariableNameFilter};
use colloquy_core::ports::{StoreResult, VariableStore};

use super::DynamoStore;
use super::codec::{json, n};
use super::items::{variable_from, variable_item};
use super::keys::{key, variable_sk, variables_pk};
use super::requests::condition_met;

#[async_trait]
impl VariableStore for DynamoStore {
    async fn insert_variable(&self, v: &ConversationVariable) -> StoreResult<()> {
        self.put(variable_item(v)).await
    }

    /// A conversation's variables are few (declared by the app), so the partition is read
    /// whole and filtered, ordered and paged here; the name filter is case-insensitive.
    async fn variables(
        &self,
        conversation: ConversationId,
        name: Option<&VariableNameFilter>,
        after: Option<Cursor<VariableId>>,
        fetch: usize,
    ) -> StoreResult<Vec<ConversationVariable>> {
        let items = self.partition(variables_pk(conversation), None).await?;
        let mut all: Vec<ConversationVariable> = items.iter().map(variable_from).collect::<StoreResult<_>>()?;
        all.retain(|v| name.is_none_or(|f| f.matches(&v.name)));
        all.retain(|v| after.is_none_or(|c| (v.created_at, v.id) > (c.at, c.id)));
        all.sort_by_key(|v| (v.created_at, v.id));
        all.truncate(fetch);
        Ok(all)
    }

    async fn variable(
        &self,
        conversation: ConversationId,
        id: VariableId,
    ) -> StoreResult<Option<ConversationVariable>> {
        self.get(variables_pk(conversation), variable_sk(id)).await?.as_ref().map(variable_from).transpose()
    }

    async fn update_variable(&self, v: &ConversationVariable) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(variables_pk(v.conversation_id), variable_sk(v.id))))
            .update_expression("SET #value = :value, updated_at = :at")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":value", json(&v.value))
            .expression_attribute_values(":at", n(v.updated_at.micros()))
            .send()
            .await;
        condition_met(result).map(drop)
    }
}
