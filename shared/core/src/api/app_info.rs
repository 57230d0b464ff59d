//! `GET /info`, `/parameters`, `/meta`, `/site`: read from the app's configuration.

use serde_json::json;

use super::{ApiResponse, Ctx};
use crate::api::error::ApiError;

pub(crate) fn info(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let app = &ctx.app;
    Ok(ApiResponse::ok(&json!({
        "name": app.name,
        "description": app.config.description,
        "tags": app.config.tags,
        "mode": app.mode.as_str(),
    })))
}

pub(crate) fn parameters(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let c = &ctx.app.config;
    let limits = c.file_size_limits;
    let system = json!({
        "image_file_size_limit": limits.image,
        "video_file_size_limit": limits.video,
        "audio_file_size_limit": limits.audio,
        "file_size_limit": limits.document,
        "workflow_file_upload_limit": 10,
    });
    Ok(ApiResponse::ok(&json!({
        "opening_statement": c.opening_statement,
        "suggested_questions": c.suggested_questions,
        "suggested_questions_after_answer": c.suggested_questions_after_answer,
        "speech_to_text": c.speech_to_text,
        "text_to_speech": c.text_to_speech,
        "retriever_resource": c.retriever_resource,
        "annotation_reply": c.annotation_reply,
        "more_like_this": c.more_like_this,
        "user_input_form": c.user_input_form,
        "sensitive_word_avoidance": c.sensitive_word_avoidance,
        "file_upload": c.file_upload,
        "system_parameters": system,
    })))
}

pub(crate) fn meta(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    Ok(ApiResponse::ok(&json!({"tool_icons": ctx.app.config.tool_icons})))
}

pub(crate) fn site(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let s = &ctx.app.config.site;
    let icon_url = if s.icon_type.as_deref() == Some("image") { s.icon_url.clone() } else { None };
    Ok(ApiResponse::ok(&json!({
        "title": s.title.clone().unwrap_or_else(|| ctx.app.name.clone()),
        "chat_color_theme": s.chat_color_theme,
        "chat_color_theme_inverted": s.chat_color_theme_inverted,
        "icon_type": s.icon_type,
        "icon": s.icon,
        "icon_background": s.icon_background,
        "icon_url": icon_url,
        "description": s.description,
        "copyright": s.copyright,
        "privacy_policy": s.privacy_policy,
        "custom_disclaimer": s.custom_disclaimer,
        "default_language": s.default_language,
        "show_workflow_steps": s.show_workflow_steps,
        "use_icon_as_answer_icon": s.use_icon_as_answer_icon,
    })))
}
