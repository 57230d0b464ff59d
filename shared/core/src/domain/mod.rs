//! Domain types. Every type here is valid by construction: raw input is parsed once,
//! at the edge, into one of these, and the rest of the code never re-checks it.

mod annotation;
mod app;
mod audio;
mod conversation;
mod erasure;
mod export;
mod file;
mod idempotency;
mod ids;
mod key;
mod opaque;
mod operator;
mod organize;
mod paging;
mod retention;
mod stats;
mod time;
mod user;
mod variable;

pub use annotation::{Annotation, AnnotationJob, AnnotationSettings, JobStatus, ReplyAction, cosine_similarity};
pub use app::{
    App, AppConfig, AppMode, AppStatus, Feature, FileSizeLimits, ModelChoice, PROVIDERS, SiteConfig,
    VariableDefinition, fill_template,
};
pub use audio::{AUDIO_LIMIT_BYTES, AudioFormat, Pcm, Voice, repair_wav_sizes, split_for_speech};
pub use conversation::{
    ABANDONED_AFTER, ABANDONED_ERROR, Conversation, ConversationStatus, ConversationTitle, DEFAULT_CONVERSATION_NAME,
    Feedback, FeedbackSource, GENERATION_DEADLINE, Message, MessageStatus, RatedMessage, Rating,
};
pub use erasure::{
    ERASURE_INTERRUPTED, ERASURE_RETENTION_DAYS, ERASURE_STALE_AFTER, ErasureCounts, ErasureJob, ErasureStatus,
};
pub use export::{
    EXPORT_COLUMNS, EXPORT_INTERRUPTED, EXPORT_PROGRESS_EVERY, EXPORT_RETENTION_DAYS, EXPORT_STALE_AFTER, ExportFormat,
    ExportJob, ExportStatus, csv_fields, defuse_formula, export_row, jsonl_line,
};
pub use file::{DownloadHeaders, FileClass, FileNameError, UploadFile, check_filename, inline_type};
pub use idempotency::{
    IDEMPOTENCY_STALE_AFTER, IDEMPOTENCY_WINDOW, IdempotencyKey, IdempotencyScope, IdempotentOutcome,
    IdempotentRequest, MAX_IDEMPOTENCY_KEY, fingerprint,
};
pub use ids::{
    AnnotationId, AppId, AuditId, ConversationId, EndUserId, ErasureId, ExportId, FeedbackId, FileId, JobId, MessageId,
    TaskId, VariableId,
};
pub use key::{ApiKey, Grant, KeyHash, KeyRecord, KeyRole};
pub use opaque::OpaqueJson;
pub use operator::{
    AUDIT_RETENTION_DAYS, AuditAction, AuditEntry, ConversationFilter, ConversationSummary, FeedbackFilter,
    ListedFeedback, NameFilter, TimeRange, parse_time,
};
pub use organize::{ConversationList, ConversationQuery, ConversationState, Metadata};
pub use paging::{ConversationSort, Cursor, Limit, PageNumber, SortField};
pub use retention::{Retention, expired};
pub use stats::{DAY_SECONDS, Granularity, HOUR_SECONDS, StatsBucket, StatsRange, Tally, stats_buckets};
pub use time::Timestamp;
pub use user::{EndUser, Owner, UserRef};
pub use variable::{ConversationVariable, ValueType, VariableNameFilter, json_type_name, python_str};

/// Input that does not satisfy a domain rule. The message is shown to the API caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
