//! Amazon Bedrock: chat through the Converse and ConverseStream APIs, embeddings through a
//! Titan text-embedding model (InvokeModel).

use async_trait::async_trait;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseOutput, ConverseStreamOutput, InferenceConfiguration,
    Message, SystemContentBlock, TokenUsage,
};
use serde_json::{Value, json};

use super::aws_errors::classify;

use colloquy_core::ports::{Embedder, Llm, LlmAnswer, LlmEvent, LlmRequest, LlmStream, ProviderError, Speaker, Usage};
pub use colloquy_core::settings::BedrockSettings;

/// The Bedrock adapter, for chat and embeddings.
#[derive(Debug, Clone)]
pub struct Bedrock {
    client: Client,
    settings: BedrockSettings,
}

impl Bedrock {
    /// Uses a client built once from the shared AWS configuration.
    pub fn new(client: Client, settings: BedrockSettings) -> Self {
        Self { client, settings }
    }

    fn messages(request: &LlmRequest) -> Result<Vec<Message>, ProviderError> {
        request
            .turns
            .iter()
            .map(|(speaker, text)| {
                let role = match speaker {
                    Speaker::User => ConversationRole::User,
                    Speaker::Assistant => ConversationRole::Assistant,
                };
                Message::builder()
                    .role(role)
                    .content(ContentBlock::Text(text.clone()))
                    .build()
                    .map_err(|e| ProviderError::Failed(e.to_string()))
            })
            .collect()
    }

    fn inference(request: &LlmRequest) -> InferenceConfiguration {
        InferenceConfiguration::builder()
            .max_tokens(i32::try_from(request.max_tokens).unwrap_or(i32::MAX))
            .temperature(request.temperature)
            .build()
    }

    fn system(request: &LlmRequest) -> Option<Vec<SystemContentBlock>> {
        request.system.as_ref().map(|text| vec![SystemContentBlock::Text(text.clone())])
    }
}

fn usage_of(usage: Option<&TokenUsage>) -> Usage {
    usage.map_or_else(Usage::default, |u| Usage {
        prompt_tokens: u.input_tokens().max(0) as u32,
        completion_tokens: u.output_tokens().max(0) as u32,
    })
}

#[async_trait]
impl Llm for Bedrock {
    fn provider(&self) -> &'static str {
        "bedrock"
    }

    async fn complete(&self, request: LlmRequest) -> Result<LlmAnswer, ProviderError> {
        let output = self
            .client
            .converse()
            .model_id(request.model.as_deref().unwrap_or(&self.settings.model))
            .set_system(Self::system(&request))
            .set_messages(Some(Self::messages(&request)?))
            .inference_config(Self::inference(&request))
            .send()
            .await
            .map_err(classify)?;
        let text = match output.output() {
            Some(ConverseOutput::Message(message)) => {
                message.content().iter().filter_map(|block| block.as_text().ok()).cloned().collect::<String>()
            }
            _ => return Err(ProviderError::Failed("the model returned no message".into())),
        };
        Ok(LlmAnswer { text, usage: usage_of(output.usage()) })
    }

    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, ProviderError> {
        let output = self
            .client
            .converse_stream()
            .model_id(request.model.as_deref().unwrap_or(&self.settings.model))
            .set_system(Self::system(&request))
            .set_messages(Some(Self::messages(&request)?))
            .inference_config(Self::inference(&request))
            .send()
            .await
            .map_err(classify)?;
        let events = futures_util::stream::unfold(Some(output.stream), |receiver| async move {
            let mut receiver = receiver?;
            loop {
                match receiver.recv().await {
                    Ok(Some(ConverseStreamOutput::ContentBlockDelta(event))) => {
                        if let Some(ContentBlockDelta::Text(text)) = event.delta() {
                            return Some((Ok(LlmEvent::Delta(text.clone())), Some(receiver)));
                        }
                    }
                    Ok(Some(ConverseStreamOutput::Metadata(event))) => {
                        return Some((Ok(LlmEvent::Done(usage_of(event.usage()))), None));
                    }
                    Ok(Some(_)) => {}
                    // The stream ended without metadata: done, usage unknown.
                    Ok(None) => return Some((Ok(LlmEvent::Done(Usage::default())), None)),
                    Err(error) => return Some((Err(classify(error)), None)),
                }
            }
        });
        Ok(Box::pin(events))
    }
}

#[async_trait]
impl Embedder for Bedrock {
    async fn embed(&self, texts: &[String], model: Option<&str>) -> Result<Vec<Vec<f32>>, ProviderError> {
        let model = model.unwrap_or(&self.settings.embedding_model);
        let mut vectors = Vec::with_capacity(texts.len());
        for text in texts {
            let output = self
                .client
                .invoke_model()
                .model_id(model)
                .content_type("application/json")
                .accept("application/json")
                .body(Blob::new(json!({"inputText": text}).to_string()))
                .send()
                .await
                .map_err(classify)?;
            let body: Value = serde_json::from_slice(output.body().as_ref())
                .map_err(|e| ProviderError::Failed(format!("unreadable embedding: {e}")))?;
            let vector = body["embedding"]
                .as_array()
                .ok_or_else(|| ProviderError::Failed("the answer has no embedding".into()))?
                .iter()
                .filter_map(Value::as_f64)
                .map(|x| x as f32)
                .collect();
            vectors.push(vector);
        }
        Ok(vectors)
    }
}
