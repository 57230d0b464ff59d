//! Exports of an app's messages (a Colloquy extension): what a job is, where it stands, and
//! how one message becomes one row of JSON Lines or CSV.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{AppId, ConversationSummary, ExportId, Feedback, FeedbackSource, Invalid, Message, TimeRange, Timestamp};

/// A running export that has not saved its progress for this long died with its process (a
/// crashed server, a function that timed out): it reads as failed. Progress is saved at least
/// every [`EXPORT_PROGRESS_EVERY`].
pub const EXPORT_STALE_AFTER: Duration = Duration::from_secs(120);
pub const EXPORT_PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Exports (their job and their file) are kept this long.
pub const EXPORT_RETENTION_DAYS: u64 = 7;
/// What an interrupted export reads as.
pub const EXPORT_INTERRUPTED: &str = "The export was interrupted: the process running it stopped. Start a new export.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl ExportFormat {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "jsonl" => Ok(Self::Jsonl),
            "csv" => Ok(Self::Csv),
            other => Err(Invalid(format!("format: expected jsonl or csv, got '{other}'"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl => "application/x-ndjson; charset=utf-8",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportStatus {
    Pending,
    Running,
    Done,
    Failed,
}

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        [Self::Pending, Self::Running, Self::Done, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| Invalid(format!("unknown export status '{raw}'")))
    }
}

/// One export of an app's messages created in `range`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportJob {
    pub id: ExportId,
    pub app_id: AppId,
    pub format: ExportFormat,
    pub range: TimeRange,
    pub status: ExportStatus,
    /// How many messages the usage counters say the range holds (what progress is measured
    /// against; deleted conversations' messages are counted there but not exported).
    pub expected: u64,
    /// Messages written so far.
    pub exported: u64,
    /// The file's size once done.
    pub size: Option<u64>,
    pub error: Option<String>,
    pub created_at: Timestamp,
    /// When progress was last saved.
    pub updated_at: Timestamp,
}

impl ExportJob {
    /// The file's key in the blob store.
    pub fn blob_key(&self) -> String {
        format!("exports/{}/{}.{}", self.app_id, self.id, self.format.as_str())
    }

    /// The file name a download suggests.
    pub fn file_name(&self) -> String {
        format!("colloquy-export-{}.{}", self.id, self.format.as_str())
    }

    /// The job as it reads at `now`: a pending or running one whose progress is older than
    /// [`EXPORT_STALE_AFTER`] failed.
    pub fn as_of(mut self, now: Timestamp) -> Self {
        let stale = now.micros() - self.updated_at.micros() > EXPORT_STALE_AFTER.as_micros() as i64;
        if matches!(self.status, ExportStatus::Pending | ExportStatus::Running) && stale {
            self.status = ExportStatus::Failed;
            self.error = Some(EXPORT_INTERRUPTED.into());
        }
        self
    }

    /// Percent done: 100 once done; while running, the share of the expected messages written
    /// (at most 99).
    pub fn progress(&self) -> u8 {
        match self.status {
            ExportStatus::Done => 100,
            _ if self.expected == 0 => 0,
            _ => (self.exported.saturating_mul(100) / self.expected).min(99) as u8,
        }
    }
}

/// The columns of an export, in order (CSV's header; JSON Lines' keys).
pub const EXPORT_COLUMNS: [&str; 16] = [
    "conversation_id",
    "conversation_name",
    "user",
    "end_user_id",
    "message_id",
    "parent_message_id",
    "created_at",
    "query",
    "answer",
    "status",
    "error",
    "inputs",
    "rating",
    "rating_content",
    "admin_rating",
    "admin_rating_content",
];

