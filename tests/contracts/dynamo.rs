//! Guarantees of the DynamoDB store beyond the port contracts.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use colloquy_core::domain::{
    Conversation, ConversationId, ConversationVariable, Feedback, FeedbackId, FeedbackSource, Message, MessageId,
    OpaqueJson, Rating, Timestamp, ValueType, VariableId,
};
use colloquy_core::ports::{ConversationStore, FeedbackStore, MessageStore, Store, VariableStore};
use colloquy_tests::aws::counted_dynamo_store;
use colloquy_tests::*;
use serde_json::{Map, json};

/// Requests one GET costs, counted at the SDK.
async fn cost(app: &TestApp, key: &TestKey, counter: &aws::RequestCounter, path: &str) -> usize {
    let before = counter.count();
    let (status, body) = send(app.get(key, path)).await;
    assert_eq!(status, 200, "{body}");
    counter.count() - before
}

#[tokio::test]
async fn a_page_costs_the_same_number_of_requests_however_much_data() {
    let (store, counter) = counted_dynamo_store().await;
    let store: Arc<dyn Store> = Arc::new(store);
    let app = spawn_app_on(store).await;
    let key = app.chat_app().await;
    let mut small = Vec::new();
    let mut large = Vec::new();
    for i in 0..60 {
        if i < 4 {
            small.push(app.seed_conversation(&key, "small", "c").await);
        }
        large.push(app.seed_conversation(&key, "large", "c").await);
        app.clock.advance_seconds(1);
    }
    for (user, conversations) in [("small", &small), ("large", &large)] {
        // auth (key, app) + end user + Query; with last_id also the cursor's GetItem.
        assert_eq!(cost(&app, &key, &counter, &format!("/v1/conversations?user={user}&limit=3")).await, 4, "{user}");
        let last = conversations[1].id;
        let path = format!("/v1/conversations?user={user}&limit=3&last_id={last}&sort_by=created_at");
        assert_eq!(cost(&app, &key, &counter, &path).await, 5, "{user}");
    }

    let short = &small[0];
    let long = &large[0];
    let mut long_messages = Vec::new();
    for i in 0..3 {
        app.seed_message(short, &format!("q{i}")).await;
    }
    for i in 0..60 {
        long_messages.push(app.seed_message(long, &format!("q{i}")).await);
        app.clock.advance_seconds(1);
    }
    for (user, conversation) in [("small", short), ("large", long)] {
        // auth + end user + conversation + Query + one BatchGetItem for the page's ratings.
        let path = format!("/v1/messages?user={user}&conversation_id={}&limit=20", conversation.id);
        assert_eq!(cost(&app, &key, &counter, &path).await, 6, "{user}");
    }
    // first_id adds its pointer and message reads.
    let path =
        format!("/v1/messages?user=large&conversation_id={}&limit=20&first_id={}", long.id, long_messages[30].id);
    assert_eq!(cost(&app, &key, &counter, &path).await, 8);
}

fn stamp(second: i64) -> Timestamp {
    Timestamp::from_micros((T0 + second) * 1_000_000)
}

#[tokio::test]
async fn a_large_conversation_is_deleted_at_once_then_purged_despite_failures() {
    let messages_count: usize =
        std::env::var("COLLOQUY_PURGE_TEST_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let (store, counter) = counted_dynamo_store().await;
    let store = Arc::new(store);
    let app = spawn_app_on(store.clone()).await;
    let key = app.chat_app().await;
    let keep = app.seed_conversation(&key, "u", "kept").await;
    let kept_message = app.seed_message(&keep, "stays").await;
    let conversation: Conversation = app.seed_conversation(&key, "u", "huge").await;
    let owner = conversation.owner;

    let messages: Vec<Message> = (0..messages_count)
        .map(|i| Message {
            id: MessageId::from_uuid(uuid::Uuid::now_v7()),
            conversation_id: conversation.id,
            owner,
            parent_message_id: None,
            inputs: Map::new(),
            query: format!("question {i}"),
            answer: format!("answer {i}"),
            message_files: vec![json!({"url": "https://example.com/f.png", "upload_file_id": null})],
            retriever_resources: Vec::new(),
            agent_thoughts: Vec::new(),
            status: colloquy_core::domain::MessageStatus::Normal,
            error: None,
            metadata: OpaqueJson::empty_object(),
            created_at: stamp(i as i64 % 600),
            task_id: None,
        })
        .collect();
    store.import_messages(&messages).await.unwrap();
    for (i, m) in messages.iter().step_by(messages_count / 20).enumerate() {
        let feedback = Feedback {
            id: FeedbackId::from_uuid(uuid::Uuid::now_v7()),
            app_id: owner.app_id,
            conversation_id: conversation.id,
            message_id: m.id,
            rating: Rating::Like,
            content: None,
            source: FeedbackSource::User,
            from_end_user_id: Some(owner.end_user_id),
            created_at: stamp(i as i64),
            updated_at: stamp(i as i64),
        };
        assert!(store.save_feedback(&feedback).await.unwrap());
    }
    for i in 0..5 {
        let variable = ConversationVariable {
            id: VariableId::from_uuid(uuid::Uuid::now_v7()),
            app_id: owner.app_id,
            conversation_id: conversation.id,
            name: format!("v{i}"),
            value_type: ValueType::String,
            value: json!("x"),
            description: String::new(),
            created_at: stamp(i),
            updated_at: stamp(i),
        };
        store.insert_variable(&variable).await.unwrap();
    }
    send(app.post(
        &key,
        &format!("/v1/messages/{}/feedbacks", kept_message.id),
        json!({"rating": "like", "user": "u"}),
    ))
    .await;

    // The delete is one request and hides everything at once.
    let before = counter.count();
    assert!(store.delete_conversation(owner, conversation.id).await.unwrap());
    assert_eq!(counter.count() - before, 1);
    assert_eq!(store.conversation(owner, conversation.id).await.unwrap(), None);
    assert_eq!(store.message(owner, messages[0].id).await.unwrap(), None);
    let (_, feedbacks) = send(app.get(&key, "/v1/app/feedbacks?limit=101")).await;
    assert_eq!(feedbacks["data"].as_array().unwrap().len(), 1, "only the kept conversation's feedback is listed");

    // The purge fails now and then; run again until it completes, like a stream consumer.
    counter.fail_every.store(37, Ordering::SeqCst);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match store.purge_conversation(owner, conversation.id).await {
            Ok(_) => break,
            Err(error) => assert!(attempts < 2_000, "the purge does not converge: {error}"),
        }
    }
    counter.fail_every.store(0, Ordering::SeqCst);
    assert!(attempts > 1, "failures were injected");
    let ids: Vec<MessageId> = messages.iter().map(|m| m.id).collect();
    assert_eq!(store.conversation_item_count(owner, conversation.id, &ids).await.unwrap(), 0);
    // Running it again is harmless.
    store.purge_conversation(owner, conversation.id).await.unwrap();

    let (_, kept) = send(app.get(&key, &format!("/v1/messages?user=u&conversation_id={}", keep.id))).await;
    assert_eq!(kept["data"][0]["feedback"]["rating"], "like", "other conversations are untouched");
    assert_eq!(ConversationId::from_uuid(uuid::Uuid::nil()).to_string().len(), 36);
}
