//! The framework-neutral HTTP layer: an [`ApiRequest`] goes in, an [`ApiResponse`] comes
//! out. The local server and the Lambda functions only translate to and from these.

mod annotations;
mod app_info;
mod audio;
mod auth;
mod body;
mod chat;
mod conversations;
mod cors;
mod end_users;
pub mod error;
mod exports;
mod feedback;
mod files;
mod handoff;
mod idempotency;
mod input;
pub mod key_cache;
mod messages;
mod operator;
mod routes;
mod suggested;
mod thread;
mod variables;
pub mod views;

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Serialize;

pub use body::{BodyError, BodyStream, IncomingBody};
pub use cors::Cors;
pub use exports::JobRunner;
pub use key_cache::KeyCache;
pub use routes::{Access, Endpoint, Needs, ROUTES, SPECS, Spec};

use crate::api::error::ApiError;
use crate::domain::{
    App, AuditAction, AuditEntry, AuditId, Conversation, ConversationId, ConversationSummary, EndUser, EndUserId,
    Message, Owner, Timestamp, UserRef,
};
use crate::models::Models;
use crate::ports::{BlobStore, Clock, IdGenerator, Store};
use crate::speech::Speech;
use routes::PathIds;

/// An HTTP request, independent of any web framework.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// The path, starting with `/v1/`.
    pub path: String,
    /// The raw query string without `?` (empty when none).
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A response body: complete, or produced over time (server-sent events).
pub enum ResponseBody {
    Full(Bytes),
    Stream(Pin<Box<dyn Stream<Item = Bytes> + Send>>),
}

