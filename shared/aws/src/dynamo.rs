//! The production store: one DynamoDB table implementing every storage port.
//!
//! Every key string and `AttributeValue` stays in this file. The design (keys, indexes,
//! access patterns, request counts, consistency) is documented in `docs/data-model.md`.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, DeleteRequest, Get, KeySchemaElement,
    KeyType, KeysAndAttributes, LocalSecondaryIndex, Projection, ProjectionType, Put, PutRequest,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification, TransactGetItem, TransactWriteItem, Update, WriteRequest,
};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::aws_clients::StoreFailure;
use colloquy_core::domain::{
    ABANDONED_ERROR, Annotation, AnnotationId, AnnotationJob, AnnotationSettings, App, AppConfig, AppId, AppMode,
    Conversation, ConversationId, ConversationSort, ConversationVariable, Cursor, EndUser, EndUserId, Feedback,
    FeedbackSource, FileId, Invalid, JobId, JobStatus, KeyHash, Message, MessageId, Owner, Rating, ReplyAction,
    SortField, TaskId, Timestamp, UploadFile, UserRef, ValueType, VariableId, VariableNameFilter,
};
use colloquy_core::ports::{
    AnnotationStore, AppStore, ConversationStore, EndUserStore, FeedbackStore, FileStore, MessageStore, RateLimiter,
    StoreError, StoreResult, TaskControl, VariableStore,
};

type Item = HashMap<String, AttributeValue>;

/// The table's local secondary indexes: (index name, sort-key attribute). `template.yaml`
/// declares the same (a test compares them).
pub const INDEXES: [(&str, &str); 2] = [("LSI1", "LSI1SK"), ("LSI2", "LSI2SK")];
/// The TTL attribute of tombstones, task flags, jobs and rate windows.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// DynamoDB accepts at most 25 writes per BatchWriteItem and 100 keys per BatchGetItem.
const BATCH_WRITE: usize = 25;
const BATCH_GET: usize = 100;
/// The purge reads this many messages per page and deletes them in groups whose pointer,
/// feedback and list entries fit one BatchWriteItem (8 × 3 = 24 ≤ 25).
const PURGE_PAGE: i32 = 96;
const PURGE_GROUP: usize = 8;
/// The attribute naming the request that created an item (`put_new`) or a tombstone
/// (`delete_conversation`), so a retry of that request recognises its own earlier attempt.
const WRITTEN_BY: &str = "written_by";
/// Tombstoned conversations and finished task flags expire (TTL) after this long.
const TOMBSTONE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
const TASK_TTL: Duration = Duration::from_secs(24 * 3600);
/// Running tasks are spread over this many partitions: few enough for start-up recovery to
/// read them all, enough that their stop polls (10 reads a second each) stay far below a
/// partition's throughput.
const TASK_SHARDS: u128 = 64;
/// How often a transaction cancelled by a concurrent one on the same items is tried.
const TRANSACT_ATTEMPTS: u32 = 12;
/// The condition of a conversation that may still gain messages and feedback.
const LIVE: &str = "attribute_exists(PK) AND attribute_not_exists(deleted)";

/// The DynamoDB-backed store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn json<T: Serialize>(value: &T) -> AttributeValue {
    s(serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
}

/// A timestamp as a fixed-width, order-preserving string (negative values sort first).
fn order(at: Timestamp) -> String {
    format!("{:020}", (i128::from(at.micros()) + (1_i128 << 63)) as u64)
}

fn ttl(at: Timestamp, after: Duration) -> AttributeValue {
    n(at.unix_seconds() + after.as_secs() as i64)
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("PK".to_owned(), s(pk)), ("SK".to_owned(), s(sk))])
}

/// A failed request as a `StoreError`: `Unavailable` (503) when retrying later may succeed
/// (see `aws_clients`), `Failed` (500) otherwise.
fn sdk_error<E: StoreFailure>(error: E) -> StoreError {
    error.into_store_error()
}

fn is_condition_failure<E: ProvideErrorMetadata>(error: &E) -> bool {
    error.code() == Some("ConditionalCheckFailedException")
}

/// Whether a conditional write went through: false when its condition failed. Conditions
/// are checked again on every retry of a write, so a write whose condition its own first
/// attempt changes must tell its retry apart (see `put_new`, `delete_conversation`).
/// Transactions go through `transact`.
fn condition_met<T, E, R>(result: Result<T, SdkError<E, R>>) -> StoreResult<bool>
where
    SdkError<E, R>: StoreFailure,
    E: ProvideErrorMetadata,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(false),
        Err(e) => Err(sdk_error(e)),
    }
}

/// How long to wait before asking again for the items a batch request left unprocessed
/// (DynamoDB's answer to throttling); `None` once it is time to give up. Full jitter, as
/// the SDK's own back-off; five retries wait at most 25 + 50 + 100 + 200 + 400 ms.
fn unprocessed_backoff(retry: u32) -> Option<Duration> {
    const RETRIES: u32 = 5;
    if retry > RETRIES {
        return None;
    }
    let ceiling = crate::aws_clients::INITIAL_BACKOFF * (1 << (retry - 1));
    Some(ceiling.mul_f64(rand::random::<f64>()))
}

/// Typed reads of an item's attributes; a missing or mistyped attribute is corrupt data.
struct Read<'a>(&'a Item);

impl Read<'_> {
    fn opt_s(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(|v| v.as_s().ok()).cloned()
    }

    fn s(&self, name: &str) -> StoreResult<String> {
        self.opt_s(name).ok_or_else(|| StoreError::Corrupt(format!("attribute {name} is missing")))
    }

    fn n(&self, name: &str) -> StoreResult<i64> {
        let raw = self.0.get(name).and_then(|v| v.as_n().ok());
        raw.and_then(|r| r.parse().ok()).ok_or_else(|| StoreError::Corrupt(format!("attribute {name} is not a number")))
    }

    fn time(&self, name: &str) -> StoreResult<Timestamp> {
        self.n(name).map(Timestamp::from_micros)
    }

    fn json<T: DeserializeOwned>(&self, name: &str) -> StoreResult<T> {
        serde_json::from_str(&self.s(name)?).map_err(|e| StoreError::Corrupt(format!("attribute {name}: {e}")))
    }

    fn parse<T: FromStr<Err = Invalid>>(&self, name: &str) -> StoreResult<T> {
        self.s(name)?.parse().map_err(|e: Invalid| StoreError::Corrupt(format!("attribute {name}: {}", e.0)))
    }

    fn opt_parse<T: FromStr<Err = Invalid>>(&self, name: &str) -> StoreResult<Option<T>> {
        self.opt_s(name).map(|raw| raw.parse().map_err(|e: Invalid| StoreError::Corrupt(e.0))).transpose()
    }

    fn flag(&self, name: &str) -> bool {
        self.0.get(name).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false)
    }
}

