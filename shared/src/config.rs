//! Model provider settings, read in one place from `COLLOQUY_*` environment variables.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::echo::{EchoLlm, LexicalEmbedder};
use crate::adapters::openai::{OpenAi, OpenAiSettings};
use crate::models::{Models, Provider};

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
    let bedrock = Arc::new(match aws {
        Some(config) => Bedrock::new(aws_sdk_bedrockruntime::Client::new(config), settings),
        None => Bedrock::from_env(settings).await,
    });
    Ok(Provider { name: "bedrock", llm: bedrock.clone(), embedder: Some(bedrock) })
}

#[cfg(not(feature = "bedrock"))]
async fn bedrock(_model: &str, _embedding_model: &str, _aws: Option<&AwsConfig>) -> Result<Provider, String> {
    Err("this build has no Bedrock support (build shared with the `bedrock` feature)".into())
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

    #[tokio::test]
    async fn models_are_built_with_echo_always_present() {
        let models = read(&[("COLLOQUY_OPENAI_API_KEY", "sk-test")]).unwrap().build().await.unwrap();
        assert_eq!(models.default_provider(), "echo");
        assert!(models.embedder("echo").is_ok());
        assert!(models.embedder("openai").is_ok());
        assert!(models.embedder("bedrock").is_err());
    }
}
