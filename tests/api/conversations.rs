use colloquy_core::domain::{AppConfig, AppMode, Timestamp};
use colloquy_tests::*;
use serde_json::json;

fn ids(body: &serde_json::Value) -> Vec<String> {
    body["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn lists_the_callers_conversations_newest_update_first() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let older = app.seed_conversation(&key, "alice", "older").await;
    app.clock.advance_seconds(5);
    let newer = app.seed_conversation(&key, "alice", "newer").await;

    let (status, body) = send(app.get(&key, "/v1/conversations?user=alice")).await;
    assert_eq!(status, 200);
    assert_eq!(body["limit"], 20);
    assert_eq!(body["has_more"], false);
    assert_eq!(ids(&body), vec![newer.id.to_string(), older.id.to_string()]);
    assert_eq!(
        body["data"][0],
        json!({"id": newer.id.to_string(), "name": "newer", "inputs": {}, "status": "normal",
               "introduction": "", "created_at": T0 + 5, "updated_at": T0 + 5})
    );
}

#[tokio::test]
async fn every_sort_order_is_honoured() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let a = app.seed_conversation_at(&key, "u", "a", Timestamp::from_micros(T0 * 1_000_000)).await;
    let mut b = app.seed_conversation_at(&key, "u", "b", Timestamp::from_micros((T0 + 1) * 1_000_000)).await;
    // b was created later but a was updated later.
    let mut a2 = a.clone();
    a2.updated_at = Timestamp::from_micros((T0 + 9) * 1_000_000);
    app.store.update_conversation(&a2).await.unwrap();
    b.updated_at = b.created_at;
    let expect = [
        ("created_at", vec![a.id, b.id]),
        ("-created_at", vec![b.id, a.id]),
        ("updated_at", vec![b.id, a.id]),
        ("-updated_at", vec![a.id, b.id]),
    ];
    for (sort, order) in expect {
        let (status, body) = send(app.get(&key, &format!("/v1/conversations?user=u&sort_by={sort}"))).await;
        assert_eq!(status, 200);
        let order: Vec<String> = order.iter().map(ToString::to_string).collect();
        assert_eq!(ids(&body), order, "{sort}");
    }
}

#[tokio::test]
async fn limit_and_has_more_and_last_id() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let mut seeded = Vec::new();
    for i in 0..3 {
        seeded.push(app.seed_conversation(&key, "u", &format!("c{i}")).await);
        app.clock.advance_seconds(1);
    }
    let (_, page) = send(app.get(&key, "/v1/conversations?user=u&limit=2")).await;
    assert_eq!(page["limit"], 2);
    assert_eq!(page["has_more"], true);
    assert_eq!(ids(&page), vec![seeded[2].id.to_string(), seeded[1].id.to_string()]);
    let (_, page) = send(app.get(&key, &format!("/v1/conversations?user=u&limit=2&last_id={}", seeded[1].id))).await;
    assert_eq!(page["has_more"], false);
    assert_eq!(ids(&page), vec![seeded[0].id.to_string()]);
    // A full last page says there is no more.
    let (_, page) = send(app.get(&key, "/v1/conversations?user=u&limit=3")).await;
    assert_eq!(page["has_more"], false);
}

#[tokio::test]
async fn bad_parameters_are_400_invalid_param() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    for query in ["limit=0", "limit=101", "limit=abc", "sort_by=name", "last_id=not-a-uuid"] {
        let body = send(app.get(&key, &format!("/v1/conversations?user=u&{query}"))).await;
        assert_error(&body, 400, "invalid_param");
    }
    assert_eq!(send(app.get(&key, "/v1/conversations?user=u&limit=100")).await.0, 200);
}

#[tokio::test]
async fn an_unknown_or_foreign_last_id_is_404() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let bobs = app.seed_conversation(&key, "bob", "bob's").await;
    for last in [unknown_id(), bobs.id.to_string()] {
        let body = send(app.get(&key, &format!("/v1/conversations?user=alice&last_id={last}"))).await;
        assert_error(&body, 404, "not_found");
        assert_eq!(body.1["message"], "Last Conversation Not Exists.");
    }
}

