use colloquy_core::domain::{AppConfig, AppMode};
use colloquy_tests::*;
use reqwest::multipart::{Form, Part};
use serde_json::json;

pub(crate) fn form(user: Option<&str>, name: &str, mime: &str, bytes: Vec<u8>) -> Form {
    let part = Part::bytes(bytes).file_name(name.to_owned()).mime_str(mime).unwrap();
    let form = Form::new().part("file", part);
    match user {
        Some(user) => form.text("user", user.to_owned()),
        None => form,
    }
}

pub(crate) async fn upload(app: &TestApp, key: &TestKey, form: Form) -> (u16, serde_json::Value) {
    send(app.client.post(app.url("/v1/files/upload")).bearer_auth(&key.key).multipart(form)).await
}

pub(crate) fn uploads_config() -> AppConfig {
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
    assert_eq!(response.headers()["cache-control"], "private, max-age=3600");
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
    // Names Windows opens as `a.exe`, in any case.
    for name in ["a.exe.", "a.EXE", "a.exe ", "a.exe::$DATA", "a.Exe. ."] {
        let answer = upload(&app, &key, form(Some("u"), name, "application/octet-stream", b"MZ".to_vec())).await;
        assert_error(&answer, 415, "unsupported_file_type");
        let by_url = app.post(
            &key,
            "/v1/files/upload-url",
            json!({"name": name, "size": 2, "mime_type": "application/octet-stream", "user": "u"}),
        );
        assert_error(&send(by_url).await, 415, "unsupported_file_type");
    }
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
    assert_eq!(fetched.headers()["content-type"], "image/png");
    assert_eq!(fetched.headers()["content-disposition"], "inline; filename*=UTF-8''cat.png");
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), b"PNGDATA".to_vec());

    // Someone else's upload cannot be attached.
    let foreign = json!([{"type": "image", "transfer_method": "local_file", "upload_file_id": file["id"]}]);
    let body = json!({"inputs": {}, "query": "x", "user": "bob", "files": foreign});
    assert_error(&send(app.post(&key, "/v1/chat-messages", body)).await, 404, "file_not_found");
}

