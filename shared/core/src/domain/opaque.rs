//! JSON that the service stores and hands back but never looks inside.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A JSON document kept as its text (a message's metadata): reading a stored record copies
/// the text instead of building a tree of maps and strings that nothing reads, and writing
/// it back or serving it copies the text again. Two are equal when they hold the same JSON
/// value, however it is spelled.
///
/// Text read back from a store ([`OpaqueJson::from_stored`]) is checked where it is used, not
/// where it is read: a page of history reads every message's metadata and uses none of it.
/// Serialised, text that is not JSON (a store edited by hand) becomes `null`, and the fault
/// is logged; parsed, it is `null` too.
#[derive(Clone)]
pub struct OpaqueJson(Box<str>);

impl OpaqueJson {
    /// The JSON of `value` (`null` should it not serialise, which maps with string keys and
    /// plain data never fail to do; the failure is logged).
    pub fn of(value: &impl Serialize) -> Self {
        match serde_json::to_string(value) {
            Ok(text) => Self(text.into()),
            Err(error) => {
                tracing::error!(%error, "a value could not be turned into JSON");
                Self::null()
            }
        }
    }

    /// The text a store holds, as it holds it (see the type's documentation).
    pub fn from_stored(text: &str) -> Self {
        Self(text.into())
    }

    /// `{}`.
    pub fn empty_object() -> Self {
        Self("{}".into())
    }

    /// `null`.
    pub fn null() -> Self {
        Self("null".into())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The document as a tree (for a caller that does look inside).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.as_str()).unwrap_or(serde_json::Value::Null)
    }
}

impl Serialize for OpaqueJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match RawValue::from_string(self.0.to_string()) {
            Ok(raw) => raw.serialize(serializer),
            Err(error) => {
                tracing::error!(%error, "stored JSON is not JSON; sent as null");
                serializer.serialize_unit()
            }
        }
    }
}

impl<'de> Deserialize<'de> for OpaqueJson {
    /// Only JSON is kept: the document is checked as it is read.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Self(raw.get().into()))
    }
}

impl PartialEq for OpaqueJson {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() || self.to_value() == other.to_value()
    }
}

impl fmt::Debug for OpaqueJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_kept_as_written_and_compared_as_values() {
        let metadata = OpaqueJson::of(&json!({"usage": {"prompt_tokens": 3}}));
        assert_eq!(metadata.as_str(), r#"{"usage":{"prompt_tokens":3}}"#);
        let read: OpaqueJson = serde_json::from_str(r#"{ "usage": { "prompt_tokens": 3 } }"#).unwrap();
        assert_eq!(read, metadata, "the same value, spelled differently");
        assert_ne!(read, OpaqueJson::empty_object());
        assert_eq!(serde_json::to_string(&read).unwrap(), r#"{ "usage": { "prompt_tokens": 3 } }"#, "served as stored");
        assert_eq!(read.to_value(), json!({"usage": {"prompt_tokens": 3}}));
        assert!(serde_json::from_str::<OpaqueJson>("{").is_err(), "only JSON is kept");
        assert_eq!(OpaqueJson::null().to_value(), serde_json::Value::Null);
    }

    #[test]
    fn stored_text_is_checked_where_it_is_used() {
        let stored = OpaqueJson::from_stored(r#"{"usage": {"latency": 0.5}}"#);
        assert_eq!(serde_json::to_string(&stored).unwrap(), r#"{"usage": {"latency": 0.5}}"#);
        let damaged = OpaqueJson::from_stored("{\"usage\": ");
        assert_eq!(serde_json::to_string(&damaged).unwrap(), "null", "never invalid JSON out");
        assert_eq!(damaged.to_value(), serde_json::Value::Null);
    }
}
