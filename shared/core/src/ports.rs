//! Ports: what the API layer needs from the outside world. Adapters (the embedded store,
//! DynamoDB, S3, Polly, Transcribe, Bedrock, ...) implement these and nothing else.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use uuid::Uuid;

use crate::domain::{
    Annotation, AnnotationId, AnnotationJob, AnnotationSettings, App, AppId, AudioFormat, AuditEntry, AuditId,
    Conversation, ConversationFilter, ConversationId, ConversationList, ConversationSort, ConversationSummary,
    ConversationVariable, Cursor, EndUser, EndUserId, ErasureCounts, ErasureId, ErasureJob, ExportId, ExportJob,
    Feedback, FeedbackFilter, FileId, Grant, Granularity, IdempotentRequest, JobId, KeyHash, KeyRecord, ListedFeedback,
    Message, MessageId, Owner, RatedMessage, Rating, Tally, TaskId, Timestamp, UploadFile, UserRef, VariableId,
    VariableNameFilter, Voice,
};

/// A storage failure. Callers never show its text to API clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Failed for now (a cut connection, a timeout, throttling, a service fault) even after
    /// the adapter's retries; the API answers 503 with `Retry-After`.
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// Refused for a reason retrying will not fix (a bug, a missing table, denied access).
    #[error("storage failed: {0}")]
    Failed(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("already exists: {0}")]
    Conflict(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Apps and their API keys (keys only as hashes).
#[async_trait]
pub trait AppStore: Send + Sync {
    /// Stores a new app together with its first key.
    async fn create_app(&self, app: &App, first_key: &KeyRecord) -> StoreResult<()>;
    /// Replaces an app's name, mode and configuration; false when it does not exist.
    async fn update_app(&self, app: &App) -> StoreResult<bool>;
    async fn app(&self, id: AppId) -> StoreResult<Option<App>>;
    async fn apps(&self) -> StoreResult<Vec<App>>;
    async fn add_key(&self, app: AppId, key: &KeyRecord) -> StoreResult<()>;
    /// The app a key belongs to and the key's role, if the key exists and is not revoked (and
    /// its app exists): one read, as every request that is not served from the key cache makes it.
    async fn app_for_key(&self, key: &KeyHash) -> StoreResult<Option<Grant>>;
    /// Records that a request used the key at `now` (written only when the stored time is
    /// older than [`KeyRecord::USE_RESOLUTION_SECONDS`], so concurrent first uses write once).
    async fn touch_key(&self, key: &KeyHash, now: Timestamp) -> StoreResult<()>;
    /// An app's keys (never the keys themselves), oldest first.
    async fn keys(&self, app: AppId) -> StoreResult<Vec<KeyRecord>>;
    /// Removes a key; false when it was unknown.
    async fn revoke_key(&self, key: &KeyHash) -> StoreResult<bool>;
}

/// End users, resolved per app from the caller's `user` string.
#[async_trait]
pub trait EndUserStore: Send + Sync {
    /// Returns the end user of `(app, user)`, creating it with `new` when absent.
    async fn end_user(&self, app: AppId, user: &UserRef, new: EndUser) -> StoreResult<EndUser>;
    /// The end user of `(app, user)` if it exists: a read, for routes that only read
    /// (strongly consistent, so a user created by a write just before is found).
    async fn find_end_user(&self, app: AppId, user: &UserRef) -> StoreResult<Option<EndUser>>;
}

/// Conversations. Every read is scoped by owner.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Stores a new conversation of `user` (its end user's `user` string, which operators
    /// list it by).
    async fn insert_conversation(&self, conversation: &Conversation, user: &UserRef) -> StoreResult<()>;
    async fn conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<Option<Conversation>>;
    /// Stores a copy of a conversation (a fork): the new conversation with its (finished)
    /// messages and its variables, readable only once whole, so a crash part-way leaves nothing
    /// that reads as a conversation. Its counters count the messages; the usage counters count
    /// the conversation, not the copied messages.
    async fn insert_fork(
        &self,
        conversation: &Conversation,
        user: &UserRef,
        messages: &[Message],
        variables: &[ConversationVariable],
    ) -> StoreResult<()>;
    /// Up to `fetch` conversations of `owner` in `list` (each list kept in order, so a page is
    /// one seek however deep) in `sort` order, strictly after `after` (sort timestamp, then id,
    /// so ties are neither skipped nor repeated).
    async fn conversations(
        &self,
        owner: Owner,
        sort: ConversationSort,
        list: &ConversationList,
        after: Option<Cursor<ConversationId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Conversation>>;
    /// Saves name, inputs, status, updated_at and expires_at of an owned conversation (its
    /// lists follow its new update time); false when gone. Its state is left as stored.
    async fn update_conversation(&self, conversation: &Conversation) -> StoreResult<bool>;
    /// Saves an owned conversation's state (metadata, pinned, archived) and moves it to the
    /// lists of that state; false when gone.
    async fn set_conversation_state(&self, conversation: &Conversation) -> StoreResult<bool>;
    /// Deletes a conversation with its messages, feedback, variables and file links.
    /// False when the owner has no such conversation.
    async fn delete_conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<bool>;
    /// Up to `fetch` live conversations of an app, whoever's they are, that pass `filter`: newest
    /// activity first (`updated_at`, then id, descending), strictly after `after`, each with its
    /// end user's `user` string and the counters its writes keep. A store may serve this from an
    /// index that lags writes by about a second (DynamoDB's app-wide index does).
    async fn app_conversations(
        &self,
        app: AppId,
        filter: &ConversationFilter,
        after: Option<Cursor<ConversationId>>,
        fetch: usize,
    ) -> StoreResult<Vec<ConversationSummary>>;
    /// A live conversation of an app found by its id alone (operators see every end user's),
    /// read consistently.
    async fn app_conversation(&self, app: AppId, id: ConversationId) -> StoreResult<Option<ConversationSummary>>;
}

/// Messages and their end-user feedback.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores a new message, only into a live conversation of its owner: false (and nothing
    /// written) when the conversation is gone. A message that is generating (`task_id`) is stored
    /// together with its task, so that the task can be stopped and, if its process dies, ended.
    /// An id that exists already is a [`StoreError::Conflict`].
    async fn insert_message(&self, message: &Message) -> StoreResult<bool>;
    /// Stores finished messages of one conversation (at most 20, none generating) all together
    /// or none: false (and nothing written) when the conversation is gone.
    async fn insert_messages(&self, messages: &[Message]) -> StoreResult<bool>;
    /// Removes messages of a live conversation with their pointers and the feedback of both
    /// sources on them (and its list entries), keeping the conversation's counters right. The
    /// caller gives them newest first, and they go in that order, so a removal cut short leaves
    /// a shorter thread whose counters match it. Returns how many it removed (it stops when the
    /// conversation is gone).
    async fn delete_messages(&self, conversation: &Conversation, messages: &[Message]) -> StoreResult<u64>;
    /// Saves the answer, status, error, files, metadata and generating state of a stored message;
    /// false (and nothing written) when the message or its conversation is gone.
    async fn update_message(&self, message: &Message) -> StoreResult<bool>;
    /// Stores that a message read as abandoned ([`Message::is_abandoned`]) failed, as
    /// [`Message::mark_abandoned`] does, unless its generation stored an outcome meanwhile
    /// (false then, or when the message is gone).
    async fn mark_abandoned(&self, message: &Message) -> StoreResult<bool>;
    /// A message of `owner`, found by id alone (feedback and suggestions carry no conversation).
    async fn message(&self, owner: Owner, id: MessageId) -> StoreResult<Option<Message>>;
    /// A message of a live conversation of `app`, whoever's it is (operators rate any).
    async fn app_message(&self, app: AppId, id: MessageId) -> StoreResult<Option<Message>>;
    /// A message of one conversation.
    async fn message_in(&self, conversation: ConversationId, id: MessageId) -> StoreResult<Option<Message>>;
    /// When a message of one conversation was created (where a page before it starts), without
    /// reading the message itself.
    async fn message_time(&self, conversation: ConversationId, id: MessageId) -> StoreResult<Option<Timestamp>>;
    /// Up to `fetch` messages of a conversation, newest first, strictly before `before`.
    async fn messages_before(
        &self,
        conversation: ConversationId,
        before: Option<Cursor<MessageId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Message>>;
    /// As [`messages_before`](Self::messages_before), each message with the rating its
    /// conversation's end user gave it and the ids of its replies (the messages whose parent it
    /// is, oldest first), read in the same request (a message page shows them).
    async fn rated_messages_before(
        &self,
        conversation: ConversationId,
        before: Option<Cursor<MessageId>>,
        fetch: usize,
    ) -> StoreResult<Vec<RatedMessage>>;
    /// The ids of a conversation's messages that have no parent (its first message, and every
    /// message sent again in its place), oldest first.
    async fn root_messages(&self, conversation: &Conversation) -> StoreResult<Vec<MessageId>>;
    /// The oldest message of a conversation.
    async fn first_message(&self, conversation: ConversationId) -> StoreResult<Option<Message>>;
    /// Up to `fetch` messages of a conversation, oldest first, strictly after `after` (exports
    /// read a conversation in the order it happened).
    async fn messages_after(
        &self,
        conversation: ConversationId,
        after: Option<Cursor<MessageId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Message>>;
}

/// Feedback on messages.
#[async_trait]
pub trait FeedbackStore: Send + Sync {
    /// The feedback an end user gave a message.
    async fn user_feedback(&self, owner: Owner, message: MessageId) -> StoreResult<Option<Feedback>>;
    /// The operators' feedback on a message of `app` (one per message, `from_source: admin`).
    async fn operator_feedback(&self, app: AppId, message: MessageId) -> StoreResult<Option<Feedback>>;
    /// Stores an end user's feedback on a message (or the operators', `from_end_user_id: None`,
    /// at most one per message, which changes the counts but not the end user's rating on the
    /// message): there is at most one per (message, end user)
    /// and one entry for it in the app's list, whatever requests race. When that end user's
    /// feedback exists already (even one saved an instant ago by a concurrent request), its
    /// rating, content and `updated_at` are replaced and its id and `created_at` kept. False
    /// (and nothing written) when the message's conversation is gone. `on` is the rated
    /// message, whose end-user rating (as [`rated_messages_before`](MessageStore::rated_messages_before)
    /// reads it) and its conversation's like and dislike counts change in the same write.
    /// `previous` is the rating of the end user's feedback as the caller read it (the store
    /// checks it, and reads again when a concurrent write changed it, so counts stay exact).
    async fn save_feedback(&self, feedback: &Feedback, previous: Option<Rating>, on: &Message) -> StoreResult<bool>;
    /// Removes an end user's feedback (and its entry in the app's list) from `on`, with the
    /// counts of its conversation; false (and nothing written) when the message is gone.
    async fn delete_feedback(&self, feedback: &Feedback, on: &Message) -> StoreResult<bool>;
    /// Every feedback (of either source) on these messages of `conversation`.
    async fn feedbacks_on(&self, conversation: &Conversation, messages: &[MessageId]) -> StoreResult<Vec<Feedback>>;
    /// The feedback of an app that passes `filter`, newest first (`created_at`, then id), with
    /// offset pagination, each with its message's query and answer. Feedback of deleted
    /// conversations is never listed.
    async fn listed_feedbacks(
        &self,
        app: AppId,
        filter: &FeedbackFilter,
        offset: u64,
        limit: u32,
    ) -> StoreResult<Vec<ListedFeedback>>;
    /// All feedback of an app, newest first, with offset pagination.
    async fn app_feedbacks(&self, app: AppId, offset: u64, limit: u32) -> StoreResult<Vec<Feedback>> {
        let listed = self.listed_feedbacks(app, &FeedbackFilter::default(), offset, limit).await?;
        Ok(listed.into_iter().map(|l| l.feedback).collect())
    }
}

/// Conversation variables.
#[async_trait]
pub trait VariableStore: Send + Sync {
    async fn insert_variable(&self, variable: &ConversationVariable) -> StoreResult<()>;
    /// Up to `fetch` variables of a conversation, oldest first, strictly after `after`,
    /// optionally filtered by name.
    async fn variables(
        &self,
        conversation: ConversationId,
        name: Option<&VariableNameFilter>,
        after: Option<Cursor<VariableId>>,
        fetch: usize,
    ) -> StoreResult<Vec<ConversationVariable>>;
    async fn variable(&self, conversation: ConversationId, id: VariableId)
    -> StoreResult<Option<ConversationVariable>>;
    async fn update_variable(&self, variable: &ConversationVariable) -> StoreResult<()>;
}

/// Fixed-window counters for rate limits.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one hit against `key` in the window starting at `window_start` and says whether
    /// it is within `limit`. A refused hit is not counted.
    async fn try_hit(&self, key: &str, window_start: i64, limit: u32) -> StoreResult<bool>;
    /// Uncounts one hit of `key` in that window (the write it allowed did not happen).
    async fn give_back(&self, key: &str, window_start: i64) -> StoreResult<()>;
    /// Removes every window of `key` (an erased end user's); returns how many there were.
    async fn forget(&self, key: &str) -> StoreResult<u64>;
}

/// Q&A annotations, their reply settings and enable/disable jobs. Scoped by app.
#[async_trait]
pub trait AnnotationStore: Send + Sync {
    async fn insert_annotation(&self, annotation: &Annotation) -> StoreResult<()>;
    async fn annotation(&self, app: AppId, id: AnnotationId) -> StoreResult<Option<Annotation>>;
    /// Saves question, answer and embedding; false when it does not exist.
    async fn update_annotation(&self, annotation: &Annotation) -> StoreResult<bool>;
    async fn delete_annotation(&self, app: AppId, id: AnnotationId) -> StoreResult<bool>;
    /// A page of annotations, newest first, optionally filtered by a case-insensitive
    /// substring of question or answer; with the total number of matches.
    async fn annotations(
        &self,
        app: AppId,
        keyword: Option<&str>,
        offset: u64,
        limit: u32,
    ) -> StoreResult<(Vec<Annotation>, u64)>;
    /// Every annotation of an app, for matching a query.
    async fn all_annotations(&self, app: AppId) -> StoreResult<Vec<Annotation>>;
    /// Counts one reply given from an annotation.
    async fn record_annotation_hit(&self, app: AppId, id: AnnotationId) -> StoreResult<()>;
    /// The reply settings; `None` when annotation reply is disabled.
    async fn annotation_settings(&self, app: AppId) -> StoreResult<Option<AnnotationSettings>>;
    async fn save_annotation_settings(&self, app: AppId, settings: Option<&AnnotationSettings>) -> StoreResult<()>;
    async fn save_job(&self, job: &AnnotationJob) -> StoreResult<()>;
    async fn job(&self, app: AppId, id: JobId) -> StoreResult<Option<AnnotationJob>>;
}

/// Uploaded files' metadata (their bytes are in the blob store).
#[async_trait]
pub trait FileStore: Send + Sync {
    async fn insert_file(&self, file: &UploadFile) -> StoreResult<()>;
    /// A file of `owner` (another end user's or app's file is not found).
    async fn file(&self, owner: Owner, id: FileId) -> StoreResult<Option<UploadFile>>;
    /// Every file of an end user, oldest first (what an erasure removes and an end user's
    /// export lists).
    async fn files_of(&self, owner: Owner) -> StoreResult<Vec<UploadFile>>;
    /// Removes a file's metadata (its bytes are the caller's to delete first); false when the
    /// owner has no such file.
    async fn delete_file(&self, owner: Owner, id: FileId) -> StoreResult<bool>;
}

/// Running chat generations, so that their owner can stop them (from any instance). A task is
/// stored with its message ([`MessageStore::insert_message`]).
#[async_trait]
pub trait TaskControl: Send + Sync {
    /// Asks the task to stop; does nothing for an unknown task or another owner's.
    async fn request_stop(&self, task: TaskId, owner: Owner) -> StoreResult<()>;
    async fn stop_requested(&self, task: TaskId) -> StoreResult<bool>;
    async fn finish_task(&self, task: TaskId) -> StoreResult<()>;
    /// Ends the generations that cannot be running any more at `now` (their message is older
    /// than [`crate::domain::ABANDONED_AFTER`]; their process died): marks their messages
    /// failed as [`Message::mark_abandoned`] does and removes their tasks. Returns how many
    /// messages it marked. Run at start-up; reads do the same lazily, message by message.
    async fn end_abandoned(&self, now: Timestamp) -> StoreResult<usize>;
}

/// The audit log of what operators do, per app, newest first (by id: ids are UUIDv7, so in
/// the order they were made, to the millisecond across processes); entries expire after
/// [`crate::domain::AUDIT_RETENTION_DAYS`] (a store may keep an expired entry a little longer,
/// but never lists it).
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn record(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// Up to `fetch` unexpired entries of an app at `now`, newest first, strictly before `before`.
    async fn audit_entries(
        &self,
        app: AppId,
        before: Option<AuditId>,
        fetch: usize,
        now: Timestamp,
    ) -> StoreResult<Vec<AuditEntry>>;
}

/// An app's usage counters (`domain::stats`), kept by the writes of the other ports: a new
/// conversation, a new message (and its end user's first message of an hour and of a day), a
/// stored answer (the first outcome stored for a message that was generating), an end user's
/// rating (in the rated message's hour). Counters of one bucket may be spread over several
/// items; this sums them.
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// The counters of the buckets of `granularity` that start in `[from, until)` (Unix
    /// seconds) and have any, by start. Day buckets hold only `end_users` (a day's other
    /// counts are the sums of its hours).
    async fn tallies(
        &self,
        app: AppId,
        granularity: Granularity,
        from: i64,
        until: i64,
    ) -> StoreResult<Vec<(i64, Tally)>>;
}