// Key layout: one partition per kind of collection, so every Query reads one kind only.
fn app_pk() -> &'static str {
    "APPS"
}
fn app_sk(id: AppId) -> String {
    format!("APP#{id}")
}
fn key_pk(hash: &KeyHash) -> String {
    format!("KEY#{}", hash.as_str())
}
fn end_user_pk(app: AppId, user: &UserRef) -> String {
    format!("EU#{app}#{}", user.as_str())
}
fn owner_pk(owner: Owner) -> String {
    format!("OWN#{}#{}", owner.app_id, owner.end_user_id)
}
fn conversation_sk(id: ConversationId) -> String {
    format!("CONV#{id}")
}
fn messages_pk(conversation: ConversationId) -> String {
    format!("CONV#{conversation}")
}
fn message_sk(at: Timestamp, id: MessageId) -> String {
    format!("MSG#{}#{id}", order(at))
}
fn pointer_pk(id: MessageId) -> String {
    format!("MSG#{id}")
}
const POINTER_SK: &str = "#MSG";
fn feedback_sk(end_user: EndUserId) -> String {
    format!("FB#USER#{end_user}")
}
fn app_feedback_pk(app: AppId) -> String {
    format!("APPFB#{app}")
}
fn app_feedback_sk(at: Timestamp, id: colloquy_core::domain::FeedbackId) -> String {
    format!("{}#{id}", order(at))
}
fn variables_pk(conversation: ConversationId) -> String {
    format!("VARS#{conversation}")
}
fn variable_sk(id: VariableId) -> String {
    format!("VAR#{id}")
}
fn annotations_pk(app: AppId) -> String {
    format!("ANN#{app}")
}
fn annotation_sk(id: AnnotationId) -> String {
    format!("A#{id}")
}
const SETTINGS_SK: &str = "#SETTINGS";
fn job_pk(app: AppId) -> String {
    format!("ANNJOB#{app}")
}
fn task_pk(id: TaskId) -> String {
    format!("TASKS#{:02}", id.as_uuid().as_u128() % TASK_SHARDS)
}
fn task_sk(id: TaskId) -> String {
    format!("TASK#{id}")
}
fn rate_pk(key: &str) -> String {
    format!("RL#{key}")
}

/// The new image of a changed item, as a table stream delivers it; enough to recognise a
/// conversation tombstone.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ChangedItem {
    #[serde(rename = "SK")]
    pub sk: String,
    pub id: Option<String>,
    pub app_id: Option<String>,
    pub end_user_id: Option<String>,
    pub deleted: Option<bool>,
}

impl ChangedItem {
    /// The conversation this change deleted, if it is a conversation tombstone.
    pub fn deleted_conversation(&self) -> Option<(Owner, ConversationId)> {
        if self.deleted != Some(true) || !self.sk.starts_with("CONV#") {
            return None;
        }
        let owner = Owner {
            app_id: self.app_id.as_deref()?.parse().ok()?,
            end_user_id: self.end_user_id.as_deref()?.parse().ok()?,
        };
        Some((owner, self.id.as_deref()?.parse().ok()?))
    }
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub items_deleted: usize,
}

