//! Runs every Lambda function binary (release build) under a local Runtime API against the
//! emulators and prints a Markdown table: cold start, first and warm invoke latency, binary
//! size and peak RSS, next to a hello-world `lambda_http` binary built the same way.
//!
//! Usage: `bench/run.sh` (builds, starts the emulators, runs this, writes docs/benchmarks.md).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use colloquy_core::domain::{AppConfig, AppMode, ValueType};
use colloquy_tests::lambda::{Function, http_event};
use colloquy_tests::{aws, send, spawn_app_on};
use serde_json::{Value, json};

const WARM_INVOKES: usize = 30;
/// Cold starts per function (fresh processes); the median is reported, since a single start
/// on a shared machine varies by a factor of two.
const COLD_STARTS: usize = 9;

struct Row {
    name: String,
    cold: Duration,
    first: Duration,
    warm: Duration,
    size: u64,
    rss_kib: u64,
}

async fn measure(dir: &std::path::Path, name: &str, event: &Value, env: &[(&str, String)]) -> Row {
    let path = dir.join(name);
    let size = std::fs::metadata(&path).unwrap_or_else(|_| panic!("{} is not built", path.display())).len();
    let mut colds = Vec::with_capacity(COLD_STARTS);
    for _ in 1..COLD_STARTS {
        let extra = Function::start_binary(&path, name, env).await;
        colds.push(extra.cold_start().await);
    }
    let function = Function::start_binary(&path, name, env).await;
    colds.push(function.cold_start().await);
    colds.sort();
    let cold = colds[colds.len() / 2];
    let started = Instant::now();
    let invocation = function.invoke(event.clone()).await;
    let first = started.elapsed();
    assert!(!invocation.failed, "{name} failed: {}", String::from_utf8_lossy(&invocation.body));
    let mut warm = Vec::with_capacity(WARM_INVOKES);
    for _ in 0..WARM_INVOKES {
        let started = Instant::now();
        function.invoke(event.clone()).await;
        warm.push(started.elapsed());
    }
    warm.sort();
    let rss_kib = function.peak_rss_kib().unwrap_or(0);
    Row { name: name.to_owned(), cold, first, warm: warm[warm.len() / 2], size, rss_kib }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let dir = PathBuf::from(std::env::var("BENCH_BINARIES").unwrap_or_else(|_| "target/release".into()));
    let store = std::sync::Arc::new(aws::dynamo_store().await);
    let app = spawn_app_on(store).await;
    let config = AppConfig::from_json(
        r#"{"suggested_questions_after_answer": {"enabled": true},
            "text_to_speech": {"enabled": true, "voice": "Joanna"}, "speech_to_text": {"enabled": true}}"#,
    )
    .unwrap();
    let key = app.create_app(AppMode::AdvancedChat, config).await;
    let conversation = app.seed_conversation(&key, "u", "bench").await;
    let doomed = app.seed_conversation(&key, "u", "deleted").await;
    let mut last = None;
    for i in 0..40 {
        last = Some(app.seed_message(&conversation, &format!("question {i}")).await);
    }
    let message = last.unwrap();
    let variable = app.seed_variable(&conversation, "memory", ValueType::String, json!("x")).await;
    let (_, annotation) = send(app.post(&key, "/v1/apps/annotations", json!({"question": "q", "answer": "a"}))).await;
    let annotation = annotation["id"].as_str().unwrap().to_owned();
    let (_, job) = send(app.post(
        &key,
        "/v1/apps/annotation-reply/disable",
        json!({"score_threshold": 0.9, "embedding_provider_name": "echo", "embedding_model_name": "lexical"}),
    ))
    .await;
    let job = job["job_id"].as_str().unwrap().to_owned();
    // moto's Transcribe writes no transcript: a stand-in does, as in the tests.
    let _transcripts = aws::stand_in_transcripts("benchmark transcript").await;
    let recording = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(vec![1u8; 64_000]).file_name("r.wav").mime_str("audio/wav").unwrap(),
        )
        .text("user", "u");
    let (_, recording) =
        send(app.client.post(app.url("/v1/files/upload")).bearer_auth(&key.key).multipart(recording)).await;
    let recording = recording["id"].as_str().unwrap().to_owned();

    let auth = format!("Bearer {}", key.key);
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let event = |method: &str, path: String, query: &str, body: Option<Value>| {
        let body = body.map(|b| b.to_string());
        http_event(method, &path, query, &headers, body.as_deref().map(str::as_bytes), false)
    };
    let c = conversation.id;
    let cases: Vec<(&str, Value)> = vec![
        ("hello-lambda", event("GET", "/".into(), "", None)),
        ("hello-aws-lambda", event("GET", "/".into(), "", None)),
        ("app-info", event("GET", "/v1/info".into(), "", None)),
        ("app-parameters", event("GET", "/v1/parameters".into(), "", None)),
        ("app-meta", event("GET", "/v1/meta".into(), "", None)),
        ("app-site", event("GET", "/v1/site".into(), "", None)),
        ("list-conversations", event("GET", "/v1/conversations".into(), "user=u", None)),
        (
            "delete-conversation",
            event("DELETE", format!("/v1/conversations/{}", doomed.id), "", Some(json!({"user": "u"}))),
        ),
        (
            "rename-conversation",
            event("POST", format!("/v1/conversations/{c}/name"), "", Some(json!({"name": "n", "user": "u"}))),
        ),
        ("list-conversation-variables", event("GET", format!("/v1/conversations/{c}/variables"), "user=u", None)),
        (
            "update-conversation-variable",
            event(
                "PUT",
                format!("/v1/conversations/{c}/variables/{}", variable.id),
                "",
                Some(json!({"value": "y", "user": "u"})),
            ),
        ),
        ("list-messages", event("GET", "/v1/messages".into(), &format!("user=u&conversation_id={c}"), None)),
        (
            "message-feedback",
            event(
                "POST",
                format!("/v1/messages/{}/feedbacks", message.id),
                "",
                Some(json!({"rating": "like", "user": "bench-feedback"})),
            ),
        ),
        ("app-feedbacks", event("GET", "/v1/app/feedbacks".into(), "", None)),
        ("suggested-questions", event("GET", format!("/v1/messages/{}/suggested", message.id), "user=u", None)),
        (
            "chat-messages",
            event("POST", "/v1/chat-messages".into(), "", Some(json!({"inputs": {}, "query": "hello", "user": "u"}))),
        ),
        (
            "chat-messages-stream",
            event(
                "POST",
                "/v1/chat-messages".into(),
                "",
                Some(json!({"inputs": {}, "query": "hello", "user": "u", "response_mode": "streaming"})),
            ),
        ),
        (
            "stop-chat-message",
            event("POST", format!("/v1/chat-messages/{}/stop", uuid::Uuid::new_v4()), "", Some(json!({"user": "u"}))),
        ),
        ("list-annotations", event("GET", "/v1/apps/annotations".into(), "", None)),
        (
            "create-annotation",
            event("POST", "/v1/apps/annotations".into(), "", Some(json!({"question": "q2", "answer": "a2"}))),
        ),
        (
            "update-annotation",
            event(
                "PUT",
                format!("/v1/apps/annotations/{annotation}"),
                "",
                Some(json!({"question": "q3", "answer": "a3"})),
            ),
        ),
        ("delete-annotation", event("DELETE", format!("/v1/apps/annotations/{}", uuid::Uuid::new_v4()), "", None)),
        (
            "annotation-reply",
            event(
                "POST",
                "/v1/apps/annotation-reply/disable".into(),
                "",
                Some(
                    json!({"score_threshold": 0.9, "embedding_provider_name": "echo", "embedding_model_name": "lexical"}),
                ),
            ),
        ),
        ("annotation-reply-status", event("GET", format!("/v1/apps/annotation-reply/disable/status/{job}"), "", None)),
        ("preview-file", event("GET", format!("/v1/files/{}/preview", uuid::Uuid::new_v4()), "user=u", None)),
        ("upload-file", event("POST", "/v1/files/upload".into(), "", None)),
        (
            "create-upload-url",
            event(
                "POST",
                "/v1/files/upload-url".into(),
                "",
                Some(json!({"name": "a.mp3", "size": 9_000_000, "mime_type": "audio/mpeg", "user": "u"})),
            ),
        ),
        (
            "text-to-audio",
            event(
                "POST",
                "/v1/text-to-audio".into(),
                "",
                Some(json!({"message_id": message.id.to_string(), "user": "u"})),
            ),
        ),
        (
            "audio-to-text",
            event("POST", "/v1/audio-to-text".into(), "", Some(json!({"upload_file_id": recording, "user": "u"}))),
        ),
        ("purge-conversation", json!({"Records": []})),
    ];
    let env = aws::function_env().await;
    // `BENCH_ONLY=a,b`: only these functions (and the two baselines), when only they were built.
    let only = std::env::var("BENCH_ONLY").ok();
    let chosen = |name: &str| {
        name.starts_with("hello-") || only.as_deref().is_none_or(|list| list.split(',').any(|n| n.trim() == name))
    };
    let mut rows = Vec::new();
    for (name, event) in cases.iter().filter(|(name, _)| chosen(name)) {
        rows.push(measure(&dir, name, event, &env).await);
    }
    let hello = rows[0].cold;
    println!(
        "| function | cold start ms (median of {COLD_STARTS}) | × hello | × hello-aws | first invoke ms | warm invoke ms (median of {WARM_INVOKES}) | binary MB | peak RSS MB |"
    );
    let hello_aws = rows[1].cold;
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {:.2} | {:.2} | {} | {} | {:.2} | {:.1} |",
            row.name,
            ms(row.cold),
            row.cold.as_secs_f64() / hello.as_secs_f64(),
            row.cold.as_secs_f64() / hello_aws.as_secs_f64(),
            ms(row.first),
            ms(row.warm),
            row.size as f64 / 1_048_576.0,
            row.rss_kib as f64 / 1024.0
        );
    }
}
