use colloquy_core::domain::{AppConfig, AppMode};
use colloquy_tests::*;
use serde_json::json;

async fn create(app: &TestApp, key: &TestKey, question: &str, answer: &str) -> serde_json::Value {
    let (status, body) =
        send(app.post(key, "/v1/apps/annotations", json!({"question": question, "answer": answer}))).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn create_list_update_delete() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let first = create(&app, &key, "How do I reset my password?", "Use the link on the login page.").await;
    assert_eq!(first["hit_count"], 0);
    assert_eq!(first["created_at"], T0);
    app.clock.advance_seconds(1);
    let second = create(&app, &key, "Opening hours?", "9 to 5, Monday to Friday.").await;

    let (_, page) = send(app.get(&key, "/v1/apps/annotations?page=1&limit=1")).await;
    assert_eq!(page["data"][0]["id"], second["id"], "newest first");
    assert_eq!(
        (page["total"].clone(), page["has_more"].clone(), page["limit"].clone(), page["page"].clone()),
        (json!(2), json!(true), json!(1), json!(1))
    );
    let (_, page) = send(app.get(&key, "/v1/apps/annotations?page=2&limit=1")).await;
    assert_eq!(page["has_more"], false, "a full last page has no more");
    let (_, found) = send(app.get(&key, "/v1/apps/annotations?keyword=PASSWORD")).await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["data"][0]["id"], first["id"]);
    let (_, found) = send(app.get(&key, "/v1/apps/annotations?keyword=monday")).await;
    assert_eq!(found["data"][0]["id"], second["id"], "answers are searched too");
    let (status, _) = send(app.get(&key, "/v1/apps/annotations?limit=500")).await;
    assert_eq!(status, 200, "large limits are served 100 at a time, as in Dify");

    let id = first["id"].as_str().unwrap();
    let (status, updated) = send(app.put(
        &key,
        &format!("/v1/apps/annotations/{id}"),
        json!({"question": "Reset password?", "answer": "Ask IT."}),
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!((updated["question"].as_str(), updated["answer"].as_str()), (Some("Reset password?"), Some("Ask IT.")));

    let response =
        app.client.delete(app.url(&format!("/v1/apps/annotations/{id}"))).bearer_auth(&key.key).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.headers().get("content-type").is_none());
    let (_, page) = send(app.get(&key, "/v1/apps/annotations")).await;
    assert_eq!(page["total"], 1);
}

#[tokio::test]
async fn annotation_errors_and_app_scope() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let other_app = app.chat_app().await;
    for body in [
        json!({"question": "q"}),
        json!({"answer": "a"}),
        json!({"question": " ", "answer": "a"}),
        json!({"question": 1, "answer": "a"}),
    ] {
        assert_error(&send(app.post(&key, "/v1/apps/annotations", body)).await, 400, "invalid_param");
    }
    let mine = create(&app, &key, "q", "a").await;
    let id = mine["id"].as_str().unwrap();
    let body =
        send(app.put(&other_app, &format!("/v1/apps/annotations/{id}"), json!({"question": "x", "answer": "y"}))).await;
    assert_error(&body, 404, "not_found");
    assert_eq!(body.1["message"], "Annotation not found");
    let response = app
        .client
        .delete(app.url(&format!("/v1/apps/annotations/{id}")))
        .bearer_auth(&other_app.key)
        .send()
        .await
        .unwrap();
    assert_error(&read(response).await, 404, "not_found");
    let (_, theirs) = send(app.get(&other_app, "/v1/apps/annotations")).await;
    assert_eq!(theirs["total"], 0);
    assert_error(
        &send(app.put(&key, "/v1/apps/annotations/not-a-uuid", json!({"question": "x", "answer": "y"}))).await,
        404,
        "not_found",
    );
    assert_error(&send(app.get(&key, "/v1/apps/annotations?page=0")).await, 400, "invalid_param");
}