#[tokio::test]
async fn users_and_apps_are_isolated_and_default_user_is_shared() {
    let app = spawn_app().await;
    let one = app.chat_app().await;
    let two = app.chat_app().await;
    let alices = app.seed_conversation(&one, "alice", "alice in one").await;
    app.seed_conversation(&two, "alice", "alice in two").await;
    let anonymous = app.seed_conversation(&one, "DEFAULT-USER", "shared").await;

    let (_, body) = send(app.get(&one, "/v1/conversations?user=alice")).await;
    assert_eq!(ids(&body), vec![alices.id.to_string()]);
    let (_, body) = send(app.get(&one, "/v1/conversations?user=bob")).await;
    assert!(ids(&body).is_empty());
    let (_, body) = send(app.get(&one, "/v1/conversations")).await;
    assert_eq!(ids(&body), vec![anonymous.id.to_string()]);
    let (_, body) = send(app.get(&two, "/v1/conversations?user=ALICE")).await;
    assert!(ids(&body).is_empty(), "user strings are case-sensitive");
}

/// Read routes never write: a user who has only read owns no end user afterwards (Dify
/// creates one on every read; nothing observable depends on it).
#[tokio::test]
async fn reads_create_no_end_user() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let seeded = app.seed_conversation(&key, "alice", "hers").await;
    let c = seeded.id;
    for path in [
        "/v1/conversations?user=reader".to_owned(),
        format!("/v1/messages?user=reader&conversation_id={c}"),
        format!("/v1/conversations/{c}/variables?user=reader"),
    ] {
        let (status, _) = send(app.get(&key, &path)).await;
        assert!(status == 200 || status == 404, "{path}: {status}");
    }
    let reader = colloquy_core::domain::UserRef::parse("reader").unwrap();
    assert!(app.store.find_end_user(key.app.id, &reader).await.unwrap().is_none(), "no end user was created");
    // A known user still reads their own data.
    let (_, body) = send(app.get(&key, "/v1/conversations?user=alice")).await;
    assert_eq!(ids(&body), vec![c.to_string()]);
}

#[tokio::test]
async fn non_chat_apps_are_refused() {
    let app = spawn_app().await;
    for mode in [AppMode::Completion, AppMode::Workflow] {
        let key = app.create_app(mode, AppConfig::default()).await;
        let body = send(app.get(&key, "/v1/conversations?user=u")).await;
        assert_error(&body, 400, "not_chat_app");
    }
    for mode in [AppMode::AgentChat, AppMode::AdvancedChat] {
        let key = app.create_app(mode, AppConfig::default()).await;
        assert_eq!(send(app.get(&key, "/v1/conversations?user=u")).await.0, 200);
    }
}

/// End users first seen before ids were derived from (app, user) keep their random id: every
/// read route still finds their data (the stored end user is looked up when the derived id
/// finds nothing), and their writes keep going to the same end user.
#[tokio::test]
async fn end_users_from_before_derived_ids_keep_their_data() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let legacy = app.legacy_end_user(&key, "old-timer").await;
    let conversation = app.seed_conversation(&key, "old-timer", "kept").await;
    assert_eq!(conversation.owner, legacy.owner(), "seeded as the stored end user");
    let message = app.seed_message(&conversation, "hello").await;
    let id = conversation.id;

    let (status, body) = send(app.get(&key, "/v1/conversations?user=old-timer")).await;
    assert_eq!((status, ids(&body)), (200, vec![id.to_string()]), "{body}");
    let path = format!("/v1/conversations?user=old-timer&last_id={id}");
    let (status, body) = send(app.get(&key, &path)).await;
    assert_eq!((status, body["data"].as_array().map(Vec::len)), (200, Some(0)), "{body}");
    let (status, body) = send(app.get(&key, &format!("/v1/messages?user=old-timer&conversation_id={id}"))).await;
    assert_eq!((status, body["data"][0]["id"].as_str()), (200, Some(message.id.to_string().as_str())), "{body}");
    let (status, body) = send(app.get(&key, &format!("/v1/conversations/{id}/variables?user=old-timer"))).await;
    assert_eq!(status, 200, "{body}");

    // A write as the same user rates the same message, which the next page shows.
    let feedback = json!({"rating": "like", "user": "old-timer"});
    let (status, body) = send(app.post(&key, &format!("/v1/messages/{}/feedbacks", message.id), feedback)).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = send(app.get(&key, &format!("/v1/messages?user=old-timer&conversation_id={id}"))).await;
    assert_eq!(body["data"][0]["feedback"]["rating"], "like", "{body}");

    // Another user, new or old, sees none of it.
    app.legacy_end_user(&key, "other-old").await;
    for user in ["other-old", "newcomer"] {
        let (status, body) = send(app.get(&key, &format!("/v1/conversations?user={user}"))).await;
        assert_eq!((status, body["data"].as_array().map(Vec::len)), (200, Some(0)), "{user}: {body}");
        let path = format!("/v1/messages?user={user}&conversation_id={id}");
        assert_eq!(send(app.get(&key, &path)).await.0, 404, "{user}");
    }
}
