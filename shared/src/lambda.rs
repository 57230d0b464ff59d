//! Serving one endpoint as a Lambda function: API Gateway HTTP API (payload 2.0) and
//! Function URL events in, the framework-neutral API in between, Lambda responses out.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::CONTENT_TYPE;
use http_body_util::StreamBody;
pub use lambda_http::Error;
use lambda_http::{Body, Request, Response, service_fn};

use crate::adapters::aws_clients;
use crate::adapters::dynamo::{ChangedItem, DynamoStore};
use crate::adapters::s3::S3Blobs;
use crate::adapters::system::{SystemClock, TimeOrderedIds};
use crate::api::{
    ApiLimits, ApiRequest, ApiResponse, Cors, Endpoint, ResponseBody, Services, handle, resolve_endpoint,
};
use crate::config::{AwsSpeech, ModelSettings, SpeechSettings};
use crate::error::ApiError;
use crate::models::Models;
use crate::speech::Speech;

/// Everything read from the environment once, at cold start, with the given models and no
/// speech engines.
pub fn services_from_env(aws: &aws_config::SdkConfig, models: Models) -> Result<Services, Error> {
    services_and_bucket(aws, models).map(|(services, _)| services)
}

/// The services, and the S3 bucket they store blobs in (which Transcribe also uses).
fn services_and_bucket(aws: &aws_config::SdkConfig, models: Models) -> Result<(Services, S3Blobs), Error> {
    let table = std::env::var("COLLOQUY_TABLE").map_err(|_| "COLLOQUY_TABLE is not set")?;
    let store = DynamoStore::new(aws_clients::dynamodb(aws), table);
    let bucket = std::env::var("COLLOQUY_BUCKET").map_err(|_| "COLLOQUY_BUCKET is not set")?;
    let path_style = std::env::var("COLLOQUY_S3_PATH_STYLE").is_ok_and(|v| v == "true" || v == "1");
    let blobs = S3Blobs::new(aws_clients::s3(aws, path_style), bucket);
    let max_body_bytes = match std::env::var("COLLOQUY_MAX_BODY_BYTES") {
        Ok(raw) => raw.parse().map_err(|_| format!("COLLOQUY_MAX_BODY_BYTES: '{raw}' is not a number"))?,
        Err(_) => ApiLimits::default().max_body_bytes,
    };
    let services = Services {
        store: Arc::new(store),
        blobs: Arc::new(blobs.clone()),
        models,
        speech: Speech::none(),
        clock: Arc::new(SystemClock),
        ids: Arc::new(TimeOrderedIds),
        limits: ApiLimits { max_body_bytes, ..ApiLimits::default() },
        cors: cors_from_env()?,
    };
    Ok((services, blobs))
}

/// `COLLOQUY_CORS_ORIGINS`: `*` (any origin, the default), `none`, or a comma-separated list.
fn cors_from_env() -> Result<Cors, Error> {
    match std::env::var("COLLOQUY_CORS_ORIGINS") {
        Ok(raw) => Ok(Cors::parse(&raw).map_err(|e| format!("COLLOQUY_CORS_ORIGINS: {e}"))?),
        Err(_) => Ok(Cors::default()),
    }
}

/// What every function does first: logging, then the AWS configuration from the environment
/// (every client is then built through `aws_clients`, with its retries and timeouts).
async fn start() -> aws_config::SdkConfig {
    lambda_http::tracing::init_default_subscriber();
    aws_config::load_from_env().await
}

/// Services for an endpoint that calls no model: only the built-in echo provider, so the
/// function's binary links none of the model or speech clients.
async fn plain_services() -> Result<Services, Error> {
    let aws = start().await;
    services_from_env(&aws, Models::echo_only())
}

/// Services with the speech engines configured in the environment (`COLLOQUY_TTS`, ...); only
/// the audio functions link the speech clients.
async fn speech_services() -> Result<Services, Error> {
    let aws = start().await;
    let (mut services, blobs) = services_and_bucket(&aws, Models::echo_only())?;
    let context = AwsSpeech { config: aws, blobs: Some(blobs) };
    services.speech = SpeechSettings::from_env()?.build(Some(&context)).await?;
    Ok(services)
}

/// Services with the model providers configured in the environment (`COLLOQUY_LLM`, ...).
async fn model_services() -> Result<Services, Error> {
    let aws = start().await;
    let models = ModelSettings::from_env()?.build_with(Some(&aws)).await?;
    services_from_env(&aws, models)
}

/// Translates a Lambda HTTP event (already decoded from base64 where needed).
fn api_request(request: Request) -> ApiRequest {
    let (parts, body) = request.into_parts();
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts.headers,
        body,
    }
}

