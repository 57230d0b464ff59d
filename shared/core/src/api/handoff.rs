//! Conversations and messages written without the model (Colloquy extensions), for human
//! hand-off, imports and forks: `POST /conversations`, `POST /conversations/:id/messages` and
//! `POST /conversations/:id/fork`. What
//! they write is history like any other: listed, exported, and seen by the model afterwards.

use std::collections::HashMap;

use http::StatusCode;
use serde_json::Value;

use super::conversations::{NOT_FOUND, body_metadata, owned};
use super::input::{Body, parse_id};
use super::messages::settled;
use super::{ApiResponse, Ctx, views};
use crate::api::error::ApiError;
use crate::domain::{
    Conversation, ConversationId, ConversationState, ConversationStatus, ConversationTitle, ConversationVariable,
    Cursor, DEFAULT_CONVERSATION_NAME, Invalid, Message, MessageId, MessageStatus, OpaqueJson, Timestamp, VariableId,
    parse_time,
};

/// How many messages one request may add.
pub(crate) const MAX_ITEMS: usize = 20;

/// `POST /conversations` `{user, name?, inputs?, metadata?}` → 201: an empty conversation,
/// started as a chat starts one (the app's inputs checked, its opening statement, its
/// conversation variables).
pub(crate) async fn create(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let body = Body::read(ctx.request)?;
    let name = match body.string("name")? {
        Some(name) => ConversationTitle::manual(name)?.into_string(),
        None => DEFAULT_CONVERSATION_NAME.to_owned(),
    };
    let inputs = match body.raw("inputs") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(inputs)) => inputs.clone(),
        Some(_) => return Err(Invalid::new("inputs: Input should be a valid dictionary").into()),
    };
    let metadata = body_metadata(&body)?.unwrap_or_default();
    let user = body.user(true)?;
    ctx.require_chat_app()?;
    let inputs = ctx.app.config.check_inputs(&inputs)?;
    let owner = ctx.end_user(user.clone()).await?.owner();
    let conversation = super::chat::new_conversation(ctx, owner, name, inputs, metadata);
    ctx.store().insert_conversation(&conversation, &user).await?;
    super::chat::start_variables(ctx, &conversation).await?;
    Ok(ApiResponse::json(StatusCode::CREATED, &views::ConversationDetail::from(conversation)))
}

/// One item of `POST /conversations/:id/messages`.
struct Item {
    query: String,
    answer: String,
    created_at: Option<Timestamp>,
}

fn items(body: &Body) -> Result<Vec<Item>, ApiError> {
    let Some(Value::Array(raw)) = body.raw("items") else {
        return Err(Invalid::new("items: a list of 1 to 20 {query, answer, created_at?} is required").into());
    };
    if raw.is_empty() || raw.len() > MAX_ITEMS {
        return Err(Invalid(format!("items: 1 to {MAX_ITEMS} items")).into());
    }
    raw.iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(item) = item else {
                return Err(Invalid(format!("items[{i}]: must be an object")).into());
            };
            let text = |name: &str| match item.get(name) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(text)) => Ok(text.clone()),
                Some(_) => Err(ApiError::from(Invalid(format!("items[{i}].{name}: must be a string")))),
            };
            let (query, answer) = (text("query")?, text("answer")?);
            if query.trim().is_empty() && answer.trim().is_empty() {
                return Err(Invalid(format!("items[{i}]: a query or an answer is required")).into());
            }
            let created_at = match item.get("created_at") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => Some(parse_time("created_at", &n.to_string())?),
                // The empty string counts as absent, as for every time bound.
                Some(Value::String(raw)) if raw.is_empty() => None,
                Some(Value::String(raw)) => Some(parse_time("created_at", raw)?),
                Some(_) => return Err(Invalid(format!("items[{i}].created_at: a time is required")).into()),
            };
            Ok(Item { query, answer, created_at })
        })
        .collect()
}

/// `POST /conversations/:id/messages` `{user, items: [{query, answer, created_at?}]}` → 201
/// with their ids: finished messages appended to one of the caller's conversations, all or
/// none. Each item's time (Unix seconds or RFC 3339; default now) is at most now, not before
/// the previous item's nor before the conversation's newest message, so the thread keeps its
/// order; each message's parent is the one before it.
pub(crate) async fn add_messages(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = ctx.ids.conversation.ok_or(ApiError::RouteNotFound)?;
    let body = Body::read(ctx.request)?;
    let items = items(&body)?;
    let user = body.user(true)?;
    ctx.require_chat_app()?;
    let owner = ctx.end_user(user).await?.owner();
    let mut conversation = owned(ctx, owner, id).await?;
    let newest = ctx.store().messages_before(id, None, 1).await?.into_iter().next();
    let now = ctx.now();
    let mut after = newest.as_ref().map(|m| m.created_at);
    let mut parent = newest.map(|m| m.id);
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        // Items without a time are spread a microsecond apart, so they keep their order.
        let at = item.created_at.unwrap_or_else(|| Timestamp::from_micros(now.micros() + i as i64));
        if item.created_at.is_some_and(|at| at > now) {
            return Err(Invalid(format!("items[{i}].created_at: must not be in the future")).into());
        }
        if after.is_some_and(|after| at < after) {
            return Err(Invalid(format!(
                "items[{i}].created_at: must not be before the previous item or the conversation's newest message"
            ))
            .into());
        }
        let message = Message {
            id: MessageId::from_uuid(ctx.services.ids.new_id()),
            conversation_id: id,
            owner,
            parent_message_id: parent,
            inputs: conversation.inputs.clone(),
            query: item.query,
            answer: item.answer,
            message_files: Vec::new(),
            retriever_resources: Vec::new(),
            agent_thoughts: Vec::new(),
            status: MessageStatus::Normal,
            error: None,
            metadata: OpaqueJson::empty_object(),
            created_at: at,
            task_id: None,
        };
        after = Some(at);
        parent = Some(message.id);
        messages.push(message);
    }
    if !ctx.store().insert_messages(&messages).await? {
        return Err(ApiError::NotFound(NOT_FOUND));
    }
    // Activity, as a chat message is.
    conversation.updated_at = now;
    conversation.expires_at = ctx.app.config.retention.conversation_expiry(now);
    ctx.store().update_conversation(&conversation).await?;
    let added = views::AddedMessages { conversation_id: id, message_ids: messages.iter().map(|m| m.id).collect() };
    Ok(ApiResponse::json(StatusCode::CREATED, &added))
}

