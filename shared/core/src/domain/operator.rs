//! What the people who run an app see (Colloquy extensions behind operator keys): every
//! conversation of the app with whose it is and its counters, and the filters on that list.

use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;

use super::{
    AppId, AuditId, Conversation, ConversationId, EndUserId, Feedback, FeedbackSource, Invalid, Rating, Timestamp,
};

/// A conversation as its app's operators see it: whose it is and what happened in it, kept
/// by the writes that change it (never counted at read time).
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationSummary {
    pub conversation: Conversation,
    /// The end user's `user` string (`None` for a conversation written on DynamoDB before the
    /// string was kept on it).
    pub user: Option<String>,
    pub message_count: u64,
    pub last_message_at: Option<Timestamp>,
    /// Feedback of either source (the end user's and operators') on the conversation's messages.
    pub like_count: u64,
    pub dislike_count: u64,
}

/// A time range `[from, until)`; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl TimeRange {
    pub fn contains(&self, at: Timestamp) -> bool {
        self.from.is_none_or(|from| at >= from) && self.until.is_none_or(|until| at < until)
    }

    /// A range from its ends as given; a start at or after the end is an empty range (nothing
    /// matches it), as a query for it rightly finds nothing.
    pub fn new(from: Option<Timestamp>, until: Option<Timestamp>) -> Self {
        Self { from, until }
    }
}

/// The Unix seconds a query may name: years 1 to 9999, as RFC 3339 times can.
const SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// Reads a time bound of a query: Unix seconds (as Dify's responses give times) or RFC 3339.
pub fn parse_time(name: &str, raw: &str) -> Result<Timestamp, Invalid> {
    let raw = raw.trim();
    if let Ok(seconds) = raw.parse::<i64>() {
        if !SECONDS.contains(&seconds) {
            return Err(Invalid(format!("{name}: out of range (years 1 to 9999)")));
        }
        return Ok(Timestamp::from_micros(seconds * 1_000_000));
    }
    let parsed = OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
        Invalid(format!("{name}: expected Unix seconds or an RFC 3339 time such as 2026-01-31T12:00:00Z, got '{raw}'"))
    })?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1000)
        .map(Timestamp::from_micros)
        .map_err(|_| Invalid(format!("{name}: out of range")))
}

/// A case-insensitive substring of a conversation's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameFilter(String);

impl NameFilter {
    pub const MAX_CHARS: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() {
            return Err(Invalid("name: must not be empty".into()));
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(Invalid(format!("name: at most {} characters", Self::MAX_CHARS)));
        }
        Ok(Self(raw.to_lowercase()))
    }

    /// The lower-cased text to look for.
    pub fn needle(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, name: &str) -> bool {
        name.to_lowercase().contains(&self.0)
    }
}

/// The filters of `GET /v1/app/conversations`. All given ones must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConversationFilter {
    /// Only these end users' conversations (one `user` string may have two ids: its derived
    /// one and, if it was first seen before ids were derived, its stored one). `Some(empty)`
    /// matches nothing.
    pub end_users: Option<Vec<EndUserId>>,
    pub created: TimeRange,
    pub updated: TimeRange,
    /// Conversations with at least one feedback of this rating.
    pub rating: Option<Rating>,
    pub name: Option<NameFilter>,
}

impl ConversationFilter {
    /// Whether a summary passes every filter (the stores that cannot filter in their query
    /// filter with this, and tests check the ones that can against it).
    pub fn matches(&self, summary: &ConversationSummary) -> bool {
        let c = &summary.conversation;
        self.end_users.as_ref().is_none_or(|ids| ids.contains(&c.owner.end_user_id))
            && self.created.contains(c.created_at)
            && self.updated.contains(c.updated_at)
            && match self.rating {
                None => true,
                Some(Rating::Like) => summary.like_count > 0,
                Some(Rating::Dislike) => summary.dislike_count > 0,
            }
            && self.name.as_ref().is_none_or(|name| name.matches(&c.name))
    }
}

/// A feedback as `GET /v1/app/feedbacks` lists it: with the rated message's query and answer
/// (`None` when the message is gone).
#[derive(Debug, Clone, PartialEq)]
pub struct ListedFeedback {
    pub feedback: Feedback,
    pub query: Option<String>,
    pub answer: Option<String>,
}

/// The filters of `GET /v1/app/feedbacks` (Colloquy extensions; Dify's call has none). All
/// given ones must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedbackFilter {
    pub rating: Option<Rating>,
    pub source: Option<FeedbackSource>,
    /// Feedback given by these end users (a `user` string's ids); `Some(empty)` matches nothing.
    pub end_users: Option<Vec<EndUserId>>,
    pub conversation: Option<ConversationId>,
    /// When the feedback was first given.
    pub created: TimeRange,
    /// With a non-empty comment (`true`) or without one (`false`).
    pub has_content: Option<bool>,
}

impl FeedbackFilter {
    pub fn matches(&self, f: &Feedback) -> bool {
        self.rating.is_none_or(|rating| f.rating == rating)
            && self.source.is_none_or(|source| f.source == source)
            && self.end_users.as_ref().is_none_or(|ids| f.from_end_user_id.is_some_and(|id| ids.contains(&id)))
            && self.conversation.is_none_or(|id| f.conversation_id == id)
            && self.created.contains(f.created_at)
            && self.has_content.is_none_or(|wanted| f.content.as_deref().is_some_and(|c| !c.is_empty()) == wanted)
    }

