//! Apps and their API keys (`AppStore`). One partition lists every app (read by the CLI only);
//! each key (by its hash) is an item of its own naming its app and carrying a copy of it, so
//! that authenticating a request is one GetItem of the key alone — no request reads a
//! partition every request shares. An app's keys are listed in its own partition, and an app
//! update rewrites every copy in the transaction that writes the app.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update};

use colloquy_core::domain::{App, AppId, Grant, KeyHash, KeyRecord, Timestamp};
use colloquy_core::ports::{AppStore, StoreError, StoreResult};

use super::DynamoStore;
use super::codec::{Read, n};
use super::items::{
    APP_COPY, APP_REV, KEY_USED, app_fields, app_from, app_item, app_key_entry, key_item, key_record_from,
};
use super::keys::{APP_PK, APP_PREFIX, KEY_SK, app_keys_pk, app_sk, key, key_pk};
use super::requests::sdk_error;
use super::transact::{TRANSACT_ATTEMPTS, Transaction};

/// The most keys an app may have: an update rewrites the app and every key's copy in one
/// transaction, and a transaction holds at most 100 writes.
pub const MAX_KEYS_PER_APP: usize = 99;

/// The condition that an app item is still at revision `rev` (apps written before revisions
/// were kept have none, which is revision 0).
fn at_revision(rev: i64) -> &'static str {
    if rev == 0 { "attribute_exists(PK) AND (attribute_not_exists(#rev) OR #rev = :rev)" } else { "#rev = :rev" }
}

impl DynamoStore {
    /// An app as stored, with its revision.
    async fn app_at(&self, id: AppId) -> StoreResult<Option<(App, i64)>> {
        let Some(item) = self.get(APP_PK.into(), app_sk(id)).await? else { return Ok(None) };
        // Optional by design: apps stored before revisions were kept have none.
        let rev = Read::new("app", &item).opt_n(APP_REV)?.unwrap_or(0);
        Ok(Some((app_from(&item)?, rev)))
    }

    /// The hashes of an app's listed keys.
    async fn app_keys(&self, app: AppId) -> StoreResult<Vec<KeyHash>> {
        let items = self.partition(app_keys_pk(app), None).await?;
        items.iter().map(|item| Read::new("app key entry", item).s("SK").map(KeyHash::from_stored)).collect()
    }

    /// A transaction's write of `app` at revision `rev + 1`, if the stored one is at `rev`.
    fn put_revised(&self, app: &App, rev: i64) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(app_item(app, rev + 1)))
            .condition_expression(at_revision(rev))
            .expression_attribute_names("#rev", APP_REV)
            .expression_attribute_values(":rev", n(rev))
            .build()
            .map_err(sdk_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction's update of a key's copy of its app (the key must still exist: an update
    /// without a condition would create a key).
    fn copy_to_key(&self, hash: &KeyHash, app: &App, rev: i64) -> StoreResult<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(key_pk(hash), KEY_SK)))
            .update_expression("SET #app = :app, #rev = :rev")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#app", APP_COPY)
            .expression_attribute_names("#rev", APP_REV)
            .expression_attribute_values(":app", AttributeValue::M(app_fields(app)))
            .expression_attribute_values(":rev", n(rev))
            .build()
            .map_err(sdk_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A transaction's delete of an item that must exist.
    fn delete_existing_item(&self, pk: String, sk: &str) -> StoreResult<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(sdk_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// A transaction's check that an app is still at revision `rev`.
    fn app_unchanged(&self, app: AppId, rev: i64) -> StoreResult<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(APP_PK, app_sk(app))))
            .condition_expression(at_revision(rev))
            .expression_attribute_names("#rev", APP_REV)
            .expression_attribute_values(":rev", n(rev))
            .build()
            .map_err(sdk_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }
}

#[async_trait]
impl AppStore for DynamoStore {
    async fn create_app(&self, app: &App, first_key: &KeyRecord) -> StoreResult<()> {
        let absent = Some("attribute_not_exists(PK)");
        let writes = vec![
            self.put_item(app_item(app, 0), absent)?,
            self.put_item(key_item(first_key, app, 0), absent)?,
            self.put_item(app_key_entry(&first_key.hash, app.id, first_key.created_at), absent)?,
        ];
        self.transact(writes).await
    }

    /// The app at its next revision and every listed key's copy of it, in one transaction
    /// conditional on the revision read, tried again when a concurrent change (an update, a
    /// key added or revoked) got in between.
    async fn update_app(&self, app: &App) -> StoreResult<bool> {
        for _ in 0..TRANSACT_ATTEMPTS {
            let Some((_, rev)) = self.app_at(app.id).await? else { return Ok(false) };
            let keys = self.app_keys(app.id).await?;
            let mut writes = vec![self.put_revised(app, rev)?];
            for hash in &keys {
                writes.push(self.copy_to_key(hash, app, rev + 1)?);
            }
            if let Transaction::Done = self.transact_checked(writes).await? {
                return Ok(true);
            }
        }
        Err(StoreError::Unavailable("the app kept changing under concurrent updates".into()))
    }

