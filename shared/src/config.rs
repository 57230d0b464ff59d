//! Model and speech provider settings, read in one place from `COLLOQUY_*` environment variables.

use std::sync::Arc;
use std::time::Duration;

use std::path::Path;

use crate::adapters::echo::{EchoLlm, LexicalEmbedder};
use crate::adapters::local_speech::{Espeak, PocketSphinx};
use crate::adapters::openai::{OpenAi, OpenAiSettings};
use crate::adapters::openai_speech::{OPENAI_VOICES, OpenAiSpeech, OpenAiSpeechSettings};
use crate::models::{Models, Provider};
use crate::ports::{SpeechSynthesizer, Transcriber};
use crate::speech::Speech;

/// Which providers to set up and how.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// `COLLOQUY_LLM`: the default provider (`echo`, `openai` or `bedrock`).
    pub default: String,
    /// `COLLOQUY_ECHO_DELAY_MS`: pause between the echo provider's streamed words.
    pub echo_delay: Duration,
    /// Set when `COLLOQUY_LLM=openai` or any `COLLOQUY_OPENAI_*` variable is given.
    pub openai: Option<OpenAiSettings>,
    /// `(model, embedding model)`, set when `COLLOQUY_LLM=bedrock` or `COLLOQUY_BEDROCK_MODEL` is given.
    pub bedrock: Option<(String, String)>,
}

impl ModelSettings {
    /// Reads the settings through `var` (normally `std::env::var`).
    pub fn read(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let default = var("COLLOQUY_LLM").unwrap_or_else(|| "echo".into());
        if !crate::domain::PROVIDERS.contains(&default.as_str()) {
            return Err(format!("COLLOQUY_LLM must be echo, openai or bedrock; got '{default}'"));
        }
        let echo_delay = match var("COLLOQUY_ECHO_DELAY_MS") {
            None => Duration::from_millis(20),
            Some(raw) => Duration::from_millis(
                raw.parse().map_err(|_| format!("COLLOQUY_ECHO_DELAY_MS: '{raw}' is not a number"))?,
            ),
        };
        let openai_wanted = default == "openai"
            || ["COLLOQUY_OPENAI_BASE_URL", "COLLOQUY_OPENAI_API_KEY", "COLLOQUY_OPENAI_MODEL"]
                .iter()
                .any(|n| var(n).is_some());
        let openai = openai_wanted.then(|| OpenAiSettings {
            base_url: var("COLLOQUY_OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into()),
            api_key: var("COLLOQUY_OPENAI_API_KEY"),
            model: var("COLLOQUY_OPENAI_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
            embedding_model: var("COLLOQUY_OPENAI_EMBEDDING_MODEL").unwrap_or_else(|| "text-embedding-3-small".into()),
        });
        let bedrock_wanted = default == "bedrock" || var("COLLOQUY_BEDROCK_MODEL").is_some();
        let bedrock = bedrock_wanted.then(|| {
            (
                var("COLLOQUY_BEDROCK_MODEL").unwrap_or_else(|| "anthropic.claude-3-haiku-20240307-v1:0".into()),
                var("COLLOQUY_BEDROCK_EMBEDDING_MODEL").unwrap_or_else(|| "amazon.titan-embed-text-v2:0".into()),
            )
        });
        Ok(Self { default, echo_delay, openai, bedrock })
    }

    pub fn from_env() -> Result<Self, String> {
        Self::read(|name| std::env::var(name).ok())
    }

    /// Builds the providers. The built-in `echo` provider is always present.
    pub async fn build(&self) -> Result<Models, String> {
        self.build_with(None).await
    }

    /// Builds the providers, deriving AWS clients from `aws` when given (built once per process).
    #[cfg_attr(not(feature = "bedrock"), allow(unused_variables))]
    pub async fn build_with(&self, aws: Option<&AwsConfig>) -> Result<Models, String> {
        let mut providers = vec![Provider {
            name: "echo",
            llm: Arc::new(EchoLlm::new(self.echo_delay)),
            embedder: Some(Arc::new(LexicalEmbedder)),
        }];
        if let Some(settings) = &self.openai {
            let openai = Arc::new(OpenAi::new(settings.clone()).map_err(|e| e.to_string())?);
            providers.push(Provider { name: "openai", llm: openai.clone(), embedder: Some(openai) });
        }
        if let Some((model, embedding_model)) = &self.bedrock {
            providers.push(bedrock(model, embedding_model, aws).await?);
        }
        let default = crate::domain::PROVIDERS.into_iter().find(|p| *p == self.default).unwrap_or("echo");
        Models::new(default, providers)
    }
}

#[cfg(feature = "bedrock")]
type AwsConfig = aws_config::SdkConfig;
#[cfg(not(feature = "bedrock"))]
type AwsConfig = ();

#[cfg(feature = "bedrock")]
async fn bedrock(model: &str, embedding_model: &str, aws: Option<&AwsConfig>) -> Result<Provider, String> {
    use crate::adapters::bedrock::{Bedrock, BedrockSettings};
    let settings = BedrockSettings { model: model.to_owned(), embedding_model: embedding_model.to_owned() };
    let client = match aws {
        Some(config) => crate::adapters::aws_clients::bedrock(config),
        None => crate::adapters::aws_clients::bedrock(&aws_config::load_from_env().await),
    };
    let bedrock = Arc::new(Bedrock::new(client, settings));
    Ok(Provider { name: "bedrock", llm: bedrock.clone(), embedder: Some(bedrock) })
}

#[cfg(not(feature = "bedrock"))]
async fn bedrock(_model: &str, _embedding_model: &str, _aws: Option<&AwsConfig>) -> Result<Provider, String> {
    Err("this build has no Bedrock support (build shared with the `bedrock` feature)".into())
}

/// Which text-to-speech engine to use (`COLLOQUY_TTS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TtsChoice {
    Polly { engine: String },
    OpenAi,
    Espeak,
    None,
}

/// Which speech-to-text engine to use (`COLLOQUY_STT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SttChoice {
    Transcribe { language: Option<String>, polling: TranscribePolling },
    OpenAi,
    PocketSphinx { python: String },
    None,
}

