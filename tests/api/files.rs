use colloquy_tests::*;
use reqwest::multipart::{Form, Part};
use serde_json::json;
use shared::domain::{AppConfig, AppMode};

fn form(user: Option<&str>, name: &str, mime: &str, bytes: Vec<u8>) -> Form {
    let part = Part::bytes(bytes).file_name(name.to_owned()).mime_str(mime).unwrap();
    let form = Form::new().part("file", part);
    match user {
        Some(user) => form.text("user", user.to_owned()),
        None => form,
    }
}

async fn upload(app: &TestApp, key: &TestKey, form: Form) -> (u16, serde_json::Value) {
    send(app.client.post(app.url("/v1/files/upload")).bearer_auth(&key.key).multipart(form)).await
}

fn uploads_config() -> AppConfig {
    AppConfig::from_json(r#"{"file_upload": {"image": {"enabled": true, "number_limits": 3, "transfer_methods": ["local_file", "remote_url"]}}}"#)
        .unwrap()
}

#[tokio::test]
async fn upload_answers_201_with_difys_fields_and_preview_serves_the_bytes() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let bytes: Vec<u8> = (0..2000u32).map(|i| (i % 256) as u8).collect();
    let (status, body) = upload(&app, &key, form(Some("alice"), "photo.png", "image/png", bytes.clone())).await;
    assert_eq!(status, 201, "{body}");
    let alice = app.end_user(&key, "alice").await;
    assert_eq!(body["name"], "photo.png");
    assert_eq!(
        (body["size"].as_u64(), body["extension"].as_str(), body["mime_type"].as_str()),
        (Some(2000), Some("png"), Some("image/png"))
    );
    assert_eq!(body["created_by"], alice.id.to_string());
    assert_eq!(body["created_at"], T0);
    for key_name in ["preview_url", "original_url", "user_id", "tenant_id", "conversation_id", "file_key"] {
        assert!(body.get(key_name).is_some_and(serde_json::Value::is_null), "{key_name}");
    }
    // The preview route locally, a presigned URL on S3: either way it serves the bytes.
    let source = body["source_url"].as_str().unwrap();
    let mut fetch = app.client.get(source);
    if source.starts_with(&app.base) {
        assert!(source.contains(&format!("/v1/files/{}/preview", body["id"].as_str().unwrap())), "{source}");
        fetch = fetch.bearer_auth(&key.key);
    }
    assert_eq!(fetch.send().await.unwrap().bytes().await.unwrap().to_vec(), bytes);

    let id = body["id"].as_str().unwrap();
    let response = app.get(&key, &format!("/v1/files/{id}/preview?user=alice")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.headers()["cache-control"], "public, max-age=3600");
    assert_eq!(response.bytes().await.unwrap().to_vec(), bytes);

    let ranged = app
        .get(&key, &format!("/v1/files/{id}/preview?user=alice"))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.headers()["content-range"], "bytes 10-19/2000");
    assert_eq!(ranged.bytes().await.unwrap().to_vec(), bytes[10..20].to_vec());
    let beyond = app
        .get(&key, &format!("/v1/files/{id}/preview?user=alice"))
        .header("range", "bytes=5000-")
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), 416);
    assert_eq!(beyond.headers()["content-range"], "bytes */2000");

    let attached =
        app.get(&key, &format!("/v1/files/{id}/preview?user=alice&as_attachment=true")).send().await.unwrap();
    assert_eq!(attached.headers()["content-type"], "application/octet-stream");
    assert_eq!(attached.headers()["content-disposition"], "attachment; filename*=UTF-8''photo.png");
}

