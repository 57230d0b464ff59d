//! Colloquy's conversation extensions: one conversation by id, its metadata, pinned and
//! archived, and the list filters they give, paged on both stores.

use std::collections::BTreeSet;

use colloquy_core::domain::Timestamp;
use colloquy_tests::*;
use serde_json::{Value, json};

fn at(second: i64) -> Timestamp {
    Timestamp::from_micros((T0 + second) * 1_000_000)
}

async fn patch(app: &TestApp, key: &TestKey, id: &str, body: Value) -> (u16, Value) {
    send(app.client.patch(app.url(&format!("/v1/conversations/{id}"))).bearer_auth(&key.key).json(&body)).await
}

async fn get_one(app: &TestApp, key: &TestKey, id: &str, user: &str) -> (u16, Value) {
    send(app.get(key, &format!("/v1/conversations/{id}?user={user}"))).await
}

/// Every page of the caller's list with `query`, `limit` at a time: the ids in order.
async fn listed(app: &TestApp, key: &TestKey, user: &str, query: &str, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let cursor = last.as_ref().map(|id| format!("&last_id={id}")).unwrap_or_default();
        let path = format!("/v1/conversations?user={user}&limit={limit}{query}{cursor}");
        let (status, body) = send(app.get(key, &path)).await;
        assert_eq!(status, 200, "{path}: {body}");
        let page = body["data"].as_array().unwrap();
        assert!(page.len() <= limit as usize);
        for row in page {
            // Dify's shape, exactly.
            let keys: BTreeSet<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
            let dify = ["created_at", "id", "inputs", "introduction", "name", "status", "updated_at"];
            assert_eq!(keys, dify.into_iter().collect(), "{row}");
            ids.push(row["id"].as_str().unwrap().to_owned());
        }
        if !body["has_more"].as_bool().unwrap() {
            return ids;
        }
        last = ids.last().cloned();
    }
}

#[tokio::test]
async fn one_conversation_by_id_in_the_lists_shape_with_its_state_and_only_for_its_owner() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "mine").await;
    let id = conversation.id.to_string();
    let (status, body) = get_one(&app, &key, &id, "alice").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"id": id, "name": "mine", "inputs": {}, "status": "normal", "introduction": "",
               "created_at": T0, "updated_at": T0, "metadata": {}, "pinned": false, "archived": false})
    );
    // Another user's, another app's, unknown, malformed, deleted: 404.
    assert_error(&get_one(&app, &key, &id, "bob").await, 404, "not_found");
    let other = app.chat_app().await;
    assert_error(&get_one(&app, &other, &id, "alice").await, 404, "not_found");
    assert_error(&get_one(&app, &key, &unknown_id(), "alice").await, 404, "not_found");
    assert_error(&get_one(&app, &key, "not-a-uuid", "alice").await, 404, "not_found");
    for (who, k) in [("bob", &key), ("alice", &other)] {
        assert_error(&patch(&app, k, &id, json!({"user": who, "pinned": true})).await, 404, "not_found");
    }
    assert_error(&patch(&app, &key, &unknown_id(), json!({"user": "alice", "pinned": true})).await, 404, "not_found");
    assert_error(&patch(&app, &key, "not-a-uuid", json!({"user": "alice"})).await, 404, "not_found");
    let delete = app.client.delete(app.url(&format!("/v1/conversations/{id}"))).bearer_auth(&key.key);
    assert_eq!(send(delete.json(&json!({"user": "alice"}))).await.0, 204);
    assert_error(&get_one(&app, &key, &id, "alice").await, 404, "not_found");
    assert_error(&patch(&app, &key, &id, json!({"user": "alice", "pinned": true})).await, 404, "not_found");
    // Operator keys act for no end user.
    let operator = app.operator_key(&key).await;
    assert_error(&get_one(&app, &operator, &unknown_id(), "alice").await, 403, "forbidden");
}