/// One message as a row of an export: its conversation, whose it is, the message, and the end
/// user's and the operators' ratings of it.
pub fn export_row(conversation: &ConversationSummary, message: &Message, feedbacks: &[&Feedback]) -> Vec<Value> {
    let rating = |source: FeedbackSource| feedbacks.iter().find(|f| f.source == source);
    let rating_of = |f: Option<&&Feedback>| f.map_or(Value::Null, |f| Value::from(f.rating.as_str()));
    let content_of = |f: Option<&&Feedback>| f.and_then(|f| f.content.clone()).map_or(Value::Null, Value::from);
    let (user, admin) = (rating(FeedbackSource::User), rating(FeedbackSource::Admin));
    let c = &conversation.conversation;
    vec![
        Value::from(c.id.to_string()),
        Value::from(c.name.clone()),
        conversation.user.clone().map_or(Value::Null, Value::from),
        Value::from(c.owner.end_user_id.to_string()),
        Value::from(message.id.to_string()),
        message.parent_message_id.map_or(Value::Null, |id| Value::from(id.to_string())),
        Value::from(message.created_at.unix_seconds()),
        Value::from(message.query.clone()),
        Value::from(message.answer.clone()),
        Value::from(message.status.as_str()),
        message.error.clone().map_or(Value::Null, Value::from),
        Value::Object(message.inputs.clone()),
        rating_of(user),
        content_of(user),
        rating_of(admin),
        content_of(admin),
    ]
}

/// A row as one line of JSON Lines (with its newline).
pub fn jsonl_line(row: Vec<Value>) -> Vec<u8> {
    let object: Map<String, Value> = EXPORT_COLUMNS.iter().map(|c| (*c).to_owned()).zip(row).collect();
    let mut line = serde_json::to_vec(&Value::Object(object)).unwrap_or_default();
    line.push(b'\n');
    line
}

/// A row as CSV fields: `null` as empty, numbers as digits, objects as JSON, strings as they
/// are except that one a spreadsheet would run as a formula gets a leading `'` ([`defuse_formula`]).
pub fn csv_fields(row: &[Value]) -> Vec<String> {
    row.iter()
        .map(|value| match value {
            Value::Null => String::new(),
            Value::String(s) => defuse_formula(s.clone()),
            other => other.to_string(),
        })
        .collect()
}

/// A text field that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed
/// with `'`, as OWASP advises for CSV files that may be opened in a spreadsheet (JSON Lines
/// keeps every text exactly).
pub fn defuse_formula(field: String) -> String {
    match field.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{field}"),
        _ => field,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(status: ExportStatus, updated: i64) -> ExportJob {
        ExportJob {
            id: ExportId::from_uuid(uuid::Uuid::nil()),
            app_id: AppId::from_uuid(uuid::Uuid::nil()),
            format: ExportFormat::Csv,
            range: TimeRange::default(),
            status,
            expected: 200,
            exported: 50,
            size: None,
            error: None,
            created_at: Timestamp::from_micros(0),
            updated_at: Timestamp::from_micros(updated * 1_000_000),
        }
    }

    #[test]
    fn a_job_without_progress_for_two_minutes_failed() {
        let now = Timestamp::from_micros(1_000 * 1_000_000);
        assert_eq!(job(ExportStatus::Running, 990).as_of(now).status, ExportStatus::Running);
        let stale = job(ExportStatus::Running, 800).as_of(now);
        assert_eq!((stale.status, stale.error.as_deref()), (ExportStatus::Failed, Some(EXPORT_INTERRUPTED)));
        assert_eq!(job(ExportStatus::Done, 0).as_of(now).status, ExportStatus::Done);
        assert_eq!(job(ExportStatus::Running, 990).progress(), 25);
        assert_eq!(job(ExportStatus::Done, 990).progress(), 100);
    }

    #[test]
    fn formulas_are_defused_and_nulls_are_empty() {
        assert_eq!(defuse_formula("=1+1".into()), "'=1+1");
        assert_eq!(defuse_formula("hello".into()), "hello");
        assert_eq!(
            csv_fields(&[Value::Null, Value::from(-3), Value::from("x"), Value::from("@x")]),
            ["", "-3", "x", "'@x"]
        );
        assert!(ExportFormat::parse("xlsx").is_err());
    }
}
