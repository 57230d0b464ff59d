//! The operator routes' bodies (Colloquy extensions): Dify's shapes with more fields, never fewer.

use serde::Serialize;

use super::{Conversation, Feedback, Message};
use crate::domain::{self, AuditId, EndUserId};

/// A row of `GET /v1/app/conversations`: Dify's conversation, whose it is and its counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppConversation {
    #[serde(flatten)]
    pub conversation: Conversation,
    #[serde(flatten)]
    pub state: super::conversation::ConversationState,
    pub end_user_id: EndUserId,
    /// The end user's `user` string as the app sent it.
    pub user: Option<String>,
    pub message_count: u64,
    pub last_message_at: Option<i64>,
    pub like_count: u64,
    pub dislike_count: u64,
}

impl From<domain::ConversationSummary> for AppConversation {
    fn from(s: domain::ConversationSummary) -> Self {
        Self {
            end_user_id: s.conversation.owner.end_user_id,
            state: (&s.conversation.state).into(),
            conversation: s.conversation.into(),
            user: s.user,
            message_count: s.message_count,
            last_message_at: s.last_message_at.map(domain::Timestamp::unix_seconds),
            like_count: s.like_count,
            dislike_count: s.dislike_count,
        }
    }
}

/// An entry of `GET /v1/app/audit-log`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: AuditId,
    pub action: &'static str,
    /// The key's shown start (`op-AbCd…`), or `cli`.
    pub actor: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub created_at: i64,
}

impl From<domain::AuditEntry> for AuditEntry {
    fn from(e: domain::AuditEntry) -> Self {
        Self {
            id: e.id,
            action: e.action.as_str(),
            actor: e.actor,
            target: e.target,
            detail: e.detail,
            created_at: e.at.unix_seconds(),
        }
    }
}

/// A message of `GET /v1/app/conversations/:id/messages`: Dify's message (its `feedback` is
/// the end user's rating, as in `/messages`) and every feedback on it, of either source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppMessage {
    #[serde(flatten)]
    pub message: Message,
    pub feedbacks: Vec<Feedback>,
}

/// `GET /v1/app/stats`: the app's usage per bucket (UTC), oldest first, every bucket of the
/// range listed (zeros where nothing happened).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub granularity: &'static str,
    /// Unix seconds: the first bucket's start and the last bucket's end.
    pub start: i64,
    pub end: i64,
    pub timezone: &'static str,
    pub data: Vec<StatsBucket>,
}

/// One bucket of [`Stats`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsBucket {
    /// Unix seconds.
    pub start: i64,
    pub messages: i64,
    /// Conversations created.
    pub conversations: i64,
    /// End users who sent a message.
    pub end_users: i64,
    /// End users' ratings of the bucket's messages.
    pub likes: i64,
    pub dislikes: i64,
    /// Answers stored (with their latency).
    pub answers: i64,
    /// Seconds, over the bucket's answers (`null` without answers).
    pub average_latency: Option<f64>,
    pub tokens: i64,
}

impl Stats {
    pub fn new(range: &domain::StatsRange, buckets: Vec<domain::StatsBucket>) -> Self {
        let data = buckets
            .into_iter()
            .map(|b| StatsBucket {
                start: b.start,
                messages: b.tally.messages,
                conversations: b.tally.conversations,
                end_users: b.tally.end_users,
                likes: b.tally.likes,
                dislikes: b.tally.dislikes,
                answers: b.tally.answers,
                average_latency: b.tally.average_latency(),
                tokens: b.tally.tokens,
            })
            .collect();
        Self { granularity: range.granularity.as_str(), start: range.from, end: range.until, timezone: "UTC", data }
    }
}

/// An export of `POST /v1/app/exports` and `GET /v1/app/exports/:id`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Export {
    pub id: domain::ExportId,
    /// `pending`, `running`, `done` or `failed`.
    pub status: &'static str,
    pub format: &'static str,
    /// The messages' creation times it covers, Unix seconds (`start` null: from the first).
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// Percent done.
    pub progress: u8,
    /// Messages written so far.
    pub messages: u64,
    /// The file's size in bytes, once done.
    pub size: Option<u64>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Once done: a short-lived link to the file (S3), or this API's download route (which
    /// takes the operator key).
    pub download_url: Option<String>,
}

impl Export {
    pub fn new(job: &domain::ExportJob, download_url: Option<String>) -> Self {
        Self {
            id: job.id,
            status: job.status.as_str(),
            format: job.format.as_str(),
            start: job.range.from.map(|t| t.unix_seconds()),
            end: job.range.until.map(|t| t.unix_seconds()),
            progress: job.progress(),
            messages: job.exported,
            size: job.size,
            error: job.error.clone(),
            created_at: job.created_at.unix_seconds(),
            updated_at: job.updated_at.unix_seconds(),
            download_url,
        }
    }
}

/// An erasure of `DELETE /v1/end-users/:user` and `GET /v1/end-users/:user/erasures/:id`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Erasure {
    pub job_id: domain::ErasureId,
    /// `pending`, `running`, `done` or `failed`.
    pub status: &'static str,
    /// What it removed so far.
    pub conversations: u64,
    pub messages: u64,
    pub files: u64,
    pub other: u64,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&domain::ErasureJob> for Erasure {
    fn from(job: &domain::ErasureJob) -> Self {
        Self {
            job_id: job.id,
            status: job.status.as_str(),
            conversations: job.counts.conversations,
            messages: job.counts.messages,
            files: job.counts.files,
            other: job.counts.other,
            error: job.error.clone(),
            created_at: job.created_at.unix_seconds(),
            updated_at: job.updated_at.unix_seconds(),
        }
    }
}

/// A file's metadata in an end user's export (its bytes are not in the export: the preview
/// route reads them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportedFile {
    pub id: domain::FileId,
    pub name: String,
    pub size: u64,
    pub extension: String,
    pub mime_type: String,
    pub created_at: i64,
}

impl From<domain::UploadFile> for ExportedFile {
    fn from(file: domain::UploadFile) -> Self {
        Self {
            id: file.id,
            name: file.name,
            size: file.size,
            extension: file.extension,
            mime_type: file.mime_type,
            created_at: file.created_at.unix_seconds(),
        }
    }
}