#[tokio::test]
async fn only_the_owner_may_preview() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let other_app = app.chat_app().await;
    let (_, body) = upload(&app, &key, form(Some("alice"), "a.txt", "text/plain", b"secret".to_vec())).await;
    let id = body["id"].as_str().unwrap();
    for (k, query) in [(&key, "user=bob"), (&key, ""), (&other_app, "user=alice")] {
        let answer = send(app.get(k, &format!("/v1/files/{id}/preview?{query}"))).await;
        assert_error(&answer, 404, "file_not_found");
    }
    assert_error(
        &send(app.get(&key, &format!("/v1/files/{}/preview?user=alice", unknown_id()))).await,
        404,
        "file_not_found",
    );
    assert_error(&send(app.get(&key, "/v1/files/nope/preview")).await, 404, "not_found");
    // No user means the shared DEFAULT-USER, whose uploads it may preview.
    let (_, shared_file) = upload(&app, &key, form(None, "b.txt", "text/plain", b"open".to_vec())).await;
    let response =
        app.get(&key, &format!("/v1/files/{}/preview", shared_file["id"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "open");
}

#[tokio::test]
async fn upload_errors() {
    let app = spawn_app().await;
    let key =
        app.create_app(AppMode::Chat, AppConfig::from_json(r#"{"file_size_limits": {"document": 1}}"#).unwrap()).await;
    let no_file =
        app.client.post(app.url("/v1/files/upload")).bearer_auth(&key.key).multipart(Form::new().text("user", "u"));
    assert_error(&send(no_file).await, 400, "no_file_uploaded");
    let json_body = app.post(&key, "/v1/files/upload", json!({"user": "u"}));
    assert_error(&send(json_body).await, 400, "no_file_uploaded");
    let two = Form::new()
        .part("file", Part::bytes(b"a".to_vec()).file_name("a.txt").mime_str("text/plain").unwrap())
        .part("other", Part::bytes(b"b".to_vec()).file_name("b.txt").mime_str("text/plain").unwrap());
    assert_error(&upload(&app, &key, two).await, 400, "too_many_files");
    assert_error(
        &upload(&app, &key, form(Some("u"), "run.exe", "application/octet-stream", b"MZ".to_vec())).await,
        415,
        "unsupported_file_type",
    );
    assert_error(
        &upload(&app, &key, form(Some("u"), "a/b.txt", "text/plain", b"x".to_vec())).await,
        400,
        "invalid_param",
    );
    let big = vec![b'x'; 1024 * 1024 + 1];
    assert_error(&upload(&app, &key, form(Some("u"), "big.txt", "text/plain", big)).await, 413, "file_too_large");
    let fine = vec![b'x'; 1024 * 1024];
    assert_eq!(upload(&app, &key, form(Some("u"), "fits.txt", "text/plain", fine)).await.0, 201);
}

#[tokio::test]
async fn uploads_attach_to_chat_messages_with_working_urls() {
    let app = spawn_app().await;
    let key = app.create_app(AppMode::Chat, uploads_config()).await;
    let (_, file) = upload(&app, &key, form(Some("alice"), "cat.png", "image/png", b"PNGDATA".to_vec())).await;
    let files = json!([{"type": "image", "transfer_method": "local_file", "upload_file_id": file["id"]}]);
    let (status, answer) = send(app.post(
        &key,
        "/v1/chat-messages",
        json!({"inputs": {}, "query": "what is it", "user": "alice", "files": files}),
    ))
    .await;
    assert_eq!(status, 200, "{answer}");
    let (_, history) = send(app.get(
        &key,
        &format!("/v1/messages?user=alice&conversation_id={}", answer["conversation_id"].as_str().unwrap()),
    ))
    .await;
    let attached = &history["data"][0]["message_files"][0];
    assert_eq!(
        (attached["upload_file_id"].as_str(), attached["type"].as_str(), attached["filename"].as_str()),
        (file["id"].as_str(), Some("image"), Some("cat.png"))
    );
    let url = attached["url"].as_str().unwrap();
    let mut fetch = app.client.get(url);
    if url.starts_with(&app.base) {
        fetch = fetch.bearer_auth(&key.key);
    }
    let fetched = fetch.send().await.unwrap();
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), b"PNGDATA".to_vec());

    // Someone else's upload cannot be attached.
    let foreign = json!([{"type": "image", "transfer_method": "local_file", "upload_file_id": file["id"]}]);
    let body = json!({"inputs": {}, "query": "x", "user": "bob", "files": foreign});
    assert_error(&send(app.post(&key, "/v1/chat-messages", body)).await, 404, "file_not_found");
}