/// How Transcribe jobs are waited for (`COLLOQUY_TRANSCRIBE_DEADLINE_SECONDS`, `_POLL_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranscribePolling {
    pub deadline: Duration,
    pub first_interval: Duration,
}

/// Speech engines, read from the environment. Unset `COLLOQUY_TTS` / `COLLOQUY_STT` mean the
/// local engines when they are installed (espeak-ng; PocketSphinx in `python3`), else none.
#[derive(Debug, Clone)]
pub struct SpeechSettings {
    /// `None`: choose the local engine when it is installed.
    pub tts: Option<TtsChoice>,
    pub stt: Option<SttChoice>,
    /// Set when either direction uses an OpenAI-compatible API.
    pub openai: Option<OpenAiSpeechSettings>,
    /// `COLLOQUY_POCKETSPHINX_PYTHON` (default `python3`).
    pub python: String,
}

impl SpeechSettings {
    pub fn read(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let python = var("COLLOQUY_POCKETSPHINX_PYTHON").unwrap_or_else(|| "python3".into());
        let tts = match var("COLLOQUY_TTS").as_deref() {
            None => None,
            Some("polly") => {
                Some(TtsChoice::Polly { engine: var("COLLOQUY_POLLY_ENGINE").unwrap_or_else(|| "standard".into()) })
            }
            Some("openai") => Some(TtsChoice::OpenAi),
            Some("espeak") => Some(TtsChoice::Espeak),
            Some("none") => Some(TtsChoice::None),
            Some(other) => return Err(format!("COLLOQUY_TTS must be polly, openai, espeak or none; got '{other}'")),
        };
        let seconds = |name: &str, default: u64| -> Result<u64, String> {
            var(name).map_or(Ok(default), |raw| raw.parse().map_err(|_| format!("{name}: '{raw}' is not a number")))
        };
        let stt = match var("COLLOQUY_STT").as_deref() {
            None => None,
            Some("transcribe") => Some(SttChoice::Transcribe {
                language: var("COLLOQUY_TRANSCRIBE_LANGUAGE"),
                polling: TranscribePolling {
                    deadline: Duration::from_secs(seconds("COLLOQUY_TRANSCRIBE_DEADLINE_SECONDS", 25)?),
                    first_interval: Duration::from_millis(seconds("COLLOQUY_TRANSCRIBE_POLL_MS", 500)?),
                },
            }),
            Some("openai") => Some(SttChoice::OpenAi),
            Some("pocketsphinx") => Some(SttChoice::PocketSphinx { python: python.clone() }),
            Some("none") => Some(SttChoice::None),
            Some(other) => {
                return Err(format!("COLLOQUY_STT must be transcribe, openai, pocketsphinx or none; got '{other}'"));
            }
        };
        let openai_wanted = tts == Some(TtsChoice::OpenAi) || stt == Some(SttChoice::OpenAi);
        let openai = openai_wanted.then(|| OpenAiSpeechSettings {
            base_url: var("COLLOQUY_OPENAI_SPEECH_BASE_URL")
                .or_else(|| var("COLLOQUY_OPENAI_BASE_URL"))
                .unwrap_or_else(|| "https://api.openai.com/v1".into()),
            api_key: var("COLLOQUY_OPENAI_SPEECH_API_KEY").or_else(|| var("COLLOQUY_OPENAI_API_KEY")),
            tts_model: var("COLLOQUY_OPENAI_TTS_MODEL").unwrap_or_else(|| "tts-1".into()),
            stt_model: var("COLLOQUY_OPENAI_STT_MODEL").unwrap_or_else(|| "whisper-1".into()),
            voices: var("COLLOQUY_OPENAI_TTS_VOICES").map_or_else(
                || OPENAI_VOICES.iter().map(|v| (*v).to_owned()).collect(),
                |list| list.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned).collect(),
            ),
        });
        Ok(Self { tts, stt, openai, python })
    }

    pub fn from_env() -> Result<Self, String> {
        Self::read(|name| std::env::var(name).ok())
    }

    /// Whether an AWS engine (Polly, Transcribe) is chosen.
    pub fn needs_aws(&self) -> bool {
        matches!(self.tts, Some(TtsChoice::Polly { .. })) || matches!(self.stt, Some(SttChoice::Transcribe { .. }))
    }

    /// Builds the engines. `aws` gives the SDK configuration and the bucket Transcribe uses;
    /// choosing Polly or Transcribe without it is an error.
    pub async fn build(&self, aws: Option<&AwsSpeech>) -> Result<Speech, String> {
        let openai = || -> Result<Arc<OpenAiSpeech>, String> {
            let settings = self.openai.clone().ok_or("OpenAI speech is not configured")?;
            OpenAiSpeech::new(settings).map(Arc::new).map_err(|e| e.to_string())
        };
        let synthesizer: Option<Arc<dyn SpeechSynthesizer>> = match &self.tts {
            None => Espeak::find().map(|e| Arc::new(e) as Arc<dyn SpeechSynthesizer>),
            Some(TtsChoice::None) => None,
            Some(TtsChoice::Espeak) => Some(Arc::new(Espeak::find().ok_or(
                "COLLOQUY_TTS=espeak, but espeak-ng is not installed (Debian: apt-get install espeak-ng lame)",
            )?)),
            Some(TtsChoice::OpenAi) => Some(openai()?),
            Some(TtsChoice::Polly { engine }) => Some(polly(aws, engine)?),
        };
        let transcriber: Option<Arc<dyn Transcriber>> = match &self.stt {
            None => PocketSphinx::find(Path::new(&self.python)).await.map(|p| Arc::new(p) as Arc<dyn Transcriber>),
            Some(SttChoice::None) => None,
            Some(SttChoice::PocketSphinx { python }) => {
                Some(Arc::new(PocketSphinx::find(Path::new(python)).await.ok_or_else(|| {
                    format!("COLLOQUY_STT=pocketsphinx, but '{python}' cannot import pocketsphinx (pip install pocketsphinx)")
                })?))
            }
            Some(SttChoice::OpenAi) => Some(openai()?),
            Some(SttChoice::Transcribe { language, polling }) => Some(transcribe(aws, language.clone(), *polling)?),
        };
        Ok(Speech { synthesizer, transcriber })
    }
}

