//! Conversations and messages written without the model (Colloquy extensions): an empty
//! conversation, and finished messages appended for hand-off and imports.

use colloquy_core::domain::{AppConfig, AppMode};
use colloquy_tests::*;
use serde_json::{Value, json};

async fn create(app: &TestApp, key: &TestKey, body: Value) -> (u16, Value) {
    send(app.post(key, "/v1/conversations", body)).await
}

async fn add(app: &TestApp, key: &TestKey, id: &str, body: Value) -> (u16, Value) {
    send(app.post(key, &format!("/v1/conversations/{id}/messages"), body)).await
}

async fn history(app: &TestApp, key: &TestKey, id: &str, user: &str) -> Vec<Value> {
    let (status, body) = send(app.get(key, &format!("/v1/messages?user={user}&conversation_id={id}&limit=100"))).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

fn app_config() -> AppConfig {
    AppConfig::from_json(
        r#"{"opening_statement": "Hello {{name}}!",
            "user_input_form": [{"text-input": {"variable": "name", "label": "Name", "required": true}}],
            "conversation_variables": [{"name": "memory", "value_type": "string", "value": "none"}]}"#,
    )
    .unwrap()
}

#[tokio::test]
async fn an_empty_conversation_starts_as_a_chat_would_start_it() {
    let app = spawn_app().await;
    let key = app.create_app(AppMode::Chat, app_config()).await;
    let body =
        json!({"user": "alice", "name": "Support case 42", "inputs": {"name": "Ada"}, "metadata": {"ticket": "42"}});
    let (status, created) = create(&app, &key, body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (&created["name"], &created["introduction"], &created["inputs"], &created["metadata"], &created["pinned"]),
        (
            &json!("Support case 42"),
            &json!("Hello Ada!"),
            &json!({"name": "Ada"}),
            &json!({"ticket": "42"}),
            &json!(false)
        )
    );
    let id = created["id"].as_str().unwrap();
    let (_, listed) = send(app.get(&key, "/v1/conversations?user=alice")).await;
    assert_eq!(listed["data"][0]["id"], id);
    let (_, variables) = send(app.get(&key, &format!("/v1/conversations/{id}/variables?user=alice"))).await;
    assert_eq!(variables["data"][0]["name"], "memory", "{variables}");
    assert!(history(&app, &key, id, "alice").await.is_empty());
    let (_, plain) = create(&app, &key, json!({"user": "bob", "inputs": {"name": "Bo"}})).await;
    assert_eq!(plain["name"], "New conversation");

    for bad in [
        json!({"inputs": {"name": "Ada"}}),
        json!({"user": "alice", "inputs": {}}),
        json!({"user": "alice", "inputs": {"name": "Ada"}, "name": "  "}),
        json!({"user": "alice", "inputs": [1]}),
        json!({"user": "alice", "inputs": {"name": "Ada"}, "metadata": {"k": 1}}),
    ] {
        assert_error(&create(&app, &key, bad.clone()).await, 400, "invalid_param");
    }
    let operator = app.operator_key(&key).await;
    assert_error(&create(&app, &operator, json!({"user": "alice"})).await, 403, "forbidden");
}

