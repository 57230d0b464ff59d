//! `POST /chat-messages` (blocking and streaming) and `POST /chat-messages/:task_id/stop`.
//!
//! Both modes run the same generation task ([`generation`]): it reads the model's stream,
//! watches for a stop request, stores the message and the generated title, and reports events
//! over a channel. Blocking mode collects them into one JSON answer; streaming mode frames
//! them as Dify's server-sent events ([`sse`]). The task outlives a disconnected client, so no
//! answer is lost. [`input`] reads and checks the request.

mod generation;
mod input;
mod sse;

use std::time::Instant;

use tokio::sync::mpsc;

use super::conversations::{NOT_FOUND, owned};
use super::idempotency::Streamed;
use super::input::Body;
use super::messages::settled;
use super::thread::{self, From};
use super::views::{ChatAnswer, MessageMetadata, Success, Usage};
use super::{ApiResponse, Ctx, annotations};
use crate::api::error::ApiError;
use crate::domain::{
    App, AppMode, Conversation, ConversationId, ConversationState, ConversationStatus, ConversationVariable, Cursor,
    DEFAULT_CONVERSATION_NAME, GENERATION_DEADLINE, Invalid, Message, MessageId, MessageStatus, Metadata, OpaqueJson,
    Owner, TaskId, UserRef, VariableId, fill_template,
};
use crate::ports::{LlmRequest, Purpose, Speaker};
use generation::{ChatEvent, Generation, StreamHeader, annotation_stream, within_deadline};
pub(crate) use generation::{ChatEvent as Event, StreamHeader as Header};
use input::{ChatInput, Parent, user_files};

/// How many earlier messages of the conversation the model sees.
const HISTORY_MESSAGES: usize = 10;
const DEFAULT_MAX_TOKENS: u32 = 1024;
const DEFAULT_TEMPERATURE: f32 = 0.7;

pub(crate) async fn send(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let body = Body::read(ctx.request)?;
    let mut input = ChatInput::parse(&body)?;
    // Our extension: metadata for the conversation this message starts (ignored otherwise).
    let metadata = super::conversations::body_metadata(&body)?;
    let user = body.user(true)?;
    let owner = ctx.end_user(user.clone()).await?.owner();
    input.files = user_files(ctx, owner, &user, body.raw("files"), &ctx.app.config).await?;
    ctx.require_chat_app()?;

    let (conversation, is_new) = match input.conversation_id {
        Some(id) => (owned(ctx, owner, id).await?, false),
        None => {
            let inputs = ctx.app.config.check_inputs(&input.inputs)?;
            let name = DEFAULT_CONVERSATION_NAME.to_owned();
            (new_conversation(ctx, owner, name, inputs, metadata.unwrap_or_default()), true)
        }
    };
    let turn = Turn {
        user,
        conversation,
        is_new,
        query: input.query,
        files: input.files,
        parent: input.parent,
        streaming: input.streaming,
        name_it: is_new && input.auto_generate_name,
    };
    answer(ctx, turn).await
}

/// `POST /messages/:id/regenerate` `{user, response_mode}` (a Colloquy extension): the
/// message's query (and files) sent again with the same parent, so that the new message is
/// its sibling; answered as `POST /chat-messages` answers.
pub(crate) async fn regenerate(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = ctx.ids.message.ok_or(ApiError::RouteNotFound)?;
    let body = Body::read(ctx.request)?;
    let streaming = input::streaming(&body)?;
    let user = body.user(true)?;
    ctx.require_chat_app()?;
    let owner = ctx.end_user(user.clone()).await?.owner();
    let original = ctx.store().message(owner, id).await?.ok_or(ApiError::NotFound("Message Not Exists."))?;
    if original.query.trim().is_empty() {
        return Err(Invalid::new("this message has no query to answer again (it was added without one)").into());
    }
    let conversation = owned(ctx, owner, original.conversation_id).await?;
    let turn = Turn {
        user,
        conversation,
        is_new: false,
        query: original.query,
        files: original.message_files,
        parent: original.parent_message_id.map_or(Parent::Root, Parent::Message),
        streaming,
        name_it: false,
    };
    answer(ctx, turn).await
}

/// One message to answer: its conversation (new or the caller's), what it asks and what it
/// replies to.
struct Turn {
    user: UserRef,
    conversation: Conversation,
    is_new: bool,
    query: String,
    files: Vec<serde_json::Value>,
    parent: Parent,
    streaming: bool,
    name_it: bool,
}

