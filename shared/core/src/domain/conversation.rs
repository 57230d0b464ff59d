use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use std::time::Duration;

use super::{AppId, ConversationId, EndUserId, FeedbackId, Invalid, MessageId, OpaqueJson, Owner, TaskId, Timestamp};

/// The name every new conversation starts with.
pub const DEFAULT_CONVERSATION_NAME: &str = "New conversation";

/// Generates a status enum: its wire and storage text, parsed back strictly.
macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = Invalid;

            fn from_str(raw: &str) -> Result<Self, Invalid> {
                match raw {
                    $($text => Ok(Self::$variant),)+
                    other => Err(Invalid(format!("'{other}' is not a {}", stringify!($name)))),
                }
            }
        }
    };
}

status_enum! {
    /// A conversation's status (Dify has one: `normal`; deleted ones are not read at all).
    ConversationStatus { Normal => "normal" }
}

status_enum! {
    /// A message's status: `normal` (answered, or still generating), or `error` (the answer
    /// failed or was interrupted; `error` says why).
    MessageStatus { Normal => "normal", Error => "error" }
}

/// A conversation of one end user in one app.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub id: ConversationId,
    pub owner: Owner,
    pub name: String,
    pub inputs: Map<String, Value>,
    pub status: ConversationStatus,
    pub introduction: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When it expires (its app's retention, from its last activity); `None`: kept.
    pub expires_at: Option<Timestamp>,
    /// Metadata, pinned, archived (Colloquy extensions).
    pub state: super::ConversationState,
}

impl Conversation {
    /// Whether it has expired at `now` (reads treat it as gone).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        super::expired(self.expires_at, now)
    }
}

/// A conversation title, set by hand or generated, with Dify's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationTitle(String);

impl ConversationTitle {
    pub const MAX_MANUAL_CHARS: usize = 255;
    const MAX_GENERATED_CHARS: usize = 75;

    /// A name typed by a user: must not be blank; stored as given (untrimmed, like Dify).
    pub fn manual(raw: &str) -> Result<Self, Invalid> {
        if raw.trim().is_empty() {
            return Err(Invalid("name is required when auto_generate is false".into()));
        }
        if raw.chars().count() > Self::MAX_MANUAL_CHARS {
            return Err(Invalid(format!("name must be at most {} characters", Self::MAX_MANUAL_CHARS)));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The text a title is generated from: a query over 2000 characters keeps its first and
    /// last 300 around `...[TRUNCATED]...`, and newlines become spaces.
    pub fn prompt_source(query: &str) -> String {
        let chars: Vec<char> = query.chars().collect();
        let shortened = if chars.len() > 2000 {
            let head: String = chars[..300].iter().collect();
            let tail: String = chars[chars.len() - 300..].iter().collect();
            format!("{head}...[TRUNCATED]...{tail}")
        } else {
            query.to_owned()
        };
        shortened.replace('\n', " ")
    }

    /// A generated title: trimmed, and cut to 75 characters plus `...` when longer.
    pub fn generated(raw: &str) -> Self {
        let trimmed = raw.trim();
        if trimmed.chars().count() > Self::MAX_GENERATED_CHARS {
            let cut: String = trimmed.chars().take(Self::MAX_GENERATED_CHARS).collect();
            Self(format!("{cut}..."))
        } else {
            Self(trimmed.to_owned())
        }
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// One exchange: the end user's query and the assistant's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub owner: Owner,
    pub parent_message_id: Option<MessageId>,
    pub inputs: Map<String, Value>,
    pub query: String,
    pub answer: String,
    pub message_files: Vec<Value>,
    pub retriever_resources: Vec<Value>,
    pub agent_thoughts: Vec<Value>,
    pub status: MessageStatus,
    pub error: Option<String>,
    /// Usage and other metadata of the answer (`{"usage": {...}}`).
    pub metadata: OpaqueJson,
    pub created_at: Timestamp,
    /// The generation answering this message while it runs (shown as `normal` with the answer
    /// so far, as Dify does); `None` once its outcome is stored.
    pub task_id: Option<TaskId>,
}

/// A message with the rating its conversation's end user gave it (none when unrated) and its
/// replies: the messages whose parent it is, oldest first (more than one where a reply was
/// regenerated or a follow-up edited).
#[derive(Debug, Clone, PartialEq)]
pub struct RatedMessage {
    pub message: Message,
    pub rating: Option<Rating>,
    pub replies: Vec<MessageId>,
}

/// The longest a chat generation may run; it then ends as failed. The streaming chat Lambda's
/// timeout (`template.yaml`) is longer, so that a generation always stores its outcome.
pub const GENERATION_DEADLINE: Duration = Duration::from_secs(100);
/// A message still generating this long after it was created was abandoned: the process
/// answering it died (a crash, a killed Lambda). The margin covers opening the model's stream
/// before the deadline starts and storing the outcome after it.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(GENERATION_DEADLINE.as_secs() + 60);
/// The error an abandoned message ends with.
pub const ABANDONED_ERROR: &str = "The answer was interrupted: the server stopped before the generation finished.";

impl Message {
    /// The creation time before which a message still generating at `now` was abandoned.
    pub fn abandoned_before(now: Timestamp) -> Timestamp {
        Timestamp::from_micros(now.micros().saturating_sub(ABANDONED_AFTER.as_micros() as i64))
    }

    /// Whether this message is still marked as generating although no generation can be
    /// running for it at `now`.
    pub fn is_abandoned(&self, now: Timestamp) -> bool {
        self.task_id.is_some() && self.created_at < Self::abandoned_before(now)
    }

    /// Ends an abandoned generation as failed, keeping whatever answer was stored.
    pub fn mark_abandoned(&mut self) {
        self.task_id = None;
        self.status = MessageStatus::Error;
        self.error = Some(ABANDONED_ERROR.into());
    }
}

/// A like or a dislike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    Like,
    Dislike,
}

impl Rating {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Like => "like",
            Self::Dislike => "dislike",
        }
    }

