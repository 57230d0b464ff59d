//! The table's key layout: every partition and sort key string, built in one place.
//!
//! One partition per kind of collection, so every Query reads one kind only.

use std::collections::HashMap;

use colloquy_core::domain::{
    AnnotationId, AppId, ConversationId, EndUserId, FeedbackId, FileId, JobId, KeyHash, MessageId, Owner, TaskId,
    Timestamp, UserRef, VariableId,
};

use super::Item;
use super::codec::s;

/// Running tasks are spread over this many partitions: few enough for start-up recovery to
/// read them all, enough that their stop polls (10 reads a second each) stay far below a
/// partition's throughput.
pub(super) const TASK_SHARDS: u128 = 64;

/// The key attributes of an item.
pub(super) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("PK".to_owned(), s(pk)), ("SK".to_owned(), s(sk))])
}

/// A timestamp as a fixed-width, order-preserving string (negative values sort first).
pub(super) fn order(at: Timestamp) -> String {
    format!("{:020}", (i128::from(at.micros()) + (1_i128 << 63)) as u64)
}

pub(super) const APP_PK: &str = "APPS";
/// The sort-key prefix of apps in their partition.
pub(super) const APP_PREFIX: &str = "APP#";
pub(super) fn app_sk(id: AppId) -> String {
    format!("{APP_PREFIX}{id}")
}

/// An app's list of its keys (by hash).
pub(super) fn app_keys_pk(app: AppId) -> String {
    format!("APPKEYS#{app}")
}

pub(super) fn key_pk(hash: &KeyHash) -> String {
    format!("KEY#{}", hash.as_str())
}
pub(super) const KEY_SK: &str = "#KEY";

pub(super) fn end_user_pk(app: AppId, user: &UserRef) -> String {
    format!("EU#{app}#{}", user.as_str())
}
pub(super) const END_USER_SK: &str = "#EU";

/// An end user's conversations.
pub(super) fn owner_pk(owner: Owner) -> String {
    format!("OWN#{}#{}", owner.app_id, owner.end_user_id)
}
/// The sort-key prefix of conversations (also how a stream consumer recognises one).
pub(super) const CONVERSATION_PREFIX: &str = "CONV#";
pub(super) fn conversation_sk(id: ConversationId) -> String {
    format!("{CONVERSATION_PREFIX}{id}")
}
/// One of an end user's conversation lists beyond the main one (archived, pinned, one per
/// metadata pair: `ConversationList::key`), holding a copy of each conversation in it.
pub(super) fn list_pk(owner: Owner, list: &str) -> String {
    format!("LIST#{}#{}#{list}", owner.app_id, owner.end_user_id)
}
/// A conversation's copy in a list (not `CONV#`: a stream consumer must not take it for one).
pub(super) fn list_sk(id: ConversationId) -> String {
    format!("LC#{id}")
}
/// A conversation's sort key in a local secondary index: by `at`, then by id.
pub(super) fn conversation_index_sk(at: Timestamp, id: ConversationId) -> String {
    format!("{}#{id}", order(at))
}

/// The app-wide index of conversations (`GSI1`) spreads each app over this many partitions,
/// so that one busy app never makes a hot partition: a message changes its conversation's
/// index entry about three times (its count, then `updated_at`, which moves the entry: a
/// delete and a put), so 10,000 messages a second for one app are ~30,000 index writes a
/// second, ~470 per shard, under the ~1,000 a partition takes. A listing reads every shard.
pub(super) const APP_CONVERSATION_SHARDS: u128 = 64;

/// An app's shard of the app-wide conversation index, chosen by the conversation's id (the
/// random low bits of a UUIDv7).
pub(super) fn app_conversations_pk(app: AppId, shard: u128) -> String {
    format!("APPCONV#{app}#{shard:02}")
}
pub(super) fn app_conversation_shard_pk(app: AppId, id: ConversationId) -> String {
    app_conversations_pk(app, id.as_uuid().as_u128() % APP_CONVERSATION_SHARDS)
}

