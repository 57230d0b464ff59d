//! Transient faults on the AWS path. The real server runs on DynamoDB Local and moto's S3
//! with the clients the service builds (their retries and timeouts), each reached through a
//! proxy that cuts a share of the requests (`colloquy_tests::faults`). Scenarios of Dify's
//! main semantics run concurrently, each as its own end user; every answer must be the
//! right one or a clean 503 (Dify's error shape, `service_unavailable`, `Retry-After`) —
//! never a 500 — and after a 503 the store, read around the proxy, must hold all or none of
//! what the request would have written.
//!
//! - 10 % of requests cut before they reach the emulators: every scenario passes.
//! - 20 %: every failure is a clean 503, nothing half-written.
//! - 20 % cut after the emulators answered (the write happened, its answer was lost): the
//!   retried writes must recognise their own first attempt (no 404, 409 or 500).
//! - 60 %: retries run out often; the same rules hold.
//!
//! These run in the API suite's DynamoDB pass (`COLLOQUY_TEST_STORE=dynamodb`, which
//! `scripts/test.sh` runs first, while DynamoDB Local is fast: after the 10,000-message purge
//! test its writes to stream-enabled tables take ~100 ms each and queue up). On the embedded
//! store they have nothing to do. Per-run summaries are printed (`-- --nocapture faults`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use colloquy_core::domain::{
    AppConfig, AppMode, Conversation, ConversationId, ConversationList, ConversationSort, FileId, Message, MessageId,
    Owner, Timestamp, ValueType,
};
use colloquy_core::ports::{AppStore, BlobStore, ConversationStore, MessageStore, Store, StoreError};
use colloquy_tests::aws::{self, emulator};
use colloquy_tests::faults::{Cut, FaultProxy};
use colloquy_tests::*;
use futures_util::future::join_all;
use reqwest::RequestBuilder;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// One server behind two proxies, and the same table and bucket reached directly.
struct Rig {
    app: TestApp,
    key: TestKey,
    dynamodb: FaultProxy,
    s3: FaultProxy,
    /// Messages found stored as if answered, without their answer, after a chat's 503.
    unanswered: Mutex<Vec<String>>,
}

impl Rig {
    async fn start(seed: u64) -> Self {
        let dynamodb = FaultProxy::start(&emulator("AWS_ENDPOINT_URL_DYNAMODB"), seed).await;
        let s3 = FaultProxy::start(&emulator("AWS_ENDPOINT_URL"), seed ^ 0x5353).await;
        let server: (Arc<dyn Store>, Arc<dyn BlobStore>) =
            (Arc::new(aws::dynamo_store_at(&dynamodb.url()).await), Arc::new(aws::s3_blobs_at(&s3.url()).await));
        let direct: (Arc<dyn Store>, Arc<dyn BlobStore>) =
            (Arc::new(aws::dynamo_store().await), Arc::new(aws::s3_blobs().await));
        let app = spawn_app_via(server, direct).await;
        // Rate limits off: the manual clock never leaves its first minute.
        let config = AppConfig::from_json(
            r#"{"feedback_rate_limit_per_minute": 0,
                "file_upload": {"image": {"enabled": true, "number_limits": 3, "transfer_methods": ["local_file"]}}}"#,
        )
        .expect("app configuration");
        let key = app.create_app(AppMode::AdvancedChat, config).await;
        Self { app, key, dynamodb, s3, unanswered: Mutex::new(Vec::new()) }
    }

    fn set_faults(&self, share: f64, cut: Cut) {
        self.dynamodb.set_faults(share, cut);
        self.s3.set_faults(share, cut);
    }

    async fn owner(&self, user: &str) -> Owner {
        self.app.end_user(&self.key, user).await.owner()
    }

    fn store(&self) -> &dyn Store {
        self.app.store.as_ref()
    }
}

