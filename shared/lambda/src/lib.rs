//! Serving one endpoint as a Lambda function: API Gateway HTTP API (payload 2.0) and
//! Function URL events in, the framework-neutral API in between, Lambda responses out.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use colloquy_aws::Aws;
use colloquy_aws::dynamo::ChangedItem;
pub use colloquy_core::api::Endpoint;
use colloquy_core::api::error::ApiError;
use colloquy_core::api::{
    ApiRequest, ApiResponse, JobRunner, KeyCache, ResponseBody, Services, handle, resolve_endpoint,
};
use colloquy_core::domain::DownloadHeaders;
use colloquy_core::ports::{Blob, BlobRange, BlobStore, BlobStream, StoreError, StoreResult};
use colloquy_core::settings::{Program, Settings, SttChoice, TtsChoice};
use colloquy_core::speech::Speech;
use colloquy_core::system::{SystemClock, TimeOrderedIds};
use futures_util::StreamExt;
use http::header::CONTENT_TYPE;
use http_body_util::StreamBody;
pub use lambda_http::Error;
use lambda_http::{Body, Request, Response, service_fn};

/// What every function does first: its settings from the environment (the one reader),
/// logging, and the AWS configuration every client is built from.
async fn start() -> Result<(Settings, Aws), Error> {
    let settings = Settings::from_env(Program::Lambda)?;
    colloquy_core::logging::init(&settings.log)?;
    let aws = Aws::load(&settings.store).await?;
    Ok((settings, aws))
}

/// Everything an endpoint needs, composed once per cold start: the store always, the bucket
/// only when its spec says it keeps or reads files (`BLOBS`), the configured models only when
/// it calls one (`MODELS`), a text-to-speech engine only for text to audio (`TTS`) and a
/// speech-to-text engine only for audio to text (`STT`). All four are constants taken from
/// the endpoint's spec by [`serve!`], so a function's binary links and builds only the
/// clients its endpoint uses (each AWS SDK client parses its own endpoint tables when built).
pub async fn services<const MODELS: bool, const TTS: bool, const STT: bool, const BLOBS: bool>()
-> Result<Services, Error> {
    let (settings, aws) = start().await?;
    compose::<MODELS, TTS, STT, BLOBS>(&settings, &aws)
}

fn compose<const MODELS: bool, const TTS: bool, const STT: bool, const BLOBS: bool>(
    settings: &Settings,
    aws: &Aws,
) -> Result<Services, Error> {
    let s3 = BLOBS.then(|| aws.blobs(&settings.store));
    let models = if MODELS {
        let bedrock = settings.models.bedrock.as_ref().map(|b| aws.bedrock(b)).into_iter().collect();
        colloquy_providers::models(&settings.models, bedrock)?
    } else {
        colloquy_providers::echo_only()
    };
    let speech = if TTS || STT { speech(settings, aws, TTS, s3.as_ref().filter(|_| STT))? } else { Speech::none() };
    let blobs: Arc<dyn BlobStore> = match s3 {
        Some(s3) => Arc::new(s3),
        None => Arc::new(NoBlobStore),
    };
    Ok(Services {
        store: Arc::new(aws.store(&settings.store)),
        blobs,
        models,
        speech,
        clock: Arc::new(SystemClock),
        ids: Arc::new(TimeOrderedIds),
        limits: settings.limits,
        cors: settings.cors.clone(),
        keys: Arc::new(KeyCache::new(settings.key_cache)),
        // The job's insert reaches the table's stream, and the run-export function.
        jobs: JobRunner::Stream,
    })
}

/// The blob store of a function whose endpoint keeps and reads no files: the S3 client is not
/// built. Reaching it is a bug in the endpoint's spec (it should list `blobs`), answered 500.
struct NoBlobStore;

impl NoBlobStore {
    fn error() -> StoreError {
        StoreError::Failed("this function has no blob store: its endpoint's spec does not list blobs".into())
    }
}

#[async_trait::async_trait]
impl BlobStore for NoBlobStore {
    async fn put_blob(&self, _: &str, _: &str, _: Bytes) -> StoreResult<()> {
        Err(Self::error())
    }

    async fn put_blob_stream(&self, _: &str, _: &str, _: BlobStream) -> StoreResult<u64> {
        Err(Self::error())
    }

    async fn get_blob(&self, _: &str, _: Option<BlobRange>) -> StoreResult<Option<Blob>> {
        Err(Self::error())
    }

    async fn stream_blob(&self, _: &str) -> StoreResult<Option<(BlobStream, String, u64)>> {
        Err(Self::error())
    }