/// Exports of an app's messages: the jobs (their files are in the blob store). A store keeps
/// a job at least [`crate::domain::EXPORT_RETENTION_DAYS`] days.
#[async_trait]
pub trait ExportStore: Send + Sync {
    /// Stores a new export, or saves an existing one's status, progress, size and error.
    async fn save_export(&self, job: &ExportJob) -> StoreResult<()>;
    async fn export(&self, app: AppId, id: ExportId) -> StoreResult<Option<ExportJob>>;
}

/// Erasures of end users: the jobs, and the removals only an erasure makes.
#[async_trait]
pub trait ErasureStore: Send + Sync {
    /// Stores a new erasure, or saves an existing one's status, counts and error.
    async fn save_erasure(&self, job: &ErasureJob) -> StoreResult<()>;
    async fn erasure(&self, app: AppId, id: ErasureId) -> StoreResult<Option<ErasureJob>>;
    /// Deletes up to `up_to` live conversations of `owner` so that no read finds them any more
    /// (a tombstone, or the rows themselves), and returns how many it deleted with how many
    /// messages they had; no conversation: none is live.
    async fn hide_conversations(&self, owner: Owner, up_to: usize) -> StoreResult<ErasureCounts>;
    /// Removes up to `up_to` conversations of `owner`, live or already deleted, with everything
    /// that depends on them (messages, every feedback on them and its entry in the app's list,
    /// variables, pointers, index entries), now rather than by a later purge. Returns how many
    /// it removed (0: none is left) and, of those, the ones that were live with their messages
    /// (the hidden ones were counted when hidden). Run again after a failure, it goes on.
    async fn erase_conversations(&self, owner: Owner, up_to: usize) -> StoreResult<(u64, ErasureCounts)>;
    /// Removes the end user `user` of `app` (stored as `ids`) and what is left of theirs once
    /// their conversations and files are gone: activity marks, running tasks, the end user
    /// items themselves; and forgets the `user` string in the app's earlier erasures of them.
    /// Returns how many objects it removed.
    async fn forget_end_user(&self, app: AppId, user: &UserRef, ids: &[EndUserId]) -> StoreResult<u64>;
    /// Files of `owner` that [`FileStore::files_of`] does not list (stored before a store
    /// listed files by owner), found the slow way; empty where every file is listed.
    async fn unlisted_files(&self, owner: Owner) -> StoreResult<Vec<UploadFile>>;
}

