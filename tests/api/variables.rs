use colloquy_core::domain::{AppConfig, AppMode, ValueType};
use colloquy_tests::*;
use serde_json::json;

async fn advanced_chat(app: &TestApp) -> TestKey {
    app.create_app(AppMode::AdvancedChat, AppConfig::default()).await
}

#[tokio::test]
async fn lists_variables_oldest_first_with_values_as_python_strings() {
    let app = spawn_app().await;
    let key = advanced_chat(&app).await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let name = app.seed_variable(&conversation, "name", ValueType::String, json!("Ada")).await;
    app.clock.advance_seconds(1);
    app.seed_variable(&conversation, "count", ValueType::Number, json!(3)).await;
    app.clock.advance_seconds(1);
    app.seed_variable(&conversation, "profile", ValueType::Object, json!({"a": 1, "ok": true})).await;

    let (status, body) =
        send(app.get(&key, &format!("/v1/conversations/{}/variables?user=alice", conversation.id))).await;
    assert_eq!(status, 200);
    assert_eq!(body["limit"], 20);
    assert_eq!(body["has_more"], false);
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(
        data[0],
        json!({"id": name.id.to_string(), "name": "name", "value_type": "string", "value": "Ada",
               "description": "name of the conversation", "created_at": T0, "updated_at": T0})
    );
    assert_eq!(data[1]["value"], "3");
    assert_eq!(data[2]["value"], "{'a': 1, 'ok': True}");
}

#[tokio::test]
async fn paging_filtering_and_their_errors() {
    let app = spawn_app().await;
    let key = advanced_chat(&app).await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let mut seeded = Vec::new();
    for name in ["memory_a", "other", "Memory_b"] {
        seeded.push(app.seed_variable(&conversation, name, ValueType::String, json!("v")).await);
    }
    let base = format!("/v1/conversations/{}/variables?user=alice", conversation.id);
    let (_, page) = send(app.get(&key, &format!("{base}&limit=2"))).await;
    assert_eq!(page["has_more"], true);
    assert_eq!(page["data"][1]["id"], seeded[1].id.to_string());
    let (_, page) = send(app.get(&key, &format!("{base}&limit=2&last_id={}", seeded[1].id))).await;
    assert_eq!(page["has_more"], false);
    assert_eq!(page["data"][0]["id"], seeded[2].id.to_string());

    let (_, filtered) = send(app.get(&key, &format!("{base}&variable_name=MEMORY"))).await;
    let names: Vec<_> = filtered["data"].as_array().unwrap().iter().map(|v| v["name"].clone()).collect();
    assert_eq!(names, vec![json!("memory_a"), json!("Memory_b")]);

    assert_error(&send(app.get(&key, &format!("{base}&variable_name=a%20b"))).await, 400, "invalid_param");
    assert_error(&send(app.get(&key, &format!("{base}&limit=101"))).await, 400, "invalid_param");
    let unknown = send(app.get(&key, &format!("{base}&last_id={}", unknown_id()))).await;
    assert_error(&unknown, 400, "invalid_param");
    assert_eq!(unknown.1["message"], "");
}

#[tokio::test]
async fn chat_apps_have_no_variables_and_foreign_conversations_are_404() {
    let app = spawn_app().await;
    let chat = app.chat_app().await;
    let conversation = app.seed_conversation(&chat, "alice", "c").await;
    let (_, body) = send(app.get(&chat, &format!("/v1/conversations/{}/variables?user=alice", conversation.id))).await;
    assert_eq!(body["data"], json!([]));
    let other_app = app.chat_app().await;
    for (k, user) in [(&chat, "bob"), (&other_app, "alice")] {
        let body = send(app.get(k, &format!("/v1/conversations/{}/variables?user={user}", conversation.id))).await;
        assert_error(&body, 404, "not_found");
    }
}

#[tokio::test]
async fn update_checks_types_and_answers_the_variable() {
    let app = spawn_app().await;
    let key = advanced_chat(&app).await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let count = app.seed_variable(&conversation, "count", ValueType::Integer, json!(1)).await;
    let path = format!("/v1/conversations/{}/variables/{}", conversation.id, count.id);
    app.clock.advance_seconds(10);

    let (status, body) = send(app.put(&key, &path, json!({"value": 2.5, "user": "alice"}))).await;
    assert_eq!(status, 200);
    assert_eq!(body["value"], "2.5");
    assert_eq!(body["value_type"], "integer");
    assert_eq!(body["updated_at"], T0 + 10);
    assert_eq!(body["created_at"], T0);

    let mismatch = send(app.put(&key, &path, json!({"value": "three", "user": "alice"}))).await;
    assert_error(&mismatch, 400, "bad_request");
    assert_eq!(mismatch.1["message"], "Type mismatch: variable 'count' expects integer, but got string type");
    assert_error(&send(app.put(&key, &path, json!({"user": "alice"}))).await, 400, "invalid_param");

    // PATCH, as one Python SDK release sends it.
    let patch = app.client.patch(app.url(&path)).bearer_auth(&key.key).json(&json!({"value": 7, "user": "alice"}));
    let (status, body) = send(patch).await;
    assert_eq!((status, body["value"].clone()), (200, json!("7")));
    let (_, list) = send(app.get(&key, &format!("/v1/conversations/{}/variables?user=alice", conversation.id))).await;
    assert_eq!(list["data"][0]["value"], "7");
}