#[tokio::test]
async fn hand_off_messages_join_the_thread_in_order_and_the_models_history() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let (_, first) = send(app.post(
        &key,
        "/v1/chat-messages",
        json!({"inputs": {}, "query": "I need a human", "user": "alice", "response_mode": "blocking"}),
    ))
    .await;
    let id = first["conversation_id"].as_str().unwrap().to_owned();
    app.clock.advance_seconds(60);
    let items = json!([
        {"query": "Are you there?", "answer": "Yes, this is Sam from support.", "created_at": T0 + 10},
        {"answer": "Your refund is on its way.", "created_at": T0 + 20},
        {"query": "Thanks!", "answer": "You're welcome."},
    ]);
    let (status, added) = add(&app, &key, &id, json!({"user": "alice", "items": items})).await;
    assert_eq!(status, 201, "{added}");
    let ids: Vec<&str> = added["message_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!((ids.len(), added["conversation_id"].as_str()), (3, Some(id.as_str())));

    let thread = history(&app, &key, &id, "alice").await;
    let queries: Vec<&str> = thread.iter().map(|m| m["query"].as_str().unwrap()).collect();
    assert_eq!(queries, ["I need a human", "Are you there?", "", "Thanks!"]);
    let times: Vec<i64> = thread.iter().map(|m| m["created_at"].as_i64().unwrap()).collect();
    assert_eq!(times, [T0, T0 + 10, T0 + 20, T0 + 60]);
    // Each message's parent is the one before it.
    for pair in thread.windows(2) {
        assert_eq!(pair[1]["parent_message_id"], pair[0]["id"]);
    }
    assert_eq!(thread[2]["answer"], "Your refund is on its way.");
    // Activity: the conversation moved; the operators' counters count them.
    let (_, listed) = send(app.get(&key, "/v1/conversations?user=alice")).await;
    assert_eq!(listed["data"][0]["updated_at"], T0 + 60);
    let operator = app.operator_key(&key).await;
    let (_, row) = send(app.get(&operator, "/v1/app/conversations")).await;
    assert_eq!(row["data"][0]["message_count"], 4, "{row}");

    // The model sees them: two earlier questions besides the first (the answer-only item has none).
    let body = json!({"inputs": {}, "query": "One more thing", "user": "alice", "conversation_id": id,
                      "response_mode": "blocking"});
    let (_, answer) = send(app.post(&key, "/v1/chat-messages", body)).await;
    assert_eq!(answer["answer"], "Echo: One more thing (echo provider; 3 earlier questions in this conversation)");
    let prompt_tokens = answer["metadata"]["usage"]["prompt_tokens"].as_u64().unwrap();
    // Every turn's words: the first exchange (4 + 13), the hand-off (3 + 6, 6, 1 + 2), the query (3).
    assert_eq!(prompt_tokens, 38, "the hand-off answers are in the prompt");
}

