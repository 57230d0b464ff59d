use colloquy_core::domain::{AppConfig, AppMode};
use colloquy_tests::*;
use serde_json::json;

#[tokio::test]
async fn ten_feedback_writes_per_minute_per_end_user_by_default() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    app.clock.set_seconds(T0 + 15);
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let message = app.seed_message(&conversation, "q").await;
    let path = format!("/v1/messages/{}/feedbacks", message.id);
    for i in 0..10 {
        let rating = if i % 2 == 0 { "like" } else { "dislike" };
        assert_eq!(send(app.post(&key, &path, json!({"rating": rating, "user": "alice"}))).await.0, 200, "write {i}");
    }
    let response = app.post(&key, &path, json!({"rating": "like", "user": "alice"})).send().await.unwrap();
    assert_eq!(response.headers()["retry-after"], "45");
    let body = read(response).await;
    assert_error(&body, 429, "too_many_requests");

    // Another end user has a budget of their own.
    let bobs = app.seed_conversation(&key, "bob", "c").await;
    let bobs_message = app.seed_message(&bobs, "q").await;
    let bob = send(app.post(
        &key,
        &format!("/v1/messages/{}/feedbacks", bobs_message.id),
        json!({"rating": "like", "user": "bob"}),
    ));
    assert_eq!(bob.await.0, 200);

    // The next minute starts afresh; the refused write was not stored.
    let (_, rows) = send(app.get(&key, "/v1/app/feedbacks")).await;
    assert_eq!(
        rows["data"].as_array().unwrap().iter().find(|f| f["message_id"] == message.id.to_string()).unwrap()["rating"],
        "dislike"
    );
    app.clock.advance_seconds(45);
    assert_eq!(send(app.post(&key, &path, json!({"rating": "like", "user": "alice"}))).await.0, 200);
}

#[tokio::test]
async fn the_limit_is_configurable_per_app_and_zero_turns_it_off() {
    let app = spawn_app().await;
    let strict =
        app.create_app(AppMode::Chat, AppConfig { feedback_rate_limit_per_minute: 2, ..AppConfig::default() }).await;
    let open =
        app.create_app(AppMode::Chat, AppConfig { feedback_rate_limit_per_minute: 0, ..AppConfig::default() }).await;
    for (key, allowed) in [(&strict, 2), (&open, 30)] {
        let conversation = app.seed_conversation(key, "alice", "c").await;
        let message = app.seed_message(&conversation, "q").await;
        let path = format!("/v1/messages/{}/feedbacks", message.id);
        for _ in 0..allowed {
            assert_eq!(send(app.post(key, &path, json!({"rating": "like", "user": "alice"}))).await.0, 200);
        }
        let next = send(app.post(key, &path, json!({"rating": "like", "user": "alice"}))).await;
        if allowed == 2 {
            assert_error(&next, 429, "too_many_requests");
        } else {
            assert_eq!(next.0, 200);
        }
    }
}
