//! The operator routes (Colloquy extensions): operator keys, every conversation of an app
//! with its counters and filters, and any conversation's messages with their feedback.

use std::collections::{BTreeMap, BTreeSet};

use colloquy_core::domain::{Rating, Timestamp};
use colloquy_tests::*;
use serde_json::{Value, json};

fn at(second: i64) -> Timestamp {
    Timestamp::from_micros((T0 + second) * 1_000_000)
}

/// Every page of `path` (which has no `?` yet unless `query` adds one) followed by `last_id`.
async fn all_pages(app: &TestApp, key: &TestKey, query: &str, limit: u32) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let cursor = last.as_ref().map(|id| format!("&last_id={id}")).unwrap_or_default();
        let path = format!("/v1/app/conversations?limit={limit}{query}{cursor}");
        let (status, body) = send(app.get(key, &path)).await;
        assert_eq!(status, 200, "{path}: {body}");
        let page = body["data"].as_array().unwrap().clone();
        assert!(page.len() <= limit as usize);
        rows.extend(page.iter().cloned());
        if !body["has_more"].as_bool().unwrap() {
            return rows;
        }
        last = Some(page.last().unwrap()["id"].as_str().unwrap().to_owned());
    }
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter().map(|row| row["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn operator_routes_take_operator_keys_only_and_operator_keys_never_act_as_end_users() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    assert!(operator.key.starts_with("op-"));
    let chat = app.seed_conversation(&key, "alice", "a").await;
    for path in ["/v1/app/conversations".to_owned(), format!("/v1/app/conversations/{}/messages", chat.id)] {
        let body = send(app.get(&key, &path)).await;
        assert_error(&body, 403, "forbidden");
        assert_eq!(body.1["message"], "This route needs an operator key.");
        assert_eq!(send(app.get(&operator, &path)).await.0, 200, "{path}");
    }
    for path in ["/v1/conversations?user=alice".to_owned(), format!("/v1/messages?conversation_id={}", chat.id)] {
        assert_error(&send(app.get(&operator, &path)).await, 403, "forbidden");
    }
    let chat_body = json!({"query": "hi", "user": "alice", "inputs": {}, "response_mode": "blocking"});
    assert_error(&send(app.post(&operator, "/v1/chat-messages", chat_body)).await, 403, "forbidden");
    // App-wide routes that app keys reach in Dify take both kinds.
    for path in ["/v1/info", "/v1/parameters", "/v1/app/feedbacks", "/v1/apps/annotations"] {
        assert_eq!(send(app.get(&operator, path)).await.0, 200, "{path}");
        assert_eq!(send(app.get(&key, path)).await.0, 200, "{path}");
    }
}

#[tokio::test]
async fn an_operator_sees_nothing_of_another_app_nor_deleted_or_unknown_conversations() {
    let app = spawn_app().await;
    let mine = app.chat_app().await;
    let theirs = app.chat_app().await;
    let operator = app.operator_key(&mine).await;
    let foreign = app.seed_conversation(&theirs, "alice", "theirs").await;
    app.seed_message(&foreign, "q").await;
    let own = app.seed_conversation(&mine, "alice", "mine").await;
    app.seed_message(&own, "q").await;

    assert_eq!(ids(&all_pages(&app, &operator, "", 20).await), vec![own.id.to_string()]);
    let path = format!("/v1/app/conversations/{}/messages", foreign.id);
    assert_error(&send(app.get(&operator, &path)).await, 404, "not_found");
    assert_error(
        &send(app.get(&operator, &format!("/v1/app/conversations?last_id={}", foreign.id))).await,
        404,
        "not_found",
    );
    let unknown = format!("/v1/app/conversations/{}/messages", unknown_id());
    assert_error(&send(app.get(&operator, &unknown)).await, 404, "not_found");
    let malformed = send(app.get(&operator, "/v1/app/conversations/not-a-uuid/messages")).await;
    assert_eq!(malformed.0, 404);

    let (status, _) = send(app.delete(&mine, &format!("/v1/conversations/{}", own.id), json!({"user": "alice"}))).await;
    assert_eq!(status, 204);
    assert!(all_pages(&app, &operator, "", 20).await.is_empty(), "a deleted conversation is gone at once");
    let path = format!("/v1/app/conversations/{}/messages", own.id);
    assert_error(&send(app.get(&operator, &path)).await, 404, "not_found");
    // A revoked operator key is refused like any key.
    colloquy_core::admin::revoke_key(
        app.store.as_ref(),
        app.clock.as_ref(),
        &colloquy_core::system::TimeOrderedIds,
        &operator.key,
    )
    .await
    .unwrap();
    assert_error(&send(app.get(&operator, "/v1/app/conversations")).await, 401, "unauthorized");
}

#[tokio::test]
async fn every_conversation_of_the_app_with_whose_it_is_its_counts_and_each_filter() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let alice = app.seed_conversation_at(&key, "alice", "Refund please", at(10)).await;
    let bob = app.seed_conversation_at(&key, "bob", "Shipping", at(20)).await;
    let carol = app.seed_conversation_at(&key, "carol", "refund again", at(30)).await;
    let alice2 = app.seed_conversation_at(&key, "alice", "Other", at(40)).await;
    let a1 = app.seed_message_at(&alice, "q1", at(11)).await;
    let a2 = app.seed_message_at(&alice, "q2", at(12)).await;
    let b1 = app.seed_message_at(&bob, "q", at(21)).await;
    app.seed_rating(&a1, Rating::Like).await;
    app.seed_rating(&a2, Rating::Dislike).await;
    app.seed_rating(&b1, Rating::Like).await;

    let rows = all_pages(&app, &operator, "", 20).await;
    assert_eq!(ids(&rows), [&alice2, &carol, &bob, &alice].map(|c| c.id.to_string()), "newest activity first");
    let row = &rows[3];
    assert_eq!(row["user"], "alice");
    assert_eq!(row["end_user_id"], alice.owner.end_user_id.to_string());
    assert_eq!(
        (row["message_count"].as_u64(), row["like_count"].as_u64(), row["dislike_count"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(row["last_message_at"], T0 + 12);
    assert_eq!(row["name"], "Refund please");
    assert_eq!((row["created_at"].as_i64(), row["updated_at"].as_i64()), (Some(T0 + 10), Some(T0 + 10)));
    assert_eq!(rows[1]["message_count"], 0);
    assert_eq!(rows[1]["last_message_at"], Value::Null);

    let filtered = |query: &'static str| {
        let (app, operator) = (&app, &operator);
        async move { ids(&all_pages(app, operator, query, 20).await) }
    };
    let names = |cs: &[&colloquy_core::domain::Conversation]| cs.iter().map(|c| c.id.to_string()).collect::<Vec<_>>();
    assert_eq!(filtered("&user=alice").await, names(&[&alice2, &alice]));
    assert_eq!(filtered("&user=nobody").await, names(&[]));
    assert_eq!(filtered("&rating=like").await, names(&[&bob, &alice]));
    assert_eq!(filtered("&rating=dislike").await, names(&[&alice]));
    assert_eq!(filtered("&name=REFUND").await, names(&[&carol, &alice]));
    let range = format!("&created_after={}&created_before={}", T0 + 20, T0 + 40);
    assert_eq!(ids(&all_pages(&app, &operator, &range, 20).await), names(&[&carol, &bob]), "[after, before)");
    let range = format!("&updated_after={}", T0 + 30);
    assert_eq!(ids(&all_pages(&app, &operator, &range, 1).await), names(&[&alice2, &carol]));
    let range = "&updated_before=2025-01-16T10:00:30Z"; // T0 + 30
    assert_eq!(ids(&all_pages(&app, &operator, range, 1).await), names(&[&bob, &alice]), "RFC 3339 too");
    assert_eq!(filtered("&user=alice&rating=like&name=refund").await, names(&[&alice]), "all filters hold");

    let empty = format!("&updated_after={}&updated_before={}", T0 + 50, T0 + 40);
    assert!(all_pages(&app, &operator, &empty, 20).await.is_empty(), "an empty range finds nothing");
    for bad in ["rating=meh", "created_after=yesterday", "limit=0", "limit=101"] {
        let body = send(app.get(&operator, &format!("/v1/app/conversations?{bad}"))).await;
        assert_error(&body, 400, "invalid_param");
    }
    let last = send(app.get(&operator, &format!("/v1/app/conversations?last_id={}", unknown_id()))).await;
    assert_error(&last, 404, "not_found");
}

#[tokio::test]
async fn paging_gives_each_conversation_once_despite_equal_times_and_new_conversations() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let mut seeded = BTreeSet::new();
    for i in 0..23 {
        // Three end users, many conversations at the very same time (ties are ordered by id).
        let user = ["alice", "bob", "carol"][i % 3];
        seeded.insert(app.seed_conversation_at(&key, user, "same time", at(5 + (i as i64 % 2))).await.id.to_string());
    }
    let mut seen = Vec::new();
    let mut last: Option<String> = None;
    let mut inserted = 0;
    loop {
        let cursor = last.as_ref().map(|id| format!("&last_id={id}")).unwrap_or_default();
        let (_, body) = send(app.get(&operator, &format!("/v1/app/conversations?limit=4{cursor}"))).await;
        // Conversations started between pages are newer than every page: they never show up
        // in the pages still to come, and never push a conversation out of them.
        app.seed_conversation_at(&key, "dave", "new", at(100 + inserted)).await;
        inserted += 1;
        let page = body["data"].as_array().unwrap();
        seen.extend(ids(page));
        if !body["has_more"].as_bool().unwrap() {
            break;
        }
        last = Some(page.last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no conversation twice");
    assert_eq!(unique, seeded, "every conversation once");
}

#[tokio::test]
async fn counts_equal_a_recount_after_writes_and_deletes_through_the_api() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    // Conversations and messages made through the chat route, feedback given, changed and
    // revoked, a conversation deleted; then every row's counters against a recount.
    let mut conversations: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    let users = ["alice", "bob", "carol"];
    let mut step = 0_u64;
    let mut pick = |n: usize| {
        // A fixed pseudo-random sequence (splitmix64), so a failure can be replayed.
        step = step.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = step;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    };
    let mut ratings: BTreeMap<String, Option<&str>> = BTreeMap::new();
    for _ in 0..24 {
        let user = users[pick(3)];
        let existing: Vec<String> =
            conversations.iter().filter(|(_, (u, _))| u == user).map(|(id, _)| id.clone()).collect();
        let conversation_id =
            if existing.is_empty() || pick(3) == 0 { None } else { Some(existing[pick(existing.len())].clone()) };
        let mut body = json!({"query": "hello", "user": user, "inputs": {}, "response_mode": "blocking"});
        if let Some(id) = &conversation_id {
            body["conversation_id"] = json!(id);
        }
        let (status, answer) = send(app.post(&key, "/v1/chat-messages", body)).await;
        assert_eq!(status, 200, "{answer}");
        let (id, message) =
            (answer["conversation_id"].as_str().unwrap().to_owned(), answer["message_id"].as_str().unwrap().to_owned());
        conversations.entry(id).or_insert_with(|| (user.to_owned(), Vec::new())).1.push(message.clone());
        app.clock.advance_seconds(1);
        // Rate, re-rate or revoke one of this user's messages.
        let mine: Vec<String> =
            conversations.values().filter(|(u, _)| u == user).flat_map(|(_, m)| m.clone()).collect();
        let target = mine[pick(mine.len())].clone();
        let rating = [Some("like"), Some("dislike"), None][pick(3)];
        let current = ratings.get(&target).copied().flatten();
        if rating.is_some() || current.is_some() {
            let path = format!("/v1/messages/{target}/feedbacks");
            let (status, body) = send(app.post(&key, &path, json!({"rating": rating, "user": user}))).await;
            assert_eq!(status, 200, "{body}");
            ratings.insert(target, rating);
        }
    }
    let doomed = conversations.keys().next().unwrap().clone();
    let owner = conversations[&doomed].0.clone();
    let (status, _) = send(app.delete(&key, &format!("/v1/conversations/{doomed}"), json!({"user": owner}))).await;
    assert_eq!(status, 204);
    conversations.remove(&doomed);

    let rows = all_pages(&app, &operator, "", 7).await;
    assert_eq!(rows.len(), conversations.len());
    for row in rows {
        let (user, messages) = &conversations[row["id"].as_str().unwrap()];
        let count =
            |wanted: &str| messages.iter().filter(|m| ratings.get(*m).copied().flatten() == Some(wanted)).count();
        assert_eq!(row["user"], user.as_str());
        assert_eq!(row["message_count"], messages.len(), "{row}");
        assert_eq!(row["like_count"], count("like"), "{row}");
        assert_eq!(row["dislike_count"], count("dislike"), "{row}");
    }
}

#[tokio::test]
async fn any_conversations_messages_with_every_feedback_on_them_paged_as_messages() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let chat = app.seed_conversation_at(&key, "alice", "c", at(0)).await;
    let mut messages = Vec::new();
    for second in 1..=5 {
        messages.push(app.seed_message_at(&chat, &format!("q{second}"), at(second)).await);
    }
    app.seed_rating(&messages[1], Rating::Dislike).await;
    let path = format!("/v1/app/conversations/{}/messages", chat.id);
    let (status, body) = send(app.get(&operator, &format!("{path}?limit=3"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["limit"].as_u64(), body["has_more"].as_bool()), (Some(3), Some(true)));
    let page = body["data"].as_array().unwrap();
    let queries: Vec<&str> = page.iter().map(|m| m["query"].as_str().unwrap()).collect();
    assert_eq!(queries, ["q3", "q4", "q5"], "the newest page, oldest first, as /messages");
    assert!(page.iter().all(|m| m["feedbacks"].as_array().unwrap().is_empty()));
    let (_, older) = send(app.get(&operator, &format!("{path}?limit=3&first_id={}", messages[2].id))).await;
    let older = older["data"].as_array().unwrap().clone();
    assert_eq!(older.iter().map(|m| m["query"].as_str().unwrap()).collect::<Vec<_>>(), ["q1", "q2"]);
    let rated = &older[1];
    assert_eq!(rated["feedback"], json!({"rating": "dislike"}), "the end user's rating, as /messages has it");
    let feedbacks = rated["feedbacks"].as_array().unwrap();
    assert_eq!(feedbacks.len(), 1);
    assert_eq!(feedbacks[0]["rating"], "dislike");
    assert_eq!(feedbacks[0]["from_source"], "user");
    assert_eq!(feedbacks[0]["from_end_user_id"], chat.owner.end_user_id.to_string());
    // What the end user's own /messages shows is what the operator sees (plus the feedback list).
    let (_, own) = send(app.get(&key, &format!("/v1/messages?conversation_id={}&user=alice&limit=3", chat.id))).await;
    for (theirs, ours) in own["data"].as_array().unwrap().iter().zip(page) {
        let mut ours = ours.clone();
        ours.as_object_mut().unwrap().remove("feedbacks");
        // The end user's own view places each message in its tree; the operators' lists every branch.
        let mut theirs = theirs.clone();
        let place = theirs.as_object_mut().unwrap();
        assert_eq!(place.remove("sibling_count"), Some(json!(1)));
        assert_eq!(place.remove("sibling_ids"), Some(json!([ours["id"]])));
        assert_eq!(ours, theirs);
    }
    let missing = send(app.get(&operator, &format!("{path}?first_id={}", unknown_id()))).await;
    assert_error(&missing, 404, "not_found");
}

#[tokio::test]
async fn a_keys_use_is_noted_for_the_key_list() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let listed = colloquy_core::admin::list_keys(app.store.as_ref(), key.app.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|k| k.last_used_at.is_none()));
    assert_eq!(send(app.get(&operator, "/v1/app/conversations")).await.0, 200);
    let listed = colloquy_core::admin::list_keys(app.store.as_ref(), key.app.id).await.unwrap();
    let used: Vec<_> = listed.iter().filter(|k| k.last_used_at.is_some()).collect();
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].role, colloquy_core::domain::KeyRole::Operator);
    assert_eq!(used[0].last_used_at, Some(app.now()));
    assert!(listed.iter().all(|k| !k.shown.as_deref().unwrap().contains(&key.key[8..])), "never the key");
}

