//! What has expired (`ExpiryStore`), for `colloquy purge --expired` against the table: Scans
//! filtered on the TTL attribute (DynamoDB's TTL removes expired items by itself, within days;
//! this removes them now). Slow on a large table, as any Scan: an operator's command, not a
//! request path.

use async_trait::async_trait;

use colloquy_core::domain::{Conversation, Timestamp, UploadFile};
use colloquy_core::ports::{Expired, ExpiryStore, StoreResult};

use super::codec::{Read, n, s};
use super::items::{conversation_from, file_from};
use super::keys::{CONVERSATION_PREFIX, FILE_SK};
use super::requests::Scan;
use super::table::TTL_ATTRIBUTE;
use super::{DynamoStore, Item};

/// Live conversations (their owners' partitions) whose expiry has passed (not a fork's
/// placeholder, which its TTL and the purge remove).
const EXPIRED_CONVERSATIONS: &str = "begins_with(PK, :own) AND begins_with(SK, :conv) AND #ttl <= :now \
     AND attribute_not_exists(deleted) AND attribute_not_exists(forking)";
/// Files whose expiry has passed (their own items; the owners' copies go with them).
const EXPIRED_FILES: &str = "begins_with(PK, :file) AND SK = :file_sk AND #ttl <= :now";

/// What a Scan looks for.
#[derive(Clone, Copy)]
enum Kind {
    Conversations,
    Files,
}

impl DynamoStore {
    /// Expired items of a kind, up to `fetch` (or all, with `None`).
    async fn scan_expired(&self, of: Kind, now: Timestamp, fetch: Option<usize>) -> StoreResult<Vec<Item>> {
        // Exactly the values the filter uses (DynamoDB refuses others).
        let (filter, mut values) = match of {
            Kind::Conversations => {
                (EXPIRED_CONVERSATIONS, vec![(":own", s("OWN#")), (":conv", s(CONVERSATION_PREFIX))])
            }
            Kind::Files => (EXPIRED_FILES, vec![(":file", s("FILE#")), (":file_sk", s(FILE_SK))]),
        };
        values.push((":now", n(now.unix_seconds())));
        self.scan(Scan { filter, names: &[("#ttl", TTL_ATTRIBUTE)], values, projection: None, fetch }).await
    }
}

#[async_trait]
impl ExpiryStore for DynamoStore {
    async fn expired_conversations(&self, now: Timestamp, fetch: usize) -> StoreResult<Vec<Conversation>> {
        self.scan_expired(Kind::Conversations, now, Some(fetch)).await?.iter().map(conversation_from).collect()
    }

    async fn expired_files(&self, now: Timestamp, fetch: usize) -> StoreResult<Vec<UploadFile>> {
        self.scan_expired(Kind::Files, now, Some(fetch)).await?.iter().map(file_from).collect()
    }

    async fn count_expired(&self, now: Timestamp) -> StoreResult<Expired> {
        let conversations = self.scan_expired(Kind::Conversations, now, None).await?.len() as u64;
        let files = self.scan_expired(Kind::Files, now, None).await?;
        let file_bytes = files.iter().map(|item| Read::new("file", item).count("size")).sum::<StoreResult<u64>>()?;
        Ok(Expired { conversations, files: files.len() as u64, file_bytes })
    }
}
