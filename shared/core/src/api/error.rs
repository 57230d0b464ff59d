//! The one place where failures become Dify's `{"code","message","status"}` bodies.

use http::{HeaderValue, StatusCode, header};

use crate::api::ApiResponse;
use crate::api::views::ErrorBody;
use crate::domain::Invalid;
use crate::ports::{ProviderError, StoreError};

/// Every way a request can fail, in the API's terms.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No route has this path (also: a path id that is not a UUID).
    #[error("route not found")]
    RouteNotFound,
    /// Carries the route's methods, for the `Allow` header.
    #[error("method not allowed")]
    MethodNotAllowed(String),
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A missing object, or one owned by another user or app (indistinguishable on purpose).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// A parameter failed validation (Dify's `ValueError` → `invalid_param`).
    #[error("invalid param: {0}")]
    InvalidParam(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The object is not in a state the request needs (code, message).
    #[error("conflict: {0}")]
    Conflict(&'static str, &'static str),
    /// As [`ApiError::Conflict`], for a state that passes soon: `Retry-After` says when to ask again.
    #[error("conflict: {code}")]
    ConflictRetry { code: &'static str, message: &'static str, retry_after: u64 },
    /// The request is well-formed but cannot be done as asked (code, message).
    #[error("unprocessable: {0}")]
    Unprocessable(&'static str, &'static str),
    /// A stored answer that failed, told again (its stored, caller-safe message).
    #[error("the answer failed: {0}")]
    AnswerFailed(String),
    #[error("the request body is not valid JSON")]
    MalformedJson,
    #[error("not a chat app")]
    NotChatApp,
    #[error("the body is not JSON")]
    UnsupportedMediaType,
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// A response larger than the function serving it may return (a buffered Lambda response).
    #[error("the response is too large to return")]
    ResponseTooLarge,
    #[error("rate limited for {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    /// The client did not send its request body in time.
    #[error("the request body was not sent in time")]
    RequestTimeout,
    /// The server is at its limit of requests in flight; try again after `retry_after` s.
    #[error("overloaded; retry after {retry_after} s")]
    Overloaded { retry_after: u64 },
    #[error("no file uploaded")]
    NoFileUploaded,
    #[error("too many files")]
    TooManyFiles,
    #[error("the file has no name")]
    FilenameNotExists,
    #[error("file too large: {0}")]
    FileTooLarge(String),
    #[error("unsupported file type")]
    UnsupportedFileType,
    #[error("file not found")]
    FileNotFound,
    /// A byte range outside the file; carries the file's size.
    #[error("range not satisfiable")]
    RangeNotSatisfiable(u64),
    /// `audio-to-text` without a `file` part (Werkzeug's `BadRequestKeyError` in Dify).
    #[error("no audio file part")]
    NoAudioPart,
    #[error("audio too large")]
    AudioTooLarge,
    #[error("unsupported audio type")]
    UnsupportedAudioType,
    /// No speech-to-text engine is configured.
    #[error("no speech to text provider")]
    NoSpeechToText,
    /// No text-to-speech engine is configured.
    #[error("no text to speech provider")]
    NoTextToSpeech,
    /// A language-model provider failed.
    #[error("provider: {0}")]
    Provider(#[from] ProviderError),
    /// A dependency (the store, the blob store) stayed unavailable through its retries. The
    /// detail is logged, never sent; the client is told to retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything unexpected. The detail is logged, never sent.
    #[error("internal: {0}")]
    Internal(String),
}

/// What `Retry-After` says with a 503, in seconds: the adapters have retried for up to a few
/// seconds already, so a fault that outlived them is not over at once.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 1;

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        Self::InvalidParam(invalid.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Self::Unavailable(error.to_string()),
            _ => Self::Internal(error.to_string()),
        }
    }
}

