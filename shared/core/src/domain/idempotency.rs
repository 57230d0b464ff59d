//! Idempotent writes (a Colloquy extension): a request that creates something may carry an
//! `Idempotency-Key`; the first request with a key does the work and its outcome is kept for a
//! day, so that a retry (a client's, a Lambda's, one after an API Gateway time-out) gets the
//! same answer instead of a second message, feedback or file.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{AppId, ConversationId, EndUserId, Invalid, MessageId, TaskId, Timestamp, UserRef};

/// How long an outcome is kept, and a key cannot be used for another request.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// A request still unfinished this long after it started was cut short (its process died: no
/// function runs longer than 15 minutes); its key may be used again.
pub const IDEMPOTENCY_STALE_AFTER: Duration = Duration::from_secs(15 * 60);
/// Longest key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// An `Idempotency-Key` header: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > MAX_IDEMPOTENCY_KEY || !raw.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(Invalid::new("Idempotency-Key: 1 to 255 visible ASCII characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose a key is: an app's end user (by the id derived from the user string, so an erasure
/// finds it), and the key itself as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyScope {
    pub app_id: AppId,
    pub end_user_id: EndUserId,
    /// Hex SHA-256 of the key.
    pub key_hash: String,
}

impl IdempotencyScope {
    pub fn new(app_id: AppId, user: &UserRef, key: &IdempotencyKey) -> Self {
        Self {
            app_id,
            end_user_id: EndUserId::derived(app_id, user),
            key_hash: format!("{:x}", Sha256::digest(key.as_str().as_bytes())),
        }
    }
}

/// A request made with a key: the first one's fingerprint and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    pub scope: IdempotencyScope,
    /// Hex SHA-256 of what the request asked (route, query, body), to tell a retry from a
    /// different request made with the same key.
    pub fingerprint: String,
    /// Which attempt holds the key (a later one may take over a stale one).
    pub claim: uuid::Uuid,
    pub started_at: Timestamp,
    pub expires_at: Timestamp,
    /// `None` while the first request runs.
    pub outcome: Option<IdempotentOutcome>,
}

impl IdempotentRequest {
    /// Whether this request is finished, or still running (and not stale) at `now`.
    pub fn running_at(&self, now: Timestamp) -> bool {
        self.outcome.is_none() && !self.is_stale(now)
    }

    pub fn is_stale(&self, now: Timestamp) -> bool {
        self.outcome.is_none() && now.micros() - self.started_at.micros() > IDEMPOTENCY_STALE_AFTER.as_micros() as i64
    }
}

/// What the first request answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotentOutcome {
    /// A complete response: replayed as it was.
    Response { status: u16, content_type: Option<String>, body: Vec<u8> },
    /// A streamed chat answer: replayed from the stored message once it is answered.
    Stream { conversation_id: ConversationId, message_id: MessageId, task_id: TaskId, created_at: i64 },
}

/// A SHA-256 over parts, each length-prefixed (so that no two lists of parts hash alike).
pub fn fingerprint<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    format!("{:x}", hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(IdempotencyKey::parse("order-42 retry").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", "tab\there", "é", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_tell_parts_apart() {
        assert_ne!(fingerprint([b"ab".as_slice(), b"c"]), fingerprint([b"a".as_slice(), b"bc"]));
        assert_eq!(fingerprint([b"ab".as_slice()]), fingerprint([b"ab".as_slice()]));
    }
}
