//! Attribute values: how a value becomes an attribute, and the typed, strict reads of an
//! item's attributes (`Read`).
//!
//! Reading is strict: a missing or mistyped attribute is `StoreError::Corrupt`, naming the
//! kind of item and the attribute. Only attributes that are optional by design (the reader
//! says why) may be absent.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use colloquy_core::domain::{Invalid, Owner, Timestamp};
use colloquy_core::ports::{StoreError, StoreResult};

use super::Item;

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn json<T: Serialize>(value: &T) -> AttributeValue {
    s(serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
}

/// An expiry time (TTL, in seconds) `after` past `at`.
pub(super) fn ttl(at: Timestamp, after: Duration) -> AttributeValue {
    n(at.unix_seconds() + after.as_secs() as i64)
}

/// An embedding as a binary attribute: its f32 values, little-endian.
pub(super) fn embedding(vector: &[f32]) -> AttributeValue {
    AttributeValue::B(vector.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>().into())
}

/// Typed reads of one item's attributes.
pub(super) struct Read<'a> {
    kind: &'static str,
    item: &'a Item,
}

impl<'a> Read<'a> {
    /// Reads `item`, an item of the given kind (named in errors).
    pub(super) fn new(kind: &'static str, item: &'a Item) -> Self {
        Self { kind, item }
    }

    /// The error for a corrupt attribute.
    fn corrupt(&self, name: &str, problem: impl Display) -> StoreError {
        StoreError::Corrupt(format!("{} item, attribute {name}: {problem}", self.kind))
    }

