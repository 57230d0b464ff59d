//! Every function binary, run as Lambda runs it (a Runtime API, real API Gateway v2 and
//! DynamoDB stream events), against DynamoDB Local and moto, answers like the local server.

mod openapi;
mod openapi_views;
mod template;

use colloquy_core::domain::{AppConfig, AppMode, ValueType};
use colloquy_core::ports::Store;
use colloquy_tests::lambda::{Function, buffered_response, http_event, streamed_response};
use colloquy_tests::*;
use serde_json::{Value, json};

async fn function(name: &str) -> Function {
    Function::start(name, &aws::function_env().await).await
}

/// Sends a request to a function and reads the JSON (or empty) answer.
async fn call(f: &Function, key: &TestKey, method: &str, path: &str, query: &str, body: Option<Value>) -> (u16, Value) {
    let auth = format!("Bearer {}", key.key);
    let body = body.map(|b| b.to_string());
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let invocation =
        f.invoke(http_event(method, path, query, &headers, body.as_deref().map(str::as_bytes), false)).await;
    let (status, _, bytes) = buffered_response(&invocation);
    let json = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("a JSON body") };
    (status, json)
}

/// Sends the same request to the local server.
async fn local(
    app: &TestApp,
    key: &TestKey,
    method: &str,
    path: &str,
    query: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = if query.is_empty() { app.url(path) } else { app.url(&format!("{path}?{query}")) };
    let mut request = app.client.request(method.parse().unwrap(), url).bearer_auth(&key.key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    send(request).await
}

/// Removes what legitimately differs between two runs of a write (new ids, clocks, timing).
fn stable(mut value: Value) -> Value {
    if let Some(map) = value.as_object_mut() {
        for volatile in [
            "id",
            "message_id",
            "message_ids",
            "conversation_id",
            "task_id",
            "job_id",
            "created_at",
            "updated_at",
            "latency",
        ] {
            map.remove(volatile);
        }
        for child in map.values_mut() {
            *child = stable(child.take());
        }
    } else if let Some(items) = value.as_array_mut() {
        for item in items {
            *item = stable(item.take());
        }
    }
    value
}

#[tokio::test]
async fn every_route_answers_as_the_local_server_does() {
    let store = test_store_on_dynamodb().await;
    let app = spawn_app_on(store).await;
    let config =
        AppConfig::from_json(r#"{"suggested_questions_after_answer": {"enabled": true}, "opening_statement": "Hi"}"#)
            .unwrap();
    let key = app.create_app(AppMode::AdvancedChat, config).await;
    let conversation = app.seed_conversation(&key, "u", "first").await;
    let second = app.seed_conversation(&key, "u", "second").await;
    let message = app.seed_message(&conversation, "What is Rust?").await;
    let other_message = app.seed_message(&conversation, "And Go?").await;
    let variable = app.seed_variable(&conversation, "memory", ValueType::Object, json!({"a": 1})).await;
    send(app.post(&key, &format!("/v1/messages/{}/feedbacks", message.id), json!({"rating": "like", "user": "u"})))
        .await;
    send(app.post(&key, "/v1/apps/annotations", json!({"question": "Opening hours?", "answer": "9 to 5"}))).await;
    let (_, job) = local(
        &app,
        &key,
        "POST",
        "/v1/apps/annotation-reply/enable",
        "",
        Some(json!({"score_threshold": 0.9, "embedding_provider_name": "echo", "embedding_model_name": "lexical"})),
    )
    .await;

    let conversation_messages = format!("user=u&conversation_id={}", conversation.id);
    let reads: Vec<(&str, &str, String, String)> = vec![
        ("app-info", "GET", "/v1/info".into(), String::new()),
        ("app-parameters", "GET", "/v1/parameters".into(), "user=u".into()),
        ("app-meta", "GET", "/v1/meta".into(), String::new()),
        ("app-site", "GET", "/v1/site".into(), String::new()),
        ("list-conversations", "GET", "/v1/conversations".into(), "user=u&limit=1".into()),
        ("list-messages", "GET", "/v1/messages".into(), conversation_messages),
        (
            "list-conversation-variables",
            "GET",
            format!("/v1/conversations/{}/variables", conversation.id),
            "user=u".into(),
        ),
        ("get-conversation", "GET", format!("/v1/conversations/{}", conversation.id), "user=u".into()),
        ("get-conversation", "GET", format!("/v1/conversations/{}", unknown_id()), "user=u".into()),
        ("list-conversations", "GET", "/v1/conversations".into(), "user=u&pinned=true".into()),
        ("app-feedbacks", "GET", "/v1/app/feedbacks".into(), "page=1&limit=10".into()),
        ("list-annotations", "GET", "/v1/apps/annotations".into(), "keyword=hours".into()),
        ("suggested-questions", "GET", format!("/v1/messages/{}/suggested", message.id), "user=u".into()),
        (
            "annotation-reply-status",
            "GET",
            format!("/v1/apps/annotation-reply/enable/status/{}", job["job_id"].as_str().unwrap()),
            String::new(),
        ),
        // Errors answer alike too.
        ("list-messages", "GET", "/v1/messages".into(), format!("user=u&conversation_id={}", unknown_id())),
        ("list-conversations", "GET", "/v1/conversations".into(), "user=u&limit=0".into()),
    ];
    for (name, method, path, query) in &reads {
        let f = function(name).await;
        let expected = local(&app, &key, method, path, query, None).await;
        let answered = call(&f, &key, method, path, query, None).await;
        assert_eq!(answered, expected, "{name} {path}?{query}");
    }
    // The operator routes, with an operator key (and refused to the app key, as locally).
    let operator = app.operator_key(&key).await;
    let operator_reads: Vec<(&str, String, String)> = vec![
        ("app-conversations", "/v1/app/conversations".into(), "limit=1".into()),
        ("app-conversations", "/v1/app/conversations".into(), "user=u&rating=like".into()),
        ("app-conversation-messages", format!("/v1/app/conversations/{}/messages", conversation.id), "limit=5".into()),
        ("app-conversation-messages", format!("/v1/app/conversations/{}/messages", unknown_id()), String::new()),
        // With a range: the functions run on the system's clock, the local server on the test's.
        ("app-stats", "/v1/app/stats".into(), format!("granularity=hour&start={}&end={}", T0 - 3_600, T0 + 7_200)),
        ("app-stats", "/v1/app/stats".into(), "granularity=week".into()),
        ("app-export", format!("/v1/app/exports/{}", unknown_id()), String::new()),
        ("download-export", format!("/v1/app/exports/{}/download", unknown_id()), String::new()),
    ];
    for (name, path, query) in &operator_reads {
        let f = function(name).await;
        let expected = local(&app, &operator, "GET", path, query, None).await;
        assert_ne!(expected.0, 403, "{name}");
        assert_eq!(call(&f, &operator, "GET", path, query, None).await, expected, "{name} {path}?{query}");
        let refused = call(&f, &key, "GET", path, query, None).await;
        assert_eq!((refused.0, refused.1["code"].as_str()), (403, Some("forbidden")), "{name}: app keys are refused");
    }

    let writes: Vec<(&str, &str, String, Value, String)> = vec![
        (
            "rename-conversation",
            "POST",
            format!("/v1/conversations/{}/name", second.id),
            json!({"name": "Renamed", "user": "u"}),
            "name".into(),
        ),
        (
            "update-conversation-variable",
            "PUT",
            format!("/v1/conversations/{}/variables/{}", conversation.id, variable.id),
            json!({"value": {"b": [1, 2]}, "user": "u"}),
            "value".into(),
        ),
        (
            "create-conversation",
            "POST",
            "/v1/conversations".into(),
            json!({"user": "u", "name": "Hand-off", "metadata": {"via": "lambda"}}),
            "metadata".into(),
        ),
        (
            "add-messages",
            "POST",
            format!("/v1/conversations/{}/messages", conversation.id),
            json!({"user": "u", "items": [{"query": "Human here?", "answer": "Yes."}]}),
            "message_ids".into(),
        ),
        (
            "fork-conversation",
            "POST",
            format!("/v1/conversations/{}/fork", conversation.id),
            json!({"user": "u", "name": "Forked"}),
            "metadata".into(),
        ),
        (
            "update-conversation",
            "PATCH",
            format!("/v1/conversations/{}", second.id),
            json!({"user": "u", "pinned": true, "metadata": {"team": "a"}}),
            "pinned".into(),
        ),
        (
            "message-feedback",
            "POST",
            format!("/v1/messages/{}/feedbacks", other_message.id),
            json!({"rating": "dislike", "user": "u"}),
            "result".into(),
        ),
        (
            "chat-messages",
            "POST",
            "/v1/chat-messages".into(),
            json!({"inputs": {}, "query": "Hello there", "user": "u"}),
            "answer".into(),
        ),
        (
            "regenerate-message",
            "POST",
            format!("/v1/messages/{}/regenerate", message.id),
            json!({"user": "u", "response_mode": "blocking"}),
            "answer".into(),
        ),
        (
            "stop-chat-message",
            "POST",
            format!("/v1/chat-messages/{}/stop", unknown_id()),
            json!({"user": "u"}),
            "result".into(),
        ),
        (
            "create-annotation",
            "POST",
            "/v1/apps/annotations".into(),
            json!({"question": "q", "answer": "a"}),
            "question".into(),
        ),
        (
            "annotation-reply",
            "POST",
            "/v1/apps/annotation-reply/disable".into(),
            json!({"score_threshold": 0.9, "embedding_provider_name": "echo", "embedding_model_name": "lexical"}),
            "job_status".into(),
        ),
    ];
    for (name, method, path, body, field) in &writes {
        let f = function(name).await;
        let expected = local(&app, &key, method, path, "", Some(body.clone())).await;
        let answered = call(&f, &key, method, path, "", Some(body.clone())).await;
        assert_eq!(answered.0, expected.0, "{name}: {}", answered.1);
        assert_eq!(stable(answered.1.clone()), stable(expected.1.clone()), "{name}");
        assert!(answered.1.get(field.as_str()).is_some(), "{name} answers {field}");
    }

    let created = create_annotation(&app, &key).await;
    let f = function("update-annotation").await;
    let path = format!("/v1/apps/annotations/{created}");
    let (status, body) = call(&f, &key, "PUT", &path, "", Some(json!({"question": "new q", "answer": "new a"}))).await;
    assert_eq!((status, body["question"].as_str()), (200, Some("new q")));
    let f = function("delete-annotation").await;
    assert_eq!(call(&f, &key, "DELETE", &path, "", None).await, (204, Value::Null));
    assert_eq!(call(&f, &key, "DELETE", &path, "", None).await.0, 404);

    let f = function("delete-message").await;
    let path = format!("/v1/messages/{}", other_message.id);
    assert_eq!(call(&f, &key, "DELETE", &path, "", Some(json!({"user": "u"}))).await, (204, Value::Null));
    assert_eq!(call(&f, &key, "DELETE", &path, "", Some(json!({"user": "u"}))).await.0, 404);

    let f = function("delete-conversation").await;
    let (status, body) =
        call(&f, &key, "DELETE", &format!("/v1/conversations/{}", second.id), "", Some(json!({"user": "u"}))).await;
    assert_eq!((status, body), (204, Value::Null));
    let (_, list) = local(&app, &key, "GET", "/v1/conversations", "user=u", None).await;
    assert!(
        list["data"].as_array().unwrap().iter().all(|c| c["id"] != second.id.to_string()),
        "deleted through Lambda"
    );
}

async fn create_annotation(app: &TestApp, key: &TestKey) -> String {
    let (_, body) = send(app.post(key, "/v1/apps/annotations", json!({"question": "tmp", "answer": "tmp"}))).await;
    body["id"].as_str().unwrap().to_owned()
}

async fn test_store_on_dynamodb() -> std::sync::Arc<dyn Store> {
    std::sync::Arc::new(aws::dynamo_store().await)
}

#[tokio::test]
async fn a_function_serves_its_own_route_and_checks_keys() {
    let app = spawn_app_on(test_store_on_dynamodb().await).await;
    let key = app.chat_app().await;
    let f = function("app-info").await;
    let other_route = call(&f, &key, "GET", "/v1/site", "", None).await;
    assert_error(&other_route, 404, "not_found");
    let invocation = f.invoke(http_event("GET", "/v1/info", "", &[], None, false)).await;
    let (status, headers, body) = buffered_response(&invocation);
    assert_eq!(status, 401);
    assert_eq!(headers.get("www-authenticate").map(String::as_str), Some("Bearer realm=\"api\""));
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["code"], "unauthorized");
    let f = function("delete-conversation").await;
    assert_error(&call(&f, &key, "DELETE", "/v1/conversations/not-a-uuid", "", None).await, 404, "not_found");
}

#[tokio::test]
async fn the_streaming_function_streams_server_sent_events() {
    let app = spawn_app_on(test_store_on_dynamodb().await).await;
    let key = app.chat_app().await;
    let f = function("chat-messages-stream").await;
    let auth = format!("Bearer {}", key.key);
    let body = json!({"inputs": {}, "query": "stream over a function url", "user": "u", "response_mode": "streaming"})
        .to_string();
    let event = http_event(
        "POST",
        "/v1/chat-messages",
        "",
        &[("authorization", &auth), ("content-type", "application/json")],
        Some(body.as_bytes()),
        false,
    );
    let invocation = f.invoke(event).await;
    let (status, prelude, bytes) = streamed_response(&invocation);
    assert_eq!(status, 200);
    assert_eq!(prelude["headers"]["content-type"], "text/event-stream");
    let text = String::from_utf8(bytes).unwrap();
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|frame| frame.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.last().unwrap()["event"], "message_end");
    let answer: String =
        events.iter().filter(|e| e["event"] == "message").map(|e| e["answer"].as_str().unwrap()).collect();
    assert!(answer.starts_with("Echo: stream over a function url"), "{answer}");
    let (_, history) =
        send(app.get(
            &key,
            &format!("/v1/messages?user=u&conversation_id={}", events[0]["conversation_id"].as_str().unwrap()),
        ))
        .await;
    assert_eq!(history["data"][0]["answer"], answer);

    // A blocking request through the same function comes back whole.
    let body = json!({"inputs": {}, "query": "blocking", "user": "u"}).to_string();
    let event = http_event(
        "POST",
        "/v1/chat-messages",
        "",
        &[("authorization", &auth), ("content-type", "application/json")],
        Some(body.as_bytes()),
        false,
    );
    let (status, _, bytes) = streamed_response(&f.invoke(event).await);
    assert_eq!(status, 200);
    assert!(serde_json::from_slice::<Value>(&bytes).unwrap()["answer"].as_str().unwrap().starts_with("Echo: blocking"));
}