/// The longest thread a fork copies (its copy is one request's work).
pub(crate) const MAX_FORK_MESSAGES: usize = 5000;

/// `POST /conversations/:id/fork` `{user, message_id?, name?}` → 201 (a Colloquy extension): a
/// new conversation of the caller with the thread that ends at `message_id` (default: the
/// newest message) copied — each message with new ids, its parent the copy of its parent —
/// and the conversation's inputs, opening statement, metadata and variables. Feedback stays
/// with the original messages. The copy is readable only once whole.
pub(crate) async fn fork(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = ctx.ids.conversation.ok_or(ApiError::RouteNotFound)?;
    let body = Body::read(ctx.request)?;
    let name = body.string("name")?.map(ConversationTitle::manual).transpose()?;
    let target = match body.string("message_id")?.map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(parse_id::<MessageId>("message_id", raw)?),
    };
    let user = body.user(true)?;
    ctx.require_chat_app()?;
    let owner = ctx.end_user(user.clone()).await?.owner();
    let source = owned(ctx, owner, id).await?;
    let thread = settled(ctx, thread_to(ctx, &source, target).await?).await;
    if thread.iter().any(|m| m.task_id.is_some()) {
        return Err(ApiError::Conflict(
            "answer_in_progress",
            "A message of this thread is still being answered; fork it once the answer is done.",
        ));
    }
    let now = ctx.now();
    let copy = Conversation {
        id: ConversationId::from_uuid(ctx.services.ids.new_id()),
        owner,
        name: name.map_or_else(|| source.name.clone(), ConversationTitle::into_string),
        inputs: source.inputs.clone(),
        status: ConversationStatus::Normal,
        introduction: source.introduction.clone(),
        created_at: now,
        updated_at: now,
        expires_at: ctx.app.config.retention.conversation_expiry(now),
        state: ConversationState { metadata: source.state.metadata.clone(), ..ConversationState::default() },
    };
    let mut parent = None;
    let messages: Vec<Message> = thread
        .into_iter()
        .map(|original| {
            let message = Message {
                id: MessageId::from_uuid(ctx.services.ids.new_id()),
                conversation_id: copy.id,
                parent_message_id: parent,
                task_id: None,
                ..original
            };
            parent = Some(message.id);
            message
        })
        .collect();
    let mut variables = Vec::new();
    let mut after = None;
    loop {
        let page = ctx.store().variables(id, None, after, 100).await?;
        let Some(last) = page.last() else { break };
        after = Some(Cursor { at: last.created_at, id: last.id });
        let full = page.len() == 100;
        variables.extend(page.into_iter().map(|v| ConversationVariable {
            id: VariableId::from_uuid(ctx.services.ids.new_id()),
            conversation_id: copy.id,
            ..v
        }));
        if !full {
            break;
        }
    }
    ctx.store().insert_fork(&copy, &user, &messages, &variables).await?;
    Ok(ApiResponse::json(StatusCode::CREATED, &views::ConversationDetail::from(copy)))
}

/// The thread of `conversation` that ends at `target` (default: its newest message), oldest
/// first: from the target back through each message's parent to a message without one.
async fn thread_to(
    ctx: &Ctx<'_>,
    conversation: &Conversation,
    target: Option<MessageId>,
) -> Result<Vec<Message>, ApiError> {
    let mut all: Vec<Message> = Vec::new();
    let mut after = None;
    loop {
        let page = ctx.store().messages_after(conversation.id, after, 100).await?;
        let Some(last) = page.last() else { break };
        after = Some(Cursor { at: last.created_at, id: last.id });
        let full = page.len() == 100;
        let reached = target.is_some_and(|t| page.iter().any(|m| m.id == t));
        all.extend(page);
        if all.len() > MAX_FORK_MESSAGES * 2 {
            return Err(Invalid::new("the conversation is too long to fork here; fork from an earlier message").into());
        }
        if reached || !full {
            break;
        }
    }
    let end = match target {
        Some(target) => all.iter().position(|m| m.id == target).ok_or(ApiError::NotFound("Message Not Exists."))?,
        None if all.is_empty() => return Ok(Vec::new()),
        None => all.len() - 1,
    };
    let index: HashMap<MessageId, usize> = all.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
    let mut chain = vec![end];
    let mut at = end;
    loop {
        // A message without a parent starts the thread.
        let next = all[at].parent_message_id.and_then(|parent| index.get(&parent).copied()).filter(|&i| i < at);
        let Some(next) = next else { break };
        chain.push(next);
        at = next;
    }
    if chain.len() > MAX_FORK_MESSAGES {
        return Err(Invalid(format!(
            "a fork copies at most {MAX_FORK_MESSAGES} messages; fork from an earlier message"
        ))
        .into());
    }
    let mut thread: Vec<Option<Message>> = all.into_iter().map(Some).collect();
    Ok(chain.into_iter().rev().filter_map(|i| thread[i].take()).collect())
}