#[tokio::test]
async fn annotation_reply_answers_matching_queries_and_counts_hits() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let annotation = create(&app, &key, "How do I reset my password?", "Use the reset link on the login page.").await;
    let settings =
        json!({"score_threshold": 0.6, "embedding_provider_name": "echo", "embedding_model_name": "lexical"});
    let (status, job) = send(app.post(&key, "/v1/apps/annotation-reply/enable", settings.clone())).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["job_status"], "completed");
    let job_id = job["job_id"].as_str().unwrap();
    let (_, state) = send(app.get(&key, &format!("/v1/apps/annotation-reply/enable/status/{job_id}"))).await;
    assert_eq!(state, json!({"job_id": job_id, "job_status": "completed", "error_msg": ""}));

    let (_, reply) = send(app.post(
        &key,
        "/v1/chat-messages",
        json!({"inputs": {}, "query": "how do I reset my password", "user": "u"}),
    ))
    .await;
    assert_eq!(reply["answer"], "Use the reset link on the login page.");
    assert_eq!(reply["metadata"]["usage"]["total_tokens"], 0, "no model was called");
    let (_, other) = send(app.post(
        &key,
        "/v1/chat-messages",
        json!({"inputs": {}, "query": "what is the weather in Oslo", "user": "u"}),
    ))
    .await;
    assert!(other["answer"].as_str().unwrap().starts_with("Echo:"));
    // Created while reply is on: embedded at once.
    create(&app, &key, "Where is the office?", "Main street 1.").await;
    let (_, office) =
        send(app.post(&key, "/v1/chat-messages", json!({"inputs": {}, "query": "where is the office", "user": "u"})))
            .await;
    assert_eq!(office["answer"], "Main street 1.");

    let (_, page) = send(app.get(&key, "/v1/apps/annotations?keyword=password")).await;
    assert_eq!(page["data"][0]["id"], annotation["id"]);
    assert_eq!(page["data"][0]["hit_count"], 1);

    let (_, job) = send(app.post(&key, "/v1/apps/annotation-reply/disable", settings)).await;
    assert_eq!(job["job_status"], "completed");
    let (_, after) = send(app.post(
        &key,
        "/v1/chat-messages",
        json!({"inputs": {}, "query": "how do I reset my password", "user": "u"}),
    ))
    .await;
    assert!(after["answer"].as_str().unwrap().starts_with("Echo:"), "disabled reply uses the model again");
}

#[tokio::test]
async fn annotation_reply_errors() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let good = json!({"score_threshold": 0.8, "embedding_provider_name": "echo", "embedding_model_name": "lexical"});
    assert_error(&send(app.post(&key, "/v1/apps/annotation-reply/toggle", good.clone())).await, 400, "invalid_param");
    for missing in ["score_threshold", "embedding_provider_name", "embedding_model_name"] {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(missing);
        assert_error(&send(app.post(&key, "/v1/apps/annotation-reply/disable", body)).await, 400, "invalid_param");
    }
    let mut out_of_range = good.clone();
    out_of_range["score_threshold"] = json!(3);
    assert_error(&send(app.post(&key, "/v1/apps/annotation-reply/enable", out_of_range)).await, 400, "invalid_param");

    let mut unknown = good.clone();
    unknown["embedding_provider_name"] = json!("cohere");
    let (status, job) = send(app.post(&key, "/v1/apps/annotation-reply/enable", unknown)).await;
    assert_eq!((status, job["job_status"].as_str()), (200, Some("error")));
    let (_, state) =
        send(app.get(&key, &format!("/v1/apps/annotation-reply/enable/status/{}", job["job_id"].as_str().unwrap())))
            .await;
    assert!(state["error_msg"].as_str().unwrap().contains("cohere"));

    let missing = send(app.get(&key, &format!("/v1/apps/annotation-reply/enable/status/{}", unknown_id()))).await;
    assert_error(&missing, 404, "not_found");
    assert_eq!(missing.1["message"], "The job does not exist.");
    assert_error(&send(app.get(&key, "/v1/apps/annotation-reply/enable/status/x")).await, 404, "not_found");
}

#[tokio::test]
async fn annotation_writes_share_the_rate_limit() {
    let app = spawn_app().await;
    let key =
        app.create_app(AppMode::Chat, AppConfig { feedback_rate_limit_per_minute: 2, ..AppConfig::default() }).await;
    create(&app, &key, "q1", "a1").await;
    create(&app, &key, "q2", "a2").await;
    let response =
        app.post(&key, "/v1/apps/annotations", json!({"question": "q3", "answer": "a3"})).send().await.unwrap();
    assert!(response.headers().get("retry-after").is_some());
    assert_error(&read(response).await, 429, "too_many_requests");
}
