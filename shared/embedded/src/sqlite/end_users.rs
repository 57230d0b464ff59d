//! End users: the callers an app knows by their `user` string (table `end_users`).

use async_trait::async_trait;

use colloquy_core::domain::{AppId, EndUser, UserRef};
use colloquy_core::ports::{EndUserStore, StoreError, StoreResult};

use super::SqliteStore;
use super::codec::{Fields, args};

#[async_trait]
impl EndUserStore for SqliteStore {
    async fn end_user(&self, app: AppId, user: &UserRef, new: EndUser) -> StoreResult<EndUser> {
        let insert = "INSERT INTO end_users (id, app_id, session_id, created_at) VALUES (?1, ?2, ?3, ?4)
                      ON CONFLICT (app_id, session_id) DO NOTHING";
        self.execute(insert.into(), args![new.id, app, user.as_str(), new.created_at]).await?;
        self.find_end_user(app, user).await?.ok_or_else(|| StoreError::Unavailable("end user vanished".into()))
    }

    async fn find_end_user(&self, app: AppId, user: &UserRef) -> StoreResult<Option<EndUser>> {
        let select = "SELECT id, created_at FROM end_users WHERE app_id = ?1 AND session_id = ?2";
        let found = self.one(select.into(), args![app, user.as_str()], |row| {
            let f = Fields::of("end_users", row);
            Ok((f.parse("id")?, f.time("created_at")?))
        });
        Ok(found.await?.map(|(id, created_at)| EndUser { id, app_id: app, session_id: user.clone(), created_at }))
    }
}
