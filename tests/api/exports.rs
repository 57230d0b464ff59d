//! Exports (Colloquy extensions, operator keys): a job that writes every message of the app
//! created in a range to a JSON Lines or CSV file, followed to its end and downloaded; the file
//! equals what the read API shows.

use std::collections::BTreeMap;
use std::time::Duration;

use colloquy_core::domain::{ExportFormat, ExportId, ExportJob, ExportStatus, Rating, TimeRange, Timestamp};
use colloquy_tests::*;
use serde_json::{Value, json};

/// Starts an export and waits for its end; returns its last status.
async fn export(app: &TestApp, operator: &TestKey, body: Value) -> Value {
    let (status, started) = send(app.post(operator, "/v1/app/exports", body)).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["status"], "pending");
    assert!(started["download_url"].is_null());
    let path = format!("/v1/app/exports/{}", started["id"].as_str().unwrap());
    for _ in 0..600 {
        let (status, job) = send(app.get(operator, &path)).await;
        assert_eq!(status, 200, "{job}");
        match job["status"].as_str().unwrap() {
            "done" | "failed" => return job,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("the export did not end");
}

async fn download(app: &TestApp, operator: &TestKey, job: &Value) -> (String, String) {
    let url = job["download_url"].as_str().expect("a done export has a link");
    // This API's download route takes the operator key; a link to S3 is signed already.
    let request = app.client.get(url);
    let request = if url.starts_with(&app.base) { request.bearer_auth(&operator.key) } else { request };
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment; filename=\"colloquy-export-"), "{disposition}");
    let text = response.text().await.unwrap();
    assert_eq!(text.len() as u64, job["size"].as_u64().unwrap());
    (content_type, text)
}

/// Every message of the app as the operators' read API shows it, by id: (conversation, user,
/// query, answer, the end user's rating, the operators' rating).
async fn read_api(app: &TestApp, operator: &TestKey) -> BTreeMap<String, Value> {
    let mut rows = BTreeMap::new();
    let (_, list) = send(app.get(operator, "/v1/app/conversations?limit=100")).await;
    for conversation in list["data"].as_array().unwrap() {
        let id = conversation["id"].as_str().unwrap();
        let (_, page) = send(app.get(operator, &format!("/v1/app/conversations/{id}/messages?limit=100"))).await;
        for m in page["data"].as_array().unwrap() {
            let by = |source: &str| {
                m["feedbacks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["from_source"] == source)
                    .map(|f| f["rating"].clone())
            };
            rows.insert(
                m["id"].as_str().unwrap().to_owned(),
                json!({
                    "conversation_id": id, "conversation_name": conversation["name"], "user": conversation["user"],
                    "end_user_id": conversation["end_user_id"], "created_at": m["created_at"], "query": m["query"],
                    "answer": m["answer"], "rating": by("user").unwrap_or(Value::Null),
                    "admin_rating": by("admin").unwrap_or(Value::Null),
                }),
            );
        }
    }
    rows
}

/// The same fields of an export's rows, by message id.
fn exported(rows: impl IntoIterator<Item = Value>) -> BTreeMap<String, Value> {
    rows.into_iter()
        .map(|r| {
            let id = r["message_id"].as_str().unwrap().to_owned();
            let fields = [
                "conversation_id",
                "conversation_name",
                "user",
                "end_user_id",
                "created_at",
                "query",
                "answer",
                "rating",
                "admin_rating",
            ];
            (id, fields.iter().map(|f| ((*f).to_owned(), r[*f].clone())).collect::<serde_json::Map<_, _>>().into())
        })
        .collect()
}

#[tokio::test]
async fn an_export_holds_exactly_what_the_read_api_shows_in_both_formats() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let other = app.chat_app().await;
    let mut messages = Vec::new();
    for (i, user) in ["alice", "bob", "carol"].into_iter().enumerate() {
        for c in 0..3 {
            let conversation = app.seed_conversation(&key, user, &format!("{user} {c}")).await;
            for m in 0..(4 + i + c) {
                // Text that needs quoting in CSV, and one a spreadsheet would run.
                let query = format!("q{m}, \"quoted\"\nline two {}", if m == 0 { "" } else { "é" });
                messages.push(app.seed_message(&conversation, &query).await);
                app.clock.advance_seconds(1);
            }
        }
        let theirs = app.seed_conversation(&other, user, "other app").await;
        app.seed_message(&theirs, "not exported").await;
    }
    let formula = app.seed_conversation(&key, "dave", "=HYPERLINK(\"x\")").await;
    messages.push(app.seed_message(&formula, "=1+1").await);
    app.seed_rating(&messages[0], Rating::Like).await;
    app.seed_rating(&messages[5], Rating::Dislike).await;
    let path = format!("/v1/app/messages/{}/feedbacks", messages[5].id);
    assert_eq!(send(app.post(&operator, &path, json!({"rating": "like"}))).await.0, 200);
    let deleted = app.seed_conversation(&key, "erin", "deleted").await;
    app.seed_message(&deleted, "gone").await;
    let body = json!({"user": "erin"});
    assert_eq!(send(app.delete(&key, &format!("/v1/conversations/{}", deleted.id), body)).await.0, 204);
    app.clock.advance_seconds(1);

    let expected = read_api(&app, &operator).await;
    assert_eq!(expected.len(), messages.len());

    let job = export(&app, &operator, json!({"format": "jsonl"})).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["progress"], 100);
    assert_eq!(job["messages"].as_u64().unwrap() as usize, messages.len());
    let (content_type, text) = download(&app, &operator, &job).await;
    assert!(content_type.starts_with("application/x-ndjson"), "{content_type}");
    let lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), messages.len(), "one line per message, none twice");
    assert_eq!(exported(lines.clone()), expected);
    // Each conversation's messages are in the order they happened.
    for pair in lines.windows(2) {
        if pair[0]["conversation_id"] == pair[1]["conversation_id"] {
            assert!(pair[0]["created_at"].as_i64() <= pair[1]["created_at"].as_i64());
        }
    }

    let job = export(&app, &operator, json!({"format": "csv"})).await;
    let (content_type, text) = download(&app, &operator, &job).await;
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header[..3], ["conversation_id", "conversation_name", "user"]);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.unwrap();
        let mut row = serde_json::Map::new();
        for (name, field) in header.iter().zip(record.iter()) {
            let value = match name.as_str() {
                "created_at" => json!(field.parse::<i64>().unwrap()),
                _ if field.is_empty() => Value::Null,
                // What the CSV defused (a leading `'`) is the text itself.
                _ => json!(field.strip_prefix('\'').filter(|t| t.starts_with('=')).unwrap_or(field)),
            };
            row.insert(name.clone(), value);
        }
        rows.push(Value::Object(row));
    }
    assert!(text.contains("'=1+1"), "a formula is defused in CSV");
    assert_eq!(exported(rows), expected);
}