#[tokio::test]
async fn metadata_pinned_and_archived_are_set_within_their_limits_and_keep_the_update_time() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let id = app.seed_conversation(&key, "alice", "c").await.id.to_string();
    app.clock.advance_seconds(60);
    let body = json!({"user": "alice", "metadata": {"project": "apollo", "stage": "2"}, "pinned": true});
    let (status, patched) = patch(&app, &key, &id, body).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (&patched["metadata"], &patched["pinned"], &patched["archived"], &patched["updated_at"]),
        (&json!({"project": "apollo", "stage": "2"}), &json!(true), &json!(false), &json!(T0))
    );
    assert_eq!(get_one(&app, &key, &id, "alice").await.1, patched);
    // What is absent stays; metadata replaces; `{}` clears.
    let (_, archived) = patch(&app, &key, &id, json!({"user": "alice", "archived": true})).await;
    assert_eq!(
        (&archived["pinned"], &archived["archived"], &archived["metadata"]["stage"]),
        (&json!(true), &json!(true), &json!("2"))
    );
    let (_, replaced) = patch(&app, &key, &id, json!({"user": "alice", "metadata": {"x": ""}, "pinned": false})).await;
    assert_eq!((&replaced["metadata"], &replaced["pinned"]), (&json!({"x": ""}), &json!(false)));
    let (_, cleared) = patch(&app, &key, &id, json!({"user": "alice", "metadata": {}, "archived": "false"})).await;
    assert_eq!((&cleared["metadata"], &cleared["archived"]), (&json!({}), &json!(false)));

    let many: serde_json::Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let sixteen: serde_json::Map<String, Value> = (0..16).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(patch(&app, &key, &id, json!({"user": "alice", "metadata": sixteen})).await.0, 200);
    for bad in [
        json!({"user": "alice", "metadata": many}),
        json!({"user": "alice", "metadata": {"k".repeat(65): "v"}}),
        json!({"user": "alice", "metadata": {"k": "v".repeat(513)}}),
        json!({"user": "alice", "metadata": {"": "v"}}),
        json!({"user": "alice", "metadata": {"k": 1}}),
        json!({"user": "alice", "metadata": ["k"]}),
        json!({"user": "alice", "pinned": "sometimes"}),
        json!({"user": "alice", "archived": [true]}),
    ] {
        assert_error(&patch(&app, &key, &id, bad.clone()).await, 400, "invalid_param");
    }
    assert_eq!(get_one(&app, &key, &id, "alice").await.1["metadata"].as_object().unwrap().len(), 16, "unchanged");
    for bad in [
        "pinned=maybe",
        "archived=2",
        "metadata%5Bk%5D=1&metadata%5Bk%5D=2",
        &format!("metadata%5B{}%5D=v", "k".repeat(65)),
    ] {
        assert_error(&send(app.get(&key, &format!("/v1/conversations?user=alice&{bad}"))).await, 400, "invalid_param");
    }
}

#[tokio::test]
async fn each_filter_pages_every_conversation_once_in_each_order_despite_equal_times() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    // 24 conversations, in threes at equal times; every second one has project=x, every third is
    // pinned, every fourth is archived.
    let mut all = Vec::new();
    for i in 0..24_usize {
        let conversation = app.seed_conversation_at(&key, "alice", &format!("c{i}"), at(i as i64 / 3)).await;
        let id = conversation.id.to_string();
        let mut body = json!({"user": "alice", "pinned": i % 3 == 0, "archived": i % 4 == 0});
        if i % 2 == 0 {
            body["metadata"] = json!({"project": "x", "n": i.to_string()});
        }
        assert_eq!(patch(&app, &key, &id, body).await.0, 200);
        all.push((conversation, i));
    }
    app.seed_conversation(&key, "bob", "not alice's").await;
    let expect = |keep: &dyn Fn(usize) -> bool, sort: &str| -> Vec<String> {
        let mut rows: Vec<_> = all.iter().filter(|(_, i)| keep(*i)).collect();
        // Times then ids, as the stores order them.
        rows.sort_by_key(|(c, _)| (c.created_at, c.id));
        if sort.starts_with('-') {
            rows.reverse();
        }
        rows.iter().map(|(c, _)| c.id.to_string()).collect()
    };
    type Keep = Box<dyn Fn(usize) -> bool>;
    let filters: Vec<(&str, Keep)> = vec![
        ("", Box::new(|i| i % 4 != 0)),
        ("&archived=true", Box::new(|i| i % 4 == 0)),
        ("&pinned=true", Box::new(|i| i % 3 == 0 && i % 4 != 0)),
        ("&pinned=false", Box::new(|i| i % 3 != 0 && i % 4 != 0)),
        ("&pinned=true&archived=true", Box::new(|i| i % 3 == 0 && i % 4 == 0)),
        ("&metadata%5Bproject%5D=x", Box::new(|i| i % 2 == 0 && i % 4 != 0)),
        ("&metadata%5Bproject%5D=x&archived=true", Box::new(|i| i % 4 == 0)),
        ("&metadata%5Bproject%5D=x&pinned=true", Box::new(|i| i % 6 == 0 && i % 4 != 0)),
        ("&metadata%5Bproject%5D=x&metadata%5Bn%5D=6", Box::new(|i| i == 6)),
        ("&metadata%5Bproject%5D=y", Box::new(|_| false)),
    ];
    for (filter, keep) in &filters {
        for sort in ["-updated_at", "updated_at", "-created_at", "created_at"] {
            for limit in [1, 4] {
                let got = listed(&app, &key, "alice", &format!("{filter}&sort_by={sort}"), limit).await;
                assert_eq!(got, expect(keep.as_ref(), sort), "{filter} {sort} limit {limit}");
            }
        }
    }
}