/// Serves `endpoint` only: any other route answers like an unknown one.
async fn answer(services: &Services, endpoint: Endpoint, request: ApiRequest) -> ApiResponse {
    match resolve_endpoint(&request.method, &request.path) {
        Ok(found) if found == endpoint => handle(services, request).await,
        // CORS preflights of this endpoint's path (API Gateway routes them here when its own
        // CORS configuration is off).
        Err(ApiError::MethodNotAllowed(_)) if request.method == http::Method::OPTIONS => {
            handle(services, request).await
        }
        Ok(_) => ApiError::RouteNotFound.into_response(),
        Err(error) => error.into_response(),
    }
}

/// A buffered Lambda response; JSON and text as text, anything else base64-encoded binary.
async fn buffered(response: ApiResponse) -> Response<Body> {
    let bytes = match response.body {
        ResponseBody::Full(bytes) => bytes,
        ResponseBody::Stream(stream) => Bytes::from(stream.collect::<Vec<Bytes>>().await.concat()),
    };
    let textual = response
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/"));
    let body = if bytes.is_empty() {
        Body::Empty
    } else if textual {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    } else {
        Body::Binary(bytes.to_vec())
    };
    let mut out = Response::new(body);
    *out.status_mut() = response.status;
    *out.headers_mut() = response.headers;
    out
}

/// Runs the Lambda runtime loop for an endpoint that calls no model (buffered responses,
/// for API Gateway).
pub async fn serve(endpoint: Endpoint) -> Result<(), Error> {
    run_buffered(endpoint, plain_services().await?).await
}

/// Runs the Lambda runtime loop for an endpoint that calls a model (buffered responses).
pub async fn serve_with_models(endpoint: Endpoint) -> Result<(), Error> {
    run_buffered(endpoint, model_services().await?).await
}

/// Runs the Lambda runtime loop for an audio endpoint (buffered; audio goes out as base64).
pub async fn serve_with_speech(endpoint: Endpoint) -> Result<(), Error> {
    run_buffered(endpoint, speech_services().await?).await
}

async fn run_buffered(endpoint: Endpoint, services: Services) -> Result<(), Error> {
    let services = &services;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(buffered(answer(services, endpoint, api_request(request)).await).await)
    }))
    .await
}

type Frames = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<http_body::Frame<Bytes>, Infallible>> + Send>>;

/// Runs the Lambda runtime loop for one endpoint with streamed responses (a Function URL
/// with `InvokeMode: RESPONSE_STREAM`), so server-sent events reach the client as they come.
pub async fn serve_streaming(endpoint: Endpoint) -> Result<(), Error> {
    let services = model_services().await?;
    let services = &services;
    lambda_http::run_with_streaming_response(service_fn(move |request: Request| async move {
        let response = answer(services, endpoint, api_request(request)).await;
        let frames: Frames = match response.body {
            ResponseBody::Full(bytes) => Box::pin(futures_util::stream::iter([Ok(http_body::Frame::data(bytes))])),
            ResponseBody::Stream(stream) => Box::pin(stream.map(|bytes| Ok(http_body::Frame::data(bytes)))),
        };
        let mut out = Response::new(StreamBody::new(frames));
        *out.status_mut() = response.status;
        *out.headers_mut() = response.headers;
        Ok::<_, Infallible>(out)
    }))
    .await
}

/// The table-stream consumer: purges every conversation a batch tombstoned. A failed purge
/// reports its record, so only that record is retried (purges are idempotent).
pub async fn serve_purge() -> Result<(), Error> {
    use aws_lambda_events::event::dynamodb::Event;
    use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
    use lambda_runtime::LambdaEvent;

    let aws = start().await;
    let table = std::env::var("COLLOQUY_TABLE").map_err(|_| "COLLOQUY_TABLE is not set")?;
    let store = DynamoStore::new(aws_clients::dynamodb(&aws), table);
    let store = &store;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<Event>| async move {
        let mut response = DynamoDbEventResponse::default();
        for record in event.payload.records {
            let changed: Option<ChangedItem> = serde_dynamo::from_item(record.change.new_image.clone()).ok();
            let Some((owner, conversation)) = changed.as_ref().and_then(ChangedItem::deleted_conversation) else {
                continue;
            };
            match store.purge_conversation(owner, conversation).await {
                Ok(report) => tracing::info!(%conversation, items = report.items_deleted, "purged"),
                Err(error) => {
                    tracing::warn!(%conversation, %error, "purge failed; the record will be retried");
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = record.change.sequence_number.clone();
                    response.batch_item_failures.push(failure);
                }
            }
        }
        Ok::<_, Error>(response)
    }))
    .await
}
