use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::Invalid;

macro_rules! uuid_id {
    ($(#[$doc:meta] $name:ident),+ $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an id produced by the id generator.
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = Invalid;

            /// Accepts every form Python's `uuid.UUID()` accepts (upper case, no hyphens,
            /// braces, `urn:uuid:`) and canonicalises to lower-case hyphenated.
            fn from_str(raw: &str) -> Result<Self, Invalid> {
                Uuid::parse_str(raw.trim())
                    .map(Self)
                    .map_err(|_| Invalid(format!("'{raw}' is not a valid UUID")))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    )+};
}

uuid_id! {
    /// An app: the unit an API key belongs to.
    AppId,
    /// An end user of one app (the `user` string, resolved per app).
    EndUserId,
    /// A conversation.
    ConversationId,
    /// A message (one query and its answer).
    MessageId,
    /// A like/dislike feedback on a message.
    FeedbackId,
    /// A conversation variable.
    VariableId,
    /// A question-and-answer annotation.
    AnnotationId,
    /// An annotation-reply enable/disable job.
    JobId,
    /// One chat generation, which its caller may stop.
    TaskId,
    /// An uploaded file.
    FileId,
    /// An entry of an app's audit log.
    AuditId,
    /// An export of an app's messages.
    ExportId,
    /// An erasure of one end user's data.
    ErasureId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonicalised() {
        let canonical = "3f2b9c1e-5d6a-4b7c-8d9e-0a1b2c3d4e5f";
        for raw in [
            canonical,
            "3F2B9C1E-5D6A-4B7C-8D9E-0A1B2C3D4E5F",
            "3f2b9c1e5d6a4b7c8d9e0a1b2c3d4e5f",
            "{3f2b9c1e-5d6a-4b7c-8d9e-0a1b2c3d4e5f}",
        ] {
            let id: ConversationId = raw.parse().unwrap();
            assert_eq!(id.to_string(), canonical);
        }
    }

    #[test]
    fn non_uuids_are_rejected() {
        for raw in ["", "abc", "3f2b9c1e-5d6a-4b7c-8d9e", "../etc/passwd"] {
            assert!(raw.parse::<MessageId>().is_err(), "{raw}");
        }
    }
}
