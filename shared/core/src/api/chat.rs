//! `POST /chat-messages` (blocking and streaming) and `POST /chat-messages/:task_id/stop`.
//!
//! Both modes run the same generation task: it reads the model's stream, watches for a stop
//! request, stores the message and the generated title, and reports events over a channel.
//! Blocking mode collects them into one JSON answer; streaming mode frames them as Dify's
//! server-sent events. The task outlives a disconnected client, so no answer is lost.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use sse_stream::Sse;
use tokio::sync::mpsc;

use super::conversations::{NOT_FOUND, generate_title, owned};
use super::input::Body;
use super::messages::settled;
use super::views::{
    self, AnnotationReply, ChatAnswer, ErrorBody, MessageFile, MessageMetadata, StreamEvent, StreamEventBody, Success,
    to_stored,
};
use super::{ApiResponse, Ctx, Services, annotations, files};
use crate::api::error::ApiError;
use crate::domain::{
    Annotation, App, AppConfig, AppMode, Conversation, ConversationId, ConversationStatus, ConversationVariable,
    DEFAULT_CONVERSATION_NAME, GENERATION_DEADLINE, Invalid, Message, MessageId, MessageStatus, Owner, TaskId, UserRef,
    VariableId, fill_template,
};
use crate::ports::{LlmEvent, LlmRequest, LlmStream, ProviderError, Purpose, Speaker, Usage};

/// How many earlier messages of the conversation the model sees.
const HISTORY_MESSAGES: usize = 10;
/// Dify sends `event: ping` when nothing else was sent for this long.
const PING_AFTER: Duration = Duration::from_secs(10);
/// How often a running generation checks whether its owner asked it to stop.
const STOP_POLL: Duration = Duration::from_millis(100);
const DEFAULT_MAX_TOKENS: u32 = 1024;
const DEFAULT_TEMPERATURE: f32 = 0.7;

/// A parsed chat request.
struct ChatInput {
    inputs: Map<String, Value>,
    query: String,
    streaming: bool,
    conversation_id: Option<ConversationId>,
    files: Vec<Value>,
    auto_generate_name: bool,
}

impl ChatInput {
    fn parse(body: &Body) -> Result<Self, ApiError> {
        let inputs = match body.raw("inputs") {
            None => return Err(Invalid::new("inputs: Field required").into()),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(Invalid::new("inputs: Input should be a valid dictionary").into()),
        };
        let query = body.string("query")?.ok_or_else(|| Invalid::new("query: Field required"))?;
        if query.trim().is_empty() {
            return Err(Invalid::new("query is required").into());
        }
        let streaming = match body.string("response_mode")? {
            None | Some("blocking") => false,
            Some("streaming") => true,
            Some(other) => {
                return Err(Invalid(format!(
                    "response_mode: Input should be 'blocking' or 'streaming', got '{other}'"
                ))
                .into());
            }
        };
        let conversation_id = match body.string("conversation_id")?.map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(raw.parse().map_err(|_| Invalid::new("conversation_id must be a valid UUID"))?),
        };
        Ok(Self {
            inputs,
            query: query.to_owned(),
            streaming,
            conversation_id,
            files: Vec::new(),
            auto_generate_name: body.boolean("auto_generate_name", true)?,
        })
    }
}