#[tokio::test]
async fn operators_rate_any_message_apart_from_the_end_users_rating() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let chat = app.seed_conversation_at(&key, "alice", "c", at(0)).await;
    let message = app.seed_message_at(&chat, "q", at(1)).await;
    app.seed_rating(&message, Rating::Like).await;
    let path = format!("/v1/app/messages/{}/feedbacks", message.id);

    assert_error(&send(app.post(&key, &path, json!({"rating": "dislike"}))).await, 403, "forbidden");
    let (status, body) = send(app.post(&operator, &path, json!({"rating": "dislike", "content": "wrong"}))).await;
    assert_eq!((status, body), (200, json!({"result": "success"})));
    let row = |rows: Vec<Value>| rows.into_iter().next().unwrap();
    let listed = row(all_pages(&app, &operator, "", 20).await);
    assert_eq!(
        (listed["like_count"].as_u64(), listed["dislike_count"].as_u64()),
        (Some(1), Some(1)),
        "both sources count"
    );
    // The end user still sees their own rating; the operators' is listed beside it.
    let (_, own) = send(app.get(&key, &format!("/v1/messages?conversation_id={}&user=alice", chat.id))).await;
    assert_eq!(own["data"][0]["feedback"], json!({"rating": "like"}));
    let (_, seen) = send(app.get(&operator, &format!("/v1/app/conversations/{}/messages", chat.id))).await;
    let sources: BTreeMap<String, String> = seen["data"][0]["feedbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["from_source"].as_str().unwrap().to_owned(), f["rating"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(sources, BTreeMap::from([("admin".into(), "dislike".into()), ("user".into(), "like".into())]));
    let (_, feedbacks) = send(app.get(&key, "/v1/app/feedbacks")).await;
    let admin: Vec<&Value> =
        feedbacks["data"].as_array().unwrap().iter().filter(|f| f["from_source"] == "admin").collect();
    assert_eq!(admin.len(), 1, "listed in the app's feedback");
    assert_eq!((admin[0]["from_end_user_id"].clone(), admin[0]["content"].clone()), (Value::Null, json!("wrong")));

    // Changed, then revoked: one operators' feedback per message, counts follow.
    assert_eq!(send(app.post(&operator, &path, json!({"rating": "like"}))).await.0, 200);
    let listed = row(all_pages(&app, &operator, "", 20).await);
    assert_eq!((listed["like_count"].as_u64(), listed["dislike_count"].as_u64()), (Some(2), Some(0)));
    assert_eq!(send(app.post(&operator, &path, json!({"rating": null}))).await.0, 200);
    let listed = row(all_pages(&app, &operator, "", 20).await);
    assert_eq!((listed["like_count"].as_u64(), listed["dislike_count"].as_u64()), (Some(1), Some(0)));
    let (_, feedbacks) = send(app.get(&key, "/v1/app/feedbacks")).await;
    assert_eq!(feedbacks["data"].as_array().unwrap().len(), 1);
    assert_error(&send(app.post(&operator, &path, json!({"rating": null}))).await, 400, "invalid_param");
    assert_error(&send(app.post(&operator, &path, json!({"rating": "meh"}))).await, 400, "invalid_param");

    // Another app's message, an unknown one, a malformed id, a deleted conversation's.
    let other = app.chat_app().await;
    let foreign = app.seed_message(&app.seed_conversation(&other, "alice", "x").await, "q").await;
    let foreign_path = format!("/v1/app/messages/{}/feedbacks", foreign.id);
    assert_error(&send(app.post(&operator, &foreign_path, json!({"rating": "like"}))).await, 404, "not_found");
    let unknown = format!("/v1/app/messages/{}/feedbacks", unknown_id());
    assert_error(&send(app.post(&operator, &unknown, json!({"rating": "like"}))).await, 404, "not_found");
    assert_eq!(send(app.post(&operator, "/v1/app/messages/nope/feedbacks", json!({"rating": "like"}))).await.0, 404);
    assert_eq!(send(app.post(&operator, &path, json!({"rating": "dislike"}))).await.0, 200);
    let (status, _) = send(app.delete(&key, &format!("/v1/conversations/{}", chat.id), json!({"user": "alice"}))).await;
    assert_eq!(status, 204);
    assert_error(&send(app.post(&operator, &path, json!({"rating": "like"}))).await, 404, "not_found");
    let (_, feedbacks) = send(app.get(&key, "/v1/app/feedbacks")).await;
    assert!(feedbacks["data"].as_array().unwrap().is_empty(), "gone with the conversation");
}

