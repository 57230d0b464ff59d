//! Requests shared by every port: read, write and delete one item, read a whole partition,
//! the conditional writes that must tell their own retry from a conflict, and filtered Scans of
//! the whole table (for operators' commands, never a request path).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use colloquy_core::ports::{StoreError, StoreResult};

use super::codec::{Read, s};
use super::keys::key;
use super::{DynamoStore, Item};
use crate::aws_clients::StoreFailure;

/// The attribute naming the request that created an item (`put_new`) or a tombstone
/// (`delete_conversation`), so a retry of that request recognises its own earlier attempt.
pub(super) const WRITTEN_BY: &str = "written_by";

/// A failed request as a `StoreError`: `Unavailable` (503) when retrying later may succeed
/// (see `aws_clients`), `Failed` (500) otherwise.
pub(super) fn sdk_error<E: StoreFailure>(error: E) -> StoreError {
    error.into_store_error()
}

/// Whether a conditional write went through: false when its condition failed. Conditions
/// are checked again on every retry of a write, so a write whose condition its own first
/// attempt changes must tell its retry apart (see `put_new`, `delete_conversation`).
/// Transactions go through `transact`.
pub(super) fn condition_met<T, E, R>(result: Result<T, SdkError<E, R>>) -> StoreResult<bool>
where
    SdkError<E, R>: StoreFailure,
    E: ProvideErrorMetadata,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|e| e.code() == Some("ConditionalCheckFailedException")) => {
            Ok(false)
        }
        Err(e) => Err(sdk_error(e)),
    }
}

/// Whether `found`, the item a failed condition found, was written by `request`: then the
/// condition failed on a retry of that request, whose first attempt went through.
pub(super) fn written_by(kind: &'static str, found: Option<&Item>, request: &str) -> StoreResult<bool> {
    let Some(found) = found else { return Ok(false) };
    // Optional by design: only `put_new` and `delete_conversation` write it.
    Ok(Read::new(kind, found).opt_s(WRITTEN_BY)?.as_deref() == Some(request))
}

impl DynamoStore {
    /// Up to `fetch` items of a partition, newest first (descending sort key), strictly below
    /// the sort key `before`; read consistently.
    pub(super) async fn newest_first(
        &self,
        pk: String,
        before: Option<String>,
        fetch: usize,
    ) -> StoreResult<Vec<Item>> {
        self.in_order(pk, before, fetch, false).await
    }

    /// Up to `fetch` items of a partition, oldest first (ascending sort key), strictly above
    /// the sort key `after`; read consistently.
    pub(super) async fn oldest_first(&self, pk: String, after: Option<String>, fetch: usize) -> StoreResult<Vec<Item>> {
        self.in_order(pk, after, fetch, true).await
    }

    async fn in_order(
        &self,
        pk: String,
        beyond: Option<String>,
        fetch: usize,
        forward: bool,
    ) -> StoreResult<Vec<Item>> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .scan_index_forward(forward)
            .limit(i32::try_from(fetch).unwrap_or(i32::MAX))
            .expression_attribute_values(":pk", s(pk));
        query = match beyond {
            None => query.key_condition_expression("PK = :pk"),
            Some(sk) => query
                .key_condition_expression(if forward {
                    "PK = :pk AND SK > :cursor"
                } else {
                    "PK = :pk AND SK < :cursor"
                })
                .expression_attribute_values(":cursor", s(sk)),
        };
        Ok(query.send().await.map_err(sdk_error)?.items.unwrap_or_default())
    }

    /// Puts an item that must not exist yet: false (and nothing written) when it does.
    pub(super) async fn put_absent(&self, item: Item) -> StoreResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        condition_met(result)
    }

    pub(super) async fn get(&self, pk: String, sk: impl Into<String>) -> StoreResult<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output.item)
    }

    pub(super) async fn put(&self, item: Item) -> StoreResult<()> {
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk_error).map(drop)
    }

    pub(super) async fn delete(&self, pk: String, sk: impl Into<String>) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(sdk_error)
            .map(drop)
    }

    /// Deletes an item; false when there was none.
    pub(super) async fn delete_existing(&self, pk: String, sk: impl Into<String>) -> StoreResult<bool> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// Every item of a partition (optionally under a sort-key prefix), following pages.
    pub(super) async fn partition(&self, pk: String, prefix: Option<&str>) -> StoreResult<Vec<Item>> {
        self.partition_range(pk, prefix.map_or(SortRange::All, SortRange::Prefix), true).await
    }

    /// Every item of a partition whose sort key is in `range`, following pages; read
    /// consistently or (for half the read units) eventually.
    pub(super) async fn partition_range(
        &self,
        pk: String,
        range: SortRange<'_>,
        consistent: bool,
    ) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(consistent)
                .expression_attribute_values(":pk", s(pk.clone()))
                .set_exclusive_start_key(start);
            query = match range {
                SortRange::Prefix(prefix) => query
                    .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
                SortRange::Between(low, high) => query
                    .key_condition_expression("PK = :pk AND SK BETWEEN :low AND :high")
                    .expression_attribute_values(":low", s(low))
                    .expression_attribute_values(":high", s(high)),
                SortRange::All => query.key_condition_expression("PK = :pk"),
            };
            let output = query.send().await.map_err(sdk_error)?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}

/// Which sort keys of a partition a query reads.
#[derive(Clone, Copy)]
pub(super) enum SortRange<'a> {
    All,
    Prefix(&'a str),
    /// Both ends included.
    Between(&'a str, &'a str),
}

/// A filtered Scan of the whole table: what passes `filter` (with its attribute `names` and
/// `values`), with the attributes of `projection` (all without it), page after page until
/// `fetch` items (or all, without it).
pub(super) struct Scan<'a> {
    pub filter: &'a str,
    pub names: &'a [(&'a str, &'a str)],
    pub values: Vec<(&'a str, AttributeValue)>,
    pub projection: Option<&'a str>,
    pub fetch: Option<usize>,
}

impl DynamoStore {
    pub(super) async fn scan(&self, scan: Scan<'_>) -> StoreResult<Vec<Item>> {
        let names = (!scan.names.is_empty())
            .then(|| scan.names.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        let values: HashMap<String, AttributeValue> = scan.values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(scan.filter)
                .set_expression_attribute_names(names.clone())
                .set_expression_attribute_values(Some(values.clone()))
                .set_projection_expression(scan.projection.map(str::to_owned))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            let enough = scan.fetch.is_some_and(|fetch| items.len() >= fetch);
            if start.is_none() || enough {
                if let Some(fetch) = scan.fetch {
                    items.truncate(fetch);
                }
                return Ok(items);
            }
        }
    }
}
