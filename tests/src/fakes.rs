//! Local HTTP fakes of the model providers, speaking their wire formats, on random ports.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Value, json};

/// Every request body a fake received.
pub type Seen = Arc<Mutex<Vec<Value>>>;

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a random port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// The answer text the fakes give for a request (by its system prompt and last user turn).
fn scripted_answer(system: &str, last_user: &str, model: &str) -> String {
    if model == "no-json" {
        "I would rather not.".into()
    } else if system.contains("name conversations") {
        json!({"Your Output": "Fake title"}).to_string()
    } else if system.contains("next questions") {
        json!(["First follow-up?", "Second follow-up?", "Third follow-up?"]).to_string()
    } else {
        format!("Fake answer to: {last_user}")
    }
}

/// An OpenAI-compatible API at `<base>/v1`: `/chat/completions` (plain and streamed),
/// `/embeddings`, `/audio/speech` and `/audio/transcriptions`. Requires `Authorization: Bearer sk-test`. Models named `fail-auth`,
/// `fail-rate`, `fail-server` fail that way (also as speech models); `break-mid-stream` fails
/// after one piece.
pub struct OpenAiFake {
    pub base_url: String,
    pub seen: Seen,
}

impl OpenAiFake {
    pub async fn start() -> Self {
        let seen = Seen::default();
        let router = Router::new()
            .route("/v1/chat/completions", post(openai_chat))
            .route("/v1/embeddings", post(openai_embeddings))
            .route("/v1/audio/speech", post(openai_speech))
            .route("/v1/audio/transcriptions", post(openai_transcription))
            .with_state(seen.clone());
        Self { base_url: format!("{}/v1", serve(router).await), seen }
    }
}

/// What the fakes' `fail-server` models answer: a provider's text naming its insides, which
/// the service must log and never pass on.
pub const INTERNAL_FAILURE: &str = "The server had an error at http://10.1.2.3:8000/v1/internal/engine";

/// Fails when an answer shows anything of a provider: its URLs, hosts, paths or own words.
pub fn assert_no_provider_detail(answered: &str) {
    for detail in [
        "http://",
        "127.0.0.1",
        "10.1.2.3",
        "/v1/",
        "/audio/",
        "internal",
        "error sending request",
        "The model crashed",
        "Incorrect API key",
        "Rate limit reached",
    ] {
        assert!(!answered.contains(detail), "{detail:?} reached the client: {answered}");
    }
}

fn openai_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"message": message, "type": "fake"}}))).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some("Bearer sk-test")
}

async fn openai_chat(State(seen): State<Seen>, headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> Response {
    seen.lock().unwrap().push(body.clone());
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if !authorized(&headers) || model == "fail-auth" {
        return openai_error(StatusCode::UNAUTHORIZED, "Incorrect API key provided");
    }
    match model.as_str() {
        "fail-rate" => return openai_error(StatusCode::TOO_MANY_REQUESTS, "Rate limit reached"),
        "fail-server" => return openai_error(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_FAILURE),
        _ => {}
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let system = messages.iter().find(|m| m["role"] == "system").and_then(|m| m["content"].as_str()).unwrap_or("");
    let last_user =
        messages.iter().rev().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str()).unwrap_or("");
    let answer = scripted_answer(system, last_user, &model);
    let usage = json!({"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18});
    if body["stream"] != true {
        return axum::Json(json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": usage,
        }))
        .into_response();
    }
    let chunk = |delta: Value, usage: Value| {
        let choices =
            if delta.is_null() { json!([]) } else { json!([{"index": 0, "delta": delta, "finish_reason": null}]) };
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": choices, "usage": usage})
        )
    };
    let mut frames = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    let words: Vec<&str> = answer.split_inclusive(' ').collect();
    for (i, piece) in words.chunks(2).enumerate() {
        frames.push(chunk(json!({"content": piece.concat()}), Value::Null));
        if model == "break-mid-stream" && i == 0 {
            frames.push(format!("data: {}\n\n", json!({"error": {"message": "The model crashed"}})));
            break;
        }
    }
    if model != "break-mid-stream" {
        frames.push(chunk(Value::Null, usage));
        frames.push("data: [DONE]\n\n".into());
    }
    let stream = futures_util::stream::iter(frames.into_iter().map(|f| Ok::<_, Infallible>(Bytes::from(f))));
    ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(stream)).into_response()
}