#[tokio::test]
async fn every_operator_action_and_key_command_is_in_the_apps_audit_log() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let other_app = app.chat_app().await;
    let other_operator = app.operator_key(&other_app).await;
    let chat = app.seed_conversation(&key, "alice", "c").await;
    let message = app.seed_message(&chat, "q").await;

    send(app.get(&operator, "/v1/app/conversations?rating=like&limit=5")).await;
    send(app.get(&operator, &format!("/v1/app/conversations/{}/messages", chat.id))).await;
    send(app.post(&operator, &format!("/v1/app/messages/{}/feedbacks", message.id), json!({"rating": "like"}))).await;
    let spare = colloquy_core::admin::create_key(
        app.store.as_ref(),
        app.clock.as_ref(),
        &colloquy_core::system::TimeOrderedIds,
        key.app.id,
        colloquy_core::domain::KeyRole::App,
    )
    .await
    .unwrap();
    let ids = &colloquy_core::system::TimeOrderedIds;
    colloquy_core::admin::revoke_key(app.store.as_ref(), app.clock.as_ref(), ids, spare.expose()).await.unwrap();

    assert_error(&send(app.get(&key, "/v1/app/audit-log")).await, 403, "forbidden");
    let (status, body) = send(app.get(&operator, "/v1/app/audit-log?limit=3")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["has_more"], true);
    let mut entries = body["data"].as_array().unwrap().clone();
    let last = entries.last().unwrap()["id"].as_str().unwrap().to_owned();
    let (_, rest) = send(app.get(&operator, &format!("/v1/app/audit-log?limit=20&last_id={last}"))).await;
    entries.extend(rest["data"].as_array().unwrap().iter().cloned());
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "audit_log.read",
            "key.revoke",
            "key.create",
            "message.rate",
            "conversation.read",
            "conversations.list",
            "key.create"
        ],
        "newest first, every action once (the first key.create made the operator key)"
    );
    let shown = &operator.key[..7];
    let by_action = |action: &str| entries.iter().find(|e| e["action"] == action).unwrap().clone();
    let listing = by_action("conversations.list");
    assert!(listing["actor"].as_str().unwrap().starts_with(shown), "{listing}");
    assert_eq!((listing["target"].clone(), listing["detail"].clone()), (Value::Null, json!("rating=like&limit=5")));
    assert_eq!(by_action("conversation.read")["target"], chat.id.to_string());
    assert_eq!(
        (by_action("message.rate")["target"].clone(), by_action("message.rate")["detail"].clone()),
        (json!(message.id.to_string()), json!("rating=like"))
    );
    let revoked = by_action("key.revoke");
    assert_eq!(revoked["actor"], "cli");
    assert!(revoked["target"].as_str().unwrap().starts_with(&spare.expose()[..8]), "{revoked}");
    assert!(entries.iter().all(|e| !e.to_string().contains(spare.expose())), "never a key");
    assert_eq!(by_action("key.create")["created_at"], app.now().unix_seconds());

    // Another app's operator sees its own log only.
    let (_, theirs) = send(app.get(&other_operator, "/v1/app/audit-log")).await;
    let theirs: Vec<&str> = theirs["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(theirs, ["audit_log.read", "key.create"]);
    assert_error(&send(app.get(&operator, "/v1/app/audit-log?last_id=nope")).await, 400, "invalid_param");
}

