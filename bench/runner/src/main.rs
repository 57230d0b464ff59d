//! Runs every Lambda function binary (release build) under a local Runtime API against the
//! emulators and prints a Markdown table per function, beside a hello-world `lambda_http`
//! binary built the same way: its init (process start until it first asks for an event), its
//! init and first invoke (process start until the answer to an event that was waiting for it
//! is posted, as a cold start serves its event on Lambda), the CPU each of those took, warm
//! invoke latency, binary size and peak RSS.
//!
//! Usage: `bench/run.sh` (builds, starts the emulators, runs this, writes docs/benchmarks.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use colloquy_core::domain::{AppConfig, AppMode, ValueType};
use colloquy_tests::lambda::{Function, http_event};
use colloquy_tests::{aws, send, spawn_app_on};
use serde_json::{Value, json};

const WARM_INVOKES: usize = 30;
/// Fresh processes per function and measurement; the median is reported, since a single
/// start on a shared machine varies by a factor of two. Functions take turns round by round,
/// so a burst of load on the machine reaches every function and the baselines alike.
/// `BENCH_ROUNDS` sets another count (more rounds, a steadier median on a busy machine).
const ROUNDS: usize = 9;
/// After a process's first poll (or its first answer) it waits for the next event: by then
/// the CPU it used is all counted.
const SETTLE: Duration = Duration::from_millis(3);

/// One function: its name and the event a fresh process serves first in each round (a
/// function whose first invoke consumes its data, as a delete does, gets its own per round).
struct Case {
    name: &'static str,
    events: Vec<Value>,
}

/// What the fresh processes of one function measured, one value per round.
#[derive(Default)]
struct Samples {
    init: Vec<Duration>,
    init_cpu: Vec<Duration>,
    first: Vec<Duration>,
    first_cpu: Vec<Duration>,
}

struct Row {
    name: &'static str,
    init: Duration,
    init_cpu: Duration,
    first: Duration,
    first_cpu: Duration,
    warm: Duration,
    size: u64,
    rss_kib: u64,
}

