//! Reading a chat request: its fields, checked as Dify checks them, and its files.

use serde_json::{Map, Value};

use crate::api::error::ApiError;
use crate::api::input::{Body, parse_id};
use crate::api::views::{MessageFile, to_stored};
use crate::api::{Ctx, files};
use crate::domain::{AppConfig, ConversationId, Invalid, MessageId, Owner, UserRef};

/// What a new message replies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parent {
    /// The conversation's newest message (Dify's behaviour; none in a new conversation).
    Newest,
    /// Nothing: a new first message (sent as the nil UUID), a sibling of the first one.
    Root,
    /// This message of the conversation: a sibling of its replies (regenerate, edit).
    Message(MessageId),
}

/// A parsed chat request.
pub(super) struct ChatInput {
    pub inputs: Map<String, Value>,
    pub query: String,
    pub streaming: bool,
    pub conversation_id: Option<ConversationId>,
    /// The message files, as stored with the message (filled by [`user_files`]).
    pub files: Vec<Value>,
    pub auto_generate_name: bool,
    /// Our extension (`parent_message_id`, as Dify's own web API has it).
    pub parent: Parent,
}

impl ChatInput {
    pub fn parse(body: &Body) -> Result<Self, ApiError> {
        let inputs = match body.raw("inputs") {
            None => return Err(Invalid::new("inputs: Field required").into()),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(Invalid::new("inputs: Input should be a valid dictionary").into()),
        };
        let query = body.string("query")?.ok_or_else(|| Invalid::new("query: Field required"))?;
        if query.trim().is_empty() {
            return Err(Invalid::new("query is required").into());
        }
        let streaming = streaming(body)?;
        let conversation_id = match body.string("conversation_id")?.map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(raw.parse().map_err(|_| Invalid::new("conversation_id must be a valid UUID"))?),
        };
        let parent = match body.string("parent_message_id")?.map(str::trim) {
            None | Some("") => Parent::Newest,
            Some(raw) => match parse_id::<MessageId>("parent_message_id", raw)? {
                id if id.as_uuid().is_nil() => Parent::Root,
                id => Parent::Message(id),
            },
        };
        if matches!(parent, Parent::Message(_)) && conversation_id.is_none() {
            // A new conversation has no message to reply to.
            return Err(ApiError::NotFound("Message Not Exists."));
        }
        Ok(Self {
            inputs,
            query: query.to_owned(),
            streaming,
            conversation_id,
            files: Vec::new(),
            auto_generate_name: body.boolean("auto_generate_name", true)?,
            parent,
        })
    }
}

/// `response_mode`: whether the answer streams.
pub(super) fn streaming(body: &Body) -> Result<bool, ApiError> {
    match body.string("response_mode")? {
        None | Some("blocking") => Ok(false),
        Some("streaming") => Ok(true),
        Some(other) => {
            Err(Invalid(format!("response_mode: Input should be 'blocking' or 'streaming', got '{other}'")).into())
        }
    }
}

/// The `files` of a chat request as message files: remote URLs are recorded (never fetched),
/// uploads must be the caller's own. Like Dify, files are ignored when the app does not accept
/// uploads.
pub(super) async fn user_files(
    ctx: &Ctx<'_>,
    owner: Owner,
    user: &UserRef,
    raw: Option<&Value>,
    config: &AppConfig,
) -> Result<Vec<Value>, ApiError> {
    let items = match raw {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(Invalid::new("files: Input should be a valid list").into()),
    };
    let accepts = config.file_upload.get("enabled").and_then(Value::as_bool).unwrap_or(false)
        || config.file_upload.pointer("/image/enabled").and_then(Value::as_bool).unwrap_or(false);
    if !accepts {
        return Ok(Vec::new());
    }
    let mut files = Vec::with_capacity(items.len());
    for item in items {
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("image");
        let file = match item.get("transfer_method").and_then(Value::as_str) {
            Some("remote_url") => {
                let url = item.get("url").and_then(Value::as_str).filter(|u| u.starts_with("http"));
                let url = url.ok_or_else(|| Invalid::new("files: a remote_url file needs an http(s) url"))?;
                MessageFile::remote(ctx.services.ids.new_id(), kind, url)
            }
            Some("local_file") => files::message_file(ctx, owner, user, item).await?,
            _ => return Err(Invalid::new("files: transfer_method must be 'remote_url' or 'local_file'").into()),
        };
        files.push(to_stored(&file));
    }
    Ok(files)
}
