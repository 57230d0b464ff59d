//! The server's own defences, over raw TCP where a well-behaved client cannot show them:
//! sizes checked before bodies are read, read and idle time-outs, connection and in-flight
//! caps, malformed framing; and CORS and HEAD as Dify's Service API answers them.

use std::time::Duration;

use colloquy::server::ServerLimits;
use colloquy_core::api::Cors;
use colloquy_tests::{TestApp, assert_error, send, spawn_app, spawn_app_with_server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Long enough never to fire by accident in these tests; they only wait for what must happen.
const PATIENCE: Duration = Duration::from_secs(10);

fn short(header: u64, body: u64, idle: u64) -> ServerLimits {
    ServerLimits {
        header_timeout: Duration::from_secs(header),
        body_timeout: Duration::from_secs(body),
        idle_timeout: Duration::from_secs(idle),
        ..ServerLimits::default()
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://")).await.expect("connect")
}

/// Reads one response (headers and a `Content-Length` body), or what came before the
/// connection closed. Panics if nothing complete arrives within [`PATIENCE`].
async fn read_response(stream: &mut TcpStream) -> (u16, String, Value) {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 4096];
    let complete = |raw: &[u8]| -> Option<usize> {
        let text = String::from_utf8_lossy(raw);
        let end = text.find("\r\n\r\n")? + 4;
        let length = text[..end]
            .lines()
            .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        (raw.len() >= end + length).then_some(end + length)
    };
    let total = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(total) = complete(&raw) {
                return total;
            }
            let read = stream.read(&mut buffer).await.unwrap_or(0);
            assert!(read > 0, "connection closed before a response: {:?}", String::from_utf8_lossy(&raw));
            raw.extend_from_slice(&buffer[..read]);
        }
    })
    .await
    .expect("a response in time");
    let text = String::from_utf8_lossy(&raw[..total]).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Whether the server closes the connection (read returns end of file or a reset) in time.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test]
async fn declared_sizes_are_refused_before_any_body_byte_is_read() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "u", "c").await;
    let rename = format!("/v1/conversations/{}/name", conversation.id);
    let huge = 200 * 1024 * 1024;
    // (path, authorization, expected status): the route, then the key, then the size.
    let cases = [
        ("/v1/nope".to_owned(), format!("Bearer {}", key.key), 404),
        (rename.clone(), "Bearer app-wrong".to_owned(), 401),
        (rename.clone(), format!("Bearer {}", key.key), 413),
        ("/v1/files/upload".to_owned(), format!("Bearer {}", key.key), 413),
        ("/v1/files/upload".to_owned(), "Bearer app-wrong".to_owned(), 401),
    ];
    for (path, authorization, expected) in cases {
        let mut stream = connect(&app).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: {authorization}\r\ncontent-type: multipart/form-data; boundary=b\r\ncontent-length: {huge}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // Not one byte of the declared 200 MB is sent: the answer must come anyway.
        let (status, _, body) = read_response(&mut stream).await;
        assert_eq!(status, expected, "{path} with {authorization}: {body}");
        assert_eq!(body["status"], expected, "Dify's error shape");
    }
}

#[tokio::test]
async fn bodies_without_a_declared_size_stop_at_the_limit_and_bad_framing_is_400() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "u", "c").await;
    let rename = format!("/v1/conversations/{}/name", conversation.id);

    let mut stream = connect(&app).await;
    let head = format!(
        "POST {rename} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        key.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let mut refused = None;
    for _ in 0..40 {
        let frame = [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk.clone(), b"\r\n".to_vec()].concat();
        if stream.write_all(&frame).await.is_err() {
            break;
        }
        if let Ok(response) = tokio::time::timeout(Duration::from_millis(20), read_response(&mut stream)).await {
            refused = Some(response);
            break;
        }
    }
    let (status, _, body) = match refused {
        Some(response) => response,
        None => read_response(&mut stream).await,
    };
    assert_eq!((status, body["code"].as_str()), (413, Some("request_entity_too_large")));

    let mut stream = connect(&app).await;
    let broken = format!(
        "POST {rename} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n",
        key.key
    );
    stream.write_all(broken.as_bytes()).await.unwrap();
    let (status, _, body) = read_response(&mut stream).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{body}");
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let app = spawn_app_with_server(short(1, 30, 30), Cors::default()).await;
    let mut stream = connect(&app).await;
    stream.write_all(b"GET /v1/info HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    assert!(closed_by_server(&mut stream).await, "a client that never finishes its headers is disconnected");
}

#[tokio::test]
async fn slow_bodies_get_408_and_idle_connections_are_closed() {
    let app = spawn_app_with_server(short(30, 1, 1), Cors::default()).await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "u", "c").await;
    let mut stream = connect(&app).await;
    let head = format!(
        "POST /v1/conversations/{}/name HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"name\"",
        conversation.id, key.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, head, body) = read_response(&mut stream).await;
    assert_eq!((status, body["code"].as_str()), (408, Some("request_timeout")), "{body}");
    assert!(head.contains("connection: close"));

    // A kept-alive connection that sends nothing more is closed after the idle time-out.
    let mut stream = connect(&app).await;
    let get = format!("GET /v1/info HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\r\n", key.key);
    stream.write_all(get.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 200);
    assert!(closed_by_server(&mut stream).await, "an idle keep-alive connection is closed");
}

