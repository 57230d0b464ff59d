//! The built-in `echo` provider: deterministic answers with no account and no network, for
//! local development and tests. It is not a language model; it says so in its answers.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream;

use colloquy_core::ports::{
    Embedder, Llm, LlmAnswer, LlmEvent, LlmRequest, LlmStream, ProviderError, Purpose, Speaker, Usage,
};

/// Answers by echoing the last user turn; streams it word by word with `delay` between words.
#[derive(Debug, Clone, Default)]
pub struct EchoLlm {
    pub delay: Duration,
}

impl EchoLlm {
    pub fn new(delay: Duration) -> Self {
        Self { delay }
    }

    fn answer(request: &LlmRequest) -> String {
        let last =
            request.turns.iter().rev().find(|(who, _)| *who == Speaker::User).map(|(_, t)| t.trim()).unwrap_or("");
        match request.purpose {
            Purpose::Chat => {
                let earlier = request.turns.iter().filter(|(who, _)| *who == Speaker::User).count().saturating_sub(1);
                format!("Echo: {last} (echo provider; {earlier} earlier questions in this conversation)")
            }
            Purpose::ConversationTitle => {
                let title: Vec<&str> = last.split_whitespace().take(6).collect();
                serde_json::json!({"Your Output": title.join(" ")}).to_string()
            }
            Purpose::SuggestedQuestions => {
                let topic =
                    last.split_whitespace().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>();
                let topic = topic.join(" ").trim_end_matches(['?', '.', '!']).to_owned();
                serde_json::json!([
                    format!("Can you tell me more about {topic}?"),
                    format!("Why does {topic} matter?"),
                    format!("What should I read next about {topic}?"),
                ])
                .to_string()
            }
        }
    }

    fn usage(request: &LlmRequest, answer: &str) -> Usage {
        let words = |text: &str| text.split_whitespace().count() as u32;
        let prompt =
            request.system.as_deref().map_or(0, words) + request.turns.iter().map(|(_, t)| words(t)).sum::<u32>();
        Usage { prompt_tokens: prompt, completion_tokens: words(answer) }
    }
}

#[async_trait]
impl Llm for EchoLlm {
    fn provider(&self) -> &'static str {
        "echo"
    }

    async fn complete(&self, request: LlmRequest) -> Result<LlmAnswer, ProviderError> {
        let text = Self::answer(&request);
        Ok(LlmAnswer { usage: Self::usage(&request, &text), text })
    }

    async fn stream(&self, request: LlmRequest) -> Result<LlmStream, ProviderError> {
        let text = Self::answer(&request);
        let usage = Self::usage(&request, &text);
        let mut pieces: Vec<String> = text.split_inclusive(' ').map(str::to_owned).collect();
        if pieces.is_empty() {
            pieces.push(String::new());
        }
        let delay = self.delay;
        let deltas = stream::iter(pieces).then(move |piece| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(LlmEvent::Delta(piece))
        });
        Ok(Box::pin(deltas.chain(stream::once(async move { Ok(LlmEvent::Done(usage)) }))))
    }
}

/// A lexical embedding: hashed word counts, so cosine similarity measures shared words.
#[derive(Debug, Clone, Copy, Default)]
pub struct LexicalEmbedder;

impl LexicalEmbedder {
    const DIMENSIONS: usize = 512;

    fn embed_one(text: &str) -> Vec<f32> {
        let mut vector = vec![0.0_f32; Self::DIMENSIONS];
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let word = word.to_lowercase();
            // FNV-1a: stable across runs and platforms, unlike the std hasher.
            let hash =
                word.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
            vector[(hash % Self::DIMENSIONS as u64) as usize] += 1.0;
        }
        vector
    }
}

#[async_trait]
impl Embedder for LexicalEmbedder {
    async fn embed(&self, texts: &[String], _model: Option<&str>) -> Result<Vec<Vec<f32>>, ProviderError> {
        Ok(texts.iter().map(|t| Self::embed_one(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use colloquy_core::domain::cosine_similarity;

    fn request(purpose: Purpose, query: &str) -> LlmRequest {
        LlmRequest {
            purpose,
            model: None,
            system: None,
            turns: vec![(Speaker::User, query.to_owned())],
            max_tokens: 100,
            temperature: 0.0,
        }
    }

    #[tokio::test]
    async fn streams_the_same_text_it_completes() {
        let llm = EchoLlm::default();
        let whole = llm.complete(request(Purpose::Chat, "hello there")).await.unwrap();
        let mut stream = llm.stream(request(Purpose::Chat, "hello there")).await.unwrap();
        let mut text = String::new();
        while let Some(Ok(event)) = stream.next().await {
            match event {
                LlmEvent::Delta(piece) => text.push_str(&piece),
                LlmEvent::Done(usage) => assert_eq!(usage, whole.usage),
            }
        }
        assert_eq!(text, whole.text);
        assert!(text.starts_with("Echo: hello there"));
    }

    #[tokio::test]
    async fn answers_in_the_shape_each_purpose_expects() {
        let llm = EchoLlm::default();
        let title =
            llm.complete(request(Purpose::ConversationTitle, "plan a trip to rome in may please")).await.unwrap();
        let title: serde_json::Value = serde_json::from_str(&title.text).unwrap();
        assert_eq!(title["Your Output"], "plan a trip to rome in");
        let questions =
            llm.complete(request(Purpose::SuggestedQuestions, "tell me about rust lifetimes?")).await.unwrap();
        let questions: Vec<String> = serde_json::from_str(&questions.text).unwrap();
        assert_eq!(questions.len(), 3);
        assert!(questions[0].contains("about rust lifetimes?"));
    }

    #[tokio::test]
    async fn lexical_similarity_tracks_shared_words() {
        let texts = [
            "How do I reset my password".to_owned(),
            "how to RESET a password?".to_owned(),
            "weather in Oslo".to_owned(),
        ];
        let v = LexicalEmbedder.embed(&texts, None).await.unwrap();
        assert!(cosine_similarity(&v[0], &v[1]) > 0.4);
        assert!(cosine_similarity(&v[0], &v[2]) < 0.1);
    }
}