/// The `files` of a chat request as message files: remote URLs are recorded (never fetched),
/// uploads must be the caller's own. Like Dify, files are ignored when the app does not accept
/// uploads.
async fn user_files(
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

pub(crate) async fn send(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let body = Body::read(ctx.request)?;
    let mut input = ChatInput::parse(&body)?;
    let user = body.user(true)?;
    let owner = ctx.end_user(user.clone()).await?.owner();
    input.files = user_files(ctx, owner, &user, body.raw("files"), &ctx.app.config).await?;
    ctx.require_chat_app()?;
    let now = ctx.now();

    let (mut conversation, is_new) = match input.conversation_id {
        Some(id) => (owned(ctx, owner, id).await?, false),
        None => {
            let inputs = ctx.app.config.check_inputs(&input.inputs)?;
            let introduction = ctx.app.config.opening_statement.as_deref().map(|t| fill_template(t, &inputs));
            let conversation = Conversation {
                id: ConversationId::from_uuid(ctx.services.ids.new_id()),
                owner,
                name: DEFAULT_CONVERSATION_NAME.into(),
                inputs,
                status: ConversationStatus::Normal,
                introduction: introduction.unwrap_or_default(),
                created_at: now,
                updated_at: now,
            };
            (conversation, true)
        }
    };
    let history = if is_new {
        Vec::new()
    } else {
        settled(ctx, ctx.store().messages_before(conversation.id, None, HISTORY_MESSAGES).await?).await
    };

    // An annotation that answers the query replaces the model; otherwise the model's stream
    // must open before we answer, so its failures can still be HTTP errors.
    let annotation = annotations::matching(ctx.services, &ctx.app, &input.query).await?;
    let source = match &annotation {
        Some(found) => annotation_stream(found),
        None => {
            let (llm, model) = ctx.services.models.llm_for(&ctx.app)?;
            let stream = llm.stream(model_request(&ctx.app, &conversation, &history, &input.query, model)).await?;
            within_deadline(stream, GENERATION_DEADLINE)
        }
    };

    if is_new {
        ctx.store().insert_conversation(&conversation).await?;
        start_variables(ctx, &conversation).await?;
    } else {
        conversation.updated_at = now;
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
        query: input.query,
        answer: String::new(),
        message_files: input.files,
        retriever_resources: Vec::new(),
        agent_thoughts: Vec::new(),
        status: MessageStatus::Normal,
        error: None,
        metadata: Value::Object(Map::new()),
        created_at: now,
        task_id: Some(task),
    };
    // Stored now (with its task, which a stop request finds), so the history shows the message
    // while it is being answered; only into a conversation that was not deleted meanwhile.
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
        name_it: is_new && input.auto_generate_name,
        message,
        task,
        annotation,
        started: Instant::now(),
    };
    let (events, receiver) = mpsc::channel(64);
    tokio::spawn(generation.run(source, events));

    if input.streaming {
        Ok(ApiResponse::event_stream(sse_frames(header, receiver)))
    } else {
        blocking_answer(header, ctx.app.mode, receiver).await
    }
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
        turns.push((Speaker::User, earlier.query.clone()));
        if !earlier.answer.is_empty() {
            turns.push((Speaker::Assistant, earlier.answer.clone()));
        }
    }
    turns
}

/// The model's stream, ended by a failure if it is still running after `deadline`: a
/// generation must end (and store its outcome) before its process may be stopped.
fn within_deadline(source: LlmStream, deadline: Duration) -> LlmStream {
    let expiry = Box::pin(tokio::time::sleep(deadline));
    Box::pin(futures_util::stream::unfold(Some((source, expiry)), move |state| async move {
        let (mut source, mut expiry) = state?;
        tokio::select! {
            next = source.next() => next.map(|item| (item, Some((source, expiry)))),
            () = &mut expiry => {
                let late = format!("The model did not finish its answer within {} seconds.", deadline.as_secs());
                Some((Err(ProviderError::Failed(late)), None))
            }
        }
    }))
}

/// An annotation's answer, as a stream like a model's.
fn annotation_stream(annotation: &Annotation) -> LlmStream {
    let events = [Ok(LlmEvent::Delta(annotation.answer.clone())), Ok(LlmEvent::Done(Usage::default()))];
    Box::pin(futures_util::stream::iter(events))
}

/// What the generation task reports.
enum ChatEvent {
    Delta(String),
    End { metadata: MessageMetadata },
    Failed(ApiError),
}

/// Fields every streamed event repeats.
#[derive(Clone, Copy)]
struct StreamHeader {
    conversation_id: ConversationId,
    message_id: MessageId,
    task: TaskId,
    created_at: i64,
}

struct Generation {
    services: Services,
    app: App,
    owner: Owner,
    conversation: Conversation,
    name_it: bool,
    message: Message,
    task: TaskId,
    annotation: Option<Annotation>,
    started: Instant,
}

