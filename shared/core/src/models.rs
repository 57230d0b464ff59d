//! Which language model and embedder serve an app: the server's configured providers, the
//! default one, and an app's override.

use std::sync::Arc;

use crate::domain::App;
use crate::ports::{Embedder, Llm, LlmAnswer, LlmRequest, ProviderError};

/// A configured provider: its chat model and, when it has one, its embedder.
#[derive(Clone)]
pub struct Provider {
    pub name: &'static str,
    pub llm: Arc<dyn Llm>,
    pub embedder: Option<Arc<dyn Embedder>>,
}

/// The providers this server has, and which one apps use unless they choose.
#[derive(Clone)]
pub struct Models {
    default: &'static str,
    providers: Vec<Provider>,
}

impl Models {
    /// `default` must be the name of one of `providers`.
    pub fn new(default: &'static str, providers: Vec<Provider>) -> Result<Self, String> {
        if !providers.iter().any(|p| p.name == default) {
            return Err(format!("the default provider '{default}' is not configured"));
        }
        Ok(Self { default, providers })
    }

    pub fn default_provider(&self) -> &'static str {
        self.default
    }

    fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The chat model for an app and the model id it asks for.
    pub fn llm_for(&self, app: &App) -> Result<(Arc<dyn Llm>, Option<String>), ProviderError> {
        let name = app.config.model.provider.as_deref().unwrap_or(self.default);
        let provider = self.provider(name).ok_or_else(|| {
            ProviderError::NotInitialized(format!(
                "the app uses provider '{name}', which this server has not configured"
            ))
        })?;
        Ok((Arc::clone(&provider.llm), app.config.model.name.clone()))
    }

    /// A whole answer from the app's model (`request.model` is set to the app's choice).
    pub async fn complete_for(&self, app: &App, mut request: LlmRequest) -> Result<LlmAnswer, ProviderError> {
        let (llm, model) = self.llm_for(app)?;
        request.model = model;
        llm.complete(request).await
    }

    /// The embedder of a provider, for annotation reply.
    pub fn embedder(&self, name: &str) -> Result<Arc<dyn Embedder>, ProviderError> {
        self.provider(name)
            .and_then(|p| p.embedder.clone())
            .ok_or_else(|| ProviderError::NotInitialized(format!("no embedding provider '{name}' is configured")))
    }
}
