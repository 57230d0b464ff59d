//! An app's usage over time (`GET /v1/app/stats`, a Colloquy extension): counters per hour
//! (UTC) kept by the writes themselves — a new conversation, a new message, a stored answer, an
//! end user's rating — never counted at read time. A day's counts are the sums of its hours,
//! except its active end users, which the stores count per day as well (a user active in two
//! hours of a day is one user of that day).
//!
//! What lands in a bucket: a conversation in the hour it was created; a message, its answer's
//! latency and tokens, and its end user's like or dislike in the hour the message was created
//! (so a bucket's likes are the ratings its messages have now, and a changed rating moves
//! between counts of the same bucket). Operators' feedback is not counted: these are the end
//! users' ratings. Deleting a conversation does not lower the counts of what happened.

use super::{Invalid, Message, Rating, Timestamp};

const MICROS: i64 = 1_000_000;
pub const HOUR_SECONDS: i64 = 3_600;
pub const DAY_SECONDS: i64 = 86_400;

/// The size of a stats bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "hour" => Ok(Self::Hour),
            "day" => Ok(Self::Day),
            other => Err(Invalid(format!("granularity: expected hour or day, got '{other}'"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            Self::Hour => HOUR_SECONDS,
            Self::Day => DAY_SECONDS,
        }
    }

    /// The most buckets one request may ask for: 31 days of hours, 366 days.
    pub fn max_buckets(self) -> i64 {
        match self {
            Self::Hour => 31 * 24,
            Self::Day => 366,
        }
    }

    /// The start (Unix seconds) of the bucket `at` falls in.
    pub fn bucket_of(self, at: Timestamp) -> i64 {
        (at.micros().div_euclid(MICROS)).div_euclid(self.seconds()) * self.seconds()
    }

    /// The letter that marks this granularity's counters in a store's keys.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Hour => "H",
            Self::Day => "D",
        }
    }
}

/// The buckets a stats request covers: `[from, until)` in Unix seconds, aligned to the
/// granularity, at most [`Granularity::max_buckets`] of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsRange {
    pub granularity: Granularity,
    pub from: i64,
    pub until: i64,
}

impl StatsRange {
    /// From a request's bounds: `start` rounded down and `end` up to whole buckets; without
    /// `end`, up to the bucket of `now`; without `start`, the 7 days (hour: 24 hours) before `end`.
    pub fn new(
        granularity: Granularity,
        start: Option<Timestamp>,
        end: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Self, Invalid> {
        let size = granularity.seconds();
        let until = match end {
            Some(end) => {
                let bucket = granularity.bucket_of(end);
                if end.micros() > bucket * MICROS { bucket + size } else { bucket }
            }
            None => granularity.bucket_of(now) + size,
        };
        let from = match start {
            Some(start) => granularity.bucket_of(start),
            None => until - if granularity == Granularity::Hour { 24 * HOUR_SECONDS } else { 7 * DAY_SECONDS },
        };
        if from >= until {
            return Err(Invalid("start: must be before end".into()));
        }
        if (until - from) / size > granularity.max_buckets() {
            return Err(Invalid(format!(
                "end: at most {} buckets of a {} per request",
                granularity.max_buckets(),
                granularity.as_str()
            )));
        }
        Ok(Self { granularity, from, until })
    }

    /// The start of every bucket, in order.
    pub fn buckets(&self) -> impl Iterator<Item = i64> + use<> {
        let size = self.granularity.seconds();
        (self.from..self.until).step_by(size as usize)
    }
}

/// Counters of one bucket, or what one write adds to them (a rating changed from like to
/// dislike adds -1 like and +1 dislike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    pub messages: i64,
    pub conversations: i64,
    /// End users who sent a message in the bucket.
    pub end_users: i64,
    pub likes: i64,
    pub dislikes: i64,
    /// Messages whose answer is stored (with its latency).
    pub answers: i64,
    pub latency_ms: i64,
    pub tokens: i64,
}

