//! What real clients send (reference: local-tooling §3.d).

use colloquy_core::api::ApiLimits;
use colloquy_tests::*;
use serde_json::json;

#[tokio::test]
async fn sdk_style_queries_are_tolerated() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    app.seed_conversation(&key, "u", "c").await;
    // PyPI dify-client: every GET carries a JSON content type; None params become empty.
    // `pinned` is a real filter here (Dify ignores it): `True` is read as true.
    for query in ["user=u&last_id=&limit=&pinned=", "user=u&pinned=False", "user=u&x-unknown=42&sort_by="] {
        let request = app.get(&key, &format!("/v1/conversations?{query}")).header("content-type", "application/json");
        let (status, body) = send(request).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["data"].as_array().unwrap().len(), 1, "{query}");
        assert_eq!(body["limit"], 20);
    }
    for query in ["user=u&pinned=True", "user=u&pinned=true&first_id="] {
        let (status, body) = send(app.get(&key, &format!("/v1/conversations?{query}"))).await;
        assert_eq!((status, body["data"].as_array().map(Vec::len)), (200, Some(0)), "{query}: nothing is pinned");
    }
    // dify-oapi2 sends `{}` as the body of its GETs.
    let with_body = app.get(&key, "/v1/conversations?user=u").header("content-type", "application/json").body("{}");
    assert_eq!(send(with_body).await.0, 200);
}

#[tokio::test]
async fn json_user_may_be_a_number_and_null_fields_count_as_absent() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "42", "numbered").await;
    let message = app.seed_message(&conversation, "q").await;
    let body = json!({"rating": "like", "user": 42, "content": null});
    assert_eq!(send(app.post(&key, &format!("/v1/messages/{}/feedbacks", message.id), body)).await.0, 200);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = spawn_app_with(ApiLimits { max_body_bytes: 256, ..ApiLimits::default() }).await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "u", "c").await;
    let big = json!({"name": "x".repeat(300), "user": "u"});
    let body = send(app.post(&key, &format!("/v1/conversations/{}/name", conversation.id), big)).await;
    assert_error(&body, 413, "request_entity_too_large");
    let small = json!({"name": "fits", "user": "u"});
    assert_eq!(send(app.post(&key, &format!("/v1/conversations/{}/name", conversation.id), small)).await.0, 200);
}

#[tokio::test]
async fn overlong_user_strings_are_rejected_not_stored() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let body = send(app.get(&key, &format!("/v1/conversations?user={}", "u".repeat(256)))).await;
    assert_error(&body, 400, "invalid_param");
}

#[tokio::test]
async fn npm_sdk_pages_conversations_with_first_id() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    for name in ["a", "b", "c"] {
        app.seed_conversation(&key, "u", name).await;
        app.clock.advance_seconds(1);
    }
    let (_, first) = send(app.get(&key, "/v1/conversations?user=u&limit=2")).await;
    let names = |page: &serde_json::Value| -> Vec<String> {
        page["data"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&first), ["c", "b"]);
    let cursor = first["data"][1]["id"].as_str().unwrap();
    // npm dify-client 2.3.2: getConversations(user, first_id, limit) sends `first_id`.
    let (status, next) = send(app.get(&key, &format!("/v1/conversations?user=u&limit=2&first_id={cursor}"))).await;
    assert_eq!((status, names(&next), next["has_more"].as_bool()), (200, vec!["a".to_owned()], Some(false)));
    // `last_id` wins when both are sent.
    let (_, both) = send(app.get(
        &key,
        &format!(
            "/v1/conversations?user=u&limit=2&first_id={cursor}&last_id={}",
            first["data"][0]["id"].as_str().unwrap()
        ),
    ))
    .await;
    assert_eq!(names(&both), ["b", "a"]);
}