    async fn app(&self, id: AppId) -> StoreResult<Option<App>> {
        Ok(self.app_at(id).await?.map(|(app, _)| app))
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        let items = self.partition(APP_PK.into(), Some(APP_PREFIX)).await?;
        let mut apps: Vec<App> = items.iter().map(app_from).collect::<StoreResult<_>>()?;
        apps.sort_by_key(|a| (a.created_at, a.id));
        Ok(apps)
    }

    /// The key with a copy of the app, written only if the app is still the revision copied.
    async fn add_key(&self, app: AppId, record: &KeyRecord) -> StoreResult<()> {
        let Some((stored, rev)) = self.app_at(app).await? else {
            return Err(StoreError::Conflict("the app does not exist".into()));
        };
        if self.app_keys(app).await?.len() >= MAX_KEYS_PER_APP {
            return Err(StoreError::Conflict(format!("an app has at most {MAX_KEYS_PER_APP} keys")));
        }
        let absent = Some("attribute_not_exists(PK)");
        let writes = vec![
            self.app_unchanged(app, rev)?,
            self.put_item(key_item(record, &stored, rev), absent)?,
            self.put_item(app_key_entry(&record.hash, app, record.created_at), absent)?,
        ];
        match self.transact_checked(writes).await? {
            Transaction::Done => Ok(()),
            Transaction::Refused(failed) if failed.first() == Some(&true) => {
                Err(StoreError::Unavailable("the app changed while the key was added; add it again".into()))
            }
            Transaction::Refused(_) => Err(StoreError::Conflict("the key exists".into())),
        }
    }

    /// One strongly consistent GetItem (a key created a moment ago works at once). A key
    /// written before keys carried their app's copy reads the app too.
    async fn app_for_key(&self, hash: &KeyHash) -> StoreResult<Option<Grant>> {
        let Some(item) = self.get(key_pk(hash), KEY_SK).await? else { return Ok(None) };
        let r = Read::new("API key", &item);
        // Optional by design: keys written before keys carried a copy of their app have none.
        let app = match r.opt_map(APP_COPY)? {
            Some(copy) => app_from(copy)?,
            None => match self.app(r.parse("app_id")?).await? {
                Some(app) => app,
                None => return Ok(None),
            },
        };
        let key = key_record_from(&item)?;
        Ok(Some(Grant { app, role: key.role, last_used_at: key.last_used_at, shown: key.shown }))
    }

    /// One conditional UpdateItem: concurrent first uses of the hour write once, and a key
    /// revoked meanwhile is not written back.
    async fn touch_key(&self, hash: &KeyHash, now: Timestamp) -> StoreResult<()> {
        let stale = KeyRecord::stale_before(now).micros();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(key_pk(hash), KEY_SK)))
            .update_expression("SET #used = :now")
            .condition_expression("attribute_exists(PK) AND (attribute_not_exists(#used) OR #used <= :stale)")
            .expression_attribute_names("#used", KEY_USED)
            .expression_attribute_values(":now", n(now.micros()))
            .expression_attribute_values(":stale", n(stale))
            .send()
            .await;
        super::requests::condition_met(result).map(drop)
    }

    /// The app's list of keys, then the keys themselves in batches.
    async fn keys(&self, app: AppId) -> StoreResult<Vec<KeyRecord>> {
        let hashes = self.app_keys(app).await?;
        let items = self.batch_get(hashes.iter().map(|hash| key(key_pk(hash), KEY_SK)).collect()).await?;
        let mut records: Vec<KeyRecord> = items.iter().map(key_record_from).collect::<StoreResult<_>>()?;
        records.sort_by(|a, b| (a.created_at, a.hash.as_str()).cmp(&(b.created_at, b.hash.as_str())));
        Ok(records)
    }

    /// The key and its entry in the app's list, in one transaction.
    async fn revoke_key(&self, hash: &KeyHash) -> StoreResult<bool> {
        let Some(item) = self.get(key_pk(hash), KEY_SK).await? else { return Ok(false) };
        let app: AppId = Read::new("API key", &item).parse("app_id")?;
        let writes =
            vec![self.delete_existing_item(key_pk(hash), KEY_SK)?, self.delete_item(app_keys_pk(app), hash.as_str())?];
        match self.transact_checked(writes).await? {
            Transaction::Done => Ok(true),
            // Revoked by a concurrent request meanwhile.
            Transaction::Refused(_) => Ok(false),
        }
    }
}
