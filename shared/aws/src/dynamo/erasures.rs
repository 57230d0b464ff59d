//! Erasures of end users (`ErasureStore`): one partition per app (`ERASE#<app>`, sort key the
//! erasure id), each job expiring by TTL after [`ERASURE_RETENTION_DAYS`]; a new job's insert
//! reaches the table's stream, where the erasure function runs it (`template.yaml`). The
//! removals: an end user's conversations (tombstoned if live, then purged here rather than by
//! the stream, so the job knows when they are gone), then whatever is left in their partition
//! and their end-user item.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::try_join_all;

use colloquy_core::domain::{
    AppId, ConversationId, ConversationList, ConversationSort, ERASURE_RETENTION_DAYS, EndUserId, ErasureCounts,
    ErasureId, ErasureJob, ErasureStatus, Owner, UploadFile, UserRef,
};
use colloquy_core::ports::{ConversationStore, ErasureStore, StoreError, StoreResult};

use super::codec::{Read, n, s, ttl};
use super::items::file_from;
use super::keys::{CONVERSATION_PREFIX, END_USER_SK, FILE_SK, end_user_pk, idempotency_pk, key, owner_pk};
use super::requests::{Scan, sdk_error};
use super::stats::ACTIVITY_PREFIX;
use super::table::TTL_ATTRIBUTE;
use super::{DynamoStore, Item};

/// The partition of an app's erasures (also how the stream consumer recognises one).
pub const ERASURE_PREFIX: &str = "ERASE#";

fn erasure_pk(app: AppId) -> String {
    format!("{ERASURE_PREFIX}{app}")
}

fn erasure_item(job: &ErasureJob) -> Item {
    let mut item = key(erasure_pk(job.app_id), job.id.to_string());
    if let Some(user) = &job.user {
        item.insert("user".into(), s(user.as_str()));
    }
    let end_users: Vec<String> = job.end_users.iter().map(ToString::to_string).collect();
    item.insert("end_users".into(), s(end_users.join(",")));
    item.insert("status".into(), s(job.status.as_str()));
    item.insert("conversations".into(), n(job.counts.conversations as i64));
    item.insert("messages".into(), n(job.counts.messages as i64));
    item.insert("files".into(), n(job.counts.files as i64));
    item.insert("other".into(), n(job.counts.other as i64));
    if let Some(error) = &job.error {
        item.insert("error".into(), s(error));
    }
    item.insert("created_at".into(), n(job.created_at.micros()));
    item.insert("updated_at".into(), n(job.updated_at.micros()));
    let retention = Duration::from_secs(ERASURE_RETENTION_DAYS * 86_400);
    item.insert(TTL_ATTRIBUTE.into(), ttl(job.created_at, retention));
    item
}

