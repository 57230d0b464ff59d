use colloquy_core::domain::ValueType;
use colloquy_tests::*;
use serde_json::json;

#[tokio::test]
async fn deletes_with_204_empty_and_untyped_then_everything_is_gone() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "doomed").await;
    let message = app.seed_message(&conversation, "hello").await;
    let variable = app.seed_variable(&conversation, "memory", ValueType::String, json!("x")).await;
    let keep = app.seed_conversation(&key, "alice", "kept").await;
    let kept_message = app.seed_message(&keep, "still here").await;
    for m in [&message, &kept_message] {
        let rated = send(app.post(
            &key,
            &format!("/v1/messages/{}/feedbacks", m.id),
            json!({"rating": "like", "user": "alice"}),
        ));
        assert_eq!(rated.await.0, 200);
    }

    let response = app
        .delete(&key, &format!("/v1/conversations/{}", conversation.id), json!({"user": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.headers().get("content-type").is_none(), "no JSON content type on an empty 204");
    assert!(response.bytes().await.unwrap().is_empty());

    let (_, list) = send(app.get(&key, "/v1/conversations?user=alice")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], keep.id.to_string());
    let gone = send(app.get(&key, &format!("/v1/messages?user=alice&conversation_id={}", conversation.id))).await;
    assert_error(&gone, 404, "not_found");
    let gone = send(app.get(&key, &format!("/v1/conversations/{}/variables?user=alice", conversation.id))).await;
    assert_error(&gone, 404, "not_found");
    let path = format!("/v1/conversations/{}/variables/{}", conversation.id, variable.id);
    assert_error(&send(app.put(&key, &path, json!({"user": "alice", "value": "y"}))).await, 404, "not_found");
    let gone = send(app.post(
        &key,
        &format!("/v1/messages/{}/feedbacks", message.id),
        json!({"rating": "like", "user": "alice"}),
    ));
    assert_error(&gone.await, 404, "not_found");
    let (_, feedbacks) = send(app.get(&key, "/v1/app/feedbacks")).await;
    let feedbacks = feedbacks["data"].as_array().unwrap();
    assert_eq!(feedbacks.len(), 1, "only the kept conversation's feedback remains");
    assert_eq!(feedbacks[0]["message_id"], kept_message.id.to_string());
    let again = app.delete(&key, &format!("/v1/conversations/{}", conversation.id), json!({"user": "alice"}));
    assert_error(&send(again).await, 404, "not_found");
}

#[tokio::test]
async fn another_users_or_apps_conversation_is_404_and_survives() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let other_app = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "mine").await;
    let path = format!("/v1/conversations/{}", conversation.id);
    for (k, user) in [(&key, "mallory"), (&other_app, "alice"), (&key, "")] {
        let body = send(app.delete(k, &path, json!({"user": user}))).await;
        assert_error(&body, 404, "not_found");
        assert_eq!(body.1["message"], "Conversation Not Exists.");
    }
    let (_, list) = send(app.get(&key, "/v1/conversations?user=alice")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn ids_are_canonicalised_and_non_uuids_do_not_route() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "x").await;
    let upper = conversation.id.to_string().to_uppercase();
    let (status, _) = send(app.delete(&key, &format!("/v1/conversations/{upper}"), json!({"user": "alice"}))).await;
    assert_eq!(status, 204);
    let body = send(app.delete(&key, "/v1/conversations/not-a-uuid", json!({"user": "alice"}))).await;
    assert_error(&body, 404, "not_found");
    assert!(body.1["message"].as_str().unwrap().starts_with("The requested URL was not found"));
}

#[tokio::test]
async fn body_rules_for_delete() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "DEFAULT-USER", "anonymous").await;
    let path = format!("/v1/conversations/{}", conversation.id);
    let plain =
        app.client.delete(app.url(&path)).bearer_auth(&key.key).header("content-type", "text/plain").body("user=x");
    assert_error(&send(plain).await, 415, "unsupported_media_type");
    let broken =
        app.client.delete(app.url(&path)).bearer_auth(&key.key).header("content-type", "application/json").body("{");
    assert_error(&send(broken).await, 400, "bad_request");
    let array =
        app.client.delete(app.url(&path)).bearer_auth(&key.key).header("content-type", "application/json").body("[]");
    assert_error(&send(array).await, 400, "bad_request");
    // No body at all (curl -X DELETE) is the shared DEFAULT-USER.
    let bare = app.client.delete(app.url(&path)).bearer_auth(&key.key);
    assert_eq!(send(bare).await.0, 204);
}

#[tokio::test]
async fn non_chat_apps_are_refused() {
    use colloquy_core::domain::{AppConfig, AppMode};
    let app = spawn_app().await;
    let workflow = app.create_app(AppMode::Workflow, AppConfig::default()).await;
    let body =
        send(app.delete(&workflow, &format!("/v1/conversations/{}", unknown_id()), json!({"user": "alice"}))).await;
    assert_error(&body, 400, "not_chat_app");
}
