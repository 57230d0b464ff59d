//! Requests that race each other: concurrent first feedbacks, a conversation deleted while a
//! chat answers in it or while its message is rated. Whatever the interleaving, no request
//! fails with a 5xx, nothing is half-written, and only writes that happened use the rate limit.

use std::time::Duration;

use colloquy_core::domain::{AppConfig, AppMode, Conversation, MessageId};
use colloquy_tests::*;
use futures_util::future::join_all;
use serde_json::{Value, json};

/// Trials per race; each one is an independent conversation. DynamoDB Local answers a request
/// in tens of milliseconds on a small machine, so it runs fewer.
fn trials() -> u64 {
    if testing_on_dynamodb() { 30 } else { 100 }
}

fn rating_limit(limit: u32) -> AppConfig {
    AppConfig { feedback_rate_limit_per_minute: limit, ..AppConfig::default() }
}

async fn listed_feedbacks(app: &TestApp, key: &TestKey) -> Vec<Value> {
    let (status, body) = send(app.get(key, "/v1/app/feedbacks?limit=101")).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

fn rate(app: &TestApp, key: &TestKey, message: MessageId, rating: &str) -> reqwest::RequestBuilder {
    app.post(key, &format!("/v1/messages/{message}/feedbacks"), json!({"rating": rating, "user": "alice"}))
}

#[tokio::test]
async fn fifty_concurrent_first_feedbacks_make_one_feedback() {
    let app = spawn_app().await;
    let key = app.create_app(AppMode::Chat, rating_limit(0)).await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let message = app.seed_message(&conversation, "q").await;
    let ratings = ["like", "dislike"];
    let answers = join_all((0..50).map(|i| send(rate(&app, &key, message.id, ratings[i % 2])))).await;
    for (status, body) in &answers {
        assert_eq!((*status, body), (200, &json!({"result": "success"})));
    }

    let stored = app.store.user_feedback(conversation.owner, message.id).await.unwrap().expect("one feedback");
    let listed = listed_feedbacks(&app, &key).await;
    assert_eq!(listed.len(), 1, "one entry in the app's list: {listed:?}");
    assert_eq!(listed[0]["id"], stored.id.to_string());
    assert_eq!(listed[0]["rating"], stored.rating.as_str());
    let (_, page) = send(app.get(&key, &format!("/v1/messages?user=alice&conversation_id={}", conversation.id))).await;
    assert_eq!(page["data"][0]["feedback"]["rating"], stored.rating.as_str());
    // The conversation's counts followed every change: one rating, the stored one.
    let operator = app.operator_key(&key).await;
    let (_, listed) = send(app.get(&operator, "/v1/app/conversations")).await;
    let row = &listed["data"][0];
    let likes = usize::from(stored.rating.as_str() == "like");
    assert_eq!(
        (row["like_count"].as_u64(), row["dislike_count"].as_u64()),
        (Some(likes as u64), Some(1 - likes as u64))
    );
}

#[tokio::test]
async fn ten_concurrent_feedbacks_within_a_limit_of_ten_all_succeed() {
    let app = spawn_app().await;
    let key = app.create_app(AppMode::Chat, rating_limit(10)).await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let message = app.seed_message(&conversation, "q").await;
    let answers = join_all((0..10).map(|_| send(rate(&app, &key, message.id, "like")))).await;
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    assert_error(&send(rate(&app, &key, message.id, "dislike")).await, 429, "too_many_requests");
    assert_eq!(listed_feedbacks(&app, &key).await.len(), 1);
}

/// A conversation with one answered message, for a race.
async fn seeded(app: &TestApp, key: &TestKey) -> (Conversation, MessageId) {
    let conversation = app.seed_conversation(key, "alice", "doomed").await;
    let message = app.seed_message(&conversation, "q").await;
    (conversation, message.id)
}

async fn delete(app: &TestApp, key: &TestKey, conversation: &Conversation, after: Duration) -> u16 {
    tokio::time::sleep(after).await;
    let (status, body) =
        send(app.delete(key, &format!("/v1/conversations/{}", conversation.id), json!({"user": "alice"}))).await;
    assert_eq!(status, 204, "{body}");
    status
}

/// After the race: the conversation and every message in it are gone for good.
async fn assert_gone(app: &TestApp, key: &TestKey, conversation: &Conversation, message: Option<&str>) {
    let history = send(app.get(key, &format!("/v1/messages?user=alice&conversation_id={}", conversation.id))).await;
    assert_error(&history, 404, "not_found");
    if let Some(message) = message {
        let id: MessageId = message.parse().unwrap();
        assert_eq!(app.store.message(conversation.owner, id).await.unwrap(), None, "no orphan message");
        let rated = send(rate(app, key, id, "like")).await;
        assert_error(&rated, 404, "not_found");
        assert_eq!(rated.1["message"], "Message Not Exists.");
    }
}

#[tokio::test]
async fn a_conversation_deleted_while_a_chat_answers_in_it_keeps_nothing_of_it() {
    // The echo model takes a few milliseconds per answer, so deletes land before, during and after.
    let app = spawn_app_with_models(echo_models(Duration::from_micros(300))).await;
    let key = app.create_app(AppMode::Chat, rating_limit(0)).await;
    // Deletes are spread over the time one chat takes on this store (measured once).
    let (measured, _) = seeded(&app, &key).await;
    let started = std::time::Instant::now();
    let body = json!({"inputs": {}, "query": "one two three four five six seven eight", "user": "alice",
        "conversation_id": measured.id});
    assert_eq!(send(app.post(&key, "/v1/chat-messages", body)).await.0, 200);
    let spread = started.elapsed().as_micros() as u64 * 3 / 2;
    let mut outcomes = [0_u32; 3];
    for trial in 0..trials() {
        let (conversation, _) = seeded(&app, &key).await;
        let streaming = trial % 4 == 3;
        let body = json!({
            "inputs": {}, "query": "one two three four five six seven eight", "user": "alice",
            "conversation_id": conversation.id, "response_mode": if streaming { "streaming" } else { "blocking" },
        });
        let chat = async {
            let response = app.post(&key, "/v1/chat-messages", body).send().await.unwrap();
            if response.status() != 200 || !streaming {
                return read(response).await;
            }
            let events = read_events(response).await;
            let last = &events.last().expect("events").data;
            match last["event"].as_str() {
                Some("message_end") => (200, last.clone()),
                Some("error") => (last["status"].as_u64().unwrap() as u16, last.clone()),
                other => panic!("the stream ends with message_end or error, not {other:?}"),
            }
        };
        let ((status, answer), _) =
            tokio::join!(chat, delete(&app, &key, &conversation, Duration::from_micros(spread * trial / trials())));
        match status {
            200 => {
                outcomes[0] += 1;
                assert_gone(&app, &key, &conversation, answer["message_id"].as_str()).await;
            }
            404 => {
                outcomes[if answer["event"] == "error" { 2 } else { 1 }] += 1;
                assert_eq!(answer["code"], "not_found", "{answer}");
                assert_eq!(answer["message"], "Conversation Not Exists.");
                assert_gone(&app, &key, &conversation, None).await;
            }
            other => panic!("trial {trial}: the chat answered {other}: {answer}"),
        }
    }
    assert!(listed_feedbacks(&app, &key).await.is_empty());
    println!(
        "answered before the delete: {}, refused: {}, ended by an error event: {}",
        outcomes[0], outcomes[1], outcomes[2]
    );
}

#[tokio::test]
async fn a_conversation_deleted_while_its_message_is_rated_keeps_no_feedback_and_no_rate_slot() {
    let app = spawn_app().await;
    let limit = trials() as u32 + 10;
    let key = app.create_app(AppMode::Chat, rating_limit(limit)).await;
    let mut rated = 0;
    for trial in 0..trials() {
        let (conversation, message) = seeded(&app, &key).await;
        let ((status, body), _) = tokio::join!(
            send(rate(&app, &key, message, "like")),
            delete(&app, &key, &conversation, Duration::from_micros(trial * 13 % 1500))
        );
        match status {
            200 => rated += 1,
            404 => assert_eq!(body["message"], "Message Not Exists."),
            other => panic!("trial {trial}: feedback answered {other}: {body}"),
        }
        assert_gone(&app, &key, &conversation, None).await;
    }
    assert!(listed_feedbacks(&app, &key).await.is_empty(), "no feedback of a deleted conversation is listed");

    // Every write that did not happen gave its slot back: what is left is the limit minus the
    // writes that happened (all in this minute: the test clock stands still).
    let (_, kept) = seeded(&app, &key).await;
    let mut left = 0;
    while send(rate(&app, &key, kept, "like")).await.0 == 200 {
        left += 1;
        assert!(left <= limit, "the limit holds");
    }
    assert_eq!(left + rated, limit, "{rated} feedback writes happened");
}