/// A deterministic "embedding": letter counts of a–z, so shared words mean similar vectors.
pub fn letter_vector(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0; 26];
    for c in text.to_ascii_lowercase().bytes().filter(u8::is_ascii_lowercase) {
        vector[usize::from(c - b'a')] += 1.0;
    }
    vector
}

async fn openai_embeddings(
    State(seen): State<Seen>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    seen.lock().unwrap().push(body.clone());
    if !authorized(&headers) {
        return openai_error(StatusCode::UNAUTHORIZED, "Incorrect API key provided");
    }
    let inputs: Vec<String> =
        body["input"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    // Out of order on purpose: clients must sort by index.
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": letter_vector(text)}))
        .collect();
    axum::Json(json!({"object": "list", "data": data, "model": body["model"]})).into_response()
}

/// The Bedrock runtime API: `/model/{id}/converse`, `/model/{id}/converse-stream` (AWS event
/// stream encoding) and `/model/{id}/invoke` (Titan embeddings). Models named `denied` and
/// `throttled` fail as Bedrock does.
pub struct BedrockFake {
    pub endpoint: String,
    pub seen: Seen,
}

impl BedrockFake {
    pub async fn start() -> Self {
        let seen = Seen::default();
        let router = Router::new()
            .route("/model/{model}/converse", post(bedrock_converse))
            .route("/model/{model}/converse-stream", post(bedrock_converse_stream))
            .route("/model/{model}/invoke", post(bedrock_invoke))
            .with_state(seen.clone());
        Self { endpoint: serve(router).await, seen }
    }

    /// A client for the fake with static test credentials.
    pub fn client(&self) -> aws_sdk_bedrockruntime::Client {
        use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_bedrockruntime::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "fake"))
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_bedrockruntime::Client::from_conf(config)
    }
}

fn bedrock_failure(model: &str) -> Option<Response> {
    let (status, kind, message) = match model {
        "denied" => (StatusCode::FORBIDDEN, "AccessDeniedException", "You don't have access to the model"),
        "throttled" => (StatusCode::TOO_MANY_REQUESTS, "ThrottlingException", "Too many requests"),
        _ => return None,
    };
    Some((status, [("x-amzn-ErrorType", kind)], axum::Json(json!({"message": message}))).into_response())
}

fn converse_texts(body: &Value) -> (String, String) {
    let system = body["system"][0]["text"].as_str().unwrap_or("").to_owned();
    let last_user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"][0]["text"].as_str())
        .unwrap_or("")
        .to_owned();
    (system, last_user)
}

