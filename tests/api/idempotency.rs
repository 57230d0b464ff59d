//! `Idempotency-Key` on the POSTs that create something (a Colloquy extension): one outcome per
//! key, replayed to retries, refused for a different request, 409 while the first runs.

use std::time::Duration;

use colloquy_core::domain::Owner;
use colloquy_tests::*;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::files::uploads_config;

fn with_key(request: reqwest::RequestBuilder, key: &str) -> reqwest::RequestBuilder {
    request.header("Idempotency-Key", key)
}

/// Status, body and whether it was replayed.
async fn call(request: reqwest::RequestBuilder) -> (u16, Value, bool) {
    let response = request.send().await.unwrap();
    let replayed = response.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    let in_use_retry = response.headers().get("retry-after").cloned();
    let (status, body) = read(response).await;
    if status == 409 {
        assert!(in_use_retry.is_some(), "a 409 for a running request says when to retry");
    }
    (status, body, replayed)
}

fn chat_body(query: &str, user: &str) -> Value {
    json!({"inputs": {}, "query": query, "user": user, "response_mode": "blocking"})
}

async fn messages_of(app: &TestApp, key: &TestKey, user: &str) -> Vec<Value> {
    let (_, listed) = send(app.get(key, &format!("/v1/conversations?user={user}&limit=100"))).await;
    let mut all = Vec::new();
    for c in listed["data"].as_array().unwrap() {
        let path = format!("/v1/messages?user={user}&conversation_id={}&limit=100", c["id"].as_str().unwrap());
        all.extend(send(app.get(key, &path)).await.1["data"].as_array().unwrap().clone());
    }
    all
}

#[tokio::test]
async fn a_retry_replays_the_first_answer_and_another_request_with_the_key_is_refused() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let chat = |body: Value, k: &str| with_key(app.post(&key, "/v1/chat-messages", body), k);
    let (status, first, replayed) = call(chat(chat_body("hello", "alice"), "order-1")).await;
    assert_eq!((status, replayed), (200, false), "{first}");
    app.clock.advance_seconds(5);
    let (status, again, replayed) = call(chat(chat_body("hello", "alice"), "order-1")).await;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(again, first, "the same answer, ids and all");
    assert_eq!(messages_of(&app, &key, "alice").await.len(), 1);

    // The same key with another request: 422; another user's key of the same name is theirs.
    let (status, refused, _) = call(chat(chat_body("something else", "alice"), "order-1")).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["code"], "idempotency_key_mismatch");
    let (status, bobs, replayed) = call(chat(chat_body("hello", "bob"), "order-1")).await;
    assert_eq!((status, replayed), (200, false), "{bobs}");
    assert_ne!(bobs["message_id"], first["message_id"]);
    // Another app's key space is its own too.
    let other = app.chat_app().await;
    let (status, _, replayed) =
        call(with_key(app.post(&other, "/v1/chat-messages", chat_body("hello", "alice")), "order-1")).await;
    assert_eq!((status, replayed), (200, false));

    // Keys: 1 to 255 visible ASCII characters.
    for bad in ["", &"k".repeat(256)] {
        let (status, body, _) = call(chat(chat_body("hello", "alice"), bad)).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_param")), "{bad:?}");
    }
    assert_eq!(call(chat(chat_body("hello", "alice"), &"k".repeat(255))).await.0, 200);

    // A refusal that does not depend on the moment is kept too: a retry gets it again.
    let missing = json!({"inputs": {}, "query": "q", "user": "alice", "conversation_id": unknown_id()});
    let (status, gone, replayed) = call(chat(missing.clone(), "order-2")).await;
    assert_eq!((status, replayed), (404, false), "{gone}");
    let (status, _, replayed) = call(chat(missing, "order-2")).await;
    assert_eq!((status, replayed), (404, true));

    // After 24 hours the key is free again.
    app.clock.advance_seconds(24 * 3600 + 1);
    let (status, _, replayed) = call(chat(chat_body("a new day", "alice"), "order-1")).await;
    assert_eq!((status, replayed), (200, false));
    // Without the header nothing changes: two requests, two messages.
    for _ in 0..2 {
        assert_eq!(send(app.post(&key, "/v1/chat-messages", chat_body("plain", "carol"))).await.0, 200);
    }
    assert_eq!(messages_of(&app, &key, "carol").await.len(), 2);
}

