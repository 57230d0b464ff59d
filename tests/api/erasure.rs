//! Erasing an end user (`DELETE /v1/end-users/:user`, `GET …/erasures/:id`) and exporting one
//! (`GET /v1/end-users/:user/export`): what an erasure leaves (nothing of theirs, counted object
//! by object on the store and in the blob store), what it keeps (everyone else's), that their
//! data vanishes from reads before the answer, that a failed erasure sent again continues, and
//! that an export equals what the read API shows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use colloquy_core::domain::{AppConfig, AppMode, DownloadHeaders, EndUserId, Rating, UserRef, ValueType};
use colloquy_core::ports::{Blob, BlobRange, BlobStore, BlobStream, StoreError, StoreResult};
use colloquy_tests::*;
use futures_util::future::join_all;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// Waits for an erasure to end; returns its last status body.
pub(crate) async fn finished(app: &TestApp, key: &TestKey, user: &str, job: &str) -> Value {
    for _ in 0..600 {
        let (status, body) = send(app.get(key, &format!("/v1/end-users/{user}/erasures/{job}"))).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] == "done" || body["status"] == "failed" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the erasure {job} did not end");
}

async fn upload(app: &TestApp, key: &TestKey, user: &str, name: &str, mime: &str) -> String {
    let part = Part::bytes(vec![7u8; 300]).file_name(name.to_owned()).mime_str(mime).unwrap();
    let form = Form::new().text("user", user.to_owned()).part("file", part);
    let (status, file) = send(app.client.post(app.url("/v1/files/upload")).bearer_auth(&key.key).multipart(form)).await;
    assert_eq!(status, 201, "{file}");
    file["id"].as_str().unwrap().to_owned()
}

fn image_app() -> AppConfig {
    AppConfig::from_json(
        r#"{"file_upload": {"image": {"enabled": true, "number_limits": 3, "transfer_methods": ["local_file"]}}}"#,
    )
    .unwrap()
}

/// Seeds `conversations` conversations of `user` with `per` messages each (the first rated,
/// one variable each), through the store, a conversation at a time in parallel.
async fn seed_history(app: &TestApp, key: &TestKey, user: &str, conversations: usize, per: usize) {
    let seeded = (0..conversations).map(|c| async move {
        let conversation = app.seed_conversation(key, user, &format!("{user} {c}")).await;
        let mut first = None;
        for m in 0..per {
            let message = app.seed_message(&conversation, &format!("q{m}")).await;
            first.get_or_insert(message);
        }
        if let Some(first) = first {
            app.seed_rating(&first, if c % 2 == 0 { Rating::Like } else { Rating::Dislike }).await;
        }
        app.seed_variable(&conversation, "topic", ValueType::String, json!(format!("t{c}"))).await;
    });
    // Ten at a time: DynamoDB Local serialises its writes.
    let seeded: Vec<_> = seeded.collect();
    let mut seeded = seeded.into_iter();
    loop {
        let batch: Vec<_> = seeded.by_ref().take(10).collect();
        if batch.is_empty() {
            break;
        }
        join_all(batch).await;
    }
}

pub(crate) fn end_user_ids(key: &TestKey, user: &str) -> Vec<EndUserId> {
    vec![EndUserId::derived(key.app.id, &UserRef::parse(user).unwrap())]
}