/// A DynamoDB stream record of `event` (`INSERT`, `MODIFY`) whose new image is `image`.
fn stream_record(event: &str, sequence: &str, image: Value) -> Value {
    json!({
        "eventID": sequence, "eventName": event, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_795_700_000, "Keys": {"PK": image["PK"], "SK": image["SK"]},
            "NewImage": image, "SequenceNumber": sequence, "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    })
}

#[tokio::test]
async fn the_purge_function_consumes_tombstones_from_the_table_stream() {
    let store = aws::dynamo_store().await;
    let shared_store: std::sync::Arc<dyn Store> = std::sync::Arc::new(store.clone());
    let app = spawn_app_on(shared_store).await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "u", "doomed").await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(app.seed_message(&conversation, &format!("m{i}")).await.id);
    }
    use colloquy_core::ports::ConversationStore;
    assert!(store.delete_conversation(conversation.owner, conversation.id).await.unwrap());

    let image = json!({
        "PK": {"S": format!("OWN#{}#{}", conversation.owner.app_id, conversation.owner.end_user_id)},
        "SK": {"S": format!("CONV#{}", conversation.id)},
        "id": {"S": conversation.id.to_string()},
        "app_id": {"S": conversation.owner.app_id.to_string()},
        "end_user_id": {"S": conversation.owner.end_user_id.to_string()},
        "deleted": {"BOOL": true},
    });
    let record = |sequence: &str, image: Value| stream_record("MODIFY", sequence, image);
    let unrelated = json!({"PK": {"S": "APPS"}, "SK": {"S": "APP#x"}, "name": {"S": "x"}});
    let event = json!({"Records": [record("100", image.clone()), record("101", unrelated), record("102", image)]});
    let f = function("purge-conversation").await;
    let invocation = f.invoke(event).await;
    assert!(!invocation.failed, "{}", String::from_utf8_lossy(&invocation.body));
    let answer: Value = serde_json::from_slice(&invocation.body).unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "duplicates and unrelated records are fine");
    assert_eq!(store.conversation_item_count(conversation.owner, conversation.id, &ids).await.unwrap(), 0);
}

