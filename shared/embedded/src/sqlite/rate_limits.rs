//! Rate limiting: hits per key in fixed windows (table `rate_windows`).

use async_trait::async_trait;
use rusqlite::params;

use colloquy_core::ports::{RateLimiter, StoreResult};

use super::SqliteStore;
use super::codec::args;

#[async_trait]
impl RateLimiter for SqliteStore {
    async fn try_hit(&self, key: &str, window_start: i64, limit: u32) -> StoreResult<bool> {
        let key = key.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached("DELETE FROM rate_windows WHERE key = ?1 AND window_start < ?2")?
                .execute(params![key, window_start])?;
            let counted = tx
                .prepare_cached(
                    "INSERT INTO rate_windows (key, window_start, hits) VALUES (?1, ?2, 1)
                     ON CONFLICT (key, window_start) DO UPDATE SET hits = hits + 1 WHERE hits < ?3",
                )?
                .execute(params![key, window_start, i64::from(limit)])?;
            tx.commit()?;
            Ok(counted == 1)
        })
        .await
    }

    async fn give_back(&self, key: &str, window_start: i64) -> StoreResult<()> {
        let sql = "UPDATE rate_windows SET hits = hits - 1 WHERE key = ?1 AND window_start = ?2 AND hits > 0";
        self.execute(sql.into(), args![key, window_start]).await.map(drop)
    }

    async fn forget(&self, key: &str) -> StoreResult<u64> {
        let removed = self.execute("DELETE FROM rate_windows WHERE key = ?1".into(), args![key]).await?;
        Ok(removed as u64)
    }
}
