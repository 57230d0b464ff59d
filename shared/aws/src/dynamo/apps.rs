//! Apps and their API keys (`AppStore`): one partition lists every app; each key (by its
//! hash) is an item of its own naming its app.

use async_trait::async_trait;

use colloquy_core::domain::{App, AppId, KeyHash, Timestamp};
use colloquy_core::ports::{AppStore, StoreError, StoreResult};

use super::DynamoStore;
use super::codec::Read;
use super::items::{app_from, app_item, key_item};
use super::keys::{APP_PK, APP_PREFIX, KEY_SK, app_sk, key_pk};
use super::requests::condition_met;

#[async_trait]
impl AppStore for DynamoStore {
    async fn create_app(&self, app: &App, first_key: &KeyHash) -> StoreResult<()> {
        let absent = Some("attribute_not_exists(PK)");
        let writes = vec![
            self.put_item(app_item(app), absent)?,
            self.put_item(key_item(first_key, app.id, app.created_at), absent)?,
        ];
        self.transact(writes).await
    }

    async fn update_app(&self, app: &App) -> StoreResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(app_item(app)))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await;
        condition_met(result)
    }

    async fn app(&self, id: AppId) -> StoreResult<Option<App>> {
        self.get(APP_PK.into(), app_sk(id)).await?.as_ref().map(app_from).transpose()
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        let items = self.partition(APP_PK.into(), Some(APP_PREFIX)).await?;
        let mut apps: Vec<App> = items.iter().map(app_from).collect::<StoreResult<_>>()?;
        apps.sort_by_key(|a| (a.created_at, a.id));
        Ok(apps)
    }

    async fn add_key(&self, app: AppId, hash: &KeyHash, now: Timestamp) -> StoreResult<()> {
        if self.put_new("API key", key_item(hash, app, now)).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict("the key exists".into()))
        }
    }

    async fn app_for_key(&self, hash: &KeyHash) -> StoreResult<Option<AppId>> {
        let item = self.get(key_pk(hash), KEY_SK).await?;
        item.map(|item| Read::new("API key", &item).parse("app_id")).transpose()
    }

    async fn revoke_key(&self, hash: &KeyHash) -> StoreResult<bool> {
        self.delete_existing(key_pk(hash), KEY_SK).await
    }
}
