//! Guarantees of the DynamoDB store beyond the port contracts.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use colloquy_core::domain::{
    ApiKey, Conversation, ConversationId, ConversationVariable, Feedback, FeedbackId, FeedbackSource, Message,
    MessageId, OpaqueJson, Rating, Timestamp, ValueType, VariableId,
};
use colloquy_core::ports::{AppStore, ConversationStore, FeedbackStore, MessageStore, Store, VariableStore};
use colloquy_tests::aws::counted_dynamo_store;
use colloquy_tests::*;
use serde_json::{Map, json};

/// What one GET costs, counted at the SDK: requests, serial round trips, capacity units.
async fn cost(app: &TestApp, key: &TestKey, counter: &aws::RequestCounter, path: &str) -> aws::Cost {
    let before = counter.cost();
    let (status, body) = send(app.get(key, path)).await;
    assert_eq!(status, 200, "{body}");
    counter.cost() - before
}

/// Asserts a read's requests and serial round trips, that it wrote nothing, and that it read
/// at most `max_units` read units; prints what it cost (for docs/cost.md).
fn check(what: &str, cost: aws::Cost, requests: usize, rounds: usize, max_units: f64) {
    println!("{what}: {cost:?}");
    assert_eq!((cost.requests, cost.rounds), (requests, rounds), "{what}: requests and serial round trips");
    assert_eq!(cost.write_units, 0.0, "{what}: a read route writes nothing");
    assert!(cost.read_units <= max_units, "{what}: {} read units", cost.read_units);
}

