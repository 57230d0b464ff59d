//! Any OpenAI-compatible chat-completions API (OpenAI, vLLM, Ollama, ...): chat, streaming
//! chat and embeddings over HTTP.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sse_stream::SseStream;

use colloquy_core::ports::{Embedder, Llm, LlmAnswer, LlmEvent, LlmRequest, LlmStream, ProviderError, Speaker, Usage};
pub use colloquy_core::settings::OpenAiSettings;

/// The OpenAI-compatible adapter, for chat and embeddings.
#[derive(Debug, Clone)]
pub struct OpenAi {
    client: Client,
    settings: OpenAiSettings,
}

impl OpenAi {
    pub fn new(settings: OpenAiSettings) -> Result<Self, ProviderError> {
        Ok(Self { client: http_client()?, settings })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.settings.base_url.trim_end_matches('/'))
    }

    async fn post(&self, path: &str, body: &Value) -> Result<reqwest::Response, ProviderError> {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|e| ProviderError::Failed(format!("cannot reach the model: {}", with_causes(&e))))?;
        checked(response).await
    }

    fn chat_body(&self, request: &LlmRequest, stream: bool) -> Value {
        let mut messages = Vec::new();
        if let Some(system) = &request.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        for (speaker, text) in &request.turns {
            let role = match speaker {
                Speaker::User => "user",
                Speaker::Assistant => "assistant",
            };
            messages.push(json!({"role": role, "content": text}));
        }
        let mut body = json!({
            "model": request.model.as_deref().unwrap_or(&self.settings.model),
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": stream,
        });
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }
}

/// The HTTP client of the OpenAI-compatible adapters: a short connect timeout, a long read one
/// (answers and audio can take a while).
pub(crate) fn http_client() -> Result<Client, ProviderError> {
    Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| ProviderError::Failed(e.to_string()))
}

/// An error with the errors that caused it, for the log (reqwest's own text stops at the URL,
/// before "connection refused").
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// The response when it succeeded; otherwise its error, classified as Dify reports it.
pub(crate) async fn checked(response: reqwest::Response) -> Result<reqwest::Response, ProviderError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or(text);
    Err(classify(status, detail))
}

fn classify(status: StatusCode, detail: String) -> ProviderError {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ProviderError::NotInitialized(detail),
        StatusCode::TOO_MANY_REQUESTS => ProviderError::RateLimited(detail),
        _ => ProviderError::Failed(format!("the model answered {status}: {detail}")),
    }
}

fn usage_of(value: &Value) -> Usage {
    let count = |key: &str| value[key].as_u64().unwrap_or(0) as u32;
    Usage { prompt_tokens: count("prompt_tokens"), completion_tokens: count("completion_tokens") }
}

#[async_trait]
impl Llm for OpenAi {
    fn provider(&self) -> &'static str {
        "openai"
    }

    async fn complete(&self, request: LlmRequest) -> Result<LlmAnswer, ProviderError> {
        let response = self.post("chat/completions", &self.chat_body(&request, false)).await?;
        let body: Value =
            response.json().await.map_err(|e| ProviderError::Failed(format!("unreadable answer: {e}")))?;
        let text = body["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| ProviderError::Failed("the answer has no choices[0].message.content".into()))?;
        Ok(LlmAnswer { text: text.to_owned(), usage: usage_of(&body["usage"]) })
    }

    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, ProviderError> {
        let response = self.post("chat/completions", &self.chat_body(&request, true)).await?;
        let events = SseStream::from_bytes_stream(response.bytes_stream());
        let mut usage = Usage::default();
        let mut finished = false;
        let stream = events
            .map(move |event| -> Vec<Result<LlmEvent, ProviderError>> {
                if finished {
                    return Vec::new();
                }
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        return vec![Err(ProviderError::Failed(format!("the stream broke: {}", with_causes(&e))))];
                    }
                };
                let Some(data) = event.data else { return Vec::new() };
                if data.trim() == "[DONE]" {
                    finished = true;
                    return vec![Ok(LlmEvent::Done(usage))];
                }
                let chunk: Value = match serde_json::from_str(&data) {
                    Ok(chunk) => chunk,
                    Err(e) => return vec![Err(ProviderError::Failed(format!("unreadable stream chunk: {e}")))],
                };
                if let Some(message) = chunk["error"]["message"].as_str() {
                    return vec![Err(ProviderError::Failed(message.to_owned()))];
                }
                if chunk["usage"].is_object() {
                    usage = usage_of(&chunk["usage"]);
                }
                match chunk["choices"][0]["delta"]["content"].as_str() {
                    Some(text) if !text.is_empty() => vec![Ok(LlmEvent::Delta(text.to_owned()))],
                    _ => Vec::new(),
                }
            })
            .flat_map(futures_util::stream::iter);
        Ok(Box::pin(stream))
    }
}

#[async_trait]
impl Embedder for OpenAi {
    async fn embed(&self, texts: &[String], model: Option<&str>) -> Result<Vec<Vec<f32>>, ProviderError> {
        let body = json!({"model": model.unwrap_or(&self.settings.embedding_model), "input": texts});
        let response = self.post("embeddings", &body).await?;
        let body: Value =
            response.json().await.map_err(|e| ProviderError::Failed(format!("unreadable answer: {e}")))?;
        let data = body["data"].as_array().ok_or_else(|| ProviderError::Failed("the answer has no data".into()))?;
        let mut vectors: Vec<(u64, Vec<f32>)> = data
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let vector = item["embedding"]
                    .as_array()
                    .map(|v| v.iter().filter_map(Value::as_f64).map(|x| x as f32).collect());
                (item["index"].as_u64().unwrap_or(i as u64), vector.unwrap_or_default())
            })
            .collect();
        vectors.sort_by_key(|(index, _)| *index);
        if vectors.len() != texts.len() {
            return Err(ProviderError::Failed(format!("asked for {} embeddings, got {}", texts.len(), vectors.len())));
        }
        Ok(vectors.into_iter().map(|(_, v)| v).collect())
    }
}
