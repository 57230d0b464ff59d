//! The `colloquy` program as an operator and a new user use it: create apps and keys, serve,
//! stop with SIGTERM, restart on the same data.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn colloquy(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("COLLOQUY_DATA_DIR")
        .output()
        .expect("colloquy runs")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("colloquy-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `colloquy serve` and waits until it answers.
    async fn start(data_dir: &Path) -> Server {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_colloquy"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .env("COLLOQUY_DATA_DIR", data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut server = Server { child, base };
        while Instant::now() < deadline {
            assert!(server.child.try_wait().unwrap().is_none(), "the server exited early");
            if reqwest::get(format!("{}/v1/info", server.base)).await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.child.kill().ok();
        panic!("the server did not answer in time");
    }

    /// Sends SIGTERM and returns whether it exited cleanly, and what it printed.
    fn stop(self) -> (bool, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let output = self.child.wait_with_output().unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

async fn get(base: &str, path: &str, key: &str) -> (u16, Value) {
    let response = reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(key).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn manage_apps_and_keys_then_serve_them_across_restarts() {
    let data = temp_dir();
    let created: Value =
        serde_json::from_str(&stdout(&colloquy(&data, &["app", "create", "--name", "Support", "--json"]))).unwrap();
    let app_id = created["app_id"].as_str().unwrap().to_owned();
    let key = created["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("app-") && key.len() >= 28, "{key}");
    assert!(stdout(&colloquy(&data, &["app", "list"])).contains("Support"));

    let config = data.join("config.json");
    std::fs::write(&config, r#"{"opening_statement": "Hi there", "description": "Helps"}"#).unwrap();
    stdout(&colloquy(&data, &["app", "update", "--app", &app_id, "--config", config.to_str().unwrap()]));
    std::fs::write(&config, r#"{"opening_statment": "typo"}"#).unwrap();
    let typo = colloquy(&data, &["app", "update", "--app", &app_id, "--config", config.to_str().unwrap()]);
    assert!(!typo.status.success(), "unknown configuration keys are refused");
    let second_key = stdout(&colloquy(&data, &["key", "create", "--app", &app_id])).trim().to_owned();

    let server = Server::start(&data).await;
    let (status, body) = get(&server.base, "/v1/conversations?user=alice", &key).await;
    assert_eq!((status, body["data"].as_array().map(Vec::len)), (200, Some(0)));
    let (_, params) = get(&server.base, "/v1/parameters", &second_key).await;
    assert_eq!(params["opening_statement"], "Hi there");
    let (clean, printed) = server.stop();
    assert!(clean, "SIGTERM shuts down gracefully");
    assert!(!printed.contains("Created the default"), "no default app when apps exist");

    stdout(&colloquy(&data, &["key", "revoke", &second_key]));
    let server = Server::start(&data).await;
    assert_eq!(get(&server.base, "/v1/info", &key).await.0, 200, "data survives a restart");
    assert_eq!(get(&server.base, "/v1/info", &second_key).await.0, 401, "a revoked key is refused");
    server.stop();
    std::fs::remove_dir_all(&data).unwrap();
}

#[tokio::test]
async fn first_start_creates_a_default_chat_app_and_prints_its_key() {
    let data = temp_dir();
    let server = Server::start(&data).await;
    let (_, printed) = server.stop();
    let key = printed.split_whitespace().find(|w| w.starts_with("app-")).expect("a key is printed").to_owned();
    let server = Server::start(&data).await;
    let (status, info) = get(&server.base, "/v1/info", &key).await;
    assert_eq!((status, info["mode"].as_str()), (200, Some("chat")));
    server.stop();
    std::fs::remove_dir_all(&data).unwrap();
}

#[test]
fn bad_operator_input_fails_with_a_message() {
    let data = temp_dir();
    let bad_mode = colloquy(&data, &["app", "create", "--name", "X", "--mode", "bot"]);
    assert!(!bad_mode.status.success());
    let unknown_app = colloquy(&data, &["key", "create", "--app", "3f2b9c1e-5d6a-4b7c-8d9e-0a1b2c3d4e5f"]);
    assert!(!unknown_app.status.success());
    assert!(String::from_utf8_lossy(&unknown_app.stderr).contains("no app"));
    let bad_key = colloquy(&data, &["key", "revoke", "not-a-key"]);
    assert!(!bad_key.status.success());
    std::fs::remove_dir_all(&data).unwrap();
}

#[tokio::test]
async fn the_same_program_runs_on_dynamodb_and_s3() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect(
        "AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with ./scripts/test.sh, which starts the emulators",
    );
    assert!(!endpoint.is_empty());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let aws = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_colloquy"))
            .args(args)
            .env("COLLOQUY_STORE", "dynamodb")
            .env("COLLOQUY_TABLE", format!("cli-{suffix}"))
            .env("COLLOQUY_BUCKET", format!("cli-{suffix}"))
            .output()
            .expect("colloquy runs")
    };
    let first = stdout(&aws(&["aws", "init"]));
    assert!(first.contains("created"), "{first}");
    let again = stdout(&aws(&["aws", "init"]));
    assert_eq!(again.matches("exists").count(), 2, "init is safe to run twice: {again}");
    let created: Value = serde_json::from_str(&stdout(&aws(&["app", "create", "--name", "On AWS", "--json"]))).unwrap();
    assert!(stdout(&aws(&["app", "list"])).contains("On AWS"));

    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("COLLOQUY_STORE", "dynamodb")
        .env("COLLOQUY_TABLE", format!("cli-{suffix}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let server = Server { child, base: base.clone() };
    let key = created["api_key"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{base}/v1/info")).await.is_err() {
        assert!(Instant::now() < deadline, "the server did not answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = serde_json::json!({"inputs": {}, "query": "hello", "user": "alice"});
    let chat = reqwest::Client::new()
        .post(format!("{base}/v1/chat-messages"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 200);
    let (status, list) = get(&base, "/v1/conversations?user=alice", key).await;
    assert_eq!((status, list["data"].as_array().map(Vec::len)), (200, Some(1)));
    let (clean, _) = server.stop();
    assert!(clean);
}

/// `COLLOQUY_LOG_FORMAT=json`: one JSON object per line on stderr, with the start-up facts
/// (speech engines, model, address) as fields; no colour codes and no secret.
#[test]
fn json_logs_carry_the_start_up_facts_and_no_secret() {
    use std::io::{BufRead, BufReader};
    let data_dir = temp_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .args(["serve", "--addr", &format!("127.0.0.1:{}", free_port())])
        .env("COLLOQUY_DATA_DIR", &data_dir)
        .env("COLLOQUY_LOG_FORMAT", "json")
        .env("COLLOQUY_OPENAI_API_KEY", "sk-must-not-be-logged")
        .env("COLLOQUY_TTS", "none")
        .env("COLLOQUY_STT", "none")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        assert!(!line.contains('\u{1b}') && !line.contains("sk-must-not-be-logged"), "{line}");
        let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let done = event["message"].as_str().is_some_and(|m| m.starts_with("serving"));
        seen.push(event);
        if done {
            break;
        }
    }
    child.kill().ok();
    child.wait().ok();
    let speech = seen.iter().find(|e| e["message"] == "speech engines").expect("the speech engines are logged");
    assert_eq!(speech["text_to_speech"].as_str().unwrap().split(' ').next(), Some("none"));
    assert!(speech["speech_to_text"].as_str().unwrap().contains("COLLOQUY_STT"), "says how to enable it");
    assert!(seen.iter().all(|e| e["level"].is_string() && e["timestamp"].is_string()), "{seen:?}");
}

/// A setting that cannot be read stops the program at once, naming the setting.
#[test]
fn bad_settings_are_refused_by_name() {
    let data_dir = temp_dir();
    let output = Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .args(["app", "list", "--data-dir"])
        .arg(&data_dir)
        .env("COLLOQUY_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("COLLOQUY_LOG_FORMAT"));
    let output = Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .args(["serve", "--max-in-flight", "many", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("COLLOQUY_MAX_IN_FLIGHT"));
}

#[tokio::test]
async fn export_writes_what_the_apis_export_writes() {
    let data = temp_dir();
    let created: Value =
        serde_json::from_str(&stdout(&colloquy(&data, &["app", "create", "--name", "Support", "--json"]))).unwrap();
    let (app_id, key) = (created["app_id"].as_str().unwrap(), created["api_key"].as_str().unwrap());
    let operator =
        stdout(&colloquy(&data, &["key", "create", "--app", app_id, "--role", "operator"])).trim().to_owned();

    let server = Server::start(&data).await;
    let client = reqwest::Client::new();
    for (user, query) in [("alice", "Hello, \"world\""), ("bob", "=SUM(A1)"), ("alice", "Bye")] {
        let body = serde_json::json!({"inputs": {}, "query": query, "user": user, "response_mode": "blocking"});
        let response = client.post(format!("{}/v1/chat-messages", server.base)).bearer_auth(key).json(&body);
        assert_eq!(response.send().await.unwrap().status(), 200);
    }
    // The export covers messages created before it started, to the second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = client.post(format!("{}/v1/app/exports", server.base)).bearer_auth(&operator);
    let job: Value = started.json(&serde_json::json!({})).send().await.unwrap().json().await.unwrap();
    let path = format!("/v1/app/exports/{}", job["id"].as_str().unwrap());
    let mut job = job;
    for _ in 0..200 {
        job = get(&server.base, &path, &operator).await.1;
        if job["status"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = job["download_url"].as_str().expect("done");
    assert!(url.starts_with(&server.base), "an absolute link to this server: {url}");
    let from_api = client.get(url).bearer_auth(&operator).send().await.unwrap().text().await.unwrap();
    assert_eq!(from_api.lines().count(), 3);
    server.stop();

    let file = data.join("export.jsonl");
    let output = colloquy(&data, &["export", "--app", app_id, "-o", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("exported 3 messages"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), from_api, "the CLI writes what the API writes");
    assert!(!data.join("export.partial").exists());

    let csv = stdout(&colloquy(&data, &["export", "--app", app_id, "--format", "csv"]));
    assert!(csv.starts_with("conversation_id,conversation_name,user,"), "{csv}");
    assert!(csv.contains("'=SUM(A1)") && csv.contains("\"Hello, \"\"world\"\"\""), "{csv}");
    let far = stdout(&colloquy(&data, &["export", "--app", app_id, "--start", "2999-01-01T00:00:00Z"]));
    assert_eq!(far, "", "nothing in the range");

    for bad in [vec!["--format", "xlsx"], vec!["--start", "yesterday"]] {
        let mut args = vec!["export", "--app", app_id];
        args.extend(bad);
        let output = colloquy(&data, &args);
        assert!(!output.status.success());
        assert!(!String::from_utf8_lossy(&output.stderr).is_empty());
    }
    let unknown = colloquy(&data, &["export", "--app", "01946a5e-0000-7000-8000-000000000000"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no app"), "{unknown:?}");

    let server = Server::start(&data).await;
    let (_, log) = get(&server.base, "/v1/app/audit-log", &operator).await;
    let cli = log["data"].as_array().unwrap().iter().filter(|e| e["actor"] == "cli" && e["action"] == "export.create");
    assert_eq!(cli.count(), 3, "each CLI export is audited: {log}");
    server.stop();
    std::fs::remove_dir_all(&data).unwrap();
}

#[tokio::test]
async fn inspect_counts_what_an_app_and_an_end_user_hold() {
    let data = temp_dir();
    let created: Value =
        serde_json::from_str(&stdout(&colloquy(&data, &["app", "create", "--name", "Support", "--json"]))).unwrap();
    let (app_id, key) = (created["app_id"].as_str().unwrap(), created["api_key"].as_str().unwrap());
    let server = Server::start(&data).await;
    for user in ["alice", "alice", "bob"] {
        let body = serde_json::json!({"inputs": {}, "query": "hello", "user": user, "response_mode": "blocking"});
        let response = reqwest::Client::new().post(format!("{}/v1/chat-messages", server.base)).bearer_auth(key);
        assert_eq!(response.json(&body).send().await.unwrap().status(), 200);
    }
    server.stop();

    let whole = stdout(&colloquy(&data, &["inspect", "--app", app_id]));
    assert!(whole.lines().any(|l| l.starts_with("messages") && l.ends_with(" 3")), "{whole}");
    assert!(whole.lines().last().unwrap().starts_with("total"), "{whole}");
    let alice: Value =
        serde_json::from_str(&stdout(&colloquy(&data, &["inspect", "--app", app_id, "--user", "alice", "--json"])))
            .unwrap();
    assert_eq!(
        (alice["counts"]["messages"].as_u64(), alice["counts"]["conversations"].as_u64()),
        (Some(2), Some(2)),
        "{alice}"
    );
    let nobody: Value =
        serde_json::from_str(&stdout(&colloquy(&data, &["inspect", "--app", app_id, "--user", "carol", "--json"])))
            .unwrap();
    assert_eq!(nobody["total"], 0, "{nobody}");
    let unknown = colloquy(&data, &["inspect", "--app", "01946a5e-0000-7000-8000-000000000000"]);
    assert!(!unknown.status.success() && String::from_utf8_lossy(&unknown.stderr).contains("no app"));
    std::fs::remove_dir_all(&data).unwrap();
}

/// Every file under `dir` whose name is `name`.
fn files_named(dir: &Path, name: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() { files_named(&path, name) } else { usize::from(entry.file_name() == name) }
        })
        .sum()
}

#[tokio::test]
async fn an_erasure_cut_short_by_a_killed_server_continues_after_a_restart() {
    let data = temp_dir();
    let created: Value =
        serde_json::from_str(&stdout(&colloquy(&data, &["app", "create", "--name", "Support", "--json"]))).unwrap();
    let (app_id, key) =
        (created["app_id"].as_str().unwrap().to_owned(), created["api_key"].as_str().unwrap().to_owned());
    let server = Server::start(&data).await;
    let client = reqwest::Client::new();
    for i in 0..20 {
        let body = serde_json::json!({"inputs": {}, "query": format!("hello {i}"), "user": "alice", "response_mode": "blocking"});
        let response = client.post(format!("{}/v1/chat-messages", server.base)).bearer_auth(&key).json(&body);
        assert_eq!(response.send().await.unwrap().status(), 200);
    }
    // Enough files that removing them takes a while.
    let mut files = Vec::new();
    for i in 0..150 {
        let part = reqwest::multipart::Part::bytes(vec![1u8; 2000])
            .file_name(format!("f{i}.mp3"))
            .mime_str("audio/mpeg")
            .unwrap();
        let form = reqwest::multipart::Form::new().text("user", "alice").part("file", part);
        let response = client.post(format!("{}/v1/files/upload", server.base)).bearer_auth(&key).multipart(form);
        let file: Value = response.send().await.unwrap().json().await.unwrap();
        files.push(file["id"].as_str().unwrap().to_owned());
    }
    let erase = |base: String| {
        let (client, key) = (client.clone(), key.clone());
        async move {
            let response = client.delete(format!("{base}/v1/end-users/alice")).bearer_auth(&key).send().await.unwrap();
            assert_eq!(response.status(), 202);
            response.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_owned()
        }
    };
    erase(server.base.clone()).await;
    // Killed, not stopped: whatever the erasure had not done stays undone.
    let mut child = server.child;
    child.kill().unwrap();
    child.wait().unwrap();
    let left = files.iter().filter(|id| files_named(&data, id) > 0).count();
    eprintln!("files left by the killed erasure: {left} of {}", files.len());

    let server = Server::start(&data).await;
    // Her conversations were gone before the first answer.
    let (_, page) = get(&server.base, "/v1/conversations?user=alice", &key).await;
    assert_eq!(page["data"], serde_json::json!([]), "{page}");
    let job = erase(server.base.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, status) = get(&server.base, &format!("/v1/end-users/alice/erasures/{job}"), &key).await;
        if status["status"] == "done" {
            break;
        }
        assert!(Instant::now() < deadline && status["status"] != "failed", "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop();
    let alice: Value =
        serde_json::from_str(&stdout(&colloquy(&data, &["inspect", "--app", &app_id, "--user", "alice", "--json"])))
            .unwrap();
    assert_eq!(alice["total"], 0, "{alice}");
    assert!(files.iter().all(|id| files_named(&data, id) == 0), "no file's bytes are left");
    std::fs::remove_dir_all(&data).unwrap();
}

/// Seeds, straight into the data directory's database, a conversation of `user` with one
/// message expiring at `expires_at` (Unix seconds), and returns its id.
async fn seed_expiring(data: &Path, app: &str, user: &str, expires_at: i64) -> String {
    use colloquy_core::domain::{
        Conversation, ConversationId, ConversationStatus, EndUser, EndUserId, Message, MessageId, MessageStatus,
        OpaqueJson, Owner, Timestamp, UserRef,
    };
    use colloquy_core::ports::{ConversationStore, EndUserStore, MessageStore};
    let store = colloquy_embedded::sqlite::SqliteStore::open(&data.join("colloquy.db")).unwrap();
    let app: colloquy_core::domain::AppId = app.parse().unwrap();
    let user = UserRef::parse(user).unwrap();
    let now = Timestamp::from_micros(expires_at * 1_000_000 - 86_400_000_000);
    let end_user =
        EndUser { id: EndUserId::derived(app, &user), app_id: app, session_id: user.clone(), created_at: now };
    let owner = Owner { app_id: app, end_user_id: store.end_user(app, &user, end_user).await.unwrap().id };
    let conversation = Conversation {
        id: ConversationId::from_uuid(uuid::Uuid::now_v7()),
        owner,
        name: "expiring".into(),
        inputs: Default::default(),
        status: ConversationStatus::Normal,
        introduction: String::new(),
        created_at: now,
        updated_at: now,
        expires_at: Some(Timestamp::from_micros(expires_at * 1_000_000)),
        state: Default::default(),
    };
    store.insert_conversation(&conversation, &user).await.unwrap();
    let message = Message {
        id: MessageId::from_uuid(uuid::Uuid::now_v7()),
        conversation_id: conversation.id,
        owner,
        parent_message_id: None,
        inputs: Default::default(),
        query: "q".into(),
        answer: "a".into(),
        message_files: Vec::new(),
        retriever_resources: Vec::new(),
        agent_thoughts: Vec::new(),
        status: MessageStatus::Normal,
        error: None,
        metadata: OpaqueJson::empty_object(),
        created_at: now,
        task_id: None,
    };
    assert!(store.insert_message(&message).await.unwrap());
    conversation.id.to_string()
}

#[tokio::test]
async fn purge_removes_what_expired_and_the_server_sweeps_it_too() {
    let data = temp_dir();
    let config = data.join("config.json");
    std::fs::write(&config, r#"{"retention": {"conversation_days": 1}}"#).unwrap();
    let created: Value = serde_json::from_str(&stdout(&colloquy(
        &data,
        &["app", "create", "--name", "Short memory", "--config", config.to_str().unwrap(), "--json"],
    )))
    .unwrap();
    let app = created["app_id"].as_str().unwrap().to_owned();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    seed_expiring(&data, &app, "old", now - 60).await;
    seed_expiring(&data, &app, "fresh", now + 3_600).await;

    let counted: Value =
        serde_json::from_str(&stdout(&colloquy(&data, &["purge", "--expired", "--dry-run", "--json"]))).unwrap();
    assert_eq!((counted["dry_run"].as_bool(), counted["expired"]["conversations"].as_u64()), (Some(true), Some(1)));
    let held = |user: &str| {
        let out = stdout(&colloquy(&data, &["inspect", "--app", &app, "--user", user, "--json"]));
        serde_json::from_str::<Value>(&out).unwrap()["counts"]["conversations"].as_u64().unwrap_or(0)
    };
    assert_eq!((held("old"), held("fresh")), (1, 1), "a dry run removes nothing");
    let printed = stdout(&colloquy(&data, &["purge", "--expired"]));
    assert!(printed.contains("removed 1 expired conversations"), "{printed}");
    assert_eq!((held("old"), held("fresh")), (0, 1));
    assert!(!colloquy(&data, &["purge"]).status.success(), "purge says what it removes: --expired");

    // The server sweeps at start-up and then every interval.
    seed_expiring(&data, &app, "later", now - 1).await;
    let server = Server::start(&data).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while held("later") > 0 {
        assert!(Instant::now() < deadline, "the sweeper removed nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop();
    assert_eq!(held("fresh"), 1);
    std::fs::remove_dir_all(&data).unwrap();
}