    fn present(&self, name: &str) -> StoreResult<&'a AttributeValue> {
        self.item.get(name).ok_or_else(|| self.corrupt(name, "missing"))
    }

    /// A string attribute that may be absent (the caller says why it may).
    pub(super) fn opt_s(&self, name: &str) -> StoreResult<Option<String>> {
        match self.item.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(value)) => Ok(Some(value.clone())),
            Some(_) => Err(self.corrupt(name, "not a string")),
        }
    }

    pub(super) fn s(&self, name: &str) -> StoreResult<String> {
        self.opt_s(name)?.ok_or_else(|| self.corrupt(name, "missing"))
    }

    pub(super) fn n(&self, name: &str) -> StoreResult<i64> {
        match self.present(name)? {
            AttributeValue::N(raw) => raw.parse().map_err(|_| self.corrupt(name, format!("'{raw}' is not an integer"))),
            _ => Err(self.corrupt(name, "not a number")),
        }
    }

    /// A number that may be absent (the caller says why it may).
    pub(super) fn opt_n(&self, name: &str) -> StoreResult<Option<i64>> {
        if self.item.contains_key(name) { self.n(name).map(Some) } else { Ok(None) }
    }

    /// A map attribute (an item within the item) that may be absent (the caller says why).
    pub(super) fn opt_map(&self, name: &str) -> StoreResult<Option<&'a Item>> {
        match self.item.get(name) {
            None => Ok(None),
            Some(AttributeValue::M(map)) => Ok(Some(map)),
            Some(_) => Err(self.corrupt(name, "not a map")),
        }
    }

    /// A number that cannot be negative (a size, a count).
    pub(super) fn count(&self, name: &str) -> StoreResult<u64> {
        let value = self.n(name)?;
        u64::try_from(value).map_err(|_| self.corrupt(name, format!("{value} is negative")))
    }

    pub(super) fn time(&self, name: &str) -> StoreResult<Timestamp> {
        self.n(name).map(Timestamp::from_micros)
    }

    /// A timestamp that may be absent (the caller says why it may).
    pub(super) fn opt_time(&self, name: &str) -> StoreResult<Option<Timestamp>> {
        Ok(self.opt_n(name)?.map(Timestamp::from_micros))
    }

    pub(super) fn json<T: DeserializeOwned>(&self, name: &str) -> StoreResult<T> {
        serde_json::from_str(&self.s(name)?).map_err(|e| self.corrupt(name, e))
    }

    /// A string attribute read with `parse`.
    pub(super) fn parse_with<T>(&self, name: &str, parse: impl FnOnce(&str) -> Result<T, Invalid>) -> StoreResult<T> {
        parse(&self.s(name)?).map_err(|e| self.corrupt(name, e.0))
    }

    pub(super) fn parse<T: FromStr<Err = Invalid>>(&self, name: &str) -> StoreResult<T> {
        self.parse_with(name, str::parse)
    }

    /// A parsed string attribute that may be absent (the caller says why it may).
    pub(super) fn opt_parse<T: FromStr<Err = Invalid>>(&self, name: &str) -> StoreResult<Option<T>> {
        let parse = |raw: String| raw.parse().map_err(|e: Invalid| self.corrupt(name, e.0));
        self.opt_s(name)?.map(parse).transpose()
    }

    pub(super) fn bool(&self, name: &str) -> StoreResult<bool> {
        match self.present(name)? {
            AttributeValue::Bool(value) => Ok(*value),
            _ => Err(self.corrupt(name, "not a boolean")),
        }
    }

    /// A marker attribute, written only when it is true (such as a tombstone's `deleted`).
    pub(super) fn flag(&self, name: &str) -> StoreResult<bool> {
        if self.item.contains_key(name) { self.bool(name) } else { Ok(false) }
    }

    /// An embedding (see [`embedding`]) that may be absent (the caller says why it may).
    pub(super) fn opt_embedding(&self, name: &str) -> StoreResult<Option<Vec<f32>>> {
        match self.item.get(name) {
            None => Ok(None),
            Some(AttributeValue::B(bytes)) if bytes.as_ref().len() % 4 == 0 => {
                Ok(Some(bytes.as_ref().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
            }
            Some(_) => Err(self.corrupt(name, "not a sequence of 32-bit floats")),
        }
    }

    /// The `app_id` and `end_user_id` attributes.
    pub(super) fn owner(&self) -> StoreResult<Owner> {
        Ok(Owner { app_id: self.parse("app_id")?, end_user_id: self.parse("end_user_id")? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corrupt_message(result: StoreResult<impl std::fmt::Debug>) -> String {
        match result {
            Err(StoreError::Corrupt(message)) => message,
            other => panic!("expected corrupt data, got {other:?}"),
        }
    }

    #[test]
    fn embeddings_round_trip() {
        let vector = vec![0.5_f32, -1.25, 3.0];
        let item = Item::from([("e".to_owned(), embedding(&vector))]);
        assert_eq!(Read::new("annotation", &item).opt_embedding("e").unwrap(), Some(vector));
        assert_eq!(Read::new("annotation", &item).opt_embedding("absent").unwrap(), None);
    }

    #[test]
    fn a_missing_or_mistyped_attribute_is_corrupt_and_named() {
        let item = Item::from([
            ("name".to_owned(), n(3)),
            ("size".to_owned(), n(-1)),
            ("at".to_owned(), s("soon")),
            ("deleted".to_owned(), s("yes")),
            ("e".to_owned(), AttributeValue::B(vec![0_u8; 5].into())),
        ]);
        let r = Read::new("file", &item);
        assert_eq!(corrupt_message(r.s("id")), "file item, attribute id: missing");
        assert_eq!(corrupt_message(r.s("name")), "file item, attribute name: not a string");
        assert_eq!(corrupt_message(r.opt_s("name")), "file item, attribute name: not a string");
        assert_eq!(corrupt_message(r.count("size")), "file item, attribute size: -1 is negative");
        assert_eq!(corrupt_message(r.time("at")), "file item, attribute at: not a number");
        assert_eq!(corrupt_message(r.flag("deleted")), "file item, attribute deleted: not a boolean");
        assert!(corrupt_message(r.opt_embedding("e")).starts_with("file item, attribute e: "));
        assert!(corrupt_message(r.owner()).starts_with("file item, attribute app_id: "));
    }

    #[test]
    fn only_optional_attributes_may_be_absent() {
        let item = Item::from([("flagged".to_owned(), AttributeValue::Bool(true))]);
        let r = Read::new("conversation", &item);
        assert_eq!(r.opt_s("name").unwrap(), None);
        assert_eq!(r.opt_parse::<colloquy_core::domain::ConversationId>("id").unwrap(), None);
        assert!(!r.flag("deleted").unwrap());
        assert!(r.flag("flagged").unwrap());
        assert!(r.bool("stop").is_err());
    }
}