#[tokio::test]
async fn twenty_concurrent_requests_with_one_key_create_one_message_feedback_and_file() {
    // A slow answer, so the first request is still running while the others arrive.
    let app = spawn_app_with_models(echo_models(Duration::from_millis(150))).await;
    let key = app.create_app(colloquy_core::domain::AppMode::Chat, uploads_config()).await;
    let outcomes = |results: Vec<(u16, Value, bool)>| {
        let firsts = results.iter().filter(|(s, _, r)| (200..300).contains(s) && !r).count();
        let others = results.iter().filter(|(s, _, r)| *s == 409 || ((200..300).contains(s) && *r)).count();
        (firsts, others, results)
    };

    let chats = (0..20)
        .map(|_| call(with_key(app.post(&key, "/v1/chat-messages", chat_body("one two three", "alice")), "c-1")));
    let (firsts, others, results) = outcomes(futures_util::future::join_all(chats).await);
    assert_eq!((firsts, others), (1, 19), "{results:?}");
    let conflicts: Vec<&Value> = results.iter().filter(|(s, _, _)| *s == 409).map(|(_, b, _)| b).collect();
    assert!(conflicts.iter().all(|b| b["code"] == "idempotency_key_in_use"), "{conflicts:?}");
    let messages = messages_of(&app, &key, "alice").await;
    assert_eq!(messages.len(), 1);
    let message = messages[0]["id"].as_str().unwrap().to_owned();
    // Once finished, every retry replays it.
    let (status, replayed_body, replayed) =
        call(with_key(app.post(&key, "/v1/chat-messages", chat_body("one two three", "alice")), "c-1")).await;
    assert_eq!((status, replayed, replayed_body["message_id"].as_str()), (200, true, Some(message.as_str())));

    let path = format!("/v1/messages/{message}/feedbacks");
    let rates =
        (0..20).map(|_| call(with_key(app.post(&key, &path, json!({"rating": "like", "user": "alice"})), "f-1")));
    let (firsts, others, results) = outcomes(futures_util::future::join_all(rates).await);
    assert_eq!((firsts, others), (1, 19), "{results:?}");
    let (_, feedbacks) = send(app.get(&key, "/v1/app/feedbacks?limit=100")).await;
    assert_eq!(feedbacks["data"].as_array().unwrap().len(), 1, "{feedbacks}");

    let bytes: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    let uploads = (0..20).map(|_| {
        // Each request has its own multipart boundary: the parts are compared, not the bytes.
        let part = Part::bytes(bytes.clone()).file_name("a.png").mime_str("image/png").unwrap();
        let form = Form::new().part("file", part).text("user", "alice");
        call(with_key(app.client.post(app.url("/v1/files/upload")).bearer_auth(&key.key).multipart(form), "u-1"))
    });
    let (firsts, others, results) = outcomes(futures_util::future::join_all(uploads).await);
    assert_eq!((firsts, others), (1, 19), "{results:?}");
    let ids: std::collections::BTreeSet<&str> =
        results.iter().filter(|(s, _, _)| *s == 201).map(|(_, b, _)| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "every replay names the one file");
    let alice = app.end_user(&key, "alice").await;
    let files = app.store.files_of(Owner { app_id: alice.app_id, end_user_id: alice.id }).await.unwrap();
    assert_eq!(files.len(), 1);
    // The same key with another file: refused.
    let part = Part::bytes(vec![1, 2, 3]).file_name("b.png").mime_str("image/png").unwrap();
    let form = Form::new().part("file", part).text("user", "alice");
    let (status, body, _) =
        call(with_key(app.client.post(app.url("/v1/files/upload")).bearer_auth(&key.key).multipart(form), "u-1")).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("idempotency_key_mismatch")));
}

