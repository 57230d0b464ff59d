//! `POST /audio-to-text`, `POST /text-to-audio`, and an operator's spoken answer.

use bytes::Bytes;
use futures_util::future::try_join_all;
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};

use super::conversations::owned;
use super::files::read_upload;
use super::input::{Body, declares_json, parse_id};
use super::views::AudioText;
use super::{ApiResponse, Ctx, ResponseBody};
use crate::api::error::ApiError;
use crate::domain::{
    AUDIO_LIMIT_BYTES, AudioFormat, AuditAction, FileId, Message, MessageId, UserRef, Voice, split_for_speech,
};
use crate::ports::{BlobRange, SpeechSynthesizer, Transcriber};

/// The longest text one request may speak: its MP3 must fit a Lambda response (6 MB).
pub(crate) const MAX_SPEECH_CHARS: usize = 8000;

/// Speech to text: a multipart `file` as Dify takes it, or (our extension, for audio larger
/// than a Lambda request) a JSON body naming an `upload_file_id` the caller uploaded before.
pub(crate) async fn audio_to_text(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let text = if declares_json(ctx.request) { transcribe_uploaded(ctx).await? } else { transcribe_part(ctx).await? };
    Ok(ApiResponse::ok(&AudioText { text }))
}

fn require_feature(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    if ctx.app.config.speech_to_text.enabled {
        Ok(())
    } else {
        Err(ApiError::InvalidParam("Speech to text is not enabled".into()))
    }
}

fn transcriber<'a>(ctx: &Ctx<'a>) -> Result<&'a dyn Transcriber, ApiError> {
    ctx.services.speech.transcriber.as_deref().ok_or(ApiError::NoSpeechToText)
}

/// Dify's checks, in Dify's order: the part, the feature, the type, the size, the provider.
/// The part's bytes are read only once its name and type passed, and never past the limit.
async fn transcribe_part(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let check = |name: &str, content_type: &str| {
        require_feature(ctx)?;
        AudioFormat::of_upload(content_type, name).map(drop).ok_or(ApiError::UnsupportedAudioType)
    };
    let limit = usize::try_from(AUDIO_LIMIT_BYTES).unwrap_or(usize::MAX);
    let (part, user) = read_upload(ctx, "file", limit, check, ApiError::AudioTooLarge).await?;
    let part = part.ok_or(ApiError::NoAudioPart)?;
    require_feature(ctx)?;
    let format = AudioFormat::of_upload(&part.content_type, &part.name).ok_or(ApiError::UnsupportedAudioType)?;
    let transcriber = transcriber(ctx)?;
    // Creates the end user as Dify does, so `user` is recorded like on every other route.
    ctx.end_user(user).await?;
    Ok(transcriber.transcribe(part.bytes, format).await?)
}

/// The same checks for a file uploaded before (by `/files/upload` or a presigned PUT).
async fn transcribe_uploaded(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let body = Body::read(ctx.request)?;
    let user = body.user(false)?;
    let raw = body.string("upload_file_id")?.ok_or(ApiError::NoAudioPart)?;
    let id: FileId = parse_id("upload_file_id", raw)?;
    require_feature(ctx)?;
    let transcriber = transcriber(ctx)?;
    let owner = ctx.end_user(user).await?.owner();
    let file = ctx.store().file(owner, id).await?.filter(|f| !f.is_expired(ctx.now())).ok_or(ApiError::FileNotFound)?;
    let format = AudioFormat::of_upload(&file.mime_type, &file.name).ok_or(ApiError::UnsupportedAudioType)?;
    // The stored bytes decide, not the declared size: read one byte to learn the real one.
    let key = file.blob_key();
    let probe = ctx
        .services
        .blobs
        .get_blob(&key, Some(BlobRange { start: 0, end: Some(0) }))
        .await?
        .ok_or(ApiError::FileNotFound)?;
    if probe.total_size > AUDIO_LIMIT_BYTES {
        return Err(ApiError::AudioTooLarge);
    }
    if let Some(outcome) = transcriber.transcribe_stored(&key, format).await {
        return Ok(outcome?);
    }
    let blob = ctx.services.blobs.get_blob(&key, None).await?.ok_or(ApiError::FileNotFound)?;
    Ok(transcriber.transcribe(blob.bytes, format).await?)
}

/// Text to speech of a stored answer (`message_id`, the caller's own) or of `text`.
pub(crate) async fn text_to_audio(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let body = Body::read(ctx.request)?;
    let user = body.user(false)?;
    // Accepted and ignored, as in Dify, but it must be a boolean.
    body.boolean("streaming", false)?;
    if body.string("text")?.is_some_and(|text| text.chars().count() > MAX_SPEECH_CHARS) {
        return Err(too_long());
    }
    let synthesizer = synthesizer(ctx)?;
    let text = match body.string("message_id")? {
        Some(raw) => message_answer(ctx, user, parse_id("message_id", raw)?).await?,
        None => {
            ctx.end_user(user).await?;
            body.string("text")?.map(str::trim).filter(|t| !t.is_empty()).ok_or_else(text_required)?.to_owned()
        }
    };
    spoken(ctx, synthesizer, &text, body.string("voice")?).await
}