#[tokio::test]
async fn an_export_covers_its_range_only() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    // Through the chat route, which moves the conversation's last activity as it goes.
    let mut conversation = String::new();
    for hour in 0..5 {
        app.clock.set_seconds(T0 + hour * 3_600);
        let body = json!({
            "inputs": {}, "query": format!("hour {hour}"), "user": "alice", "response_mode": "blocking",
            "conversation_id": conversation,
        });
        let (status, answer) = send(app.post(&key, "/v1/chat-messages", body)).await;
        assert_eq!(status, 200, "{answer}");
        conversation = answer["conversation_id"].as_str().unwrap().to_owned();
    }
    app.clock.set_seconds(T0 + 6 * 3_600);
    let job = export(&app, &operator, json!({"start": T0 + 3_600, "end": "2025-01-16T13:00:00Z"})).await;
    assert_eq!((job["start"].as_i64(), job["end"].as_i64()), (Some(T0 + 3_600), Some(T0 + 3 * 3_600)));
    let (_, text) = download(&app, &operator, &job).await;
    let queries: Vec<String> =
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["query"].as_str().unwrap().to_owned()).collect();
    assert_eq!(queries, ["hour 1", "hour 2"]);
    assert_eq!(job["progress"], 100);

    // An end in the future is now; an empty range exports an empty file.
    let job = export(&app, &operator, json!({"start": T0 + 4 * 3_600 + 1, "end": T0 + 99 * 3_600})).await;
    assert_eq!(job["end"].as_i64(), Some(T0 + 6 * 3_600));
    let (_, text) = download(&app, &operator, &job).await;
    assert_eq!(text, "");
}

