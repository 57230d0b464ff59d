use super::{AppId, EndUserId, Invalid, Timestamp};

/// The caller-chosen `user` string that identifies an end user within one app.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserRef(String);

impl UserRef {
    /// Dify's shared identity for callers that send no `user`.
    pub const DEFAULT: &'static str = "DEFAULT-USER";
    /// Dify stores the session id in a `varchar(255)`.
    pub const MAX_CHARS: usize = 255;

    /// Exact and case-sensitive, as in Dify: no trimming, only emptiness and length are checked.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() {
            return Err(Invalid("Arg user must be provided.".into()));
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(Invalid(format!("user: must be at most {} characters", Self::MAX_CHARS)));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn default_user() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An end user: one `user` string within one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndUser {
    pub id: EndUserId,
    pub app_id: AppId,
    pub session_id: UserRef,
    pub created_at: Timestamp,
}

impl EndUser {
    pub fn owner(&self) -> Owner {
        Owner { app_id: self.app_id, end_user_id: self.id }
    }
}

impl EndUserId {
    /// The id of `user` in `app`: a UUIDv5 of the `user` string in the app's namespace, so a
    /// read route knows whose data to read without looking the end user up. End users first
    /// seen before ids were derived keep the random id they were given (the store has it).
    pub fn derived(app: AppId, user: &UserRef) -> Self {
        Self::from_uuid(uuid::Uuid::new_v5(&app.as_uuid(), user.as_str().as_bytes()))
    }
}

impl Owner {
    /// The owner of `user`'s data in `app`, by the derived id (see [`EndUserId::derived`]).
    pub fn derived(app: AppId, user: &UserRef) -> Self {
        Self { app_id: app, end_user_id: EndUserId::derived(app, user) }
    }
}

/// Whose objects a request may see: every lookup is scoped by both, so another user's or
/// another app's object is indistinguishable from a missing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    pub app_id: AppId,
    pub end_user_id: EndUserId,
}

impl Owner {
    /// The owner of each of these end users of `app`.
    pub fn of_each(app_id: AppId, end_users: &[EndUserId]) -> Vec<Owner> {
        end_users.iter().map(|&end_user_id| Owner { app_id, end_user_id }).collect()
    }

    /// The rate limiter's key for this end user's feedback.
    pub fn feedback_rate_key(self) -> String {
        format!("feedback:{}:{}", self.app_id, self.end_user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_refs() {
        assert_eq!(UserRef::parse("abc-123").unwrap().as_str(), "abc-123");
        assert_eq!(UserRef::parse(" Alice ").unwrap().as_str(), " Alice ");
        assert!(UserRef::parse("").is_err());
        assert!(UserRef::parse(&"x".repeat(256)).is_err());
        assert!(UserRef::parse(&"é".repeat(255)).is_ok());
    }

    #[test]
    fn derived_ids_depend_on_app_and_exact_user() {
        let app = AppId::from_uuid(uuid::Uuid::from_u128(1));
        let other = AppId::from_uuid(uuid::Uuid::from_u128(2));
        let alice = UserRef::parse("alice").unwrap();
        let id = EndUserId::derived(app, &alice);
        assert_eq!(id, EndUserId::derived(app, &UserRef::parse("alice").unwrap()), "stable");
        assert_eq!(id.as_uuid().get_version_num(), 5);
        assert_ne!(id, EndUserId::derived(other, &alice), "scoped by app");
        assert_ne!(id, EndUserId::derived(app, &UserRef::parse("Alice").unwrap()), "case-sensitive");
        assert_eq!(Owner::derived(app, &alice), Owner { app_id: app, end_user_id: id });
    }
}
