use super::{Invalid, Timestamp};

/// A page size with bounds checked on construction (`1..=max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    /// Conversations, messages and variables: 1..=100, default 20.
    pub const MAX: u32 = 100;
    /// `/app/feedbacks` accepts one more (Dify's `le=101`).
    pub const MAX_APP_FEEDBACKS: u32 = 101;
    pub const DEFAULT: Limit = Limit(20);

    /// Parses `raw` (absent means the default) and checks `1..=max`.
    pub fn parse(raw: Option<&str>, max: u32) -> Result<Self, Invalid> {
        let Some(raw) = raw else {
            return Ok(Self::DEFAULT);
        };
        let value: i64 =
            raw.trim().parse().map_err(|_| Invalid(format!("limit: Input should be a valid integer, got '{raw}'")))?;
        if value < 1 {
            return Err(Invalid("limit: Input should be greater than or equal to 1".into()));
        }
        if value > i64::from(max) {
            return Err(Invalid(format!("limit: Input should be less than or equal to {max}")));
        }
        Ok(Self(value as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// How many rows to fetch to learn `has_more` without a second query.
    pub fn probe(self) -> usize {
        self.0 as usize + 1
    }
}

/// A 1-based page number for offset pagination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageNumber(u32);

impl PageNumber {
    pub fn parse(raw: Option<&str>) -> Result<Self, Invalid> {
        let Some(raw) = raw else { return Ok(Self(1)) };
        match raw.trim().parse::<u32>() {
            Ok(page) if page >= 1 => Ok(Self(page)),
            Ok(_) => Err(Invalid("page: Input should be greater than or equal to 1".into())),
            Err(_) => Err(Invalid(format!("page: Input should be a valid integer, got '{raw}'"))),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// Rows to skip before this page.
    pub fn offset(self, limit: Limit) -> u64 {
        u64::from(self.0 - 1) * u64::from(limit.get())
    }
}

/// Which timestamp a conversation list is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    CreatedAt,
    UpdatedAt,
}

/// `sort_by` of `GET /conversations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationSort {
    pub field: SortField,
    pub descending: bool,
}

impl ConversationSort {
    pub const DEFAULT: Self = Self { field: SortField::UpdatedAt, descending: true };

    pub fn parse(raw: Option<&str>) -> Result<Self, Invalid> {
        let Some(raw) = raw else {
            return Ok(Self::DEFAULT);
        };
        let (descending, name) = match raw.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, raw),
        };
        let field = match name {
            "created_at" => SortField::CreatedAt,
            "updated_at" => SortField::UpdatedAt,
            _ => {
                return Err(Invalid(format!(
                    "sort_by: Input should be 'created_at', '-created_at', 'updated_at' or '-updated_at', got '{raw}'"
                )));
            }
        };
        Ok(Self { field, descending })
    }
}

/// A keyset position: the sort value of the last row seen plus its id as tie-breaker, so
/// rows with equal timestamps are neither skipped nor repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor<Id> {
    pub at: Timestamp,
    pub id: Id,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_bounds() {
        assert_eq!(Limit::parse(None, 100).unwrap().get(), 20);
        assert_eq!(Limit::parse(Some("1"), 100).unwrap().get(), 1);
        assert_eq!(Limit::parse(Some("100"), 100).unwrap().get(), 100);
        assert_eq!(Limit::parse(Some("101"), 101).unwrap().get(), 101);
        for bad in ["0", "-1", "101", "abc", "1.5", "99999999999999999999"] {
            assert!(Limit::parse(Some(bad), 100).is_err(), "{bad}");
        }
    }

    #[test]
    fn pages() {
        assert_eq!(PageNumber::parse(None).unwrap().get(), 1);
        assert_eq!(PageNumber::parse(Some("3")).unwrap().offset(Limit::DEFAULT), 40);
        assert!(PageNumber::parse(Some("0")).is_err());
        assert!(PageNumber::parse(Some("x")).is_err());
    }

    #[test]
    fn sort_orders() {
        assert_eq!(ConversationSort::parse(None).unwrap(), ConversationSort::DEFAULT);
        let asc = ConversationSort::parse(Some("created_at")).unwrap();
        assert_eq!((asc.field, asc.descending), (SortField::CreatedAt, false));
        let desc = ConversationSort::parse(Some("-updated_at")).unwrap();
        assert_eq!((desc.field, desc.descending), (SortField::UpdatedAt, true));
        for bad in ["name", "--created_at", "+created_at", "CREATED_AT"] {
            assert!(ConversationSort::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