/// The CPU time (user and system) a running process has used so far, over all its threads,
/// from the scheduler's own accounting (`/proc/PID/task/*/schedstat`, nanoseconds).
fn cpu_time(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process is running");
    let nanos: u64 = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// A fresh process that only starts: how long and how much CPU until its first poll.
async fn sample_init(path: &Path, name: &str, env: &[(&str, String)], samples: &mut Samples) {
    let function = Function::start_binary(path, name, env).await;
    samples.init.push(function.cold_start().await);
    tokio::time::sleep(SETTLE).await;
    samples.init_cpu.push(cpu_time(function.pid()));
}

/// A fresh process with its event already waiting: how long and how much CPU until it posted
/// its answer. Returns the process for the warm invokes.
async fn sample_first(
    path: &Path,
    name: &str,
    event: &Value,
    env: &[(&str, String)],
    samples: &mut Samples,
) -> Function {
    let function = Function::start_binary(path, name, env).await;
    let invocation = function.invoke(event.clone()).await;
    assert!(!invocation.failed, "{name} failed: {}", String::from_utf8_lossy(&invocation.body));
    samples.first.push(invocation.posted - function.started());
    tokio::time::sleep(SETTLE).await;
    samples.first_cpu.push(cpu_time(function.pid()));
    function
}

async fn warm(function: &Function, event: &Value) -> Duration {
    let mut warm = Vec::with_capacity(WARM_INVOKES);
    for _ in 0..WARM_INVOKES {
        let started = Instant::now();
        function.invoke(event.clone()).await;
        warm.push(started.elapsed());
    }
    median(warm)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn cpu_ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn ratio(value: Duration, reference: Duration) -> String {
    format!("{:.2}", value.as_secs_f64() / reference.as_secs_f64())
}

#[tokio::main]
async fn main() {
    let dir = PathBuf::from(std::env::var("BENCH_BINARIES").unwrap_or_else(|_| "target/release".into()));
    let rounds = std::env::var("BENCH_ROUNDS").ok().and_then(|n| n.parse().ok()).filter(|&n| n > 0).unwrap_or(ROUNDS);
    let store = std::sync::Arc::new(aws::dynamo_store().await);
    let app = spawn_app_on(store).await;
    let config = AppConfig::from_json(
        r#"{"suggested_questions_after_answer": {"enabled": true},
            "text_to_speech": {"enabled": true, "voice": "Joanna"}, "speech_to_text": {"enabled": true}}"#,
    )
    .unwrap();
    let key = app.create_app(AppMode::AdvancedChat, config).await;
    let conversation = app.seed_conversation(&key, "u", "bench").await;
    // One conversation for each fresh delete-conversation process to delete.
    let mut doomed = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        doomed.push(app.seed_conversation(&key, "u", "deleted").await);
    }
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
    let mut cases: Vec<Case> = cases.into_iter().map(|(name, event)| Case { name, events: vec![event] }).collect();
    let deletes = doomed
        .iter()
        .map(|d| event("DELETE", format!("/v1/conversations/{}", d.id), "", Some(json!({"user": "u"}))))
        .collect();
    cases.insert(7, Case { name: "delete-conversation", events: deletes });
    let env = aws::function_env().await;
    // `BENCH_ONLY=a,b`: only these functions (and the two baselines), when only they were built.
    let only = std::env::var("BENCH_ONLY").ok();
    let chosen = |name: &str| {
        name.starts_with("hello-") || only.as_deref().is_none_or(|list| list.split(',').any(|n| n.trim() == name))
    };
    cases.retain(|case| chosen(case.name));
    let paths: Vec<PathBuf> = cases.iter().map(|case| dir.join(case.name)).collect();
    for path in &paths {
        assert!(path.exists(), "{} is not built", path.display());
    }

    let mut samples: Vec<Samples> = cases.iter().map(|_| Samples::default()).collect();
    let mut last: Vec<Option<Function>> = cases.iter().map(|_| None).collect();
    for round in 0..rounds {
        for (i, case) in cases.iter().enumerate() {
            sample_init(&paths[i], case.name, &env, &mut samples[i]).await;
            let event = &case.events[round % case.events.len()];
            let function = sample_first(&paths[i], case.name, event, &env, &mut samples[i]).await;
            // The last round's processes stay up for the warm invokes.
            last[i] = (round == rounds - 1).then_some(function);
        }
    }
    let mut rows = Vec::with_capacity(cases.len());
    for ((case, samples), function) in cases.iter().zip(samples).zip(last) {
        let function = function.expect("the last round's process");
        let warm = warm(&function, case.events.last().expect("an event")).await;
        rows.push(Row {
            name: case.name,
            init: median(samples.init),
            init_cpu: median(samples.init_cpu),
            first: median(samples.first),
            first_cpu: median(samples.first_cpu),
            warm,
            size: std::fs::metadata(dir.join(case.name)).map(|m| m.len()).unwrap_or(0),
            rss_kib: function.peak_rss_kib().unwrap_or(0),
        });
    }
    let hello = &rows[0];
    let (init, init_cpu, first, first_cpu) = (hello.init, hello.init_cpu, hello.first, hello.first_cpu);
    println!(
        "| function | init ms | × hello | init CPU ms | × hello | init + first invoke ms | × hello | CPU to first answer ms | × hello | warm invoke ms | binary MB | peak RSS MB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.1} |",
            row.name,
            ms(row.init),
            ratio(row.init, init),
            cpu_ms(row.init_cpu),
            ratio(row.init_cpu, init_cpu),
            ms(row.first),
            ratio(row.first, first),
            cpu_ms(row.first_cpu),
            ratio(row.first_cpu, first_cpu),
            ms(row.warm),
            row.size as f64 / 1_048_576.0,
            row.rss_kib as f64 / 1024.0
        );
    }
    println!();
    println!(
        "Medians of {rounds} fresh processes per function (init: no event waiting; init + first invoke: its event waiting at start); warm: median of {WARM_INVOKES}."
    );
}
