use colloquy_core::domain::{AppConfig, AppMode};
use colloquy_tests::*;
use serde_json::json;

#[tokio::test]
async fn manual_rename_keeps_the_name_as_given_and_bumps_updated_at() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "New conversation").await;
    app.clock.advance_seconds(30);
    let path = format!("/v1/conversations/{}/name", conversation.id);
    let (status, body) = send(app.post(&key, &path, json!({"name": " Trip to Rome ", "user": "alice"}))).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"id": conversation.id.to_string(), "name": " Trip to Rome ", "inputs": {}, "status": "normal",
               "introduction": "", "created_at": T0, "updated_at": T0 + 30})
    );
    let (_, list) = send(app.get(&key, "/v1/conversations?user=alice")).await;
    assert_eq!(list["data"][0]["name"], " Trip to Rome ");
}

#[tokio::test]
async fn a_blank_or_missing_name_is_invalid() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "x").await;
    let path = format!("/v1/conversations/{}/name", conversation.id);
    for body in [
        json!({"user": "alice"}),
        json!({"name": "   ", "user": "alice"}),
        json!({"name": null, "auto_generate": false, "user": "alice"}),
        json!({"name": 5, "user": "alice"}),
    ] {
        assert_error(&send(app.post(&key, &path, body)).await, 400, "invalid_param");
    }
    assert_error(
        &send(app.post(&key, &path, json!({"name": "x".repeat(256), "user": "alice"}))).await,
        400,
        "invalid_param",
    );
}

#[tokio::test]
async fn auto_generate_names_from_the_first_query_without_touching_updated_at() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "New conversation").await;
    let first = "How do I\nbook a train from Milan to Rome on a budget, with a bike, in the summer holidays?";
    app.seed_message(&conversation, first).await;
    app.clock.advance_seconds(1);
    app.seed_message(&conversation, "second question").await;
    app.clock.advance_seconds(60);
    let path = format!("/v1/conversations/{}/name", conversation.id);
    let (status, body) =
        send(app.post(&key, &path, json!({"auto_generate": true, "name": "ignored", "user": "alice"}))).await;
    assert_eq!(status, 200);
    // The echo provider titles a conversation with the first six words of its first query.
    assert_eq!(body["name"], "How do I book a train");
    assert_eq!(body["updated_at"], T0, "auto-generation does not move updated_at");
}

#[tokio::test]
async fn auto_generate_without_messages_is_an_empty_invalid_param() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "x").await;
    let path = format!("/v1/conversations/{}/name", conversation.id);
    let body = send(app.post(&key, &path, json!({"auto_generate": true, "user": "alice"}))).await;
    assert_error(&body, 400, "invalid_param");
    assert_eq!(body.1["message"], "");
}

#[tokio::test]
async fn foreign_missing_and_non_chat() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let other_app = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "x").await;
    let path = format!("/v1/conversations/{}/name", conversation.id);
    for (k, user) in [(&key, "bob"), (&other_app, "alice")] {
        let body = send(app.post(k, &path, json!({"name": "stolen", "user": user}))).await;
        assert_error(&body, 404, "not_found");
        assert_eq!(body.1["message"], "Conversation Not Exists.");
    }
    let body = send(app.post(
        &key,
        &format!("/v1/conversations/{}/name", unknown_id()),
        json!({"name": "n", "user": "alice"}),
    ))
    .await;
    assert_error(&body, 404, "not_found");
    let completion = app.create_app(AppMode::Completion, AppConfig::default()).await;
    assert_error(&send(app.post(&completion, &path, json!({"name": "n", "user": "alice"}))).await, 400, "not_chat_app");
    let (_, list) = send(app.get(&key, "/v1/conversations?user=alice")).await;
    assert_eq!(list["data"][0]["name"], "x");
}
