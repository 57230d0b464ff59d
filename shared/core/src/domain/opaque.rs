//! JSON that the service stores and hands back but never looks inside.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A JSON document kept as its text (a message's metadata): reading a stored record copies
/// the text instead of building a tree of maps and strings that nothing reads, and writing
/// it back or serving it copies the text again. Two are equal when they hold the same JSON
/// value, however it is spelled.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpaqueJson(Box<RawValue>);

impl OpaqueJson {
    /// The JSON of `value` (`null` should it not serialise, which maps with string keys and
    /// plain data never fail to do; the failure is logged).
    pub fn of(value: &impl Serialize) -> Self {
        match serde_json::value::to_raw_value(value) {
            Ok(raw) => Self(raw),
            Err(error) => {
                tracing::error!(%error, "a value could not be turned into JSON");
                Self::null()
            }
        }
    }

    /// `{}`.
    pub fn empty_object() -> Self {
        Self::from_static("{}")
    }

    /// `null`.
    pub fn null() -> Self {
        Self::from_static("null")
    }

    fn from_static(json: &'static str) -> Self {
        Self(RawValue::from_string(json.to_owned()).expect("a JSON literal"))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The document as a tree (for a caller that does look inside).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.as_str()).unwrap_or(serde_json::Value::Null)
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
}