#[tokio::test]
async fn the_purge_function_finishes_what_the_ttl_of_an_apps_retention_removed() {
    let store = aws::dynamo_store().await;
    let shared_store: std::sync::Arc<dyn Store> = std::sync::Arc::new(store.clone());
    let app = spawn_app_on(shared_store).await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "u", "expired").await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(app.seed_message(&conversation, &format!("m{i}")).await.id);
    }
    let file_key = format!("files/{}/{}", key.app.id, uuid::Uuid::now_v7());
    let bucket = aws::s3_blobs().await;
    use colloquy_core::ports::BlobStore;
    bucket.put_blob(&file_key, "image/png", bytes::Bytes::from_static(b"png")).await.unwrap();
    let file_id = file_key.rsplit('/').next().unwrap().to_owned();

    // What DynamoDB's TTL does: the item goes, the stream carries its old image.
    let (pk, sk) = (
        format!("OWN#{}#{}", conversation.owner.app_id, conversation.owner.end_user_id),
        format!("CONV#{}", conversation.id),
    );
    let client = aws::dynamo_client(None).await;
    let key_of = |pk: &str, sk: &str| {
        std::collections::HashMap::from([
            ("PK".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(pk.to_owned())),
            ("SK".to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(sk.to_owned())),
        ])
    };
    client.delete_item().table_name(aws::table_name().await).set_key(Some(key_of(&pk, &sk))).send().await.unwrap();
    let removal = |sequence: &str, old: Value| {
        let mut record = stream_record("REMOVE", sequence, old.clone());
        let change = record["dynamodb"].as_object_mut().unwrap();
        change.remove("NewImage");
        change.insert("OldImage".into(), old);
        record["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
        record
    };
    let conversation_image = json!({
        "PK": {"S": pk}, "SK": {"S": sk}, "id": {"S": conversation.id.to_string()},
        "app_id": {"S": conversation.owner.app_id.to_string()},
        "end_user_id": {"S": conversation.owner.end_user_id.to_string()},
        "expires_at": {"N": "1737021600"},
    });
    let file_image = json!({
        "PK": {"S": format!("FILE#{file_id}")}, "SK": {"S": "#FILE"}, "id": {"S": file_id},
        "app_id": {"S": key.app.id.to_string()}, "expires_at": {"N": "1737021600"},
    });
    let event = json!({"Records": [removal("400", conversation_image), removal("401", file_image)]});
    let f = function("purge-conversation").await;
    let invocation = f.invoke(event).await;
    assert!(!invocation.failed, "{}", String::from_utf8_lossy(&invocation.body));
    let answer: Value = serde_json::from_slice(&invocation.body).unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]));
    assert_eq!(store.conversation_item_count(conversation.owner, conversation.id, &ids).await.unwrap(), 0);
    assert_eq!(bucket.count_blobs(&file_key).await.unwrap(), 0, "the expired file's bytes are gone");
}

