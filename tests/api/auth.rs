use colloquy_core::domain::{AppConfig, AppMode, AppStatus};
use colloquy_tests::*;
use std::time::Duration;

#[tokio::test]
async fn a_missing_or_malformed_header_is_401_with_www_authenticate() {
    let app = spawn_app().await;
    for header in [None, Some("Bearer"), Some(""), Some("app-abc")] {
        let mut request = app.client.get(app.url("/v1/conversations"));
        if let Some(h) = header {
            request = request.header("Authorization", h);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"api\"");
        let body = read(response).await;
        assert_error(&body, 401, "unauthorized");
        assert_eq!(body.1["message"], "Authorization header must be provided and start with 'Bearer'", "{header:?}");
    }
}

#[tokio::test]
async fn another_scheme_is_401() {
    let app = spawn_app().await;
    let body = send(app.client.get(app.url("/v1/info")).header("Authorization", "Basic dXNlcjpwYXNz")).await;
    assert_error(&body, 401, "unauthorized");
    assert_eq!(body.1["message"], "Authorization scheme must be 'Bearer'");
}

#[tokio::test]
async fn an_unknown_key_is_401_and_the_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    let body =
        send(app.client.get(app.url("/v1/info")).header("Authorization", "Bearer app-unknownunknownunknownunkn")).await;
    assert_error(&body, 401, "unauthorized");
    assert_eq!(body.1["message"], "Access token is invalid");
    let (status, _) =
        send(app.client.get(app.url("/v1/info")).header("Authorization", format!("bEaReR {}", key.key))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_revoked_key_stops_working_and_other_keys_keep_working() {
    let app = spawn_app().await;
    let first = app.chat_app().await;
    let second = colloquy_core::admin::create_key(
        app.store.as_ref(),
        app.clock.as_ref(),
        &colloquy_core::system::TimeOrderedIds,
        first.app.id,
        colloquy_core::domain::KeyRole::App,
    )
    .await
    .unwrap();
    colloquy_core::admin::revoke_key(
        app.store.as_ref(),
        app.clock.as_ref(),
        &colloquy_core::system::TimeOrderedIds,
        &first.key,
    )
    .await
    .unwrap();
    assert_error(&send(app.get(&first, "/v1/info")).await, 401, "unauthorized");
    let second = TestKey { app: first.app.clone(), key: second.expose().to_owned() };
    assert_eq!(send(app.get(&second, "/v1/info")).await.0, 200);
    assert!(
        colloquy_core::admin::revoke_key(
            app.store.as_ref(),
            app.clock.as_ref(),
            &colloquy_core::system::TimeOrderedIds,
            &first.key
        )
        .await
        .is_err(),
        "revoking twice reports it"
    );
}

/// With the key cache on (Lambda's default), a revoked key and a disabled app are seen
/// within the cache's lifetime, and a new key works at once (misses are not cached).
#[tokio::test]
async fn cached_keys_are_served_for_ten_seconds_at_most() {
    let app = spawn_app_caching_keys(Duration::from_secs(10)).await;
    let key = app.chat_app().await;
    assert_eq!(send(app.get(&key, "/v1/info")).await.0, 200);
    colloquy_core::admin::revoke_key(
        app.store.as_ref(),
        app.clock.as_ref(),
        &colloquy_core::system::TimeOrderedIds,
        &key.key,
    )
    .await
    .unwrap();
    assert_eq!(send(app.get(&key, "/v1/info")).await.0, 200, "served from memory");
    app.clock.advance_seconds(10);
    assert_error(&send(app.get(&key, "/v1/info")).await, 401, "unauthorized");
    let fresh = app.chat_app().await;
    assert_eq!(send(app.get(&fresh, "/v1/info")).await.0, 200, "a new key works at once");
}

#[tokio::test]
async fn a_disabled_api_or_abnormal_app_is_403() {
    let app = spawn_app().await;
    let disabled = app.create_app(AppMode::Chat, AppConfig { enable_api: false, ..AppConfig::default() }).await;
    let body = send(app.get(&disabled, "/v1/conversations")).await;
    assert_error(&body, 403, "forbidden");
    assert_eq!(body.1["message"], "The app's API service has been disabled.");

    let abnormal =
        app.create_app(AppMode::Chat, AppConfig { status: AppStatus::Abnormal, ..AppConfig::default() }).await;
    let body = send(app.get(&abnormal, "/v1/info")).await;
    assert_error(&body, 403, "forbidden");
    assert_eq!(body.1["message"], "The app's status is abnormal.");
}

#[tokio::test]
async fn keys_are_stored_only_as_hashes() {
    let dir = std::env::temp_dir().join(format!("colloquy-keys-{}", unknown_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("colloquy.db");
    let store = colloquy_embedded::sqlite::SqliteStore::open(&path).unwrap();
    let clock = ManualClock::at_seconds(T0);
    let (_, key) = colloquy_core::admin::create_app(
        &store,
        &clock,
        &colloquy_core::system::TimeOrderedIds,
        "Hashing",
        AppMode::Chat,
        AppConfig::default(),
    )
    .await
    .unwrap();
    drop(store);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let haystack = String::from_utf8_lossy(&bytes);
    assert!(!haystack.contains(key.expose()), "the raw key must not be stored");
    assert!(haystack.contains(key.hash().as_str()), "its hash is");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_before_auth() {
    let app = spawn_app().await;
    let body = send(app.client.get(app.url("/v1/nope"))).await;
    assert_error(&body, 404, "not_found");
    let body = send(app.client.put(app.url("/v1/conversations"))).await;
    assert_error(&body, 405, "method_not_allowed");
    let response = app.client.patch(app.url(&format!("/v1/apps/annotations/{}", unknown_id()))).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "PUT, DELETE, OPTIONS", "405 names the route's methods");
}
