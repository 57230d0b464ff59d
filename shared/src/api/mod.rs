//! The framework-neutral HTTP layer: an [`ApiRequest`] goes in, an [`ApiResponse`] comes
//! out. The local server and the Lambda functions only translate to and from these.

mod app_info;
mod auth;
mod conversations;
mod feedback;
mod input;
mod messages;
mod render;
mod routes;
mod variables;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::Value;

pub use routes::{Endpoint, ROUTES};

use crate::domain::{App, EndUser, EndUserId, Timestamp, UserRef};
use crate::error::ApiError;
use crate::ports::{Clock, IdGenerator, Llm, Store};
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

/// An HTTP response, independent of any web framework.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    pub fn json(status: StatusCode, value: &Value) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Self { status, headers, body: Bytes::from(value.to_string()) }
    }

    pub fn ok(value: &Value) -> Self {
        Self::json(StatusCode::OK, value)
    }

    /// 204 with no body and no content type (a JSON-typed empty 204 breaks the npm SDK).
    pub fn no_content() -> Self {
        Self { status: StatusCode::NO_CONTENT, headers: HeaderMap::new(), body: Bytes::new() }
    }
}

/// Limits the API enforces on requests.
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self { max_body_bytes: 1024 * 1024 }
    }
}

/// Everything a request handler may use, built once at start-up.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    /// The language model for titles; `None` falls back to Dify's query-as-title rule.
    pub llm: Option<Arc<dyn Llm>>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub limits: ApiLimits,
}

/// Serves one request: routing, authentication, the endpoint, and error mapping.
pub async fn handle(services: &Services, request: ApiRequest) -> ApiResponse {
    match dispatch(services, &request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn dispatch(services: &Services, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let (endpoint, ids) = routes::resolve(&request.method, &request.path)?;
    if request.body.len() > services.limits.max_body_bytes {
        return Err(ApiError::PayloadTooLarge(services.limits.max_body_bytes));
    }
    let app = auth::authenticate(services, &request.headers).await?;
    let ctx = Ctx { services, app, request, ids, query: input::Query::parse(&request.query) };
    match endpoint {
        Endpoint::ListConversations => conversations::list(&ctx).await,
        Endpoint::DeleteConversation => conversations::delete(&ctx).await,
        Endpoint::RenameConversation => conversations::rename(&ctx).await,
        Endpoint::ListConversationVariables => variables::list(&ctx).await,
        Endpoint::UpdateConversationVariable => variables::update(&ctx).await,
        Endpoint::ListMessages => messages::list(&ctx).await,
        Endpoint::MessageFeedback => feedback::submit(&ctx).await,
        Endpoint::AppFeedbacks => feedback::list_app(&ctx).await,
        Endpoint::AppInfo => app_info::info(&ctx),
        Endpoint::AppParameters => app_info::parameters(&ctx),
        Endpoint::AppMeta => app_info::meta(&ctx),
        Endpoint::AppSite => app_info::site(&ctx),
    }
}

/// One authenticated request on its way through an endpoint.
pub(crate) struct Ctx<'a> {
    services: &'a Services,
    app: App,
    request: &'a ApiRequest,
    ids: PathIds,
    query: input::Query,
}

impl Ctx<'_> {
    fn store(&self) -> &dyn Store {
        self.services.store.as_ref()
    }

    fn now(&self) -> Timestamp {
        self.services.clock.now()
    }

    /// Gets or creates the end user of this app for `user`.
    async fn end_user(&self, user: UserRef) -> Result<EndUser, ApiError> {
        let fresh = EndUser {
            id: EndUserId::from_uuid(self.services.ids.new_id()),
            app_id: self.app.id,
            session_id: user.clone(),
            created_at: self.now(),
        };
        Ok(self.store().end_user(self.app.id, &user, fresh).await?)
    }

    /// The conversation endpoints serve chat-like apps only.
    fn require_chat_app(&self) -> Result<(), ApiError> {
        if self.app.is_chat_like() { Ok(()) } else { Err(ApiError::NotChatApp) }
    }
}
