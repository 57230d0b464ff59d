use std::fmt;

/// A point in time in microseconds since the Unix epoch (UTC).
///
/// Stored with microsecond precision so that ordering is exact; shown to clients as whole
/// seconds (Dify's `int(dt.timestamp())`) or, for app feedback, as a zone-less ISO string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Whole seconds, floored, as Dify's `TimestampField` renders them.
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Python's `datetime.isoformat()` of a naive UTC datetime: microseconds only when
    /// they are not zero (`2025-01-16T10:00:00` or `2025-01-16T10:00:00.123456`).
    pub fn iso_naive(self) -> String {
        let seconds = self.unix_seconds();
        let micros = self.0.rem_euclid(1_000_000);
        let Ok(at) = ::time::OffsetDateTime::from_unix_timestamp(seconds) else {
            return seconds.to_string();
        };
        let date = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
        if micros == 0 { date } else { format!("{date}.{micros:06}") }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.iso_naive())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_floored() {
        assert_eq!(Timestamp::from_micros(1_705_569_238_999_999).unix_seconds(), 1_705_569_238);
        assert_eq!(Timestamp::from_micros(-1).unix_seconds(), -1);
    }

    #[test]
    fn iso_matches_python_isoformat() {
        assert_eq!(Timestamp::from_micros(1_737_021_600_000_000).iso_naive(), "2025-01-16T10:00:00");
        assert_eq!(Timestamp::from_micros(1_737_021_600_123_456).iso_naive(), "2025-01-16T10:00:00.123456");
    }
}
