//! The real provider adapters against local fakes of their wire formats.

use std::sync::Arc;

use colloquy_aws::bedrock::{Bedrock, BedrockSettings};
use colloquy_core::domain::{AppConfig, AppMode};
use colloquy_core::models::{Models, Provider};
use colloquy_core::ports::{Embedder, Llm, LlmEvent, LlmRequest, ProviderError, Purpose, Speaker};
use colloquy_providers::echo::{EchoLlm, LexicalEmbedder};
use colloquy_providers::openai::{OpenAi, OpenAiSettings};
use colloquy_tests::fakes::{BedrockFake, OpenAiFake, assert_no_provider_detail};
use colloquy_tests::*;
use futures_util::StreamExt;
use serde_json::json;

fn openai(fake: &OpenAiFake, key: &str) -> Arc<OpenAi> {
    Arc::new(
        OpenAi::new(OpenAiSettings {
            base_url: fake.base_url.clone(),
            api_key: Some(key.into()),
            model: "fake-model".into(),
            embedding_model: "fake-embed".into(),
        })
        .unwrap(),
    )
}

fn echo() -> Provider {
    Provider { name: "echo", llm: Arc::new(EchoLlm::default()), embedder: Some(Arc::new(LexicalEmbedder)) }
}

fn with_openai(fake: &OpenAiFake, default: &'static str) -> Models {
    let client = openai(fake, "sk-test");
    Models::new(default, vec![echo(), Provider { name: "openai", llm: client.clone(), embedder: Some(client) }])
        .unwrap()
}

fn bedrock(fake: &BedrockFake) -> Arc<Bedrock> {
    let settings =
        BedrockSettings { model: "fake.claude".into(), embedding_model: "amazon.titan-embed-text-v2:0".into() };
    Arc::new(Bedrock::new(fake.client(), settings))
}

fn model_app(provider: &str, model: &str) -> AppConfig {
    AppConfig::from_json(
        &json!({"model": {"provider": provider, "name": model}, "suggested_questions_after_answer": {"enabled": true}})
            .to_string(),
    )
    .unwrap()
}

fn request(query: &str) -> LlmRequest {
    LlmRequest {
        purpose: Purpose::Chat,
        model: None,
        system: Some("Be brief.".into()),
        turns: vec![
            (Speaker::User, "earlier".into()),
            (Speaker::Assistant, "reply".into()),
            (Speaker::User, query.into()),
        ],
        max_tokens: 64,
        temperature: 0.2,
    }
}

async fn collect(stream: colloquy_core::ports::LlmStream) -> (String, Vec<LlmEvent>, Option<ProviderError>) {
    let mut text = String::new();
    let mut events = Vec::new();
    let mut stream = stream;
    while let Some(item) = stream.next().await {
        match item {
            Ok(LlmEvent::Delta(piece)) => {
                text.push_str(&piece);
                events.push(LlmEvent::Delta(piece));
            }
            Ok(done) => events.push(done),
            Err(error) => return (text, events, Some(error)),
        }
    }
    (text, events, None)
}

#[tokio::test]
async fn openai_adapter_speaks_chat_completions() {
    let fake = OpenAiFake::start().await;
    let client = openai(&fake, "sk-test");
    let answer = client.complete(request("hello")).await.unwrap();
    assert_eq!(answer.text, "Fake answer to: hello");
    assert_eq!((answer.usage.prompt_tokens, answer.usage.completion_tokens), (11, 7));
    let sent = fake.seen.lock().unwrap()[0].clone();
    assert_eq!(sent["model"], "fake-model");
    assert_eq!(sent["max_tokens"], 64);
    let roles: Vec<_> = sent["messages"].as_array().unwrap().iter().map(|m| m["role"].clone()).collect();
    assert_eq!(roles, vec![json!("system"), json!("user"), json!("assistant"), json!("user")]);

    let (text, events, error) = collect(client.stream(request("stream me")).await.unwrap()).await;
    assert!(error.is_none());
    assert_eq!(text, "Fake answer to: stream me");
    assert!(events.len() > 2);
    match events.last() {
        Some(LlmEvent::Done(usage)) => assert_eq!(usage.prompt_tokens, 11),
        other => panic!("stream must end with Done, got {other:?}"),
    }

    let vectors = client.embed(&["abc".into(), "zzz".into()], None).await.unwrap();
    assert_eq!(vectors[0], fakes_vector("abc"), "embeddings come back in input order");
    assert_eq!(vectors[1], fakes_vector("zzz"));
}

fn fakes_vector(text: &str) -> Vec<f32> {
    colloquy_tests::fakes::letter_vector(text)
}