/// How a conditional transaction ended.
enum Transaction {
    Done,
    /// Cancelled; for each write, whether its condition failed.
    Refused(Vec<bool>),
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table as `template.yaml` defines it (keys, two local secondary indexes,
    /// on-demand billing, a stream for the purge, TTL on `expires_at`). False when it exists.
    pub async fn create_table(&self) -> StoreResult<bool> {
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(sdk_error)
        };
        let schema = |name: &str, kind: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(sdk_error)
        };
        let lsi = |index: &str, sort: &str| -> StoreResult<LocalSecondaryIndex> {
            LocalSecondaryIndex::builder()
                .index_name(index)
                .key_schema(schema("PK", KeyType::Hash)?)
                .key_schema(schema(sort, KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(sdk_error)
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("PK")?)
            .attribute_definitions(attribute("SK")?)
            .attribute_definitions(attribute(INDEXES[0].1)?)
            .attribute_definitions(attribute(INDEXES[1].1)?)
            .key_schema(schema("PK", KeyType::Hash)?)
            .key_schema(schema("SK", KeyType::Range)?)
            .local_secondary_indexes(lsi(INDEXES[0].0, INDEXES[0].1)?)
            .local_secondary_indexes(lsi(INDEXES[1].0, INDEXES[1].1)?)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .map_err(sdk_error)?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {
                return Ok(false);
            }
            Err(error) => return Err(sdk_error(error)),
        }
        let ttl_spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL_ATTRIBUTE)
            .build()
            .map_err(sdk_error)?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl_spec)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(true)
    }

    async fn get(&self, pk: String, sk: impl Into<String>) -> StoreResult<Option<Item>> {
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

    async fn put(&self, item: Item) -> StoreResult<()> {
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk_error).map(drop)
    }

    async fn delete(&self, pk: String, sk: impl Into<String>) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(sdk_error)
            .map(drop)
    }

    /// Every item of a partition (optionally under a sort-key prefix), following pages.
    async fn partition(&self, pk: String, prefix: Option<&str>) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(pk.clone()))
                .set_exclusive_start_key(start);
            query = match prefix {
                Some(prefix) => query
                    .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
                None => query.key_condition_expression("PK = :pk"),
            };
            let output = query.send().await.map_err(sdk_error)?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Writes all-or-nothing. The request token makes the SDK's retries idempotent: a retry
    /// of a transaction that went through (its response lost) succeeds without writing again
    /// (DynamoDB remembers a token for ten minutes), instead of failing its own conditions.
    /// A failed condition is a `Conflict`; a transaction cancelled by a concurrent one, or by
    /// throttling, is `Unavailable`.
    async fn transact(&self, writes: Vec<TransactWriteItem>) -> StoreResult<()> {
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

    /// Puts an item whose key must be new; false when an item has that key already. The SDK
    /// retries a put whose response was lost, and the retry then finds the first attempt's
    /// item: the request id written with it tells that success from a true conflict.
    async fn put_new(&self, mut item: Item) -> StoreResult<bool> {
        let request = uuid::Uuid::new_v4().to_string();
        item.insert(WRITTEN_BY.into(), s(&request));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(service)) => match service.err() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    Ok(failed.item().is_some_and(|old| Read(old).opt_s(WRITTEN_BY).as_deref() == Some(&request)))
                }
                _ => Err(sdk_error(SdkError::ServiceError(service))),
            },
            Err(e) => Err(sdk_error(e)),
        }
    }

    fn put_item(&self, item: Item, condition: Option<&str>) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned));
        Ok(TransactWriteItem::builder().put(put.build().map_err(sdk_error)?).build())
    }

    fn delete_item(&self, pk: String, sk: impl Into<String>) -> StoreResult<TransactWriteItem> {
        let delete = Delete::builder().table_name(&self.table).set_key(Some(key(pk, sk))).build().map_err(sdk_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// A transaction's check that a conversation is live (exists and is not tombstoned).
    fn live_check(&self, owner: Owner, id: ConversationId) -> StoreResult<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(owner), conversation_sk(id))))
            .condition_expression(LIVE)
            .build()
            .map_err(sdk_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Writes all-or-nothing under the writes' conditions, with a `ClientRequestToken`: a
    /// request that failed ambiguously (a server error, throttling, the same request still in
    /// progress) is sent again with the same token, so that if it did go through it succeeds
    /// instead of failing its own conditions; a transaction cancelled only because another one
    /// was changing the same items did nothing, and is tried again (with a new token) after a
    /// jittered pause.
    async fn transact_checked(&self, writes: Vec<TransactWriteItem>) -> StoreResult<Transaction> {
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
            let pause = 10 * u64::from(attempt.min(6)) + rand::random_range(0..20_u64);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        Err(StoreError::Unavailable("a transaction kept conflicting with others".into()))
    }

    /// Deletes keys in batches of 25, retrying unprocessed ones with backoff.
    async fn batch_delete(&self, keys: Vec<Item>) -> StoreResult<usize> {
        let total = keys.len();
        for chunk in keys.chunks(BATCH_WRITE) {
            let requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|k| {
                    DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(sdk_error)
                })
                .collect::<StoreResult<_>>()?;
            self.batch_write(requests).await?;
        }
        Ok(total)
    }

    async fn batch_write(&self, mut requests: Vec<WriteRequest>) -> StoreResult<()> {
        let mut retry = 0_u32;
        while !requests.is_empty() {
            let output =
                self.client.batch_write_item().request_items(&self.table, requests).send().await.map_err(sdk_error)?;
            requests = output.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default();
            if !requests.is_empty() {
                retry += 1;
                let Some(pause) = unprocessed_backoff(retry) else {
                    return Err(StoreError::Unavailable("DynamoDB kept some batch writes unprocessed".into()));
                };
                tokio::time::sleep(pause).await;
            }
        }
        Ok(())
    }

    /// Consistent batch reads of up to 100 keys per request, retrying unprocessed keys.
    async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH_GET) {
            let mut pending = chunk.to_vec();
            let mut retry = 0_u32;
            while !pending.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(sdk_error)?;
                let output =
                    self.client.batch_get_item().request_items(&self.table, request).send().await.map_err(sdk_error)?;
                found.extend(output.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
                pending =
                    output.unprocessed_keys.and_then(|mut m| m.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
                if !pending.is_empty() {
                    retry += 1;
                    let Some(pause) = unprocessed_backoff(retry) else {
                        return Err(StoreError::Unavailable("DynamoDB kept some batch reads unprocessed".into()));
                    };
                    tokio::time::sleep(pause).await;
                }
            }
        }
        Ok(found)
    }

    /// Removes every item of a deleted (tombstoned) conversation: messages, their pointers and
    /// feedback (also in the app's feedback list), variables, then the tombstone itself.
    /// Idempotent: run it again after any failure until it succeeds.
    pub async fn purge_conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<PurgeReport> {
        if let Some(item) = self.get(owner_pk(owner), conversation_sk(id)).await?
            && !Read(&item).flag("deleted")
        {
            return Err(StoreError::Conflict("the conversation is not deleted".into()));
        }
        let mut report = PurgeReport::default();
        loop {
            // A page of messages at a time, so memory stays bounded however long the history.
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(messages_pk(id)))
                .projection_expression("PK, SK, id")
                .limit(PURGE_PAGE)
                .send()
                .await
                .map_err(sdk_error)?;
            let items = output.items.unwrap_or_default();
            if items.is_empty() {
                break;
            }
            let ids: Vec<MessageId> = items.iter().map(|i| Read(i).parse("id")).collect::<StoreResult<_>>()?;
            let feedbacks = self
                .batch_get(ids.iter().map(|m| key(pointer_pk(*m), feedback_sk(owner.end_user_id))).collect())
                .await?;
            let mut listed: HashMap<MessageId, Item> = HashMap::new();
            for feedback in &feedbacks {
                let r = Read(feedback);
                listed.insert(
                    r.parse("message_id")?,
                    key(app_feedback_pk(owner.app_id), app_feedback_sk(r.time("created_at")?, r.parse("id")?)),
                );
            }
            // Per group: what points at the messages first, then the messages, so a failure in
            // between leaves the messages to find again on the next run.
            for (group, messages) in ids.chunks(PURGE_GROUP).zip(items.chunks(PURGE_GROUP)) {
                let mut dependents: Vec<Item> = Vec::with_capacity(group.len() * 3);
                for message in group {
                    dependents.push(key(pointer_pk(*message), POINTER_SK));
                    dependents.push(key(pointer_pk(*message), feedback_sk(owner.end_user_id)));
                    dependents.extend(listed.remove(message));
                }
                report.items_deleted += self.batch_delete(dependents).await?;
                let message_keys =
                    messages.iter().map(|i| key(messages_pk(id), Read(i).s("SK").unwrap_or_default())).collect();
                report.items_deleted += self.batch_delete(message_keys).await?;
            }
        }
        let variables: Vec<Item> = self
            .partition(variables_pk(id), None)
            .await?
            .iter()
            .map(|i| key(variables_pk(id), Read(i).s("SK").unwrap_or_default()))
            .collect();
        report.items_deleted += self.batch_delete(variables).await?;
        self.delete(owner_pk(owner), conversation_sk(id)).await?;
        report.items_deleted += 1;
        Ok(report)
    }

    /// Imports many messages at once (BatchWriteItem, 25 items per request; two items per
    /// message). For migrations from another store; the chat path uses `insert_message`.
    pub async fn import_messages(&self, messages: &[Message]) -> StoreResult<()> {
        let mut requests = Vec::with_capacity(messages.len() * 2);
        for message in messages {
            for item in [message_item(message), pointer_item(message)] {
                let put = PutRequest::builder().set_item(Some(item)).build().map_err(sdk_error)?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
        }
        for chunk in requests.chunks(BATCH_WRITE) {
            self.batch_write(chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// Every item still stored for a conversation and the given messages of it (for checks
    /// after a purge): messages, pointers, feedback, list entries, variables, the conversation.
    pub async fn conversation_item_count(
        &self,
        owner: Owner,
        id: ConversationId,
        messages: &[MessageId],
    ) -> StoreResult<usize> {
        let mut count = self.partition(messages_pk(id), None).await?.len();
        let keys: Vec<Item> = messages
            .iter()
            .flat_map(|m| [key(pointer_pk(*m), POINTER_SK), key(pointer_pk(*m), feedback_sk(owner.end_user_id))])
            .collect();
        count += self.batch_get(keys).await?.len();
        count += self.partition(variables_pk(id), None).await?.len();
        count += usize::from(self.get(owner_pk(owner), conversation_sk(id)).await?.is_some());
        let app_feedback = self.partition(app_feedback_pk(owner.app_id), None).await?;
        count += app_feedback
            .iter()
            .filter(|i| Read(i).opt_s("conversation_id").as_deref() == Some(&id.to_string()))
            .count();
        Ok(count)
    }
}

fn app_item(app: &App) -> Item {
    let mut item = key(app_pk(), app_sk(app.id));
    item.insert("id".into(), s(app.id.to_string()));
    item.insert("name".into(), s(&app.name));
    item.insert("mode".into(), s(app.mode.as_str()));
    item.insert("config".into(), json(&app.config));
    item.insert("created_at".into(), n(app.created_at.micros()));
    item
}

fn app_from(item: &Item) -> StoreResult<App> {
    let r = Read(item);
    Ok(App {
        id: r.parse("id")?,
        name: r.s("name")?,
        mode: AppMode::parse(&r.s("mode")?).map_err(|e| StoreError::Corrupt(e.0))?,
        config: r.json::<AppConfig>("config")?,
        created_at: r.time("created_at")?,
    })
}

fn key_item(hash: &KeyHash, app: AppId, now: Timestamp) -> Item {
    let mut item = key(key_pk(hash), "#KEY");
    item.insert("app_id".into(), s(app.to_string()));
    item.insert("created_at".into(), n(now.micros()));
    item
}

#[async_trait]
impl AppStore for DynamoStore {
    async fn create_app(&self, app: &App, first_key: &KeyHash) -> StoreResult<()> {
        let absent = Some("attribute_not_exists(PK)");
        let writes = vec![
            self.put_item(app_item(app), absent)?,
            self.put_item(key_item(first_key, app.id, app.created_at), absent)?,
        ];
        self.transact(writes).await
    }

    async fn update_app(&self, app: &App) -> StoreResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(app_item(app)))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await;
        condition_met(result)
    }

    async fn app(&self, id: AppId) -> StoreResult<Option<App>> {
        self.get(app_pk().into(), app_sk(id)).await?.as_ref().map(app_from).transpose()
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        let mut apps: Vec<App> =
            self.partition(app_pk().into(), Some("APP#")).await?.iter().map(app_from).collect::<StoreResult<_>>()?;
        apps.sort_by_key(|a| (a.created_at, a.id));
        Ok(apps)
    }

    async fn add_key(&self, app: AppId, hash: &KeyHash, now: Timestamp) -> StoreResult<()> {
        if self.put_new(key_item(hash, app, now)).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict("the key exists".into()))
        }
    }

    async fn app_for_key(&self, hash: &KeyHash) -> StoreResult<Option<AppId>> {
        self.get(key_pk(hash), "#KEY").await?.map(|item| Read(&item).parse("app_id")).transpose()
    }

    async fn revoke_key(&self, hash: &KeyHash) -> StoreResult<bool> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(key_pk(hash), "#KEY")))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output.attributes.is_some_and(|a| !a.is_empty()))
    }
}