#[tokio::test]
async fn exports_start_in_one_function_run_in_another_from_the_table_stream_and_download_from_s3() {
    let app = spawn_app_on(test_store_on_dynamodb().await).await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let conversation = app.seed_conversation(&key, "u", "exported").await;
    let mut queries = Vec::new();
    for i in 0..25 {
        queries.push(app.seed_message(&conversation, &format!("m{i}")).await.query);
    }
    app.clock.advance_seconds(1);

    let create = function("create-export").await;
    let (status, job) = call(&create, &operator, "POST", "/v1/app/exports", "", Some(json!({"format": "jsonl"}))).await;
    assert_eq!((status, job["status"].as_str()), (202, Some("pending")), "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/app/exports/{id}");
    let status_function = function("app-export").await;
    let (_, pending) = call(&status_function, &operator, "GET", &path, "", None).await;
    assert_eq!(pending["status"], "pending", "on Lambda the request only stores the job");

    // The table stream's insert of the job, as the export function receives it.
    let image = json!({"PK": {"S": format!("EXPORT#{}", key.app.id)}, "SK": {"S": id}, "status": {"S": "pending"}});
    let record = stream_record("INSERT", "200", image);
    let run = function("run-export").await;
    let invocation = run.invoke(json!({"Records": [record]})).await;
    assert!(!invocation.failed, "{}", String::from_utf8_lossy(&invocation.body));
    let answer: Value = serde_json::from_slice(&invocation.body).unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]));

    let (_, done) = call(&status_function, &operator, "GET", &path, "", None).await;
    assert_eq!((done["status"].as_str(), done["messages"].as_u64()), (Some("done"), Some(25)), "{done}");
    let link = done["download_url"].as_str().unwrap();
    assert!(link.contains("X-Amz-Signature"), "a presigned S3 GET: {link}");
    assert_eq!(reqwest::get(link).await.unwrap().text().await.unwrap().lines().count(), 25);
    let download = function("download-export").await;
    let auth = format!("Bearer {}", operator.key);
    let invocation = download
        .invoke(http_event("GET", &format!("{path}/download"), "", &[("authorization", &auth)], None, false))
        .await;
    let (status, headers, _) = buffered_response(&invocation);
    assert_eq!(status, 302, "a link to S3");
    let file = reqwest::get(&headers["location"]).await.unwrap();
    assert_eq!(file.status(), 200);
    let text = file.text().await.unwrap();
    let exported: Vec<String> =
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["query"].as_str().unwrap().to_owned()).collect();
    assert_eq!(exported, queries);
}

