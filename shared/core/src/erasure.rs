//! Erasing an end user: hiding their conversations at once, then the job that removes
//! everything of theirs, in an order that a crash at any point leaves resumable — files' bytes
//! before their metadata (so no stored object is ever left without a record that finds it),
//! conversations' dependents before the conversations (the store's own order), the end user
//! last (its id names everything else). Every step is idempotent: the same erasure run again,
//! after any failure, continues where the last run stopped. The API's erasure routes, the
//! erasure function on AWS and the local server all use these.

use std::sync::Arc;

use futures_util::future::try_join_all;

use crate::domain::{ErasureCounts, ErasureJob, ErasureStatus, Owner, UploadFile};
use crate::ports::{BlobStore, Clock, Store, StoreResult};

/// Conversations removed per step (each step saves the job's progress).
const ERASE_BATCH: usize = 25;
/// Files removed at once.
const AT_ONCE: usize = 16;
/// Conversations hidden per step.
const PAGE: usize = 100;

/// Deletes every live conversation of these end users now — on DynamoDB a tombstone, which
/// every read already skips — so nothing of theirs reads any more; returns how many it deleted
/// and their messages. The erasure then removes what is left.
pub async fn hide(store: &dyn Store, owners: &[Owner]) -> StoreResult<ErasureCounts> {
    let mut hidden = ErasureCounts::default();
    for &owner in owners {
        loop {
            let some = store.hide_conversations(owner, PAGE).await?;
            if some.conversations == 0 {
                break;
            }
            hidden.add(some);
        }
    }
    Ok(hidden)
}

/// Runs an erasure to its end and returns the job as it ended (saved: done, or failed with a
/// message fit for the caller; the cause is logged).
pub async fn run_erasure(
    store: Arc<dyn Store>,
    blobs: &dyn BlobStore,
    clock: &dyn Clock,
    mut job: ErasureJob,
) -> ErasureJob {
    job.status = ErasureStatus::Running;
    job.error = None;
    job.updated_at = clock.now();
    let outcome = async {
        store.save_erasure(&job).await?;
        erase(store.as_ref(), blobs, clock, &mut job).await
    }
    .await;
    match outcome {
        Ok(()) => job.finish(clock.now()),
        Err(error) => {
            tracing::warn!(erasure = %job.id, %error, "an erasure failed");
            job.status = ErasureStatus::Failed;
            job.error =
                Some("The erasure failed on a storage error. Send the same DELETE again to continue it.".into());
            job.updated_at = clock.now();
        }
    }
    if let Err(error) = store.save_erasure(&job).await {
        tracing::warn!(erasure = %job.id, %error, "could not save an erasure's outcome");
    }
    job
}

async fn erase(store: &dyn Store, blobs: &dyn BlobStore, clock: &dyn Clock, job: &mut ErasureJob) -> StoreResult<()> {
    let owners = Owner::of_each(job.app_id, &job.end_users);
    for &owner in &owners {
        loop {
            let (removed, live) = store.erase_conversations(owner, ERASE_BATCH).await?;
            if removed == 0 {
                break;
            }
            job.counts.add(live);
            job.updated_at = clock.now();
            store.save_erasure(job).await?;
        }
    }
    for &owner in &owners {
        let mut files = store.files_of(owner).await?;
        for unlisted in store.unlisted_files(owner).await? {
            if !files.iter().any(|f| f.id == unlisted.id) {
                files.push(unlisted);
            }
        }
        for some in files.chunks(AT_ONCE) {
            let removed = try_join_all(some.iter().map(|file| remove_file(store, blobs, file))).await?;
            job.counts.files += removed.into_iter().filter(|r| *r).count() as u64;
            job.updated_at = clock.now();
            store.save_erasure(job).await?;
        }
        job.counts.other += store.forget(&owner.feedback_rate_key()).await?;
    }
    if let Some(user) = job.user.clone() {
        job.counts.other += store.forget_end_user(job.app_id, &user, &job.end_users).await?;
    }
    Ok(())
}

/// The bytes first, then the record: a crash in between leaves a record whose bytes are gone
/// (a preview answers 404), never bytes that nothing finds.
async fn remove_file(store: &dyn Store, blobs: &dyn BlobStore, file: &UploadFile) -> StoreResult<bool> {
    blobs.delete_blob(&file.blob_key()).await?;
    store.delete_file(file.owner, file.id).await
}