/// Requests made with an `Idempotency-Key`: one record per (app, end user, key), kept until
/// it expires (24 hours).
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Records `request` as running unless its scope holds a record that is unexpired at `now`
    /// and finished or still running (not stale): `None` when it was recorded (the caller does
    /// the work), else the record found. Atomic: of concurrent claims, one is recorded.
    async fn claim_request(
        &self,
        request: &IdempotentRequest,
        now: Timestamp,
    ) -> StoreResult<Option<IdempotentRequest>>;
    /// Stores `request`'s outcome, if its claim still holds the scope.
    async fn finish_request(&self, request: &IdempotentRequest) -> StoreResult<()>;
    /// Removes `request`'s record, if its claim still holds the scope (the work failed in a way
    /// a retry may not: the key is free again).
    async fn release_request(&self, request: &IdempotentRequest) -> StoreResult<()>;
}

/// What has expired (apps' retention), across apps: what the sweeper removes where the store
/// does not remove it itself (DynamoDB's TTL does on AWS).
#[async_trait]
pub trait ExpiryStore: Send + Sync {
    /// Up to `fetch` live conversations, of any app, that expired at or before `now`.
    async fn expired_conversations(&self, now: Timestamp, fetch: usize) -> StoreResult<Vec<Conversation>>;
    /// Up to `fetch` uploaded files, of any app, that expired at or before `now`.
    async fn expired_files(&self, now: Timestamp, fetch: usize) -> StoreResult<Vec<UploadFile>>;
    /// How many of each there are, and the files' bytes (what a dry run reports).
    async fn count_expired(&self, now: Timestamp) -> StoreResult<Expired>;
}

