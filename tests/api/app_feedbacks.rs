use colloquy_tests::*;
use serde_json::json;

#[tokio::test]
async fn all_feedback_of_the_app_newest_first_with_iso_timestamps() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let other_app = app.chat_app().await;
    let alice = app.seed_conversation(&key, "alice", "a").await;
    let bob = app.seed_conversation(&key, "bob", "b").await;
    let first = app.seed_message(&alice, "q1").await;
    let second = app.seed_message(&bob, "q2").await;
    let elsewhere = app.seed_conversation(&other_app, "alice", "x").await;
    let foreign = app.seed_message(&elsewhere, "q3").await;
    send(app.post(&key, &format!("/v1/messages/{}/feedbacks", first.id), json!({"rating": "like", "user": "alice"})))
        .await;
    app.clock.advance_seconds(1);
    send(app.post(
        &key,
        &format!("/v1/messages/{}/feedbacks", second.id),
        json!({"rating": "dislike", "content": "meh", "user": "bob"}),
    ))
    .await;
    send(app.post(
        &other_app,
        &format!("/v1/messages/{}/feedbacks", foreign.id),
        json!({"rating": "like", "user": "alice"}),
    ))
    .await;

    let (status, body) = send(app.get(&key, "/v1/app/feedbacks?user=ignored")).await;
    assert_eq!(status, 200);
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, vec!["data"], "no has_more, total, page or limit");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let bob_user = app.end_user(&key, "bob").await;
    assert_eq!(data[0]["message_id"], second.id.to_string());
    assert_eq!(data[0]["conversation_id"], bob.id.to_string());
    assert_eq!(data[0]["app_id"], key.app.id.to_string());
    assert_eq!(data[0]["rating"], "dislike");
    assert_eq!(data[0]["content"], "meh");
    assert_eq!(data[0]["from_source"], "user");
    assert_eq!(data[0]["from_end_user_id"], bob_user.id.to_string());
    assert_eq!(data[0]["from_account_id"], json!(null));
    assert_eq!(data[0]["created_at"], "2025-01-16T10:00:01");
    assert_eq!(data[1]["created_at"], "2025-01-16T10:00:00");
    assert!(data[0]["id"].as_str().is_some());
}

#[tokio::test]
async fn offset_pages_and_bounds() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let mut messages = Vec::new();
    for i in 0..5 {
        let m = app.seed_message(&conversation, &format!("q{i}")).await;
        send(app.post(&key, &format!("/v1/messages/{}/feedbacks", m.id), json!({"rating": "like", "user": "alice"})))
            .await;
        app.clock.advance_seconds(1);
        messages.push(m);
    }
    let (_, page2) = send(app.get(&key, "/v1/app/feedbacks?page=2&limit=2")).await;
    let ids: Vec<_> = page2["data"].as_array().unwrap().iter().map(|f| f["message_id"].clone()).collect();
    assert_eq!(ids, vec![json!(messages[2].id.to_string()), json!(messages[1].id.to_string())]);
    let (_, page4) = send(app.get(&key, "/v1/app/feedbacks?page=4&limit=2")).await;
    assert_eq!(page4["data"], json!([]));
    assert_eq!(send(app.get(&key, "/v1/app/feedbacks?limit=101")).await.0, 200);
    for query in ["limit=102", "limit=0", "page=0", "page=-1", "page=x"] {
        assert_error(&send(app.get(&key, &format!("/v1/app/feedbacks?{query}"))).await, 400, "invalid_param");
    }
    assert_eq!(send(app.get(&key, "/v1/app/feedbacks?page=&limit=")).await.0, 200);
}

#[tokio::test]
async fn feedback_is_filtered_and_carries_the_rated_query_and_answer() {
    use colloquy_core::domain::Timestamp;
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let alice = app.seed_conversation(&key, "alice", "a").await;
    let bob = app.seed_conversation(&key, "bob", "b").await;
    let asked = app.seed_message(&alice, "Where is my parcel?").await;
    let other = app.seed_message(&bob, "Refund?").await;
    let rate = |message: uuid::Uuid, user: &str, body: serde_json::Value| {
        let mut body = body;
        body["user"] = json!(user);
        app.post(&key, &format!("/v1/messages/{message}/feedbacks"), body)
    };
    send(rate(asked.id.as_uuid(), "alice", json!({"rating": "like"}))).await;
    app.clock.advance_seconds(10);
    let later = app.now();
    send(rate(other.id.as_uuid(), "bob", json!({"rating": "dislike", "content": "slow"}))).await;
    send(app.post(&operator, &format!("/v1/app/messages/{}/feedbacks", asked.id), json!({"rating": "dislike"}))).await;

    let listed = |query: &str| {
        let (app, key) = (&app, &key);
        let path = format!("/v1/app/feedbacks?{query}");
        async move {
            let (status, body) = send(app.get(key, &path)).await;
            assert_eq!(status, 200, "{path}: {body}");
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["message_id"].as_str().unwrap().to_owned(),
                        f["from_source"].as_str().unwrap().to_owned(),
                        f["rating"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let (a, o) = (asked.id.to_string(), other.id.to_string());
    let entry = |m: &str, s: &str, r: &str| (m.to_owned(), s.to_owned(), r.to_owned());
    assert_eq!(listed("").await.len(), 3);
    assert_eq!(listed("user=alice").await.len(), 3, "Dify's call ignores a user");
    assert_eq!(listed("rating=like").await, [entry(&a, "user", "like")]);
    assert_eq!(listed("from_source=admin").await, [entry(&a, "admin", "dislike")]);
    assert_eq!(listed("end_user=bob").await, [entry(&o, "user", "dislike")]);
    assert_eq!(listed("end_user=nobody").await, []);
    assert_eq!(listed(&format!("conversation_id={}", alice.id)).await.len(), 2);
    assert_eq!(listed("has_content=true").await, [entry(&o, "user", "dislike")]);
    assert_eq!(listed("has_content=false&from_source=user").await, [entry(&a, "user", "like")]);
    assert_eq!(listed(&format!("start={}", later.unix_seconds())).await.len(), 2);
    assert_eq!(listed(&format!("end={}", later.unix_seconds())).await, [entry(&a, "user", "like")]);
    let iso = Timestamp::from_micros(later.micros()).iso_naive();
    assert_eq!(listed(&format!("end={iso}Z")).await.len(), 1, "RFC 3339 too");
    assert_eq!(listed("rating=dislike&page=2&limit=1").await.len(), 1, "pages count filtered items");
    assert_eq!(listed(&format!("start={0}&end={0}", later.unix_seconds())).await, [], "an empty range");

    let (_, body) = send(app.get(&operator, "/v1/app/feedbacks?end_user=bob")).await;
    let item = &body["data"][0];
    assert_eq!((item["query"].as_str(), item["answer"].as_str()), (Some("Refund?"), Some(other.answer.as_str())));
    for bad in ["rating=meh", "from_source=robot", "has_content=maybe", "start=soon", "conversation_id=x"] {
        assert_error(&send(app.get(&key, &format!("/v1/app/feedbacks?{bad}"))).await, 400, "invalid_param");
    }
}