/// What the AWS speech engines need: the SDK configuration and the bucket for Transcribe.
#[cfg(feature = "aws-speech")]
pub struct AwsSpeech {
    pub config: aws_config::SdkConfig,
    pub blobs: Option<crate::adapters::s3::S3Blobs>,
}

#[cfg(not(feature = "aws-speech"))]
pub struct AwsSpeech;

#[cfg(feature = "aws-speech")]
fn polly(aws: Option<&AwsSpeech>, engine: &str) -> Result<Arc<dyn SpeechSynthesizer>, String> {
    let aws = aws.ok_or("COLLOQUY_TTS=polly needs the AWS configuration")?;
    let client = crate::adapters::aws_clients::polly(&aws.config);
    Ok(Arc::new(crate::adapters::polly::Polly::new(client, engine)))
}

#[cfg(feature = "aws-speech")]
fn transcribe(
    aws: Option<&AwsSpeech>,
    language: Option<String>,
    polling: TranscribePolling,
) -> Result<Arc<dyn Transcriber>, String> {
    use crate::adapters::transcribe::{AwsTranscribe, Polling};
    let aws = aws.ok_or("COLLOQUY_STT=transcribe needs the AWS configuration")?;
    let blobs = aws.blobs.clone().ok_or("COLLOQUY_STT=transcribe needs the S3 bucket (use the DynamoDB/S3 store)")?;
    let client = crate::adapters::aws_clients::transcribe(&aws.config);
    let polling = Polling { deadline: polling.deadline, first_interval: polling.first_interval, ..Polling::default() };
    Ok(Arc::new(AwsTranscribe::new(client, blobs, language, polling)))
}