#[tokio::test]
async fn a_page_costs_the_same_requests_and_round_trips_however_much_data() {
    let (store, counter) = counted_dynamo_store().await;
    let store: Arc<dyn Store> = Arc::new(store);
    // Cold: every request reads its key (the local server's default); warm: from memory.
    let cold = spawn_app_on(store.clone()).await;
    let warm = spawn_app_on_caching_keys(store, Duration::from_secs(10)).await;
    let key = cold.chat_app().await;
    let mut small = Vec::new();
    let mut large = Vec::new();
    for i in 0..60 {
        if i < 4 {
            small.push(cold.seed_conversation(&key, "small", "c").await);
        }
        large.push(cold.seed_conversation(&key, "large", "c").await);
        cold.clock.advance_seconds(1);
    }
    let short = &small[0];
    let long = &large[0];
    let mut long_messages = Vec::new();
    for i in 0..3 {
        let message = cold.seed_message(short, &format!("q{i}")).await;
        cold.seed_rating(&message, Rating::Like).await;
    }
    for i in 0..60 {
        let message = cold.seed_message(long, &format!("q{i}")).await;
        if i % 2 == 0 {
            cold.seed_rating(&message, Rating::Dislike).await;
        }
        long_messages.push(message);
        cold.clock.advance_seconds(1);
    }
    send(warm.get(&key, "/v1/info")).await;

    for (app, warmth, auth) in [(&cold, "cold", 1), (&warm, "warm", 0)] {
        for (user, conversations) in [("small", &small), ("large", &large)] {
            // The key (cold), then the owner's Query: the end user's id is derived, not read.
            let path = format!("/v1/conversations?user={user}&limit=3");
            check(
                &format!("{warmth} conversations, {user}"),
                cost(app, &key, &counter, &path).await,
                auth + 1,
                auth + 1,
                4.0,
            );
            // With last_id: the cursor's conversation first.
            let last = conversations[1].id;
            let path = format!("/v1/conversations?user={user}&limit=3&last_id={last}&sort_by=created_at");
            check(
                &format!("{warmth} conversations after a cursor, {user}"),
                cost(app, &key, &counter, &path).await,
                auth + 2,
                auth + 2,
                5.0,
            );
        }
        for (user, conversation, first) in [("small", short, 1), ("large", long, 0)] {
            // The conversation (ownership) and the page's Query together; ratings and replies
            // are on the message items. A page that reaches the conversation's first message
            // then reads the conversation's first messages (its siblings), once.
            let path = format!("/v1/messages?user={user}&conversation_id={}&limit=20", conversation.id);
            check(
                &format!("{warmth} messages, {user}"),
                cost(app, &key, &counter, &path).await,
                auth + 2 + first,
                auth + 1 + first,
                8.0,
            );
        }
        // first_id: its pointer beside the ownership check, then the page.
        let path =
            format!("/v1/messages?user=large&conversation_id={}&limit=20&first_id={}", long.id, long_messages[30].id);
        check(
            &format!("{warmth} messages before first_id"),
            cost(app, &key, &counter, &path).await,
            auth + 3,
            auth + 2,
            9.0,
        );
    }
    // The ratings read from the message items are the ones given.
    let path = format!("/v1/messages?user=large&conversation_id={}&limit=4", long.id);
    let (_, body) = send(cold.get(&key, &path)).await;
    let ratings: Vec<&serde_json::Value> = body["data"].as_array().unwrap().iter().map(|m| &m["feedback"]).collect();
    // The newest four, oldest first: every other one (from the first) was disliked.
    assert_eq!(ratings, [&json!({"rating": "dislike"}), &json!(null), &json!({"rating": "dislike"}), &json!(null)]);

    // The writes most chat apps send, for docs/cost.md: a rating, and a blocking chat that
    // continues a conversation (echo model).
    // (The warm one changes the rating, so both change the usage counters.)
    for (app, warmth, auth, rating) in [(&cold, "cold", 1, "like"), (&warm, "warm", 0, "dislike")] {
        let before = counter.cost();
        let body = json!({"rating": rating, "user": "large"});
        let (status, answer) =
            send(app.post(&key, &format!("/v1/messages/{}/feedbacks", long_messages[1].id), body)).await;
        assert_eq!(status, 200, "{answer}");
        let rating = counter.cost() - before;
        println!("{warmth} feedback: {rating:?}");
        // End user, pointer, conversation + message, the caller's feedback, rate window, the
        // write, the usage counters' update.
        assert_eq!(rating.requests, auth + 7, "{warmth} feedback");
        assert!(rating.write_units > 0.0);
        let before = counter.cost();
        let body = json!({"query": "more", "user": "large", "inputs": {}, "response_mode": "blocking", "conversation_id": long.id});
        let (status, answer) = send(app.post(&key, "/v1/chat-messages", body)).await;
        assert_eq!(status, 200, "{answer}");
        let chat = counter.cost() - before;
        println!("{warmth} blocking chat: {chat:?}");
        // (One of them reads the parent's pointer: the new message joins its parent's replies.)
        assert!(chat.requests <= auth + 11, "{warmth} chat: {chat:?}");
    }
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
        assert!(store.save_feedback(&feedback, None, m).await.unwrap());
        // The operators' feedback on the same message, kept apart and purged too.
        let operators = Feedback {
            id: FeedbackId::from_uuid(uuid::Uuid::now_v7()),
            source: FeedbackSource::Admin,
            from_end_user_id: None,
            rating: Rating::Dislike,
            ..feedback
        };
        assert!(store.save_feedback(&operators, None, m).await.unwrap());
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
    let started = std::time::Instant::now();
    loop {
        attempts += 1;
        match store.purge_conversation(owner, conversation.id).await {
            Ok(_) => break,
            Err(error) => assert!(attempts < 2_000, "the purge does not converge: {error}"),
        }
    }
    counter.fail_every.store(0, Ordering::SeqCst);
    // For docs/data-model.md ("Deleting at scale").
    println!("purged {messages_count} messages in {:.1} s over {attempts} runs", started.elapsed().as_secs_f64());
    assert!(attempts > 1, "failures were injected");
    let ids: Vec<MessageId> = messages.iter().map(|m| m.id).collect();
    assert_eq!(store.conversation_item_count(owner, conversation.id, &ids).await.unwrap(), 0);
    // Running it again is harmless.
    store.purge_conversation(owner, conversation.id).await.unwrap();

    let (_, kept) = send(app.get(&key, &format!("/v1/messages?user=u&conversation_id={}", keep.id))).await;
    assert_eq!(kept["data"][0]["feedback"]["rating"], "like", "other conversations are untouched");
    assert_eq!(ConversationId::from_uuid(uuid::Uuid::nil()).to_string().len(), 36);
}

