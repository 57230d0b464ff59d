use colloquy_core::domain::{AppConfig, AppMode};
use colloquy_tests::*;
use serde_json::json;

#[tokio::test]
async fn newest_page_in_ascending_order_with_every_field() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let mut seeded = Vec::new();
    for i in 0..5 {
        seeded.push(app.seed_message(&conversation, &format!("q{i}")).await);
        app.clock.advance_seconds(1);
    }
    let base = format!("/v1/messages?user=alice&conversation_id={}", conversation.id);
    let (status, page) = send(app.get(&key, &format!("{base}&limit=2"))).await;
    assert_eq!(status, 200);
    assert_eq!(page["limit"], 2);
    assert_eq!(page["has_more"], true);
    assert_eq!(page["data"][0]["query"], "q3");
    assert_eq!(page["data"][1]["query"], "q4");
    assert_eq!(
        page["data"][1],
        json!({"id": seeded[4].id.to_string(), "conversation_id": conversation.id.to_string(),
               "parent_message_id": seeded[3].id.to_string(), "inputs": {}, "query": "q4", "answer": "answer to q4",
               "message_files": [], "feedback": null, "retriever_resources": [], "agent_thoughts": [],
               "status": "normal", "error": null, "created_at": T0 + 4,
               "sibling_ids": [seeded[4].id.to_string()], "sibling_count": 1})
    );
    let first = page["data"][0]["id"].as_str().unwrap();
    let (_, older) = send(app.get(&key, &format!("{base}&limit=2&first_id={first}"))).await;
    assert_eq!(older["data"][0]["query"], "q1");
    assert_eq!(older["has_more"], true);
    let first = older["data"][0]["id"].as_str().unwrap();
    let (_, oldest) = send(app.get(&key, &format!("{base}&limit=2&first_id={first}"))).await;
    assert_eq!(oldest["data"].as_array().unwrap().len(), 1);
    assert_eq!(oldest["has_more"], false);
}

#[tokio::test]
async fn the_callers_rating_is_shown() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let message = app.seed_message(&conversation, "q").await;
    send(app.post(
        &key,
        &format!("/v1/messages/{}/feedbacks", message.id),
        json!({"rating": "dislike", "user": "alice"}),
    ))
    .await;
    let (_, page) = send(app.get(&key, &format!("/v1/messages?user=alice&conversation_id={}", conversation.id))).await;
    assert_eq!(page["data"][0]["feedback"], json!({"rating": "dislike"}));
}

#[tokio::test]
async fn conversation_id_rules() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    assert_error(&send(app.get(&key, "/v1/messages?user=alice")).await, 400, "invalid_param");
    let (status, body) = send(app.get(&key, "/v1/messages?user=alice&conversation_id=")).await;
    assert_eq!((status, body), (200, json!({"limit": 20, "has_more": false, "data": []})));
    assert_error(&send(app.get(&key, "/v1/messages?user=alice&conversation_id=nope")).await, 400, "invalid_param");
    let body = send(app.get(&key, &format!("/v1/messages?user=alice&conversation_id={}", unknown_id()))).await;
    assert_error(&body, 404, "not_found");
    assert_eq!(body.1["message"], "Conversation Not Exists.");
}

#[tokio::test]
async fn first_id_must_be_a_message_of_this_conversation() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let other = app.seed_conversation(&key, "alice", "other").await;
    app.seed_message(&conversation, "q").await;
    let elsewhere = app.seed_message(&other, "elsewhere").await;
    let base = format!("/v1/messages?user=alice&conversation_id={}", conversation.id);
    for first in [unknown_id(), elsewhere.id.to_string()] {
        let body = send(app.get(&key, &format!("{base}&first_id={first}"))).await;
        assert_error(&body, 404, "not_found");
        assert_eq!(body.1["message"], "First Message Not Exists.");
    }
    assert_error(&send(app.get(&key, &format!("{base}&first_id=x"))).await, 400, "invalid_param");
    assert_error(&send(app.get(&key, &format!("{base}&limit=0"))).await, 400, "invalid_param");
}

#[tokio::test]
async fn foreign_conversations_and_non_chat_apps() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let other_app = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    app.seed_message(&conversation, "secret").await;
    for (k, user) in [(&key, "bob"), (&other_app, "alice"), (&key, "DEFAULT-USER")] {
        let body = send(app.get(k, &format!("/v1/messages?user={user}&conversation_id={}", conversation.id))).await;
        assert_error(&body, 404, "not_found");
    }
    let workflow = app.create_app(AppMode::Workflow, AppConfig::default()).await;
    let body = send(app.get(&workflow, &format!("/v1/messages?user=alice&conversation_id={}", conversation.id))).await;
    assert_error(&body, 400, "not_chat_app");
}
