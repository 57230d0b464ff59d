//! Conversations, their messages and variables, and feedback on messages.

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::{
    self, AppId, ConversationId, ConversationStatus, EndUserId, FeedbackId, FileId, MessageId, MessageStatus, Rating,
    UploadFile, VariableId, python_str,
};

/// Dify's `SimpleConversation`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub name: String,
    pub inputs: Map<String, Value>,
    pub status: ConversationStatus,
    pub introduction: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A conversation as Colloquy's own routes show it: Dify's fields, then its metadata, pinned
/// and archived (Dify's routes keep Dify's shape exactly).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub conversation: Conversation,
    #[serde(flatten)]
    pub state: ConversationState,
}

/// What `POST /conversations/:id/messages` added.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddedMessages {
    pub conversation_id: ConversationId,
    pub message_ids: Vec<MessageId>,
}

/// A conversation's metadata, pinned and archived.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationState {
    pub metadata: Map<String, Value>,
    pub pinned: bool,
    pub archived: bool,
}

impl From<&domain::ConversationState> for ConversationState {
    fn from(state: &domain::ConversationState) -> Self {
        Self { metadata: state.metadata.to_json(), pinned: state.pinned, archived: state.archived }
    }
}

impl From<domain::Conversation> for ConversationDetail {
    fn from(c: domain::Conversation) -> Self {
        Self { state: (&c.state).into(), conversation: c.into() }
    }
}

impl From<domain::Conversation> for Conversation {
    fn from(c: domain::Conversation) -> Self {
        Self {
            id: c.id,
            name: c.name,
            inputs: c.inputs,
            status: c.status,
            introduction: c.introduction,
            created_at: c.created_at.unix_seconds(),
            updated_at: c.updated_at.unix_seconds(),
        }
    }
}

/// The end user's own rating of a message, `{"rating": ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rated {
    pub rating: Rating,
}

/// Dify's `MessageListItem`. `message_files`, `retriever_resources` and `agent_thoughts` are
/// sent as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub parent_message_id: Option<MessageId>,
    pub inputs: Map<String, Value>,
    pub query: String,
    pub answer: String,
    pub message_files: Vec<Value>,
    pub feedback: Option<Rated>,
    pub retriever_resources: Vec<Value>,
    pub agent_thoughts: Vec<Value>,
    pub status: MessageStatus,
    pub error: Option<String>,
    pub created_at: i64,
}

impl Message {
    /// A message with the end user's own rating of it, if any.
    pub fn new(m: domain::Message, rating: Option<Rating>) -> Self {
        Self {
            id: m.id,
            conversation_id: m.conversation_id,
            parent_message_id: m.parent_message_id,
            inputs: m.inputs,
            query: m.query,
            answer: m.answer,
            message_files: m.message_files,
            feedback: rating.map(|rating| Rated { rating }),
            retriever_resources: m.retriever_resources,
            agent_thoughts: m.agent_thoughts,
            status: m.status,
            error: m.error,
            created_at: m.created_at.unix_seconds(),
        }
    }
}

/// A message of `GET /messages`: Dify's item with its place in the conversation's tree (a
/// Colloquy extension): the ids of the messages sharing its parent, itself among them, oldest
/// first, and how many they are (1 where nothing was sent again).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreadMessage {
    #[serde(flatten)]
    pub message: Message,
    pub sibling_ids: Vec<MessageId>,
    pub sibling_count: usize,
}

impl ThreadMessage {
    pub fn new(message: Message, sibling_ids: Vec<MessageId>) -> Self {
        Self { message, sibling_count: sibling_ids.len(), sibling_ids }
    }
}

/// How a message file reached the chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferMethod {
    /// A link the caller sent (recorded, never fetched).
    RemoteUrl,
    /// A file the caller uploaded before.
    LocalFile,
}

/// A file sent with a chat query, as stored with the message and listed with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageFile {
    pub id: Uuid,
    pub filename: String,
    /// `image`, `document`, `audio`, `video` or what the caller said of a link.
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    pub mime_type: Option<String>,
    /// In bytes; -1 for a link (its size is not known).
    pub size: i64,
    pub transfer_method: TransferMethod,
    /// Always `user`: only end users send files here.
    pub belongs_to: &'static str,
    pub upload_file_id: Option<FileId>,
}

impl MessageFile {
    /// A link; its name is the last segment of its path.
    pub fn remote(id: Uuid, kind: &str, url: &str) -> Self {
        let filename = url.rsplit('/').next().unwrap_or("").split('?').next().unwrap_or("");
        Self {
            id,
            filename: filename.to_owned(),
            kind: kind.to_owned(),
            url: url.to_owned(),
            mime_type: None,
            size: -1,
            transfer_method: TransferMethod::RemoteUrl,
            belongs_to: "user",
            upload_file_id: None,
        }
    }

    /// One of the caller's uploads, fetched from `url`.
    pub fn local(id: Uuid, file: UploadFile, url: String) -> Self {
        Self {
            id,
            kind: file.class().as_str().to_owned(),
            filename: file.name,
            url,
            mime_type: Some(file.mime_type),
            size: i64::try_from(file.size).unwrap_or(i64::MAX),
            transfer_method: TransferMethod::LocalFile,
            belongs_to: "user",
            upload_file_id: Some(file.id),
        }
    }
}

/// A conversation variable; `value` is always a string (Python's `str()` of the value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variable {
    pub id: VariableId,
    pub name: String,
    pub value_type: &'static str,
    pub value: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<domain::ConversationVariable> for Variable {
    fn from(v: domain::ConversationVariable) -> Self {
        Self {
            id: v.id,
            value: python_str(&v.value),
            name: v.name,
            value_type: v.value_type.as_str(),
            description: v.description,
            created_at: v.created_at.unix_seconds(),
            updated_at: v.updated_at.unix_seconds(),
        }
    }
}

/// Dify's `MessageFeedback.to_dict()`: ISO timestamps without a zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feedback {
    pub id: FeedbackId,
    pub app_id: AppId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub rating: Rating,
    pub content: Option<String>,
    pub from_source: &'static str,
    pub from_end_user_id: Option<EndUserId>,
    /// Always `null`: operators' feedback has no account here.
    pub from_account_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<domain::Feedback> for Feedback {
    fn from(f: domain::Feedback) -> Self {
        Self {
            id: f.id,
            app_id: f.app_id,
            conversation_id: f.conversation_id,
            message_id: f.message_id,
            rating: f.rating,
            content: f.content,
            from_source: f.source.as_str(),
            from_end_user_id: f.from_end_user_id,
            from_account_id: None,
            created_at: f.created_at.iso_naive(),
            updated_at: f.updated_at.iso_naive(),
        }
    }
}

/// An item of `GET /app/feedbacks`: Dify's feedback and (our addition) the rated message's
/// query and answer (`null` when the message is gone).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListedFeedback {
    #[serde(flatten)]
    pub feedback: Feedback,
    pub query: Option<String>,
    pub answer: Option<String>,
}

impl From<domain::ListedFeedback> for ListedFeedback {
    fn from(l: domain::ListedFeedback) -> Self {
        Self { feedback: l.feedback.into(), query: l.query, answer: l.answer }
    }
}

/// `GET /app/feedbacks`: `{"data": [...]}`, without paging fields, as in Dify.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackList {
    pub data: Vec<ListedFeedback>,
}
