//! Retention per app (`retention: {"conversation_days", "files_days"}`): with a moved clock,
//! exactly the conversations whose last activity is older than the period, and the files older
//! than theirs, vanish from every read at once, and the sweep removes them (and nothing else).

use colloquy_core::domain::{AppConfig, AppMode, Owner, UserRef};
use colloquy_core::retention::sweep_expired;
use colloquy_tests::*;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

async fn chat(app: &TestApp, key: &TestKey, conversation: Option<&str>, query: &str) -> (String, String) {
    let body = json!({"query": query, "user": "uma", "inputs": {}, "response_mode": "blocking",
        "conversation_id": conversation.unwrap_or("")});
    let (status, answer) = send(app.post(key, "/v1/chat-messages", body)).await;
    assert_eq!(status, 200, "{answer}");
    (answer["conversation_id"].as_str().unwrap().to_owned(), answer["message_id"].as_str().unwrap().to_owned())
}

async fn upload(app: &TestApp, key: &TestKey) -> String {
    let part = Part::bytes(vec![3u8; 500]).file_name("note.png").mime_str("image/png").unwrap();
    let form = Form::new().text("user", "uma").part("file", part);
    let (status, file) = send(app.client.post(app.url("/v1/files/upload")).bearer_auth(&key.key).multipart(form)).await;
    assert_eq!(status, 201, "{file}");
    file["id"].as_str().unwrap().to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn retention_hides_then_removes_exactly_what_is_past_its_period() {
    let app = spawn_app().await;
    let config = AppConfig::from_json(
        r#"{"retention": {"conversation_days": 30, "files_days": 7},
        "file_upload": {"image": {"enabled": true, "number_limits": 3, "transfer_methods": ["local_file"]}}}"#,
    )
    .unwrap();
    let key = app.create_app(AppMode::Chat, config).await;
    let operator = app.operator_key(&key).await;
    let kept_forever = app.chat_app().await;
    let (forever, _) = chat(&app, &kept_forever, None, "no retention here").await;

    // Day 0: `old` and `revived`, and a file; day 5: another file; day 20: `recent`; day 25:
    // `revived` is active again (its expiry moves).
    let (old, old_message) = chat(&app, &key, None, "day 0").await;
    let (revived, _) = chat(&app, &key, None, "day 0 too").await;
    let rate = json!({"rating": "like", "user": "uma"});
    assert_eq!(send(app.post(&key, &format!("/v1/messages/{old_message}/feedbacks"), rate)).await.0, 200);
    let (_, listed) = send(app.get(&key, "/v1/app/feedbacks")).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let early_file = upload(&app, &key).await;
    app.clock.advance_seconds(5 * DAY);
    let late_file = upload(&app, &key).await;
    app.clock.advance_seconds(15 * DAY);
    let (recent, _) = chat(&app, &key, None, "day 20").await;
    app.clock.advance_seconds(5 * DAY);
    chat(&app, &key, Some(&revived), "day 25").await;
    let owner = Owner::derived(key.app.id, &UserRef::parse("uma").unwrap());
    let stored = app.store.conversation(owner, old.parse().unwrap()).await.unwrap().unwrap();
    let expected = (T0 + 30 * DAY) * 1_000_000;
    assert!((expected..expected + 1_000_000).contains(&stored.expires_at.unwrap().micros()), "{stored:?}");

    // Day 10: the early file is past its 7 days, the late one is not.
    app.clock.set_seconds(T0 + 10 * DAY);
    let preview =
        |file: &str| app.client.get(app.url(&format!("/v1/files/{file}/preview?user=uma"))).bearer_auth(&key.key);
    assert_error(&send(preview(&early_file)).await, 404, "file_not_found");
    assert_eq!(preview(&late_file).send().await.unwrap().status(), 200);
    let attach = json!({"query": "with a file", "user": "uma", "inputs": {}, "response_mode": "blocking",
        "files": [{"type": "image", "transfer_method": "local_file", "upload_file_id": early_file}]});
    assert_error(&send(app.post(&key, "/v1/chat-messages", attach)).await, 404, "file_not_found");

    // Day 31: `old` has been idle 31 days; `recent` 11, `revived` 6.
    app.clock.set_seconds(T0 + 31 * DAY);
    let (_, page) = send(app.get(&key, "/v1/conversations?user=uma&limit=100")).await;
    let mut listed = ids(&page);
    listed.sort();
    let mut live = vec![recent.clone(), revived.clone()];
    live.sort();
    assert_eq!(listed, live, "{page}");
    // Paged one at a time, each live one exactly once, in every order.
    for sort in ["-updated_at", "updated_at", "-created_at", "created_at"] {
        let mut seen = Vec::new();
        let mut last = String::new();
        loop {
            let (status, page) =
                send(app.get(&key, &format!("/v1/conversations?user=uma&limit=1&sort_by={sort}&last_id={last}"))).await;
            assert_eq!(status, 200, "{page}");
            seen.extend(ids(&page));
            if page["has_more"] != true {
                break;
            }
            last = seen.last().unwrap().clone();
        }
        seen.sort();
        assert_eq!(seen, live, "{sort}");
    }
    let messages = format!("/v1/messages?user=uma&conversation_id={old}");
    assert_error(&send(app.get(&key, &messages)).await, 404, "not_found");
    let rate = json!({"rating": "like", "user": "uma"});
    assert_error(&send(app.post(&key, &format!("/v1/messages/{old_message}/feedbacks"), rate)).await, 404, "not_found");
    let (_, listed) = send(app.get(&key, "/v1/app/feedbacks")).await;
    assert_eq!(listed["data"], json!([]), "feedback of an expired conversation is gone with it");
    let (_, everyone) = send(app.get(&operator, "/v1/app/conversations?limit=100")).await;
    assert!(!ids(&everyone).contains(&old), "{everyone}");
    assert_eq!(ids(&everyone).len(), 2);
    let (status, _) = send(app.get(&operator, &format!("/v1/app/conversations/{old}/messages"))).await;
    assert_eq!(status, 404);
    let (_, document) = send(app.get(&key, "/v1/end-users/uma/export")).await;
    assert_eq!(document["conversations"].as_array().unwrap().len(), 2);
    assert_eq!(document["files"], json!([]));
    // An app without retention keeps everything.
    let (_, theirs) = send(app.get(&kept_forever, "/v1/conversations?user=uma")).await;
    assert_eq!(ids(&theirs), [forever]);

    // The sweep: a dry run counts (this test's, at least) and removes nothing; then it removes.
    let blobs = app.blobs.clone();
    let counted = sweep_expired(app.store.as_ref(), blobs.as_ref(), app.now(), true).await.unwrap();
    assert!(counted.conversations >= 1 && counted.files >= 2, "{counted:?}");
    assert!(app.store.conversation(owner, old.parse().unwrap()).await.unwrap().is_some());
    let removed = sweep_expired(app.store.as_ref(), blobs.as_ref(), app.now(), false).await.unwrap();
    assert!(removed.conversations >= 1 && removed.files >= 2, "{removed:?}");
    assert!(app.store.conversation(owner, old.parse().unwrap()).await.unwrap().is_none());
    for file in [&early_file, &late_file] {
        assert_eq!(app.blobs.count_blobs(&format!("files/{}/{file}", key.app.id)).await.unwrap(), 0);
    }
    assert!(app.store.files_of(owner).await.unwrap().is_empty());
    for id in [&recent, &revived] {
        assert!(app.store.conversation(owner, id.parse().unwrap()).await.unwrap().is_some(), "{id} kept");
    }
    let again = sweep_expired(app.store.as_ref(), blobs.as_ref(), app.now(), true).await.unwrap();
    assert!(again.conversations < counted.conversations, "{again:?}");
}

#[tokio::test]
async fn retention_periods_are_checked() {
    for bad in [
        r#"{"retention": {"conversation_days": 0}}"#,
        r#"{"retention": {"files_days": 40000}}"#,
        r#"{"retention": {"days": 3}}"#,
    ] {
        assert!(AppConfig::from_json(bad).is_err(), "{bad}");
    }
    assert!(AppConfig::from_json(r#"{"retention": {"files_days": 1}}"#).is_ok());
}