    async fn presign_get(&self, _: &str, _: Duration, _: &DownloadHeaders) -> StoreResult<Option<String>> {
        Err(Self::error())
    }

    async fn presign_put(&self, _: &str, _: &str, _: u64, _: Duration) -> StoreResult<Option<String>> {
        Err(Self::error())
    }

    async fn delete_blob(&self, _: &str) -> StoreResult<()> {
        Err(Self::error())
    }

    async fn count_blobs(&self, _: &str) -> StoreResult<u64> {
        Err(Self::error())
    }
}

/// The speech engines a function may use: Polly, Transcribe or an OpenAI-compatible API
/// (Lambda's runtime has no local engines). Text to speech only when `tts`, speech to text
/// only when the blob store it reads the audio from is given (`stt_blobs`): the other
/// direction's choice is not read, so its client is not built.
fn speech(
    settings: &Settings,
    aws: &Aws,
    tts: bool,
    stt_blobs: Option<&colloquy_aws::s3::S3Blobs>,
) -> Result<Speech, Error> {
    let openai = || colloquy_providers::openai_speech(settings.speech.openai.as_ref());
    let synthesizer = match tts.then_some(&settings.speech.tts) {
        Some(TtsChoice::Polly { engine }) => Some(aws.polly(engine)),
        Some(TtsChoice::OpenAi) => Some(openai()? as _),
        None | Some(TtsChoice::None | TtsChoice::Auto) => None,
        Some(TtsChoice::Espeak) => return Err("COLLOQUY_TTS=espeak: espeak-ng does not run on Lambda".into()),
    };
    let transcriber = match stt_blobs.map(|blobs| (blobs, &settings.speech.stt)) {
        Some((blobs, SttChoice::Transcribe { language, polling })) => {
            Some(aws.transcribe(blobs.clone(), language.clone(), *polling))
        }
        Some((_, SttChoice::OpenAi)) => Some(openai()? as _),
        None | Some((_, SttChoice::None | SttChoice::Auto)) => None,
        Some((_, SttChoice::PocketSphinx)) => {
            return Err("COLLOQUY_STT=pocketsphinx: PocketSphinx does not run on Lambda".into());
        }
    };
    let speech = Speech { synthesizer, transcriber };
    let (tts, stt) = speech.describe();
    tracing::info!(text_to_speech = tts.unwrap_or("none"), speech_to_text = stt.unwrap_or("none"), "speech engines");
    Ok(speech)
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

/// The largest body a buffered response carries: Lambda refuses responses over 6 MB (API
/// Gateway would answer 500), and binary bodies grow by a third in base64.
const MAX_BUFFERED_BODY: usize = 4 * 1024 * 1024;

/// A buffered Lambda response; JSON and text as text, anything else base64-encoded binary. A
/// streamed body larger than Lambda can return is answered 422 `response_too_large` instead.
async fn buffered(response: ApiResponse) -> Response<Body> {
    let bytes = match response.body {
        ResponseBody::Full(bytes) => bytes,
        ResponseBody::Stream(mut stream) => {
            let mut collected = Vec::new();
            while let Some(chunk) = stream.next().await {
                collected.extend_from_slice(&chunk);
                if collected.len() > MAX_BUFFERED_BODY {
                    tracing::warn!(bytes = collected.len(), "a response too large for Lambda was cut off");
                    return Box::pin(buffered(ApiError::ResponseTooLarge.into_response())).await;
                }
            }
            Bytes::from(collected)
        }
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

/// The services of `$endpoint`, composed with its needs taken from its spec as constants.
#[doc(hidden)]
#[macro_export]
macro_rules! services_for {
    ($endpoint:ident) => {
        $crate::services::<
            { $crate::Endpoint::$endpoint.needs().models },
            { $crate::Endpoint::$endpoint.needs().tts },
            { $crate::Endpoint::$endpoint.needs().stt },
            { $crate::Endpoint::$endpoint.needs().blobs },
        >()
    };
}

/// Runs the Lambda runtime loop for one endpoint: `serve!(ListMessages)` in a function's
/// `main`, with buffered responses (API Gateway; binary bodies go out base64-encoded).
#[macro_export]
macro_rules! serve {
    ($endpoint:ident) => {
        $crate::serve_with($crate::Endpoint::$endpoint, $crate::services_for!($endpoint))
    };
}

/// Runs the Lambda runtime loop for one endpoint with streamed responses (a Function URL with
/// `InvokeMode: RESPONSE_STREAM`), so server-sent events reach the client as they come:
/// `serve_streaming!(ChatMessages)`.
#[macro_export]
macro_rules! serve_streaming {
    ($endpoint:ident) => {
        $crate::serve_streaming_with($crate::Endpoint::$endpoint, $crate::services_for!($endpoint))
    };
}

/// The buffered runtime loop of [`serve!`], once `services` are composed.
pub async fn serve_with(
    endpoint: Endpoint,
    services: impl Future<Output = Result<Services, Error>>,
) -> Result<(), Error> {
    let services = services.await?;
    let services = &services;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(buffered(answer(services, endpoint, api_request(request)).await).await)
    }))
    .await
}