/// A request answered 503 at this step.
#[derive(Debug, Clone, Copy)]
struct Unavailable(&'static str);

type Step<T> = Result<T, Unavailable>;

/// Sends a request: its status, headers and body; a 503 must be a clean one, and nothing
/// else of the 5xx kind may come back.
async fn raw(step: &'static str, request: RequestBuilder) -> Step<(u16, reqwest::header::HeaderMap, Bytes)> {
    let response = request.send().await.unwrap_or_else(|e| panic!("{step}: the server must answer: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap_or_else(|e| panic!("{step}: body: {e}"));
    if status == 503 {
        let json: Value = serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{step}: 503 with a JSON body"));
        assert_eq!(
            json,
            json!({"code": "service_unavailable", "status": 503,
                   "message": "The service is temporarily unavailable. Please try again later."}),
            "{step}: Dify's error shape"
        );
        assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"), "{step}: Retry-After");
        return Err(Unavailable(step));
    }
    assert!(status < 500, "{step}: {status} {}", String::from_utf8_lossy(&body));
    Ok((status, headers, body))
}

/// As `raw`, for a JSON answer with the expected status.
async fn call(step: &'static str, request: RequestBuilder, expected: u16) -> Step<Value> {
    let (status, _, body) = raw(step, request).await?;
    let json = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).expect("a JSON body") };
    assert_eq!(status, expected, "{step}: {json}");
    Ok(json)
}

/// What one scenario run ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Unavailable(&'static str),
}