/// Stores the message and answers it (the model's stream, or an annotation).
async fn answer(ctx: &Ctx<'_>, turn: Turn) -> Result<ApiResponse, ApiError> {
    let Turn { user, mut conversation, is_new, query, files, parent, streaming, name_it } = turn;
    let owner = conversation.owner;
    let now = ctx.now();
    // The thread the message continues (the model's history), newest first.
    let from = match parent {
        _ if is_new => None,
        Parent::Root => None,
        Parent::Newest => Some(From::Newest),
        Parent::Message(id) => {
            let at = ctx.store().message_time(conversation.id, id).await?;
            Some(From::At(Cursor { at: at.ok_or(ApiError::NotFound("Message Not Exists."))?, id }))
        }
    };
    let history = match from {
        None => Vec::new(),
        Some(from) => {
            let thread = thread::walk(ctx, conversation.id, from, HISTORY_MESSAGES).await?;
            settled(ctx, thread.into_iter().map(|row| row.message).collect()).await
        }
    };

    // An annotation that answers the query replaces the model; otherwise the model's stream
    // must open before we answer, so its failures can still be HTTP errors.
    let annotation = annotations::matching(ctx.services, &ctx.app, &query).await?;
    let source = match &annotation {
        Some(found) => annotation_stream(found),
        None => {
            let (llm, model) = ctx.services.models.llm_for(&ctx.app)?;
            let stream = llm.stream(model_request(&ctx.app, &conversation, &history, &query, model)).await?;
            within_deadline(stream, GENERATION_DEADLINE)
        }
    };

    if is_new {
        ctx.store().insert_conversation(&conversation, &user).await?;
        start_variables(ctx, &conversation).await?;
    } else {
        conversation.updated_at = now;
        conversation.expires_at = ctx.app.config.retention.conversation_expiry(now);
        if !ctx.store().update_conversation(&conversation).await? {
            // Deleted since it was read.
            return Err(ApiError::NotFound(NOT_FOUND));
        }
    }
    let task = TaskId::from_uuid(ctx.services.ids.new_id());
    let message = Message {
        id: MessageId::from_uuid(ctx.services.ids.new_id()),
        conversation_id: conversation.id,
        owner,
        parent_message_id: history.first().map(|m| m.id),
        inputs: conversation.inputs.clone(),
        query,
        answer: String::new(),
        message_files: files,
        retriever_resources: Vec::new(),
        agent_thoughts: Vec::new(),
        status: MessageStatus::Normal,
        error: None,
        metadata: OpaqueJson::empty_object(),
        // Never before the message it replies to (a clock read earlier elsewhere).
        created_at: history.first().map_or(now, |parent| now.max(parent.created_at)),
        task_id: Some(task),
    };
    // Stored now (with its task, which a stop request finds), so the history shows the message
    // while it is being answered; only into a conversation (and under a parent) that was not
    // deleted meanwhile.
    if !ctx.store().insert_message(&message).await? {
        return Err(ApiError::NotFound(NOT_FOUND));
    }
    let header =
        StreamHeader { conversation_id: conversation.id, message_id: message.id, task, created_at: now.unix_seconds() };
    let generation = Generation {
        services: ctx.services.clone(),
        app: ctx.app.clone(),
        owner,
        conversation,
        name_it,
        message,
        task,
        annotation,
        started: Instant::now(),
    };
    let (events, receiver) = mpsc::channel(64);
    tokio::spawn(generation.run(source, events));

    if streaming {
        ctx.note_streamed(Streamed {
            conversation_id: header.conversation_id,
            message_id: header.message_id,
            task_id: task,
            created_at: header.created_at,
        });
        Ok(event_stream(header, receiver))
    } else {
        blocking_answer(header, ctx.app.mode, receiver).await
    }
}

/// An answer's events as Dify's server-sent events.
pub(crate) fn event_stream(header: StreamHeader, receiver: mpsc::Receiver<ChatEvent>) -> ApiResponse {
    ApiResponse::event_stream(sse::sse_frames(header, receiver))
}

/// The metadata a finished message's `message_end` carries, from what was stored with it
/// (usage; not the annotation, which the event names only when it answered live).
pub(crate) fn stored_metadata(stored: &OpaqueJson) -> MessageMetadata {
    let stored = serde_json::from_str::<serde_json::Value>(stored.as_str()).unwrap_or_default();
    let usage = &stored["usage"];
    let count = |name: &str| usage[name].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    let tokens =
        crate::ports::Usage { prompt_tokens: count("prompt_tokens"), completion_tokens: count("completion_tokens") };
    let latency = usage["latency"].as_f64().filter(|s| s.is_finite() && *s >= 0.0).unwrap_or(0.0);
    MessageMetadata::new(Usage::new(tokens, std::time::Duration::from_secs_f64(latency)))
}

