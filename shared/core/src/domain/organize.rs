//! How an end user organises conversations (Colloquy extensions): metadata pairs, pinned,
//! archived, and the lists they put a conversation in.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Invalid;

/// Up to 16 string pairs on a conversation: keys of 1–64 characters, values of up to 512.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    pub const MAX_PAIRS: usize = 16;
    pub const MAX_KEY_CHARS: usize = 64;
    pub const MAX_VALUE_CHARS: usize = 512;

    /// A JSON object of strings (`metadata` in a request body); `null` is empty.
    pub fn from_json(raw: &Value) -> Result<Self, Invalid> {
        let object = match raw {
            Value::Null => return Ok(Self::default()),
            Value::Object(object) => object,
            _ => return Err(Invalid::new("metadata: must be an object of string values")),
        };
        let mut pairs = BTreeMap::new();
        for (key, value) in object {
            let Value::String(value) = value else {
                return Err(Invalid(format!("metadata: the value of '{key}' must be a string")));
            };
            pairs.insert(key.clone(), value.clone());
        }
        Self::new(pairs)
    }

    pub fn new(pairs: BTreeMap<String, String>) -> Result<Self, Invalid> {
        if pairs.len() > Self::MAX_PAIRS {
            return Err(Invalid(format!("metadata: at most {} pairs", Self::MAX_PAIRS)));
        }
        for (key, value) in &pairs {
            check_key(key)?;
            check_value(key, value)?;
        }
        Ok(Self(pairs))
    }

    /// Stored metadata (a JSON object of strings), checked again.
    pub fn parse_stored(text: &str) -> Result<Self, Invalid> {
        let value: Value = serde_json::from_str(text).map_err(|e| Invalid(format!("metadata: {e}")))?;
        Self::from_json(&value)
    }

    /// As stored: a JSON object of strings.
    pub fn to_stored(&self) -> String {
        Value::Object(self.to_json()).to_string()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn to_json(&self) -> Map<String, Value> {
        self.0.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
    }
}

fn check_key(key: &str) -> Result<(), Invalid> {
    let chars = key.chars().count();
    if chars == 0 || chars > Metadata::MAX_KEY_CHARS {
        return Err(Invalid(format!("metadata: keys must have 1 to {} characters", Metadata::MAX_KEY_CHARS)));
    }
    if key.chars().any(char::is_control) {
        return Err(Invalid::new("metadata: keys must not contain control characters"));
    }
    Ok(())
}

fn check_value(key: &str, value: &str) -> Result<(), Invalid> {
    if value.chars().count() > Metadata::MAX_VALUE_CHARS {
        return Err(Invalid(format!(
            "metadata: the value of '{key}' must have at most {} characters",
            Metadata::MAX_VALUE_CHARS
        )));
    }
    Ok(())
}

/// What an end user set on a conversation beyond Dify's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationState {
    pub metadata: Metadata,
    pub pinned: bool,
    pub archived: bool,
}

impl ConversationState {
    /// The lists beyond its end user's main one (which holds the conversations not archived)
    /// that a conversation in this state is in: the archived list when archived, the pinned
    /// list and one list per metadata pair, each of its archived state.
    pub fn lists(&self) -> Vec<ConversationList> {
        let archived = self.archived;
        let mut lists = Vec::with_capacity(self.metadata.0.len() + 2);
        if archived {
            lists.push(ConversationList::Archived);
        }
        if self.pinned {
            lists.push(ConversationList::Pinned { archived });
        }
        for (key, value) in self.metadata.pairs() {
            lists.push(ConversationList::Metadata { archived, key: key.to_owned(), value: value.to_owned() });
        }
        lists
    }
}

/// One of an end user's conversation lists, which a store keeps in order (by update and by
/// creation) so that a page of it is one seek.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationList {
    /// The conversations not archived (Dify's list).
    Active,
    Archived,
    Pinned {
        archived: bool,
    },
    Metadata {
        archived: bool,
        key: String,
        value: String,
    },
}

impl ConversationList {
    /// A stable text naming the list (unique per list; a metadata key's length comes first, so
    /// no key and value pair reads as another).
    pub fn key(&self) -> String {
        let state = |archived: bool| if archived { "x" } else { "a" };
        match self {
            Self::Active => "active".into(),
            Self::Archived => "archived".into(),
            Self::Pinned { archived } => format!("{}#pinned", state(*archived)),
            Self::Metadata { archived, key, value } => {
                format!("{}#m#{}#{key}={value}", state(*archived), key.chars().count())
            }
        }
    }
}