#[tokio::test]
async fn at_the_connection_cap_idle_connections_make_room_for_new_ones() {
    let limits = ServerLimits { max_connections: 4, ..ServerLimits::default() };
    let app = spawn_app_with_server(limits, Cors::default()).await;
    let key = app.chat_app().await;
    let mut idle = Vec::new();
    for _ in 0..6 {
        let mut stream = connect(&app).await;
        stream.write_all(b"GET /v1/info HTTP/1.1\r\n").await.unwrap();
        idle.push(stream);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A normal client is served although the cap is full of slow ones...
    let (status, _) = send(app.get(&key, "/v1/info")).await;
    assert_eq!(status, 200);
    // ...and the oldest slow ones were closed to make room.
    assert!(closed_by_server(&mut idle[0]).await);
    assert!(closed_by_server(&mut idle[1]).await);
}

#[tokio::test]
async fn beyond_the_in_flight_cap_requests_get_503_with_retry_after() {
    let limits = ServerLimits { max_in_flight: 1, ..ServerLimits::default() };
    let app = spawn_app_with_server(limits, Cors::default()).await;
    let key = app.chat_app().await;
    // A streamed chat (50 ms between words) holds the one slot while it streams.
    let query = "one two three four five six seven eight nine ten eleven twelve";
    let streaming = app
        .post(
            &key,
            "/v1/chat-messages",
            json!({"query": query, "user": "u", "inputs": {}, "response_mode": "streaming"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(streaming.status(), 200);
    let busy = app.get(&key, "/v1/info").send().await.unwrap();
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    let body: Value = busy.json().await.unwrap();
    assert_eq!(body["code"], "service_unavailable");
    // Once the stream is read to its end, the slot is free again.
    let _ = streaming.bytes().await.unwrap();
    let mut status = 0;
    for _ in 0..50 {
        status = send(app.get(&key, "/v1/info")).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn cors_preflights_and_responses_as_difys_service_api() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/chat-messages"))
        .header("origin", "https://chat.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type, x-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200, "no key needed for a preflight");
    let headers = preflight.headers();
    assert_eq!(headers["allow"], "POST, OPTIONS", "Allow names the route's own methods");
    assert_eq!(headers["access-control-allow-origin"], "https://chat.example");
    assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert_eq!(headers["access-control-allow-headers"], "authorization, content-type");

    let response =
        app.get(&key, "/v1/conversations?user=u").header("origin", "https://chat.example").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "https://chat.example");
    assert_eq!(response.headers()["vary"], "Origin");
    // Errors carry them too, so a browser can read why it failed.
    let denied = app.client.get(app.url("/v1/info")).header("origin", "https://chat.example").send().await.unwrap();
    assert_eq!(denied.status(), 401);
    assert_eq!(denied.headers()["access-control-allow-origin"], "https://chat.example");

    let unknown = app.client.request(reqwest::Method::OPTIONS, app.url("/v1/nope")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn cors_origins_can_be_restricted() {
    let cors = Cors::parse("https://mine.example").unwrap();
    let app = spawn_app_with_server(ServerLimits::default(), cors).await;
    let key = app.chat_app().await;
    let allowed = app.get(&key, "/v1/info").header("origin", "https://mine.example").send().await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://mine.example");
    let other = app.get(&key, "/v1/info").header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(other.status(), 200);
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn head_is_served_wherever_get_is() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    app.seed_conversation(&key, "u", "c").await;
    let get = app.get(&key, "/v1/conversations?user=u").send().await.unwrap();
    let length = get.headers()["content-length"].clone();
    assert!(!get.bytes().await.unwrap().is_empty());
    let head = app.client.head(app.url("/v1/conversations?user=u")).bearer_auth(&key.key).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], length);
    assert!(head.bytes().await.unwrap().is_empty());
    let wrong = app.client.head(app.url("/v1/chat-messages")).bearer_auth(&key.key).send().await.unwrap();
    assert_eq!(wrong.status(), 405);
}

#[tokio::test]
async fn uploads_stream_with_the_user_after_the_file_and_refuse_oversized_files() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    // The file part first, `user` after it: the file still belongs to that user.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(vec![7u8; 300_000]).file_name("a.txt").mime_str("text/plain").unwrap(),
        )
        .text("user", "late");
    let (status, body) = send(app.client.post(app.url("/v1/files/upload")).bearer_auth(&key.key).multipart(form)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["size"], 300_000);
    let id = body["id"].as_str().unwrap();
    let preview = app.get(&key, &format!("/v1/files/{id}/preview?user=late")).send().await.unwrap();
    assert_eq!(preview.bytes().await.unwrap().len(), 300_000);
    let other = send(app.get(&key, &format!("/v1/files/{id}/preview?user=someone"))).await;
    assert_error(&other, 404, "file_not_found");

    // Documents are limited to 15 MB by default: refused while streaming, nothing stored.
    let big = reqwest::multipart::Form::new().text("user", "late").part(
        "file",
        reqwest::multipart::Part::bytes(vec![1u8; 16 * 1024 * 1024]).file_name("b.txt").mime_str("text/plain").unwrap(),
    );
    let refused = send(app.client.post(app.url("/v1/files/upload")).bearer_auth(&key.key).multipart(big)).await;
    assert_error(&refused, 413, "file_too_large");
}