/// The prompt: the app's system prompt, the recent history, then the query.
fn model_request(
    app: &App,
    conversation: &Conversation,
    history: &[Message],
    query: &str,
    model: Option<String>,
) -> LlmRequest {
    let mut turns = history_turns(history);
    turns.push((Speaker::User, query.to_owned()));
    LlmRequest {
        purpose: Purpose::Chat,
        model,
        system: app.config.pre_prompt.as_deref().map(|p| fill_template(p, &conversation.inputs)),
        turns,
        max_tokens: app.config.model.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        temperature: app.config.model.temperature.unwrap_or(DEFAULT_TEMPERATURE),
    }
}

/// Earlier messages (newest first, as stores list them) as chat turns, oldest first.
pub(crate) fn history_turns(history: &[Message]) -> Vec<(Speaker, String)> {
    let mut turns = Vec::with_capacity(history.len() * 2 + 1);
    for earlier in history.iter().rev() {
        // A message added without the model may have only an answer (a human agent's reply).
        if !earlier.query.is_empty() {
            turns.push((Speaker::User, earlier.query.clone()));
        }
        if !earlier.answer.is_empty() {
            turns.push((Speaker::Assistant, earlier.answer.clone()));
        }
    }
    turns
}

/// Blocking mode: the whole answer once it is stored, or the error it ended with.
async fn blocking_answer(
    header: StreamHeader,
    mode: AppMode,
    mut receiver: mpsc::Receiver<ChatEvent>,
) -> Result<ApiResponse, ApiError> {
    let mut answer = String::new();
    while let Some(event) = receiver.recv().await {
        match event {
            ChatEvent::Delta(text) => answer.push_str(&text),
            ChatEvent::Failed(error) => return Err(error),
            ChatEvent::End { metadata } => {
                return Ok(ApiResponse::ok(&ChatAnswer {
                    task_id: header.task,
                    id: header.message_id,
                    message_id: header.message_id,
                    conversation_id: header.conversation_id,
                    mode,
                    answer,
                    metadata,
                    created_at: header.created_at,
                }));
            }
        }
    }
    Err(ApiError::Internal("the generation ended without a result".into()))
}

pub(crate) async fn stop(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let body = Body::read(ctx.request)?;
    let owner = ctx.end_user(body.user(true)?).await?.owner();
    ctx.require_chat_app()?;
    // Unknown, finished, foreign and malformed task ids all get the same answer, as in Dify.
    if let Some(task) = ctx.ids.task.as_deref().and_then(|raw| raw.parse::<TaskId>().ok()) {
        ctx.store().request_stop(task, owner).await?;
    }
    Ok(ApiResponse::ok(&Success::new()))
}

/// A new conversation of `owner` as of now: the app's opening statement filled with its
/// (checked) inputs, its retention's expiry, not pinned or archived.
pub(crate) fn new_conversation(
    ctx: &Ctx<'_>,
    owner: Owner,
    name: String,
    inputs: serde_json::Map<String, serde_json::Value>,
    metadata: Metadata,
) -> Conversation {
    let now = ctx.now();
    let introduction = ctx.app.config.opening_statement.as_deref().map(|t| fill_template(t, &inputs));
    Conversation {
        id: ConversationId::from_uuid(ctx.services.ids.new_id()),
        owner,
        name,
        inputs,
        status: ConversationStatus::Normal,
        introduction: introduction.unwrap_or_default(),
        created_at: now,
        updated_at: now,
        expires_at: ctx.app.config.retention.conversation_expiry(now),
        state: ConversationState { metadata, ..ConversationState::default() },
    }
}

/// Gives a new conversation the app's conversation variables, at their starting values.
pub(crate) async fn start_variables(ctx: &Ctx<'_>, conversation: &Conversation) -> Result<(), ApiError> {
    for definition in &ctx.app.config.conversation_variables {
        // Checked when the configuration was saved; a definition that no longer parses is skipped.
        let Ok((value_type, value)) = definition.typed_value() else { continue };
        let variable = ConversationVariable {
            id: VariableId::from_uuid(ctx.services.ids.new_id()),
            app_id: ctx.app.id,
            conversation_id: conversation.id,
            name: definition.name.clone(),
            value_type,
            value,
            description: definition.description.clone(),
            created_at: conversation.created_at,
            updated_at: conversation.created_at,
        };
        ctx.store().insert_variable(&variable).await?;
    }
    Ok(())
}