async fn bedrock_converse(
    State(seen): State<Seen>,
    Path(model): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    seen.lock().unwrap().push(json!({"model": model, "body": body}));
    if let Some(failure) = bedrock_failure(&model) {
        return failure;
    }
    let (system, last_user) = converse_texts(&body);
    axum::Json(json!({
        "output": {"message": {"role": "assistant", "content": [{"text": scripted_answer(&system, &last_user, &model)}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 13, "outputTokens": 5, "totalTokens": 18},
        "metrics": {"latencyMs": 12},
    }))
    .into_response()
}

fn event_frame(event_type: &'static str, payload: Value) -> Bytes {
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let message = Message::new(Bytes::from(payload.to_string()))
        .add_header(Header::new(":message-type", HeaderValue::String("event".into())))
        .add_header(Header::new(":event-type", HeaderValue::String(event_type.into())))
        .add_header(Header::new(":content-type", HeaderValue::String("application/json".into())));
    let mut buffer = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut buffer).expect("encodable frame");
    Bytes::from(buffer)
}

async fn bedrock_converse_stream(
    State(seen): State<Seen>,
    Path(model): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    seen.lock().unwrap().push(json!({"model": model, "body": body}));
    if let Some(failure) = bedrock_failure(&model) {
        return failure;
    }
    let (system, last_user) = converse_texts(&body);
    let answer = scripted_answer(&system, &last_user, &model);
    let mut frames = vec![event_frame("messageStart", json!({"role": "assistant"}))];
    for piece in answer.split_inclusive(' ') {
        frames.push(event_frame("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": piece}})));
    }
    frames.push(event_frame("contentBlockStop", json!({"contentBlockIndex": 0})));
    frames.push(event_frame("messageStop", json!({"stopReason": "end_turn"})));
    frames.push(event_frame(
        "metadata",
        json!({"usage": {"inputTokens": 13, "outputTokens": 5, "totalTokens": 18}, "metrics": {"latencyMs": 12}}),
    ));
    let stream = futures_util::stream::iter(frames.into_iter().map(Ok::<_, Infallible>));
    ([(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")], Body::from_stream(stream)).into_response()
}

async fn bedrock_invoke(State(seen): State<Seen>, Path(model): Path<String>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.lock().unwrap().push(json!({"model": model, "body": body}));
    if let Some(failure) = bedrock_failure(&model) {
        return failure;
    }
    let text = body["inputText"].as_str().unwrap_or("");
    axum::Json(json!({"embedding": letter_vector(text), "inputTextTokenCount": text.split_whitespace().count()}))
        .into_response()
}

/// The fake "MP3" of `/audio/speech`: an ID3 tag followed by the voice and the text.
pub fn fake_speech(voice: &str, text: &str) -> Vec<u8> {
    format!("ID3|{voice}|{text}").into_bytes()
}

async fn openai_speech(State(seen): State<Seen>, headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> Response {
    seen.lock().unwrap().push(body.clone());
    if !authorized(&headers) || body["model"] == "fail-auth" {
        return openai_error(StatusCode::UNAUTHORIZED, "Incorrect API key provided");
    }
    if body["model"] == "fail-server" {
        return openai_error(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_FAILURE);
    }
    if body["response_format"] != "mp3" {
        return openai_error(StatusCode::BAD_REQUEST, "expected mp3");
    }
    let audio = fake_speech(body["voice"].as_str().unwrap_or(""), body["input"].as_str().unwrap_or(""));
    ([(header::CONTENT_TYPE, "audio/mpeg")], audio).into_response()
}

/// Answers `heard <bytes> bytes of <file name> (<content type>) with <model>`.
async fn openai_transcription(
    State(seen): State<Seen>,
    headers: HeaderMap,
    mut form: axum::extract::Multipart,
) -> Response {
    if !authorized(&headers) {
        return openai_error(StatusCode::UNAUTHORIZED, "Incorrect API key provided");
    }
    let (mut model, mut file) = (String::new(), None);
    while let Ok(Some(field)) = form.next_field().await {
        match field.name() {
            Some("model") => model = field.text().await.unwrap_or_default(),
            Some("file") => {
                let name = field.file_name().unwrap_or("").to_owned();
                let mime = field.content_type().unwrap_or("").to_owned();
                let bytes = field.bytes().await.unwrap_or_default();
                file = Some((name, mime, bytes.len()));
            }
            _ => {}
        }
    }
    seen.lock().unwrap().push(json!({"model": model, "file": file.as_ref().map(|f| f.0.clone())}));
    let Some((name, mime, size)) = file else {
        return openai_error(StatusCode::BAD_REQUEST, "file is required");
    };
    if model == "fail-server" {
        return openai_error(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_FAILURE);
    }
    axum::Json(json!({"text": format!("heard {size} bytes of {name} ({mime}) with {model}")})).into_response()
}