#[tokio::test]
async fn filtered_lists_follow_activity_renames_and_deletes() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let chat = |query: &str, conversation: Option<&str>, metadata: Option<Value>| {
        let mut body = json!({"inputs": {}, "query": query, "user": "alice", "response_mode": "blocking"});
        if let Some(id) = conversation {
            body["conversation_id"] = json!(id);
        }
        if let Some(metadata) = metadata {
            body["metadata"] = metadata;
        }
        app.post(&key, "/v1/chat-messages", body)
    };
    // Metadata given when a chat starts a conversation; ignored when it goes on.
    let (status, first) = send(chat("one", None, Some(json!({"topic": "billing"})))).await;
    assert_eq!(status, 200, "{first}");
    let first_id = first["conversation_id"].as_str().unwrap().to_owned();
    app.clock.advance_seconds(10);
    let (_, second) = send(chat("two", None, Some(json!({"topic": "billing"})))).await;
    let second_id = second["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(get_one(&app, &key, &first_id, "alice").await.1["metadata"], json!({"topic": "billing"}));
    let billing = "&metadata%5Btopic%5D=billing";
    assert_eq!(listed(&app, &key, "alice", billing, 20).await, [second_id.clone(), first_id.clone()]);
    assert_error(&send(chat("bad", None, Some(json!({"topic": 5})))).await, 400, "invalid_param");

    // A message moves the conversation to the top of its filtered lists too; the metadata of a
    // chat that goes on is ignored.
    assert_eq!(patch(&app, &key, &first_id, json!({"user": "alice", "pinned": true})).await.0, 200);
    app.clock.advance_seconds(10);
    let (status, _) = send(chat("three", Some(&first_id), Some(json!({"topic": "other"})))).await;
    assert_eq!(status, 200);
    assert_eq!(listed(&app, &key, "alice", billing, 20).await, [first_id.clone(), second_id.clone()]);
    assert_eq!(get_one(&app, &key, &first_id, "alice").await.1["metadata"], json!({"topic": "billing"}));
    let rename = json!({"name": "Invoices", "user": "alice"});
    assert_eq!(send(app.post(&key, &format!("/v1/conversations/{first_id}/name"), rename)).await.0, 200);
    let (_, pinned) = send(app.get(&key, "/v1/conversations?user=alice&pinned=true")).await;
    assert_eq!(
        (pinned["data"][0]["id"].as_str(), pinned["data"][0]["name"].as_str()),
        (Some(&*first_id), Some("Invoices"))
    );

    // Archived: out of Dify's list, in the archived one; deleted: out of every list.
    assert_eq!(patch(&app, &key, &second_id, json!({"user": "alice", "archived": true})).await.0, 200);
    assert_eq!(listed(&app, &key, "alice", "", 20).await, std::slice::from_ref(&first_id));
    assert_eq!(listed(&app, &key, "alice", "&archived=true", 20).await, std::slice::from_ref(&second_id));
    for id in [&first_id, &second_id] {
        let delete = app.client.delete(app.url(&format!("/v1/conversations/{id}"))).bearer_auth(&key.key);
        assert_eq!(send(delete.json(&json!({"user": "alice"}))).await.0, 204);
    }
    for filter in ["", "&archived=true", "&pinned=true", billing, &format!("{billing}&archived=true")] {
        assert_eq!(listed(&app, &key, "alice", filter, 20).await, Vec::<String>::new(), "{filter}");
    }
}