impl ApiError {
    /// HTTP status, Dify error code and message (also used for streamed `error` events).
    pub(crate) fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::RouteNotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.".into(),
            ),
            Self::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "The method is not allowed for the requested URL.".into(),
            ),
            Self::Unauthorized(message) => (StatusCode::UNAUTHORIZED, "unauthorized", (*message).into()),
            Self::Forbidden(message) => (StatusCode::FORBIDDEN, "forbidden", (*message).into()),
            Self::NotFound(message) => (StatusCode::NOT_FOUND, "not_found", (*message).into()),
            Self::InvalidParam(message) => (StatusCode::BAD_REQUEST, "invalid_param", message.clone()),
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, "bad_request", message.clone()),
            Self::Conflict(code, message) => (StatusCode::CONFLICT, code, (*message).into()),
            Self::ConflictRetry { code, message, .. } => (StatusCode::CONFLICT, code, (*message).into()),
            Self::Unprocessable(code, message) => (StatusCode::UNPROCESSABLE_ENTITY, code, (*message).into()),
            Self::AnswerFailed(message) => (StatusCode::BAD_REQUEST, "completion_request_error", message.clone()),
            Self::MalformedJson => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Invalid JSON payload received or JSON payload is empty.".into(),
            ),
            Self::NotChatApp => (
                StatusCode::BAD_REQUEST,
                "not_chat_app",
                "Please check if your Chat app mode matches the right API route.".into(),
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Did not attempt to load JSON data because the request Content-Type was not 'application/json'.".into(),
            ),
            Self::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_entity_too_large",
                format!("The data value transmitted exceeds the capacity limit of {limit} bytes."),
            ),
            Self::ResponseTooLarge => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "response_too_large",
                "The response is larger than this deployment returns at once (4 MB).".into(),
            ),
            Self::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests. Please try again later.".into(),
            ),
            Self::RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "The server timed out waiting for the request body.".into(),
            ),
            Self::Overloaded { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "The server is busy. Please try again later.".into(),
            ),
            Self::NoFileUploaded => (StatusCode::BAD_REQUEST, "no_file_uploaded", "Please upload your file.".into()),
            Self::TooManyFiles => (StatusCode::BAD_REQUEST, "too_many_files", "Only one file is allowed.".into()),
            Self::FilenameNotExists => {
                (StatusCode::BAD_REQUEST, "filename_not_exists_error", "The specified filename does not exist.".into())
            }
            Self::FileTooLarge(message) => (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large", message.clone()),
            Self::UnsupportedFileType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_file_type", "File type not allowed.".into())
            }
            Self::FileNotFound => (StatusCode::NOT_FOUND, "file_not_found", "The requested file was not found.".into()),
            Self::RangeNotSatisfiable(_) => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                "requested_range_not_satisfiable",
                "The requested range is not satisfiable.".into(),
            ),
            Self::NoAudioPart => (
                StatusCode::BAD_REQUEST,
                "bad_request_key_error",
                "The browser (or proxy) sent a request that this server could not understand.".into(),
            ),
            Self::AudioTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "audio_too_large",
                format!("Audio size larger than {} mb", crate::domain::AUDIO_LIMIT_BYTES / (1024 * 1024)),
            ),
            Self::UnsupportedAudioType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_audio_type", "Audio type not allowed.".into())
            }
            Self::NoSpeechToText => (
                StatusCode::BAD_REQUEST,
                "provider_not_support_speech_to_text",
                "Provider not support speech to text.".into(),
            ),
            Self::NoTextToSpeech => (
                StatusCode::BAD_REQUEST,
                "provider_not_support_text_to_speech",
                "Provider not support text to speech.".into(),
            ),
            Self::Provider(ProviderError::NotInitialized(_)) => (
                StatusCode::BAD_REQUEST,
                "provider_not_initialize",
                "No valid model provider credentials found. Please go to Settings -> Model Provider to complete your provider credentials.".into(),
            ),
            // A provider's own text names its URLs, hosts and answers: it is logged, never sent.
            Self::Provider(ProviderError::RateLimited(_)) => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", "Rate Limit Error".into())
            }
            Self::Provider(ProviderError::Failed(_)) => {
                (StatusCode::BAD_REQUEST, "completion_request_error", "Completion request failed.".into())
            }
            // Our own words about the caller's audio (a recogniser that reads WAV only).
            Self::Provider(ProviderError::UnsupportedInput(detail)) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_audio_type", detail.clone())
            }
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "The service is temporarily unavailable. Please try again later.".into(),
            ),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "unknown", "Internal Server Error".into()),
        }
    }

    /// The HTTP response for this error, with the headers Dify sends alongside.
    pub fn into_response(self) -> ApiResponse {
        match &self {
            Self::Internal(detail) => tracing::error!(%detail, "request failed"),
            Self::Unavailable(detail) => tracing::warn!(%detail, "a dependency is unavailable; answered 503"),
            Self::Provider(error) => tracing::warn!(%error, "model provider failed"),
            _ => {}
        }
        let (status, code, message) = self.parts();
        let mut response = ApiResponse::json(status, &ErrorBody { code, message, status: status.as_u16() });
        match self {
            Self::Unauthorized(_) => {
                response.headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"api\""));
            }
            Self::TooManyRequests { retry_after }
            | Self::Overloaded { retry_after }
            | Self::ConflictRetry { retry_after, .. } => {
                response.headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            Self::RequestTimeout => {
                // The rest of the body may still be on its way: this connection is done.
                response.headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Self::Unavailable(_) => {
                response.headers.insert(header::RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_AFTER));
            }
            Self::MethodNotAllowed(allowed) => {
                if let Ok(value) = HeaderValue::from_str(&allowed) {
                    response.headers.insert(header::ALLOW, value);
                }
            }
            Self::RangeNotSatisfiable(size) => {
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    response.headers.insert(header::CONTENT_RANGE, value);
                }
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(error: ApiError) -> (u16, serde_json::Value) {
        let response = error.into_response();
        (response.status.as_u16(), serde_json::from_slice(response.body.as_full().unwrap()).unwrap())
    }

    #[test]
    fn errors_have_difys_shape() {
        let (status, json) = body(ApiError::NotFound("Conversation Not Exists."));
        assert_eq!(status, 404);
        assert_eq!(json, json!({"code": "not_found", "message": "Conversation Not Exists.", "status": 404}));
        let (status, json) = body(ApiError::Internal("disk on fire at /var/lib".into()));
        assert_eq!(status, 500);
        assert_eq!(json["message"], "Internal Server Error");
    }

    #[test]
    fn provider_errors_do_not_echo_the_provider() {
        let leak = "error sending request for url (http://127.0.0.1:9/v1/audio/transcriptions): upstream said no";
        for (error, status, code) in [
            (ProviderError::Failed(leak.into()), 400, "completion_request_error"),
            (ProviderError::RateLimited(leak.into()), 429, "rate_limit_error"),
            (ProviderError::NotInitialized(leak.into()), 400, "provider_not_initialize"),
        ] {
            let (answered, json) = body(ApiError::Provider(error));
            assert_eq!((answered, json["code"].as_str().unwrap()), (status, code));
            let message = json["message"].as_str().unwrap();
            for secret in ["http", "127.0.0.1", "/v1/", "upstream"] {
                assert!(!message.contains(secret), "{message}");
            }
        }
    }

    #[test]
    fn storage_that_stays_unavailable_is_a_503_to_retry() {
        let error = ApiError::from(StoreError::Unavailable("dispatch failure: connection reset at 10.0.0.7".into()));
        let response = error.into_response();
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers[header::RETRY_AFTER], "1");
        let json: serde_json::Value = serde_json::from_slice(response.body.as_full().unwrap()).unwrap();
        assert_eq!(
            json,
            json!({
                "code": "service_unavailable",
                "message": "The service is temporarily unavailable. Please try again later.",
                "status": 503,
            })
        );
        // Failures that retrying will not fix stay a 500 without the header.
        for error in [
            StoreError::Failed("ValidationException".into()),
            StoreError::Corrupt("attribute id".into()),
            StoreError::Conflict("the key exists".into()),
        ] {
            let response = ApiError::from(error).into_response();
            assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
            assert!(!response.headers.contains_key(header::RETRY_AFTER));
        }
    }

    #[test]
    fn auth_and_rate_limit_headers() {
        let response = ApiError::Unauthorized("Access token is invalid").into_response();
        assert_eq!(response.headers[header::WWW_AUTHENTICATE], "Bearer realm=\"api\"");
        let response = ApiError::TooManyRequests { retry_after: 42 }.into_response();
        assert_eq!(response.headers[header::RETRY_AFTER], "42");
    }
}