/// What expired (or was removed for it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Expired {
    pub conversations: u64,
    pub files: u64,
    pub file_bytes: u64,
}

/// What a store holds of an app, or of some of its end users, counted object by object
/// without trusting any index (`colloquy inspect`, and the tests' proof that an erasure or an
/// expiry left nothing).
#[async_trait]
pub trait Inventory: Send + Sync {
    /// Counts by kind (a table, or a kind of item) of what belongs to `app` or, with
    /// `end_users`, to those end users of it (their conversations, messages, feedback on their
    /// messages of either source, variables, files, activity marks, the end users
    /// themselves); and the ids of the files counted, whose bytes are in the blob store.
    async fn inventory(&self, app: AppId, end_users: Option<&[EndUserId]>) -> StoreResult<Holdings>;
}

/// What [`Inventory::inventory`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    pub counts: std::collections::BTreeMap<String, u64>,
    pub files: Vec<FileId>,
}

impl Holdings {
    pub fn add(&mut self, kind: &str, count: u64) {
        if count > 0 {
            *self.counts.entry(kind.to_owned()).or_default() += count;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Everything the API needs from storage.
pub trait Store:
    AppStore
    + EndUserStore
    + ConversationStore
    + MessageStore
    + FeedbackStore
    + VariableStore
    + RateLimiter
    + AnnotationStore
    + TaskControl
    + FileStore
    + AuditLog
    + StatsStore
    + ExportStore
    + ErasureStore
    + ExpiryStore
    + Inventory
    + IdempotencyStore
{
}

impl<T> Store for T where
    T: AppStore
        + EndUserStore
        + ConversationStore
        + MessageStore
        + FeedbackStore
        + VariableStore
        + RateLimiter
        + AnnotationStore
        + TaskControl
        + FileStore
        + AuditLog
        + StatsStore
        + ExportStore
        + ErasureStore
        + ExpiryStore
        + Inventory
        + IdempotencyStore
{
}

/// A byte range of a blob, inclusive at both ends (`end: None` reads to the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRange {
    pub start: u64,
    pub end: Option<u64>,
}

/// Bytes of a blob (all of it, or the requested range) with what is known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Blob {
    pub bytes: Bytes,
    pub content_type: String,
    /// The size of the whole blob, whatever range was read.
    pub total_size: u64,
}

/// A blob read as it arrives.
pub type BlobStream = Pin<Box<dyn Stream<Item = StoreResult<Bytes>> + Send>>;

/// Binary objects (uploaded files, synthesized audio).
#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn put_blob(&self, key: &str, content_type: &str, bytes: Bytes) -> StoreResult<()>;
    /// Stores a blob as its chunks arrive, holding at most a bounded buffer (not the blob) in
    /// memory, and returns its size. The blob appears under `key` only once complete: when
    /// `body` fails (its error is returned) or the store does, nothing readable is left.
    async fn put_blob_stream(&self, key: &str, content_type: &str, body: BlobStream) -> StoreResult<u64>;
    /// The blob, or the given range of it; `None` when there is no such blob.
    async fn get_blob(&self, key: &str, range: Option<BlobRange>) -> StoreResult<Option<Blob>>;
    /// The blob as a stream, with its content type and size.
    async fn stream_blob(&self, key: &str) -> StoreResult<Option<(BlobStream, String, u64)>>;
    /// A URL that reads the blob directly for `expires`, answered with `headers` whatever the
    /// blob was stored with; `None` when the store has no URLs of its own (the API's preview
    /// route serves the blob instead).
    async fn presign_get(
        &self,
        key: &str,
        expires: std::time::Duration,
        headers: &crate::domain::DownloadHeaders,
    ) -> StoreResult<Option<String>>;
    /// A URL that writes the blob directly for `expires`, signed for exactly `size` bytes of
    /// `content_type` (the store refuses other lengths); `None` as for `presign_get`.
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        expires: std::time::Duration,
    ) -> StoreResult<Option<String>>;
    /// Deletes the blob; deleting a missing blob is not an error.
    async fn delete_blob(&self, key: &str) -> StoreResult<()>;
    /// How many blobs have keys starting with `prefix` (listed, not estimated).
    async fn count_blobs(&self, prefix: &str) -> StoreResult<u64>;
}

