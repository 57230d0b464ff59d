use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{AppId, Invalid, Timestamp, ValueType, VariableNameFilter};

/// An app: a name, a mode and the configuration its `/parameters`, `/site` and limits read.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub id: AppId,
    pub name: String,
    pub mode: AppMode,
    pub config: AppConfig,
    pub created_at: Timestamp,
}

impl App {
    pub const MAX_NAME_CHARS: usize = 255;

    pub fn new(
        id: AppId,
        name: &str,
        mode: AppMode,
        config: AppConfig,
        created_at: Timestamp,
    ) -> Result<Self, Invalid> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > Self::MAX_NAME_CHARS {
            return Err(Invalid(format!("app name must be 1 to {} characters", Self::MAX_NAME_CHARS)));
        }
        config.validate()?;
        Ok(Self { id, name: name.to_owned(), mode, config, created_at })
    }

    /// Conversation endpoints (list, delete, rename, variables, message history) serve
    /// only chat-like apps; the others answer `not_chat_app`.
    pub fn is_chat_like(&self) -> bool {
        matches!(self.mode, AppMode::Chat | AppMode::AgentChat | AppMode::AdvancedChat)
    }
}

/// Dify's app modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppMode {
    Chat,
    AgentChat,
    AdvancedChat,
    Completion,
    Workflow,
}

impl AppMode {
    pub const ALL: [AppMode; 5] = [Self::Chat, Self::AgentChat, Self::AdvancedChat, Self::Completion, Self::Workflow];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::AgentChat => "agent-chat",
            Self::AdvancedChat => "advanced-chat",
            Self::Completion => "completion",
            Self::Workflow => "workflow",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == raw).ok_or_else(|| {
            Invalid(format!("mode must be one of chat, agent-chat, advanced-chat, completion, workflow; got '{raw}'"))
        })
    }
}

/// Whether the app may be used at all. Anything but `normal` answers 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppStatus {
    #[default]
    Normal,
    Abnormal,
}

/// One switchable feature of `/parameters` (`{"enabled": bool, ...}`); extra keys such as
/// a TTS `voice` are kept as given.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Feature {
    #[serde(default)]
    pub enabled: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Fields of `GET /site`. The title defaults to the app name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    pub title: Option<String>,
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

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            title: None,
            chat_color_theme: None,
            chat_color_theme_inverted: false,
            icon_type: Some("emoji".into()),
            icon: Some("🤖".into()),
            icon_background: Some("#FFEAD5".into()),
            icon_url: None,
            description: None,
            copyright: None,
            privacy_policy: None,
            custom_disclaimer: None,
            default_language: "en-US".into(),
            show_workflow_steps: true,
            use_icon_as_answer_icon: false,
        }
    }
}

/// An app's configuration, as read from `colloquy app create/update --config FILE.json`.
/// The feature keys are those of Dify's `GET /v1/parameters`; unknown keys are rejected so
/// that a typo does not silently fall back to a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppConfig {
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub status: AppStatus,
    pub enable_api: bool,
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
    pub site: SiteConfig,
    /// `GET /meta`: tool name → icon URL or `{"background","content"}`.
    pub tool_icons: Map<String, Value>,
    /// Feedback writes allowed per end user per minute; 0 turns the limit off.
    pub feedback_rate_limit_per_minute: u32,
    /// The system prompt of chat answers; `{{variable}}` is filled from the inputs.
    pub pre_prompt: Option<String>,
    /// Overrides the server's language model for this app.
    pub model: ModelChoice,
    /// Upload size limits per kind of file, in MB (Dify's defaults).
    pub file_size_limits: FileSizeLimits,
    /// The variables every new conversation starts with (Dify's workflow conversation
    /// variables), read and written through `/conversations/:id/variables`.
    pub conversation_variables: Vec<VariableDefinition>,
    /// How long conversations and files are kept (absent: forever).
    pub retention: super::Retention,
}

/// A conversation variable every new conversation of the app gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDefinition {
    pub name: String,
    /// One of Dify's segment types (`string`, `number`, `object`, `array[string]`, ...).
    pub value_type: String,
    /// The starting value; absent or `null` means the type's empty value.
    #[serde(default)]
    pub value: Value,
    #[serde(default)]
    pub description: String,
}

impl VariableDefinition {
    /// The type and starting value, checked.
    pub fn typed_value(&self) -> Result<(ValueType, Value), Invalid> {
        let value_type = ValueType::parse(&self.value_type)?;
        let value = match &self.value {
            Value::Null => value_type.empty_value(),
            given if value_type.accepts(given) => given.clone(),
            _ => {
                return Err(Invalid(format!(
                    "conversation_variables: '{}' starts with a value that is not {}",
                    self.name, self.value_type
                )));
            }
        };
        Ok((value_type, value))
    }
}