type Frames = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<http_body::Frame<Bytes>, Infallible>> + Send>>;

/// The streaming runtime loop of [`serve_streaming!`], once `services` are composed.
pub async fn serve_streaming_with(
    endpoint: Endpoint,
    services: impl Future<Output = Result<Services, Error>>,
) -> Result<(), Error> {
    let services = services.await?;
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

/// The console's assets (`/console/…`): no settings, store or AWS client.
pub async fn serve_console() -> Result<(), Error> {
    lambda_http::run(service_fn(move |request: Request| async move {
        let path = request.uri().path().to_owned();
        Ok::<_, Infallible>(buffered(colloquy_core::console::respond(request.method(), &path)).await)
    }))
    .await
}

/// A record of the table's stream: the item as it is after the change and as it was before
/// (`None` when there is no such image, or not one this program reads).
struct Change {
    new: Option<ChangedItem>,
    old: Option<ChangedItem>,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    event: String,
}

/// Runs a table-stream consumer: `handle` gets each record and says whether it is done; a
/// record it failed is reported, so only that record is retried.
async fn serve_records<F, R>(handle: F) -> Result<(), Error>
where
    F: Fn(Change) -> R,
    R: Future<Output = bool>,
{
    use aws_lambda_events::event::dynamodb::Event;
    use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
    use lambda_runtime::LambdaEvent;

    let handle = &handle;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<Event>| async move {
        let mut response = DynamoDbEventResponse::default();
        for record in event.payload.records {
            let change = Change {
                new: serde_dynamo::from_item(record.change.new_image.clone()).ok(),
                old: serde_dynamo::from_item(record.change.old_image.clone()).ok(),
                event: record.event_name.clone(),
            };
            if !handle(change).await {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
            }
        }
        Ok::<_, Error>(response)
    }))
    .await
}

/// The table-stream consumer: purges every conversation a batch tombstoned or DynamoDB's TTL
/// removed (an app's retention), and deletes the bytes of files the TTL removed (purges and
/// deletes are idempotent, so a failed one is simply retried).
pub async fn serve_purge() -> Result<(), Error> {
    let (settings, aws) = start().await?;
    let store = aws.store(&settings.store);
    let blobs = aws.blobs(&settings.store);
    let (store, blobs) = (&store, &blobs);
    serve_records(move |change| async move {
        let removed = if change.event == "REMOVE" { change.old.as_ref() } else { None };
        if let Some(key) = removed.and_then(ChangedItem::removed_file) {
            return match blobs.delete_blob(&key).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(%error, "an expired file's bytes could not be deleted; the record will be retried");
                    false
                }
            };
        }
        let target = change
            .new
            .as_ref()
            .and_then(ChangedItem::deleted_conversation)
            .or_else(|| removed.and_then(ChangedItem::expired_conversation));
        let Some((owner, conversation)) = target else {
            return true;
        };
        match store.purge_conversation(owner, conversation).await {
            Ok(report) => {
                tracing::info!(%conversation, items = report.items_deleted, "purged");
                true
            }
            Err(error) => {
                tracing::warn!(%conversation, %error, "purge failed; the record will be retried");
                false
            }
        }
    })
    .await
}

/// The table-stream consumer that runs exports: each new export job (its insert) is run to
/// its end, its file written to S3 in parts. An export that failed reports its record, so the
/// stream runs it again (from the start: the file appears only once complete).
pub async fn serve_exports() -> Result<(), Error> {
    use colloquy_core::domain::ExportStatus;
    use colloquy_core::ports::Store;

    let (settings, aws) = start().await?;
    let store: Arc<dyn Store> = Arc::new(aws.store(&settings.store));
    let blobs = aws.blobs(&settings.store);
    let (store, blobs) = (&store, &blobs);
    serve_records(move |change| async move {
        let Some((app, id)) = change.new.as_ref().and_then(ChangedItem::export) else { return true };
        match store.export(app, id).await {
            Ok(Some(job)) if job.status != ExportStatus::Done => {
                let job = colloquy_core::export::run_export(store.clone(), blobs, &SystemClock, job).await;
                tracing::info!(export = %id, status = job.status.as_str(), messages = job.exported, "export ended");
                job.status == ExportStatus::Done
            }
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(export = %id, %error, "could not read an export's job");
                false
            }
        }
    })
    .await
}

