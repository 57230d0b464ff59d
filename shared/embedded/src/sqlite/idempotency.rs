//! Requests made with an `Idempotency-Key` (table `idempotent_requests`, one row per app, end
//! user and key). Expired rows are swept by each claim (index `idempotent_requests_expiring`).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use colloquy_core::domain::{IdempotencyScope, IdempotentOutcome, IdempotentRequest, Invalid, Timestamp};
use colloquy_core::ports::{IdempotencyStore, StoreResult};

use super::SqliteStore;
use super::codec::Fields;

const COLUMNS: &str = "app_id, end_user_id, key_hash, fingerprint, claim, started_at, expires_at, status, \
    content_type, body, stream";

/// The columns of an outcome: status, content type, body, and a streamed answer's ids (JSON).
type OutcomeColumns = (Option<i64>, Option<String>, Option<Vec<u8>>, Option<String>);

fn outcome_columns(outcome: Option<&IdempotentOutcome>) -> OutcomeColumns {
    match outcome {
        None => (None, None, None, None),
        Some(IdempotentOutcome::Response { status, content_type, body }) => {
            (Some(i64::from(*status)), content_type.clone(), Some(body.clone()), None)
        }
        Some(IdempotentOutcome::Stream { conversation_id, message_id, task_id, created_at }) => {
            let ids = serde_json::json!({"conversation_id": conversation_id, "message_id": message_id,
                                         "task_id": task_id, "created_at": created_at});
            (None, None, None, Some(ids.to_string()))
        }
    }
}

fn request_from_row(row: &Row<'_>) -> rusqlite::Result<IdempotentRequest> {
    let f = Fields::of("idempotent_requests", row);
    let scope = IdempotencyScope {
        app_id: f.parse("app_id")?,
        end_user_id: f.parse("end_user_id")?,
        key_hash: f.get("key_hash")?,
    };
    let fingerprint = f.get("fingerprint")?;
    let claim = f.parse_with("claim", |raw| uuid::Uuid::parse_str(raw).map_err(|e| Invalid(e.to_string())))?;
    let started_at = f.time("started_at")?;
    let expires_at = f.time("expires_at")?;
    // Nullable by design: a running request has no outcome; a response has a status, a
    // streamed answer its ids.
    let status: Option<i64> = f.get("status")?;
    let content_type: Option<String> = f.get("content_type")?;
    let body: Option<Vec<u8>> = f.get("body")?;
    let stream = f.json_opt::<serde_json::Value>("stream")?;
    let outcome = match (status, stream) {
        (Some(status), _) => Some(IdempotentOutcome::Response {
            status: u16::try_from(status).unwrap_or(500),
            content_type,
            body: body.unwrap_or_default(),
        }),
        (None, Some(ids)) => {
            let field = |name: &str| ids[name].as_str().unwrap_or_default().to_owned();
            let parse = |name: &str| -> rusqlite::Result<uuid::Uuid> {
                uuid::Uuid::parse_str(&field(name)).map_err(|e| corrupt(e.to_string()))
            };
            Some(IdempotentOutcome::Stream {
                conversation_id: colloquy_core::domain::ConversationId::from_uuid(parse("conversation_id")?),
                message_id: colloquy_core::domain::MessageId::from_uuid(parse("message_id")?),
                task_id: colloquy_core::domain::TaskId::from_uuid(parse("task_id")?),
                created_at: ids["created_at"].as_i64().unwrap_or_default(),
            })
        }
        (None, None) => None,
    };
    Ok(IdempotentRequest { scope, fingerprint, claim, started_at, expires_at, outcome })
}

fn corrupt(detail: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, detail.into())
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    /// One transaction: expired rows go, the scope's row is read, and the request is written
    /// when the scope is free (no row, or a stale one).
    async fn claim_request(&self, r: &IdempotentRequest, now: Timestamp) -> StoreResult<Option<IdempotentRequest>> {
        let r = r.clone();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached("DELETE FROM idempotent_requests WHERE expires_at <= ?1")?.execute([now.micros()])?;
            let found = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM idempotent_requests WHERE app_id = ?1 AND end_user_id = ?2 AND key_hash = ?3"
                ))?
                .query_row(
                    params![r.scope.app_id.to_string(), r.scope.end_user_id.to_string(), r.scope.key_hash],
                    request_from_row,
                )
                .optional()?;
            if let Some(found) = found.filter(|found| !found.is_stale(now)) {
                return Ok(Some(found));
            }
            tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO idempotent_requests ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL, NULL, NULL)"
            ))?
            .execute(params![
                r.scope.app_id.to_string(),
                r.scope.end_user_id.to_string(),
                r.scope.key_hash,
                r.fingerprint,
                r.claim.to_string(),
                r.started_at.micros(),
                r.expires_at.micros()
            ])?;
            tx.commit()?;
            Ok(None)
        })
        .await
    }

    async fn finish_request(&self, r: &IdempotentRequest) -> StoreResult<()> {
        let (status, content_type, body, stream) = outcome_columns(r.outcome.as_ref());
        let r = r.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE idempotent_requests SET status = ?5, content_type = ?6, body = ?7, stream = ?8
                 WHERE app_id = ?1 AND end_user_id = ?2 AND key_hash = ?3 AND claim = ?4",
            )?
            .execute(params![
                r.scope.app_id.to_string(),
                r.scope.end_user_id.to_string(),
                r.scope.key_hash,
                r.claim.to_string(),
                status,
                content_type,
                body,
                stream
            ])
            .map(drop)
        })
        .await
    }

    async fn release_request(&self, r: &IdempotentRequest) -> StoreResult<()> {
        let r = r.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "DELETE FROM idempotent_requests WHERE app_id = ?1 AND end_user_id = ?2 AND key_hash = ?3 AND claim = ?4",
            )?
            .execute(params![
                r.scope.app_id.to_string(),
                r.scope.end_user_id.to_string(),
                r.scope.key_hash,
                r.claim.to_string()
            ])
            .map(drop)
        })
        .await
    }
}