#[tokio::test]
async fn audit_entries_expire_after_their_retention() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    send(app.get(&operator, "/v1/app/conversations")).await;
    app.clock.advance_seconds(colloquy_core::domain::AUDIT_RETENTION_DAYS * 86_400 + 1);
    let (_, body) = send(app.get(&operator, "/v1/app/audit-log")).await;
    let actions: Vec<&str> = body["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["audit_log.read"], "older entries are gone");
}

#[tokio::test]
async fn operators_delete_any_conversation_of_their_app_only() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let other = app.chat_app().await;
    let other_operator = app.operator_key(&other).await;
    let conversation = app.seed_conversation(&key, "alice", "to go").await;
    app.seed_message(&conversation, "q").await;
    let path = format!("/v1/app/conversations/{}", conversation.id);
    let delete = |k: &TestKey, path: &str| app.client.delete(app.url(path)).bearer_auth(&k.key);
    assert_error(&send(delete(&key, &path)).await, 403, "forbidden");
    assert_error(&send(delete(&other_operator, &path)).await, 404, "not_found");
    assert_error(&send(delete(&operator, "/v1/app/conversations/not-a-uuid")).await, 404, "not_found");
    let (status, body) = send(delete(&operator, &path)).await;
    assert_eq!((status, body), (204, serde_json::Value::Null));
    let (_, page) = send(app.get(&key, "/v1/conversations?user=alice")).await;
    assert_eq!(page["data"], serde_json::json!([]));
    assert_error(&send(delete(&operator, &path)).await, 404, "not_found");
    let (_, log) = send(app.get(&operator, "/v1/app/audit-log")).await;
    let deleted = log["data"].as_array().unwrap().iter().filter(|e| e["action"] == "conversation.delete").count();
    assert_eq!(deleted, 1, "{log}");
}

