//! Retention: removing what has expired. Reads already hide an expired conversation or file
//! (its stored expiry is past); this removes them — locally the server's sweeper and
//! `colloquy purge --expired` run it, on AWS DynamoDB's TTL removes the items and the stream
//! purge the rest (this also runs there, from `colloquy purge --expired`, as a Scan).

use crate::domain::Timestamp;
use crate::ports::{BlobStore, Expired, Store, StoreResult};

/// Objects read per step.
const PAGE: usize = 100;

/// Removes every conversation (with its messages, feedback and variables) and every file (its
/// bytes first) that expired at or before `now`; with `dry_run`, only counts them.
pub async fn sweep_expired(
    store: &dyn Store,
    blobs: &dyn BlobStore,
    now: Timestamp,
    dry_run: bool,
) -> StoreResult<Expired> {
    if dry_run {
        return store.count_expired(now).await;
    }
    let mut removed = Expired::default();
    loop {
        let page = store.expired_conversations(now, PAGE).await?;
        let mut deleted = 0;
        for conversation in &page {
            if store.delete_conversation(conversation.owner, conversation.id).await? {
                deleted += 1;
            }
        }
        removed.conversations += deleted;
        // A page whose conversations were all deleted meanwhile (by their owners) ends it too:
        // the next run finds what is left.
        if page.len() < PAGE || deleted == 0 {
            break;
        }
    }
    loop {
        let page = store.expired_files(now, PAGE).await?;
        let mut deleted = 0;
        for file in &page {
            blobs.delete_blob(&file.blob_key()).await?;
            if store.delete_file(file.owner, file.id).await? {
                deleted += 1;
                removed.file_bytes += file.size;
            }
        }
        removed.files += deleted;
        if page.len() < PAGE || deleted == 0 {
            break;
        }
    }
    Ok(removed)
}