impl ResponseBody {
    /// The complete body, or `None` for a stream.
    pub fn as_full(&self) -> Option<&Bytes> {
        match self {
            Self::Full(bytes) => Some(bytes),
            Self::Stream(_) => None,
        }
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(bytes) => write!(f, "Full({} bytes)", bytes.len()),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// An HTTP response, independent of any web framework.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ResponseBody,
}

impl ApiResponse {
    /// A JSON body: one of the [`views`].
    pub fn json(status: StatusCode, view: &impl Serialize) -> Self {
        // Room for a typical page up front, rather than growing the buffer by doubling.
        let mut body = Vec::with_capacity(8 * 1024);
        match serde_json::to_writer(&mut body, view) {
            Ok(()) => {}
            Err(error) => {
                return ApiError::Internal(format!("a response could not be serialised: {error}")).into_response();
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Self { status, headers, body: ResponseBody::Full(Bytes::from(body)) }
    }

    /// `text/event-stream` from a stream of already framed events.
    pub fn event_stream(events: impl Stream<Item = Bytes> + Send + 'static) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Self { status: StatusCode::OK, headers, body: ResponseBody::Stream(Box::pin(events)) }
    }

    pub fn ok(view: &impl Serialize) -> Self {
        Self::json(StatusCode::OK, view)
    }

    /// 204 with no body and no content type (a JSON-typed empty 204 breaks the npm SDK).
    pub fn no_content() -> Self {
        Self { status: StatusCode::NO_CONTENT, headers: HeaderMap::new(), body: ResponseBody::Full(Bytes::new()) }
    }
}

/// Limits the API enforces on requests.
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// Largest accepted multipart body (file uploads, audio); per-kind limits apply within it.
    pub max_upload_bytes: usize,
}

impl ApiLimits {
    /// The most any request may send.
    pub fn largest(&self) -> usize {
        self.max_body_bytes.max(self.max_upload_bytes)
    }
}

/// Everything a request handler may use, built once at start-up.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    /// Uploaded files' bytes (a directory locally, S3 on AWS).
    pub blobs: Arc<dyn BlobStore>,
    /// The language models and embedders apps may use.
    pub models: Models,
    /// The speech engines of the audio routes.
    pub speech: Speech,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub limits: ApiLimits,
    /// Which browser origins may call the API.
    pub cors: Cors,
    /// The apps behind recently used keys (off unless configured).
    pub keys: Arc<KeyCache>,
    /// Who runs an export or an erasure once it is stored.
    pub jobs: JobRunner,
}

/// The endpoint a method and path lead to (for functions that serve one endpoint).
pub fn resolve_endpoint(method: &Method, path: &str) -> Result<Endpoint, ApiError> {
    routes::resolve(method, path).map(|(endpoint, _)| endpoint)
}

/// Serves one request whose body is already complete (a Lambda event, a test).
pub async fn handle(services: &Services, mut request: ApiRequest) -> ApiResponse {
    let body = IncomingBody::Full(std::mem::take(&mut request.body));
    handle_incoming(services, request, body).await
}

/// Serves one request: CORS preflight, routing, authentication, the declared size, then the
/// body (read only now, and never past the route's limit), the endpoint, and error mapping.
/// `request.body` is ignored: the body is `body`.
pub async fn handle_incoming(services: &Services, request: ApiRequest, body: IncomingBody) -> ApiResponse {
    let origin = services.cors.allowed_origin(&request.headers);
    if request.method == Method::OPTIONS {
        let mut response = cors::preflight(&request, origin.is_some());
        services.cors.decorate(&mut response.headers, origin);
        return response;
    }
    let head = request.method == Method::HEAD;
    let mut response = match dispatch(services, request, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    services.cors.decorate(&mut response.headers, origin);
    if head {
        // Same status and headers as GET (Content-Length included), no body.
        if let ResponseBody::Full(bytes) = &response.body
            && !response.headers.contains_key(header::CONTENT_LENGTH)
        {
            response.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        }
        response.body = ResponseBody::Full(Bytes::new());
    }
    response
}

/// The body size a request declares, if it declares one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

async fn dispatch(services: &Services, mut request: ApiRequest, body: IncomingBody) -> Result<ApiResponse, ApiError> {
    let (endpoint, ids) = routes::resolve(&request.method, &request.path)?;
    let grant = auth::authenticate(services, &request.headers, endpoint.access()).await?;
    // Uploads are read by their endpoint as they arrive; everything else (JSON sent to an
    // upload route included) is read whole here.
    let streamed = endpoint.takes_uploads() && !input::declares_json(&request);
    let limit = if streamed { services.limits.max_upload_bytes } else { services.limits.max_body_bytes };
    if declared_length(&request.headers).is_some_and(|declared| declared > limit as u64) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let upload = if streamed {
        Some(body::limited(body.into_stream(), limit))
    } else {
        request.body = body.collect(limit).await?;
        None
    };
    let ctx = Ctx {
        services,
        actor: grant.shown.clone().unwrap_or_else(|| "(a key made before keys were listed)".into()),
        app: grant.app,
        request: &request,
        ids,
        query: input::Query::parse(&request.query),
        upload: std::sync::Mutex::new(upload),
        streamed: std::sync::Mutex::new(None),
    };
    if endpoint.idempotent() { idempotency::run_once(&ctx, endpoint).await } else { run(&ctx, endpoint).await }
}

async fn run(ctx: &Ctx<'_>, endpoint: Endpoint) -> Result<ApiResponse, ApiError> {
    match endpoint {
        Endpoint::ListConversations => conversations::list(ctx).await,
        Endpoint::CreateConversation => handoff::create(ctx).await,
        Endpoint::AddMessages => handoff::add_messages(ctx).await,
        Endpoint::ForkConversation => handoff::fork(ctx).await,
        Endpoint::GetConversation => conversations::get(ctx).await,
        Endpoint::UpdateConversation => conversations::update(ctx).await,
        Endpoint::DeleteConversation => conversations::delete(ctx).await,
        Endpoint::RenameConversation => conversations::rename(ctx).await,
        Endpoint::ListConversationVariables => variables::list(ctx).await,
        Endpoint::UpdateConversationVariable => variables::update(ctx).await,
        Endpoint::ListMessages => messages::list(ctx).await,
        Endpoint::DeleteMessage => messages::delete(ctx).await,
        Endpoint::MessageFeedback => feedback::submit(ctx).await,
        Endpoint::AppFeedbacks => feedback::list_app(ctx).await,
        Endpoint::AppInfo => app_info::info(ctx),
        Endpoint::AppParameters => app_info::parameters(ctx),
        Endpoint::AppMeta => app_info::meta(ctx),
        Endpoint::AppSite => app_info::site(ctx),
        Endpoint::ChatMessages => chat::send(ctx).await,
        Endpoint::RegenerateMessage => chat::regenerate(ctx).await,
        Endpoint::StopChatMessage => chat::stop(ctx).await,
        Endpoint::SuggestedQuestions => suggested::list(ctx).await,
        Endpoint::ListAnnotations => annotations::list(ctx).await,
        Endpoint::CreateAnnotation => annotations::create(ctx).await,
        Endpoint::UpdateAnnotation => annotations::update(ctx).await,
        Endpoint::DeleteAnnotation => annotations::delete(ctx).await,
        Endpoint::AnnotationReply => annotations::reply_action(ctx).await,
        Endpoint::AnnotationReplyStatus => annotations::reply_status(ctx).await,
        Endpoint::FileUpload => files::upload(ctx).await,
        Endpoint::FileUploadUrl => files::upload_url(ctx).await,
        Endpoint::FilePreview => files::preview(ctx).await,
        Endpoint::AudioToText => audio::audio_to_text(ctx).await,
        Endpoint::TextToAudio => audio::text_to_audio(ctx).await,
        Endpoint::AppConversations => operator::conversations(ctx).await,
        Endpoint::AppConversationMessages => operator::conversation_messages(ctx).await,
        Endpoint::AppDeleteConversation => operator::delete_conversation(ctx).await,
        Endpoint::AppFilePreview => operator::file_preview(ctx).await,
        Endpoint::AppMessageAudio => audio::message_audio(ctx).await,
        Endpoint::AppMessageFeedback => feedback::submit_operator(ctx).await,
        Endpoint::AppAuditLog => operator::audit_log(ctx).await,
        Endpoint::AppStats => operator::stats(ctx).await,
        Endpoint::CreateExport => exports::create(ctx).await,
        Endpoint::AppExport => exports::status(ctx).await,
        Endpoint::DownloadExport => exports::download(ctx).await,
        Endpoint::EraseEndUser => end_users::erase(ctx).await,
        Endpoint::EndUserErasure => end_users::erasure(ctx).await,
        Endpoint::ExportEndUser => end_users::export(ctx).await,
    }
}

/// A counted rate-limit hit (none when the limit is off): its key and window.
#[must_use]
pub(crate) struct RateHit(Option<(String, i64)>);

impl RateHit {
    /// Uncounts the hit, as the write it allowed failed. Best effort: a failure is logged.
    async fn give_back(self, ctx: &Ctx<'_>) {
        if let Some((key, window_start)) = self.0
            && let Err(error) = ctx.store().give_back(&key, window_start).await
        {
            tracing::warn!(%error, "could not give back a rate-limit hit");
        }
    }
}

/// One authenticated request on its way through an endpoint.
pub(crate) struct Ctx<'a> {
    services: &'a Services,
    app: App,
    /// The key as the audit log names it (its shown start).
    actor: String,
    request: &'a ApiRequest,
    ids: PathIds,
    query: input::Query,
    /// The body of an upload route, not yet read (taken once by the endpoint).
    upload: std::sync::Mutex<Option<BodyStream>>,
    /// The answer a streaming chat started (what an idempotent request's outcome is).
    streamed: std::sync::Mutex<Option<idempotency::Streamed>>,
}

impl Ctx<'_> {
    /// The upload body, for the one reader that takes it.
    fn take_upload(&self) -> BodyStream {
        self.upload.lock().ok().and_then(|mut slot| slot.take()).unwrap_or_else(|| IncomingBody::empty().into_stream())
    }