#[tokio::test]
async fn openai_failures_are_classified() {
    let fake = OpenAiFake::start().await;
    let wrong_key = openai(&fake, "sk-wrong");
    assert!(matches!(wrong_key.complete(request("x")).await, Err(ProviderError::NotInitialized(_))));
    let client = openai(&fake, "sk-test");
    for (model, check) in [
        ("fail-rate", (|e: &ProviderError| matches!(e, ProviderError::RateLimited(_))) as fn(&ProviderError) -> bool),
        ("fail-server", |e| matches!(e, ProviderError::Failed(_))),
        ("fail-auth", |e| matches!(e, ProviderError::NotInitialized(_))),
    ] {
        let mut r = request("x");
        r.model = Some(model.into());
        let error = client.stream(r).await.err().expect("fails before streaming");
        assert!(check(&error), "{model}: {error:?}");
    }
    let mut r = request("x");
    r.model = Some("break-mid-stream".into());
    let (text, _, error) = collect(client.stream(r).await.unwrap()).await;
    assert!(!text.is_empty());
    assert_eq!(error, Some(ProviderError::Failed("The model crashed".into())));
    let unreachable = OpenAi::new(OpenAiSettings {
        base_url: "http://127.0.0.1:9/v1".into(),
        api_key: None,
        model: "m".into(),
        embedding_model: "e".into(),
    })
    .unwrap();
    assert!(matches!(unreachable.complete(request("x")).await, Err(ProviderError::Failed(_))));
}

