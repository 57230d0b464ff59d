//! The JSON bodies the API sends, one typed view per shape, in Dify's field names.
//!
//! Every response body is one of these structs, serialised as is: a view always sends every
//! one of its keys (`null` when a value is absent), so `openapi.yaml` can list exactly the keys
//! of each response, and a test checks each view against its schema there. Parts that are
//! free-form by nature (an app's configuration passed through, a conversation's `inputs`,
//! stored message files) stay `serde_json` values inside the typed view.
//!
//! Views are built from domain values by their constructors; their fields are public so that
//! tests can build any instance.

mod annotation;
mod app;
mod chat;
mod conversation;
mod file;
mod operator;

use serde::Serialize;

pub use annotation::{Annotation, AnnotationPage, ReplyJob, ReplyJobStatus};
pub use app::{AppInfo, AppMeta, AppParameters, AppSite, SystemParameters};
pub use chat::{AnnotationReply, ChatAnswer, MessageMetadata, StreamEvent, StreamEventBody, SuggestedQuestions, Usage};
pub use conversation::{
    AddedMessages, Conversation, ConversationDetail, Feedback, FeedbackList, ListedFeedback, Message, MessageFile,
    Rated, ThreadMessage, TransferMethod, Variable,
};
pub use file::{AudioText, UploadHeaders, UploadUrl, UploadedFile};
pub use operator::{AppConversation, AppMessage, AuditEntry, Erasure, Export, ExportedFile, Stats, StatsBucket};

use crate::api::error::ApiError;

/// The `result` of an action that succeeded (a failure is an [`ErrorBody`] instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
}

/// `{"result": "success"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Success {
    pub result: Outcome,
}

impl Success {
    pub const fn new() -> Self {
        Self { result: Outcome::Success }
    }
}

impl Default for Success {
    fn default() -> Self {
        Self::new()
    }
}

/// Dify's error body, `{"code", "message", "status"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// Dify's error code, such as `not_found` or `invalid_param`.
    pub code: &'static str,
    pub message: String,
    /// The HTTP status, repeated.
    pub status: u16,
}

impl ErrorBody {
    pub fn new(error: &ApiError) -> Self {
        let (status, code, message) = error.parts();
        Self { code, message, status: status.as_u16() }
    }
}

/// The `{limit, has_more, data}` envelope of cursor-paginated lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub limit: u32,
    pub has_more: bool,
    pub data: Vec<T>,
}

impl<T> Page<T> {
    pub fn new(limit: u32, has_more: bool, data: Vec<T>) -> Self {
        Self { limit, has_more, data }
    }
}

/// Splits a `limit + 1` probe into the page and `has_more`.
pub(crate) fn split_probe<T>(mut rows: Vec<T>, limit: u32) -> (Vec<T>, bool) {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    (rows, has_more)
}

/// A view as a JSON value, for the parts of a record that are stored as JSON (message files). Views have string keys only, so this does not fail in practice; if it
/// did, the failure is logged and `null` stored.
pub(crate) fn to_stored<T: Serialize>(view: &T) -> serde_json::Value {
    serde_json::to_value(view).unwrap_or_else(|error| {
        tracing::error!(%error, "a view could not be turned into JSON");
        serde_json::Value::Null
    })
}

#[cfg(test)]
mod tests;