fn outcome(result: Step<()>) -> Outcome {
    match result {
        Ok(()) => Outcome::Passed,
        Err(Unavailable(step)) => Outcome::Unavailable(step),
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros((T0 + seconds) * 1_000_000)
}

// ---- the checks made around the proxy after a 503 ----------------------------------------

/// Every message of the user's conversations reads as answered or as failed: a 503 must
/// not leave one that looks complete without its answer. Such messages are collected (the
/// tests decide), anything else half-written fails at once.
async fn messages_are_whole(rig: &Rig, user: &str) {
    let owner = rig.owner(user).await;
    let sort = ConversationSort::parse(None).unwrap();
    for conversation in rig.store().conversations(owner, sort, &ConversationList::Active, None, 100).await.unwrap() {
        for message in rig.store().messages_before(conversation.id, None, 100).await.unwrap() {
            if message.status.as_str() == "normal" && message.answer.is_empty() {
                rig.unanswered.lock().unwrap().push(format!("{user}: message {} ({:?})", message.id, message.query));
            } else {
                assert!(message.status.as_str() == "error" || message.answer.contains(&message.query), "{message:?}");
            }
        }
    }
}

/// A conversation is either live (listed, its messages readable) or gone (neither).
async fn deleted_fully_or_not_at_all(rig: &Rig, owner: Owner, id: ConversationId, message: MessageId) {
    let sort = ConversationSort::parse(None).unwrap();
    let found = rig.store().conversation(owner, id).await.unwrap().is_some();
    let listed = rig
        .store()
        .conversations(owner, sort, &ConversationList::Active, None, 100)
        .await
        .unwrap()
        .iter()
        .any(|c| c.id == id);
    let readable = rig.store().message(owner, message).await.unwrap().is_some();
    assert_eq!((found, listed, readable), (found, found, found), "a half-deleted conversation");
}

/// A message's feedback and its entry in the app's list exist together or not at all.
async fn feedback_is_whole(rig: &Rig, owner: Owner, message: MessageId) {
    let own = rig.store().user_feedback(owner, message).await.unwrap();
    let listed: Vec<_> = rig
        .store()
        .app_feedbacks(rig.key.app.id, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.message_id == message)
        .collect();
    match own {
        Some(own) => {
            assert!(listed.len() == 1 && listed[0].rating == own.rating, "feedback {own:?} listed as {listed:?}")
        }
        None => assert!(listed.is_empty(), "listed feedback without its own item: {listed:?}"),
    }
}

// ---- the scenarios ------------------------------------------------------------------------

/// Blocking chat in a new conversation; the history then shows the answer.
async fn chat_new(rig: &Rig, user: String) -> Outcome {
    let app = &rig.app;
    let result = async {
        let query = format!("Where should {user} travel?");
        let body = json!({"inputs": {}, "query": query, "user": user, "response_mode": "blocking"});
        let answer = call("chat", app.post(&rig.key, "/v1/chat-messages", body), 200).await?;
        assert_eq!(answer["event"], "message");
        assert!(answer["answer"].as_str().is_some_and(|a| !a.is_empty()), "{answer}");
        let path = format!("/v1/messages?user={user}&conversation_id={}", answer["conversation_id"].as_str().unwrap());
        let history = call("history", app.get(&rig.key, &path), 200).await?;
        assert_eq!(history["data"].as_array().unwrap().len(), 1, "{history}");
        assert_eq!(history["data"][0]["id"], answer["message_id"]);
        assert_eq!((&history["data"][0]["answer"], &history["data"][0]["query"]), (&answer["answer"], &json!(query)));
        let list = call("list", app.get(&rig.key, &format!("/v1/conversations?user={user}")), 200).await?;
        assert_eq!(list["data"][0]["id"], answer["conversation_id"]);
        Ok(())
    }
    .await;
    if result.is_err() {
        messages_are_whole(rig, &user).await;
    }
    outcome(result)
}

/// Blocking chat that continues a conversation.
async fn chat_continued(rig: &Rig, user: String) -> Outcome {
    let app = &rig.app;
    let conversation = app.seed_conversation_at(&rig.key, &user, "trip", at(0)).await;
    app.seed_message_at(&conversation, "first question", at(0)).await;
    let result = async {
        let body = json!({"inputs": {}, "query": "and then?", "user": user, "response_mode": "blocking",
                          "conversation_id": conversation.id});
        let answer = call("chat", app.post(&rig.key, "/v1/chat-messages", body), 200).await?;
        assert_eq!(answer["conversation_id"], conversation.id.to_string());
        let path = format!("/v1/messages?user={user}&conversation_id={}", conversation.id);
        let history = call("history", app.get(&rig.key, &path), 200).await?;
        let queries: Vec<&str> =
            history["data"].as_array().unwrap().iter().map(|m| m["query"].as_str().unwrap()).collect();
        assert_eq!(queries, ["first question", "and then?"]);
        Ok(())
    }
    .await;
    if result.is_err() {
        messages_are_whole(rig, &user).await;
    }
    outcome(result)
}

/// Streaming chat: a 503 before the stream, or events that end with `message_end` (or an
/// `error` event carrying the 503).
async fn chat_streaming(rig: &Rig, user: String) -> Outcome {
    let app = &rig.app;
    let result = async {
        let body = json!({"inputs": {}, "query": "stream it", "user": user, "response_mode": "streaming"});
        let response = app.post(&rig.key, "/v1/chat-messages", body).send().await.expect("an answer");
        if response.status() != 200 {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.unwrap();
            assert_eq!(status, 503, "{}", String::from_utf8_lossy(&bytes));
            assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
            return Err(Unavailable("chat stream"));
        }
        let events = read_events(response).await;
        let last = events.last().expect("events");
        match last.data["event"].as_str() {
            Some("message_end") => {
                let text: String = events.iter().filter_map(|e| e.data["answer"].as_str()).collect();
                assert!(text.contains("stream it"), "{text}");
                Ok(())
            }
            Some("error") => {
                assert_eq!((&last.data["status"], &last.data["code"]), (&json!(503), &json!("service_unavailable")));
                Err(Unavailable("stream error event"))
            }
            other => panic!("the stream ended with {other:?}: {events:?}"),
        }
    }
    .await;
    if result.is_err() {
        messages_are_whole(rig, &user).await;
    }
    outcome(result)
}

/// `GET /conversations`: newest first, `limit`, `has_more`, `last_id`.
async fn list_conversations(rig: &Rig, user: String) -> Outcome {
    let app = &rig.app;
    let mut seeded = Vec::new();
    for i in 0..3 {
        seeded.push(app.seed_conversation_at(&rig.key, &user, &format!("c{i}"), at(i)).await.id.to_string());
    }
    outcome(
        async {
            let base = format!("/v1/conversations?user={user}&limit=2");
            let page = call("page 1", app.get(&rig.key, &base), 200).await?;
            let ids: Vec<&str> = page["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
            assert_eq!((ids, &page["has_more"]), (vec![seeded[2].as_str(), seeded[1].as_str()], &json!(true)));
            let page = call("page 2", app.get(&rig.key, &format!("{base}&last_id={}", seeded[1])), 200).await?;
            assert_eq!((&page["data"][0]["id"], &page["has_more"]), (&json!(seeded[0]), &json!(false)));
            Ok(())
        }
        .await,
    )
}

/// `GET /messages`: the newest page in ascending order, then older pages by `first_id`.
async fn messages_paging(rig: &Rig, user: String) -> Outcome {
    let app = &rig.app;
    let conversation = app.seed_conversation_at(&rig.key, &user, "long", at(0)).await;
    for i in 0..5 {
        app.seed_message_at(&conversation, &format!("q{i}"), at(i)).await;
    }
    outcome(
        async {
            let base = format!("/v1/messages?user={user}&conversation_id={}&limit=2", conversation.id);
            let mut queries = Vec::new();
            let mut path = base.clone();
            for step in ["page 1", "page 2", "page 3"] {
                let page = call(step, app.get(&rig.key, &path), 200).await?;
                let data = page["data"].as_array().unwrap();
                queries.splice(0..0, data.iter().map(|m| m["query"].as_str().unwrap().to_owned()));
                assert_eq!(page["has_more"], step != "page 3", "{page}");
                path = format!("{base}&first_id={}", data[0]["id"].as_str().unwrap());
            }
            assert_eq!(queries, ["q0", "q1", "q2", "q3", "q4"]);
            Ok(())
        }
        .await,
    )
}

/// Renaming by hand and by the model.
async fn rename(rig: &Rig, user: String) -> Outcome {
    let app = &rig.app;
    let conversation = app.seed_conversation_at(&rig.key, &user, "old name", at(0)).await;
    app.seed_message_at(&conversation, "Tell me about Lisbon trams", at(0)).await;
    let path = format!("/v1/conversations/{}/name", conversation.id);
    let result = async {
        let renamed = call("rename", app.post(&rig.key, &path, json!({"name": "Lisbon", "user": user})), 200).await?;
        assert_eq!(renamed["name"], "Lisbon");
        let list = call("list", app.get(&rig.key, &format!("/v1/conversations?user={user}")), 200).await?;
        assert_eq!(list["data"][0]["name"], "Lisbon");
        let auto = json!({"auto_generate": true, "user": user});
        let named = call("auto rename", app.post(&rig.key, &path, auto), 200).await?;
        assert!(named["name"].as_str().is_some_and(|n| !n.is_empty() && n != "Lisbon"), "{named}");
        Ok(())
    }
    .await;
    if result.is_err() {
        let owner = rig.owner(&user).await;
        let stored = rig.store().conversation(owner, conversation.id).await.unwrap().expect("the conversation");
        assert!(!stored.name.is_empty(), "{stored:?}");
    }
    outcome(result)
}

/// `DELETE /conversations/:id`: 204, then the conversation and its messages are gone.
async fn delete(rig: &Rig, user: String) -> Outcome {
    let app = &rig.app;
    let conversation = app.seed_conversation_at(&rig.key, &user, "doomed", at(0)).await;
    let message = app.seed_message_at(&conversation, "bye", at(0)).await;
    let path = format!("/v1/conversations/{}", conversation.id);
    let result = async {
        let (status, _, body) = raw("delete", app.delete(&rig.key, &path, json!({"user": user}))).await?;
        assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
        let messages = format!("/v1/messages?user={user}&conversation_id={}", conversation.id);
        let gone = call("messages after", app.get(&rig.key, &messages), 404).await?;
        assert_eq!(gone["code"], "not_found");
        let list = call("list after", app.get(&rig.key, &format!("/v1/conversations?user={user}")), 200).await?;
        assert_eq!(list["data"], json!([]));
        Ok(())
    }
    .await;
    let owner = rig.owner(&user).await;
    deleted_fully_or_not_at_all(rig, owner, conversation.id, message.id).await;
    if result.is_ok() {
        assert!(rig.store().conversation(owner, conversation.id).await.unwrap().is_none());
    }
    outcome(result)
}

/// Like, then remove the like; the app's feedback list follows.
async fn feedback(rig: &Rig, user: String) -> Outcome {
    let app = &rig.app;
    let conversation = app.seed_conversation_at(&rig.key, &user, "rated", at(0)).await;
    let message = app.seed_message_at(&conversation, "rate me", at(0)).await;
    let path = format!("/v1/messages/{}/feedbacks", message.id);
    let result = async {
        let liked = call("like", app.post(&rig.key, &path, json!({"rating": "like", "user": user})), 200).await?;
        assert_eq!(liked, json!({"result": "success"}));
        let messages = format!("/v1/messages?user={user}&conversation_id={}", conversation.id);
        let history = call("history", app.get(&rig.key, &messages), 200).await?;
        assert_eq!(history["data"][0]["feedback"], json!({"rating": "like"}));
        let listed = call("app feedbacks", app.get(&rig.key, "/v1/app/feedbacks?limit=101"), 200).await?;
        let mine = listed["data"].as_array().unwrap().iter().filter(|f| f["message_id"] == message.id.to_string());
        assert_eq!(mine.count(), 1, "{listed}");
        let undone = call("unlike", app.post(&rig.key, &path, json!({"rating": null, "user": user})), 200).await?;
        assert_eq!(undone, json!({"result": "success"}));
        let history = call("history after", app.get(&rig.key, &messages), 200).await?;
        assert_eq!(history["data"][0]["feedback"], Value::Null);
        Ok(())
    }
    .await;
    let owner = rig.owner(&user).await;
    feedback_is_whole(rig, owner, message.id).await;
    if result.is_ok() {
        assert!(rig.store().user_feedback(owner, message.id).await.unwrap().is_none());
    }
    outcome(result)
}

/// `GET /app/feedbacks` pages.
async fn app_feedbacks(rig: &Rig, _: String) -> Outcome {
    let app = &rig.app;
    outcome(
        async {
            let page = call("app feedbacks", app.get(&rig.key, "/v1/app/feedbacks?page=1&limit=5"), 200).await?;
            assert!(page["data"].as_array().is_some_and(|d| d.len() <= 5), "{page}");
            Ok(())
        }
        .await,
    )
}

/// Conversation variables: list, update, list again.
async fn variables(rig: &Rig, user: String) -> Outcome {
    let app = &rig.app;
    let conversation = app.seed_conversation_at(&rig.key, &user, "vars", at(0)).await;
    let variable = app.seed_variable(&conversation, "city", ValueType::String, json!("Porto")).await;
    let base = format!("/v1/conversations/{}/variables", conversation.id);
    let result = async {
        let list = call("variables", app.get(&rig.key, &format!("{base}?user={user}")), 200).await?;
        assert_eq!((&list["data"][0]["name"], &list["data"][0]["value"]), (&json!("city"), &json!("Porto")));
        let path = format!("{base}/{}", variable.id);
        let updated = call("update", app.put(&rig.key, &path, json!({"value": "Faro", "user": user})), 200).await?;
        assert_eq!(updated["value"], "Faro");
        let list = call("variables after", app.get(&rig.key, &format!("{base}?user={user}")), 200).await?;
        assert_eq!(list["data"][0]["value"], "Faro");
        Ok(())
    }
    .await;
    let stored = rig.store().variable(conversation.id, variable.id).await.unwrap().expect("the variable");
    assert!(stored.value == json!("Porto") || stored.value == json!("Faro"), "{stored:?}");
    outcome(result)
}

/// Annotations: create, find, update, delete.
async fn annotations(rig: &Rig, user: String, deletes_may_repeat: bool) -> Outcome {
    let app = &rig.app;
    let question = format!("What does {user} ask?");
    let result = async {
        let created = call(
            "create annotation",
            app.post(&rig.key, "/v1/apps/annotations", json!({"question": question, "answer": "This."})),
            200,
        )
        .await?;
        let id = created["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/apps/annotations/{id}");
        let updated =
            call("update annotation", app.put(&rig.key, &path, json!({"question": question, "answer": "That."})), 200)
                .await?;
        assert_eq!(updated["answer"], "That.");
        let keyword: String = form_urlencoded::byte_serialize(question.as_bytes()).collect();
        let found =
            call("find annotation", app.get(&rig.key, &format!("/v1/apps/annotations?keyword={keyword}")), 200).await?;
        assert_eq!((&found["total"], &found["data"][0]["id"]), (&json!(1), &json!(id)));
        let (status, _, _) = raw("delete annotation", app.delete(&rig.key, &path, json!({}))).await?;
        // A DeleteItem retried after its first attempt went through (its answer lost) finds
        // nothing: 404. Known; only answers lost after the write cause it.
        assert!(status == 204 || deletes_may_repeat && status == 404, "delete annotation: {status}");
        Ok(())
    }
    .await;
    let (stored, total) = rig.store().annotations(rig.key.app.id, Some(&question), 0, 10).await.unwrap();
    assert!(total <= 1, "one create, one annotation: {stored:?}");
    outcome(result)
}

/// File upload, then its preview serves the same bytes.
async fn upload_and_preview(rig: &Rig, user: String) -> Outcome {
    let app = &rig.app;
    let bytes: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut uploaded = None;
    let result = async {
        let part = Part::bytes(bytes.clone()).file_name("photo.png").mime_str("image/png").unwrap();
        let form = Form::new().part("file", part).text("user", user.clone());
        let request = app.client.post(app.url("/v1/files/upload")).bearer_auth(&rig.key.key).multipart(form);
        let file = call("upload", request, 201).await?;
        let id = file["id"].as_str().unwrap().to_owned();
        uploaded = Some(id.clone());
        let (status, headers, body) =
            raw("preview", app.get(&rig.key, &format!("/v1/files/{id}/preview?user={user}"))).await?;
        assert_eq!((status, headers["content-type"].to_str().unwrap()), (200, "image/png"));
        assert_eq!(body.to_vec(), bytes);
        Ok(())
    }
    .await;
    if let Some(id) = uploaded {
        // Answered 201: the record and the bytes are both stored.
        let owner = rig.owner(&user).await;
        let file = rig.store().file(owner, id.parse::<FileId>().unwrap()).await.unwrap().expect("the file");
        let blob = app.blobs.get_blob(&file.blob_key(), None).await.unwrap().expect("the bytes");
        assert_eq!(blob.bytes.to_vec(), bytes);
    }
    outcome(result)
}

/// The app's own routes (two reads each).
async fn app_info(rig: &Rig, _: String) -> Outcome {
    let app = &rig.app;
    outcome(
        async {
            let info = call("info", app.get(&rig.key, "/v1/info"), 200).await?;
            assert_eq!(info["mode"], "advanced-chat");
            call("parameters", app.get(&rig.key, "/v1/parameters"), 200).await?;
            Ok(())
        }
        .await,
    )
}

const SCENARIOS: [&str; 13] = [
    "chat (blocking, new)",
    "chat (blocking, continued)",
    "chat (streaming)",
    "list conversations",
    "messages paging",
    "rename",
    "delete",
    "feedback",
    "app feedbacks",
    "variables",
    "annotations",
    "file upload + preview",
    "app info",
];

async fn scenario(rig: &Rig, index: usize, user: String, cut: Cut) -> Outcome {
    match index {
        0 => chat_new(rig, user).await,
        1 => chat_continued(rig, user).await,
        2 => chat_streaming(rig, user).await,
        3 => list_conversations(rig, user).await,
        4 => messages_paging(rig, user).await,
        5 => rename(rig, user).await,
        6 => delete(rig, user).await,
        7 => feedback(rig, user).await,
        8 => app_feedbacks(rig, user).await,
        9 => variables(rig, user).await,
        10 => annotations(rig, user, cut == Cut::AfterUpstream).await,
        11 => upload_and_preview(rig, user).await,
        _ => app_info(rig, user).await,
    }
}

/// Whether the suite runs on DynamoDB and S3 (else these tests have nothing to check).
fn on_aws() -> bool {
    if !testing_on_dynamodb() {
        eprintln!("faults: the AWS path only (COLLOQUY_TEST_STORE=dynamodb); nothing to do on the embedded store");
    }
    testing_on_dynamodb()
}

/// What a run measured.
#[derive(Debug)]
struct Report {
    runs: usize,
    passed: usize,
    /// Scenario, the step answered 503, and how long the scenario had run by then.
    unavailable: Vec<(&'static str, &'static str, String)>,
    unanswered: Vec<String>,
    requests_cut: u64,
    requests_forwarded: u64,
    elapsed: Duration,
}

/// Runs every scenario `rounds` times at once on a fresh server, each as its own end user,
/// with `share` of the requests cut at `cut`.
async fn run(share: f64, cut: Cut, rounds: usize, seed: u64) -> Report {
    run_on(&Rig::start(seed).await, share, cut, rounds, seed).await
}

async fn run_on(rig: &Rig, share: f64, cut: Cut, rounds: usize, label: u64) -> Report {
    rig.set_faults(share, cut);
    let before = (rig.dynamodb.counts(), rig.s3.counts());
    let started = Instant::now();
    let runs = (0..rounds).flat_map(|round| (0..SCENARIOS.len()).map(move |index| (round, index)));
    let outcomes = join_all(runs.map(|(round, index)| async move {
        let user = format!("u-{label}-{round}-{index}");
        let started = Instant::now();
        let outcome = scenario(rig, index, user, cut).await;
        (SCENARIOS[index], outcome, started.elapsed())
    }))
    .await;
    let elapsed = started.elapsed();
    let (dynamodb, s3) = (rig.dynamodb.counts(), rig.s3.counts());
    let requests_cut = dynamodb.cut + s3.cut - before.0.cut - before.1.cut;
    let report = Report {
        runs: outcomes.len(),
        passed: outcomes.iter().filter(|(_, o, _)| *o == Outcome::Passed).count(),
        unavailable: outcomes
            .iter()
            .filter_map(|(name, o, took)| match o {
                Outcome::Unavailable(step) => Some((*name, *step, format!("{:.2} s", took.as_secs_f64()))),
                Outcome::Passed => None,
            })
            .collect(),
        unanswered: std::mem::take(&mut *rig.unanswered.lock().unwrap()),
        requests_cut,
        requests_forwarded: dynamodb.forwarded + s3.forwarded - before.0.forwarded - before.1.forwarded,
        elapsed,
    };
    println!(
        "{:.0} % cut {cut:?}: {} runs, {} passed, {} answered 503 {:?}, {} unanswered messages {:?}; {} requests cut of {}; {:.1} s",
        share * 100.0,
        report.runs,
        report.passed,
        report.unavailable.len(),
        report.unavailable,
        report.unanswered.len(),
        report.unanswered,
        report.requests_cut,
        report.requests_cut + report.requests_forwarded,
        report.elapsed.as_secs_f64(),
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_10_percent_of_requests_cut_every_scenario_passes() {
    if !on_aws() {
        return;
    }
    let report = run(0.10, Cut::BeforeUpstream, 3, 10).await;
    assert!(report.requests_cut > 0, "the proxy cut nothing: {report:?}");
    assert_eq!(
        report.passed, report.runs,
        "(503s after ~6 s are timeouts: a DynamoDB Local slowed by the purge test; use a fresh one) {report:?}"
    );
    assert!(report.unanswered.is_empty(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_20_percent_every_failure_is_a_clean_503_and_nothing_is_half_written() {
    if !on_aws() {
        return;
    }
    let report = run(0.20, Cut::BeforeUpstream, 3, 20).await;
    assert!(report.requests_cut > 0, "{report:?}");
    // The scenarios panic on anything but the right answer or a clean 503.
    assert!(report.passed * 10 >= report.runs * 9, "retries should absorb nearly every fault: {report:?}");
    assert!(report.unanswered.is_empty(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_lost_after_the_write_are_retried_without_false_conflicts() {
    if !on_aws() {
        return;
    }
    let report = run(0.20, Cut::AfterUpstream, 2, 21).await;
    assert!(report.requests_cut > 0, "{report:?}");
    assert!(report.passed * 10 >= report.runs * 9, "{report:?}");
    assert!(report.unanswered.is_empty(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_60_percent_retries_run_out_and_answers_stay_clean() {
    if !on_aws() {
        return;
    }
    let report = run(0.60, Cut::BeforeUpstream, 2, 60).await;
    assert!(!report.unavailable.is_empty(), "at 60 % some requests should run out of retries: {report:?}");
    // Known gap, not the adapters': a chat whose answer cannot be saved at the end
    // (`Generation::finish`) answers 503 but leaves its message as inserted, empty and
    // "normal". Reported, not asserted, at this rate; the rates above must not show it.
}

/// An outage drains the retry quota (calls then fail fast instead of multiplying the load);
/// once it is over, the quota refills with time and the same server absorbs faults again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_an_outage_the_retry_quota_comes_back() {
    if !on_aws() {
        return;
    }
    let rig = Rig::start(99).await;
    let outage = run_on(&rig, 1.0, Cut::BeforeUpstream, 3, 990).await;
    assert_eq!(outage.passed, 0, "{outage:?}");
    // Each scenario stops at its first call: five attempts each while the quota lasts
    // (500 tokens, 10 a retry: 50 retries), one attempt each after.
    assert!(
        outage.requests_cut < (outage.runs * 3) as u64,
        "an outage must not be retried five times per call: {outage:?}"
    );
    // 10 tokens a second: enough for a few retries at once within seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = run_on(&rig, 0.10, Cut::BeforeUpstream, 2, 991).await;
    assert_eq!(after.passed, after.runs, "{after:?}");
}

/// Each write whose first answer is lost (it went through) and that the SDK therefore
/// sends again: the retry must recognise its own first attempt, and not report a conflict,
/// a 404 or a failure; while a true second insert still conflicts.
#[tokio::test]
async fn retried_writes_recognise_their_own_first_attempt() {
    if !on_aws() {
        return;
    }
    let rig = Rig::start(7).await;
    let store = aws::dynamo_store_at(&rig.dynamodb.url()).await;
    let owner = rig.owner("retried").await;
    let conversation = Conversation {
        id: ConversationId::from_uuid(uuid::Uuid::now_v7()),
        owner,
        name: "retried".into(),
        inputs: serde_json::Map::new(),
        status: colloquy_core::domain::ConversationStatus::Normal,
        introduction: String::new(),
        created_at: at(0),
        updated_at: at(0),
        expires_at: None,
        state: Default::default(),
    };
    let lost_once = || rig.dynamodb.cut_next(1, Cut::AfterUpstream);

    lost_once();
    store
        .insert_conversation(&conversation, &colloquy_core::domain::UserRef::parse("retried").unwrap())
        .await
        .expect("a retried insert is not a conflict");
    assert!(matches!(
        store.insert_conversation(&conversation, &colloquy_core::domain::UserRef::parse("retried").unwrap()).await,
        Err(StoreError::Conflict(_))
    ));

    let message = Message {
        id: MessageId::from_uuid(uuid::Uuid::now_v7()),
        conversation_id: conversation.id,
        owner,
        parent_message_id: None,
        inputs: serde_json::Map::new(),
        query: "once".into(),
        answer: "only once".into(),
        message_files: Vec::new(),
        retriever_resources: Vec::new(),
        agent_thoughts: Vec::new(),
        status: colloquy_core::domain::MessageStatus::Normal,
        error: None,
        metadata: colloquy_core::domain::OpaqueJson::empty_object(),
        created_at: at(1),
        task_id: None,
    };
    lost_once();
    store.insert_message(&message).await.expect("a retried transaction is not a conflict");
    assert!(matches!(store.insert_message(&message).await, Err(StoreError::Conflict(_))));
    let history = rig.store().messages_before(conversation.id, None, 10).await.unwrap();
    assert_eq!(history.iter().map(|m| m.id).collect::<Vec<_>>(), [message.id]);

    let key = colloquy_core::domain::ApiKey::generate(colloquy_core::domain::KeyRole::App);
    lost_once();
    store
        .add_key(rig.key.app.id, &key.record(colloquy_core::domain::KeyRole::App, at(2)))
        .await
        .expect("a retried key insert is not a conflict");
    assert!(matches!(
        store.add_key(rig.key.app.id, &key.record(colloquy_core::domain::KeyRole::App, at(2))).await,
        Err(StoreError::Conflict(_))
    ));

    lost_once();
    assert!(store.delete_conversation(owner, conversation.id).await.unwrap(), "a retried delete still deleted it");
    assert!(!store.delete_conversation(owner, conversation.id).await.unwrap(), "a second delete finds nothing");
    assert_eq!(rig.dynamodb.counts().cut, 4);
}

/// A quick check of the proxy itself: with nothing cut it is transparent.
#[tokio::test]
async fn the_proxy_is_transparent_when_it_cuts_nothing() {
    if !on_aws() {
        return;
    }
    let rig = Rig::start(1).await;
    for (index, name) in SCENARIOS.iter().enumerate() {
        let user = format!("transparent-{index}");
        assert_eq!(scenario(&rig, index, user, Cut::BeforeUpstream).await, Outcome::Passed, "{name}");
    }
    let counts = rig.dynamodb.counts();
    assert!(counts.forwarded > 50 && counts.cut == 0, "{counts:?}");
    assert!(rig.s3.counts().forwarded >= 2, "{:?}", rig.s3.counts());
}
