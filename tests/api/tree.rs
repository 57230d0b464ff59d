//! The message tree (a Colloquy extension): `parent_message_id` on a chat, `POST
//! /messages/:id/regenerate`, and `GET /messages` reading one thread (`leaf_id`) with each
//! message's siblings; the model sees the thread it answers on.

use colloquy_tests::*;
use serde_json::{Value, json};

/// A blocking chat of `alice` (in `conversation` when given, replying to `parent` when given).
async fn chat(app: &TestApp, key: &TestKey, query: &str, conversation: Option<&str>, parent: Option<&str>) -> Value {
    let mut body = json!({"inputs": {}, "query": query, "user": "alice", "response_mode": "blocking"});
    if let Some(id) = conversation {
        body["conversation_id"] = json!(id);
    }
    if let Some(id) = parent {
        body["parent_message_id"] = json!(id);
    }
    let (status, answer) = send(app.post(key, "/v1/chat-messages", body)).await;
    assert_eq!(status, 200, "{answer}");
    app.clock.advance_seconds(1);
    answer
}

async fn regenerate(app: &TestApp, key: &TestKey, message: &str, user: &str) -> (u16, Value) {
    let body = json!({"user": user, "response_mode": "blocking"});
    let answer = send(app.post(key, &format!("/v1/messages/{message}/regenerate"), body)).await;
    app.clock.advance_seconds(1);
    answer
}

/// A page of the thread of `conversation` (`extra` appended to the query).
async fn page(app: &TestApp, key: &TestKey, conversation: &str, extra: &str) -> Value {
    let path = format!("/v1/messages?user=alice&conversation_id={conversation}{extra}");
    let (status, page) = send(app.get(key, &path)).await;
    assert_eq!(status, 200, "{page}");
    page
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
}

fn id(answer: &Value) -> String {
    answer["message_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_tree_of_regenerations_and_an_edit_reads_along_each_branch() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let first = chat(&app, &key, "first question", None, None).await;
    let conversation = first["conversation_id"].as_str().unwrap().to_owned();
    let c = Some(conversation.as_str());
    let m1 = id(&first);
    let m2 = id(&chat(&app, &key, "second question", c, None).await);
    // Three regenerations (one of a regenerated message) and an edit: five siblings under m1.
    let (status, b) = regenerate(&app, &key, &m2, "alice").await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["answer"], "Echo: second question (echo provider; 1 earlier questions in this conversation)");
    let m2b = id(&b);
    let m3 = id(&chat(&app, &key, "third, on branch b", c, Some(&m2b)).await);
    let m2c = id(&regenerate(&app, &key, &m2, "alice").await.1);
    let m2d = id(&regenerate(&app, &key, &m2c, "alice").await.1);
    let m2e = id(&chat(&app, &key, "second question, edited", c, Some(&m1)).await);
    let siblings = vec![m2.clone(), m2b.clone(), m2c.clone(), m2d.clone(), m2e.clone()];

    // The thread ending at the newest message: the edit.
    let newest = page(&app, &key, &conversation, "").await;
    assert_eq!(ids(&newest).iter().collect::<Vec<_>>(), [&m1, &m2e]);
    assert_eq!(newest["has_more"], false);
    assert_eq!(newest["data"][0]["sibling_ids"], json!([m1]));
    assert_eq!(newest["data"][0]["sibling_count"], 1);
    assert_eq!(newest["data"][1]["sibling_ids"], json!(siblings));
    assert_eq!(newest["data"][1]["sibling_count"], 5);
    assert_eq!(newest["data"][1]["parent_message_id"], json!(m1));
    assert_eq!(newest["data"][1]["query"], "second question, edited");

    // Each branch by `leaf_id`: a message with replies reads down to the newest below it.
    for (leaf, thread) in [
        (&m2b, vec![&m1, &m2b, &m3]),
        (&m3, vec![&m1, &m2b, &m3]),
        (&m2, vec![&m1, &m2]),
        (&m2c, vec![&m1, &m2c]),
        (&m2d, vec![&m1, &m2d]),
        (&m1, vec![&m1, &m2e]),
    ] {
        let read = page(&app, &key, &conversation, &format!("&leaf_id={leaf}")).await;
        assert_eq!(ids(&read).iter().collect::<Vec<_>>(), thread, "leaf {leaf}");
        assert_eq!(read["data"][1]["sibling_ids"], json!(siblings), "leaf {leaf}");
    }
    let branch = page(&app, &key, &conversation, &format!("&leaf_id={m2b}")).await;
    assert_eq!(branch["data"][2]["sibling_ids"], json!([m3]));
    assert_eq!(branch["data"][2]["parent_message_id"], json!(m2b));

    // Paged one at a time along branch b: each message once, `first_id` continuing the thread.
    let mut seen = Vec::new();
    let mut read = page(&app, &key, &conversation, &format!("&leaf_id={m3}&limit=1")).await;
    loop {
        seen.extend(ids(&read));
        assert_eq!(read["data"][0]["sibling_count"], if ids(&read)[0] == m2b { 5 } else { 1 });
        if read["has_more"] == false {
            break;
        }
        let oldest = ids(&read)[0].clone();
        read = page(&app, &key, &conversation, &format!("&first_id={oldest}&limit=1")).await;
    }
    assert_eq!(seen, [m3.clone(), m2b.clone(), m1.clone()]);

    // The model's history follows the thread: by default the newest message's, else the parent's.
    let on_newest = chat(&app, &key, "fourth", c, None).await;
    assert_eq!(on_newest["answer"], "Echo: fourth (echo provider; 2 earlier questions in this conversation)");
    let on_b = chat(&app, &key, "fourth on b", c, Some(&m3)).await;
    assert_eq!(on_b["answer"], "Echo: fourth on b (echo provider; 3 earlier questions in this conversation)");
    let on_root = chat(&app, &key, "a new start", c, Some("00000000-0000-0000-0000-000000000000")).await;
    assert_eq!(on_root["answer"], "Echo: a new start (echo provider; 0 earlier questions in this conversation)");
    let r1 = id(&on_root);
    let roots = page(&app, &key, &conversation, "").await;
    assert_eq!(ids(&roots).iter().collect::<Vec<_>>(), [&r1]);
    assert_eq!(roots["data"][0]["sibling_ids"], json!([m1, r1]));
    assert_eq!(roots["data"][0]["parent_message_id"], Value::Null);

    // Operators read every message of every branch.
    let operator = app.operator_key(&key).await;
    let (_, all) = send(app.get(&operator, &format!("/v1/app/conversations/{conversation}/messages?limit=100"))).await;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(10), "{all}");
}