#[async_trait]
impl EndUserStore for DynamoStore {
    async fn end_user(&self, app: AppId, user: &UserRef, new: EndUser) -> StoreResult<EndUser> {
        // One request: set the id only if the item has none, and read back what is stored.
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(end_user_pk(app, user), "#EU")))
            .update_expression("SET #id = if_not_exists(#id, :id), created_at = if_not_exists(created_at, :at)")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":id", s(new.id.to_string()))
            .expression_attribute_values(":at", n(new.created_at.micros()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(sdk_error)?;
        let item = output.attributes.unwrap_or_default();
        let r = Read(&item);
        Ok(EndUser { id: r.parse("id")?, app_id: app, session_id: user.clone(), created_at: r.time("created_at")? })
    }
}

fn conversation_item(c: &Conversation) -> Item {
    let mut item = key(owner_pk(c.owner), conversation_sk(c.id));
    item.insert("id".into(), s(c.id.to_string()));
    item.insert("app_id".into(), s(c.owner.app_id.to_string()));
    item.insert("end_user_id".into(), s(c.owner.end_user_id.to_string()));
    item.insert("name".into(), s(&c.name));
    item.insert("inputs".into(), json(&c.inputs));
    item.insert("status".into(), s(c.status.as_str()));
    item.insert("introduction".into(), s(&c.introduction));
    item.insert("created_at".into(), n(c.created_at.micros()));
    item.insert("updated_at".into(), n(c.updated_at.micros()));
    item.insert("LSI1SK".into(), s(format!("{}#{}", order(c.updated_at), c.id)));
    item.insert("LSI2SK".into(), s(format!("{}#{}", order(c.created_at), c.id)));
    item
}

fn conversation_from(item: &Item) -> StoreResult<Conversation> {
    let r = Read(item);
    Ok(Conversation {
        id: r.parse("id")?,
        owner: Owner { app_id: r.parse("app_id")?, end_user_id: r.parse("end_user_id")? },
        name: r.s("name")?,
        inputs: r.json("inputs")?,
        status: r.parse("status")?,
        introduction: r.s("introduction")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// A conversation item that is live (not tombstoned).
fn live(item: Option<Item>) -> Option<Item> {
    item.filter(|i| !Read(i).flag("deleted"))
}

#[async_trait]
impl ConversationStore for DynamoStore {
    async fn insert_conversation(&self, c: &Conversation) -> StoreResult<()> {
        if self.put_new(conversation_item(c)).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict("the conversation exists".into()))
        }
    }

    async fn conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<Option<Conversation>> {
        live(self.get(owner_pk(owner), conversation_sk(id)).await?).as_ref().map(conversation_from).transpose()
    }

    async fn conversations(
        &self,
        owner: Owner,
        sort: ConversationSort,
        after: Option<Cursor<ConversationId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Conversation>> {
        let (index, attribute) = match sort.field {
            SortField::UpdatedAt => ("LSI1", "LSI1SK"),
            SortField::CreatedAt => ("LSI2", "LSI2SK"),
        };
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .consistent_read(true)
            .scan_index_forward(!sort.descending)
            .limit(i32::try_from(fetch).unwrap_or(i32::MAX))
            .expression_attribute_values(":pk", s(owner_pk(owner)));
        query = match after {
            None => query.key_condition_expression("PK = :pk"),
            Some(cursor) => {
                let beyond = if sort.descending { "<" } else { ">" };
                query
                    .key_condition_expression(format!("PK = :pk AND {attribute} {beyond} :cursor"))
                    .expression_attribute_values(":cursor", s(format!("{}#{}", order(cursor.at), cursor.id)))
            }
        };
        // Tombstones carry no index keys, so the index holds live conversations only.
        let output = query.send().await.map_err(sdk_error)?;
        output.items.unwrap_or_default().iter().map(conversation_from).collect()
    }

    async fn update_conversation(&self, c: &Conversation) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(c.owner), conversation_sk(c.id))))
            .update_expression(
                "SET #name = :name, inputs = :inputs, #status = :status, updated_at = :at, LSI1SK = :lsi",
            )
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(deleted)")
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":name", s(&c.name))
            .expression_attribute_values(":inputs", json(&c.inputs))
            .expression_attribute_values(":status", s(c.status.as_str()))
            .expression_attribute_values(":at", n(c.updated_at.micros()))
            .expression_attribute_values(":lsi", s(format!("{}#{}", order(c.updated_at), c.id)))
            .send()
            .await;
        condition_met(result)
    }

    /// One request: a tombstone that hides the conversation from every read at once; the
    /// purge (run from the table's stream) removes what belonged to it.
    async fn delete_conversation(&self, owner: Owner, id: ConversationId) -> StoreResult<bool> {
        let now = Timestamp::from_micros(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0),
        );
        // The tombstone names the request that laid it, so a retry of this very request
        // (its first response lost) is told apart from a conversation deleted before.
        let request = uuid::Uuid::new_v4().to_string();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(owner), conversation_sk(id))))
            .update_expression("SET deleted = :yes, expires_at = :ttl, written_by = :request REMOVE LSI1SK, LSI2SK")
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(deleted)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":ttl", ttl(now, TOMBSTONE_TTL))
            .expression_attribute_values(":request", s(&request))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(service)) => match service.err() {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(failed) => {
                    Ok(failed.item().is_some_and(|old| Read(old).opt_s(WRITTEN_BY).as_deref() == Some(&request)))
                }
                _ => Err(sdk_error(SdkError::ServiceError(service))),
            },
            Err(e) => Err(sdk_error(e)),
        }
    }
}

fn message_item(m: &Message) -> Item {
    let mut item = key(messages_pk(m.conversation_id), message_sk(m.created_at, m.id));
    item.insert("id".into(), s(m.id.to_string()));
    item.insert("conversation_id".into(), s(m.conversation_id.to_string()));
    item.insert("app_id".into(), s(m.owner.app_id.to_string()));
    item.insert("end_user_id".into(), s(m.owner.end_user_id.to_string()));
    if let Some(parent) = m.parent_message_id {
        item.insert("parent_message_id".into(), s(parent.to_string()));
    }
    item.insert("inputs".into(), json(&m.inputs));
    item.insert("query".into(), s(&m.query));
    item.insert("answer".into(), s(&m.answer));
    item.insert("message_files".into(), json(&m.message_files));
    item.insert("retriever_resources".into(), json(&m.retriever_resources));
    item.insert("agent_thoughts".into(), json(&m.agent_thoughts));
    item.insert("status".into(), s(m.status.as_str()));
    if let Some(error) = &m.error {
        item.insert("error".into(), s(error));
    }
    item.insert("metadata".into(), json(&m.metadata));
    item.insert("created_at".into(), n(m.created_at.micros()));
    if let Some(task) = m.task_id {
        item.insert("task_id".into(), s(task.to_string()));
    }
    item
}