/// Items written before keys carried their app and messages their rating are still read
/// right: such a key reads its app item too, such a message has its rating read from its
/// feedback item.
#[tokio::test]
async fn items_from_before_the_copies_are_read_right() {
    let (store, counter) = counted_dynamo_store().await;
    let store = Arc::new(store);
    let app = spawn_app_on(store.clone()).await;
    let key = app.chat_app().await;
    let old_key = ApiKey::generate(colloquy_core::domain::KeyRole::App);
    store.put_key_without_copy(&old_key.hash(), key.app.id, stamp(0)).await.unwrap();
    let old = TestKey { key: old_key.expose().to_owned(), app: key.app.clone() };
    let before = counter.cost();
    let (status, body) = send(app.get(&old, "/v1/info")).await;
    assert_eq!((status, body["name"].as_str()), (200, Some(key.app.name.as_str())), "{body}");
    assert_eq!((counter.cost() - before).requests, 3, "the key, then its app, and the key's first use noted");
    let before = counter.cost();
    send(app.get(&old, "/v1/info")).await;
    assert_eq!((counter.cost() - before).requests, 2, "the key, then its app (its use is noted once an hour)");
    // An update of the app reaches such a key too (it reads the app).
    let mut renamed = key.app.clone();
    renamed.name = "renamed".into();
    assert!(store.update_app(&renamed).await.unwrap());
    assert_eq!(send(app.get(&old, "/v1/info")).await.1["name"], "renamed");

    let conversation = app.seed_conversation(&key, "u", "c").await;
    let liked = app.seed_message(&conversation, "liked").await;
    let plain = app.seed_message(&conversation, "plain").await;
    app.seed_rating(&liked, Rating::Like).await;
    for message in [&liked, &plain] {
        store.forget_rating_copy(message).await.unwrap();
    }
    let path = format!("/v1/messages?user=u&conversation_id={}", conversation.id);
    // The key's first use of the hour is noted (one write); the reads below are measured after.
    send(app.get(&key, "/v1/info")).await;
    let before = counter.cost();
    let (status, body) = send(app.get(&key, &path)).await;
    assert_eq!(status, 200, "{body}");
    let ratings: Vec<&serde_json::Value> = body["data"].as_array().unwrap().iter().map(|m| &m["feedback"]).collect();
    assert_eq!(ratings, [&json!({"rating": "like"}), &json!(null)]);
    let requests = (counter.cost() - before).requests;
    assert_eq!(requests, 5, "key, conversation, page, the feedback of the old items, the first messages");
}

#[tokio::test]
async fn a_fork_cut_short_reads_as_nothing_and_leaves_nothing_once_purged() {
    let dynamo = Arc::new(colloquy_tests::aws::dynamo_store().await);
    let store: Arc<dyn Store> = dynamo.clone();
    let app = spawn_app_on(store.clone()).await;
    let key = app.chat_app().await;
    let source = app.seed_conversation(&key, "u", "source").await;
    let first = app.seed_message(&source, "first").await;
    let second = app.seed_message(&source, "second").await;
    // The fork's first writes, as insert_fork makes them, and then the process dies.
    let copy = Conversation { id: ConversationId::from_uuid(uuid::Uuid::now_v7()), ..source.clone() };
    let mut parent = None;
    let messages: Vec<Message> = [first, second]
        .into_iter()
        .map(|m| {
            let m = Message {
                id: MessageId::from_uuid(uuid::Uuid::now_v7()),
                conversation_id: copy.id,
                parent_message_id: parent,
                ..m
            };
            parent = Some(m.id);
            m
        })
        .collect();
    let user = colloquy_core::domain::UserRef::parse("u").unwrap();
    dynamo.fork_copies(&copy, &user, &messages, &[]).await.unwrap();

    // Nothing of it reads: not the conversation, not in any list, not its messages.
    assert_error(&send(app.get(&key, &format!("/v1/conversations/{}?user=u", copy.id))).await, 404, "not_found");
    let (_, listed) = send(app.get(&key, "/v1/conversations?user=u&limit=100")).await;
    let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [source.id.to_string()]);
    let operator = app.operator_key(&key).await;
    let (_, all) = send(app.get(&operator, "/v1/app/conversations?limit=100")).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1, "{all}");
    let path = format!("/v1/messages?user=u&conversation_id={}", copy.id);
    assert_error(&send(app.get(&key, &path)).await, 404, "not_found");
    let rate = json!({"rating": "like", "user": "u"});
    let feedback = send(app.post(&key, &format!("/v1/messages/{}/feedbacks", messages[0].id), rate)).await;
    assert_error(&feedback, 404, "not_found");
    assert!(store.message(copy.owner, messages[1].id).await.unwrap().is_none());

    // What its TTL's removal (or an erasure) starts: the purge takes the copies and the placeholder.
    dynamo.purge_conversation(copy.owner, copy.id).await.unwrap();
    assert!(store.messages_after(copy.id, None, 10).await.unwrap().is_empty());
    assert!(store.message_in(copy.id, messages[0].id).await.unwrap().is_none());
    let holdings = store.inventory(key.app.id, None).await.unwrap();
    assert_eq!(holdings.counts.get("OWN/CONV").copied(), Some(1), "the source alone: {holdings:?}");
    // The source is untouched, and a whole fork of it works.
    let (status, forked) =
        send(app.post(&key, &format!("/v1/conversations/{}/fork", source.id), json!({"user": "u"}))).await;
    assert_eq!(status, 201, "{forked}");
    let path = format!("/v1/messages?user=u&conversation_id={}", forked["id"].as_str().unwrap());
    assert_eq!(send(app.get(&key, &path)).await.1["data"].as_array().unwrap().len(), 2);
}