#[tokio::test]
async fn erasing_an_end_user_leaves_nothing_of_theirs_while_another_keeps_working() {
    let app = spawn_app().await;
    let key = app.create_app(AppMode::Chat, image_app()).await;
    let operator = app.operator_key(&key).await;
    seed_history(&app, &key, "alice", 50, 100).await;
    let alice_files = [
        upload(&app, &key, "alice", "photo.png", "image/png").await,
        upload(&app, &key, "alice", "voice.mp3", "audio/mpeg").await,
    ];
    if testing_on_dynamodb() {
        // A file stored before files had a copy in their owner's partition: found anyway.
        let owner = format!("OWN#{}#{}", key.app.id, EndUserId::derived(key.app.id, &UserRef::parse("alice").unwrap()));
        let copy = std::collections::HashMap::from([
            ("PK".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(owner)),
            ("SK".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(format!("FILE#{}", alice_files[1]))),
        ]);
        let client = aws::dynamo_client(None).await;
        client.delete_item().table_name(aws::table_name().await).set_key(Some(copy)).send().await.unwrap();
    }
    // An operator's rating of one of hers, and her feedback through the API (a rate window).
    let (_, page) = send(app.get(&key, "/v1/conversations?user=alice&limit=1")).await;
    let conversation = page["data"][0]["id"].as_str().unwrap().to_owned();
    let (_, messages) = send(app.get(&key, &format!("/v1/messages?user=alice&conversation_id={conversation}"))).await;
    let message = messages["data"][1]["id"].as_str().unwrap().to_owned();
    let rate = |k: &TestKey, path: String, body: Value| send(app.post(k, &path, body));
    assert_eq!(
        rate(&operator, format!("/v1/app/messages/{message}/feedbacks"), json!({"rating": "like"})).await.0,
        200
    );
    let body = json!({"rating": "dislike", "user": "alice"});
    assert_eq!(rate(&key, format!("/v1/messages/{message}/feedbacks"), body).await.0, 200);
    // Bob's data, which must stay.
    seed_history(&app, &key, "bob", 3, 4).await;
    let bob_file = upload(&app, &key, "bob", "bob.png", "image/png").await;
    let bob_ids = end_user_ids(&key, "bob");
    let alice_ids = end_user_ids(&key, "alice");
    let before = app.store.inventory(key.app.id, Some(&alice_ids)).await.unwrap();
    assert!(before.total() > 5_000, "{before:?}");

    // Bob chats and reads all along.
    let stop = Arc::new(AtomicBool::new(false));
    let chats = Arc::new(AtomicU64::new(0));
    let bob = {
        let (base, key, stop, chats) = (app.base.clone(), key.key.clone(), stop.clone(), chats.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"query": "still here", "user": "bob", "inputs": {}, "response_mode": "blocking"});
                let chat = client.post(format!("{base}/v1/chat-messages")).bearer_auth(&key).json(&body);
                let (status, answer) = send(chat).await;
                assert_eq!(status, 200, "bob's chat: {answer}");
                let list = client.get(format!("{base}/v1/conversations?user=bob&limit=100")).bearer_auth(&key);
                let (status, page) = send(list).await;
                assert_eq!(status, 200, "bob's list: {page}");
                chats.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let started = std::time::Instant::now();
    let (status, job) = send(app.client.delete(app.url("/v1/end-users/alice")).bearer_auth(&key.key)).await;
    eprintln!("erasure request (hiding 50 conversations): {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(status, 202, "{job}");
    assert!(["pending", "running"].contains(&job["status"].as_str().unwrap()), "{job}");
    // Gone from every read at once.
    let (_, page) = send(app.get(&key, "/v1/conversations?user=alice")).await;
    assert_eq!(page["data"], json!([]), "{page}");
    let (status, _) = send(app.get(&key, &format!("/v1/messages?user=alice&conversation_id={conversation}"))).await;
    assert_eq!(status, 404);
    let (_, listed) = send(app.get(&operator, "/v1/app/conversations?user=alice")).await;
    assert_eq!(listed["data"], json!([]), "{listed}");

    let job_id = job["job_id"].as_str().unwrap();
    let done = finished(&app, &key, "alice", job_id).await;
    eprintln!("erasure of 50 conversations, 5,000 messages, 2 files: {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!((done["conversations"].as_u64(), done["messages"].as_u64()), (Some(50), Some(5_000)), "{done}");
    assert_eq!(done["files"], 2, "{done}");
    stop.store(true, Ordering::Relaxed);
    bob.await.expect("bob's reads and writes never failed");
    assert!(chats.load(Ordering::Relaxed) > 0);

    // Nothing of hers is left, object by object.
    let after = app.store.inventory(key.app.id, Some(&alice_ids)).await.unwrap();
    assert_eq!(after.total(), 0, "{after:?}");
    for file in &alice_files {
        assert_eq!(app.blobs.count_blobs(&format!("files/{}/{file}", key.app.id)).await.unwrap(), 0);
        let preview = app.client.get(app.url(&format!("/v1/files/{file}/preview?user=alice"))).bearer_auth(&key.key);
        assert_eq!(send(preview).await.0, 404);
    }
    // Bob's are all there.
    let bob_after = app.store.inventory(key.app.id, Some(&bob_ids)).await.unwrap();
    assert!(bob_after.files.iter().any(|f| f.to_string() == bob_file), "{bob_after:?}");
    assert_eq!(app.blobs.count_blobs(&format!("files/{}/{bob_file}", key.app.id)).await.unwrap(), 1);
    let (_, page) = send(app.get(&key, "/v1/conversations?user=bob&limit=100")).await;
    assert!(page["data"].as_array().unwrap().len() >= 4, "{page}");

    // The audit log names the erasure by its id, never the user.
    // (Every status read while the job ran is an entry too: read every page.)
    let mut entries: Vec<Value> = Vec::new();
    loop {
        let cursor = entries.last().map(|e| format!("&last_id={}", e["id"].as_str().unwrap())).unwrap_or_default();
        let (_, log) = send(app.get(&operator, &format!("/v1/app/audit-log?limit=100{cursor}"))).await;
        entries.extend(log["data"].as_array().unwrap().iter().cloned());
        if !log["has_more"].as_bool().unwrap() {
            break;
        }
    }
    let erased = entries.iter().find(|e| e["action"] == "end_user.erase").expect("recorded");
    assert_eq!(erased["target"], job_id);
    // (Entries of operators' earlier requests keep the queries they sent until they expire.)
    let ours: Vec<&Value> = entries.iter().filter(|e| e["target"] == job_id).collect();
    assert!(ours.len() >= 2 && ours.iter().all(|e| !e.to_string().contains("alice")), "{ours:?}");
    // The job forgot the user string.
    let status = app.get(&key, &format!("/v1/end-users/alice/erasures/{job_id}"));
    assert!(!send(status).await.1.to_string().contains("alice"));
}

/// A blob store whose deletes fail while `failing` is set.
struct FlakyDeletes {
    inner: Arc<dyn BlobStore>,
    failing: AtomicBool,
}

#[async_trait]
impl BlobStore for FlakyDeletes {
    async fn put_blob(&self, key: &str, content_type: &str, bytes: Bytes) -> StoreResult<()> {
        self.inner.put_blob(key, content_type, bytes).await
    }
    async fn put_blob_stream(&self, key: &str, content_type: &str, body: BlobStream) -> StoreResult<u64> {
        self.inner.put_blob_stream(key, content_type, body).await
    }
    async fn get_blob(&self, key: &str, range: Option<BlobRange>) -> StoreResult<Option<Blob>> {
        self.inner.get_blob(key, range).await
    }
    async fn stream_blob(&self, key: &str) -> StoreResult<Option<(BlobStream, String, u64)>> {
        self.inner.stream_blob(key).await
    }
    async fn presign_get(
        &self,
        key: &str,
        expires: Duration,
        headers: &DownloadHeaders,
    ) -> StoreResult<Option<String>> {
        self.inner.presign_get(key, expires, headers).await
    }
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        expires: Duration,
    ) -> StoreResult<Option<String>> {
        self.inner.presign_put(key, content_type, size, expires).await
    }
    async fn delete_blob(&self, key: &str) -> StoreResult<()> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("injected".into()));
        }
        self.inner.delete_blob(key).await
    }
    async fn count_blobs(&self, prefix: &str) -> StoreResult<u64> {
        self.inner.count_blobs(prefix).await
    }
}