/// A running generation: its stop flag, and where its message is, so that start-up recovery
/// can end the message when the generation's process died.
fn task_item(m: &Message, task: TaskId) -> Item {
    let mut item = key(task_pk(task), task_sk(task));
    item.insert("id".into(), s(task.to_string()));
    item.insert("app_id".into(), s(m.owner.app_id.to_string()));
    item.insert("end_user_id".into(), s(m.owner.end_user_id.to_string()));
    item.insert("stop".into(), AttributeValue::Bool(false));
    item.insert("conversation_id".into(), s(m.conversation_id.to_string()));
    item.insert("message_sk".into(), s(message_sk(m.created_at, m.id)));
    item.insert("started_at".into(), n(m.created_at.micros()));
    item.insert("expires_at".into(), ttl(m.created_at, TASK_TTL));
    item
}

fn pointer_item(m: &Message) -> Item {
    let mut item = key(pointer_pk(m.id), POINTER_SK);
    item.insert("conversation_id".into(), s(m.conversation_id.to_string()));
    item.insert("app_id".into(), s(m.owner.app_id.to_string()));
    item.insert("end_user_id".into(), s(m.owner.end_user_id.to_string()));
    item.insert("created_at".into(), n(m.created_at.micros()));
    item
}

fn message_from(item: &Item) -> StoreResult<Message> {
    let r = Read(item);
    Ok(Message {
        id: r.parse("id")?,
        conversation_id: r.parse("conversation_id")?,
        owner: Owner { app_id: r.parse("app_id")?, end_user_id: r.parse("end_user_id")? },
        parent_message_id: r.opt_parse("parent_message_id")?,
        inputs: r.json("inputs")?,
        query: r.s("query")?,
        answer: r.s("answer")?,
        message_files: r.json("message_files")?,
        retriever_resources: r.json("retriever_resources")?,
        agent_thoughts: r.json("agent_thoughts")?,
        status: r.parse("status")?,
        error: r.opt_s("error"),
        metadata: r.json("metadata")?,
        created_at: r.time("created_at")?,
        task_id: r.opt_parse("task_id")?,
    })
}

impl DynamoStore {
    /// Marks the message at (`conversation`, `sk`) failed if `task` is still generating it.
    async fn end_generation(&self, conversation: ConversationId, sk: String, task: TaskId) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(messages_pk(conversation), sk)))
            .update_expression("SET #status = :failed, #error = :error REMOVE task_id")
            .condition_expression("task_id = :task")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":failed", s("error"))
            .expression_attribute_values(":error", s(ABANDONED_ERROR))
            .expression_attribute_values(":task", s(task.to_string()))
            .send()
            .await;
        condition_met(result)
    }

    /// Ends the abandoned generations of one task partition (see [`TaskControl::end_abandoned`]).
    async fn end_abandoned_in(&self, shard: u128, before: Timestamp) -> StoreResult<usize> {
        let mut ended = 0;
        for item in self.partition(format!("TASKS#{shard:02}"), None).await? {
            let r = Read(&item);
            if r.time("started_at")? >= before {
                continue;
            }
            let task: TaskId = r.parse("id")?;
            if self.end_generation(r.parse("conversation_id")?, r.s("message_sk")?, task).await? {
                ended += 1;
            }
            self.delete(task_pk(task), task_sk(task)).await?;
        }
        Ok(ended)
    }

    /// The pointer of a message: its conversation, owner and time.
    async fn pointer(&self, id: MessageId) -> StoreResult<Option<(ConversationId, Owner, Timestamp)>> {
        let Some(item) = self.get(pointer_pk(id), POINTER_SK).await? else { return Ok(None) };
        let r = Read(&item);
        Ok(Some((
            r.parse("conversation_id")?,
            Owner { app_id: r.parse("app_id")?, end_user_id: r.parse("end_user_id")? },
            r.time("created_at")?,
        )))
    }
}

#[async_trait]
impl MessageStore for DynamoStore {
    /// One transaction: the conversation must be live, the message and its pointer new; the
    /// task of a generating message is stored with them.
    async fn insert_message(&self, m: &Message) -> StoreResult<bool> {
        let absent = Some("attribute_not_exists(PK)");
        let mut writes = vec![
            self.live_check(m.owner, m.conversation_id)?,
            self.put_item(message_item(m), absent)?,
            self.put_item(pointer_item(m), absent)?,
        ];
        if let Some(task) = m.task_id {
            writes.push(self.put_item(task_item(m, task), None)?);
        }
        match self.transact_checked(writes).await? {
            Transaction::Done => Ok(true),
            Transaction::Refused(failed) if failed.first() == Some(&true) => Ok(false),
            Transaction::Refused(_) => Err(StoreError::Conflict("the message exists".into())),
        }
    }

    /// One transaction with a check that the conversation is live, so that an answer finished
    /// after a delete changes nothing (and a purged message is never written again).
    async fn update_message(&self, m: &Message) -> StoreResult<bool> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(messages_pk(m.conversation_id), message_sk(m.created_at, m.id))))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":answer", s(&m.answer))
            .expression_attribute_values(":status", s(m.status.as_str()))
            .expression_attribute_values(":metadata", json(&m.metadata))
            .expression_attribute_values(":files", json(&m.message_files));
        let mut set = vec!["answer = :answer", "#status = :status", "metadata = :metadata", "message_files = :files"];
        let mut remove = Vec::new();
        match &m.error {
            Some(error) => {
                set.push("#error = :error");
                update = update.expression_attribute_values(":error", s(error));
            }
            None => remove.push("#error"),
        }
        match m.task_id {
            Some(task) => {
                set.push("task_id = :task");
                update = update.expression_attribute_values(":task", s(task.to_string()));
            }
            None => remove.push("task_id"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let update = update.update_expression(expression).build().map_err(sdk_error)?;
        let writes =
            vec![self.live_check(m.owner, m.conversation_id)?, TransactWriteItem::builder().update(update).build()];
        Ok(matches!(self.transact_checked(writes).await?, Transaction::Done))
    }

    async fn mark_abandoned(&self, m: &Message) -> StoreResult<bool> {
        let Some(task) = m.task_id else { return Ok(false) };
        self.end_generation(m.conversation_id, message_sk(m.created_at, m.id), task).await
    }

    async fn message(&self, owner: Owner, id: MessageId) -> StoreResult<Option<Message>> {
        let Some((conversation, stored_owner, at)) = self.pointer(id).await? else { return Ok(None) };
        if stored_owner != owner {
            return Ok(None);
        }
        // The conversation (for its tombstone) and the message, read together and consistently.
        let get = |pk: String, sk: String| -> StoreResult<TransactGetItem> {
            let get = Get::builder().table_name(&self.table).set_key(Some(key(pk, sk))).build().map_err(sdk_error)?;
            Ok(TransactGetItem::builder().get(get).build())
        };
        let reads = vec![
            get(owner_pk(owner), conversation_sk(conversation))?,
            get(messages_pk(conversation), message_sk(at, id))?,
        ];
        // A transactional read is refused while a write to either item is under way (a chat or
        // a feedback checks the conversation): it is tried again, as reading has no effect.
        let mut attempt = 0;
        let output = loop {
            attempt += 1;
            let result = self.client.transact_get_items().set_transact_items(Some(reads.clone())).send().await;
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
            let pause = 5 * u64::from(attempt.min(6)) + rand::random_range(0..10_u64);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        };
        let responses = output.responses.unwrap_or_default();
        let items: Vec<Option<Item>> = responses.into_iter().map(|r| r.item).collect();
        match items.as_slice() {
            [conversation_item, Some(message)] if live(conversation_item.clone()).is_some() => {
                message_from(message).map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn message_in(&self, conversation: ConversationId, id: MessageId) -> StoreResult<Option<Message>> {
        let Some((stored, _, at)) = self.pointer(id).await? else { return Ok(None) };
        if stored != conversation {
            return Ok(None);
        }
        self.get(messages_pk(conversation), message_sk(at, id)).await?.as_ref().map(message_from).transpose()
    }

    async fn messages_before(
        &self,
        conversation: ConversationId,
        before: Option<Cursor<MessageId>>,
        fetch: usize,
    ) -> StoreResult<Vec<Message>> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .scan_index_forward(false)
            .limit(i32::try_from(fetch).unwrap_or(i32::MAX))
            .expression_attribute_values(":pk", s(messages_pk(conversation)));
        query = match before {
            None => query.key_condition_expression("PK = :pk"),
            Some(cursor) => query
                .key_condition_expression("PK = :pk AND SK < :cursor")
                .expression_attribute_values(":cursor", s(message_sk(cursor.at, cursor.id))),
        };
        let output = query.send().await.map_err(sdk_error)?;
        output.items.unwrap_or_default().iter().map(message_from).collect()
    }

    async fn first_message(&self, conversation: ConversationId) -> StoreResult<Option<Message>> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .scan_index_forward(true)
            .limit(1)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(messages_pk(conversation)))
            .send()
            .await
            .map_err(sdk_error)?;
        output.items.unwrap_or_default().first().map(message_from).transpose()
    }
}