/// A job from its item.
pub fn erasure_from(item: &Item) -> StoreResult<ErasureJob> {
    let r = Read::new("erasure", item);
    let app_id: AppId = r.parse_with("PK", |pk| pk.trim_start_matches(ERASURE_PREFIX).parse())?;
    let end_users = r
        .s("end_users")?
        .split(',')
        .map(str::parse::<EndUserId>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Corrupt(format!("erasure: end_users: {e}")))?;
    Ok(ErasureJob {
        id: r.parse("SK")?,
        app_id,
        // Optional by design: forgotten once the erasure is done.
        user: r.opt_s("user")?.map(|u| UserRef::parse(&u)).transpose().map_err(|e| StoreError::Corrupt(e.0))?,
        end_users,
        status: r.parse_with("status", ErasureStatus::parse)?,
        counts: ErasureCounts {
            conversations: r.count("conversations")?,
            messages: r.count("messages")?,
            files: r.count("files")?,
            other: r.count("other")?,
        },
        // Optional by design: only a failed erasure has an error.
        error: r.opt_s("error")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

impl DynamoStore {
    /// Every item of a partition (under a sort-key prefix), by key, deleted; returns how many
    /// there were.
    pub(super) async fn delete_partition(&self, pk: String, prefix: Option<&str>) -> StoreResult<u64> {
        let items = self.partition(pk.clone(), prefix).await?;
        let keys = items
            .iter()
            .map(|item| Ok(key(pk.clone(), Read::new("item", item).s("SK")?)))
            .collect::<StoreResult<Vec<Item>>>()?;
        Ok(self.batch_delete(keys).await? as u64)
    }

    /// Removes one conversation of `owner` and its dependents: lays its tombstone if it is live
    /// (the purge removes deleted conversations only), then purges it. Returns its messages'
    /// count if it was live.
    async fn erase_conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<Option<u64>> {
        let live = self.tombstone(owner, id).await?;
        self.purge_conversation(owner, id).await?;
        Ok(live)
    }
}

/// Tombstones laid or conversations purged at once.
const AT_ONCE: usize = 8;

fn counted(outcomes: Vec<Option<u64>>) -> ErasureCounts {
    let live: Vec<u64> = outcomes.into_iter().flatten().collect();
    ErasureCounts { conversations: live.len() as u64, messages: live.iter().sum(), ..ErasureCounts::default() }
}

#[async_trait]
impl ErasureStore for DynamoStore {
    /// One PutItem (the whole job: a few hundred bytes).
    async fn save_erasure(&self, job: &ErasureJob) -> StoreResult<()> {
        self.put(erasure_item(job)).await
    }

    async fn erasure(&self, app: AppId, id: ErasureId) -> StoreResult<Option<ErasureJob>> {
        self.get(erasure_pk(app), id.to_string()).await?.as_ref().map(erasure_from).transpose()
    }

    /// One Query of the owner's live conversations (the by-update index skips tombstones), and
    /// of the archived ones, then a tombstone each.
    async fn hide_conversations(&self, owner: Owner, up_to: usize) -> StoreResult<ErasureCounts> {
        let mut live =
            self.conversations(owner, ConversationSort::DEFAULT, &ConversationList::Active, None, up_to).await?;
        if live.len() < up_to {
            let archived = ConversationList::Archived;
            live.extend(
                self.conversations(owner, ConversationSort::DEFAULT, &archived, None, up_to - live.len()).await?,
            );
        }
        let mut counts = ErasureCounts::default();
        for some in live.chunks(AT_ONCE) {
            counts.add(counted(try_join_all(some.iter().map(|c| self.tombstone(owner, c.id))).await?));
        }
        Ok(counts)
    }

    /// One Query of the owner's conversations (tombstones included), then each one purged, a
    /// few at a time.
    async fn erase_conversations(&self, owner: Owner, up_to: usize) -> StoreResult<(u64, ErasureCounts)> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(owner_pk(owner)))
            .expression_attribute_values(":prefix", s(CONVERSATION_PREFIX))
            .projection_expression("id")
            .limit(i32::try_from(up_to).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk_error)?;
        let ids = output
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| Read::new("conversation", item).parse::<ConversationId>("id"))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut counts = ErasureCounts::default();
        for some in ids.chunks(AT_ONCE) {
            counts.add(counted(try_join_all(some.iter().map(|id| self.erase_conversation(owner, *id))).await?));
        }
        Ok((ids.len() as u64, counts))
    }

    /// The activity marks in each end user's partition, then the end-user item. (Conversations
    /// and file copies are not touched: the erasure removed its own, and any there now were
    /// made since it started, whole, by the user's new requests.)
    async fn forget_end_user(&self, app: AppId, user: &UserRef, ids: &[EndUserId]) -> StoreResult<u64> {
        let mut removed = 0;
        for &end_user_id in ids {
            removed +=
                self.delete_partition(owner_pk(Owner { app_id: app, end_user_id }), Some(ACTIVITY_PREFIX)).await?;
        }
        // Requests made with an Idempotency-Key (kept under the id derived from the user string).
        let derived = EndUserId::derived(app, user);
        for end_user_id in ids.iter().copied().chain((!ids.contains(&derived)).then_some(derived)) {
            removed += self.delete_partition(idempotency_pk(app, end_user_id), None).await?;
        }
        if self.delete_existing(end_user_pk(app, user), END_USER_SK).await? {
            removed += 1;
        }
        // The app's earlier erasures of them (one that failed, say) forget the string too.
        for item in self.partition(erasure_pk(app), None).await? {
            let r = Read::new("erasure", &item);
            if r.opt_s("user")?.as_deref() == Some(user.as_str()) {
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(erasure_pk(app), r.s("SK")?)))
                    .update_expression("REMOVE #user")
                    .expression_attribute_names("#user", "user")
                    .send()
                    .await
                    .map_err(sdk_error)?;
            }
        }
        Ok(removed)
    }

    /// Files stored before each file got a copy in its owner's partition: a filtered Scan of
    /// the table (an erasure's one slow step, in the background).
    async fn unlisted_files(&self, owner: Owner) -> StoreResult<Vec<UploadFile>> {
        let items = self
            .scan(Scan {
                filter: "begins_with(PK, :file) AND SK = :sk AND app_id = :app AND end_user_id = :user",
                names: &[],
                values: vec![
                    (":file", s("FILE#")),
                    (":sk", s(FILE_SK)),
                    (":app", s(owner.app_id.to_string())),
                    (":user", s(owner.end_user_id.to_string())),
                ],
                projection: None,
                fetch: None,
            })
            .await?;
        items.iter().map(file_from).collect()
    }
}