#[tokio::test]
async fn an_erasure_takes_archived_and_organised_conversations_and_leaves_nothing() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    for i in 0..6 {
        let conversation = app.seed_conversation(&key, "dora", &format!("c{i}")).await;
        app.seed_message(&conversation, "q").await;
        let body = json!({"user": "dora", "metadata": {"k": "v"}, "pinned": i % 2 == 0, "archived": i % 3 == 0});
        assert_eq!(patch(&app, &key, &conversation.id.to_string(), body).await.0, 200);
    }
    let (status, job) = send(app.client.delete(app.url("/v1/end-users/dora")).bearer_auth(&key.key)).await;
    assert_eq!(status, 202, "{job}");
    // Hidden at once from every list, archived ones too.
    for filter in ["", "&archived=true", "&pinned=true", "&metadata%5Bk%5D=v&archived=true"] {
        assert_eq!(listed(&app, &key, "dora", filter, 20).await, Vec::<String>::new(), "{filter}");
    }
    let done = crate::erasure::finished(&app, &key, "dora", job["job_id"].as_str().unwrap()).await;
    assert_eq!((done["status"].as_str(), done["conversations"].as_u64()), (Some("done"), Some(6)), "{done}");
    let ids = crate::erasure::end_user_ids(&key, "dora");
    let left = app.store.inventory(key.app.id, Some(&ids)).await.unwrap();
    assert_eq!(left.total(), 0, "{left:?}");
}

#[tokio::test]
async fn concurrent_messages_and_state_changes_leave_every_list_true_to_the_conversation() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let id = app.seed_conversation(&key, "erin", "busy").await.id.to_string();
    let (app_ref, key_ref) = (&app, &key);
    let chats = (0..8).map(|i| {
        let body = json!({"inputs": {}, "query": format!("q{i}"), "user": "erin", "conversation_id": id,
                          "response_mode": "blocking"});
        async move { send(app_ref.post(key_ref, "/v1/chat-messages", body)).await.0 }
    });
    let patches = (0..8).map(|i| {
        let body = json!({"user": "erin", "pinned": i % 2 == 0, "metadata": {"round": i.to_string()}});
        let id = id.clone();
        async move { patch(app_ref, key_ref, &id, body).await.0 }
    });
    let (chatted, patched) =
        tokio::join!(futures_util::future::join_all(chats), futures_util::future::join_all(patches));
    assert!(chatted.iter().chain(&patched).all(|s| *s == 200), "{chatted:?} {patched:?}");
    let (_, now) = get_one(&app, &key, &id, "erin").await;
    let round = now["metadata"]["round"].as_str().unwrap().to_owned();
    let pinned = now["pinned"].as_bool().unwrap();
    assert_eq!(
        listed(&app, &key, "erin", &format!("&metadata%5Bround%5D={round}"), 5).await,
        std::slice::from_ref(&id)
    );
    for other in (0..8).map(|i| i.to_string()).filter(|r| *r != round) {
        assert!(listed(&app, &key, "erin", &format!("&metadata%5Bround%5D={other}"), 5).await.is_empty());
    }
    assert_eq!(listed(&app, &key, "erin", "&pinned=true", 5).await.len(), usize::from(pinned));
    // The copies carry the latest activity: the list's row is the conversation as it is.
    let (_, row) = send(app.get(&key, &format!("/v1/conversations?user=erin&metadata%5Bround%5D={round}"))).await;
    assert_eq!(row["data"][0]["updated_at"], now["updated_at"]);
}