impl Generation {
    async fn run(mut self, mut source: LlmStream, events: mpsc::Sender<ChatEvent>) {
        let title = self.name_it.then(|| {
            let (services, app, query) = (self.services.clone(), self.app.clone(), self.message.query.clone());
            tokio::spawn(async move { generate_title(&services, &app, &query).await })
        });
        let store = &self.services.store;
        let mut usage = Usage::default();
        let mut failure = None;
        let mut poll = tokio::time::interval(STOP_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                next = source.next() => match next {
                    Some(Ok(LlmEvent::Delta(text))) => {
                        self.message.answer.push_str(&text);
                        // A client that went away does not stop the answer from being stored.
                        let _ = events.send(ChatEvent::Delta(text)).await;
                    }
                    Some(Ok(LlmEvent::Done(reported))) => {
                        usage = reported;
                        break;
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "model provider failed mid-stream");
                        failure = Some(ApiError::Provider(error));
                        break;
                    }
                    None => break,
                },
                _ = poll.tick() => {
                    if store.stop_requested(self.task).await.unwrap_or(false) {
                        break;
                    }
                }
            }
        }
        drop(source);

        let metadata = MessageMetadata::new(views::Usage::new(usage, self.started.elapsed()));
        let stored = MessageMetadata {
            annotation_reply: self.annotation.as_ref().map(|a| AnnotationReply { id: a.id, account: None }),
            ..metadata.clone()
        };
        if let Some(error) = &failure {
            self.message.status = MessageStatus::Error;
            self.message.error = Some(error.parts().2);
        }
        self.message.metadata = to_stored(&stored);
        self.message.task_id = None;
        let outcome = self.finish(title).await;
        let last = match (failure, outcome) {
            (Some(error), _) | (None, Err(error)) => ChatEvent::Failed(error),
            (None, Ok(())) => ChatEvent::End { metadata },
        };
        let _ = events.send(last).await;
    }

    /// Stores the answer (which ends the message's generating state), the annotation hit and
    /// the title, and releases the task.
    async fn finish(
        &mut self,
        title: Option<tokio::task::JoinHandle<Option<crate::domain::ConversationTitle>>>,
    ) -> Result<(), ApiError> {
        let store = &self.services.store;
        let saved = store.update_message(&self.message).await;
        if let Some(annotation) = &self.annotation
            && let Err(error) = store.record_annotation_hit(self.app.id, annotation.id).await
        {
            tracing::warn!(%error, "could not count an annotation hit");
        }
        if let Some(Ok(Some(title))) = match title {
            Some(handle) => Some(handle.await),
            None => None,
        } {
            self.conversation.name = title.into_string();
            if let Err(error) = store.update_conversation(&self.conversation).await {
                tracing::warn!(%error, "could not store a generated title");
            }
        }
        if let Err(error) = store.finish_task(self.task).await {
            tracing::warn!(%error, "could not release a finished task");
        }
        tracing::debug!(owner = ?self.owner, task = %self.task, "generation finished");
        match saved {
            Ok(true) => Ok(()),
            // The conversation was deleted while the answer was generated: nothing was stored.
            Ok(false) => Err(ApiError::NotFound(NOT_FOUND)),
            Err(error) => Err(error.into()),
        }
    }
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

/// Frames events as Dify does: `data: <json>` per event, `event: ping` when idle.
fn sse_frames(header: StreamHeader, receiver: mpsc::Receiver<ChatEvent>) -> impl futures_util::Stream<Item = Bytes> {
    futures_util::stream::unfold(Some(receiver), move |receiver| async move {
        let mut receiver = receiver?;
        let event = match tokio::time::timeout(PING_AFTER, receiver.recv()).await {
            Err(_) => return Some((Bytes::from(Sse::default().event("ping")), Some(receiver))),
            Ok(None) => return None,
            Ok(Some(event)) => event,
        };
        let more = matches!(event, ChatEvent::Delta(_));
        let frame = match serde_json::to_string(&stream_event(header, event)) {
            Ok(json) => Bytes::from(Sse::default().data(json)),
            Err(error) => {
                tracing::error!(%error, "a streamed event could not be serialised");
                return None;
            }
        };
        Some((frame, more.then_some(receiver)))
    })
}

