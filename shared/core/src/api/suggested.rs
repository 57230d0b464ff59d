//! `GET /messages/:id/suggested`: follow-up questions after an answer.

use serde_json::Value;

use super::chat::history_turns;
use super::conversations::owned;
use super::messages::settled;
use super::thread;
use super::views::SuggestedQuestions;
use super::{ApiResponse, Ctx};
use crate::api::error::ApiError;
use crate::ports::{LlmRequest, Purpose};

/// How many recent messages the model sees.
const HISTORY_MESSAGES: usize = 3;

const INSTRUCTIONS: &str = "Suggest the user's three most likely next questions, each under 20 words, \
in the language of the conversation. Reply with a JSON array of three strings and nothing else.";

pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let message_id = ctx.ids.message.ok_or(ApiError::RouteNotFound)?;
    let user = ctx.query.user(true)?;
    ctx.require_chat_app()?;
    let (owner, message) = ctx
        .read_as(&user, move |owner| async move { Ok(ctx.store().message(owner, message_id).await?) })
        .await?
        .ok_or(ApiError::NotFound("Message Not Exists."))?;
    let conversation = owned(ctx, owner, message.conversation_id).await?;
    if !ctx.app.config.suggested_questions_after_answer.enabled {
        return Err(ApiError::BadRequest("Suggested Questions Is Disabled.".into()));
    }

    // The thread ending at the newest message (every recent message where nothing was sent again).
    let thread = thread::walk(ctx, conversation.id, thread::From::Newest, HISTORY_MESSAGES).await?;
    let history = settled(ctx, thread.into_iter().map(|row| row.message).collect()).await;
    let request = LlmRequest {
        purpose: Purpose::SuggestedQuestions,
        model: None,
        system: Some(INSTRUCTIONS.into()),
        turns: history_turns(&history),
        max_tokens: 256,
        temperature: 0.0,
    };
    // Like Dify, a model failure is an empty list, not an error.
    let questions = match ctx.services.models.complete_for(&ctx.app, request).await {
        Ok(answer) => parse_questions(&answer.text),
        Err(error) => {
            tracing::warn!(%error, "suggested questions failed");
            Vec::new()
        }
    };
    Ok(ApiResponse::ok(&SuggestedQuestions::new(questions)))
}

/// The JSON array of strings in a model's answer (empty when there is none).
fn parse_questions(answer: &str) -> Vec<String> {
    let (Some(start), Some(end)) = (answer.find('['), answer.rfind(']')) else { return Vec::new() };
    let Some(Ok(Value::Array(items))) = answer.get(start..=end).map(serde_json::from_str::<Value>) else {
        return Vec::new();
    };
    items.iter().filter_map(Value::as_str).map(str::trim).filter(|q| !q.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_are_read_from_a_json_array() {
        assert_eq!(parse_questions(r#"["a?", " b? ", ""]"#), vec!["a?", "b?"]);
        assert_eq!(parse_questions("Sure:\n```json\n[\"x\"]\n```"), vec!["x"]);
        assert!(parse_questions("no list").is_empty());
        assert!(parse_questions("[not json]").is_empty());
    }
}
