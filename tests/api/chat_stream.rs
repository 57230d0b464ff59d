use std::time::Duration;

use colloquy_tests::*;
use serde_json::json;

#[tokio::test]
async fn streaming_sends_message_events_then_message_end() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let response = app
        .post(
            &key,
            "/v1/chat-messages",
            json!({"inputs": {}, "query": "stream this please", "user": "alice", "response_mode": "streaming"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events = read_events(response).await;
    let (last, deltas) = events.split_last().unwrap();
    assert!(deltas.len() > 1, "the answer arrives in pieces");
    let first = &deltas[0].data;
    for event in &events {
        assert_eq!(event.kind, None, "data-only frames, like Dify's");
        for field in ["conversation_id", "message_id", "created_at", "task_id"] {
            assert_eq!(event.data[field], first[field], "{field} repeats in every chunk");
        }
    }
    assert!(deltas.iter().all(|e| e.data["event"] == "message" && e.data["id"] == first["message_id"]));
    assert_eq!(last.data["event"], "message_end");
    assert!(last.data["metadata"]["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    let streamed: String = deltas.iter().map(|e| e.data["answer"].as_str().unwrap()).collect();
    let conversation_id = first["conversation_id"].as_str().unwrap();
    let (_, history) = send(app.get(&key, &format!("/v1/messages?user=alice&conversation_id={conversation_id}"))).await;
    assert_eq!(history["data"][0]["answer"], streamed);
    let (_, list) = send(app.get(&key, "/v1/conversations?user=alice")).await;
    assert_eq!(list["data"][0]["name"], "stream this please");
}

#[tokio::test]
async fn stop_ends_the_stream_early_and_keeps_the_partial_answer() {
    let app = spawn_app_with_models(echo_models(Duration::from_millis(40))).await;
    let key = app.chat_app().await;
    let query = "word ".repeat(200);
    let response = app
        .post(
            &key,
            "/v1/chat-messages",
            json!({"inputs": {}, "query": query, "user": "alice", "response_mode": "streaming"}),
        )
        .send()
        .await
        .unwrap();
    let mut stream = sse_stream::SseStream::from_bytes_stream(response.bytes_stream());
    use futures_util::StreamExt;
    let first = stream.next().await.unwrap().unwrap();
    let first: serde_json::Value = serde_json::from_str(first.data.as_deref().unwrap()).unwrap();
    let task = first["task_id"].as_str().unwrap();
    let in_progress = format!("/v1/messages?user=alice&conversation_id={}", first["conversation_id"].as_str().unwrap());
    let (_, history) = send(app.get(&key, &in_progress)).await;
    assert_eq!(history["data"][0]["id"], first["message_id"], "the message is listed while it is answered");

    // Someone else's stop does nothing; answers are the same either way.
    for (user, path) in
        [("mallory", format!("/v1/chat-messages/{task}/stop")), ("alice", "/v1/chat-messages/not-a-task/stop".into())]
    {
        let (status, body) = send(app.post(&key, &path, json!({"user": user}))).await;
        assert_eq!((status, body), (200, json!({"result": "success"})));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = send(app.post(&key, &format!("/v1/chat-messages/{task}/stop"), json!({"user": "alice"}))).await;
    assert_eq!(status, 200);

    let mut streamed = first["answer"].as_str().unwrap().to_owned();
    let mut ended = false;
    while let Some(event) = stream.next().await {
        let data: serde_json::Value = serde_json::from_str(event.unwrap().data.as_deref().unwrap()).unwrap();
        match data["event"].as_str() {
            Some("message") => streamed.push_str(data["answer"].as_str().unwrap()),
            Some("message_end") => ended = true,
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert!(ended, "a stopped stream still ends with message_end");
    assert!(streamed.split_whitespace().count() > 5, "mallory's stop did not cut it short");
    assert!(streamed.split_whitespace().count() < 150, "alice's stop did");
    let conversation_id = first["conversation_id"].as_str().unwrap();
    let (_, history) = send(app.get(&key, &format!("/v1/messages?user=alice&conversation_id={conversation_id}"))).await;
    assert_eq!(history["data"][0]["answer"], streamed, "the partial answer is stored");
}

#[tokio::test]
async fn stop_needs_a_user_and_a_chat_app() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    assert_error(
        &send(app.post(&key, &format!("/v1/chat-messages/{}/stop", unknown_id()), json!({}))).await,
        400,
        "invalid_param",
    );
    let completion =
        app.create_app(colloquy_core::domain::AppMode::Completion, colloquy_core::domain::AppConfig::default()).await;
    let body =
        send(app.post(&completion, &format!("/v1/chat-messages/{}/stop", unknown_id()), json!({"user": "u"}))).await;
    assert_error(&body, 400, "not_chat_app");
}