    /// Whether nothing is filtered.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// How long an app's audit log keeps an entry.
pub const AUDIT_RETENTION_DAYS: i64 = 90;

/// What an operator did (or the CLI, for keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    ListConversations,
    ReadConversation,
    RateMessage,
    ReadAuditLog,
    ReadStats,
    CreateExport,
    ReadExport,
    DownloadExport,
    CreateKey,
    RevokeKey,
    EraseEndUser,
    ReadErasure,
    ExportEndUser,
    DeleteConversation,
    PreviewFile,
    SpeakMessage,
}

impl AuditAction {
    const ALL: [Self; 16] = [
        Self::ListConversations,
        Self::ReadConversation,
        Self::RateMessage,
        Self::ReadAuditLog,
        Self::ReadStats,
        Self::CreateExport,
        Self::ReadExport,
        Self::DownloadExport,
        Self::CreateKey,
        Self::RevokeKey,
        Self::EraseEndUser,
        Self::ReadErasure,
        Self::ExportEndUser,
        Self::DeleteConversation,
        Self::PreviewFile,
        Self::SpeakMessage,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ListConversations => "conversations.list",
            Self::ReadConversation => "conversation.read",
            Self::RateMessage => "message.rate",
            Self::ReadAuditLog => "audit_log.read",
            Self::ReadStats => "stats.read",
            Self::CreateExport => "export.create",
            Self::ReadExport => "export.read",
            Self::DownloadExport => "export.download",
            Self::CreateKey => "key.create",
            Self::RevokeKey => "key.revoke",
            Self::EraseEndUser => "end_user.erase",
            Self::ReadErasure => "erasure.read",
            Self::ExportEndUser => "end_user.export",
            Self::DeleteConversation => "conversation.delete",
            Self::PreviewFile => "file.preview",
            Self::SpeakMessage => "message.audio",
        }
    }

    /// Every action, in the order they were added.
    pub fn all() -> impl Iterator<Item = Self> {
        Self::ALL.into_iter()
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == raw)
            .ok_or_else(|| Invalid(format!("unknown audit action '{raw}'")))
    }
}

/// One entry of an app's audit log: who (the key's shown start, or `cli`), when, what, on what.
/// It names what was done, never the content read or written.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: AuditId,
    pub app_id: AppId,
    pub at: Timestamp,
    pub actor: String,
    pub action: AuditAction,
    /// The object acted on (a conversation, a message, a key's shown start), if one.
    pub target: Option<String>,
    /// The request's filters or paging, as given (a listing's query string), if any.
    pub detail: Option<String>,
}

impl AuditEntry {
    /// The most of a request's query an entry keeps, in bytes.
    pub const MAX_DETAIL_BYTES: usize = 512;

    /// An entry of what `actor` did at `at`; `detail` (the request's own query) is kept up to
    /// [`Self::MAX_DETAIL_BYTES`], cut at a character boundary, and an empty one is none.
    pub fn new(
        id: AuditId,
        (app_id, at): (AppId, Timestamp),
        actor: String,
        action: AuditAction,
        target: Option<String>,
        detail: Option<&str>,
    ) -> Self {
        let detail = detail.filter(|d| !d.is_empty()).map(|d| {
            let mut end = d.len().min(Self::MAX_DETAIL_BYTES);
            while !d.is_char_boundary(end) {
                end -= 1;
            }
            d[..end].to_owned()
        });
        Self { id, app_id, at, actor, action, target, detail }
    }

    /// When this entry expires.
    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_micros(self.at.micros().saturating_add(AUDIT_RETENTION_DAYS * 86_400 * 1_000_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_unix_seconds_or_rfc_3339() {
        assert_eq!(parse_time("t", "1700000000").unwrap(), Timestamp::from_micros(1_700_000_000_000_000));
        assert_eq!(parse_time("t", "2023-11-14T22:13:20Z").unwrap(), Timestamp::from_micros(1_700_000_000_000_000));
        assert_eq!(
            parse_time("t", "2023-11-14T23:13:20.5+01:00").unwrap(),
            Timestamp::from_micros(1_700_000_000_500_000)
        );
        assert!(parse_time("created_after", "yesterday").unwrap_err().0.starts_with("created_after:"));
        assert!(parse_time("t", &i64::MAX.to_string()).is_err());
        // What an RFC 3339 generator may send: a leap second, year 1, far offsets.
        for edge in ["2016-12-31T23:59:60Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999-23:59"] {
            assert!(parse_time("t", edge).is_ok(), "{edge}");
        }
        assert!(parse_time("t", "-62135596800").is_ok() && parse_time("t", "253402300799").is_ok());
        assert!(parse_time("t", "-62135596801").is_err() && parse_time("t", "253402300800").is_err());
    }

    #[test]
    fn ranges_are_half_open() {
        let t = Timestamp::from_micros;
        let range = TimeRange::new(Some(t(10)), Some(t(20)));
        assert!(range.contains(t(10)) && range.contains(t(19)) && !range.contains(t(20)) && !range.contains(t(9)));
        let empty = TimeRange::new(Some(t(20)), Some(t(20)));
        assert!(!empty.contains(t(20)) && !empty.contains(t(19)));
        assert!(TimeRange::default().contains(t(i64::MIN)));
    }

    #[test]
    fn names_match_case_insensitively() {
        let filter = NameFilter::parse("Refund").unwrap();
        assert!(filter.matches("about my REFUND please"));
        assert!(!filter.matches("refunds?".replace('d', "").as_str()));
        assert!(NameFilter::parse("").is_err());
    }
}
