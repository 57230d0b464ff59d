//! `DELETE /v1/messages/:id` (a Colloquy extension): a message and what descends from it, with
//! their feedback, the conversation's counters and the operators' views kept right.

use colloquy_tests::*;
use serde_json::{Value, json};

/// A conversation of `user` with `n` messages added in order (each one's parent the one before):
/// (conversation id, message ids oldest first).
async fn thread(app: &TestApp, key: &TestKey, user: &str, n: usize) -> (String, Vec<String>) {
    let (_, created) = send(app.post(key, "/v1/conversations", json!({"user": user}))).await;
    app.clock.advance_seconds(n as i64);
    let id = created["id"].as_str().unwrap().to_owned();
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"query": format!("q{i}"), "answer": format!("a{i}"), "created_at": T0 + i as i64}))
        .collect();
    let (status, added) =
        send(app.post(key, &format!("/v1/conversations/{id}/messages"), json!({"user": user, "items": items}))).await;
    assert_eq!(status, 201, "{added}");
    let ids = added["message_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    (id, ids)
}

async fn delete(app: &TestApp, key: &TestKey, id: &str, user: &str) -> (u16, Value) {
    send(app.client.delete(app.url(&format!("/v1/messages/{id}"))).bearer_auth(&key.key).json(&json!({"user": user})))
        .await
}

async fn queries(app: &TestApp, key: &TestKey, conversation: &str, user: &str) -> Vec<String> {
    let (_, page) =
        send(app.get(key, &format!("/v1/messages?user={user}&conversation_id={conversation}&limit=100"))).await;
    page["data"].as_array().unwrap().iter().map(|m| m["query"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_middle_message_goes_with_every_later_one_their_feedback_and_the_counts_follow() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let (conversation, ids) = thread(&app, &key, "alice", 6).await;
    let rate = |id: &str, rating: &str| {
        app.post(&key, &format!("/v1/messages/{id}/feedbacks"), json!({"rating": rating, "user": "alice"}))
    };
    for (i, rating) in [(1, "like"), (4, "like"), (5, "dislike")] {
        assert_eq!(send(rate(&ids[i], rating)).await.0, 200);
    }
    let admin = json!({"rating": "dislike"});
    assert_eq!(send(app.post(&operator, &format!("/v1/app/messages/{}/feedbacks", ids[3]), admin)).await.0, 200);

    assert_eq!(delete(&app, &key, &ids[3], "alice").await, (204, Value::Null));
    assert_eq!(queries(&app, &key, &conversation, "alice").await, ["q0", "q1", "q2"]);
    let (_, row) = send(app.get(&operator, "/v1/app/conversations")).await;
    let row = &row["data"][0];
    assert_eq!(
        (&row["message_count"], &row["like_count"], &row["dislike_count"], &row["last_message_at"]),
        (&json!(3), &json!(1), &json!(0), &json!(T0 + 2)),
        "{row}"
    );
    let (_, feedbacks) = send(app.get(&key, "/v1/app/feedbacks?limit=100")).await;
    let rated: Vec<&str> =
        feedbacks["data"].as_array().unwrap().iter().map(|f| f["message_id"].as_str().unwrap()).collect();
    assert_eq!(rated, [ids[1].as_str()], "{feedbacks}");
    let (_, seen) = send(app.get(&operator, &format!("/v1/app/conversations/{conversation}/messages"))).await;
    assert_eq!(seen["data"].as_array().unwrap().len(), 3);
    // Gone: a second delete, feedback on it, its suggestions.
    assert_error(&delete(&app, &key, &ids[4], "alice").await, 404, "not_found");
    assert_error(&send(rate(&ids[4], "like")).await, 404, "not_found");

    // The first message takes the whole thread; the conversation stays, empty.
    assert_eq!(delete(&app, &key, &ids[0], "alice").await.0, 204);
    assert!(queries(&app, &key, &conversation, "alice").await.is_empty());
    let (_, row) = send(app.get(&operator, "/v1/app/conversations")).await;
    assert_eq!((&row["data"][0]["message_count"], &row["data"][0]["last_message_at"]), (&json!(0), &Value::Null));
    // New messages continue the conversation as usual.
    let body = json!({"inputs": {}, "query": "again", "user": "alice", "conversation_id": conversation, "response_mode": "blocking"});
    let (_, answer) = send(app.post(&key, "/v1/chat-messages", body)).await;
    assert_eq!(answer["answer"], "Echo: again (echo provider; 0 earlier questions in this conversation)");
}

#[tokio::test]
async fn only_the_callers_live_messages_can_be_deleted() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let (conversation, ids) = thread(&app, &key, "alice", 2).await;
    assert_error(&delete(&app, &key, &ids[1], "bob").await, 404, "not_found");
    let other = app.chat_app().await;
    assert_error(&delete(&app, &other, &ids[1], "alice").await, 404, "not_found");
    assert_error(&delete(&app, &key, &unknown_id(), "alice").await, 404, "not_found");
    assert_error(&delete(&app, &key, "not-a-uuid", "alice").await, 404, "not_found");
    let operator = app.operator_key(&key).await;
    assert_error(&delete(&app, &operator, &ids[1], "alice").await, 403, "forbidden");
    assert_eq!(queries(&app, &key, &conversation, "alice").await, ["q0", "q1"], "nothing was removed");
    let gone = app.client.delete(app.url(&format!("/v1/conversations/{conversation}"))).bearer_auth(&key.key);
    assert_eq!(send(gone.json(&json!({"user": "alice"}))).await.0, 204);
    assert_error(&delete(&app, &key, &ids[0], "alice").await, 404, "not_found");
}
