//! Requests made with an `Idempotency-Key` (`IdempotencyStore`): one item per (app, end user,
//! key) under `IDEM#<app>#<end user>` (an erasure of the end user removes the partition),
//! claimed by one conditional PutItem, expired by the table's TTL (reads treat an item past its
//! expiry as absent: TTL deletes within days, not at once).

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use colloquy_core::domain::{
    IDEMPOTENCY_STALE_AFTER, IdempotencyScope, IdempotentOutcome, IdempotentRequest, Invalid, Timestamp,
};
use colloquy_core::ports::{IdempotencyStore, StoreError, StoreResult};

use super::codec::{Read, n, s};
use super::keys::{idempotency_pk, key};
use super::requests::{condition_met, sdk_error};
use super::table::TTL_ATTRIBUTE;
use super::{DynamoStore, Item};

/// The outcome's kind: `response` or `stream` (absent while the request runs).
const OUTCOME: &str = "outcome";

fn request_item(r: &IdempotentRequest) -> Item {
    let mut item = key(idempotency_pk(r.scope.app_id, r.scope.end_user_id), &r.scope.key_hash);
    item.insert("fingerprint".into(), s(&r.fingerprint));
    item.insert("claim".into(), s(r.claim.to_string()));
    item.insert("started_at".into(), n(r.started_at.micros()));
    item.insert(TTL_ATTRIBUTE.into(), n(r.expires_at.unix_seconds()));
    item
}

fn request_from(item: &Item) -> StoreResult<IdempotentRequest> {
    let r = Read::new("idempotent request", item);
    let pk = r.s("PK")?;
    let (app, end_user) = pk
        .strip_prefix("IDEM#")
        .and_then(|rest| rest.split_once('#'))
        .ok_or_else(|| StoreError::Corrupt(format!("idempotent request: key {pk}")))?;
    let parse_err = |e: Invalid| StoreError::Corrupt(format!("idempotent request: {}", e.0));
    let scope = IdempotencyScope {
        app_id: app.parse().map_err(parse_err)?,
        end_user_id: end_user.parse().map_err(parse_err)?,
        key_hash: r.s("SK")?,
    };
    let outcome = match r.opt_s(OUTCOME)?.as_deref() {
        // Optional by design: absent while the first request runs.
        None => None,
        Some("response") => {
            let body = match item.get("body") {
                Some(AttributeValue::B(body)) => body.clone().into_inner(),
                // Optional by design: an empty body is not stored.
                _ => Vec::new(),
            };
            Some(IdempotentOutcome::Response {
                status: u16::try_from(r.n("status")?).unwrap_or(500),
                // Optional by design: a 204 has no content type.
                content_type: r.opt_s("content_type")?,
                body,
            })
        }
        Some("stream") => Some(IdempotentOutcome::Stream {
            conversation_id: r.parse("conversation_id")?,
            message_id: r.parse("message_id")?,
            task_id: r.parse("task_id")?,
            created_at: r.n("created_at")?,
        }),
        Some(other) => return Err(StoreError::Corrupt(format!("idempotent request: outcome {other}"))),
    };
    Ok(IdempotentRequest {
        scope,
        fingerprint: r.s("fingerprint")?,
        claim: r.parse_with("claim", |raw| uuid::Uuid::parse_str(raw).map_err(|e| Invalid(e.to_string())))?,
        started_at: r.time("started_at")?,
        expires_at: Timestamp::from_micros(r.n(TTL_ATTRIBUTE)?.saturating_mul(1_000_000)),
        outcome,
    })
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    /// One PutItem, conditional on the scope being free (no item, an expired one, or a stale
    /// running one); a refusal returns the item that holds it.
    async fn claim_request(&self, r: &IdempotentRequest, now: Timestamp) -> StoreResult<Option<IdempotentRequest>> {
        let stale = now.micros() - IDEMPOTENCY_STALE_AFTER.as_micros() as i64;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(request_item(r)))
            .condition_expression(
                "attribute_not_exists(PK) OR #expires <= :now OR (attribute_not_exists(#outcome) AND started_at < :stale)",
            )
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_names("#outcome", OUTCOME)
            .expression_attribute_values(":now", n(now.unix_seconds()))
            .expression_attribute_values(":stale", n(stale))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(service)) => match service.err() {
                PutItemError::ConditionalCheckFailedException(failed) => match failed.item() {
                    Some(item) => request_from(item).map(Some),
                    // Gone between the check and the answer: not ours either; a retry decides.
                    None => Err(StoreError::Conflict("the key was released while it was claimed".into())),
                },
                _ => Err(sdk_error(SdkError::ServiceError(service))),
            },
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn finish_request(&self, r: &IdempotentRequest) -> StoreResult<()> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(idempotency_pk(r.scope.app_id, r.scope.end_user_id), &r.scope.key_hash)))
            .condition_expression("claim = :claim")
            .expression_attribute_names("#outcome", OUTCOME)
            .expression_attribute_values(":claim", s(r.claim.to_string()));
        request = match &r.outcome {
            None => return Ok(()),
            Some(IdempotentOutcome::Response { status, content_type, body }) => {
                let mut set = vec!["#outcome = :kind", "#status = :status"];
                request = request
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":kind", s("response"))
                    .expression_attribute_values(":status", n(i64::from(*status)));
                if let Some(content_type) = content_type {
                    set.push("content_type = :type");
                    request = request.expression_attribute_values(":type", s(content_type));
                }
                if !body.is_empty() {
                    set.push("body = :body");
                    request = request.expression_attribute_values(":body", AttributeValue::B(body.clone().into()));
                }
                request.update_expression(format!("SET {}", set.join(", ")))
            }
            Some(IdempotentOutcome::Stream { conversation_id, message_id, task_id, created_at }) => request
                .update_expression(
                    "SET #outcome = :kind, conversation_id = :c, message_id = :m, task_id = :t, created_at = :at",
                )
                .expression_attribute_values(":kind", s("stream"))
                .expression_attribute_values(":c", s(conversation_id.to_string()))
                .expression_attribute_values(":m", s(message_id.to_string()))
                .expression_attribute_values(":t", s(task_id.to_string()))
                .expression_attribute_values(":at", n(*created_at)),
        };
        condition_met(request.send().await).map(drop)
    }

    async fn release_request(&self, r: &IdempotentRequest) -> StoreResult<()> {
        let request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(idempotency_pk(r.scope.app_id, r.scope.end_user_id), &r.scope.key_hash)))
            .condition_expression("claim = :claim")
            .expression_attribute_values(":claim", s(r.claim.to_string()));
        condition_met(request.send().await).map(drop)
    }
}