#[tokio::test]
async fn added_messages_are_checked_and_all_or_nothing() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let (_, created) = create(&app, &key, json!({"user": "alice"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let one = |item: Value| json!({"user": "alice", "items": [item]});
    let twenty_one: Vec<Value> = (0..21).map(|i| json!({"query": format!("q{i}"), "answer": "a"})).collect();
    for bad in [
        json!({"user": "alice"}),
        json!({"user": "alice", "items": []}),
        json!({"user": "alice", "items": twenty_one}),
        json!({"user": "alice", "items": "q"}),
        one(json!("q")),
        one(json!({"query": " ", "answer": ""})),
        one(json!({"query": 5, "answer": "a"})),
        one(json!({"query": "q", "created_at": T0 + 3600})),
        one(json!({"query": "q", "created_at": "yesterday"})),
        json!({"user": "alice", "items": [{"query": "b", "created_at": T0 - 10}, {"query": "a", "created_at": T0 - 20}]}),
        json!({"items": [{"query": "q"}]}),
    ] {
        assert_error(&add(&app, &key, &id, bad.clone()).await, 400, "invalid_param");
    }
    assert!(history(&app, &key, &id, "alice").await.is_empty(), "nothing of a refused request is kept");
    let twenty: Vec<Value> = (0..20).map(|i| json!({"query": format!("q{i}"), "answer": "a"})).collect();
    assert_eq!(add(&app, &key, &id, json!({"user": "alice", "items": twenty})).await.0, 201);
    assert_eq!(history(&app, &key, &id, "alice").await.len(), 20);
    // Not before the newest message already there.
    let late = one(json!({"query": "old", "created_at": T0 - 1}));
    assert_error(&add(&app, &key, &id, late).await, 400, "invalid_param");

    // Another user's, another app's, unknown, malformed, deleted: 404.
    let item = json!({"query": "q", "answer": "a"});
    assert_error(&add(&app, &key, &id, json!({"user": "bob", "items": [item]})).await, 404, "not_found");
    let other = app.chat_app().await;
    assert_error(&add(&app, &other, &id, one(item.clone())).await, 404, "not_found");
    assert_error(&add(&app, &key, &unknown_id(), one(item.clone())).await, 404, "not_found");
    assert_error(&add(&app, &key, "not-a-uuid", one(item.clone())).await, 404, "not_found");
    let delete = app.client.delete(app.url(&format!("/v1/conversations/{id}"))).bearer_auth(&key.key);
    assert_eq!(send(delete.json(&json!({"user": "alice"}))).await.0, 204);
    assert_error(&add(&app, &key, &id, one(item.clone())).await, 404, "not_found");
    let operator = app.operator_key(&key).await;
    assert_error(&add(&app, &operator, &id, one(item)).await, 403, "forbidden");
}

async fn fork(app: &TestApp, key: &TestKey, id: &str, body: Value) -> (u16, Value) {
    send(app.post(key, &format!("/v1/conversations/{id}/fork"), body)).await
}

#[tokio::test]
async fn a_fork_copies_the_thread_and_variables_then_each_goes_its_own_way() {
    let app = spawn_app().await;
    let key = app.create_app(AppMode::Chat, app_config()).await;
    let chat = |query: &str, conversation: Option<&str>| {
        let mut body = json!({"inputs": {"name": "Ada"}, "query": query, "user": "alice", "response_mode": "blocking"});
        if let Some(id) = conversation {
            body["conversation_id"] = json!(id);
        }
        app.post(&key, "/v1/chat-messages", body)
    };
    let (_, first) = send(chat("one", None)).await;
    let id = first["conversation_id"].as_str().unwrap().to_owned();
    let second = send(chat("two", Some(&id))).await.1;
    send(chat("three", Some(&id))).await;
    let like = json!({"rating": "like", "user": "alice"});
    assert_eq!(
        send(app.post(&key, &format!("/v1/messages/{}/feedbacks", first["message_id"].as_str().unwrap()), like))
            .await
            .0,
        200
    );
    let tag = json!({"user": "alice", "metadata": {"topic": "t"}, "pinned": true});
    assert_eq!(
        send(app.client.patch(app.url(&format!("/v1/conversations/{id}"))).bearer_auth(&key.key).json(&tag)).await.0,
        200
    );

    let (status, copy) = fork(&app, &key, &id, json!({"user": "alice", "name": "Another way"})).await;
    assert_eq!(status, 201, "{copy}");
    let copy_id = copy["id"].as_str().unwrap().to_owned();
    assert_ne!(copy_id, id);
    assert_eq!(
        (&copy["name"], &copy["introduction"], &copy["metadata"], &copy["pinned"]),
        (&json!("Another way"), &json!("Hello Ada!"), &json!({"topic": "t"}), &json!(false))
    );
    let original = history(&app, &key, &id, "alice").await;
    let copied = history(&app, &key, &copy_id, "alice").await;
    let pairs = |thread: &[Value]| -> Vec<(Value, Value, Value)> {
        thread.iter().map(|m| (m["query"].clone(), m["answer"].clone(), m["created_at"].clone())).collect()
    };
    assert_eq!(pairs(&copied), pairs(&original));
    assert!(copied.iter().zip(&original).all(|(c, o)| c["id"] != o["id"] && c["conversation_id"] == copy_id.as_str()));
    assert_eq!(copied[0]["parent_message_id"], Value::Null);
    for pair in copied.windows(2) {
        assert_eq!(pair[1]["parent_message_id"], pair[0]["id"]);
    }
    assert_eq!(copied[0]["feedback"], Value::Null, "feedback stays with the original");
    let variables = |conversation: &str| {
        let path = format!("/v1/conversations/{conversation}/variables?user=alice");
        let app = &app;
        let key = &key;
        async move { send(app.get(key, &path)).await.1["data"].clone() }
    };
    let (original_vars, copied_vars) = (variables(&id).await, variables(&copy_id).await);
    assert_eq!(copied_vars[0]["value"], original_vars[0]["value"]);
    assert_ne!(copied_vars[0]["id"], original_vars[0]["id"]);

    // They diverge: a message in the copy is not in the original, and the copy's variable moves alone.
    let (_, answer) = send(chat("four", Some(&copy_id))).await;
    assert_eq!(answer["answer"], "Echo: four (echo provider; 3 earlier questions in this conversation)");
    assert_eq!(history(&app, &key, &id, "alice").await.len(), 3);
    let variable = format!("/v1/conversations/{copy_id}/variables/{}", copied_vars[0]["id"].as_str().unwrap());
    assert_eq!(send(app.put(&key, &variable, json!({"value": "changed", "user": "alice"}))).await.0, 200);
    assert_eq!(variables(&id).await[0]["value"], original_vars[0]["value"]);

    // From a middle message: the thread up to it.
    let (status, early) = fork(&app, &key, &id, json!({"user": "alice", "message_id": second["message_id"]})).await;
    assert_eq!(status, 201, "{early}");
    let early_thread = history(&app, &key, early["id"].as_str().unwrap(), "alice").await;
    let queries: Vec<&str> = early_thread.iter().map(|m| m["query"].as_str().unwrap()).collect();
    assert_eq!(queries, ["one", "two"]);
    let (_, source) = send(app.get(&key, &format!("/v1/conversations/{id}?user=alice"))).await;
    assert_eq!(early["name"], source["name"], "the original's name unless one is given");
}

#[tokio::test]
async fn a_fork_is_the_callers_own_conversation_and_message_only() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let (_, created) = create(&app, &key, json!({"user": "alice"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let items = json!([{"query": "q", "answer": "a"}]);
    let (_, added) = add(&app, &key, &id, json!({"user": "alice", "items": items})).await;
    let message = added["message_ids"][0].as_str().unwrap().to_owned();
    let (_, bobs) = create(&app, &key, json!({"user": "bob"})).await;
    let (_, bob_added) = add(&app, &key, bobs["id"].as_str().unwrap(), json!({"user": "bob", "items": items})).await;

    assert_error(&fork(&app, &key, &id, json!({"user": "bob"})).await, 404, "not_found");
    let other = app.chat_app().await;
    assert_error(&fork(&app, &other, &id, json!({"user": "alice"})).await, 404, "not_found");
    assert_error(&fork(&app, &key, &unknown_id(), json!({"user": "alice"})).await, 404, "not_found");
    assert_error(&fork(&app, &key, "not-a-uuid", json!({"user": "alice"})).await, 404, "not_found");
    let foreign_message = json!({"user": "alice", "message_id": bob_added["message_ids"][0]});
    assert_error(&fork(&app, &key, &id, foreign_message).await, 404, "not_found");
    assert_error(&fork(&app, &key, &id, json!({"user": "alice", "message_id": unknown_id()})).await, 404, "not_found");
    assert_error(&fork(&app, &key, &id, json!({"user": "alice", "message_id": "x"})).await, 400, "invalid_param");
    assert_error(&fork(&app, &key, &id, json!({"user": "alice", "name": " "})).await, 400, "invalid_param");
    assert_error(&fork(&app, &key, &id, json!({})).await, 400, "invalid_param");
    let operator = app.operator_key(&key).await;
    assert_error(&fork(&app, &operator, &id, json!({"user": "alice"})).await, 403, "forbidden");
    // An empty message_id is the newest message; a deleted conversation does not fork.
    let (status, empty) =
        fork(&app, &key, bobs["id"].as_str().unwrap(), json!({"user": "bob", "message_id": ""})).await;
    assert_eq!((status, history(&app, &key, empty["id"].as_str().unwrap(), "bob").await.len()), (201, 1));
    assert_eq!(fork(&app, &key, &id, json!({"user": "alice", "message_id": message})).await.0, 201);
    let gone = app.client.delete(app.url(&format!("/v1/conversations/{id}"))).bearer_auth(&key.key);
    assert_eq!(send(gone.json(&json!({"user": "alice"}))).await.0, 204);
    assert_error(&fork(&app, &key, &id, json!({"user": "alice"})).await, 404, "not_found");
}