#[tokio::test]
async fn update_of_missing_or_foreign_objects_is_404() {
    let app = spawn_app().await;
    let key = advanced_chat(&app).await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let variable = app.seed_variable(&conversation, "v", ValueType::String, json!("x")).await;
    let path = format!("/v1/conversations/{}/variables/{}", conversation.id, variable.id);
    let body = send(app.put(&key, &path, json!({"value": "y", "user": "bob"}))).await;
    assert_error(&body, 404, "not_found");
    assert_eq!(body.1["message"], "Conversation Not Exists.");
    let missing = format!("/v1/conversations/{}/variables/{}", conversation.id, unknown_id());
    let body = send(app.put(&key, &missing, json!({"value": "y", "user": "alice"}))).await;
    assert_error(&body, 404, "not_found");
    assert_eq!(body.1["message"], "Conversation Variable Not Exists.");
    // A variable of another conversation, addressed through one the caller owns.
    let own = app.seed_conversation(&key, "alice", "own").await;
    let crossed = format!("/v1/conversations/{}/variables/{}", own.id, variable.id);
    assert_error(&send(app.put(&key, &crossed, json!({"value": "y", "user": "alice"}))).await, 404, "not_found");
}

#[tokio::test]
async fn another_app_cannot_update_and_non_chat_apps_are_refused() {
    let app = spawn_app().await;
    let key = advanced_chat(&app).await;
    let other_app = advanced_chat(&app).await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let variable = app.seed_variable(&conversation, "v", ValueType::String, json!("x")).await;
    let path = format!("/v1/conversations/{}/variables/{}", conversation.id, variable.id);
    assert_error(&send(app.put(&other_app, &path, json!({"value": "y", "user": "alice"}))).await, 404, "not_found");
    let (_, list) = send(app.get(&key, &format!("/v1/conversations/{}/variables?user=alice", conversation.id))).await;
    assert_eq!(list["data"][0]["value"], "x", "the value is unchanged");

    let completion = app.create_app(AppMode::Completion, AppConfig::default()).await;
    let list = send(app.get(&completion, &format!("/v1/conversations/{}/variables?user=alice", conversation.id))).await;
    assert_error(&list, 400, "not_chat_app");
    assert_error(&send(app.put(&completion, &path, json!({"value": "y", "user": "alice"}))).await, 400, "not_chat_app");
}

#[tokio::test]
async fn new_conversations_start_with_the_apps_variables() {
    let app = spawn_app().await;
    let config = colloquy_core::domain::AppConfig::from_json(
        r#"{"conversation_variables": [
            {"name": "memory", "value_type": "object", "description": "what the bot remembers"},
            {"name": "turns", "value_type": "number", "value": 3}
        ]}"#,
    )
    .unwrap();
    let key = app.create_app(colloquy_core::domain::AppMode::AdvancedChat, config).await;
    let body = serde_json::json!({"inputs": {}, "query": "hi", "user": "alice", "response_mode": "blocking"});
    let (status, answer) = send(app.post(&key, "/v1/chat-messages", body)).await;
    assert_eq!(status, 200, "{answer}");
    let conversation = answer["conversation_id"].as_str().unwrap();
    let (status, list) = send(app.get(&key, &format!("/v1/conversations/{conversation}/variables?user=alice"))).await;
    assert_eq!(status, 200);
    let summary: Vec<(String, String, String)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().into(),
                v["value_type"].as_str().unwrap().into(),
                v["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [("memory".into(), "object".into(), "{}".into()), ("turns".into(), "number".into(), "3".into())]
    );
    assert_eq!(list["data"][0]["description"], "what the bot remembers");
    let id = list["data"][0]["id"].as_str().unwrap();
    let update = serde_json::json!({"value": {"likes": "tea"}, "user": "alice"});
    let (status, updated) =
        send(app.put(&key, &format!("/v1/conversations/{conversation}/variables/{id}"), update)).await;
    assert_eq!((status, updated["value"].as_str()), (200, Some("{'likes': 'tea'}")));

    for bad in [
        r#"{"conversation_variables": [{"name": "x", "value_type": "colour"}]}"#,
        r#"{"conversation_variables": [{"name": "x", "value_type": "number", "value": "three"}]}"#,
        r#"{"conversation_variables": [{"name": "", "value_type": "string"}]}"#,
        r#"{"conversation_variables": [{"name": "x", "value_type": "string"}, {"name": "x", "value_type": "string"}]}"#,
    ] {
        assert!(colloquy_core::domain::AppConfig::from_json(bad).is_err(), "{bad}");
    }
}
