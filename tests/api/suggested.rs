use colloquy_core::domain::{AppConfig, AppMode};
use colloquy_tests::*;
use serde_json::json;

fn suggesting() -> AppConfig {
    AppConfig::from_json(r#"{"suggested_questions_after_answer": {"enabled": true}}"#).unwrap()
}

async fn chat(app: &TestApp, key: &TestKey, user: &str, query: &str) -> serde_json::Value {
    send(app.post(key, "/v1/chat-messages", json!({"inputs": {}, "query": query, "user": user}))).await.1
}

#[tokio::test]
async fn three_follow_up_questions_from_the_model() {
    let app = spawn_app().await;
    let key = app.create_app(AppMode::Chat, suggesting()).await;
    let answer = chat(&app, &key, "alice", "Tell me about Rust lifetimes").await;
    let path = format!("/v1/messages/{}/suggested?user=alice", answer["message_id"].as_str().unwrap());
    let (status, body) = send(app.get(&key, &path)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "success");
    let questions = body["data"].as_array().unwrap();
    assert_eq!(questions.len(), 3);
    assert!(questions[0].as_str().unwrap().contains("Rust lifetimes"));
}

#[tokio::test]
async fn disabled_missing_user_foreign_and_non_chat() {
    let app = spawn_app().await;
    let off = app.chat_app().await;
    let answer = chat(&app, &off, "alice", "hi").await;
    let id = answer["message_id"].as_str().unwrap();
    let disabled = send(app.get(&off, &format!("/v1/messages/{id}/suggested?user=alice"))).await;
    assert_error(&disabled, 400, "bad_request");
    assert_eq!(disabled.1["message"], "Suggested Questions Is Disabled.");

    let on = app.create_app(AppMode::Chat, suggesting()).await;
    let answer = chat(&app, &on, "alice", "hi").await;
    let id = answer["message_id"].as_str().unwrap();
    assert_error(&send(app.get(&on, &format!("/v1/messages/{id}/suggested"))).await, 400, "invalid_param");
    let foreign = send(app.get(&on, &format!("/v1/messages/{id}/suggested?user=bob"))).await;
    assert_error(&foreign, 404, "not_found");
    assert_eq!(foreign.1["message"], "Message Not Exists.");
    assert_error(&send(app.get(&off, &format!("/v1/messages/{id}/suggested?user=alice"))).await, 404, "not_found");
    assert_error(
        &send(app.get(&on, &format!("/v1/messages/{}/suggested?user=alice", unknown_id()))).await,
        404,
        "not_found",
    );
    let workflow = app.create_app(AppMode::Workflow, suggesting()).await;
    assert_error(
        &send(app.get(&workflow, &format!("/v1/messages/{id}/suggested?user=alice"))).await,
        400,
        "not_chat_app",
    );
}
