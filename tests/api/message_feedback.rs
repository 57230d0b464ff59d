use colloquy_core::domain::{AppConfig, AppMode};
use colloquy_tests::*;
use serde_json::json;

async fn rated_rows(app: &TestApp, key: &TestKey) -> Vec<serde_json::Value> {
    let (_, body) = send(app.get(key, "/v1/app/feedbacks")).await;
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_feedback_state_machine() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let message = app.seed_message(&conversation, "q").await;
    let path = format!("/v1/messages/{}/feedbacks", message.id);

    // Revoking what does not exist is an error.
    let body = send(app.post(&key, &path, json!({"rating": null, "user": "alice"}))).await;
    assert_error(&body, 400, "invalid_param");
    assert_eq!(body.1["message"], "rating cannot be None when feedback not exists");

    // Create.
    let (status, body) = send(app.post(&key, &path, json!({"rating": "like", "user": "alice"}))).await;
    assert_eq!((status, body), (200, json!({"result": "success"})));
    let rows = rated_rows(&app, &key).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0]["rating"].clone(), rows[0]["content"].clone()), (json!("like"), json!(null)));
    let created_id = rows[0]["id"].clone();

    // Overwrite rating and content; it stays one feedback.
    app.clock.advance_seconds(5);
    send(app.post(&key, &path, json!({"rating": "dislike", "content": "wrong city", "user": "alice"}))).await;
    let rows = rated_rows(&app, &key).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], created_id);
    assert_eq!(rows[0]["rating"], "dislike");
    assert_eq!(rows[0]["content"], "wrong city");
    assert_ne!(rows[0]["created_at"], rows[0]["updated_at"]);

    // Content without a rating revokes (the npm SDK omits a null rating).
    let (status, _) = send(app.post(&key, &path, json!({"content": "never mind", "user": "alice"}))).await;
    assert_eq!(status, 200);
    assert!(rated_rows(&app, &key).await.is_empty());
    let (_, page) = send(app.get(&key, &format!("/v1/messages?user=alice&conversation_id={}", conversation.id))).await;
    assert_eq!(page["data"][0]["feedback"], json!(null));
}

#[tokio::test]
async fn input_errors() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let message = app.seed_message(&conversation, "q").await;
    let path = format!("/v1/messages/{}/feedbacks", message.id);
    let missing_user = send(app.post(&key, &path, json!({"rating": "like"}))).await;
    assert_error(&missing_user, 400, "invalid_param");
    assert_eq!(missing_user.1["message"], "Arg user must be provided.");
    for rating in [json!("LIKE"), json!(1), json!(true)] {
        assert_error(
            &send(app.post(&key, &path, json!({"rating": rating, "user": "alice"}))).await,
            400,
            "invalid_param",
        );
    }
    assert_error(
        &send(app.post(&key, &path, json!({"rating": "like", "content": 3, "user": "alice"}))).await,
        400,
        "invalid_param",
    );
    assert!(rated_rows(&app, &key).await.is_empty());
}

#[tokio::test]
async fn unknown_and_foreign_messages_are_404() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let other_app = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let message = app.seed_message(&conversation, "q").await;
    let path = format!("/v1/messages/{}/feedbacks", message.id);
    for (k, user) in [(&key, "bob"), (&other_app, "alice")] {
        let body = send(app.post(k, &path, json!({"rating": "like", "user": user}))).await;
        assert_error(&body, 404, "not_found");
        assert_eq!(body.1["message"], "Message Not Exists.");
    }
    let body = send(app.post(
        &key,
        &format!("/v1/messages/{}/feedbacks", unknown_id()),
        json!({"rating": "like", "user": "alice"}),
    ))
    .await;
    assert_error(&body, 404, "not_found");
    assert!(rated_rows(&app, &key).await.is_empty());
    assert!(rated_rows(&app, &other_app).await.is_empty());
}

#[tokio::test]
async fn completion_apps_may_rate_too() {
    let app = spawn_app().await;
    let key = app.create_app(AppMode::Completion, AppConfig::default()).await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let message = app.seed_message(&conversation, "q").await;
    let (status, _) = send(app.post(
        &key,
        &format!("/v1/messages/{}/feedbacks", message.id),
        json!({"rating": "like", "user": "alice"}),
    ))
    .await;
    assert_eq!(status, 200);
}