fn feedback_fields(f: &Feedback, mut item: Item) -> Item {
    item.insert("id".into(), s(f.id.to_string()));
    item.insert("app_id".into(), s(f.app_id.to_string()));
    item.insert("conversation_id".into(), s(f.conversation_id.to_string()));
    item.insert("message_id".into(), s(f.message_id.to_string()));
    if let Some(end_user) = f.from_end_user_id {
        item.insert("end_user_id".into(), s(end_user.to_string()));
    }
    item.insert("rating".into(), s(f.rating.as_str()));
    if let Some(content) = &f.content {
        item.insert("content".into(), s(content));
    }
    item.insert("from_source".into(), s(f.source.as_str()));
    item.insert("created_at".into(), n(f.created_at.micros()));
    item.insert("updated_at".into(), n(f.updated_at.micros()));
    item
}

fn feedback_from(item: &Item) -> StoreResult<Feedback> {
    let r = Read(item);
    let rating = r.s("rating")?;
    Ok(Feedback {
        id: r.parse("id")?,
        app_id: r.parse("app_id")?,
        conversation_id: r.parse("conversation_id")?,
        message_id: r.parse("message_id")?,
        rating: Rating::parse(Some(&rating.into()))
            .ok()
            .flatten()
            .ok_or_else(|| StoreError::Corrupt("rating".into()))?,
        content: r.opt_s("content"),
        source: if r.s("from_source")? == "admin" { FeedbackSource::Admin } else { FeedbackSource::User },
        from_end_user_id: r.opt_parse("end_user_id")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

#[async_trait]
impl FeedbackStore for DynamoStore {
    async fn user_feedback(&self, owner: Owner, message: MessageId) -> StoreResult<Option<Feedback>> {
        let item = self.get(pointer_pk(message), feedback_sk(owner.end_user_id)).await?;
        let feedback = item.as_ref().map(feedback_from).transpose()?;
        Ok(feedback.filter(|f| f.app_id == owner.app_id))
    }

    async fn user_ratings(&self, owner: Owner, messages: &[MessageId]) -> StoreResult<Vec<(MessageId, Rating)>> {
        let keys = messages.iter().map(|m| key(pointer_pk(*m), feedback_sk(owner.end_user_id))).collect();
        let items = self.batch_get(keys).await?;
        let feedbacks: Vec<Feedback> = items.iter().map(feedback_from).collect::<StoreResult<_>>()?;
        Ok(feedbacks.into_iter().filter(|f| f.app_id == owner.app_id).map(|f| (f.message_id, f.rating)).collect())
    }

    /// The feedback and its entry in the app's list, written together with a check that the
    /// conversation is live. The feedback is created only where none exists, or replaces the
    /// one with its id; when a concurrent request created the end user's feedback first, that
    /// one is updated instead (its id and `created_at` kept, so its list entry stays the one).
    async fn save_feedback(&self, f: &Feedback) -> StoreResult<bool> {
        let end_user =
            f.from_end_user_id.ok_or_else(|| StoreError::Conflict("only end-user feedback is stored".into()))?;
        let owner = Owner { app_id: f.app_id, end_user_id: end_user };
        let mut f = f.clone();
        for _ in 0..TRANSACT_ATTEMPTS {
            let own = Put::builder()
                .table_name(&self.table)
                .set_item(Some(feedback_fields(&f, key(pointer_pk(f.message_id), feedback_sk(end_user)))))
                .condition_expression("attribute_not_exists(PK) OR id = :id")
                .expression_attribute_values(":id", s(f.id.to_string()))
                .build()
                .map_err(sdk_error)?;
            let listed = feedback_fields(&f, key(app_feedback_pk(f.app_id), app_feedback_sk(f.created_at, f.id)));
            let writes = vec![
                self.live_check(owner, f.conversation_id)?,
                TransactWriteItem::builder().put(own).build(),
                self.put_item(listed, None)?,
            ];
            match self.transact_checked(writes).await? {
                Transaction::Done => return Ok(true),
                Transaction::Refused(failed) if failed.first() == Some(&true) => return Ok(false),
                Transaction::Refused(_) => {
                    if let Some(existing) = self.get(pointer_pk(f.message_id), feedback_sk(end_user)).await? {
                        let existing = feedback_from(&existing)?;
                        (f.id, f.created_at) = (existing.id, existing.created_at);
                    }
                }
            }
        }
        Err(StoreError::Unavailable("the feedback kept changing under concurrent writes".into()))
    }

    async fn delete_feedback(&self, f: &Feedback) -> StoreResult<()> {
        let end_user =
            f.from_end_user_id.ok_or_else(|| StoreError::Conflict("only end-user feedback is stored".into()))?;
        self.transact(vec![
            self.delete_item(pointer_pk(f.message_id), feedback_sk(end_user))?,
            self.delete_item(app_feedback_pk(f.app_id), app_feedback_sk(f.created_at, f.id))?,
        ])
        .await
    }

    /// Offset pages cost reads proportional to `offset + limit` (Dify's API is offset-based).
    /// Entries of deleted conversations are skipped at once, before the purge removes them.
    async fn app_feedbacks(&self, app: AppId, offset: u64, limit: u32) -> StoreResult<Vec<Feedback>> {
        let wanted = usize::try_from(offset).unwrap_or(usize::MAX).saturating_add(limit as usize);
        let mut live_conversations: HashMap<(Owner, ConversationId), bool> = HashMap::new();
        let mut kept = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .scan_index_forward(false)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(app_feedback_pk(app)))
                .limit(i32::try_from((wanted - kept.len()).max(1)).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            let page: Vec<Feedback> =
                output.items.unwrap_or_default().iter().map(feedback_from).collect::<StoreResult<_>>()?;
            let unknown: Vec<(Owner, ConversationId)> = page
                .iter()
                .filter_map(|f| {
                    f.from_end_user_id.map(|u| (Owner { app_id: f.app_id, end_user_id: u }, f.conversation_id))
                })
                .filter(|k| !live_conversations.contains_key(k))
                .collect::<std::collections::HashSet<_>>()
                .into_iter()
                .collect();
            if !unknown.is_empty() {
                let items = self
                    .batch_get(unknown.iter().map(|(o, c)| key(owner_pk(*o), conversation_sk(*c))).collect())
                    .await?;
                for (owner, conversation) in &unknown {
                    live_conversations.insert((*owner, *conversation), false);
                }
                for item in items {
                    let r = Read(&item);
                    if !r.flag("deleted") {
                        let owner = Owner { app_id: r.parse("app_id")?, end_user_id: r.parse("end_user_id")? };
                        live_conversations.insert((owner, r.parse("id")?), true);
                    }
                }
            }
            kept.extend(page.into_iter().filter(|f| {
                f.from_end_user_id.is_some_and(|u| {
                    live_conversations.get(&(Owner { app_id: f.app_id, end_user_id: u }, f.conversation_id))
                        == Some(&true)
                })
            }));
            start = output.last_evaluated_key;
            if start.is_none() || kept.len() >= wanted {
                break;
            }
        }
        Ok(kept.into_iter().skip(usize::try_from(offset).unwrap_or(usize::MAX)).take(limit as usize).collect())
    }
}

fn variable_item(v: &ConversationVariable) -> Item {
    let mut item = key(variables_pk(v.conversation_id), variable_sk(v.id));
    item.insert("id".into(), s(v.id.to_string()));
    item.insert("app_id".into(), s(v.app_id.to_string()));
    item.insert("conversation_id".into(), s(v.conversation_id.to_string()));
    item.insert("name".into(), s(&v.name));
    item.insert("value_type".into(), s(v.value_type.as_str()));
    item.insert("value".into(), json(&v.value));
    item.insert("description".into(), s(&v.description));
    item.insert("created_at".into(), n(v.created_at.micros()));
    item.insert("updated_at".into(), n(v.updated_at.micros()));
    item
}

fn variable_from(item: &Item) -> StoreResult<ConversationVariable> {
    let r = Read(item);
    Ok(ConversationVariable {
        id: r.parse("id")?,
        app_id: r.parse("app_id")?,
        conversation_id: r.parse("conversation_id")?,
        name: r.s("name")?,
        value_type: ValueType::parse(&r.s("value_type")?).map_err(|e| StoreError::Corrupt(e.0))?,
        value: r.json("value")?,
        description: r.s("description")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

#[async_trait]
impl VariableStore for DynamoStore {
    async fn insert_variable(&self, v: &ConversationVariable) -> StoreResult<()> {
        self.put(variable_item(v)).await
    }

    /// A conversation's variables are few (declared by the app), so the partition is read
    /// whole and filtered, ordered and paged here; the name filter is case-insensitive.
    async fn variables(
        &self,
        conversation: ConversationId,
        name: Option<&VariableNameFilter>,
        after: Option<Cursor<VariableId>>,
        fetch: usize,
    ) -> StoreResult<Vec<ConversationVariable>> {
        let mut all: Vec<ConversationVariable> = self
            .partition(variables_pk(conversation), None)
            .await?
            .iter()
            .map(variable_from)
            .collect::<StoreResult<_>>()?;
        all.retain(|v| name.is_none_or(|f| f.matches(&v.name)));
        all.retain(|v| after.is_none_or(|c| (v.created_at, v.id) > (c.at, c.id)));
        all.sort_by_key(|v| (v.created_at, v.id));
        all.truncate(fetch);
        Ok(all)
    }

    async fn variable(
        &self,
        conversation: ConversationId,
        id: VariableId,
    ) -> StoreResult<Option<ConversationVariable>> {
        self.get(variables_pk(conversation), variable_sk(id)).await?.as_ref().map(variable_from).transpose()
    }

    async fn update_variable(&self, v: &ConversationVariable) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(variables_pk(v.conversation_id), variable_sk(v.id))))
            .update_expression("SET #value = :value, updated_at = :at")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":value", json(&v.value))
            .expression_attribute_values(":at", n(v.updated_at.micros()))
            .send()
            .await;
        condition_met(result).map(drop)
    }
}

#[async_trait]
impl RateLimiter for DynamoStore {
    /// One conditional write per hit; the window item expires by TTL.
    async fn try_hit(&self, rate_key: &str, window_start: i64, limit: u32) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(rate_pk(rate_key), format!("W#{window_start}"))))
            .update_expression("ADD hits :one SET expires_at = :ttl")
            .condition_expression("attribute_not_exists(hits) OR hits < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(i64::from(limit)))
            .expression_attribute_values(":ttl", n(window_start + 3600))
            .send()
            .await;
        condition_met(result)
    }

    async fn give_back(&self, rate_key: &str, window_start: i64) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(rate_pk(rate_key), format!("W#{window_start}"))))
            .update_expression("ADD hits :minus_one")
            .condition_expression("hits > :zero")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        condition_met(result).map(drop)
    }
}