#[tokio::test]
async fn erasures_start_in_one_function_and_run_in_another_from_the_table_stream() {
    let app = spawn_app_on(test_store_on_dynamodb().await).await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    for c in 0..3 {
        let conversation = app.seed_conversation(&key, "ivy", &format!("c{c}")).await;
        for m in 0..4 {
            app.seed_message(&conversation, &format!("m{m}")).await;
        }
    }
    let kept = app.seed_conversation(&key, "jack", "kept").await;
    app.seed_message(&kept, "stays").await;

    let erase = function("erase-end-user").await;
    let (status, job) = call(&erase, &key, "DELETE", "/v1/end-users/ivy", "", None).await;
    assert_eq!((status, job["status"].as_str()), (202, Some("pending")), "{job}");
    assert_eq!((job["conversations"].as_u64(), job["messages"].as_u64()), (Some(3), Some(12)), "hidden: {job}");
    let (_, listed) = local(&app, &key, "GET", "/v1/conversations", "user=ivy", None).await;
    assert_eq!(listed["data"], json!([]), "gone from reads before the answer");
    let id = job["job_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/end-users/ivy/erasures/{id}");
    let status_function = function("end-user-erasure").await;
    let (_, pending) = call(&status_function, &key, "GET", &path, "", None).await;
    assert_eq!(pending["status"], "pending", "on Lambda the request only hides and stores the job");

    // The table stream's insert of the job, as the erasure function receives it.
    let image = json!({"PK": {"S": format!("ERASE#{}", key.app.id)}, "SK": {"S": id}, "status": {"S": "pending"}});
    let run = function("run-erasure").await;
    let invocation = run.invoke(json!({"Records": [stream_record("INSERT", "300", image)]})).await;
    assert!(!invocation.failed, "{}", String::from_utf8_lossy(&invocation.body));
    let answer: Value = serde_json::from_slice(&invocation.body).unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]));
    let (_, done) = call(&status_function, &operator, "GET", &path, "", None).await;
    assert_eq!((done["status"].as_str(), done["conversations"].as_u64()), (Some("done"), Some(3)), "{done}");
    let ivy = vec![colloquy_core::domain::EndUserId::derived(
        key.app.id,
        &colloquy_core::domain::UserRef::parse("ivy").unwrap(),
    )];
    assert_eq!(app.store.inventory(key.app.id, Some(&ivy)).await.unwrap().total(), 0);
    let (_, jack) = local(&app, &key, "GET", "/v1/conversations", "user=jack", None).await;
    assert_eq!(jack["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_end_users_export_leaves_its_function_whole_or_as_a_clear_error() {
    let app = spawn_app_on(test_store_on_dynamodb().await).await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "kim", "small").await;
    app.seed_message(&conversation, "hello").await;
    let export = function("export-end-user").await;
    let (status, document) = call(&export, &key, "GET", "/v1/end-users/kim/export", "", None).await;
    assert_eq!(status, 200, "{document}");
    assert_eq!(document["conversations"][0]["messages"][0]["query"], "hello");
    // Larger than a buffered Lambda response carries: a clear 422, not Lambda's 500.
    let big = app.seed_conversation(&key, "lee", "large").await;
    let long = "x".repeat(100_000);
    for _ in 0..45 {
        app.seed_message(&big, &long).await;
    }
    let (status, error) = call(&export, &key, "GET", "/v1/end-users/lee/export", "", None).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("response_too_large")), "{error}");
}