/// `GET /v1/app/conversations/:id/messages/:message_id/audio` (operator keys): the answer of a
/// message of any conversation of the app, spoken as `/text-to-audio` speaks an end user's own,
/// in the app's voice or `?voice=`; recorded in the audit log.
pub(crate) async fn message_audio(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = ctx.ids.conversation.ok_or(ApiError::RouteNotFound)?;
    let message_id = ctx.ids.message.ok_or(ApiError::RouteNotFound)?;
    ctx.require_chat_app()?;
    let summary =
        ctx.unexpired_app_conversation(id).await?.ok_or(ApiError::NotFound(super::conversations::NOT_FOUND))?;
    let synthesizer = synthesizer(ctx)?;
    ctx.audit(AuditAction::SpeakMessage, Some(message_id.to_string()), None).await?;
    let message = ctx
        .store()
        .message(summary.conversation.owner, message_id)
        .await?
        .filter(|m| m.conversation_id == id)
        .ok_or(ApiError::NotFound(MESSAGE_NOT_FOUND))?;
    let text = answer_of(ctx, message).await?;
    spoken(ctx, synthesizer, &text, ctx.query.get("voice")).await
}

const MESSAGE_NOT_FOUND: &str = "Message Not Exists.";

fn too_long() -> ApiError {
    ApiError::InvalidParam(format!("Text is longer than {MAX_SPEECH_CHARS} characters."))
}

/// The app's speech engine, when the app has text to speech enabled.
fn synthesizer<'a>(ctx: &Ctx<'a>) -> Result<&'a dyn SpeechSynthesizer, ApiError> {
    if !ctx.app.config.text_to_speech.enabled {
        return Err(ApiError::InvalidParam("TTS is not enabled".into()));
    }
    ctx.services.speech.synthesizer.as_deref().ok_or(ApiError::NoTextToSpeech)
}

/// `text` spoken in the requested (or the app's) voice, as the response's audio.
async fn spoken(
    ctx: &Ctx<'_>,
    synthesizer: &dyn SpeechSynthesizer,
    text: &str,
    voice: Option<&str>,
) -> Result<ApiResponse, ApiError> {
    if text.chars().count() > MAX_SPEECH_CHARS {
        return Err(too_long());
    }
    let voice = choose_voice(ctx, synthesizer, voice).await?;
    let (bytes, content_type) = speak(synthesizer, text, &voice.id).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok(ApiResponse { status: StatusCode::OK, headers, body: ResponseBody::Full(bytes) })
}

fn text_required() -> ApiError {
    ApiError::InvalidParam("Text is required".into())
}

/// The answer of one of the caller's messages. Dify looks the id up across every app and user;
/// we only find the caller's own.
async fn message_answer(ctx: &Ctx<'_>, user: UserRef, id: MessageId) -> Result<String, ApiError> {
    let owner = ctx.end_user(user).await?.owner();
    let message = ctx.store().message(owner, id).await?.ok_or(ApiError::NotFound(MESSAGE_NOT_FOUND))?;
    if !ctx.message_unexpired(&message).await? {
        return Err(ApiError::NotFound(MESSAGE_NOT_FOUND));
    }
    owned(ctx, owner, message.conversation_id).await?;
    answer_of(ctx, message).await
}

/// A stored message's answer (settled first, should its generation have been abandoned).
async fn answer_of(ctx: &Ctx<'_>, message: Message) -> Result<String, ApiError> {
    let message = super::messages::settled_one(ctx, message).await;
    let answer = message.answer.trim();
    if answer.is_empty() {
        return Err(ApiError::InvalidParam("The message has no answer to speak.".into()));
    }
    Ok(answer.to_owned())
}

/// The requested voice, else the app's configured one, else the engine's first; it must be
/// one the engine offers (matched without regard to case).
async fn choose_voice(
    ctx: &Ctx<'_>,
    synthesizer: &dyn SpeechSynthesizer,
    requested: Option<&str>,
) -> Result<Voice, ApiError> {
    let voices = synthesizer.voices().await?;
    let configured = ctx.app.config.text_to_speech.extra.get("voice").and_then(|v| v.as_str());
    let wanted = requested.or(configured).map(str::trim).filter(|v| !v.is_empty());
    let Some(wanted) = wanted else {
        return voices.into_iter().next().ok_or_else(|| ApiError::InvalidParam("Sorry, no voice available.".into()));
    };
    if let Some(voice) = voices.iter().find(|v| v.id.eq_ignore_ascii_case(wanted)) {
        return Ok(voice.clone());
    }
    let listed: Vec<&str> = voices.iter().take(30).map(|v| v.id.as_str()).collect();
    let more = if voices.len() > listed.len() { ", ..." } else { "" };
    Err(ApiError::InvalidParam(format!(
        "Voice '{wanted}' is not available from the {} speech engine. Available voices: {}{more}",
        synthesizer.name(),
        listed.join(", ")
    )))
}

/// Speaks `text`, in pieces within the engine's limit, joined in order.
async fn speak(
    synthesizer: &dyn SpeechSynthesizer,
    text: &str,
    voice: &str,
) -> Result<(Bytes, &'static str), ApiError> {
    let pieces = split_for_speech(text, synthesizer.max_chars());
    if pieces.is_empty() {
        return Err(text_required());
    }
    let audio = try_join_all(pieces.iter().map(|piece| synthesizer.synthesize(piece, voice))).await?;
    let content_type = audio[0].content_type;
    if audio.len() > 1 && audio.iter().any(|a| a.content_type != "audio/mpeg") {
        // The port promises MP3 from engines with a finite limit; joining anything else breaks it.
        return Err(ApiError::Internal(format!("{} answered non-MP3 audio for a split text", synthesizer.name())));
    }
    let joined: Vec<u8> = audio.iter().flat_map(|a| a.bytes.iter().copied()).collect();
    Ok((Bytes::from(joined), content_type))
}