/// A query parameter of a URL, decoded.
fn url_query(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn uploads_that_could_run_script_are_only_ever_downloads() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let script = b"<script>alert(document.domain)</script>".to_vec();
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec();
    let xhtml = br#"<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>"#.to_vec();
    let xml = br#"<?xml version="1.0"?><x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>"#.to_vec();
    // (name, declared type, bytes, the type it may be shown inline with)
    let cases: [(&str, &str, Vec<u8>, Option<&str>); 10] = [
        ("page.html", "text/html", script.clone(), None),
        ("image.svg", "image/svg+xml", svg, None),
        ("page.xhtml", "application/xhtml+xml", xhtml, None),
        ("code.js", "text/javascript", b"alert(1)".to_vec(), None),
        ("data.xml", "text/xml", xml, None),
        ("photo.png", "text/html", script.clone(), None),
        ("paper.pdf", "application/pdf", b"%PDF-1.4 /JavaScript".to_vec(), None),
        ("photo.png", "image/png", b"\x89PNG\r\n\x1a\nrest".to_vec(), Some("image/png")),
        ("song.mp3", "audio/mpeg", b"ID3fake".to_vec(), Some("audio/mpeg")),
        ("notes.txt", "text/plain", script, Some("text/plain; charset=utf-8")),
    ];
    for (name, declared, bytes, inline) in cases {
        let (status, file) = upload(&app, &key, form(Some("alice"), name, declared, bytes.clone())).await;
        assert_eq!(status, 201, "{name}: {file}");
        let (content_type, disposition) = match inline {
            Some(inline) => (inline, format!("inline; filename*=UTF-8''{name}")),
            None => ("application/octet-stream", format!("attachment; filename*=UTF-8''{name}")),
        };
        let what = format!("{name} declared {declared}");

        let id = file["id"].as_str().unwrap();
        let response = app.get(&key, &format!("/v1/files/{id}/preview?user=alice")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{what}");
        let headers = response.headers().clone();
        assert_eq!(header(&headers, "content-type"), content_type, "{what}");
        assert_eq!(header(&headers, "content-disposition"), disposition, "{what}");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff", "{what}");
        assert_eq!(header(&headers, "content-security-policy"), "sandbox", "{what}");
        assert_eq!(header(&headers, "cache-control"), "private, max-age=3600", "{what}");
        assert_eq!(response.bytes().await.unwrap().to_vec(), bytes, "{what}");

        let attached =
            app.get(&key, &format!("/v1/files/{id}/preview?user=alice&as_attachment=1")).send().await.unwrap();
        assert_eq!(header(attached.headers(), "content-type"), "application/octet-stream", "{what}");
        assert_eq!(
            header(attached.headers(), "content-disposition"),
            format!("attachment; filename*=UTF-8''{name}"),
            "{what}"
        );

        // Where clients fetch the file directly: the preview route locally; on S3 a presigned
        // URL whose signed response overrides replace the type the object was stored with.
        let source = file["source_url"].as_str().unwrap();
        assert_eq!(source.starts_with(&app.base), !testing_on_dynamodb(), "{source}");
        let mut fetch = app.client.get(source);
        if source.starts_with(&app.base) {
            fetch = fetch.bearer_auth(&key.key);
        } else {
            assert_eq!(url_query(source, "response-content-type").as_deref(), Some(content_type), "{source}");
            assert_eq!(url_query(source, "response-content-disposition"), Some(disposition.clone()), "{source}");
            assert_eq!(url_query(source, "response-cache-control").as_deref(), Some("private, max-age=3600"));
        }
        let fetched = fetch.send().await.unwrap();
        assert_eq!(fetched.status(), 200, "{what}");
        assert_eq!(header(fetched.headers(), "content-type"), content_type, "{what} from {source}");
        assert_eq!(header(fetched.headers(), "content-disposition"), disposition, "{what} from {source}");
        assert_eq!(header(fetched.headers(), "cache-control"), "private, max-age=3600", "{what} from {source}");
        assert_eq!(fetched.bytes().await.unwrap().to_vec(), bytes, "{what} from {source}");
    }
}

#[tokio::test]
async fn unreadable_ranges_get_the_whole_file_and_ranges_past_the_end_get_416() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let bytes: Vec<u8> = (0..100u8).collect();
    let (_, file) = upload(&app, &key, form(Some("alice"), "clip.mp3", "audio/mpeg", bytes.clone())).await;
    let path = format!("/v1/files/{}/preview?user=alice", file["id"].as_str().unwrap());
    let ranged = |range: &str| app.get(&key, &path).header("range", range).send();

    for range in ["bytes=a-b", "bytes=", "bytes=-", "bytes=5", "bytes=9-2", "bytes=+1-2", "items=0-1", "bytes=0-1,4-5"]
    {
        let response = ranged(range).await.unwrap();
        assert_eq!(response.status(), 200, "{range}");
        assert!(response.headers().get("content-range").is_none(), "{range}");
        assert_eq!(response.bytes().await.unwrap().to_vec(), bytes, "{range}");
    }
    for range in ["bytes=100-", "bytes=500-600", "bytes=-0", "bytes=99999999999999999999999-"] {
        let response = ranged(range).await.unwrap();
        assert_eq!(response.status(), 416, "{range}");
        assert_eq!(header(response.headers(), "content-range"), "bytes */100", "{range}");
    }
    let tail = ranged("bytes=90-200").await.unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(header(tail.headers(), "content-range"), "bytes 90-99/100");
    assert_eq!(tail.bytes().await.unwrap().to_vec(), bytes[90..].to_vec());
    let suffix = ranged("bytes=-10").await.unwrap();
    assert_eq!(header(suffix.headers(), "content-range"), "bytes 90-99/100");
}
