//! Any OpenAI-compatible speech API (OpenAI, LocalAI, self-hosted Whisper servers):
//! `POST /audio/speech` for text to speech and `POST /audio/transcriptions` for speech to text.

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::Client;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use super::openai::{checked, http_client, with_causes};
use colloquy_core::domain::{AudioFormat, Voice};
use colloquy_core::ports::{ProviderError, SpeechAudio, SpeechSynthesizer, Transcriber};
pub use colloquy_core::settings::OpenAiSpeechSettings;

/// OpenAI's `/audio/speech` input limit, in characters.
const MAX_CHARS: usize = 4096;

/// The OpenAI-compatible speech adapter, for both directions.
#[derive(Debug, Clone)]
pub struct OpenAiSpeech {
    client: Client,
    settings: OpenAiSpeechSettings,
}

impl OpenAiSpeech {
    pub fn new(settings: OpenAiSpeechSettings) -> Result<Self, ProviderError> {
        if settings.voices.is_empty() {
            return Err(ProviderError::NotInitialized("no voices are configured for OpenAI speech".into()));
        }
        Ok(Self { client: http_client()?, settings })
    }

    fn request(&self, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}/{path}", self.settings.base_url.trim_end_matches('/'));
        let request = self.client.post(url);
        match &self.settings.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }
}

fn unreachable(error: reqwest::Error) -> ProviderError {
    ProviderError::Failed(format!("cannot reach the speech API: {}", with_causes(&error)))
}

#[async_trait]
impl SpeechSynthesizer for OpenAiSpeech {
    fn name(&self) -> &'static str {
        "openai"
    }

    async fn voices(&self) -> Result<Vec<Voice>, ProviderError> {
        Ok(self
            .settings
            .voices
            .iter()
            .map(|id| Voice { id: id.clone(), name: id.clone(), language: String::new() })
            .collect())
    }

    fn max_chars(&self) -> usize {
        MAX_CHARS
    }

    async fn synthesize(&self, text: &str, voice: &str) -> Result<SpeechAudio, ProviderError> {
        let body = json!({"model": self.settings.tts_model, "input": text, "voice": voice, "response_format": "mp3"});
        let response = checked(self.request("audio/speech").json(&body).send().await.map_err(unreachable)?).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ProviderError::Failed(format!("the audio broke off: {}", with_causes(&e))))?;
        if bytes.is_empty() {
            return Err(ProviderError::Failed("the speech API answered no audio".into()));
        }
        Ok(SpeechAudio { bytes, content_type: "audio/mpeg" })
    }
}

#[async_trait]
impl Transcriber for OpenAiSpeech {
    fn name(&self) -> &'static str {
        "openai"
    }

    async fn transcribe(&self, audio: Bytes, format: AudioFormat) -> Result<String, ProviderError> {
        let file = Part::stream(audio)
            .file_name(format!("audio.{}", format.extension()))
            .mime_str(format.mime_type())
            .map_err(|e| ProviderError::Failed(e.to_string()))?;
        let form = Form::new().text("model", self.settings.stt_model.clone()).part("file", file);
        let response =
            checked(self.request("audio/transcriptions").multipart(form).send().await.map_err(unreachable)?).await?;
        let body: Value =
            response.json().await.map_err(|e| ProviderError::Failed(format!("unreadable transcription: {e}")))?;
        body["text"]
            .as_str()
            .map(|text| text.trim().to_owned())
            .ok_or_else(|| ProviderError::Failed("the transcription has no text".into()))
    }
}