/// The filters of `GET /conversations` beyond Dify's (`pinned`, `archived`, `metadata[key]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationQuery {
    pub pinned: Option<bool>,
    pub archived: bool,
    pub metadata: Vec<(String, String)>,
}

impl ConversationQuery {
    /// The filters from query parameters: `pinned=true|false`, `archived=true|false`,
    /// `metadata[key]=value` (each key once); other parameters are not its business.
    pub fn parse<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, Invalid> {
        let mut query = Self::default();
        for (name, value) in params {
            match name {
                // Empty counts as absent, as for every query parameter.
                "pinned" | "archived" if value.is_empty() => {}
                "pinned" => query.pinned = Some(boolean(name, value)?),
                "archived" => query.archived = boolean(name, value)?,
                _ => {
                    let Some(key) = name.strip_prefix("metadata[").and_then(|rest| rest.strip_suffix(']')) else {
                        continue;
                    };
                    check_key(key)?;
                    check_value(key, value)?;
                    if query.metadata.iter().any(|(k, _)| k == key) {
                        return Err(Invalid(format!("metadata[{key}]: given more than once")));
                    }
                    query.metadata.push((key.to_owned(), value.to_owned()));
                }
            }
        }
        if query.metadata.len() > Metadata::MAX_PAIRS {
            return Err(Invalid(format!("metadata: at most {} filters", Metadata::MAX_PAIRS)));
        }
        Ok(query)
    }

    /// The list a page is read from: a metadata pair's, else the pinned one's, else the
    /// archived or the main one. What that list does not decide is checked by [`Self::keeps`].
    pub fn list(&self) -> ConversationList {
        let archived = self.archived;
        if let Some((key, value)) = self.metadata.first() {
            return ConversationList::Metadata { archived, key: key.clone(), value: value.clone() };
        }
        match (self.pinned, archived) {
            (Some(true), _) => ConversationList::Pinned { archived },
            (_, true) => ConversationList::Archived,
            (_, false) => ConversationList::Active,
        }
    }

    /// Whether a conversation in `state`, read from [`Self::list`], matches every filter.
    pub fn keeps(&self, state: &ConversationState) -> bool {
        state.archived == self.archived
            && self.pinned.is_none_or(|pinned| state.pinned == pinned)
            && self.metadata.iter().all(|(key, value)| state.metadata.get(key) == Some(value.as_str()))
    }
}

/// `true`/`false` in any case (the Python SDK sends `True`), or `1`/`0`.
fn boolean(name: &str, raw: &str) -> Result<bool, Invalid> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Invalid(format!("{name}: must be true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_limits() {
        assert!(Metadata::from_json(&json!({"a": "b"})).is_ok());
        assert!(Metadata::from_json(&Value::Null).unwrap().is_empty());
        let many: Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(Metadata::from_json(&Value::Object(many)).is_err());
        assert!(Metadata::from_json(&json!({"k".repeat(65): "v"})).is_err());
        assert!(Metadata::from_json(&json!({"k".repeat(64): "v".repeat(512)})).is_ok());
        assert!(Metadata::from_json(&json!({"k": "v".repeat(513)})).is_err());
        assert!(Metadata::from_json(&json!({"": "v"})).is_err());
        assert!(Metadata::from_json(&json!({"k": 1})).is_err());
        assert!(Metadata::from_json(&json!(["k"])).is_err());
    }

    #[test]
    fn lists_of_a_state_and_the_list_a_query_reads() {
        let metadata = Metadata::from_json(&json!({"project": "x"})).unwrap();
        let state = ConversationState { metadata, pinned: true, archived: false };
        let keys: Vec<String> = state.lists().iter().map(ConversationList::key).collect();
        assert_eq!(keys, ["a#pinned", "a#m#7#project=x"]);
        let archived = ConversationState { archived: true, ..ConversationState::default() };
        assert_eq!(archived.lists(), [ConversationList::Archived]);

        let query = ConversationQuery::parse([("pinned", "true"), ("metadata[project]", "x"), ("user", "u")]).unwrap();
        assert_eq!(query.list().key(), "a#m#7#project=x");
        assert!(query.keeps(&state));
        assert!(!query.keeps(&ConversationState { pinned: false, ..state.clone() }));
        assert_eq!(ConversationQuery::parse([]).unwrap().list(), ConversationList::Active);
        assert_eq!(ConversationQuery::parse([("archived", "true")]).unwrap().list(), ConversationList::Archived);
        assert!(ConversationQuery::parse([("pinned", "yes")]).is_err());
        assert!(ConversationQuery::parse([("metadata[a]", "1"), ("metadata[a]", "2")]).is_err());
        assert!(ConversationQuery::parse([("metadata[]", "1")]).is_err());
    }
}