    /// Puts back an upload body read ahead of the endpoint (by the idempotency check).
    fn put_upload(&self, body: BodyStream) {
        if let Ok(mut slot) = self.upload.lock() {
            *slot = Some(body);
        }
    }

    /// Notes the answer a streaming chat started.
    fn note_streamed(&self, streamed: idempotency::Streamed) {
        if let Ok(mut slot) = self.streamed.lock() {
            *slot = Some(streamed);
        }
    }

    /// The answer a streaming chat started, if it did.
    fn streamed(&self) -> Option<idempotency::Streamed> {
        self.streamed.lock().ok().and_then(|slot| *slot)
    }

    fn store(&self) -> &dyn Store {
        self.services.store.as_ref()
    }

    fn now(&self) -> Timestamp {
        self.services.clock.now()
    }

    /// What `read` finds of `user`'s data on a route that only reads, and whose it is. End
    /// users are found by their derived id, without a request ([`Owner::derived`]); only when
    /// that finds nothing is the stored end user looked up, and `read` repeated as it if its id
    /// differs (an end user first seen before ids were derived keeps its random id). Reads never
    /// write: unlike Dify, a read does not create the end user.
    async fn read_as<T, F, R>(&self, user: &UserRef, read: F) -> Result<Option<(Owner, T)>, ApiError>
    where
        F: Fn(Owner) -> R,
        R: Future<Output = Result<Option<T>, ApiError>>,
    {
        let derived = Owner::derived(self.app.id, user);
        if let Some(found) = read(derived).await? {
            return Ok(Some((derived, found)));
        }
        match self.store().find_end_user(self.app.id, user).await? {
            Some(stored) if stored.id != derived.end_user_id => {
                let owner = stored.owner();
                Ok(read(owner).await?.map(|found| (owner, found)))
            }
            _ => Ok(None),
        }
    }

