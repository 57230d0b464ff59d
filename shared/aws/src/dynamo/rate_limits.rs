//! Rate limiting (`RateLimiter`): a counter per key and time window, which expires (TTL).

use async_trait::async_trait;

use colloquy_core::ports::{RateLimiter, StoreResult};

use super::DynamoStore;
use super::codec::n;
use super::keys::{key, rate_pk, rate_window_sk};
use super::requests::condition_met;

#[async_trait]
impl RateLimiter for DynamoStore {
    /// One conditional write per hit; the window item expires by TTL.
    async fn try_hit(&self, rate_key: &str, window_start: i64, limit: u32) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(rate_pk(rate_key), rate_window_sk(window_start))))
            .update_expression("ADD hits :one SET expires_at = :ttl")
            .condition_expression("attribute_not_exists(hits) OR hits < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(i64::from(limit)))
            .expression_attribute_values(":ttl", n(window_start + 3600))
            .send()
            .await;
        condition_met(result)
    }

    async fn give_back(&self, rate_key: &str, window_start: i64) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(rate_pk(rate_key), rate_window_sk(window_start))))
            .update_expression("ADD hits :minus_one")
            .condition_expression("hits > :zero")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        condition_met(result).map(drop)
    }

    /// Every window of the key (a Query of its partition), deleted.
    async fn forget(&self, rate_key: &str) -> StoreResult<u64> {
        self.delete_partition(rate_pk(rate_key), None).await
    }
}
