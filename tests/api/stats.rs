//! `GET /v1/app/stats` (a Colloquy extension, operator keys): usage per hour or day from the
//! counters the writes keep, checked against a recount of what the read API shows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use colloquy_tests::*;
use serde_json::{Value, json};

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// Sends a blocking chat and returns its answer's body.
async fn chat(app: &TestApp, key: &TestKey, user: &str, conversation: Option<&str>, query: &str) -> Value {
    let body = json!({
        "inputs": {}, "query": query, "user": user, "response_mode": "blocking",
        "conversation_id": conversation.unwrap_or(""),
    });
    let (status, answer) = send(app.post(key, "/v1/chat-messages", body)).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn rate(app: &TestApp, key: &TestKey, user: &str, message: &str, rating: Value) {
    let path = format!("/v1/messages/{message}/feedbacks");
    let (status, body) = send(app.post(key, &path, json!({"rating": rating, "user": user}))).await;
    assert_eq!(status, 200, "{body}");
}

/// Every row of an operator list (`last_id` paging for conversations, `first_id` for messages).
async fn pages(app: &TestApp, key: &TestKey, path: &str, cursor: &str, newest_first: bool) -> Vec<Value> {
    let mut rows: Vec<Value> = Vec::new();
    let mut at: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page = match &at {
            Some(id) => format!("{path}{sep}limit=100&{cursor}={id}"),
            None => format!("{path}{sep}limit=100"),
        };
        let (status, body) = send(app.get(key, &page)).await;
        assert_eq!(status, 200, "{page}: {body}");
        let data = body["data"].as_array().unwrap().clone();
        let next = if newest_first { data.last() } else { data.first() };
        at = next.map(|row| row["id"].as_str().unwrap().to_owned());
        rows.extend(data);
        if !body["has_more"].as_bool().unwrap() {
            return rows;
        }
    }
}

#[derive(Debug, Default, PartialEq)]
struct Recount {
    messages: i64,
    conversations: i64,
    end_users: BTreeSet<String>,
    likes: i64,
    dislikes: i64,
    answers: i64,
    latency: f64,
    tokens: i64,
}