/// A failure of a speech or language model provider, classified the way Dify reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Missing or refused credentials, or a provider that is not set up.
    #[error("provider is not initialized: {0}")]
    NotInitialized(String),
    /// The provider throttled us.
    #[error("provider rate limit: {0}")]
    RateLimited(String),
    /// Anything else: timeouts, bad requests, server errors, unreadable answers.
    #[error("provider request failed: {0}")]
    Failed(String),
    /// Input this provider cannot read (e.g. a format the local recogniser does not decode).
    #[error("unsupported input: {0}")]
    UnsupportedInput(String),
}

/// Audio a synthesizer produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechAudio {
    pub bytes: Bytes,
    /// `audio/mpeg` (pieces of which may be joined) or `audio/wav`.
    pub content_type: &'static str,
}

/// Text to speech.
#[async_trait]
pub trait SpeechSynthesizer: Send + Sync {
    /// The provider's name, for logs.
    fn name(&self) -> &'static str;
    /// The voices a request may name; the first is the default.
    async fn voices(&self) -> Result<Vec<Voice>, ProviderError>;
    /// The longest text one call takes, in characters. Longer texts are cut at sentence ends
    /// and the pieces' audio joined, so a provider with a finite limit must answer MP3.
    fn max_chars(&self) -> usize;
    /// Speech for `text` in `voice` (one of [`SpeechSynthesizer::voices`]).
    async fn synthesize(&self, text: &str, voice: &str) -> Result<SpeechAudio, ProviderError>;
}

