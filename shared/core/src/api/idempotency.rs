//! `Idempotency-Key` on the POSTs that create something (a Colloquy extension).
//!
//! The first request with a key (per app and end user) claims it and runs; its outcome is kept
//! for 24 hours. A retry with the same key and the same request gets that outcome again, with
//! `Idempotent-Replayed: true` — a streamed chat answer is replayed from the stored message,
//! as events, once it is answered. The same key with a different request is refused (422
//! `idempotency_key_mismatch`); while the first still runs, 409 `idempotency_key_in_use` with
//! `Retry-After`. Outcomes a retry could change (429, 408, 409, 5xx) release the key instead.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use tokio::sync::mpsc;

use super::body::IncomingBody;
use super::input::{Body, declares_json};
use super::{ApiResponse, Ctx, Endpoint, ResponseBody, run};
use crate::api::error::ApiError;
use crate::domain::{
    ConversationId, IDEMPOTENCY_WINDOW, IdempotencyKey, IdempotencyScope, IdempotentOutcome, IdempotentRequest,
    MessageId, MessageStatus, TaskId, Timestamp, UserRef, fingerprint,
};

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header of a replay.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a caller is asked to wait while the first request runs.
const RETRY_AFTER_SECONDS: u64 = 1;

/// A streamed answer, noted by the chat endpoint as its stream starts (its outcome is the
/// stored message, not the stream).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Streamed {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub task_id: TaskId,
    pub created_at: i64,
}

/// Runs `endpoint` once per key: see the module's description. Without the header, as ever.
pub(crate) async fn run_once(ctx: &Ctx<'_>, endpoint: Endpoint) -> Result<ApiResponse, ApiError> {
    let Some(raw) = ctx.request.headers.get(IDEMPOTENCY_KEY) else { return run(ctx, endpoint).await };
    let key = raw.to_str().map_err(|_| ApiError::InvalidParam("Idempotency-Key: visible ASCII".into()))?;
    let key = IdempotencyKey::parse(key)?;
    let Some((user, fingerprint)) = identify(ctx, endpoint).await? else {
        // A body the endpoint will refuse (400): nothing is created, nothing to keep.
        return run(ctx, endpoint).await;
    };
    let now = ctx.now();
    let request = IdempotentRequest {
        scope: IdempotencyScope::new(ctx.app.id, &user, &key),
        fingerprint,
        claim: ctx.services.ids.new_id(),
        started_at: now,
        expires_at: Timestamp::from_micros(now.micros() + IDEMPOTENCY_WINDOW.as_micros() as i64),
        outcome: None,
    };
    if let Some(first) = ctx.store().claim_request(&request, now).await? {
        if first.fingerprint != request.fingerprint {
            return Err(ApiError::Unprocessable(
                "idempotency_key_mismatch",
                "This Idempotency-Key was used with a different request.",
            ));
        }
        return match first.outcome {
            None => Err(in_use()),
            Some(outcome) => replay(ctx, outcome).await,
        };
    }
    let response = match run(ctx, endpoint).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    let outcome = match (ctx.streamed(), &response.body) {
        (Some(s), ResponseBody::Stream(_)) => Some(IdempotentOutcome::Stream {
            conversation_id: s.conversation_id,
            message_id: s.message_id,
            task_id: s.task_id,
            created_at: s.created_at,
        }),
        (_, ResponseBody::Full(body)) if keeps(response.status) => Some(IdempotentOutcome::Response {
            status: response.status.as_u16(),
            content_type: response.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned),
            body: body.to_vec(),
        }),
        _ => None,
    };
    let kept = match outcome {
        Some(outcome) => ctx.store().finish_request(&IdempotentRequest { outcome: Some(outcome), ..request }).await,
        None => ctx.store().release_request(&request).await,
    };
    if let Err(error) = kept {
        // The work is done and answered; a retry will find the key running until it is stale.
        tracing::warn!(%error, "could not keep the outcome of an idempotent request");
    }
    Ok(response)
}

/// Whether an outcome is final: what a retry of the same request would get again.
fn keeps(status: StatusCode) -> bool {
    let transient = [StatusCode::REQUEST_TIMEOUT, StatusCode::CONFLICT, StatusCode::TOO_MANY_REQUESTS];
    (status.is_success() || status.is_client_error()) && !transient.contains(&status)
}

