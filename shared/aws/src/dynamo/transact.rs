//! Transactions: the writes and checks they are made of, all-or-nothing writes (with and
//! without retrying a conflict with a concurrent transaction), and consistent reads of
//! several items at once.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Get, Put, TransactGetItem, TransactWriteItem};

use colloquy_core::domain::{ConversationId, Owner};
use colloquy_core::ports::{StoreError, StoreResult};

use super::keys::{conversation_sk, key, owner_pk};
use super::requests::sdk_error;
use super::{DynamoStore, Item};

/// How often a transaction cancelled by a concurrent one on the same items is tried.
pub(super) const TRANSACT_ATTEMPTS: u32 = 12;
/// The condition of a conversation that may still gain messages and feedback.
pub(super) const LIVE: &str =
    "attribute_exists(PK) AND attribute_not_exists(deleted) AND attribute_not_exists(forking)";

/// How a conditional transaction ended.
pub(super) enum Transaction {
    Done,
    /// Cancelled; for each write, whether its condition failed.
    Refused(Vec<bool>),
}

/// A jittered pause before trying a transaction again: longer for later attempts.
pub(super) async fn pause(attempt: u32, step_ms: u64) {
    let pause = step_ms * u64::from(attempt.min(6)) + rand::random_range(0..2 * step_ms);
    tokio::time::sleep(Duration::from_millis(pause)).await;
}

impl DynamoStore {
    /// A transaction's put of `item`, under `condition` if any.
    pub(super) fn put_item(&self, item: Item, condition: Option<&str>) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned));
        Ok(TransactWriteItem::builder().put(put.build().map_err(sdk_error)?).build())
    }

    pub(super) fn delete_item(&self, pk: String, sk: impl Into<String>) -> StoreResult<TransactWriteItem> {
        let delete = Delete::builder().table_name(&self.table).set_key(Some(key(pk, sk))).build().map_err(sdk_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// A transaction's check that a conversation is live (exists and is not tombstoned).
    pub(super) fn live_check(&self, owner: Owner, id: ConversationId) -> StoreResult<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(owner), conversation_sk(id))))
            .condition_expression(LIVE)
            .build()
            .map_err(sdk_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// A transactional read of one item.
    pub(super) fn get_item(&self, pk: String, sk: String) -> StoreResult<TransactGetItem> {
        let get = Get::builder().table_name(&self.table).set_key(Some(key(pk, sk))).build().map_err(sdk_error)?;
        Ok(TransactGetItem::builder().get(get).build())
    }

    /// Writes all-or-nothing. The request token makes the SDK's retries idempotent: a retry
    /// of a transaction that went through (its response lost) succeeds without writing again
    /// (DynamoDB remembers a token for ten minutes), instead of failing its own conditions.
    /// A failed condition is a `Conflict`; a transaction cancelled by a concurrent one, or by
    /// throttling, is `Unavailable`.
    pub(super) async fn transact(&self, writes: Vec<TransactWriteItem>) -> StoreResult<()> {
        let token = uuid::Uuid::new_v4().to_string();
        let result = self
            .client
            .transact_write_items()
            .client_request_token(token)
            .set_transact_items(Some(writes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service)) => match service.err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    let reasons: Vec<&str> = cancelled
                        .cancellation_reasons()
                        .iter()
                        .filter_map(|r| r.code())
                        .filter(|c| *c != "None")
                        .collect();
                    let detail = format!("transaction cancelled: {reasons:?}");
                    if reasons.iter().all(|c| *c == "ConditionalCheckFailed") && !reasons.is_empty() {
                        Err(StoreError::Conflict(detail))
                    } else if reasons
                        .iter()
                        .any(|c| matches!(*c, "ValidationError" | "ItemCollectionSizeLimitExceeded"))
                    {
                        Err(StoreError::Failed(detail))
                    } else {
                        Err(StoreError::Unavailable(detail))
                    }
                }
                _ => Err(sdk_error(SdkError::ServiceError(service))),
            },
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Writes all-or-nothing under the writes' conditions, with a `ClientRequestToken`: a
    /// request that failed ambiguously (a server error, throttling, the same request still in
    /// progress) is sent again with the same token, so that if it did go through it succeeds
    /// instead of failing its own conditions; a transaction cancelled only because another one
    /// was changing the same items did nothing, and is tried again (with a new token) after a
    /// jittered pause.
    pub(super) async fn transact_checked(&self, writes: Vec<TransactWriteItem>) -> StoreResult<Transaction> {
        let mut token = uuid::Uuid::new_v4().to_string();
        for attempt in 1..=TRANSACT_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes.clone()))
                .client_request_token(&token)
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(Transaction::Done),
                Err(error) => error,
            };
            match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    // A reason without a code is DynamoDB's "None": that write was not at fault.
                    let codes: Vec<&str> =
                        cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")).collect();
                    if codes.contains(&"ConditionalCheckFailed") {
                        let failed = codes.iter().map(|c| *c == "ConditionalCheckFailed").collect();
                        return Ok(Transaction::Refused(failed));
                    }
                    if !codes.contains(&"TransactionConflict") {
                        return Err(sdk_error(error));
                    }
                    token = uuid::Uuid::new_v4().to_string();
                }
                Some(
                    TransactWriteItemsError::InternalServerError(_)
                    | TransactWriteItemsError::ThrottlingException(_)
                    | TransactWriteItemsError::ProvisionedThroughputExceededException(_)
                    | TransactWriteItemsError::RequestLimitExceeded(_)
                    | TransactWriteItemsError::TransactionInProgressException(_),
                ) => {}
                _ => return Err(sdk_error(error)),
            }
            pause(attempt, 10).await;
        }
        Err(StoreError::Unavailable("a transaction kept conflicting with others".into()))
    }

    /// Reads items together and consistently: for each read, its item if it exists. A
    /// transactional read is refused while a write to one of its items is under way: it is
    /// tried again, as reading has no effect.
    pub(super) async fn transact_get<const N: usize>(
        &self,
        reads: [TransactGetItem; N],
    ) -> StoreResult<[Option<Item>; N]> {
        let mut attempt = 0;
        let output = loop {
            attempt += 1;
            let result = self.client.transact_get_items().set_transact_items(Some(reads.to_vec())).send().await;
            let retry = match &result {
                Err(error) => match error.as_service_error() {
                    Some(TransactGetItemsError::TransactionCanceledException(cancelled)) => {
                        cancelled.cancellation_reasons().iter().any(|r| r.code() == Some("TransactionConflict"))
                    }
                    Some(TransactGetItemsError::InternalServerError(_)) => true,
                    _ => false,
                },
                Ok(_) => false,
            };
            if !retry || attempt >= TRANSACT_ATTEMPTS {
                break result.map_err(sdk_error)?;
            }
            pause(attempt, 5).await;
        };
        // One response per read, in order, without an item where there is none.
        let items: Vec<Option<Item>> = output.responses.unwrap_or_default().into_iter().map(|r| r.item).collect();
        <[Option<Item>; N]>::try_from(items)
            .map_err(|items| StoreError::Failed(format!("a transactional read of {N} items answered {}", items.len())))
    }
}
