//! The real clock and id generator.

use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use crate::domain::Timestamp;
use crate::ports::{Clock, IdGenerator};

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let micros = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
        Timestamp::from_micros(micros)
    }
}

/// UUIDv7: time-ordered, so ids created later sort later (useful as a storage key).
#[derive(Debug, Default, Clone, Copy)]
pub struct TimeOrderedIds;

impl IdGenerator for TimeOrderedIds {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}
