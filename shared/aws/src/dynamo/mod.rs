//! The production store: one DynamoDB table implementing every storage port.
//!
//! Every key string and `AttributeValue` stays in this folder. `keys` lays the table out,
//! `codec` reads and writes attributes, `items` turns items into domain values and back,
//! `requests`, `transact` and `batch` send them, and one file per port implements that port. The design (keys, indexes, access
//! patterns, request counts, consistency) is documented in `docs/data-model.md`.
//!
//! Item attributes are never defaulted when read: a missing or mistyped one is
//! `StoreError::Corrupt` (see `codec::Read`). Lists in responses (the items of a query, what a
//! batch left unprocessed) are optional in the SDK's model, and there absent means empty.

mod annotations;
mod apps;
mod audit;
mod batch;
mod codec;
mod conversations;
mod end_users;
mod erasures;
mod expiry;
mod exports;
mod feedback;
mod files;
mod idempotency;
mod inventory;
mod items;
mod keys;
mod message_removal;
mod messages;
mod purge;
mod rate_limits;
mod requests;
mod stats;
mod table;
mod tasks;
#[cfg(any(test, feature = "test-util"))]
mod test_util;
mod transact;
mod variables;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

pub use erasures::{ERASURE_PREFIX, erasure_from};
pub use exports::{EXPORT_PREFIX, export_from};
pub use purge::{ChangedItem, PurgeReport};
pub use table::{APP_INDEX, INDEXES, TTL_ATTRIBUTE};

/// One item of the table, as the SDK reads and writes it.
type Item = HashMap<String, AttributeValue>;

/// The DynamoDB-backed store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Which buckets end users were last marked active in (`stats`).
    marks: std::sync::Arc<stats::Marks>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), marks: Default::default() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}
