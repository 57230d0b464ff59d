//! A Lambda Runtime API on a random local port, so the real function binaries run as Lambda
//! runs them: they poll for events, and post buffered or streamed responses.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// What a function answered to one invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The response body as posted (JSON for buffered functions, a prelude and the bytes for
    /// streaming ones), or the error document.
    pub body: Bytes,
    /// Whether it was posted in streaming mode.
    pub streamed: bool,
    pub failed: bool,
    /// When the function posted it to the Runtime API.
    pub posted: Instant,
}

#[derive(Default)]
struct Runtime {
    events: Mutex<Option<mpsc::Receiver<(String, Value)>>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Invocation>>>,
    /// When the function first asked for an event: the end of its cold start.
    first_poll: Mutex<Option<Instant>>,
}

async fn next(State(runtime): State<Arc<Runtime>>) -> Response {
    runtime.first_poll.lock().unwrap().get_or_insert_with(Instant::now);
    let receiver = runtime.events.lock().unwrap().take();
    let Some(mut receiver) = receiver else {
        return (StatusCode::CONFLICT, "another poll is waiting").into_response();
    };
    let event = receiver.recv().await;
    *runtime.events.lock().unwrap() = Some(receiver);
    let Some((id, event)) = event else { return StatusCode::GONE.into_response() };
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 30_000;
    (
        [
            ("lambda-runtime-aws-request-id", id),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:test".into()),
            ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000".into()),
        ],
        axum::Json(event),
    )
        .into_response()
}

async fn respond(
    State(runtime): State<Arc<Runtime>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let streamed = headers.get("lambda-runtime-function-response-mode").is_some_and(|v| v == "streaming");
    if let Some(waiter) = runtime.waiting.lock().unwrap().remove(&id) {
        let _ = waiter.send(Invocation { body, streamed, failed: false, posted: Instant::now() });
    }
    StatusCode::ACCEPTED
}

async fn fail(State(runtime): State<Arc<Runtime>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    if let Some(waiter) = runtime.waiting.lock().unwrap().remove(&id) {
        let _ = waiter.send(Invocation { body, streamed: false, failed: true, posted: Instant::now() });
    }
    StatusCode::ACCEPTED
}

/// A function binary running against its own Runtime API.
pub struct Function {
    child: Mutex<Child>,
    started: Instant,
    runtime: Arc<Runtime>,
    events: mpsc::Sender<(String, Value)>,
}

impl Drop for Function {
    fn drop(&mut self) {
        if let Ok(child) = self.child.get_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where cargo put the workspace's binaries (`target/debug`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/debug");
    let path = dir.join(name);
    assert!(path.exists(), "{} is not built: run ./scripts/test.sh (it builds every function first)", path.display());
    path
}

impl Function {
    /// Starts the function `name` (from `target/debug`) with `env` plus the Lambda variables,
    /// in this process's environment without the trust-store variables Lambda does not set.
    pub async fn start(name: &str, env: &[(&str, String)]) -> Function {
        Self::start_binary(&binary(name), name, env).await
    }

    /// Starts a function binary from anywhere.
    pub async fn start_binary(path: &std::path::Path, name: &str, env: &[(&str, String)]) -> Function {
        let (events, receiver) = mpsc::channel(8);
        let runtime = Arc::new(Runtime { events: Mutex::new(Some(receiver)), ..Runtime::default() });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .with_state(runtime.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let mut command = Command::new(path);
        command
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("RUST_LOG", "warn")
            // Lambda sets neither: a host that exports them (to its own bundle and certificate
            // directory) would hand the function a trust store it does not have on Lambda.
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let started = Instant::now();
        let child = command.spawn().expect("the function starts");
        Function { child: Mutex::new(child), started, runtime, events }
    }

    /// When the process was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// How long the process took from its start until it first asked for an event.
    pub async fn cold_start(&self) -> Duration {
        loop {
            if let Some(polled) = *self.runtime.first_poll.lock().unwrap() {
                return polled - self.started;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// The process's peak resident memory so far (Linux `VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.lock().unwrap().id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Sends one event and waits for the function's answer.
    pub async fn invoke(&self, event: Value) -> Invocation {
        let id = uuid::Uuid::new_v4().to_string();
        let (waiter, answer) = oneshot::channel();
        self.runtime.waiting.lock().unwrap().insert(id.clone(), waiter);
        self.events.send((id, event)).await.expect("the runtime is up");
        let mut answer = answer;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(result) = tokio::time::timeout(Duration::from_millis(100), &mut answer).await {
                return result.expect("an answer");
            }
            if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
                panic!("the function exited ({status}) instead of answering");
            }
            assert!(Instant::now() < deadline, "the function did not answer in 60 s");
        }
    }
}

/// An API Gateway HTTP API (payload 2.0) event; a Function URL event has the same shape.
pub fn http_event(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    binary: bool,
) -> Value {
    let headers: serde_json::Map<String, Value> =
        headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), Value::String((*v).to_owned()))).collect();
    let body = body.map(|b| if binary { BASE64.encode(b) } else { String::from_utf8_lossy(b).into_owned() });
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "test",
            "domainName": "test.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "test",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "colloquy-tests"},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "26/Nov/2026:14:00:00 +0000",
            "timeEpoch": 1_795_700_000_000_u64,
        },
        "body": body,
        "isBase64Encoded": binary,
    })
}

/// The status and body of a buffered function response (the API Gateway v2 response format).
pub fn buffered_response(invocation: &Invocation) -> (u16, HashMap<String, String>, Vec<u8>) {
    assert!(!invocation.failed, "the function failed: {}", String::from_utf8_lossy(&invocation.body));
    let document: Value = serde_json::from_slice(&invocation.body).expect("a JSON response document");
    let status = document["statusCode"].as_u64().expect("statusCode") as u16;
    let headers = document["headers"]
        .as_object()
        .map(|h| h.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default();
    let body = document["body"].as_str().unwrap_or("");
    let body = if document["isBase64Encoded"] == true {
        BASE64.decode(body).expect("valid base64")
    } else {
        body.as_bytes().to_vec()
    };
    (status, headers, body)
}

/// The status and body of a streamed function response: a JSON prelude, eight NUL bytes,
/// then the body as it was streamed.
pub fn streamed_response(invocation: &Invocation) -> (u16, Value, Vec<u8>) {
    assert!(invocation.streamed, "posted in streaming mode");
    let bytes = &invocation.body;
    let split = bytes.windows(8).position(|w| w == [0u8; 8]).expect("a prelude separator");
    let prelude: Value = serde_json::from_slice(&bytes[..split]).expect("a JSON prelude");
    (prelude["statusCode"].as_u64().unwrap_or(200) as u16, prelude, bytes[split + 8..].to_vec())
}
