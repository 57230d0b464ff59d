//! Chat answers: the blocking answer, the streamed events, the metadata both carry, and the
//! suggested follow-up questions.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::{ErrorBody, Outcome};
use crate::domain::{AnnotationId, AppMode, ConversationId, MessageId, TaskId};
use crate::ports;

/// Dify's usage block of an answer. Prices are not tracked, so they are `"0"` (in USD).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub prompt_unit_price: &'static str,
    pub prompt_price_unit: &'static str,
    pub prompt_price: &'static str,
    pub completion_tokens: u32,
    pub completion_unit_price: &'static str,
    pub completion_price_unit: &'static str,
    pub completion_price: &'static str,
    pub total_tokens: u32,
    pub total_price: &'static str,
    pub currency: &'static str,
    /// Seconds from the request to the end of the answer.
    pub latency: f64,
}

impl Usage {
    pub fn new(usage: ports::Usage, latency: Duration) -> Self {
        const FREE: &str = "0";
        Self {
            prompt_tokens: usage.prompt_tokens,
            prompt_unit_price: FREE,
            prompt_price_unit: FREE,
            prompt_price: FREE,
            completion_tokens: usage.completion_tokens,
            completion_unit_price: FREE,
            completion_price_unit: FREE,
            completion_price: FREE,
            total_tokens: usage.prompt_tokens + usage.completion_tokens,
            total_price: FREE,
            currency: "USD",
            latency: latency.as_secs_f64(),
        }
    }
}

/// The annotation that answered a query, as recorded in the message's stored metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnnotationReply {
    pub id: AnnotationId,
    /// Always `null`: annotations here are not tied to an operator's account.
    pub account: Option<String>,
}

/// An answer's metadata: sent with the answer, and stored with the message (where it also
/// names the annotation that answered, if one did; the answer sent never does).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageMetadata {
    pub usage: Usage,
    /// Always empty: there is no knowledge retrieval.
    pub retriever_resources: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation_reply: Option<AnnotationReply>,
}

impl MessageMetadata {
    pub fn new(usage: Usage) -> Self {
        Self { usage, retriever_resources: Vec::new(), annotation_reply: None }
    }
}

/// The blocking answer of `POST /chat-messages`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename = "message")]
pub struct ChatAnswer {
    pub task_id: TaskId,
    pub id: MessageId,
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub mode: AppMode,
    pub answer: String,
    pub metadata: MessageMetadata,
    pub created_at: i64,
}

/// The JSON `data` of one streamed event: the fields every event repeats, then the event's own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamEvent {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub created_at: i64,
    #[serde(flatten)]
    pub body: StreamEventBody,
}

/// What one streamed event says, tagged by its `event`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StreamEventBody {
    /// A piece of the answer.
    Message {
        task_id: TaskId,
        id: MessageId,
        answer: String,
        /// Always `null` (no workflow variables are answered from).
        from_variable_selector: Option<Vec<String>>,
    },
    /// The answer is complete and stored.
    MessageEnd {
        task_id: TaskId,
        id: MessageId,
        metadata: MessageMetadata,
        /// Always `null` (answers carry no files).
        files: Option<Vec<Value>>,
    },
    /// The answer failed; nothing follows.
    Error {
        #[serde(flatten)]
        error: ErrorBody,
    },
}

/// `GET /messages/:id/suggested`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuggestedQuestions {
    pub result: Outcome,
    pub data: Vec<String>,
}

impl SuggestedQuestions {
    pub fn new(questions: Vec<String>) -> Self {
        Self { result: Outcome::Success, data: questions }
    }
}