#[tokio::test]
async fn a_streamed_answer_is_replayed_as_events_once_it_is_finished() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let body = json!({"inputs": {}, "query": "stream me please", "user": "alice", "response_mode": "streaming"});
    let response = with_key(app.post(&key, "/v1/chat-messages", body.clone()), "s-1").send().await.unwrap();
    assert!(response.headers().get("idempotent-replayed").is_none());
    let first = read_events(response).await;
    let answer: String =
        first.iter().filter(|e| e.data["event"] == "message").map(|e| e.data["answer"].as_str().unwrap()).collect();
    let end = first.iter().find(|e| e.data["event"] == "message_end").unwrap();

    let response = with_key(app.post(&key, "/v1/chat-messages", body), "s-1").send().await.unwrap();
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let again = read_events(response).await;
    let replayed: String =
        again.iter().filter(|e| e.data["event"] == "message").map(|e| e.data["answer"].as_str().unwrap()).collect();
    assert_eq!(replayed, answer);
    let replayed_end =
        again.iter().find(|e| e.data["event"] == "message_end").expect("the replay ends as the answer did");
    for field in ["message_id", "conversation_id", "task_id", "id", "created_at"] {
        assert_eq!(replayed_end.data[field], end.data[field], "{field}");
    }
    let keys = |e: &Value| e.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&replayed_end.data), keys(&end.data), "the same event shape");
    assert_eq!(
        replayed_end.data["metadata"]["usage"]["completion_tokens"],
        end.data["metadata"]["usage"]["completion_tokens"]
    );
    assert_eq!(messages_of(&app, &key, "alice").await.len(), 1);
}

#[tokio::test]
async fn every_creating_route_takes_a_key() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let routes: Vec<(String, Value)> = vec![("/v1/conversations".into(), json!({"user": "alice", "name": "n"}))];
    let (status, created, _) = call(with_key(app.post(&key, &routes[0].0, routes[0].1.clone()), "k-conv")).await;
    assert_eq!(status, 201, "{created}");
    let (_, again, replayed) = call(with_key(app.post(&key, &routes[0].0, routes[0].1.clone()), "k-conv")).await;
    assert_eq!((replayed, &again["id"]), (true, &created["id"]));
    let id = created["id"].as_str().unwrap().to_owned();
    let add = format!("/v1/conversations/{id}/messages");
    let items = json!({"user": "alice", "items": [{"query": "q", "answer": "a"}]});
    let (status, added, _) = call(with_key(app.post(&key, &add, items.clone()), "k-add")).await;
    assert_eq!(status, 201, "{added}");
    let (_, again, replayed) = call(with_key(app.post(&key, &add, items), "k-add")).await;
    assert_eq!((replayed, &again["message_ids"]), (true, &added["message_ids"]));
    let message = added["message_ids"][0].as_str().unwrap().to_owned();
    let regenerate = format!("/v1/messages/{message}/regenerate");
    let body = json!({"user": "alice", "response_mode": "blocking"});
    let (_, first, _) = call(with_key(app.post(&key, &regenerate, body.clone()), "k-regen")).await;
    let (_, again, replayed) = call(with_key(app.post(&key, &regenerate, body), "k-regen")).await;
    assert_eq!((replayed, &again["message_id"]), (true, &first["message_id"]));
    let fork = format!("/v1/conversations/{id}/fork");
    let (status, forked, _) = call(with_key(app.post(&key, &fork, json!({"user": "alice"})), "k-fork")).await;
    assert_eq!(status, 201, "{forked}");
    let (_, again, replayed) = call(with_key(app.post(&key, &fork, json!({"user": "alice"})), "k-fork")).await;
    assert_eq!((replayed, &again["id"]), (true, &forked["id"]));
    let (_, listed) = send(app.get(&key, "/v1/conversations?user=alice&limit=100")).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "the conversation and one fork");
    // A read route ignores the header.
    let (status, _, replayed) = call(with_key(app.get(&key, "/v1/conversations?user=alice"), "k-conv")).await;
    assert_eq!((status, replayed), (200, false));
}