#[tokio::test]
async fn chat_through_openai_blocking_and_streaming() {
    let fake = OpenAiFake::start().await;
    let app = spawn_app_with_models(with_openai(&fake, "openai")).await;
    let key = app.chat_app().await;
    let (status, body) =
        send(app.post(&key, "/v1/chat-messages", json!({"inputs": {}, "query": "hi there", "user": "u"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["answer"], "Fake answer to: hi there");
    assert_eq!(body["metadata"]["usage"]["prompt_tokens"], 11);
    let (_, list) = send(app.get(&key, "/v1/conversations?user=u")).await;
    assert_eq!(list["data"][0]["name"], "Fake title");

    let response = app
        .post(&key, "/v1/chat-messages", json!({"inputs": {}, "query": "again", "user": "u", "response_mode": "streaming", "conversation_id": body["conversation_id"]}))
        .send()
        .await
        .unwrap();
    let events = read_events(response).await;
    let text: String =
        events.iter().filter(|e| e.data["event"] == "message").map(|e| e.data["answer"].as_str().unwrap()).collect();
    assert_eq!(text, "Fake answer to: again");
    assert_eq!(events.last().unwrap().data["metadata"]["usage"]["completion_tokens"], 7);
    let sent = fake.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent["messages"].as_array().unwrap().len(), 3, "history (question and answer) plus the new query");
}

#[tokio::test]
async fn an_app_may_choose_its_provider_and_model() {
    let fake = OpenAiFake::start().await;
    let app = spawn_app_with_models(with_openai(&fake, "echo")).await;
    let key = app.create_app(AppMode::Chat, model_app("openai", "custom-model")).await;
    let (_, body) = send(app.post(&key, "/v1/chat-messages", json!({"inputs": {}, "query": "q", "user": "u"}))).await;
    assert_eq!(body["answer"], "Fake answer to: q");
    assert!(fake.seen.lock().unwrap().iter().all(|r| r["model"] == "custom-model"));
    let unconfigured = app.create_app(AppMode::Chat, model_app("bedrock", "x")).await;
    let answer =
        send(app.post(&unconfigured, "/v1/chat-messages", json!({"inputs": {}, "query": "q", "user": "u"}))).await;
    assert_error(&answer, 400, "provider_not_initialize");
}

#[tokio::test]
async fn provider_failures_before_the_stream_are_http_errors_and_store_nothing() {
    let fake = OpenAiFake::start().await;
    let app = spawn_app_with_models(with_openai(&fake, "echo")).await;
    for (model, status, code) in [
        ("fail-auth", 400, "provider_not_initialize"),
        ("fail-rate", 429, "rate_limit_error"),
        ("fail-server", 400, "completion_request_error"),
    ] {
        let key = app.create_app(AppMode::Chat, model_app("openai", model)).await;
        for mode in ["blocking", "streaming"] {
            let body = json!({"inputs": {}, "query": "q", "user": "u", "response_mode": mode});
            let answer = send(app.post(&key, "/v1/chat-messages", body)).await;
            assert_error(&answer, status, code);
            assert_no_provider_detail(&answer.1.to_string());
        }
        let (_, list) = send(app.get(&key, "/v1/conversations?user=u")).await;
        assert_eq!(list["data"], json!([]), "{model}");
    }
}

#[tokio::test]
async fn a_failure_after_the_stream_starts_is_an_error_event_and_an_error_message() {
    let fake = OpenAiFake::start().await;
    let app = spawn_app_with_models(with_openai(&fake, "echo")).await;
    let key = app.create_app(AppMode::Chat, model_app("openai", "break-mid-stream")).await;
    let response = app
        .post(&key, "/v1/chat-messages", json!({"inputs": {}, "query": "q", "user": "u", "response_mode": "streaming"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = read_events(response).await;
    let last = &events.last().unwrap().data;
    assert_eq!(last["event"], "error");
    assert_eq!((last["code"].as_str(), last["status"].as_u64()), (Some("completion_request_error"), Some(400)));
    // The provider's own words are logged, not shown (Dify's message for the code instead).
    assert_eq!(last["message"], "Completion request failed.");
    assert_no_provider_detail(&last.to_string());
    assert!(last.get("task_id").is_none(), "Dify's error chunk has no task_id");
    assert!(events.iter().any(|e| e.data["event"] == "message"));
    let conversation_id = last["conversation_id"].as_str().unwrap();
    let (_, history) = send(app.get(&key, &format!("/v1/messages?user=u&conversation_id={conversation_id}"))).await;
    assert_eq!(history["data"][0]["status"], "error");
    assert_eq!(history["data"][0]["error"], "Completion request failed.");

    let blocking = send(app.post(&key, "/v1/chat-messages", json!({"inputs": {}, "query": "q", "user": "u"}))).await;
    assert_error(&blocking, 400, "completion_request_error");
}

#[tokio::test]
async fn an_unreachable_provider_is_a_generic_error() {
    let client = Arc::new(
        OpenAi::new(OpenAiSettings {
            base_url: "http://127.0.0.1:9/v1".into(),
            api_key: None,
            model: "m".into(),
            embedding_model: "e".into(),
        })
        .unwrap(),
    );
    let models =
        Models::new("openai", vec![echo(), Provider { name: "openai", llm: client.clone(), embedder: Some(client) }])
            .unwrap();
    let app = spawn_app_with_models(models).await;
    let key = app.chat_app().await;
    for mode in ["blocking", "streaming"] {
        let body = json!({"inputs": {}, "query": "q", "user": "u", "response_mode": mode});
        let answer = send(app.post(&key, "/v1/chat-messages", body)).await;
        assert_error(&answer, 400, "completion_request_error");
        assert_eq!(answer.1["message"], "Completion request failed.");
        assert_no_provider_detail(&answer.1.to_string());
    }
}

#[tokio::test]
async fn title_and_suggestion_fallbacks() {
    let fake = OpenAiFake::start().await;
    let app = spawn_app_with_models(with_openai(&fake, "echo")).await;
    // An answer without "Your Output" names the conversation after the query.
    let chatty = app.create_app(AppMode::Chat, model_app("openai", "no-json")).await;
    let query =
        "Please help me compare three long-distance train passes for a month travelling around Europe in spring";
    let (_, body) =
        send(app.post(&chatty, "/v1/chat-messages", json!({"inputs": {}, "query": query, "user": "u"}))).await;
    let (_, list) = send(app.get(&chatty, "/v1/conversations?user=u")).await;
    assert_eq!(list["data"][0]["name"], format!("{}...", &query[..75]));
    let (_, none) =
        send(app.get(&chatty, &format!("/v1/messages/{}/suggested?user=u", body["message_id"].as_str().unwrap())))
            .await;
    assert_eq!(none, json!({"result": "success", "data": []}), "an answer without a list gives no suggestions");

    // A failing model keeps the old name on rename, and gives an empty list of suggestions.
    let conversation = app.seed_conversation(&chatty, "u", "Kept").await;
    app.seed_message(&conversation, "first").await;
    let mut config = model_app("openai", "fail-server");
    config.suggested_questions_after_answer.enabled = true;
    colloquy_core::admin::update_config(app.store.as_ref(), chatty.app.id, config).await.unwrap();
    let (status, renamed) = send(app.post(
        &chatty,
        &format!("/v1/conversations/{}/name", conversation.id),
        json!({"auto_generate": true, "user": "u"}),
    ))
    .await;
    assert_eq!((status, renamed["name"].as_str()), (200, Some("Kept")));
    let message = app.seed_message(&conversation, "second").await;
    let (status, empty) = send(app.get(&chatty, &format!("/v1/messages/{}/suggested?user=u", message.id))).await;
    assert_eq!((status, empty), (200, json!({"result": "success", "data": []})));

    let good = app.create_app(AppMode::Chat, model_app("openai", "fake-model")).await;
    let (_, body) =
        send(app.post(&good, "/v1/chat-messages", json!({"inputs": {}, "query": "hello", "user": "u"}))).await;
    let (_, questions) =
        send(app.get(&good, &format!("/v1/messages/{}/suggested?user=u", body["message_id"].as_str().unwrap()))).await;
    assert_eq!(questions["data"], json!(["First follow-up?", "Second follow-up?", "Third follow-up?"]));
}

#[tokio::test]
async fn annotation_reply_with_openai_embeddings() {
    let fake = OpenAiFake::start().await;
    let app = spawn_app_with_models(with_openai(&fake, "echo")).await;
    let key = app.chat_app().await;
    send(app.post(&key, "/v1/apps/annotations", json!({"question": "refund policy", "answer": "30 days."}))).await;
    let settings =
        json!({"score_threshold": 0.95, "embedding_provider_name": "openai", "embedding_model_name": "fake-embed"});
    let (_, job) = send(app.post(&key, "/v1/apps/annotation-reply/enable", settings)).await;
    assert_eq!(job["job_status"], "completed");
    let (_, reply) =
        send(app.post(&key, "/v1/chat-messages", json!({"inputs": {}, "query": "Refund policy?", "user": "u"}))).await;
    assert_eq!(reply["answer"], "30 days.");
    assert!(fake.seen.lock().unwrap().iter().any(|r| r["model"] == "fake-embed"));
}

#[tokio::test]
async fn bedrock_adapter_speaks_converse() {
    let fake = BedrockFake::start().await;
    let client = bedrock(&fake);
    let answer = client.complete(request("hello")).await.unwrap();
    assert_eq!(answer.text, "Fake answer to: hello");
    assert_eq!((answer.usage.prompt_tokens, answer.usage.completion_tokens), (13, 5));
    let sent = fake.seen.lock().unwrap()[0].clone();
    assert_eq!(sent["model"], "fake.claude");
    assert_eq!(sent["body"]["system"][0]["text"], "Be brief.");
    assert_eq!(sent["body"]["messages"].as_array().unwrap().len(), 3);
    assert_eq!(sent["body"]["inferenceConfig"]["maxTokens"], 64);

    let (text, events, error) = collect(client.stream(request("stream me")).await.unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text, "Fake answer to: stream me");
    assert!(matches!(events.last(), Some(LlmEvent::Done(u)) if u.completion_tokens == 5));

    let vectors = client.embed(&["abc".into(), "zz".into()], None).await.unwrap();
    assert_eq!(vectors, vec![fakes_vector("abc"), fakes_vector("zz")]);
    assert!(fake.seen.lock().unwrap().iter().any(|r| r["model"] == "amazon.titan-embed-text-v2:0"));

    for (model, expected) in [("denied", "not initialized"), ("throttled", "rate limit")] {
        let mut r = request("x");
        r.model = Some(model.into());
        let error = client.complete(r.clone()).await.unwrap_err();
        assert!(error.to_string().contains(expected), "{model}: {error}");
        let error = client.stream(r).await.err().unwrap();
        assert!(error.to_string().contains(expected), "{model} (stream): {error}");
    }
}

#[tokio::test]
async fn chat_through_bedrock() {
    let fake = BedrockFake::start().await;
    let client = bedrock(&fake);
    let models =
        Models::new("bedrock", vec![echo(), Provider { name: "bedrock", llm: client.clone(), embedder: Some(client) }])
            .unwrap();
    let app = spawn_app_with_models(models).await;
    let key = app.chat_app().await;
    let (status, body) =
        send(app.post(&key, "/v1/chat-messages", json!({"inputs": {}, "query": "hi", "user": "u"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["answer"], "Fake answer to: hi");
    let response = app
        .post(
            &key,
            "/v1/chat-messages",
            json!({"inputs": {}, "query": "more", "user": "u", "response_mode": "streaming"}),
        )
        .send()
        .await
        .unwrap();
    let events = read_events(response).await;
    assert_eq!(events.last().unwrap().data["event"], "message_end");
    let text: String =
        events.iter().filter(|e| e.data["event"] == "message").map(|e| e.data["answer"].as_str().unwrap()).collect();
    assert_eq!(text, "Fake answer to: more");
    let (_, list) = send(app.get(&key, "/v1/conversations?user=u")).await;
    assert!(list["data"].as_array().unwrap().iter().any(|c| c["name"] == "Fake title"));
}