/// The view of one event of the answer `header` names.
fn stream_event(header: StreamHeader, event: ChatEvent) -> StreamEvent {
    let body = match event {
        ChatEvent::Delta(answer) => StreamEventBody::Message {
            task_id: header.task,
            id: header.message_id,
            answer,
            from_variable_selector: None,
        },
        ChatEvent::End { metadata } => {
            StreamEventBody::MessageEnd { task_id: header.task, id: header.message_id, metadata, files: None }
        }
        ChatEvent::Failed(error) => StreamEventBody::Error { error: ErrorBody::new(&error) },
    };
    StreamEvent {
        conversation_id: header.conversation_id,
        message_id: header.message_id,
        created_at: header.created_at,
        body,
    }
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

/// Gives a new conversation the app's conversation variables, at their starting values.
async fn start_variables(ctx: &Ctx<'_>, conversation: &Conversation) -> Result<(), ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> StreamHeader {
        StreamHeader {
            conversation_id: ConversationId::from_uuid(uuid::Uuid::nil()),
            message_id: MessageId::from_uuid(uuid::Uuid::nil()),
            task: TaskId::from_uuid(uuid::Uuid::nil()),
            created_at: 1,
        }
    }

    fn data(frame: &Bytes) -> Value {
        let text = std::str::from_utf8(frame).unwrap();
        let json = text.strip_prefix("data: ").and_then(|t| t.strip_suffix("\n\n")).expect("one data line");
        serde_json::from_str(json).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_model_that_does_not_finish_by_the_deadline_fails() {
        let started = tokio::time::Instant::now();
        let hanging =
            futures_util::stream::iter([Ok(LlmEvent::Delta("Half an ".into()))]).chain(futures_util::stream::pending());
        let mut stream = within_deadline(Box::pin(hanging), GENERATION_DEADLINE);
        assert_eq!(stream.next().await, Some(Ok(LlmEvent::Delta("Half an ".into()))));
        match stream.next().await {
            Some(Err(ProviderError::Failed(message))) => assert!(message.contains("100 seconds"), "{message}"),
            other => panic!("expected the deadline's failure, got {other:?}"),
        }
        assert!(started.elapsed() >= GENERATION_DEADLINE);
        assert_eq!(stream.next().await, None, "and nothing after it");

        let finished =
            futures_util::stream::iter([Ok(LlmEvent::Delta("ok".into())), Ok(LlmEvent::Done(Usage::default()))]);
        let events: Vec<_> = within_deadline(Box::pin(finished), GENERATION_DEADLINE).collect().await;
        assert_eq!(events.len(), 2, "a timely answer passes unchanged");
        assert_eq!(started.elapsed(), GENERATION_DEADLINE, "without waiting for the deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_streams_get_pings_and_events_are_framed_like_difys() {
        let (sender, receiver) = mpsc::channel(4);
        let mut frames = Box::pin(sse_frames(header(), receiver));
        let ping = frames.next().await.unwrap();
        assert_eq!(&ping[..], b"event: ping\n\n");

        sender.send(ChatEvent::Delta("Hel".into())).await.unwrap();
        let message = data(&frames.next().await.unwrap());
        assert_eq!(message["event"], "message");
        assert_eq!(message["answer"], "Hel");
        assert_eq!(message["id"], message["message_id"]);
        assert_eq!(message["created_at"], 1);

        sender
            .send(ChatEvent::Failed(ApiError::Provider(crate::ports::ProviderError::RateLimited("slow down".into()))))
            .await
            .unwrap();
        let error = data(&frames.next().await.unwrap());
        assert_eq!(error["event"], "error");
        assert_eq!((error["code"].as_str(), error["status"].as_u64()), (Some("rate_limit_error"), Some(429)));
        assert!(error.get("task_id").is_none());
        assert!(frames.next().await.is_none(), "the stream ends after an error");
    }
}