#[tokio::test]
async fn regenerating_a_first_message_makes_a_new_first_message_and_streams_as_a_chat() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let first = chat(&app, &key, "hello there", None, None).await;
    let conversation = first["conversation_id"].as_str().unwrap().to_owned();
    let m1 = id(&first);
    let m2 = id(&chat(&app, &key, "and then", Some(&conversation), None).await);
    let body = json!({"user": "alice", "response_mode": "streaming"});
    let response = app.post(&key, &format!("/v1/messages/{m1}/regenerate"), body).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = read_events(response).await;
    let end = events.iter().find(|e| e.data["event"] == "message_end").expect("the answer ends");
    let r1 = end.data["message_id"].as_str().unwrap().to_owned();
    assert_eq!(end.data["conversation_id"], json!(conversation));
    let read = page(&app, &key, &conversation, "").await;
    assert_eq!(ids(&read).iter().collect::<Vec<_>>(), [&r1]);
    assert_eq!(read["data"][0]["query"], "hello there");
    assert_eq!(read["data"][0]["sibling_ids"], json!([m1, r1]));
    let old = page(&app, &key, &conversation, &format!("&leaf_id={m1}")).await;
    assert_eq!(ids(&old), [m1.clone(), m2.clone()]);

    // Deleting the old first message takes its thread; the new one is alone again.
    let delete = |id: &str| {
        app.client.delete(app.url(&format!("/v1/messages/{id}"))).bearer_auth(&key.key).json(&json!({"user": "alice"}))
    };
    assert_eq!(send(delete(&m1)).await.0, 204);
    let read = page(&app, &key, &conversation, "").await;
    assert_eq!((ids(&read), &read["data"][0]["sibling_ids"]), (vec![r1.clone()], &json!([r1])));
    assert_error(
        &send(app.get(&key, &format!("/v1/messages?user=alice&conversation_id={conversation}&leaf_id={m2}"))).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn deleting_a_sibling_leaves_the_others_and_forks_copy_one_branch() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let first = chat(&app, &key, "start", None, None).await;
    let conversation = first["conversation_id"].as_str().unwrap().to_owned();
    let c = Some(conversation.as_str());
    let m1 = id(&first);
    let a = id(&chat(&app, &key, "branch a", c, None).await);
    let a2 = id(&chat(&app, &key, "branch a, more", c, None).await);
    let b = id(&chat(&app, &key, "branch b", c, Some(&m1)).await);
    let c2 = id(&regenerate(&app, &key, &b, "alice").await.1);

    // A fork of branch a copies that thread alone.
    let (status, fork) = send(app.post(
        &key,
        &format!("/v1/conversations/{conversation}/fork"),
        json!({"user": "alice", "message_id": a2}),
    ))
    .await;
    assert_eq!(status, 201, "{fork}");
    let copy = page(&app, &key, fork["id"].as_str().unwrap(), "").await;
    let queries: Vec<&str> = copy["data"].as_array().unwrap().iter().map(|m| m["query"].as_str().unwrap()).collect();
    assert_eq!(queries, ["start", "branch a", "branch a, more"]);
    assert!(copy["data"].as_array().unwrap().iter().all(|m| m["sibling_count"] == 1), "{copy}");

    let delete = |id: &str| {
        app.client.delete(app.url(&format!("/v1/messages/{id}"))).bearer_auth(&key.key).json(&json!({"user": "alice"}))
    };
    assert_eq!(send(delete(&b)).await.0, 204);
    let read = page(&app, &key, &conversation, "").await;
    assert_eq!(ids(&read).iter().collect::<Vec<_>>(), [&m1, &c2]);
    assert_eq!(read["data"][1]["sibling_ids"], json!([a, c2]));
    assert_eq!(send(delete(&a)).await.0, 204);
    let read = page(&app, &key, &conversation, "").await;
    assert_eq!(read["data"][1]["sibling_ids"], json!([c2]));
    let operator = app.operator_key(&key).await;
    let (_, row) = send(app.get(&operator, "/v1/app/conversations")).await;
    let counts: Vec<&Value> = row["data"].as_array().unwrap().iter().map(|r| &r["message_count"]).collect();
    assert!(counts.contains(&&json!(2)), "{row}");
}

