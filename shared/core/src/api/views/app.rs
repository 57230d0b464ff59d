//! `GET /info`, `/parameters`, `/meta` and `/site`: the app's configuration as Dify shows it.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::{App, AppMode, Feature};

/// `GET /info`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppInfo {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub mode: AppMode,
}

impl AppInfo {
    pub fn new(app: &App) -> Self {
        Self {
            name: app.name.clone(),
            description: app.config.description.clone(),
            tags: app.config.tags.clone(),
            mode: app.mode,
        }
    }
}

/// `GET /parameters`: the features and the input form, passed through from the configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppParameters {
    pub opening_statement: Option<String>,
    pub suggested_questions: Vec<String>,
    pub suggested_questions_after_answer: Feature,
    pub speech_to_text: Feature,
    pub text_to_speech: Feature,
    pub retriever_resource: Feature,
    pub annotation_reply: Feature,
    pub more_like_this: Feature,
    pub user_input_form: Vec<Value>,
    pub sensitive_word_avoidance: Value,
    pub file_upload: Value,
    pub system_parameters: SystemParameters,
}

/// The upload limits of `/parameters`, in MB (and a count for workflow uploads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SystemParameters {
    pub image_file_size_limit: u32,
    pub video_file_size_limit: u32,
    pub audio_file_size_limit: u32,
    pub file_size_limit: u32,
    pub workflow_file_upload_limit: u32,
}

/// Dify's default number of files a workflow may take.
const WORKFLOW_FILE_UPLOAD_LIMIT: u32 = 10;

impl AppParameters {
    pub fn new(app: &App) -> Self {
        let c = &app.config;
        let limits = c.file_size_limits;
        Self {
            opening_statement: c.opening_statement.clone(),
            suggested_questions: c.suggested_questions.clone(),
            suggested_questions_after_answer: c.suggested_questions_after_answer.clone(),
            speech_to_text: c.speech_to_text.clone(),
            text_to_speech: c.text_to_speech.clone(),
            retriever_resource: c.retriever_resource.clone(),
            annotation_reply: c.annotation_reply.clone(),
            more_like_this: c.more_like_this.clone(),
            user_input_form: c.user_input_form.clone(),
            sensitive_word_avoidance: c.sensitive_word_avoidance.clone(),
            file_upload: c.file_upload.clone(),
            system_parameters: SystemParameters {
                image_file_size_limit: limits.image,
                video_file_size_limit: limits.video,
                audio_file_size_limit: limits.audio,
                file_size_limit: limits.document,
                workflow_file_upload_limit: WORKFLOW_FILE_UPLOAD_LIMIT,
            },
        }
    }
}

/// `GET /meta`: tool name → icon URL or `{"background", "content"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppMeta {
    pub tool_icons: Map<String, Value>,
}

impl AppMeta {
    pub fn new(app: &App) -> Self {
        Self { tool_icons: app.config.tool_icons.clone() }
    }
}

/// `GET /site`. The title defaults to the app's name; `icon_url` is sent for image icons only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppSite {
    pub title: String,
    pub chat_color_theme: Option<String>,
    pub chat_color_theme_inverted: bool,
    pub icon_type: Option<String>,
    pub icon: Option<String>,
    pub icon_background: Option<String>,
    pub icon_url: Option<String>,
    pub description: Option<String>,
    pub copyright: Option<String>,
    pub privacy_policy: Option<String>,
    pub custom_disclaimer: Option<String>,
    pub default_language: String,
    pub show_workflow_steps: bool,
    pub use_icon_as_answer_icon: bool,
}

impl AppSite {
    pub fn new(app: &App) -> Self {
        let s = app.config.site.clone();
        let icon_url = if s.icon_type.as_deref() == Some("image") { s.icon_url } else { None };
        Self {
            title: s.title.unwrap_or_else(|| app.name.clone()),
            chat_color_theme: s.chat_color_theme,
            chat_color_theme_inverted: s.chat_color_theme_inverted,
            icon_type: s.icon_type,
            icon: s.icon,
            icon_background: s.icon_background,
            icon_url,
            description: s.description,
            copyright: s.copyright,
            privacy_policy: s.privacy_policy,
            custom_disclaimer: s.custom_disclaimer,
            default_language: s.default_language,
            show_workflow_steps: s.show_workflow_steps,
            use_icon_as_answer_icon: s.use_icon_as_answer_icon,
        }
    }
}
