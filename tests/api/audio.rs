//! `POST /text-to-audio`, `POST /audio-to-text` and the presigned large-upload path, with the
//! OpenAI-compatible speech adapter against a local fake of its wire format.

use std::sync::Arc;

use colloquy_core::domain::{AppConfig, AppMode};
use colloquy_core::speech::Speech;
use colloquy_providers::openai_speech::{OpenAiSpeech, OpenAiSpeechSettings};
use colloquy_tests::fakes::{OpenAiFake, assert_no_provider_detail, fake_speech};
use colloquy_tests::*;
use reqwest::multipart::{Form, Part};
use serde_json::json;

pub(crate) async fn openai_speech(fake: &OpenAiFake) -> Speech {
    speech_at(&fake.base_url, "tts-1", "whisper-1")
}

fn speech_at(base_url: &str, tts_model: &str, stt_model: &str) -> Speech {
    let engine = Arc::new(
        OpenAiSpeech::new(OpenAiSpeechSettings {
            base_url: base_url.to_owned(),
            api_key: Some("sk-test".into()),
            tts_model: tts_model.into(),
            stt_model: stt_model.into(),
            voices: vec!["alloy".into(), "nova".into()],
        })
        .unwrap(),
    );
    Speech { synthesizer: Some(engine.clone()), transcriber: Some(engine) }
}

