//! Serves [`shared::api`] over HTTP with axum, with request logs and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use futures_util::StreamExt;
use shared::api::{ApiRequest, ApiResponse, ResponseBody, Services, handle};
use shared::error::ApiError;
use tokio::net::TcpListener;

/// Serves until `shutdown` completes, then finishes in-flight requests and returns.
pub async fn serve(
    listener: TcpListener,
    services: Services,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/openapi.yaml", axum::routing::get(openapi))
        .fallback(answer)
        .with_state(Arc::new(services));
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// The API's OpenAPI 3.1 document (the repository's `openapi.yaml`).
pub const OPENAPI: &str = include_str!("../../openapi.yaml");

async fn openapi() -> Response {
    let mut response = Response::new(Body::from(OPENAPI));
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/yaml"));
    response
}

async fn answer(State(services): State<Arc<Services>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let limit = services.limits.largest();
    let response = match axum::body::to_bytes(body, limit).await {
        Ok(body) => {
            let request = ApiRequest {
                method: parts.method,
                path: path.clone(),
                query: parts.uri.query().unwrap_or("").to_owned(),
                headers: parts.headers,
                body,
            };
            handle(&services, request).await
        }
        // The only way reading a buffered local body fails is exceeding the limit.
        Err(_) => ApiError::PayloadTooLarge(limit).into_response(),
    };
    tracing::info!(
        %method,
        %path,
        status = response.status.as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    into_axum(response)
}

fn into_axum(response: ApiResponse) -> Response {
    let body = match response.body {
        ResponseBody::Full(bytes) => Body::from(bytes),
        ResponseBody::Stream(stream) => Body::from_stream(stream.map(Ok::<_, Infallible>)),
    };
    let mut out = Response::new(body);
    *out.status_mut() = response.status;
    *out.headers_mut() = response.headers;
    out
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