#[tokio::test]
async fn the_console_function_answers_its_files_with_their_types_and_security_headers() {
    let console = function("console").await;
    for (path, content_type) in [
        ("/console/", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/app.css", "text/css; charset=utf-8"),
    ] {
        let (status, headers, body) =
            buffered_response(&console.invoke(http_event("GET", path, "", &[], None, false)).await);
        assert_eq!((status, headers["content-type"].as_str()), (200, content_type), "{path}");
        assert!(headers["content-security-policy"].contains("script-src 'self'"), "{path}");
        assert_eq!(
            (headers["x-content-type-options"].as_str(), headers["referrer-policy"].as_str()),
            ("nosniff", "no-referrer")
        );
        assert_eq!(headers["x-frame-options"], "DENY");
        let local =
            colloquy_core::console::ASSETS.iter().find(|(name, _, _)| path.ends_with(&format!("/{name}"))).unwrap();
        assert_eq!(body, local.2, "the same bytes as the local server's");
    }
    let (status, headers, _) =
        buffered_response(&console.invoke(http_event("GET", "/console", "", &[], None, false)).await);
    assert_eq!((status, headers["location"].as_str()), (308, "/console/"));
    let (status, _, _) =
        buffered_response(&console.invoke(http_event("GET", "/console/missing.js", "", &[], None, false)).await);
    assert_eq!(status, 404);
}

#[tokio::test]
async fn uploads_arrive_as_base64_multipart_and_previews_leave_as_base64_binary() {
    let app = spawn_app_on(test_store_on_dynamodb().await).await;
    let key = app.chat_app().await;
    let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let boundary = "colloquy-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nalice\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"voice.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let auth = format!("Bearer {}", key.key);
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let headers = [("authorization", auth.as_str()), ("content-type", content_type.as_str())];
    let upload = function("upload-file").await;
    let (status, _, answer) = buffered_response(
        &upload.invoke(http_event("POST", "/v1/files/upload", "", &headers, Some(&body), true)).await,
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    let file: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!((file["size"].as_u64(), file["mime_type"].as_str()), (Some(5000), Some("audio/mpeg")));
    assert!(file["source_url"].as_str().unwrap().starts_with("http"), "a presigned S3 URL");

    let preview = function("preview-file").await;
    let path = format!("/v1/files/{}/preview", file["id"].as_str().unwrap());
    let invocation =
        preview.invoke(http_event("GET", &path, "user=alice", &[("authorization", auth.as_str())], None, false)).await;
    let document: Value = serde_json::from_slice(&invocation.body).unwrap();
    assert_eq!(document["isBase64Encoded"], true, "binary leaves base64-encoded");
    let (status, headers, served) = buffered_response(&invocation);
    assert_eq!((status, headers.get("content-type").map(String::as_str)), (200, Some("audio/mpeg")));
    assert_eq!(served, bytes);
    let range = [("authorization", auth.as_str()), ("range", "bytes=100-199")];
    let (status, headers, part) =
        buffered_response(&preview.invoke(http_event("GET", &path, "user=alice", &range, None, false)).await);
    assert_eq!((status, headers.get("content-range").map(String::as_str)), (206, Some("bytes 100-199/5000")));
    assert_eq!(part, bytes[100..200].to_vec());
    let (status, _, _) = buffered_response(
        &preview.invoke(http_event("GET", &path, "user=bob", &[("authorization", auth.as_str())], None, false)).await,
    );
    assert_eq!(status, 404, "only the owner");

    // An operator reads it through one of its owner's conversations.
    let operator = app.operator_key(&key).await;
    let conversation = app.seed_conversation(&key, "alice", "with a file").await;
    let operator_preview = function("app-file-preview").await;
    let path = format!("/v1/app/conversations/{}/files/{}/preview", conversation.id, file["id"].as_str().unwrap());
    let operator_auth = format!("Bearer {}", operator.key);
    let (status, headers, served) = buffered_response(
        &operator_preview.invoke(http_event("GET", &path, "", &[("authorization", &operator_auth)], None, false)).await,
    );
    assert_eq!((status, headers.get("content-type").map(String::as_str)), (200, Some("audio/mpeg")));
    assert_eq!(served, bytes);
    let (status, _, _) = buffered_response(
        &operator_preview.invoke(http_event("GET", &path, "", &[("authorization", auth.as_str())], None, false)).await,
    );
    assert_eq!(status, 403, "operator keys only");
}

/// A multipart body with a `user` field and one `file` part.
fn multipart(boundary: &str, file_name: &str, mime: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nalice\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {mime}\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn audio_functions_speak_with_polly_and_listen_with_transcribe() {
    let app = spawn_app_on(test_store_on_dynamodb().await).await;
    let config = AppConfig::from_json(
        r#"{"text_to_speech": {"enabled": true, "voice": "Joanna"}, "speech_to_text": {"enabled": true}}"#,
    )
    .unwrap();
    let key = app.create_app(AppMode::Chat, config).await;
    let auth = format!("Bearer {}", key.key);

    // Text to audio: MP3 leaves base64-encoded. moto's Polly answers 8 zero bytes per call, so a
    // text over Polly's 3,000 characters shows as two calls joined.
    let speak = function("text-to-audio").await;
    let json_headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let speak_event = |body: Value| {
        http_event("POST", "/v1/text-to-audio", "", &json_headers, Some(body.to_string().as_bytes()), false)
    };
    let (status, headers, audio) =
        buffered_response(&speak.invoke(speak_event(json!({"text": "Hello from Lambda.", "user": "alice"}))).await);
    assert_eq!((status, headers.get("content-type").map(String::as_str)), (200, Some("audio/mpeg")));
    assert_eq!(audio, vec![0u8; 8]);
    let long = "A sentence of some length for Polly to read aloud. ".repeat(80);
    let invocation = speak.invoke(speak_event(json!({"text": long, "user": "alice"}))).await;
    let document: Value = serde_json::from_slice(&invocation.body).unwrap();
    assert_eq!(document["isBase64Encoded"], true);
    assert_eq!(buffered_response(&invocation).2, vec![0u8; 16]);
    let unknown_voice = json!({"text": "Hi", "voice": "Nobody", "user": "alice"});
    let (status, _, body) = buffered_response(&speak.invoke(speak_event(unknown_voice)).await);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));

    // An operator hears any answer of the app through its conversation.
    let operator = app.operator_key(&key).await;
    let conversation = app.seed_conversation(&key, "alice", "spoken").await;
    let message = app.seed_message(&conversation, "weather").await;
    let path = format!("/v1/app/conversations/{}/messages/{}/audio", conversation.id, message.id);
    let hear = function("app-message-audio").await;
    let operator_auth = format!("Bearer {}", operator.key);
    let (status, headers, audio) = buffered_response(
        &hear.invoke(http_event("GET", &path, "", &[("authorization", &operator_auth)], None, false)).await,
    );
    assert_eq!((status, headers.get("content-type").map(String::as_str)), (200, Some("audio/mpeg")));
    assert_eq!(audio, vec![0u8; 8]);

    // Audio to text: a base64 multipart event, a Transcribe job on moto, the stand-in's transcript.
    let _stand_in = aws::stand_in_transcripts("hello from the recording").await;
    let listen = function("audio-to-text").await;
    let boundary = "colloquy-audio";
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let headers = [("authorization", auth.as_str()), ("content-type", content_type.as_str())];
    let body = multipart(boundary, "memo.wav", "audio/wav", b"RIFF....WAVEfake");
    let (status, _, answer) = buffered_response(
        &listen.invoke(http_event("POST", "/v1/audio-to-text", "", &headers, Some(&body), true)).await,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(serde_json::from_slice::<Value>(&answer).unwrap(), json!({"text": "hello from the recording"}));
    let body = multipart(boundary, "memo.ogg", "audio/ogg", b"OggS");
    let (status, _, _) = buffered_response(
        &listen.invoke(http_event("POST", "/v1/audio-to-text", "", &headers, Some(&body), true)).await,
    );
    assert_eq!(status, 415);

    // The large-file path: a presigned PUT straight to S3, then audio-to-text by file id.
    let upload_url = function("create-upload-url").await;
    let request = json!({"name": "long.mp3", "size": 4, "mime_type": "audio/mpeg", "user": "alice"});
    let (status, file) = call(&upload_url, &key, "POST", "/v1/files/upload-url", "", Some(request)).await;
    assert_eq!(status, 201, "{file}");
    let put = reqwest::Client::new()
        .put(file["upload_url"].as_str().unwrap())
        .header("content-type", "audio/mpeg")
        .body(b"ID3!".to_vec())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let by_id = json!({"upload_file_id": file["id"], "user": "alice"});
    let (status, answer) = call(&listen, &key, "POST", "/v1/audio-to-text", "", Some(by_id)).await;
    assert_eq!((status, answer), (200, json!({"text": "hello from the recording"})));
}