#[tokio::test]
async fn regenerate_and_parent_message_id_are_the_callers_own() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let other_app = app.chat_app().await;
    let first = chat(&app, &key, "mine", None, None).await;
    let conversation = first["conversation_id"].as_str().unwrap().to_owned();
    let m1 = id(&first);
    let elsewhere = chat(&app, &key, "another conversation", None, None).await;
    let foreign = id(&elsewhere);

    // Regenerate: another user, another app, unknown, malformed (a route 404), operator key.
    assert_error(&regenerate(&app, &key, &m1, "bob").await, 404, "not_found");
    assert_error(&regenerate(&app, &other_app, &m1, "alice").await, 404, "not_found");
    assert_error(&regenerate(&app, &key, &unknown_id(), "alice").await, 404, "not_found");
    assert_error(&regenerate(&app, &key, "not-a-uuid", "alice").await, 404, "not_found");
    let operator = app.operator_key(&key).await;
    assert_error(&regenerate(&app, &operator, &m1, "alice").await, 403, "forbidden");
    let body = json!({"user": "alice", "response_mode": "sideways"});
    assert_error(&send(app.post(&key, &format!("/v1/messages/{m1}/regenerate"), body)).await, 400, "invalid_param");
    assert_error(
        &send(app.post(&key, &format!("/v1/messages/{m1}/regenerate"), json!({}))).await,
        400,
        "invalid_param",
    );

    // parent_message_id: of another conversation, unknown, malformed, without a conversation.
    let ask = |parent: &str, conversation: Option<&str>| {
        let mut body = json!({"inputs": {}, "query": "q", "user": "alice", "parent_message_id": parent});
        if let Some(id) = conversation {
            body["conversation_id"] = json!(id);
        }
        app.post(&key, "/v1/chat-messages", body)
    };
    assert_error(&send(ask(&foreign, Some(&conversation))).await, 404, "not_found");
    assert_error(&send(ask(&unknown_id(), Some(&conversation))).await, 404, "not_found");
    assert_error(&send(ask("nope", Some(&conversation))).await, 400, "invalid_param");
    assert_error(&send(ask(&m1, None)).await, 404, "not_found");

    // A message added without a query has nothing to answer again.
    let items = json!([{"answer": "An agent speaking."}]);
    let (_, added) = send(app.post(
        &key,
        &format!("/v1/conversations/{conversation}/messages"),
        json!({"user": "alice", "items": items}),
    ))
    .await;
    let answer_only = added["message_ids"][0].as_str().unwrap().to_owned();
    assert_error(&regenerate(&app, &key, &answer_only, "alice").await, 400, "invalid_param");

    // A deleted conversation's messages are gone for both.
    let gone = send(app.delete(&key, &format!("/v1/conversations/{conversation}"), json!({"user": "alice"}))).await;
    assert_eq!(gone.0, 204, "{gone:?}");
    assert_error(&regenerate(&app, &key, &m1, "alice").await, 404, "not_found");
    assert_error(&send(ask(&m1, Some(&conversation))).await, 404, "not_found");
    // No message was written by any refused request.
    let read = page(&app, &key, elsewhere["conversation_id"].as_str().unwrap(), "").await;
    assert_eq!(ids(&read).iter().collect::<Vec<_>>(), [&foreign]);
}
