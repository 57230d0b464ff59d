//! An app's usage counters (`StatsStore`): one item per app, bucket and shard
//! (`STATS#<app>#<00–15>`, sort key `H#<hour start>` or `D#<day start>`), so that one busy app
//! spreads its counting over [`STATS_SHARDS`] items; a read sums the shards. A write's counts
//! are added by an `UpdateItem ADD` right after the write succeeds: in its transaction, the
//! app-wide counter would make every concurrent transaction of the app conflict with the others.
//! A process that dies between the two loses that one count (the counters are usage figures,
//! never the data itself; `docs/data-model.md`). Whether an end user was counted as active in
//! a bucket is a marker in the end user's own partition (`OWN#…`, sort key `ACT#H#…`/`ACT#D#…`,
//! expiring with TTL once its bucket is past), put only if absent.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};

use colloquy_core::domain::{AppId, DAY_SECONDS, Granularity, Message, Owner, Tally, Timestamp};
use colloquy_core::ports::{StatsStore, StoreResult};

use super::codec::{Read, n, ttl};
use super::keys::{key, owner_pk};
use super::requests::{SortRange, sdk_error};
use super::table::TTL_ATTRIBUTE;
use super::{DynamoStore, Item};

/// How many items one app's counters of one bucket are spread over: each takes ~1,000 updates a
/// second, and a message makes about one, so 16 carry ~16,000 messages a second for one app.
pub(super) const STATS_SHARDS: u128 = 16;

/// Shards read at once.
const SHARD_READS_AT_ONCE: usize = 16;

/// How many end users' latest marked buckets a process remembers (to skip re-marking them).
const MARKS_REMEMBERED: usize = 10_000;

fn stats_pk(app: AppId, shard: u128) -> String {
    format!("STATS#{app}#{shard:02}")
}

fn stats_sk(granularity: Granularity, start: i64) -> String {
    format!("{}#{start:011}", granularity.tag())
}

/// The sort-key prefix of activity marks in an end user's partition.
pub(super) const ACTIVITY_PREFIX: &str = "ACT#";

fn active_sk(granularity: Granularity, start: i64) -> String {
    format!("{ACTIVITY_PREFIX}{}#{start:011}", granularity.tag())
}

/// The processes' memory of which buckets end users were last marked active in.
#[derive(Debug, Default)]
pub(super) struct Marks(std::sync::Mutex<std::collections::HashMap<(Owner, Granularity), i64>>);

impl Marks {
    fn knows(&self, owner: Owner, granularity: Granularity, start: i64) -> bool {
        let marks = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        marks.get(&(owner, granularity)) == Some(&start)
    }

    fn remember(&self, owner: Owner, granularity: Granularity, start: i64) {
        let mut marks = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if marks.len() >= MARKS_REMEMBERED {
            marks.clear();
        }
        marks.insert((owner, granularity), start);
    }
}

impl DynamoStore {
    /// Adds `tally` to `app`'s counters of the bucket `at` falls in, in the shard `spread` (an
    /// id's random bits) picks. A failure is logged, not returned: the write it counts is done.
    pub(super) async fn count(&self, app: AppId, granularity: Granularity, at: Timestamp, spread: u128, tally: Tally) {
        if tally.is_empty() {
            return;
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(stats_pk(app, spread % STATS_SHARDS), stats_sk(granularity, granularity.bucket_of(at)))));
        let mut adds = Vec::new();
        for (i, (field, value)) in Tally::FIELDS.iter().zip(tally.values()).enumerate() {
            if value != 0 {
                adds.push(format!("#f{i} :v{i}"));
                update = update
                    .expression_attribute_names(format!("#f{i}"), *field)
                    .expression_attribute_values(format!(":v{i}"), n(value));
            }
        }
        let result = update.update_expression(format!("ADD {}", adds.join(", "))).send().await;
        if let Err(error) = result.map_err(sdk_error) {
            tracing::warn!(%error, %app, "could not count a write in the app's usage counters");
        }
    }

    /// Counts a new message: the message, and its end user as active in its hour and its day
    /// unless marked there already.
    pub(super) async fn count_usage_of(&self, m: &Message) {
        let (app, spread) = (m.owner.app_id, m.id.as_uuid().as_u128());
        let mut hour = Tally::message();
        if self.mark_active(m.owner, Granularity::Hour, m.created_at).await {
            hour.end_users = 1;
        }
        self.count(app, Granularity::Hour, m.created_at, spread, hour).await;
        if self.mark_active(m.owner, Granularity::Day, m.created_at).await {
            self.count(app, Granularity::Day, m.created_at, spread, Tally::end_user()).await;
        }
    }

    /// Marks `owner` active in the bucket `at` falls in; true when the mark is new.
    async fn mark_active(&self, owner: Owner, granularity: Granularity, at: Timestamp) -> bool {
        let start = granularity.bucket_of(at);
        if self.marks.knows(owner, granularity, start) {
            return false;
        }
        let mut item = key(owner_pk(owner), active_sk(granularity, start));
        // Kept until its bucket can no longer gain messages, and a day more.
        let end = Timestamp::from_micros((start + granularity.seconds()) * 1_000_000);
        item.insert(TTL_ATTRIBUTE.into(), ttl(end, Duration::from_secs(DAY_SECONDS as u64)));
        match self.put_absent(item).await {
            Ok(new) => {
                self.marks.remember(owner, granularity, start);
                new
            }
            Err(error) => {
                tracing::warn!(%error, "could not mark an end user active in the usage counters");
                false
            }
        }
    }
}

fn tally_from(item: &Item) -> StoreResult<(String, Tally)> {
    let r = Read::new("usage counters", item);
    // Optional by design: an ADD creates only the counters it adds to.
    let tally = Tally::read(|field| Ok(r.opt_n(field)?.unwrap_or(0)))?;
    Ok((r.s("SK")?, tally))
}

#[async_trait]
impl StatsStore for DynamoStore {
    /// One query per shard (all at once), summed per bucket.
    async fn tallies(
        &self,
        app: AppId,
        granularity: Granularity,
        from: i64,
        until: i64,
    ) -> StoreResult<Vec<(i64, Tally)>> {
        if from >= until {
            return Ok(Vec::new());
        }
        let (low, high) = (stats_sk(granularity, from), stats_sk(granularity, until - 1));
        let shards = (0..STATS_SHARDS).map(|shard| {
            let (low, high) = (&low, &high);
            // Eventually consistent (half the read units): usage figures may lag a second.
            async move { self.partition_range(stats_pk(app, shard), SortRange::Between(low, high), false).await }
        });
        let pages: Vec<Vec<Item>> =
            futures_util::stream::iter(shards).buffer_unordered(SHARD_READS_AT_ONCE).try_collect().await?;
        let mut sums: BTreeMap<i64, Tally> = BTreeMap::new();
        for item in pages.iter().flatten() {
            let (sk, tally) = tally_from(item)?;
            let start = sk
                .split_once('#')
                .and_then(|(_, start)| start.parse::<i64>().ok())
                .ok_or_else(|| colloquy_core::ports::StoreError::Corrupt(format!("usage counters: sort key '{sk}'")))?;
            sums.entry(start).or_default().add(&tally);
        }
        Ok(sums.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_keys_sort_by_time() {
        let keys: Vec<String> = [0, 3_600, 86_400, 10_000_000_000].map(|t| stats_sk(Granularity::Hour, t)).into();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(stats_sk(Granularity::Day, 86_400), "D#00000086400");
    }
}
