use colloquy_tests::*;
use serde_json::json;

#[tokio::test]
async fn all_feedback_of_the_app_newest_first_with_iso_timestamps() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let other_app = app.chat_app().await;
    let alice = app.seed_conversation(&key, "alice", "a").await;
    let bob = app.seed_conversation(&key, "bob", "b").await;
    let first = app.seed_message(&alice, "q1").await;
    let second = app.seed_message(&bob, "q2").await;
    let elsewhere = app.seed_conversation(&other_app, "alice", "x").await;
    let foreign = app.seed_message(&elsewhere, "q3").await;
    send(app.post(&key, &format!("/v1/messages/{}/feedbacks", first.id), json!({"rating": "like", "user": "alice"})))
        .await;
    app.clock.advance_seconds(1);
    send(app.post(
        &key,
        &format!("/v1/messages/{}/feedbacks", second.id),
        json!({"rating": "dislike", "content": "meh", "user": "bob"}),
    ))
    .await;
    send(app.post(
        &other_app,
        &format!("/v1/messages/{}/feedbacks", foreign.id),
        json!({"rating": "like", "user": "alice"}),
    ))
    .await;

    let (status, body) = send(app.get(&key, "/v1/app/feedbacks?user=ignored")).await;
    assert_eq!(status, 200);
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, vec!["data"], "no has_more, total, page or limit");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let bob_user = app.end_user(&key, "bob").await;
    assert_eq!(data[0]["message_id"], second.id.to_string());
    assert_eq!(data[0]["conversation_id"], bob.id.to_string());
    assert_eq!(data[0]["app_id"], key.app.id.to_string());
    assert_eq!(data[0]["rating"], "dislike");
    assert_eq!(data[0]["content"], "meh");
    assert_eq!(data[0]["from_source"], "user");
    assert_eq!(data[0]["from_end_user_id"], bob_user.id.to_string());
    assert_eq!(data[0]["from_account_id"], json!(null));
    assert_eq!(data[0]["created_at"], "2025-01-16T10:00:01");
    assert_eq!(data[1]["created_at"], "2025-01-16T10:00:00");
    assert!(data[0]["id"].as_str().is_some());
}

#[tokio::test]
async fn offset_pages_and_bounds() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let mut messages = Vec::new();
    for i in 0..5 {
        let m = app.seed_message(&conversation, &format!("q{i}")).await;
        send(app.post(&key, &format!("/v1/messages/{}/feedbacks", m.id), json!({"rating": "like", "user": "alice"})))
            .await;
        app.clock.advance_seconds(1);
        messages.push(m);
    }
    let (_, page2) = send(app.get(&key, "/v1/app/feedbacks?page=2&limit=2")).await;
    let ids: Vec<_> = page2["data"].as_array().unwrap().iter().map(|f| f["message_id"].clone()).collect();
    assert_eq!(ids, vec![json!(messages[2].id.to_string()), json!(messages[1].id.to_string())]);
    let (_, page4) = send(app.get(&key, "/v1/app/feedbacks?page=4&limit=2")).await;
    assert_eq!(page4["data"], json!([]));
    assert_eq!(send(app.get(&key, "/v1/app/feedbacks?limit=101")).await.0, 200);
    for query in ["limit=102", "limit=0", "page=0", "page=-1", "page=x"] {
        assert_error(&send(app.get(&key, &format!("/v1/app/feedbacks?{query}"))).await, 400, "invalid_param");
    }
    assert_eq!(send(app.get(&key, "/v1/app/feedbacks?page=&limit=")).await.0, 200);
}