fn embedding_to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn embedding_from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn annotation_item(a: &Annotation) -> Item {
    let mut item = key(annotations_pk(a.app_id), annotation_sk(a.id));
    item.insert("id".into(), s(a.id.to_string()));
    item.insert("app_id".into(), s(a.app_id.to_string()));
    item.insert("question".into(), s(&a.question));
    item.insert("answer".into(), s(&a.answer));
    item.insert("hit_count".into(), n(a.hit_count as i64));
    if let Some(vector) = &a.embedding {
        item.insert("embedding".into(), AttributeValue::B(embedding_to_bytes(vector).into()));
    }
    item.insert("created_at".into(), n(a.created_at.micros()));
    item
}

fn annotation_from(item: &Item) -> StoreResult<Annotation> {
    let r = Read(item);
    Ok(Annotation {
        id: r.parse("id")?,
        app_id: r.parse("app_id")?,
        question: r.s("question")?,
        answer: r.s("answer")?,
        hit_count: r.n("hit_count")?.max(0) as u64,
        embedding: item.get("embedding").and_then(|v| v.as_b().ok()).map(|b| embedding_from_bytes(b.as_ref())),
        created_at: r.time("created_at")?,
    })
}

impl DynamoStore {
    /// All annotations of an app, newest first.
    async fn app_annotations(&self, app: AppId) -> StoreResult<Vec<Annotation>> {
        let mut all: Vec<Annotation> = self
            .partition(annotations_pk(app), Some("A#"))
            .await?
            .iter()
            .map(annotation_from)
            .collect::<StoreResult<_>>()?;
        all.sort_by_key(|a| std::cmp::Reverse((a.created_at, a.id)));
        Ok(all)
    }
}

#[async_trait]
impl AnnotationStore for DynamoStore {
    async fn insert_annotation(&self, a: &Annotation) -> StoreResult<()> {
        self.put(annotation_item(a)).await
    }

    async fn annotation(&self, app: AppId, id: AnnotationId) -> StoreResult<Option<Annotation>> {
        self.get(annotations_pk(app), annotation_sk(id)).await?.as_ref().map(annotation_from).transpose()
    }