fn in_use() -> ApiError {
    ApiError::ConflictRetry {
        code: "idempotency_key_in_use",
        message: "A request with this Idempotency-Key is still running; retry shortly.",
        retry_after: RETRY_AFTER_SECONDS,
    }
}

/// The end user a request acts for and its fingerprint (route, query and body: a JSON body
/// by its value, a multipart one by its parts, so that a retry with a new boundary matches);
/// `None` when the body cannot be read as the endpoint reads it.
async fn identify(ctx: &Ctx<'_>, endpoint: Endpoint) -> Result<Option<(UserRef, String)>, ApiError> {
    let request = ctx.request;
    let route = [request.method.as_str().as_bytes(), request.path.as_bytes(), request.query.as_bytes()];
    if endpoint.takes_uploads() && !declares_json(request) {
        // An upload is read whole here (within the same limit), then handed to the endpoint.
        let limit = ctx.services.limits.max_upload_bytes;
        let bytes = IncomingBody::Stream(ctx.take_upload()).collect(limit).await?;
        ctx.put_upload(IncomingBody::Full(bytes.clone()).into_stream());
        let content_type = request.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let Ok(boundary) = multer::parse_boundary(content_type) else { return Ok(None) };
        let mut form = multer::Multipart::new(
            futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(bytes) }),
            boundary,
        );
        let mut parts: Vec<Vec<u8>> = route.iter().map(|p| p.to_vec()).collect();
        let mut user = None;
        loop {
            let field = match form.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(_) => return Ok(None),
            };
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().unwrap_or_default().to_owned();
            let mime = field.content_type().map(ToString::to_string).unwrap_or_default();
            let Ok(data) = field.bytes().await else { return Ok(None) };
            if name == "user" {
                user = Some(String::from_utf8_lossy(&data).into_owned());
            }
            parts.extend([name.into_bytes(), file_name.into_bytes(), mime.into_bytes(), data.to_vec()]);
        }
        let user = match user.as_deref() {
            None | Some("") => UserRef::default_user(),
            Some(raw) => match UserRef::parse(raw) {
                Ok(user) => user,
                Err(_) => return Ok(None),
            },
        };
        return Ok(Some((user, fingerprint(parts.iter().map(Vec::as_slice)))));
    }
    let Ok(body) = Body::read(request) else { return Ok(None) };
    let Ok(user) = body.user(false) else { return Ok(None) };
    let value: Option<serde_json::Value> = serde_json::from_slice(&request.body).ok();
    let canonical = value.map_or_else(|| request.body.to_vec(), |v| v.to_string().into_bytes());
    let parts = route.into_iter().chain([canonical.as_slice()]);
    Ok(Some((user, fingerprint(parts))))
}

/// The first request's outcome, again.
async fn replay(ctx: &Ctx<'_>, outcome: IdempotentOutcome) -> Result<ApiResponse, ApiError> {
    let mut response = match outcome {
        IdempotentOutcome::Response { status, content_type, body } => {
            let mut headers = http::HeaderMap::new();
            if let Some(value) = content_type.and_then(|t| HeaderValue::from_str(&t).ok()) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            ApiResponse { status, headers, body: ResponseBody::Full(Bytes::from(body)) }
        }
        IdempotentOutcome::Stream { conversation_id, message_id, task_id, created_at } => {
            let Some(message) = ctx.store().message_in(conversation_id, message_id).await? else {
                return Err(ApiError::NotFound("Message Not Exists."));
            };
            let message = super::messages::settled_one(ctx, message).await;
            if message.task_id.is_some() {
                return Err(in_use());
            }
            let header = super::chat::Header { conversation_id, message_id, task: task_id, created_at };
            let (events, receiver) = mpsc::channel(2);
            match message.status {
                MessageStatus::Error => {
                    let error = message.error.unwrap_or_default();
                    let _ = events.send(super::chat::Event::Failed(ApiError::AnswerFailed(error))).await;
                }
                MessageStatus::Normal => {
                    let _ = events.send(super::chat::Event::Delta(message.answer)).await;
                    let metadata = super::chat::stored_metadata(&message.metadata);
                    let _ = events.send(super::chat::Event::End { metadata }).await;
                }
            }
            drop(events);
            super::chat::event_stream(header, receiver)
        }
    };
    response.headers.insert(REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}
