//! Model and speech providers: any OpenAI-compatible API over HTTP, and the built-in `echo`
//! model. Implements the core's ports.

pub mod echo;
pub mod openai;
pub mod openai_speech;

use std::sync::Arc;
use std::time::Duration;

use colloquy_core::models::{Models, Provider};
use colloquy_core::settings::{ModelSettings, OpenAiSpeechSettings};

/// The built-in `echo` provider (chat and lexical embeddings).
pub fn echo(delay: Duration) -> Provider {
    Provider { name: "echo", llm: Arc::new(echo::EchoLlm::new(delay)), embedder: Some(Arc::new(echo::LexicalEmbedder)) }
}

/// Only the built-in `echo` provider, without pauses (for functions that call no model).
pub fn echo_only() -> Models {
    Models::new("echo", vec![echo(Duration::ZERO)]).expect("echo is configured")
}

/// The providers `settings` configure: `echo` always, `openai` when configured, and the
/// `others` the program built (Bedrock, from the AWS adapters).
pub fn models(settings: &ModelSettings, others: Vec<Provider>) -> Result<Models, String> {
    let mut providers = vec![echo(settings.echo_delay)];
    if let Some(openai) = &settings.openai {
        let openai = Arc::new(openai::OpenAi::new(openai.clone()).map_err(|e| e.to_string())?);
        providers.push(Provider { name: "openai", llm: openai.clone(), embedder: Some(openai) });
    }
    providers.extend(others);
    Models::new(settings.default, providers)
}

/// The OpenAI-compatible speech engine (both directions).
pub fn openai_speech(settings: Option<&OpenAiSpeechSettings>) -> Result<Arc<openai_speech::OpenAiSpeech>, String> {
    let settings = settings.ok_or("OpenAI speech is not configured")?;
    openai_speech::OpenAiSpeech::new(settings.clone()).map(Arc::new).map_err(|e| e.to_string())
}