/// A chat app with text to speech and image uploads, on the OpenAI speech fake.
async fn speaking_app() -> (TestApp, TestKey, colloquy_tests::fakes::OpenAiFake) {
    let fake = colloquy_tests::fakes::OpenAiFake::start().await;
    let app = spawn_app_with_speech(crate::audio::openai_speech(&fake).await).await;
    let config = colloquy_core::domain::AppConfig::from_json(
        r#"{"text_to_speech": {"enabled": true},
            "file_upload": {"image": {"enabled": true, "number_limits": 3, "transfer_methods": ["local_file"]}}}"#,
    )
    .unwrap();
    let key = app.create_app(colloquy_core::domain::AppMode::Chat, config).await;
    (app, key, fake)
}

/// Uploads an image for `user` and asks about it: (file id, conversation id, message id, answer).
async fn chat_with_image(app: &TestApp, key: &TestKey, user: &str, bytes: &[u8]) -> [String; 4] {
    let form = crate::files::form(Some(user), "cat.png", "image/png", bytes.to_vec());
    let (status, file) = crate::files::upload(app, key, form).await;
    assert_eq!(status, 201, "{file}");
    let files = json!([{"type": "image", "transfer_method": "local_file", "upload_file_id": file["id"]}]);
    let body = json!({"inputs": {}, "query": "what is it", "user": user, "files": files, "response_mode": "blocking"});
    let (status, answer) = send(app.post(key, "/v1/chat-messages", body)).await;
    assert_eq!(status, 200, "{answer}");
    ["id", "conversation_id", "message_id", "answer"].map(|name| {
        let source = if name == "id" { &file } else { &answer };
        source[name].as_str().unwrap().to_owned()
    })
}

