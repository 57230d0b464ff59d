//! Erasures of one end user's data (a Colloquy extension): the job an erasure request starts,
//! and what it has removed so far.

use std::time::Duration;

use super::{AppId, EndUserId, ErasureId, ExportStatus, Timestamp, UserRef};

/// An erasure's state: pending, running, done or failed, as an export's.
pub type ErasureStatus = ExportStatus;

/// An erasure that has not written its progress for this long stopped (its process died); it
/// reads as failed, and the same request sent again continues it.
pub const ERASURE_STALE_AFTER: Duration = Duration::from_secs(120);

/// How long an erasure's job (its counts, by end user id) is kept.
pub const ERASURE_RETENTION_DAYS: u64 = 30;

/// What a stopped erasure reads as.
pub const ERASURE_INTERRUPTED: &str =
    "The erasure was interrupted: the process running it stopped. Send the same DELETE again to continue it.";

/// What an erasure removed, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErasureCounts {
    pub conversations: u64,
    pub messages: u64,
    pub files: u64,
    /// Everything else of the end user: the end user itself, activity marks, rate-limit windows.
    pub other: u64,
}

impl ErasureCounts {
    pub fn add(&mut self, other: ErasureCounts) {
        self.conversations += other.conversations;
        self.messages += other.messages;
        self.files += other.files;
        self.other += other.other;
    }
}

/// One erasure of an end user of an app: every conversation, message, feedback, variable, file
/// and mark of the end users `user` names (its derived id and, for one first seen before ids
/// were derived, its stored one), then the end users themselves. The job keeps the `user`
/// string only until it is done: afterwards it names the end users by id alone.
#[derive(Debug, Clone, PartialEq)]
pub struct ErasureJob {
    pub id: ErasureId,
    pub app_id: AppId,
    /// The `user` string, until the erasure is done.
    pub user: Option<UserRef>,
    /// The end users erased (never empty: the derived id is always there).
    pub end_users: Vec<EndUserId>,
    pub status: ErasureStatus,
    pub counts: ErasureCounts,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ErasureJob {
    /// A new, pending erasure of `user` (and the end users it names).
    pub fn new(id: ErasureId, app_id: AppId, user: UserRef, end_users: Vec<EndUserId>, now: Timestamp) -> Self {
        let mut end_users = end_users;
        let derived = EndUserId::derived(app_id, &user);
        if !end_users.contains(&derived) {
            end_users.insert(0, derived);
        }
        Self {
            id,
            app_id,
            user: Some(user),
            end_users,
            status: ErasureStatus::Pending,
            counts: ErasureCounts::default(),
            error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether the job is still kept at `now` ([`ERASURE_RETENTION_DAYS`]; a store may hold it
    /// a little longer, but it is not shown).
    pub fn is_kept(&self, now: Timestamp) -> bool {
        now.micros() - self.created_at.micros() < ERASURE_RETENTION_DAYS as i64 * 86_400 * 1_000_000
    }

    /// Whether this erasure is of `user` (the end user a request's path names).
    pub fn is_of(&self, user: &UserRef) -> bool {
        self.end_users.contains(&EndUserId::derived(self.app_id, user))
    }

    /// The job as it reads at `now`: one that stopped writing its progress reads as failed.
    pub fn as_of(mut self, now: Timestamp) -> Self {
        let stale = now.micros() - self.updated_at.micros() > ERASURE_STALE_AFTER.as_micros() as i64;
        if matches!(self.status, ErasureStatus::Pending | ErasureStatus::Running) && stale {
            self.status = ErasureStatus::Failed;
            self.error = Some(ERASURE_INTERRUPTED.into());
        }
        self
    }

    /// Done: the counts are final and the `user` string is forgotten.
    pub fn finish(&mut self, now: Timestamp) {
        self.status = ErasureStatus::Done;
        self.user = None;
        self.error = None;
        self.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(now: i64) -> ErasureJob {
        let app = AppId::from_uuid(uuid::Uuid::from_u128(1));
        let user = UserRef::parse("alice").unwrap();
        ErasureJob::new(ErasureId::from_uuid(uuid::Uuid::from_u128(2)), app, user, vec![], Timestamp::from_micros(now))
    }

    #[test]
    fn the_derived_end_user_is_always_erased_and_names_the_job() {
        let job = job(0);
        assert_eq!(job.end_users.len(), 1);
        assert!(job.is_of(&UserRef::parse("alice").unwrap()));
        assert!(!job.is_of(&UserRef::parse("bob").unwrap()));
    }

    #[test]
    fn a_stopped_erasure_reads_as_failed_and_a_finished_one_forgets_the_user() {
        let started = job(0);
        let later = Timestamp::from_micros(ERASURE_STALE_AFTER.as_micros() as i64 + 1);
        let read = started.clone().as_of(later);
        assert_eq!(read.status, ErasureStatus::Failed);
        assert_eq!(read.error.as_deref(), Some(ERASURE_INTERRUPTED));
        let mut done = started;
        done.finish(later);
        assert_eq!(done.user, None);
        assert_eq!(done.clone().as_of(Timestamp::from_micros(i64::MAX / 2)).status, ErasureStatus::Done);
    }
}