impl Tally {
    /// The names the stores keep the counters under, in the order of [`Tally::values`].
    pub const FIELDS: [&'static str; 8] =
        ["messages", "conversations", "end_users", "likes", "dislikes", "answers", "latency_ms", "tokens"];

    pub fn values(&self) -> [i64; 8] {
        [
            self.messages,
            self.conversations,
            self.end_users,
            self.likes,
            self.dislikes,
            self.answers,
            self.latency_ms,
            self.tokens,
        ]
    }

    /// A tally from values in the order of [`Tally::FIELDS`].
    pub fn from_values(v: [i64; 8]) -> Self {
        let [messages, conversations, end_users, likes, dislikes, answers, latency_ms, tokens] = v;
        Self { messages, conversations, end_users, likes, dislikes, answers, latency_ms, tokens }
    }

    /// A tally read counter by counter ([`Tally::FIELDS`], in order) from a store's row or item.
    pub fn read<E>(mut counter: impl FnMut(&'static str) -> Result<i64, E>) -> Result<Self, E> {
        let mut values = [0; 8];
        for (value, field) in values.iter_mut().zip(Self::FIELDS) {
            *value = counter(field)?;
        }
        Ok(Self::from_values(values))
    }

    pub fn conversation() -> Self {
        Self { conversations: 1, ..Self::default() }
    }

    pub fn message() -> Self {
        Self { messages: 1, ..Self::default() }
    }

    pub fn end_user() -> Self {
        Self { end_users: 1, ..Self::default() }
    }

    /// What storing `message`'s answer adds: its latency and tokens from the usage in its
    /// metadata (`None` for a message without usage, such as one still generating).
    pub fn answer(message: &Message) -> Option<Self> {
        if message.task_id.is_some() {
            return None;
        }
        let metadata = message.metadata.to_value();
        let usage = metadata.get("usage")?;
        let latency = usage.get("latency").and_then(serde_json::Value::as_f64)?;
        let tokens = usage.get("total_tokens").and_then(serde_json::Value::as_i64).unwrap_or(0);
        Some(Self { answers: 1, latency_ms: (latency * 1000.0).round() as i64, tokens, ..Self::default() })
    }

    /// What an end user's rating changing from `before` to `after` adds.
    pub fn rating(before: Option<Rating>, after: Option<Rating>) -> Self {
        let count = |rating: Option<Rating>| match rating {
            Some(Rating::Like) => (1, 0),
            Some(Rating::Dislike) => (0, 1),
            None => (0, 0),
        };
        let (likes_before, dislikes_before) = count(before);
        let (likes, dislikes) = count(after);
        Self { likes: likes - likes_before, dislikes: dislikes - dislikes_before, ..Self::default() }
    }

    pub fn add(&mut self, other: &Tally) {
        let mut sum = self.values();
        for (total, value) in sum.iter_mut().zip(other.values()) {
            *total += value;
        }
        *self = Self::from_values(sum);
    }

    pub fn is_empty(&self) -> bool {
        self.values().iter().all(|v| *v == 0)
    }

    /// The average answer latency in seconds (`None` without answers).
    pub fn average_latency(&self) -> Option<f64> {
        (self.answers > 0).then(|| self.latency_ms as f64 / self.answers as f64 / 1000.0)
    }
}

/// One bucket of `GET /v1/app/stats`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsBucket {
    /// Unix seconds.
    pub start: i64,
    pub tally: Tally,
}

/// The buckets of `range` from the stores' counters: every hour's (`hours`, keyed by start)
/// and, for days, every day's active end users (`days`); buckets without counters are zero.
pub fn stats_buckets(range: &StatsRange, hours: &[(i64, Tally)], days: &[(i64, Tally)]) -> Vec<StatsBucket> {
    let size = range.granularity.seconds();
    let mut buckets: Vec<StatsBucket> =
        range.buckets().map(|start| StatsBucket { start, tally: Tally::default() }).collect();
    let index = |start: i64| -> Option<usize> {
        (start >= range.from && start < range.until).then(|| ((start - range.from) / size) as usize)
    };
    for (start, tally) in hours {
        if let Some(i) = index(range.granularity.bucket_of(Timestamp::from_micros(start * MICROS))) {
            buckets[i].tally.add(tally);
        }
    }
    if range.granularity == Granularity::Day {
        // A day's end users are its own count, not the sum of its hours'.
        for bucket in &mut buckets {
            bucket.tally.end_users = 0;
        }
        for (start, tally) in days {
            if let Some(i) = index(*start) {
                buckets[i].tally.end_users += tally.end_users;
            }
        }
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_micros(seconds * MICROS)
    }

    #[test]
    fn ranges_round_out_to_whole_buckets_and_are_bounded() {
        let day = Granularity::Day;
        let r = StatsRange::new(day, Some(at(DAY_SECONDS + 5)), Some(at(3 * DAY_SECONDS + 1)), at(0)).unwrap();
        assert_eq!((r.from, r.until), (DAY_SECONDS, 4 * DAY_SECONDS));
        let exact = StatsRange::new(day, Some(at(DAY_SECONDS)), Some(at(2 * DAY_SECONDS)), at(0)).unwrap();
        assert_eq!(exact.buckets().collect::<Vec<_>>(), vec![DAY_SECONDS]);
        let default = StatsRange::new(Granularity::Hour, None, None, at(10 * HOUR_SECONDS + 1)).unwrap();
        assert_eq!(default.buckets().count(), 24);
        assert_eq!(default.until, 11 * HOUR_SECONDS);
        assert!(StatsRange::new(day, Some(at(5 * DAY_SECONDS)), Some(at(DAY_SECONDS)), at(0)).is_err());
        assert!(StatsRange::new(day, Some(at(0)), Some(at(367 * DAY_SECONDS)), at(0)).is_err());
        assert!(StatsRange::new(day, Some(at(0)), Some(at(366 * DAY_SECONDS)), at(0)).is_ok());
        assert!(Granularity::parse("week").is_err());
    }

    #[test]
    fn days_sum_their_hours_but_count_their_own_end_users() {
        let range = StatsRange::new(Granularity::Day, Some(at(0)), Some(at(2 * DAY_SECONDS)), at(0)).unwrap();
        let hour = |messages, end_users| Tally { messages, end_users, ..Tally::default() };
        let hours = [(0, hour(2, 1)), (HOUR_SECONDS, hour(3, 1)), (DAY_SECONDS + HOUR_SECONDS, hour(1, 1))];
        let days = [(0, Tally::end_user())];
        let buckets = stats_buckets(&range, &hours, &days);
        assert_eq!(buckets.len(), 2);
        assert_eq!((buckets[0].tally.messages, buckets[0].tally.end_users), (5, 1));
        assert_eq!((buckets[1].tally.messages, buckets[1].tally.end_users), (1, 0), "no day counter: none counted");
    }

    #[test]
    fn rating_changes_move_counts() {
        assert_eq!(Tally::rating(None, Some(Rating::Like)).likes, 1);
        let flip = Tally::rating(Some(Rating::Like), Some(Rating::Dislike));
        assert_eq!((flip.likes, flip.dislikes), (-1, 1));
        assert!(Tally::rating(Some(Rating::Like), Some(Rating::Like)).is_empty());
        let mut sum = Tally::message();
        sum.add(&Tally::rating(Some(Rating::Dislike), None));
        assert_eq!((sum.messages, sum.dislikes), (1, -1));
        assert_eq!(Tally::from_values(sum.values()), sum);
    }
}