/// Speech to text.
#[async_trait]
pub trait Transcriber: Send + Sync {
    /// The provider's name, for logs.
    fn name(&self) -> &'static str;
    /// The words spoken in `audio`.
    async fn transcribe(&self, audio: Bytes, format: AudioFormat) -> Result<String, ProviderError>;
    /// The words spoken in audio already in the blob store under `key`, for providers that read
    /// it there themselves (Amazon Transcribe reads S3); `None` when the caller must pass the bytes.
    async fn transcribe_stored(&self, _key: &str, _format: AudioFormat) -> Option<Result<String, ProviderError>> {
        None
    }
}

/// Who said a turn of a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    User,
    Assistant,
}

/// What a model request is for; providers may use it for logging, and the built-in `echo`
/// provider uses it to answer in the shape each task expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Chat,
    ConversationTitle,
    SuggestedQuestions,
}

/// A request to a chat language model.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    pub purpose: Purpose,
    /// Overrides the provider's configured model.
    pub model: Option<String>,
    pub system: Option<String>,
    pub turns: Vec<(Speaker, String)>,
    pub max_tokens: u32,
    pub temperature: f32,
}

/// Token counts of one model call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmAnswer {
    pub text: String,
    pub usage: Usage,
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    /// More answer text.
    Delta(String),
    /// The answer is complete; usage as the provider reported it.
    Done(Usage),
}

/// A streamed answer. It ends after [`LlmEvent::Done`] or an error.
pub type LlmStream = Pin<Box<dyn Stream<Item = Result<LlmEvent, ProviderError>> + Send>>;

/// A chat language model.
#[async_trait]
pub trait Llm: Send + Sync {
    /// The provider's name as configured (`echo`, `openai`, `bedrock`).
    fn provider(&self) -> &'static str;
    /// The whole answer at once.
    async fn complete(&self, request: LlmRequest) -> Result<LlmAnswer, ProviderError>;
    /// The answer as it is produced. Errors before the first piece are returned here, so
    /// they can still become an HTTP status.
    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, ProviderError>;
}

/// Text embeddings for similarity search (annotation reply).
#[async_trait]
pub trait Embedder: Send + Sync {
    /// One vector per text, in order. `model` overrides the configured embedding model.
    async fn embed(&self, texts: &[String], model: Option<&str>) -> Result<Vec<Vec<f32>>, ProviderError>;
}

/// The current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// New ids for stored objects.
pub trait IdGenerator: Send + Sync {
    fn new_id(&self) -> Uuid;
}