/// A conversation's pointer: whose it is, to find it by id alone (operators do).
pub(super) fn conversation_pointer_pk(id: ConversationId) -> String {
    format!("CPTR#{id}")
}
pub(super) const CONVERSATION_POINTER_SK: &str = "#CONV";

/// A conversation's messages.
pub(super) fn messages_pk(conversation: ConversationId) -> String {
    format!("CONV#{conversation}")
}
pub(super) fn message_sk(at: Timestamp, id: MessageId) -> String {
    format!("MSG#{}#{id}", order(at))
}

/// A message's own partition: its pointer (where the message is) and its feedback.
pub(super) fn pointer_pk(id: MessageId) -> String {
    format!("MSG#{id}")
}
pub(super) const POINTER_SK: &str = "#MSG";
pub(super) fn feedback_sk(end_user: EndUserId) -> String {
    format!("FB#USER#{end_user}")
}
/// The operators' feedback on a message (one per message).
pub(super) const ADMIN_FEEDBACK_SK: &str = "FB#ADMIN";
/// Where a feedback is kept in its message's partition: the end user's, or the operators'.
pub(super) fn feedback_sk_of(end_user: Option<EndUserId>) -> String {
    end_user.map_or_else(|| ADMIN_FEEDBACK_SK.to_owned(), feedback_sk)
}

/// An app's feedback list, newest last.
pub(super) fn app_feedback_pk(app: AppId) -> String {
    format!("APPFB#{app}")
}
pub(super) fn app_feedback_sk(at: Timestamp, id: FeedbackId) -> String {
    format!("{}#{id}", order(at))
}

pub(super) fn variables_pk(conversation: ConversationId) -> String {
    format!("VARS#{conversation}")
}
pub(super) fn variable_sk(id: VariableId) -> String {
    format!("VAR#{id}")
}

/// An app's annotations and its annotation settings.
pub(super) fn annotations_pk(app: AppId) -> String {
    format!("ANN#{app}")
}
/// The sort-key prefix of annotations in their partition.
pub(super) const ANNOTATION_PREFIX: &str = "A#";
pub(super) fn annotation_sk(id: AnnotationId) -> String {
    format!("{ANNOTATION_PREFIX}{id}")
}
pub(super) const SETTINGS_SK: &str = "#SETTINGS";

pub(super) fn job_pk(app: AppId) -> String {
    format!("ANNJOB#{app}")
}
pub(super) fn job_sk(id: JobId) -> String {
    id.to_string()
}

/// One of the `TASK_SHARDS` partitions of running tasks.
pub(super) fn task_shard_pk(shard: u128) -> String {
    format!("TASKS#{shard:02}")
}
pub(super) fn task_pk(id: TaskId) -> String {
    task_shard_pk(id.as_uuid().as_u128() % TASK_SHARDS)
}
pub(super) fn task_sk(id: TaskId) -> String {
    format!("TASK#{id}")
}

/// An app's audit log.
pub(super) fn audit_pk(app: AppId) -> String {
    format!("AUDIT#{app}")
}

/// The requests an end user made with an `Idempotency-Key` (sort key: the key's hash).
pub(super) fn idempotency_pk(app: AppId, end_user: EndUserId) -> String {
    format!("IDEM#{app}#{end_user}")
}
pub(super) fn rate_pk(key: &str) -> String {
    format!("RL#{key}")
}
pub(super) fn rate_window_sk(window_start: i64) -> String {
    format!("W#{window_start}")
}

pub(super) fn file_pk(id: FileId) -> String {
    format!("FILE#{id}")
}
pub(super) const FILE_SK: &str = "#FILE";
/// A file's copy in its end user's partition (`owner_pk`).
pub(super) const OWNER_FILE_PREFIX: &str = "FILE#";
pub(super) fn owner_file_sk(id: FileId) -> String {
    format!("{OWNER_FILE_PREFIX}{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_sort_like_timestamps() {
        let stamps = [-5_i64, -1, 0, 1, 1_700_000_000_000_000, i64::MAX];
        let keys: Vec<String> = stamps.iter().map(|t| order(Timestamp::from_micros(*t))).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(keys.iter().all(|k| k.len() == 20));
    }
}
