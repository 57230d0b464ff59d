use colloquy_core::domain::{AppConfig, AppMode};
use colloquy_tests::*;
use serde_json::json;

fn configured() -> AppConfig {
    AppConfig::from_json(
        &json!({
            "description": "Trip planner",
            "tags": ["travel"],
            "opening_statement": "Hello {{name}}!",
            "suggested_questions": ["Where to?"],
            "suggested_questions_after_answer": {"enabled": true},
            "text_to_speech": {"enabled": true, "voice": "Joanna", "language": "en-US"},
            "user_input_form": [{"text-input": {"label": "Name", "variable": "name", "required": true, "max_length": 48, "default": ""}}],
            "site": {"title": "Planner", "icon_type": "image", "icon_url": "https://example.com/i.png", "copyright": "ACME"},
            "tool_icons": {"weather": "https://example.com/w.png"}
        })
        .to_string(),
    )
    .unwrap()
}

#[tokio::test]
async fn info_reflects_the_app() {
    let app = spawn_app().await;
    let key = app.create_app(AppMode::AdvancedChat, configured()).await;
    let (status, body) = send(app.get(&key, "/v1/info?user=x")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"name": "Test app", "description": "Trip planner", "tags": ["travel"], "mode": "advanced-chat"})
    );
}

#[tokio::test]
async fn parameters_carry_the_configuration_and_defaults() {
    let app = spawn_app().await;
    let key = app.create_app(AppMode::Chat, configured()).await;
    let (status, body) = send(app.get(&key, "/v1/parameters?user=x")).await;
    assert_eq!(status, 200);
    assert_eq!(body["opening_statement"], "Hello {{name}}!");
    assert_eq!(body["suggested_questions"], json!(["Where to?"]));
    assert_eq!(body["suggested_questions_after_answer"], json!({"enabled": true}));
    assert_eq!(body["text_to_speech"], json!({"enabled": true, "voice": "Joanna", "language": "en-US"}));
    assert_eq!(body["speech_to_text"], json!({"enabled": false}));
    assert_eq!(body["user_input_form"][0]["text-input"]["variable"], "name");
    assert_eq!(body["sensitive_word_avoidance"], json!({"enabled": false, "type": "", "configs": []}));
    assert_eq!(body["file_upload"]["image"]["enabled"], false);
    assert_eq!(body["system_parameters"]["file_size_limit"], 15);
    let expected = [
        "annotation_reply",
        "file_upload",
        "more_like_this",
        "opening_statement",
        "retriever_resource",
        "sensitive_word_avoidance",
        "speech_to_text",
        "suggested_questions",
        "suggested_questions_after_answer",
        "system_parameters",
        "text_to_speech",
        "user_input_form",
    ];
    let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn meta_and_site() {
    let app = spawn_app().await;
    let key = app.create_app(AppMode::Chat, configured()).await;
    let (_, meta) = send(app.get(&key, "/v1/meta?user=x")).await;
    assert_eq!(meta, json!({"tool_icons": {"weather": "https://example.com/w.png"}}));
    let (status, site) = send(app.get(&key, "/v1/site")).await;
    assert_eq!(status, 200);
    assert_eq!(site["title"], "Planner");
    assert_eq!(site["icon_url"], "https://example.com/i.png");
    assert_eq!(site["copyright"], "ACME");
    assert_eq!(site["default_language"], "en-US");
    assert_eq!(site.as_object().unwrap().len(), 14);

    let plain = app.chat_app().await;
    let (_, site) = send(app.get(&plain, "/v1/site")).await;
    assert_eq!(site["title"], "Test app", "the title defaults to the app name");
    assert_eq!(site["icon_url"], json!(null));
    let (_, meta) = send(app.get(&plain, "/v1/meta")).await;
    assert_eq!(meta, json!({"tool_icons": {}}));
}

#[tokio::test]
async fn an_updated_configuration_is_served_at_once() {
    let app = spawn_app().await;
    let key = app.chat_app().await;
    colloquy_core::admin::update_config(app.store.as_ref(), key.app.id, configured()).await.unwrap();
    let (_, body) = send(app.get(&key, "/v1/parameters")).await;
    assert_eq!(body["opening_statement"], "Hello {{name}}!");
    let disabled = AppConfig { enable_api: false, ..configured() };
    colloquy_core::admin::update_config(app.store.as_ref(), key.app.id, disabled).await.unwrap();
    assert_error(&send(app.get(&key, "/v1/parameters")).await, 403, "forbidden");
}