#[tokio::test]
async fn operators_see_a_threads_images_and_hear_its_answers_in_their_app_only() {
    let (app, key, _fake) = speaking_app().await;
    let operator = app.operator_key(&key).await;
    let [file, conversation, message, answer] = chat_with_image(&app, &key, "alice", b"PNGDATA").await;
    let (_, thread) = send(app.get(&operator, &format!("/v1/app/conversations/{conversation}/messages"))).await;
    assert_eq!(thread["data"][0]["message_files"][0]["upload_file_id"], file.as_str(), "{thread}");

    let preview = |c: &str, f: &str| format!("/v1/app/conversations/{c}/files/{f}/preview");
    let response = app.get(&operator, &preview(&conversation, &file)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["content-disposition"], "inline; filename*=UTF-8''cat.png");
    assert_eq!(headers["content-security-policy"], "sandbox");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(response.bytes().await.unwrap().to_vec(), b"PNGDATA".to_vec());
    let download = app.get(&operator, &format!("{}?as_attachment=true", preview(&conversation, &file)));
    let download = download.send().await.unwrap();
    assert_eq!(download.headers()["content-disposition"], "attachment; filename*=UTF-8''cat.png");

    let audio = |c: &str, m: &str| format!("/v1/app/conversations/{c}/messages/{m}/audio");
    let response = app.get(&operator, &audio(&conversation, &message)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    assert_eq!(response.bytes().await.unwrap().to_vec(), colloquy_tests::fakes::fake_speech("alloy", &answer));
    let nova = app.get(&operator, &format!("{}?voice=NOVA", audio(&conversation, &message))).send().await.unwrap();
    assert_eq!(nova.bytes().await.unwrap().to_vec(), colloquy_tests::fakes::fake_speech("nova", &answer));
    let unknown_voice = send(app.get(&operator, &format!("{}?voice=nope", audio(&conversation, &message)))).await;
    assert_error(&unknown_voice, 400, "invalid_param");

    // App keys never reach them; another app's operator, another user's file or message, unknown
    // and malformed ids do not find them.
    for path in [preview(&conversation, &file), audio(&conversation, &message)] {
        assert_error(&send(app.get(&key, &path)).await, 403, "forbidden");
        let theirs = app.create_app(colloquy_core::domain::AppMode::Chat, Default::default()).await;
        let their_operator = app.operator_key(&theirs).await;
        assert_error(&send(app.get(&their_operator, &path)).await, 404, "not_found");
    }
    let [bobs_file, bobs_conversation, bobs_message, _] = chat_with_image(&app, &key, "bob", b"BOB").await;
    assert_error(&send(app.get(&operator, &preview(&conversation, &bobs_file))).await, 404, "file_not_found");
    assert_error(&send(app.get(&operator, &audio(&conversation, &bobs_message))).await, 404, "not_found");
    let bobs = app.get(&operator, &preview(&bobs_conversation, &bobs_file)).send().await.unwrap();
    assert_eq!(bobs.bytes().await.unwrap().to_vec(), b"BOB".to_vec());
    assert_error(&send(app.get(&operator, &preview(&conversation, &unknown_id()))).await, 404, "file_not_found");
    assert_error(&send(app.get(&operator, &preview(&unknown_id(), &file))).await, 404, "not_found");
    assert_error(&send(app.get(&operator, &audio(&conversation, &unknown_id()))).await, 404, "not_found");
    assert_error(&send(app.get(&operator, &audio(&unknown_id(), &message))).await, 404, "not_found");
    for malformed in [preview("not-a-uuid", &file), preview(&conversation, "x"), audio(&conversation, "1")] {
        assert_error(&send(app.get(&operator, &malformed)).await, 404, "not_found");
    }

    let (_, log) = send(app.get(&operator, "/v1/app/audit-log?limit=100")).await;
    let entries = log["data"].as_array().unwrap();
    let targets = |action: &str| -> BTreeSet<String> {
        entries.iter().filter(|e| e["action"] == action).map(|e| e["target"].as_str().unwrap().to_owned()).collect()
    };
    assert!(targets("file.preview").contains(&file), "{log}");
    assert!(targets("message.audio").contains(&message), "{log}");

    // Gone with its conversation.
    let gone = app.client.delete(app.url(&format!("/v1/app/conversations/{conversation}"))).bearer_auth(&operator.key);
    assert_eq!(send(gone).await.0, 204);
    assert_error(&send(app.get(&operator, &preview(&conversation, &file))).await, 404, "not_found");
    assert_error(&send(app.get(&operator, &audio(&conversation, &message))).await, 404, "not_found");
}

#[tokio::test]
async fn an_operators_audio_needs_text_to_speech_enabled() {
    let (app, _, _fake) = speaking_app().await;
    let key = app.chat_app().await;
    let operator = app.operator_key(&key).await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let message = app.seed_message(&conversation, "weather").await;
    let path = format!("/v1/app/conversations/{}/messages/{}/audio", conversation.id, message.id);
    let (status, body) = send(app.get(&operator, &path)).await;
    assert_error(&(status, body.clone()), 400, "invalid_param");
    assert_eq!(body["message"], "TTS is not enabled");
}
