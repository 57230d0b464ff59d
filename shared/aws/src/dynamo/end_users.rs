//! End users (`EndUserStore`): one item per (app, `user` string), created on first sight.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use colloquy_core::domain::{AppId, EndUser, UserRef};
use colloquy_core::ports::{EndUserStore, StoreError, StoreResult};

use super::DynamoStore;
use super::codec::{n, s};
use super::items::end_user_from;
use super::keys::{END_USER_SK, end_user_pk, key};
use super::requests::sdk_error;

#[async_trait]
impl EndUserStore for DynamoStore {
    async fn end_user(&self, app: AppId, user: &UserRef, new: EndUser) -> StoreResult<EndUser> {
        // One request: set the id only if the item has none, and read back what is stored.
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(end_user_pk(app, user), END_USER_SK)))
            .update_expression("SET #id = if_not_exists(#id, :id), created_at = if_not_exists(created_at, :at)")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":id", s(new.id.to_string()))
            .expression_attribute_values(":at", n(new.created_at.micros()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(sdk_error)?;
        let item = output
            .attributes
            .ok_or_else(|| StoreError::Corrupt("end user item: the update returned no attributes".into()))?;
        end_user_from(app, user, &item)
    }

    async fn find_end_user(&self, app: AppId, user: &UserRef) -> StoreResult<Option<EndUser>> {
        // A strongly consistent GetItem: a read route never writes.
        match self.get(end_user_pk(app, user), END_USER_SK).await? {
            Some(item) => end_user_from(app, user, &item).map(Some),
            None => Ok(None),
        }
    }
}