    /// A rating named in a query string (a filter): `like` or `dislike`.
    pub fn from_query(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "like" => Ok(Self::Like),
            "dislike" => Ok(Self::Dislike),
            other => Err(Invalid(format!("rating: expected like or dislike, got '{other}'"))),
        }
    }

    /// `"like"`, `"dislike"`, or `null`/absent (which means "revoke").
    pub fn parse(raw: Option<&Value>) -> Result<Option<Self>, Invalid> {
        match raw {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s == "like" => Ok(Some(Self::Like)),
            Some(Value::String(s)) if s == "dislike" => Ok(Some(Self::Dislike)),
            Some(other) => Err(Invalid(format!("rating: Input should be 'like' or 'dislike', got {other}"))),
        }
    }
}

/// Who gave a feedback: an end user through the API, or an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackSource {
    User,
    Admin,
}

impl FeedbackSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

/// A rating of one message by its end user.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    pub id: FeedbackId,
    pub app_id: AppId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub rating: Rating,
    pub content: Option<String>,
    pub source: FeedbackSource,
    pub from_end_user_id: Option<EndUserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_titles() {
        assert!(ConversationTitle::manual("   ").is_err());
        assert!(ConversationTitle::manual("").is_err());
        assert_eq!(ConversationTitle::manual("  Trip ").unwrap().into_string(), "  Trip ");
        assert!(ConversationTitle::manual(&"a".repeat(256)).is_err());
    }

    #[test]
    fn generated_titles_are_cut_at_75() {
        assert_eq!(ConversationTitle::generated("  short \n").into_string(), "short");
        let long = "é".repeat(80);
        let title = ConversationTitle::generated(&long).into_string();
        assert_eq!(title.chars().count(), 78);
        assert!(title.ends_with("..."));
        assert_eq!(ConversationTitle::generated(&"x".repeat(75)).into_string().len(), 75);
    }

    #[test]
    fn long_queries_are_truncated_for_the_prompt() {
        assert_eq!(ConversationTitle::prompt_source("a\nb"), "a b");
        let query = format!("{}{}{}", "h".repeat(300), "m".repeat(1500), "t".repeat(300));
        let source = ConversationTitle::prompt_source(&query);
        assert_eq!(source, format!("{}...[TRUNCATED]...{}", "h".repeat(300), "t".repeat(300)));
        assert_eq!(ConversationTitle::prompt_source(&"x".repeat(2000)).len(), 2000);
    }

    #[test]
    fn only_messages_generating_past_the_deadline_are_abandoned() {
        let created = Timestamp::from_micros(1_000_000_000_000);
        let mut message = Message {
            id: MessageId::from_uuid(uuid::Uuid::nil()),
            conversation_id: ConversationId::from_uuid(uuid::Uuid::nil()),
            owner: Owner {
                app_id: AppId::from_uuid(uuid::Uuid::nil()),
                end_user_id: EndUserId::from_uuid(uuid::Uuid::nil()),
            },
            parent_message_id: None,
            inputs: Map::new(),
            query: "q".into(),
            answer: String::new(),
            message_files: Vec::new(),
            retriever_resources: Vec::new(),
            agent_thoughts: Vec::new(),
            status: MessageStatus::Normal,
            error: None,
            metadata: OpaqueJson::null(),
            created_at: created,
            task_id: Some(TaskId::from_uuid(uuid::Uuid::nil())),
        };
        assert!(ABANDONED_AFTER > GENERATION_DEADLINE);
        let at = |after: Duration| Timestamp::from_micros(created.micros() + after.as_micros() as i64);
        assert!(!message.is_abandoned(at(GENERATION_DEADLINE)), "a generation may run until its deadline");
        assert!(!message.is_abandoned(at(ABANDONED_AFTER)));
        assert!(message.is_abandoned(at(ABANDONED_AFTER + Duration::from_micros(1))));
        message.mark_abandoned();
        assert_eq!((message.status.as_str(), message.error.as_deref()), ("error", Some(ABANDONED_ERROR)));
        assert_eq!("error".parse::<MessageStatus>().unwrap(), MessageStatus::Error);
        assert!("stopped".parse::<MessageStatus>().is_err() && "Normal".parse::<ConversationStatus>().is_err());
        assert!(!message.is_abandoned(at(ABANDONED_AFTER * 2)), "a finished message is never abandoned");
    }

    #[test]
    fn ratings() {
        assert_eq!(Rating::parse(None).unwrap(), None);
        assert_eq!(Rating::parse(Some(&Value::Null)).unwrap(), None);
        assert_eq!(Rating::parse(Some(&"like".into())).unwrap(), Some(Rating::Like));
        assert_eq!(Rating::parse(Some(&"dislike".into())).unwrap(), Some(Rating::Dislike));
        assert!(Rating::parse(Some(&"LIKE".into())).is_err());
        assert!(Rating::parse(Some(&1.into())).is_err());
    }
}