#[tokio::test]
async fn a_failed_erasure_sent_again_continues_to_the_end() {
    let (store, blobs) = (test_store().await, test_blobs().await);
    let flaky = Arc::new(FlakyDeletes { inner: blobs.clone(), failing: AtomicBool::new(true) });
    let app = spawn_app_via((store.clone(), flaky.clone()), (store, blobs)).await;
    let key = app.create_app(AppMode::Chat, image_app()).await;
    seed_history(&app, &key, "carol", 4, 3).await;
    let file = upload(&app, &key, "carol", "photo.png", "image/png").await;
    let ids = end_user_ids(&key, "carol");

    let erase = || send(app.client.delete(app.url("/v1/end-users/carol")).bearer_auth(&key.key));
    let (status, job) = erase().await;
    assert_eq!(status, 202, "{job}");
    let failed = finished(&app, &key, "carol", job["job_id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["error"].as_str().unwrap().contains("DELETE again"), "{failed}");
    // No internal detail reaches the caller.
    assert!(!failed.to_string().contains("injected"), "{failed}");
    // The conversations went first; the file (its bytes still there) and the end user remain.
    let left = app.store.inventory(key.app.id, Some(&ids)).await.unwrap();
    assert!(left.total() > 0 && left.files.len() == 1, "{left:?}");
    assert_eq!(app.blobs.count_blobs(&format!("files/{}/{file}", key.app.id)).await.unwrap(), 1);

    flaky.failing.store(false, Ordering::Relaxed);
    let (status, again) = erase().await;
    assert_eq!(status, 202);
    assert_ne!(again["job_id"], job["job_id"]);
    let done = finished(&app, &key, "carol", again["job_id"].as_str().unwrap()).await;
    assert_eq!((done["status"].as_str(), done["files"].as_u64()), (Some("done"), Some(1)), "{done}");
    // Both jobs, the failed one too, forgot the user string.
    for job in [&job, &again] {
        let stored = app.store.erasure(key.app.id, job["job_id"].as_str().unwrap().parse().unwrap()).await.unwrap();
        assert_eq!(stored.unwrap().user, None);
    }
    assert_eq!(app.store.inventory(key.app.id, Some(&ids)).await.unwrap().total(), 0);
    assert_eq!(app.blobs.count_blobs(&format!("files/{}/{file}", key.app.id)).await.unwrap(), 0);
    // Erasing a user with nothing left (or never seen) is done at once, with nothing counted.
    let (_, idle) = send(app.client.delete(app.url("/v1/end-users/nobody")).bearer_auth(&key.key)).await;
    let idle = finished(&app, &key, "nobody", idle["job_id"].as_str().unwrap()).await;
    assert_eq!((idle["status"].as_str(), idle["conversations"].as_u64()), (Some("done"), Some(0)));
}

#[tokio::test]
async fn an_end_users_export_is_what_the_read_api_shows() {
    let app = spawn_app().await;
    let key = app.create_app(AppMode::Chat, image_app()).await;
    let operator = app.operator_key(&key).await;
    seed_history(&app, &key, "dana", 3, 4).await;
    seed_history(&app, &key, "erin", 1, 2).await;
    let file = upload(&app, &key, "dana", "photo.png", "image/png").await;
    let (_, page) = send(app.get(&key, "/v1/conversations?user=dana&limit=100")).await;
    let message = {
        let first = page["data"][0]["id"].as_str().unwrap();
        let (_, messages) = send(app.get(&key, &format!("/v1/messages?user=dana&conversation_id={first}"))).await;
        messages["data"][0]["id"].as_str().unwrap().to_owned()
    };
    let path = format!("/v1/app/messages/{message}/feedbacks");
    assert_eq!(send(app.post(&operator, &path, json!({"rating": "dislike", "content": "off"}))).await.0, 200);

    let response = app.get(&key, "/v1/end-users/dana/export").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["user"], "dana");
    assert_eq!(document["files"].as_array().unwrap().len(), 1);
    assert_eq!(document["files"][0]["id"], file.as_str());
    let exported = document["conversations"].as_array().unwrap();
    assert_eq!(exported.len(), 3);
    // Each conversation as `/conversations` lists it, its messages as `/messages` (plus every
    // feedback), its variables as `/variables`.
    for listed in page["data"].as_array().unwrap() {
        let id = listed["id"].as_str().unwrap();
        let mine = exported.iter().find(|c| c["id"] == id).expect("exported");
        let mut bare = mine.clone();
        let (messages, variables) = (bare["messages"].take(), bare["variables"].take());
        let bare: serde_json::Map<String, Value> = bare
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !["messages", "variables"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(Value::Object(bare), *listed);
        let (_, read) = send(app.get(&key, &format!("/v1/messages?user=dana&conversation_id={id}&limit=100"))).await;
        let shown: Vec<Value> = messages
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let mut m = m.clone();
                m.as_object_mut().unwrap().remove("feedbacks");
                m
            })
            .collect();
        let read: Vec<Value> = read["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let mut m = m.clone();
                m.as_object_mut().unwrap().retain(|k, _| !k.starts_with("sibling_"));
                m
            })
            .collect();
        assert_eq!(shown, read, "{id}");
        let (_, vars) = send(app.get(&key, &format!("/v1/conversations/{id}/variables?user=dana&limit=100"))).await;
        assert_eq!(variables, vars["data"]);
    }
    let rated =
        exported.iter().flat_map(|c| c["messages"].as_array().unwrap()).find(|m| m["id"] == message.as_str()).unwrap();
    assert_eq!(rated["feedbacks"].as_array().unwrap().len(), 2, "{rated}");
    assert!(!document.to_string().contains("erin"));
    // Operator keys export too; an unknown user's export is empty; both are recorded.
    let (status, empty) = send(app.get(&operator, "/v1/end-users/nobody/export")).await;
    assert_eq!((status, empty["conversations"].clone(), empty["files"].clone()), (200, json!([]), json!([])));
    let (_, log) = send(app.get(&operator, "/v1/app/audit-log?limit=100")).await;
    let exports = log["data"].as_array().unwrap().iter().filter(|e| e["action"] == "end_user.export").count();
    assert_eq!(exports, 2, "{log}");
}

