//! Retention per app (a Colloquy extension): how long a conversation lives after its last
//! activity, and an uploaded file after its upload. The expiry is fixed when the object is
//! written (a conversation's at each of its activities) and stored with it: reads hide what has
//! expired, the sweeper (locally) or DynamoDB's TTL (on AWS) removes it. A changed period
//! applies to what is written from then on.

use serde::{Deserialize, Serialize};

use super::{Invalid, Timestamp};

const DAY_MICROS: i64 = 86_400 * 1_000_000;

/// `retention: {"conversation_days": N, "files_days": M}`; an absent period keeps forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    pub conversation_days: Option<u32>,
    pub files_days: Option<u32>,
}

impl Retention {
    /// The longest period (a hundred years).
    pub const MAX_DAYS: u32 = 36_500;

    pub fn validate(&self) -> Result<(), Invalid> {
        for (name, days) in [("conversation_days", self.conversation_days), ("files_days", self.files_days)] {
            if days.is_some_and(|d| d == 0 || d > Self::MAX_DAYS) {
                return Err(Invalid(format!("retention.{name}: a whole number of days from 1 to {}", Self::MAX_DAYS)));
            }
        }
        Ok(())
    }

    /// When a conversation last active at `activity` expires (to the whole second).
    pub fn conversation_expiry(&self, activity: Timestamp) -> Option<Timestamp> {
        self.conversation_days.map(|days| expiry(activity, days))
    }

    /// When a file uploaded at `created` expires (to the whole second).
    pub fn file_expiry(&self, created: Timestamp) -> Option<Timestamp> {
        self.files_days.map(|days| expiry(created, days))
    }
}

fn expiry(from: Timestamp, days: u32) -> Timestamp {
    let at = from.micros().saturating_add(i64::from(days) * DAY_MICROS);
    // Whole seconds, as DynamoDB's TTL keeps them (rounded up: never earlier than the period).
    Timestamp::from_micros(at.div_euclid(1_000_000).saturating_add(i64::from(at.rem_euclid(1_000_000) > 0)) * 1_000_000)
}

/// Whether an object with this expiry has expired at `now`.
pub fn expired(expires_at: Option<Timestamp>, now: Timestamp) -> bool {
    expires_at.is_some_and(|at| at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_whole_days_in_range_and_expiries_whole_seconds() {
        assert!(Retention { conversation_days: Some(0), files_days: None }.validate().is_err());
        assert!(Retention { conversation_days: None, files_days: Some(Retention::MAX_DAYS + 1) }.validate().is_err());
        let retention = Retention { conversation_days: Some(30), files_days: None };
        assert!(retention.validate().is_ok());
        let at = Timestamp::from_micros(1_000_000_123_456);
        let expiry = retention.conversation_expiry(at).unwrap();
        assert_eq!(expiry.micros() % 1_000_000, 0);
        assert!(
            expiry.micros() >= at.micros() + 30 * DAY_MICROS
                && expiry.micros() < at.micros() + 30 * DAY_MICROS + 1_000_000
        );
        assert_eq!(retention.file_expiry(at), None);
        assert!(!expired(None, Timestamp::from_micros(i64::MAX)));
        assert!(expired(Some(expiry), expiry) && !expired(Some(expiry), Timestamp::from_micros(expiry.micros() - 1)));
    }
}
