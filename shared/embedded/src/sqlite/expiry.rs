//! What has expired (`ExpiryStore`): found through the partial indexes on `expires_at`
//! (`conversations_expiring`, `files_expiring`), soonest expired first.

use async_trait::async_trait;

use colloquy_core::domain::{Conversation, Timestamp, UploadFile};
use colloquy_core::ports::{Expired, ExpiryStore, StoreResult};

use super::codec::args;
use super::{SqliteStore, conversations, files};

#[async_trait]
impl ExpiryStore for SqliteStore {
    async fn expired_conversations(&self, now: Timestamp, fetch: usize) -> StoreResult<Vec<Conversation>> {
        let sql = format!(
            "SELECT {} FROM conversations WHERE expires_at IS NOT NULL AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
            conversations::COLUMNS
        );
        self.all(sql, args![now, fetch as i64], conversations::conversation_from_row).await
    }

    async fn expired_files(&self, now: Timestamp, fetch: usize) -> StoreResult<Vec<UploadFile>> {
        let sql = format!(
            "SELECT {} FROM upload_files WHERE expires_at IS NOT NULL AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
            files::COLUMNS
        );
        self.all(sql, args![now, fetch as i64], files::file_from_row).await
    }

    async fn count_expired(&self, now: Timestamp) -> StoreResult<Expired> {
        let sql = "SELECT (SELECT COUNT(*) FROM conversations WHERE expires_at IS NOT NULL AND expires_at <= ?1),
                          (SELECT COUNT(*) FROM upload_files WHERE expires_at IS NOT NULL AND expires_at <= ?1),
                          (SELECT COALESCE(SUM(size), 0) FROM upload_files WHERE expires_at IS NOT NULL AND expires_at <= ?1)";
        let counted = self.one(sql.into(), args![now], |row| {
            let count = |i: usize| row.get::<_, i64>(i).map(|n| n.max(0) as u64);
            Ok(Expired { conversations: count(0)?, files: count(1)?, file_bytes: count(2)? })
        });
        Ok(counted.await?.unwrap_or_default())
    }
}