/// Upload size limits per kind of file, in MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileSizeLimits {
    pub image: u32,
    pub video: u32,
    pub audio: u32,
    pub document: u32,
}

impl Default for FileSizeLimits {
    fn default() -> Self {
        Self { image: 10, video: 100, audio: 50, document: 15 }
    }
}

/// An app's choice of language model; absent fields use the server's configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelChoice {
    /// `echo`, `openai` or `bedrock`.
    pub provider: Option<String>,
    /// The provider's model id.
    pub name: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            description: None,
            tags: Vec::new(),
            status: AppStatus::Normal,
            enable_api: true,
            opening_statement: None,
            suggested_questions: Vec::new(),
            suggested_questions_after_answer: Feature::default(),
            speech_to_text: Feature::default(),
            text_to_speech: Feature::default(),
            retriever_resource: Feature::default(),
            annotation_reply: Feature::default(),
            more_like_this: Feature::default(),
            user_input_form: Vec::new(),
            sensitive_word_avoidance: json!({"enabled": false, "type": "", "configs": []}),
            file_upload: json!({"image": {
                "enabled": false, "number_limits": 3, "detail": "high",
                "transfer_methods": ["remote_url", "local_file"]
            }}),
            site: SiteConfig::default(),
            tool_icons: Map::new(),
            feedback_rate_limit_per_minute: 10,
            pre_prompt: None,
            model: ModelChoice::default(),
            file_size_limits: FileSizeLimits::default(),
            conversation_variables: Vec::new(),
            retention: super::Retention::default(),
        }
    }
}

/// Language model providers an app may choose.
pub const PROVIDERS: [&str; 3] = ["echo", "openai", "bedrock"];

/// Input control types Dify's `user_input_form` knows.
const FORM_TYPES: [&str; 7] = ["text-input", "paragraph", "select", "number", "file", "file-list", "checkbox"];

