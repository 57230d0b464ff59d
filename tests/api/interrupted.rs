//! Generations that never finished: the process answering died (a crash, a killed Lambda) and
//! left its message generating. (The deadline that bounds a live generation is tested in
//! `colloquy_core::api::chat`, on Tokio's paused clock.)

use colloquy_core::domain::{
    ABANDONED_AFTER, ABANDONED_ERROR, AppConfig, AppMode, Conversation, Cursor, Message, MessageId, TaskId, Timestamp,
};
use colloquy_tests::*;
use serde_json::{Map, Value, json};

/// A message left as the chat endpoint stores it while answering, `seconds_ago` before now.
async fn left_generating(app: &TestApp, conversation: &Conversation, query: &str, seconds_ago: i64) -> Message {
    let id = MessageId::from_uuid(uuid::Uuid::now_v7());
    let created_at = Timestamp::from_micros(app.now().micros() - seconds_ago * 1_000_000);
    // It replies to the message before it, as a chat's does.
    let before = app.store.messages_before(conversation.id, Some(Cursor { at: created_at, id }), 1).await.unwrap();
    let message = Message {
        id,
        conversation_id: conversation.id,
        owner: conversation.owner,
        parent_message_id: before.first().map(|m| m.id),
        inputs: Map::new(),
        query: query.into(),
        answer: String::new(),
        message_files: Vec::new(),
        retriever_resources: Vec::new(),
        agent_thoughts: Vec::new(),
        status: colloquy_core::domain::MessageStatus::Normal,
        error: None,
        metadata: colloquy_core::domain::OpaqueJson::empty_object(),
        created_at,
        task_id: Some(TaskId::from_uuid(uuid::Uuid::now_v7())),
    };
    assert!(app.store.insert_message(&message).await.unwrap());
    message
}

fn abandoned_after() -> i64 {
    ABANDONED_AFTER.as_secs() as i64
}

async fn history(app: &TestApp, key: &TestKey, conversation: &Conversation) -> Vec<Value> {
    let path = format!("/v1/messages?user=alice&conversation_id={}", conversation.id);
    let (status, body) = send(app.get(key, &path)).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

fn row<'a>(rows: &'a [Value], message: &Message) -> &'a Value {
    rows.iter().find(|r| r["id"] == message.id.to_string()).expect("the message is listed")
}

#[tokio::test]
async fn a_message_abandoned_by_a_crash_is_served_as_failed_and_a_running_one_is_not() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let crashed = left_generating(&app, &conversation, "before the crash", abandoned_after() + 1).await;
    let running = left_generating(&app, &conversation, "still answering", 10).await;

    let rows = history(&app, &key, &conversation).await;
    let failed = row(&rows, &crashed);
    assert_eq!(failed["status"], "error", "{failed}");
    assert_eq!(failed["error"], ABANDONED_ERROR);
    assert_eq!(failed["answer"], "");
    let answering = row(&rows, &running);
    assert_eq!((answering["status"].clone(), answering["error"].clone()), (json!("normal"), json!(null)));
    assert_eq!(answering["answer"], "", "a recent generation is shown as Dify shows one in progress");
    // Dify's shape is unchanged (with our two fields placing the message in its tree).
    let fields: Vec<&String> = failed.as_object().unwrap().keys().filter(|k| !k.starts_with("sibling_")).collect();
    let expected = ["agent_thoughts", "answer", "conversation_id", "created_at", "error", "feedback", "id", "inputs"];
    assert!(expected.iter().all(|f| fields.iter().any(|k| k == f)) && fields.len() == 13, "{fields:?}");

    // The failure is stored, not only shown.
    let stored = app.store.message(conversation.owner, crashed.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.error.as_deref(), stored.task_id),
        ("error", Some(ABANDONED_ERROR), None)
    );
    assert_eq!(app.store.message(conversation.owner, running.id).await.unwrap().unwrap().task_id, running.task_id);

    // Once nothing can be answering it any more, the other one ends too.
    app.clock.advance_seconds(abandoned_after());
    let rows = history(&app, &key, &conversation).await;
    assert_eq!(row(&rows, &running)["status"], "error");
    assert_eq!(row(&rows, &running)["error"], ABANDONED_ERROR);
}

#[tokio::test]
async fn the_history_the_model_sees_and_suggestions_end_abandoned_messages_too() {
    let app = spawn_app().await;
    let config = AppConfig::from_json(r#"{"suggested_questions_after_answer": {"enabled": true}}"#).unwrap();
    let key = app.create_app(AppMode::Chat, config).await;

    let continued = app.seed_conversation(&key, "alice", "c").await;
    let crashed = left_generating(&app, &continued, "lost question", abandoned_after() + 5).await;
    let body = json!({"inputs": {}, "query": "again", "user": "alice", "conversation_id": continued.id});
    let (status, answer) = send(app.post(&key, "/v1/chat-messages", body)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["answer"].as_str().unwrap().contains("1 earlier questions"), "its query is still history");
    let stored = app.store.message(continued.owner, crashed.id).await.unwrap().unwrap();
    assert_eq!(stored.status.as_str(), "error", "reading the history for the model ended it");

    let suggested = app.seed_conversation(&key, "alice", "s").await;
    let crashed = left_generating(&app, &suggested, "what about cats?", abandoned_after() + 5).await;
    let path = format!("/v1/messages/{}/suggested?user=alice", crashed.id);
    let (status, body) = send(app.get(&key, &path)).await;
    assert_eq!(status, 200, "{body}");
    let stored = app.store.message(suggested.owner, crashed.id).await.unwrap().unwrap();
    assert_eq!((stored.status.as_str(), stored.error.as_deref()), ("error", Some(ABANDONED_ERROR)));
}