#[tokio::test]
async fn usage_buckets_equal_a_recount_of_what_the_read_api_shows() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let other = app.chat_app().await;

    // Three end users over three days, in several hours; conversations continued across
    // hours and days; ratings given, changed and withdrawn; another app busy meanwhile.
    let mut usage: HashMap<String, (f64, i64)> = HashMap::new();
    let mut conversations: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let steps: [(i64, &str, bool); 12] = [
        (0, "alice", true),
        (60, "alice", false),
        (HOUR + 5, "bob", true),
        (HOUR + 6, "alice", false),
        (HOUR + 7, "alice", true),
        (5 * HOUR, "carol", true),
        (DAY, "bob", false),
        (DAY + 30, "carol", false),
        (DAY + 2 * HOUR, "bob", true),
        (2 * DAY + 23 * HOUR, "alice", false),
        (2 * DAY + 23 * HOUR + 1, "carol", true),
        (2 * DAY + 23 * HOUR + 2, "carol", false),
    ];
    let mut messages = Vec::new();
    for (i, (offset, user, new)) in steps.into_iter().enumerate() {
        app.clock.set_seconds(T0 + offset);
        let continued = if new { None } else { conversations.get(user).and_then(|c| c.last().cloned()) };
        let answer = chat(&app, &key, user, continued.as_deref(), &format!("question {i}")).await;
        let id = answer["message_id"].as_str().unwrap().to_owned();
        let usage_of = &answer["metadata"]["usage"];
        usage.insert(id.clone(), (usage_of["latency"].as_f64().unwrap(), usage_of["total_tokens"].as_i64().unwrap()));
        if continued.is_none() {
            conversations.entry(user).or_default().push(answer["conversation_id"].as_str().unwrap().to_owned());
        }
        messages.push((user, id));
        chat(&app, &other, user, None, "elsewhere").await;
    }
    app.clock.set_seconds(T0 + 3 * DAY);
    rate(&app, &key, messages[0].0, &messages[0].1, json!("like")).await;
    rate(&app, &key, messages[2].0, &messages[2].1, json!("like")).await;
    rate(&app, &key, messages[2].0, &messages[2].1, json!("dislike")).await;
    rate(&app, &key, messages[5].0, &messages[5].1, json!("dislike")).await;
    rate(&app, &key, messages[6].0, &messages[6].1, json!("like")).await;
    rate(&app, &key, messages[6].0, &messages[6].1, Value::Null).await;
    rate(&app, &key, messages[9].0, &messages[9].1, json!("like")).await;
    // Operators' ratings are not the end users' and are not counted.
    let path = format!("/v1/app/messages/{}/feedbacks", messages[1].1);
    assert_eq!(send(app.post(&operator, &path, json!({"rating": "like"}))).await.0, 200);

    // The recount, from the operator's read API (and the usage each chat answered with).
    let mut hours: BTreeMap<i64, Recount> = BTreeMap::new();
    let mut days: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for conversation in pages(&app, &operator, "/v1/app/conversations", "last_id", true).await {
        let created = conversation["created_at"].as_i64().unwrap();
        hours.entry(created / HOUR * HOUR).or_default().conversations += 1;
        let user = conversation["user"].as_str().unwrap().to_owned();
        let path = format!("/v1/app/conversations/{}/messages", conversation["id"].as_str().unwrap());
        for message in pages(&app, &operator, &path, "first_id", false).await {
            let at = message["created_at"].as_i64().unwrap();
            let bucket = hours.entry(at / HOUR * HOUR).or_default();
            bucket.messages += 1;
            bucket.end_users.insert(user.clone());
            days.entry(at / DAY * DAY).or_default().insert(user.clone());
            match message["feedback"]["rating"].as_str() {
                Some("like") => bucket.likes += 1,
                Some("dislike") => bucket.dislikes += 1,
                _ => {}
            }
            let (latency, tokens) = usage[message["id"].as_str().unwrap()];
            bucket.answers += 1;
            bucket.latency += latency;
            bucket.tokens += tokens;
        }
    }
    assert_eq!(hours.values().map(|h| h.messages).sum::<i64>(), 12);

    let stats = |query: String| {
        let (app, operator) = (&app, &operator);
        async move {
            let (status, body) = send(app.get(operator, &format!("/v1/app/stats?{query}"))).await;
            assert_eq!(status, 200, "{query}: {body}");
            body
        }
    };
    let hourly = stats(format!("granularity=hour&start={}&end={}", T0, T0 + 3 * DAY)).await;
    assert_eq!(hourly["granularity"], "hour");
    assert_eq!(hourly["timezone"], "UTC");
    let buckets = hourly["data"].as_array().unwrap();
    assert_eq!(buckets.len(), 72, "every hour of the range, empty ones too");
    for bucket in buckets {
        let start = bucket["start"].as_i64().unwrap();
        let expected = hours.remove(&start).unwrap_or_default();
        let got = |name: &str| bucket[name].as_i64().unwrap();
        assert_eq!(got("messages"), expected.messages, "{start}: {bucket}");
        assert_eq!(got("conversations"), expected.conversations, "{start}");
        assert_eq!(got("end_users"), expected.end_users.len() as i64, "{start}");
        assert_eq!((got("likes"), got("dislikes")), (expected.likes, expected.dislikes), "{start}");
        assert_eq!(got("answers"), expected.answers, "{start}");
        assert_eq!(got("tokens"), expected.tokens, "{start}");
        match bucket["average_latency"].as_f64() {
            Some(average) => assert!((average - expected.latency / expected.answers as f64).abs() < 0.002, "{bucket}"),
            None => assert_eq!(expected.answers, 0, "{bucket}"),
        }
    }
    assert!(hours.is_empty(), "no activity outside the buckets: {hours:?}");

    let daily = stats(format!("granularity=day&start={T0}&end={}", T0 + 3 * DAY)).await;
    let buckets = daily["data"].as_array().unwrap();
    assert_eq!(buckets.len(), 4, "T0 is 10:00 UTC: its day and the three after it");
    let total = |name: &str| buckets.iter().map(|b| b[name].as_i64().unwrap()).sum::<i64>();
    assert_eq!(total("messages"), 12);
    assert_eq!(total("conversations"), 6);
    assert_eq!((total("likes"), total("dislikes")), (2, 2));
    for bucket in buckets {
        let start = bucket["start"].as_i64().unwrap();
        let users = days.get(&start).map_or(0, |u| u.len() as i64);
        assert_eq!(bucket["end_users"].as_i64().unwrap(), users, "a day's users are distinct: {bucket}");
    }
}

#[tokio::test]
async fn stats_take_operator_keys_check_their_range_and_show_only_the_keys_app() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let other = app.chat_app().await;
    let other_operator = app.operator_key(&other).await;
    chat(&app, &key, "alice", None, "hello").await;

    assert_error(&send(app.get(&key, "/v1/app/stats")).await, 403, "forbidden");
    for query in [
        "granularity=week",
        "start=tomorrow",
        &format!("start={}&end={}", T0 + DAY, T0),
        &format!("granularity=hour&start={}&end={}", T0, T0 + 32 * DAY),
        &format!("granularity=day&start={}&end={}", T0, T0 + 400 * DAY),
    ] {
        assert_error(&send(app.get(&operator, &format!("/v1/app/stats?{query}"))).await, 400, "invalid_param");
    }

    // Defaults: the last 7 days by day, up to today.
    let (status, body) = send(app.get(&operator, "/v1/app/stats")).await;
    assert_eq!(status, 200, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 7);
    assert_eq!(data.last().unwrap()["messages"], 1);
    assert_eq!(data.last().unwrap()["end_users"], 1);
    assert_eq!(data.last().unwrap()["conversations"], 1);

    let (status, theirs) = send(app.get(&other_operator, "/v1/app/stats")).await;
    assert_eq!(status, 200);
    assert!(theirs["data"].as_array().unwrap().iter().all(|b| b["messages"] == 0), "{theirs}");

    let (_, log) = send(app.get(&operator, "/v1/app/audit-log")).await;
    assert!(log["data"].as_array().unwrap().iter().any(|e| e["action"] == "stats.read"), "{log}");
}