/// The table-stream consumer that runs erasures: each new erasure job (its insert) is run to
/// its end. One that failed reports its record, so the stream runs it again (it continues:
/// every step is idempotent).
pub async fn serve_erasures() -> Result<(), Error> {
    use colloquy_core::domain::ErasureStatus;
    use colloquy_core::ports::Store;

    let (settings, aws) = start().await?;
    let store: Arc<dyn Store> = Arc::new(aws.store(&settings.store));
    let blobs = aws.blobs(&settings.store);
    let (store, blobs) = (&store, &blobs);
    serve_records(move |change| async move {
        let Some((app, id)) = change.new.as_ref().and_then(ChangedItem::erasure) else { return true };
        match store.erasure(app, id).await {
            Ok(Some(job)) if job.status != ErasureStatus::Done => {
                let job = colloquy_core::erasure::run_erasure(store.clone(), blobs, &SystemClock, job).await;
                let counts = job.counts;
                tracing::info!(erasure = %id, status = job.status.as_str(), conversations = counts.conversations,
                    messages = counts.messages, files = counts.files, "erasure ended");
                job.status == ErasureStatus::Done
            }
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(erasure = %id, %error, "could not read an erasure's job");
                false
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn aws() -> Aws {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        Aws::from_config(config)
    }

    /// What a function serving `$endpoint` composes (its needs taken from the spec, as `serve!` does).
    macro_rules! compose_for {
        ($endpoint:ident, $settings:expr) => {
            compose::<
                { Endpoint::$endpoint.needs().models },
                { Endpoint::$endpoint.needs().tts },
                { Endpoint::$endpoint.needs().stt },
                { Endpoint::$endpoint.needs().blobs },
            >($settings, &aws())
        };
    }

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let mut map: HashMap<&str, &str> = HashMap::from([("COLLOQUY_TABLE", "t"), ("COLLOQUY_BUCKET", "b")]);
        map.extend(pairs.iter().copied());
        Settings::read(Program::Lambda, |name| map.get(name).map(|v| (*v).to_owned())).unwrap()
    }

    #[tokio::test]
    async fn a_function_builds_only_the_clients_its_endpoint_needs() {
        let settings =
            settings(&[("COLLOQUY_LLM", "bedrock"), ("COLLOQUY_TTS", "polly"), ("COLLOQUY_STT", "transcribe")]);
        let plain = compose_for!(ListMessages, &settings).unwrap();
        assert_eq!(plain.models.default_provider(), "echo");
        // No S3 client: a call that reached the blob store would fail as a bug, not go out.
        let error = plain.blobs.delete_blob("any").await.unwrap_err();
        assert!(matches!(&error, StoreError::Failed(m) if m.contains("no blob store")), "{error:?}");
        assert!(plain.models.embedder("bedrock").is_err());
        assert_eq!(plain.speech.describe(), (None, None));
        let models = compose_for!(ChatMessages, &settings).unwrap();
        assert_eq!(models.models.default_provider(), "bedrock");
        assert_eq!(models.speech.describe(), (None, None));
        // Each audio route builds its own direction's client only (and text to speech no S3).
        let tts = compose_for!(TextToAudio, &settings).unwrap();
        assert_eq!(tts.speech.describe(), (Some("polly"), None));
        assert_eq!(tts.models.default_provider(), "echo");
        assert!(tts.blobs.delete_blob("any").await.is_err());
        let stt = compose_for!(AudioToText, &settings).unwrap();
        assert_eq!(stt.speech.describe(), (None, Some("transcribe")));
    }

    #[tokio::test]
    async fn local_engines_are_refused_on_lambda() {
        let error = compose_for!(TextToAudio, &settings(&[("COLLOQUY_TTS", "espeak")])).err().unwrap();
        assert!(error.to_string().contains("Lambda"), "{error}");
        let error = compose_for!(AudioToText, &settings(&[("COLLOQUY_STT", "pocketsphinx")])).err().unwrap();
        assert!(error.to_string().contains("Lambda"), "{error}");
        let none = compose_for!(AudioToText, &settings(&[])).unwrap();
        assert_eq!(none.speech.describe(), (None, None));
    }
}