#[tokio::test]
async fn erasures_are_scoped_to_their_app_and_user() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let other = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    app.seed_conversation(&key, "frank", "mine").await;
    let theirs = app.seed_conversation(&other, "frank", "same user string, another app").await;
    app.seed_message(&theirs, "still here").await;

    let (status, job) = send(app.client.delete(app.url("/v1/end-users/frank")).bearer_auth(&operator.key)).await;
    assert_eq!(status, 202, "operator keys erase too: {job}");
    let job_id = job["job_id"].as_str().unwrap();
    assert_eq!(finished(&app, &key, "frank", job_id).await["conversations"], 1);
    // The other app's frank is untouched.
    let (_, page) = send(app.get(&other, "/v1/conversations?user=frank")).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    // And exporting the other app's frank shows only theirs.
    let (_, document) = send(app.get(&other, "/v1/end-users/frank/export")).await;
    let conversations = document["conversations"].as_array().unwrap();
    assert_eq!((conversations.len(), conversations[0]["id"].as_str()), (1, Some(theirs.id.to_string().as_str())));
    // Another user's path, another app's key, an unknown or malformed id: not found.
    let at = |user: &str, id: &str| format!("/v1/end-users/{user}/erasures/{id}");
    assert_error(&send(app.get(&key, &at("grace", job_id))).await, 404, "not_found");
    assert_error(&send(app.get(&other, &at("frank", job_id))).await, 404, "not_found");
    let unknown = "01946a5e-0000-7000-8000-000000000000";
    assert_error(&send(app.get(&key, &at("frank", unknown))).await, 404, "not_found");
    assert_error(&send(app.get(&key, &at("frank", "not-a-uuid"))).await, 404, "not_found");
    // No key, a wrong key.
    assert_eq!(send(app.client.delete(app.url("/v1/end-users/frank"))).await.0, 401);
    let wrong = app.client.delete(app.url("/v1/end-users/frank")).bearer_auth("app-wrong");
    assert_eq!(send(wrong).await.0, 401);
    // A user string is percent-decoded, and checked as `user` fields are.
    let spaced = app.seed_conversation(&key, "henry the 8th/ii", "odd name").await;
    app.seed_message(&spaced, "q").await;
    let (status, job) =
        send(app.client.delete(app.url("/v1/end-users/henry%20the%208th%2Fii")).bearer_auth(&key.key)).await;
    assert_eq!(status, 202, "{job}");
    let done = finished(&app, &key, "henry%20the%208th%2Fii", job["job_id"].as_str().unwrap()).await;
    assert_eq!(done["conversations"], 1, "{done}");
    let long = "x".repeat(256);
    let too_long = app.client.delete(app.url(&format!("/v1/end-users/{long}"))).bearer_auth(&key.key);
    assert_error(&send(too_long).await, 400, "invalid_param");
    let bad_utf8 = app.client.delete(app.url("/v1/end-users/%FF")).bearer_auth(&key.key);
    assert_error(&send(bad_utf8).await, 400, "invalid_param");
}