fn speech_config() -> AppConfig {
    AppConfig::from_json(r#"{"text_to_speech": {"enabled": true}, "speech_to_text": {"enabled": true}}"#).unwrap()
}

async fn speech_app() -> (TestApp, TestKey, OpenAiFake) {
    let fake = OpenAiFake::start().await;
    let app = spawn_app_with_speech(openai_speech(&fake).await).await;
    let key = app.create_app(AppMode::Chat, speech_config()).await;
    (app, key, fake)
}

async fn speak(app: &TestApp, key: &TestKey, body: serde_json::Value) -> reqwest::Response {
    app.post(key, "/v1/text-to-audio", body).send().await.unwrap()
}

fn audio_form(name: &str, mime: &str, bytes: Vec<u8>) -> Form {
    Form::new()
        .part("file", Part::bytes(bytes).file_name(name.to_owned()).mime_str(mime).unwrap())
        .text("user", "alice")
}

async fn listen(app: &TestApp, key: &TestKey, form: Form) -> (u16, serde_json::Value) {
    send(app.client.post(app.url("/v1/audio-to-text")).bearer_auth(&key.key).multipart(form)).await
}

#[tokio::test]
async fn text_to_audio_answers_mpeg_in_the_default_or_chosen_voice() {
    let (app, key, _fake) = speech_app().await;
    let response = speak(&app, &key, json!({"text": "Hello there.", "user": "alice"})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    assert_eq!(response.bytes().await.unwrap().to_vec(), fake_speech("alloy", "Hello there."));

    // Voices match without regard to case; `streaming` is accepted and ignored, as in Dify.
    let response = speak(&app, &key, json!({"text": "Hi", "voice": "NOVA", "streaming": true, "user": "alice"})).await;
    assert_eq!(response.bytes().await.unwrap().to_vec(), fake_speech("nova", "Hi"));

    let (status, body) =
        read(speak(&app, &key, json!({"text": "Hi", "voice": "shimmer", "user": "alice"})).await).await;
    assert_error(&(status, body.clone()), 400, "invalid_param");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("shimmer") && message.contains("alloy, nova"), "{message}");
}

#[tokio::test]
async fn the_apps_configured_voice_is_the_default() {
    let fake = OpenAiFake::start().await;
    let app = spawn_app_with_speech(openai_speech(&fake).await).await;
    let config = AppConfig::from_json(r#"{"text_to_speech": {"enabled": true, "voice": "nova"}}"#).unwrap();
    let key = app.create_app(AppMode::Chat, config).await;
    let response = speak(&app, &key, json!({"text": "Hi"})).await;
    assert_eq!(response.bytes().await.unwrap().to_vec(), fake_speech("nova", "Hi"));
}

#[tokio::test]
async fn long_texts_are_spoken_in_sentence_pieces_joined_in_order() {
    let (app, key, fake) = speech_app().await;
    let sentence = "This sentence is about forty characters. ";
    let text = sentence.repeat(150); // 6,150 characters: two calls of at most 4,096.
    let response = speak(&app, &key, json!({"text": text, "user": "alice"})).await;
    assert_eq!(response.status(), 200);
    let audio = response.bytes().await.unwrap().to_vec();
    let inputs: Vec<String> =
        fake.seen.lock().unwrap().iter().filter_map(|b| b["input"].as_str().map(str::to_owned)).collect();
    assert_eq!(inputs.len(), 2);
    assert!(inputs.iter().all(|piece| piece.len() <= 4096 && piece.ends_with("characters.")), "cut at sentence ends");
    assert_eq!(inputs.join(" ").split_whitespace().count(), text.split_whitespace().count());
    let expected: Vec<u8> = inputs.iter().flat_map(|piece| fake_speech("alloy", piece)).collect();
    assert_eq!(audio, expected);

    let (status, body) = read(speak(&app, &key, json!({"text": "x".repeat(8001)})).await).await;
    assert_error(&(status, body), 400, "invalid_param");
    let (status, body) = read(speak(&app, &key, json!({"text": "Hi", "streaming": "sometimes"})).await).await;
    assert_error(&(status, body), 400, "invalid_param");
}

#[tokio::test]
async fn text_to_audio_speaks_only_the_callers_own_messages() {
    let (app, key, _fake) = speech_app().await;
    let conversation = app.seed_conversation(&key, "alice", "c").await;
    let message = app.seed_message(&conversation, "weather").await;
    let path_body = |user: &str| json!({"message_id": message.id.to_string(), "text": "ignored", "user": user});

    let response = speak(&app, &key, path_body("alice")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().to_vec(), fake_speech("alloy", "answer to weather"));

    // Dify finds any message of any app; we answer 404 to everyone but its owner.
    let (status, body) = read(speak(&app, &key, path_body("mallory")).await).await;
    assert_error(&(status, body), 404, "not_found");
    let other_app = app.create_app(AppMode::Chat, speech_config()).await;
    let (status, body) = read(speak(&app, &other_app, path_body("alice")).await).await;
    assert_error(&(status, body), 404, "not_found");
    let (status, body) = read(speak(&app, &key, json!({"message_id": unknown_id(), "user": "alice"})).await).await;
    assert_error(&(status, body), 404, "not_found");
    let (status, body) = read(speak(&app, &key, json!({"message_id": "not-a-uuid", "user": "alice"})).await).await;
    assert_error(&(status, body), 400, "invalid_param");
}

#[tokio::test]
async fn text_to_audio_errors_are_difys() {
    let (app, key, _fake) = speech_app().await;
    for body in [json!({"user": "alice"}), json!({"text": "   ", "user": "alice"})] {
        let (status, answer) = read(speak(&app, &key, body).await).await;
        assert_error(&(status, answer.clone()), 400, "invalid_param");
        assert_eq!(answer["message"], "Text is required");
    }
    let disabled = app.chat_app().await;
    let (status, body) = read(speak(&app, &disabled, json!({"text": "Hi"})).await).await;
    assert_error(&(status, body.clone()), 400, "invalid_param");
    assert_eq!(body["message"], "TTS is not enabled");

    let bare = spawn_app().await;
    let key = bare.create_app(AppMode::Chat, speech_config()).await;
    let (status, body) = read(speak(&bare, &key, json!({"text": "Hi"})).await).await;
    assert_error(&(status, body), 400, "provider_not_support_text_to_speech");
    let (status, body) = listen(&bare, &key, audio_form("a.wav", "audio/wav", vec![1; 10])).await;
    assert_error(&(status, body), 400, "provider_not_support_speech_to_text");
}

#[tokio::test]
async fn audio_to_text_accepts_difys_types_and_extension_fallback() {
    let (app, key, fake) = speech_app().await;
    let (status, body) = listen(&app, &key, audio_form("note.wav", "audio/wav", vec![7; 1234])).await;
    assert_eq!((status, body), (200, json!({"text": "heard 1234 bytes of audio.wav (audio/wav) with whisper-1"})));
    // Clients that send no specific type: the extension decides.
    let (status, body) = listen(&app, &key, audio_form("clip.webm", "application/octet-stream", vec![1; 10])).await;
    assert_eq!(
        (status, body["text"].as_str()),
        (200, Some("heard 10 bytes of audio.webm (audio/webm) with whisper-1"))
    );
    let (status, body) = listen(&app, &key, audio_form("song.mp3", "audio/mpga", vec![1; 10])).await;
    assert_eq!((status, body["text"].as_str()), (200, Some("heard 10 bytes of audio.mp3 (audio/mpeg) with whisper-1")));
    assert_eq!(fake.seen.lock().unwrap().len(), 3);

    let (status, body) = listen(&app, &key, audio_form("a.ogg", "audio/ogg", vec![1; 10])).await;
    assert_error(&(status, body), 415, "unsupported_audio_type");
    let (status, body) = listen(&app, &key, audio_form("a.txt", "application/octet-stream", vec![1; 10])).await;
    assert_error(&(status, body), 415, "unsupported_audio_type");
}

#[tokio::test]
async fn audio_to_text_errors_are_difys() {
    let (app, key, fake) = speech_app().await;
    let too_big = vec![0u8; 30 * 1024 * 1024 + 1];
    let (status, body) = listen(&app, &key, audio_form("big.mp3", "audio/mpeg", too_big)).await;
    assert_error(&(status, body.clone()), 413, "audio_too_large");
    assert_eq!(body["message"], "Audio size larger than 30 mb");

    let (status, body) = listen(&app, &key, Form::new().text("user", "alice")).await;
    assert_error(&(status, body), 400, "bad_request_key_error");
    let wrong_field = Form::new().part("audio", Part::bytes(vec![1]).file_name("a.wav").mime_str("audio/wav").unwrap());
    let (status, body) = listen(&app, &key, wrong_field).await;
    assert_error(&(status, body), 400, "bad_request_key_error");

    let disabled = app.chat_app().await;
    let (status, body) = listen(&app, &disabled, audio_form("a.wav", "audio/wav", vec![1; 10])).await;
    assert_error(&(status, body.clone()), 400, "invalid_param");
    assert_eq!(body["message"], "Speech to text is not enabled");
    assert!(fake.seen.lock().unwrap().is_empty(), "nothing reached the provider");
}

#[tokio::test]
async fn audio_to_text_takes_an_uploaded_file_of_the_caller() {
    let (app, key, _fake) = speech_app().await;
    let form = Form::new()
        .part("file", Part::bytes(vec![5; 321]).file_name("memo.m4a").mime_str("audio/m4a").unwrap())
        .text("user", "alice");
    let (status, upload) =
        send(app.client.post(app.url("/v1/files/upload")).bearer_auth(&key.key).multipart(form)).await;
    assert_eq!(status, 201, "{upload}");
    let id = upload["id"].as_str().unwrap();

    let (status, body) =
        send(app.post(&key, "/v1/audio-to-text", json!({"upload_file_id": id, "user": "alice"}))).await;
    assert_eq!((status, body), (200, json!({"text": "heard 321 bytes of audio.m4a (audio/m4a) with whisper-1"})));
    let (status, body) = send(app.post(&key, "/v1/audio-to-text", json!({"upload_file_id": id, "user": "bob"}))).await;
    assert_error(&(status, body), 404, "file_not_found");
    let other_app = app.create_app(AppMode::Chat, speech_config()).await;
    let (status, body) =
        send(app.post(&other_app, "/v1/audio-to-text", json!({"upload_file_id": id, "user": "alice"}))).await;
    assert_error(&(status, body), 404, "file_not_found");
    let (status, body) = send(app.post(&key, "/v1/audio-to-text", json!({"user": "alice"}))).await;
    assert_error(&(status, body), 400, "bad_request_key_error");

    let form = Form::new()
        .part("file", Part::bytes(vec![5; 10]).file_name("notes.txt").mime_str("text/plain").unwrap())
        .text("user", "alice");
    let (_, text_file) = send(app.client.post(app.url("/v1/files/upload")).bearer_auth(&key.key).multipart(form)).await;
    let body = json!({"upload_file_id": text_file["id"], "user": "alice"});
    let (status, body) = send(app.post(&key, "/v1/audio-to-text", body)).await;
    assert_error(&(status, body), 415, "unsupported_audio_type");
}

#[tokio::test]
async fn large_files_go_straight_to_the_blob_store_through_a_presigned_url() {
    let (app, key, _fake) = speech_app().await;
    let request = json!({"name": "long-memo.wav", "size": 2048, "mime_type": "audio/wav", "user": "alice"});
    let (status, body) = send(app.post(&key, "/v1/files/upload-url", request.clone())).await;
    if !testing_on_dynamodb() {
        // The embedded store has no URLs of its own: it takes files on /files/upload directly.
        assert_error(&(status, body), 400, "invalid_param");
        return;
    }
    assert_eq!(status, 201, "{body}");
    assert_eq!((body["name"].as_str(), body["size"].as_u64()), (Some("long-memo.wav"), Some(2048)));
    assert_eq!(
        (body["upload_method"].as_str(), body["upload_headers"]["Content-Type"].as_str()),
        (Some("PUT"), Some("audio/wav"))
    );
    let put = reqwest::Client::new()
        .put(body["upload_url"].as_str().unwrap())
        .header("content-type", "audio/wav")
        .body(vec![9u8; 2048])
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let id = body["id"].as_str().unwrap();
    let preview = app.get(&key, &format!("/v1/files/{id}/preview?user=alice")).send().await.unwrap();
    assert_eq!(preview.bytes().await.unwrap().len(), 2048);
    let (status, body) =
        send(app.post(&key, "/v1/audio-to-text", json!({"upload_file_id": id, "user": "alice"}))).await;
    assert_eq!(
        (status, body["text"].as_str()),
        (200, Some("heard 2048 bytes of audio.wav (audio/wav) with whisper-1"))
    );

    // The per-kind limits and name rules apply before any URL is handed out.
    let huge = json!({"name": "a.wav", "size": 51 * 1024 * 1024, "mime_type": "audio/wav"});
    let (status, body) = send(app.post(&key, "/v1/files/upload-url", huge)).await;
    assert_error(&(status, body), 413, "file_too_large");
    let (status, body) = send(app.post(&key, "/v1/files/upload-url", json!({"name": "a.wav", "size": 0}))).await;
    assert_error(&(status, body), 400, "invalid_param");
    let (status, body) = send(app.post(&key, "/v1/files/upload-url", json!({"name": "../a.wav", "size": 3}))).await;
    assert_error(&(status, body), 400, "invalid_param");
}

#[tokio::test]
async fn speech_provider_failures_are_generic_errors() {
    let fake = OpenAiFake::start().await;
    // A provider that answers with its insides, and one that cannot be reached at all.
    for speech in [
        speech_at(&fake.base_url, "fail-server", "fail-server"),
        speech_at("http://127.0.0.1:9/v1", "tts-1", "whisper-1"),
    ] {
        let app = spawn_app_with_speech(speech).await;
        let key = app.create_app(AppMode::Chat, speech_config()).await;
        let spoken = read(speak(&app, &key, json!({"text": "Hello there.", "user": "alice"})).await).await;
        let heard = listen(&app, &key, audio_form("note.wav", "audio/wav", vec![7; 64])).await;
        for answer in [spoken, heard] {
            assert_error(&answer, 400, "completion_request_error");
            assert_eq!(answer.1["message"], "Completion request failed.");
            assert_no_provider_detail(&answer.1.to_string());
        }
    }
}

#[tokio::test]
async fn a_transcription_retried_with_its_idempotency_key_is_heard_once() {
    let (app, key, fake) = speech_app().await;
    let request = |bytes: Vec<u8>| {
        app.client
            .post(app.url("/v1/audio-to-text"))
            .bearer_auth(&key.key)
            .header("Idempotency-Key", "voice-note-7")
            .multipart(audio_form("note.wav", "audio/wav", bytes))
    };
    let first = request(vec![7; 300]).send().await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (status, heard) = read(first).await;
    assert_eq!(status, 200, "{heard}");
    // The retry has its own multipart boundary: the same parts, so the same request.
    let again = request(vec![7; 300]).send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(read(again).await, (200, heard));
    assert_eq!(fake.seen.lock().unwrap().len(), 1, "the engine heard it once");
    let (status, refused) = send(request(vec![8; 300])).await;
    assert_eq!((status, refused["code"].as_str()), (422, Some("idempotency_key_mismatch")));
}