    /// Gets or creates the end user of this app for `user`.
    async fn end_user(&self, user: UserRef) -> Result<EndUser, ApiError> {
        let fresh = EndUser {
            id: EndUserId::derived(self.app.id, &user),
            app_id: self.app.id,
            session_id: user.clone(),
            created_at: self.now(),
        };
        Ok(self.store().end_user(self.app.id, &user, fresh).await?)
    }

    /// Counts one write against `key` in a fixed one-minute window, with the app's per-minute
    /// limit (`feedback_rate_limit_per_minute`; 0 turns it off); 429 with `Retry-After` beyond it.
    /// A write that then fails gives its hit back ([`RateHit::give_back`]), so that only writes
    /// that happened use the budget.
    async fn check_rate(&self, key: &str) -> Result<RateHit, ApiError> {
        const WINDOW_SECONDS: i64 = 60;
        let limit = self.app.config.feedback_rate_limit_per_minute;
        if limit == 0 {
            return Ok(RateHit(None));
        }
        let now = self.now().unix_seconds();
        let window_start = now - now.rem_euclid(WINDOW_SECONDS);
        if self.store().try_hit(key, window_start, limit).await? {
            Ok(RateHit(Some((key.to_owned(), window_start))))
        } else {
            Err(ApiError::TooManyRequests { retry_after: (window_start + WINDOW_SECONDS - now).max(1) as u64 })
        }
    }

    /// Records what an operator asked for in the app's audit log, before it is done: a request
    /// whose entry cannot be written is refused (503), so nothing an operator reads goes
    /// unrecorded. `detail` is the request's own query (never what it reads), cut at 512 bytes.
    async fn audit(&self, action: AuditAction, target: Option<String>, detail: Option<&str>) -> Result<(), ApiError> {
        let id = AuditId::from_uuid(self.services.ids.new_id());
        let entry = AuditEntry::new(id, (self.app.id, self.now()), self.actor.clone(), action, target, detail);
        Ok(self.store().record(&entry).await?)
    }

    /// An absolute URL of this API for `path`, from the request's host (and the scheme a proxy
    /// names); the path alone without a host.
    fn url_of(&self, path: &str) -> String {
        let headers = &self.request.headers;
        let host = headers.get(http::header::HOST).and_then(|v| v.to_str().ok());
        let scheme = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("http");
        match host {
            Some(host) => format!("{scheme}://{host}{path}"),
            None => path.to_owned(),
        }
    }

    /// `found` unless it has expired (an expired conversation reads as gone).
    fn unexpired(&self, found: Option<Conversation>) -> Option<Conversation> {
        let now = self.now();
        found.filter(|c| !c.is_expired(now))
    }

    /// A conversation of the app found by id alone (operators see every end user's), unless
    /// it has expired.
    async fn unexpired_app_conversation(&self, id: ConversationId) -> Result<Option<ConversationSummary>, ApiError> {
        let found = self.store().app_conversation(self.app.id, id).await?;
        Ok(found.filter(|s| !s.conversation.is_expired(self.now())))
    }

    /// Whether a message's conversation is still there for reads: always for an app that
    /// keeps conversations (no read), else its conversation read and checked for expiry.
    async fn message_unexpired(&self, message: &Message) -> Result<bool, ApiError> {
        if self.app.config.retention.conversation_days.is_none() {
            return Ok(true);
        }
        let found = self.store().conversation(message.owner, message.conversation_id).await?;
        Ok(self.unexpired(found).is_some())
    }

    /// The conversation endpoints serve chat-like apps only.
    fn require_chat_app(&self) -> Result<(), ApiError> {
        if self.app.is_chat_like() { Ok(()) } else { Err(ApiError::NotChatApp) }
    }
}