#[cfg(not(feature = "aws-speech"))]
fn polly(_aws: Option<&AwsSpeech>, _engine: &str) -> Result<Arc<dyn SpeechSynthesizer>, String> {
    Err("this build has no Polly support (build shared with the `aws-speech` feature)".into())
}

#[cfg(not(feature = "aws-speech"))]
fn transcribe(
    _aws: Option<&AwsSpeech>,
    _language: Option<String>,
    _polling: TranscribePolling,
) -> Result<Arc<dyn Transcriber>, String> {
    Err("this build has no Transcribe support (build shared with the `aws-speech` feature)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<ModelSettings, String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ModelSettings::read(|name| map.get(name).cloned())
    }

    #[test]
    fn echo_is_the_default() {
        let settings = read(&[]).unwrap();
        assert_eq!(settings.default, "echo");
        assert!(settings.openai.is_none() && settings.bedrock.is_none());
    }

    #[test]
    fn openai_settings() {
        let settings = read(&[
            ("COLLOQUY_LLM", "openai"),
            ("COLLOQUY_OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
            ("COLLOQUY_OPENAI_MODEL", "llama3"),
        ])
        .unwrap();
        let openai = settings.openai.unwrap();
        assert_eq!(
            (openai.base_url.as_str(), openai.model.as_str(), openai.api_key),
            ("http://127.0.0.1:11434/v1", "llama3", None)
        );
        assert!(read(&[("COLLOQUY_LLM", "gpt")]).is_err());
        assert!(read(&[("COLLOQUY_ECHO_DELAY_MS", "soon")]).is_err());
    }

    fn speech(pairs: &[(&str, &str)]) -> Result<SpeechSettings, String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        SpeechSettings::read(|name| map.get(name).cloned())
    }

    #[test]
    fn speech_settings() {
        let settings = speech(&[]).unwrap();
        assert!(settings.tts.is_none() && settings.stt.is_none() && settings.openai.is_none());
        let settings = speech(&[
            ("COLLOQUY_TTS", "openai"),
            ("COLLOQUY_STT", "transcribe"),
            ("COLLOQUY_OPENAI_BASE_URL", "http://127.0.0.1:8080/v1"),
            ("COLLOQUY_OPENAI_TTS_VOICES", "a, b,,c"),
            ("COLLOQUY_TRANSCRIBE_DEADLINE_SECONDS", "10"),
        ])
        .unwrap();
        let openai = settings.openai.unwrap();
        assert_eq!(openai.base_url, "http://127.0.0.1:8080/v1");
        assert_eq!(openai.voices, vec!["a", "b", "c"]);
        assert!(
            matches!(settings.stt, Some(SttChoice::Transcribe { polling, .. }) if polling.deadline.as_secs() == 10)
        );
        assert!(speech(&[("COLLOQUY_TTS", "festival")]).is_err());
        assert!(speech(&[("COLLOQUY_STT", "whisper")]).is_err());
        assert!(speech(&[("COLLOQUY_STT", "transcribe"), ("COLLOQUY_TRANSCRIBE_POLL_MS", "x")]).is_err());
    }

    #[tokio::test]
    async fn explicit_engines_that_cannot_run_are_start_up_errors() {
        let error = speech(&[("COLLOQUY_TTS", "polly")]).unwrap().build(None).await.err().unwrap();
        assert!(error.contains("AWS"), "{error}");
        let error =
            speech(&[("COLLOQUY_STT", "pocketsphinx"), ("COLLOQUY_POCKETSPHINX_PYTHON", "/nonexistent/python")])
                .unwrap()
                .build(None)
                .await
                .err()
                .unwrap();
        assert!(error.contains("pocketsphinx"), "{error}");
        let none = speech(&[("COLLOQUY_TTS", "none"), ("COLLOQUY_STT", "none")]).unwrap().build(None).await.unwrap();
        assert_eq!(none.describe(), (None, None));
    }

    #[tokio::test]
    async fn models_are_built_with_echo_always_present() {
        let models = read(&[("COLLOQUY_OPENAI_API_KEY", "sk-test")]).unwrap().build().await.unwrap();
        assert_eq!(models.default_provider(), "echo");
        assert!(models.embedder("echo").is_ok());
        assert!(models.embedder("openai").is_ok());
        assert!(models.embedder("bedrock").is_err());
    }
}