#[tokio::test]
async fn exports_belong_to_their_app_and_are_audited() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let other = app.chat_app().await;
    let other_operator = app.operator_key(&other).await;
    let conversation = app.seed_conversation(&key, "alice", "a").await;
    app.seed_message(&conversation, "q").await;
    app.clock.advance_seconds(1);

    assert_error(&send(app.post(&key, "/v1/app/exports", json!({}))).await, 403, "forbidden");
    for body in [json!({"format": "xlsx"}), json!({"start": "yesterday"}), json!({"end": true})] {
        assert_error(&send(app.post(&operator, "/v1/app/exports", body)).await, 400, "invalid_param");
    }
    let job = export(&app, &operator, json!({})).await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(job["format"], "jsonl", "the default");
    for path in [format!("/v1/app/exports/{id}"), format!("/v1/app/exports/{id}/download")] {
        assert_error(&send(app.get(&key, &path)).await, 403, "forbidden");
        assert_error(&send(app.get(&other_operator, &path)).await, 404, "not_found");
    }
    for path in [format!("/v1/app/exports/{}", unknown_id()), "/v1/app/exports/not-a-uuid".to_owned()] {
        assert_error(&send(app.get(&operator, &path)).await, 404, "not_found");
    }

    // A job still running cannot be downloaded; one whose process stopped reads as failed.
    let now = app.now();
    let running = ExportJob {
        id: ExportId::from_uuid(uuid::Uuid::now_v7()),
        app_id: key.app.id,
        format: ExportFormat::Csv,
        range: TimeRange::new(None, Some(now)),
        status: ExportStatus::Running,
        expected: 10,
        exported: 4,
        size: None,
        error: None,
        created_at: now,
        updated_at: now,
    };
    app.store.save_export(&running).await.unwrap();
    let path = format!("/v1/app/exports/{}", running.id);
    let (_, body) = send(app.get(&operator, &path)).await;
    assert_eq!((body["status"].as_str(), body["progress"].as_i64()), (Some("running"), Some(40)));
    assert_error(&send(app.get(&operator, &format!("{path}/download"))).await, 409, "export_not_ready");
    app.clock.advance_seconds(121);
    let (_, body) = send(app.get(&operator, &path)).await;
    assert_eq!(body["status"], "failed");
    assert!(body["error"].as_str().unwrap().contains("interrupted"), "{body}");
    let stale = Timestamp::from_micros(now.micros());
    assert_eq!(app.store.export(key.app.id, running.id).await.unwrap().unwrap().updated_at, stale);

    let (_, log) = send(app.get(&operator, "/v1/app/audit-log?limit=100")).await;
    let actions: Vec<&str> = log["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in ["export.create", "export.read", "export.download"] {
        assert!(actions.contains(&action), "{action}: {actions:?}");
    }
}

#[tokio::test]
async fn conversations_that_move_during_an_export_are_written_exactly_once() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let mut seeded = Vec::new();
    for i in 0..250 {
        let at = Timestamp::from_micros((T0 + i) * 1_000_000);
        let conversation = app.seed_conversation_at(&key, "alice", &format!("c{i}"), at).await;
        seeded.push((conversation.id, app.seed_message_at(&conversation, &format!("q{i}"), at).await.id));
    }
    app.clock.set_seconds(T0 + 1_000);

    let (status, started) = send(app.post(&operator, "/v1/app/exports", json!({}))).await;
    assert_eq!(status, 202);
    let path = format!("/v1/app/exports/{}", started["id"].as_str().unwrap());
    // Meanwhile conversations gain messages (after the export's end), which moves each to the
    // front of the app-wide list: alternately the oldest (before the export reaches them: they
    // would be missed) and the newest (after it wrote them: they would be written twice).
    let mut moved = 0;
    let job = loop {
        let (_, job) = send(app.get(&operator, &path)).await;
        if job["status"] != "pending" && job["status"] != "running" {
            break job;
        }
        let next = if moved % 2 == 0 { moved / 2 } else { seeded.len() - 1 - moved / 2 };
        if let Some((conversation, _)) = seeded.get(next).filter(|_| moved < seeded.len()) {
            let body = json!({
                "inputs": {}, "query": "later", "user": "alice", "response_mode": "blocking",
                "conversation_id": conversation.to_string(),
            });
            assert_eq!(send(app.post(&key, "/v1/chat-messages", body)).await.0, 200);
            moved += 1;
        }
    };
    assert_eq!(job["status"], "done", "{job}");
    let (_, text) = download(&app, &operator, &job).await;
    let mut ids: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["message_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = seeded.iter().map(|(_, m)| m.to_string()).collect();
    expected.sort();
    assert_eq!(ids, expected, "every message of the range once ({moved} conversations moved meanwhile)");
}