impl AppConfig {
    /// Parses a configuration document, applying defaults for absent keys.
    pub fn from_json(raw: &str) -> Result<Self, Invalid> {
        let config: Self = serde_json::from_str(raw).map_err(|e| Invalid(format!("invalid app configuration: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), Invalid> {
        self.retention.validate()?;
        for (index, item) in self.user_input_form.iter().enumerate() {
            let control = item.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next());
            let valid = control.is_some_and(|(kind, spec)| {
                FORM_TYPES.contains(&kind.as_str())
                    && spec.get("variable").and_then(Value::as_str).is_some_and(|v| !v.is_empty())
            });
            if !valid {
                return Err(Invalid(format!(
                    "user_input_form[{index}] must be {{\"<{}>\": {{\"variable\": \"name\", ...}}}}",
                    FORM_TYPES.join("|")
                )));
            }
        }
        for (index, definition) in self.conversation_variables.iter().enumerate() {
            VariableNameFilter::parse(&definition.name)
                .map_err(|_| Invalid(format!("conversation_variables[{index}]: a name of 1 to 255 characters")))?;
            definition.typed_value()?;
            if self.conversation_variables[..index].iter().any(|d| d.name == definition.name) {
                return Err(Invalid(format!("conversation_variables: '{}' is defined twice", definition.name)));
            }
        }
        for (key, value) in
            [("sensitive_word_avoidance", &self.sensitive_word_avoidance), ("file_upload", &self.file_upload)]
        {
            if !value.is_object() {
                return Err(Invalid(format!("{key} must be an object")));
            }
        }
        Ok(())
    }
}

impl AppConfig {
    /// Checks a new conversation's `inputs` against `user_input_form`, as Dify does, and
    /// returns the values of the form's variables (absent optional ones as their default or "").
    pub fn check_inputs(&self, inputs: &Map<String, Value>) -> Result<Map<String, Value>, Invalid> {
        let mut checked = Map::new();
        for item in &self.user_input_form {
            let Some((kind, spec)) = item.as_object().and_then(|o| o.iter().next()) else { continue };
            let Some(variable) = spec.get("variable").and_then(Value::as_str) else { continue };
            let label = spec.get("label").and_then(Value::as_str).unwrap_or(variable);
            let required = spec.get("required").and_then(Value::as_bool).unwrap_or(false);
            let value = inputs.get(variable).filter(|v| !v.is_null() && v.as_str() != Some(""));
            let Some(value) = value else {
                if required {
                    return Err(Invalid(format!("{label} is required in input form")));
                }
                let default = spec.get("default").filter(|d| !d.is_null()).cloned();
                checked.insert(variable.to_owned(), default.unwrap_or_else(|| Value::String(String::new())));
                continue;
            };
            match kind.as_str() {
                "text-input" | "paragraph" => {
                    let text =
                        value.as_str().ok_or_else(|| Invalid(format!("{label} in input form must be a string")))?;
                    if let Some(max) = spec.get("max_length").and_then(Value::as_u64)
                        && max > 0
                        && text.chars().count() as u64 > max
                    {
                        return Err(Invalid(format!("{label} in input form must be less than {max} characters")));
                    }
                }
                "select" => {
                    let options = spec.get("options").and_then(Value::as_array).cloned().unwrap_or_default();
                    if !options.contains(value) {
                        let names: Vec<String> =
                            options.iter().map(|o| o.as_str().unwrap_or_default().to_owned()).collect();
                        return Err(Invalid(format!("{label} in input form must be one of the following: {names:?}")));
                    }
                }
                "number" => {
                    let numeric = value.is_number() || value.as_str().is_some_and(|s| s.trim().parse::<f64>().is_ok());
                    if !numeric {
                        return Err(Invalid(format!("{label} in input form must be a valid number")));
                    }
                }
                _ => {}
            }
            checked.insert(variable.to_owned(), value.clone());
        }
        Ok(checked)
    }
}

/// Fills `{{name}}` placeholders from `inputs`; unknown names are left as written.
pub fn fill_template(template: &str, inputs: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        match inputs.get(name) {
            Some(Value::String(text)) => out.push_str(text),
            Some(Value::Null) => {}
            Some(other) => out.push_str(&other.to_string()),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled() {
        let inputs = json!({"name": "Ada", "n": 3}).as_object().unwrap().clone();
        assert_eq!(fill_template("Hi {{name}}, {{n}} {{other}} {{", &inputs), "Hi Ada, 3 {{other}} {{");
        assert_eq!(fill_template("plain", &inputs), "plain");
    }

    #[test]
    fn inputs_follow_the_form() {
        let config = AppConfig::from_json(
            r#"{"user_input_form": [
                {"text-input": {"label": "Name", "variable": "name", "required": true, "max_length": 5}},
                {"select": {"label": "City", "variable": "city", "required": false, "options": ["Rome", "Oslo"]}},
                {"number": {"label": "Days", "variable": "days", "required": false, "default": 2}}
            ]}"#,
        )
        .unwrap();
        let ok = config.check_inputs(json!({"name": "Ada", "extra": 1}).as_object().unwrap()).unwrap();
        assert_eq!(Value::Object(ok), json!({"name": "Ada", "city": "", "days": 2}));
        for (bad, message) in [
            (json!({}), "Name is required in input form"),
            (json!({"name": ""}), "Name is required in input form"),
            (json!({"name": "Adelaide"}), "Name in input form must be less than 5 characters"),
            (json!({"name": 3}), "Name in input form must be a string"),
            (
                json!({"name": "A", "city": "Paris"}),
                "City in input form must be one of the following: [\"Rome\", \"Oslo\"]",
            ),
            (json!({"name": "A", "days": "many"}), "Days in input form must be a valid number"),
        ] {
            assert_eq!(config.check_inputs(bad.as_object().unwrap()).unwrap_err().0, message);
        }
    }

    #[test]
    fn empty_config_gets_dify_defaults() {
        let config = AppConfig::from_json("{}").unwrap();
        assert!(config.enable_api);
        assert_eq!(config.status, AppStatus::Normal);
        assert_eq!(config.feedback_rate_limit_per_minute, 10);
        assert!(!config.speech_to_text.enabled);
    }

    #[test]
    fn features_keep_extra_keys() {
        let config = AppConfig::from_json(r#"{"text_to_speech":{"enabled":true,"voice":"Joanna"}}"#).unwrap();
        assert!(config.text_to_speech.enabled);
        assert_eq!(config.text_to_speech.extra["voice"], "Joanna");
    }

    #[test]
    fn typos_and_bad_forms_are_rejected() {
        assert!(AppConfig::from_json(r#"{"opening_statment":"hi"}"#).is_err());
        assert!(AppConfig::from_json(r#"{"user_input_form":[{"text-input":{}}]}"#).is_err());
        assert!(AppConfig::from_json(r#"{"user_input_form":[{"slider":{"variable":"x"}}]}"#).is_err());
        assert!(
            AppConfig::from_json(r#"{"user_input_form":[{"text-input":{"variable":"name","label":"Name"}}]}"#).is_ok()
        );
        assert!(AppConfig::from_json(r#"{"file_upload": 3}"#).is_err());
    }

    #[test]
    fn app_names_and_modes() {
        let id = AppId::from_uuid(uuid::Uuid::nil());
        let now = Timestamp::from_micros(0);
        assert!(App::new(id, "  ", AppMode::Chat, AppConfig::default(), now).is_err());
        assert_eq!(App::new(id, " Support ", AppMode::Chat, AppConfig::default(), now).unwrap().name, "Support");
        assert_eq!(AppMode::parse("agent-chat").unwrap(), AppMode::AgentChat);
        assert!(AppMode::parse("Chat").is_err());
    }
}