    async fn update_annotation(&self, a: &Annotation) -> StoreResult<bool> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(annotations_pk(a.app_id), annotation_sk(a.id))))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":q", s(&a.question))
            .expression_attribute_values(":a", s(&a.answer));
        update = match &a.embedding {
            Some(vector) => update
                .update_expression("SET question = :q, answer = :a, embedding = :e")
                .expression_attribute_values(":e", AttributeValue::B(embedding_to_bytes(vector).into())),
            None => update.update_expression("SET question = :q, answer = :a REMOVE embedding"),
        };
        condition_met(update.send().await)
    }

    async fn delete_annotation(&self, app: AppId, id: AnnotationId) -> StoreResult<bool> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(annotations_pk(app), annotation_sk(id))))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// Reads the app's annotation partition (keyword search is a case-insensitive substring
    /// over question and answer, which DynamoDB cannot index).
    async fn annotations(
        &self,
        app: AppId,
        keyword: Option<&str>,
        offset: u64,
        limit: u32,
    ) -> StoreResult<(Vec<Annotation>, u64)> {
        let needle = keyword.map(str::to_lowercase);
        let mut all = self.app_annotations(app).await?;
        if let Some(needle) = &needle {
            all.retain(|a| a.question.to_lowercase().contains(needle) || a.answer.to_lowercase().contains(needle));
        }
        let total = all.len() as u64;
        let page = all.into_iter().skip(usize::try_from(offset).unwrap_or(usize::MAX)).take(limit as usize).collect();
        Ok((page, total))
    }

    async fn all_annotations(&self, app: AppId) -> StoreResult<Vec<Annotation>> {
        let mut all = self.app_annotations(app).await?;
        all.reverse();
        Ok(all)
    }

    async fn record_annotation_hit(&self, app: AppId, id: AnnotationId) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(annotations_pk(app), annotation_sk(id))))
            .update_expression("ADD hit_count :one")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        condition_met(result).map(drop)
    }

    async fn annotation_settings(&self, app: AppId) -> StoreResult<Option<AnnotationSettings>> {
        let Some(item) = self.get(annotations_pk(app), SETTINGS_SK).await? else { return Ok(None) };
        let r = Read(&item);
        let threshold: f64 =
            r.s("score_threshold")?.parse().map_err(|_| StoreError::Corrupt("score_threshold".into()))?;
        Ok(Some(AnnotationSettings {
            score_threshold: threshold as f32,
            embedding_provider: r.s("embedding_provider")?,
            embedding_model: r.s("embedding_model")?,
        }))
    }

    async fn save_annotation_settings(&self, app: AppId, settings: Option<&AnnotationSettings>) -> StoreResult<()> {
        match settings {
            None => self.delete(annotations_pk(app), SETTINGS_SK).await,
            Some(settings) => {
                let mut item = key(annotations_pk(app), SETTINGS_SK);
                item.insert("score_threshold".into(), s(settings.score_threshold.to_string()));
                item.insert("embedding_provider".into(), s(&settings.embedding_provider));
                item.insert("embedding_model".into(), s(&settings.embedding_model));
                self.put(item).await
            }
        }
    }

    async fn save_job(&self, job: &AnnotationJob) -> StoreResult<()> {
        let mut item = key(job_pk(job.app_id), job.id.to_string());
        item.insert("id".into(), s(job.id.to_string()));
        item.insert("app_id".into(), s(job.app_id.to_string()));
        item.insert("action".into(), s(job.action.as_str()));
        item.insert("job_status".into(), s(job.status.as_str()));
        item.insert("error".into(), s(&job.error));
        item.insert("created_at".into(), n(job.created_at.micros()));
        item.insert("expires_at".into(), ttl(job.created_at, TASK_TTL));
        self.put(item).await
    }

    async fn job(&self, app: AppId, id: JobId) -> StoreResult<Option<AnnotationJob>> {
        let Some(item) = self.get(job_pk(app), id.to_string()).await? else { return Ok(None) };
        let r = Read(&item);
        Ok(Some(AnnotationJob {
            id: r.parse("id")?,
            app_id: r.parse("app_id")?,
            action: ReplyAction::parse(&r.s("action")?).map_err(|e| StoreError::Corrupt(e.0))?,
            status: JobStatus::parse(&r.s("job_status")?).map_err(|e| StoreError::Corrupt(e.0))?,
            error: r.s("error")?,
            created_at: r.time("created_at")?,
        }))
    }
}

#[async_trait]
impl TaskControl for DynamoStore {
    async fn request_stop(&self, task: TaskId, owner: Owner) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(task_pk(task), task_sk(task))))
            .update_expression("SET #stop = :yes")
            .condition_expression("app_id = :app AND end_user_id = :user")
            .expression_attribute_names("#stop", "stop")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":app", s(owner.app_id.to_string()))
            .expression_attribute_values(":user", s(owner.end_user_id.to_string()))
            .send()
            .await;
        // Unknown or foreign tasks are ignored, like Dify.
        condition_met(result).map(drop)
    }

    async fn stop_requested(&self, task: TaskId) -> StoreResult<bool> {
        Ok(self.get(task_pk(task), task_sk(task)).await?.is_some_and(|item| Read(&item).flag("stop")))
    }

    async fn finish_task(&self, task: TaskId) -> StoreResult<()> {
        self.delete(task_pk(task), task_sk(task)).await
    }

    /// Reads every task partition (they hold only running tasks and what crashes left).
    /// Lambda functions never run this: their abandoned messages end when read, and the tasks
    /// expire (TTL).
    async fn end_abandoned(&self, now: Timestamp) -> StoreResult<usize> {
        let before = Message::abandoned_before(now);
        let mut shards = futures_util::stream::iter(0..TASK_SHARDS)
            .map(|shard| self.end_abandoned_in(shard, before))
            .buffer_unordered(8);
        let mut ended = 0;
        while let Some(result) = shards.next().await {
            ended += result?;
        }
        Ok(ended)
    }
}

fn file_pk(id: FileId) -> String {
    format!("FILE#{id}")
}

#[async_trait]
impl FileStore for DynamoStore {
    async fn insert_file(&self, f: &UploadFile) -> StoreResult<()> {
        let mut item = key(file_pk(f.id), "#FILE");
        item.insert("id".into(), s(f.id.to_string()));
        item.insert("app_id".into(), s(f.owner.app_id.to_string()));
        item.insert("end_user_id".into(), s(f.owner.end_user_id.to_string()));
        item.insert("name".into(), s(&f.name));
        item.insert("size".into(), n(i64::try_from(f.size).unwrap_or(i64::MAX)));
        item.insert("extension".into(), s(&f.extension));
        item.insert("mime_type".into(), s(&f.mime_type));
        item.insert("created_at".into(), n(f.created_at.micros()));
        self.put(item).await
    }

    async fn file(&self, owner: Owner, id: FileId) -> StoreResult<Option<UploadFile>> {
        let Some(item) = self.get(file_pk(id), "#FILE").await? else { return Ok(None) };
        let r = Read(&item);
        let file = UploadFile {
            id: r.parse("id")?,
            owner: Owner { app_id: r.parse("app_id")?, end_user_id: r.parse("end_user_id")? },
            name: r.s("name")?,
            size: r.n("size")?.max(0) as u64,
            extension: r.s("extension")?,
            mime_type: r.s("mime_type")?,
            created_at: r.time("created_at")?,
        };
        Ok((file.owner == owner).then_some(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_sort_like_timestamps() {
        let stamps = [-5_i64, -1, 0, 1, 1_700_000_000_000_000, i64::MAX];
        let keys: Vec<String> = stamps.iter().map(|t| order(Timestamp::from_micros(*t))).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(keys.iter().all(|k| k.len() == 20));
    }

    #[test]
    fn embeddings_round_trip() {
        let vector = vec![0.5_f32, -1.25, 3.0];
        assert_eq!(embedding_from_bytes(&embedding_to_bytes(&vector)), vector);
    }
}
