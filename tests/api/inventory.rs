//! What a store holds of an app or of one end user (`Inventory`, behind `colloquy inspect`):
//! counted object by object, each end user's apart from the others'.

use colloquy_core::domain::{AppConfig, AppMode, EndUserId, Owner, Rating, ValueType};
use colloquy_tests::*;
use reqwest::multipart::{Form, Part};
use serde_json::json;

#[tokio::test]
async fn an_end_users_holdings_are_theirs_alone_and_within_the_apps() {
    let app = spawn_app().await;
    let config =
        r#"{"file_upload": {"image": {"enabled": true, "number_limits": 3, "transfer_methods": ["local_file"]}}}"#;
    let key = app.create_app(AppMode::Chat, AppConfig::from_json(config).unwrap()).await;
    let operator = app.operator_key(&key).await;
    let mut alice_messages = Vec::new();
    for c in 0..2 {
        let conversation = app.seed_conversation(&key, "alice", &format!("a{c}")).await;
        for m in 0..3 {
            alice_messages.push(app.seed_message(&conversation, &format!("q{m}")).await);
        }
        app.seed_variable(&conversation, "topic", ValueType::String, json!("x")).await;
    }
    app.seed_rating(&alice_messages[0], Rating::Like).await;
    let path = format!("/v1/app/messages/{}/feedbacks", alice_messages[1].id);
    assert_eq!(send(app.post(&operator, &path, json!({"rating": "dislike"}))).await.0, 200);
    let part = Part::bytes(vec![7u8; 100]).file_name("photo.png").mime_str("image/png").unwrap();
    let form = Form::new().text("user", "alice").part("file", part);
    let (status, file) = send(app.client.post(app.url("/v1/files/upload")).bearer_auth(&key.key).multipart(form)).await;
    assert_eq!(status, 201, "{file}");
    let bob = app.seed_conversation(&key, "bob", "b").await;
    app.seed_message(&bob, "q").await;
    app.seed_message(&bob, "q2").await;

    let (alice_id, bob_id) = (app.end_user(&key, "alice").await.id, app.end_user(&key, "bob").await.id);
    let of = |ids: Vec<EndUserId>| {
        let (store, id) = (app.store.clone(), key.app.id);
        async move { store.inventory(id, Some(&ids)).await.unwrap() }
    };
    let alice = of(vec![alice_id]).await;
    let bob_holdings = of(vec![bob_id]).await;
    let whole = app.store.inventory(key.app.id, None).await.unwrap();
    assert_eq!(alice.files.iter().map(ToString::to_string).collect::<Vec<_>>(), [file["id"].as_str().unwrap()]);
    assert!(bob_holdings.files.is_empty());
    assert!(alice.total() > bob_holdings.total() && bob_holdings.total() > 0, "{alice:?} {bob_holdings:?}");
    assert!(alice.total() + bob_holdings.total() <= whole.total(), "{whole:?}");
    assert_eq!(of(Vec::new()).await.total(), 0);
    // An end user's files are listed by owner.
    let owner = |end_user_id| Owner { app_id: key.app.id, end_user_id };
    let listed = app.store.files_of(owner(alice_id)).await.unwrap();
    assert_eq!(listed.iter().map(|f| f.id.to_string()).collect::<Vec<_>>(), [file["id"].as_str().unwrap()]);
    assert_eq!((listed[0].name.as_str(), listed[0].size), ("photo.png", 100));
    assert!(app.store.files_of(owner(bob_id)).await.unwrap().is_empty());

    // Exact counts, in each store's own terms.
    let count = |kind: &str| alice.counts.get(kind).copied().unwrap_or(0);
    if testing_on_dynamodb() {
        assert_eq!((count("OWN/CONV"), count("CONV"), count("MSG/MSG"), count("VARS")), (2, 6, 6, 2), "{alice:?}");
        assert_eq!((count("MSG/FB"), count("APPFB"), count("FILE"), count("EU")), (2, 2, 1, 1), "{alice:?}");
    } else {
        assert_eq!((count("conversations"), count("messages"), count("conversation_variables")), (2, 6, 2));
        assert_eq!((count("feedbacks"), count("upload_files"), count("end_users")), (2, 1, 1), "{alice:?}");
    }

    // Another user's writes do not change hers.
    app.seed_message(&bob, "q3").await;
    assert_eq!(of(vec![alice_id]).await, alice);
    // Nor does another app's.
    let other = app.chat_app().await;
    let theirs = app.seed_conversation(&other, "alice", "elsewhere").await;
    app.seed_message(&theirs, "q").await;
    assert_eq!(of(vec![alice_id]).await, alice);
}
