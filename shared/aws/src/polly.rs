//! Amazon Polly: text to speech (`SynthesizeSpeech`, MP3).

use async_trait::async_trait;
use aws_sdk_polly::Client;
use aws_sdk_polly::types::{Engine, OutputFormat, VoiceId};
use tokio::sync::OnceCell;

use super::aws_errors::classify;
use colloquy_core::domain::Voice;
use colloquy_core::ports::{ProviderError, SpeechAudio, SpeechSynthesizer};

/// Polly bills at most 3,000 characters per `SynthesizeSpeech` call.
const MAX_CHARS: usize = 3000;

/// The Polly adapter. Its voices are those that support the chosen engine, listed once.
#[derive(Debug)]
pub struct Polly {
    client: Client,
    engine: Engine,
    voices: OnceCell<Vec<Voice>>,
}

impl Polly {
    /// `engine` is Polly's `Engine` (`standard`, `neural`, `long-form`, `generative`).
    pub fn new(client: Client, engine: &str) -> Self {
        Self { client, engine: Engine::from(engine), voices: OnceCell::new() }
    }

    async fn list_voices(&self) -> Result<Vec<Voice>, ProviderError> {
        let mut voices = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .describe_voices()
                .engine(self.engine.clone())
                .set_next_token(token)
                .send()
                .await
                .map_err(classify)?;
            for voice in page.voices() {
                let supported =
                    voice.supported_engines().is_empty() || voice.supported_engines().contains(&self.engine);
                if let (Some(id), true) = (voice.id(), supported) {
                    voices.push(Voice {
                        id: id.as_str().to_owned(),
                        name: voice.name().unwrap_or(id.as_str()).to_owned(),
                        language: voice.language_code().map(|l| l.as_str().to_owned()).unwrap_or_default(),
                    });
                }
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        // English voices first, so the default voice speaks the most common language.
        voices.sort_by_key(|v| (!v.language.starts_with("en-US"), v.language.clone(), v.id.clone()));
        Ok(voices)
    }
}

#[async_trait]
impl SpeechSynthesizer for Polly {
    fn name(&self) -> &'static str {
        "polly"
    }

    async fn voices(&self) -> Result<Vec<Voice>, ProviderError> {
        self.voices.get_or_try_init(|| self.list_voices()).await.cloned()
    }

    fn max_chars(&self) -> usize {
        MAX_CHARS
    }

    async fn synthesize(&self, text: &str, voice: &str) -> Result<SpeechAudio, ProviderError> {
        let output = self
            .client
            .synthesize_speech()
            .engine(self.engine.clone())
            .output_format(OutputFormat::Mp3)
            .voice_id(VoiceId::from(voice))
            .text(text)
            .send()
            .await
            .map_err(classify)?;
        let bytes = output
            .audio_stream
            .collect()
            .await
            .map_err(|e| ProviderError::Failed(format!("the audio stream broke: {e}")))?
            .into_bytes();
        Ok(SpeechAudio { bytes, content_type: "audio/mpeg" })
    }
}
