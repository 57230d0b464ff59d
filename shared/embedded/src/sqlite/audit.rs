//! The audit log of operators' actions (table `audit_log`): newest first per app; entries past
//! their retention are never listed and are removed as new ones are written.

use async_trait::async_trait;
use rusqlite::{Row, params_from_iter};

use colloquy_core::domain::{AppId, AuditAction, AuditEntry, AuditId, Timestamp};
use colloquy_core::ports::{AuditLog, StoreResult};

use super::codec::{Fields, args};
use super::{SqliteStore, insert_sql};

const COLUMNS: &str = "id, app_id, at, actor, action, target, detail, expires_at";

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let f = Fields::of("audit_log", row);
    Ok(AuditEntry {
        id: f.parse("id")?,
        app_id: f.parse("app_id")?,
        at: f.time("at")?,
        actor: f.get("actor")?,
        action: f.parse_with("action", AuditAction::parse)?,
        // Nullable by design: actions without a target or a query.
        target: f.get("target")?,
        detail: f.get("detail")?,
    })
}

/// A page of an app's entries, newest first (by id), through `audit_by_app`: `?1` the app,
/// `?2` now (expired entries are skipped), `?3` how many; after a cursor `?4`.
pub(super) fn list_sql(after_cursor: bool) -> String {
    let seek = if after_cursor { " AND id < ?4" } else { "" };
    format!("SELECT {COLUMNS} FROM audit_log WHERE app_id = ?1{seek} AND expires_at > ?2 ORDER BY id DESC LIMIT ?3")
}

#[async_trait]
impl AuditLog for SqliteStore {
    /// The entry, and the app's expired entries removed in the same transaction.
    async fn record(&self, e: &AuditEntry) -> StoreResult<()> {
        let values = args![
            e.id,
            e.app_id,
            e.at,
            e.actor.as_str(),
            e.action.as_str(),
            e.target.clone(),
            e.detail.clone(),
            e.expires_at()
        ];
        let expired = args![e.app_id, e.at];
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached(&insert_sql("audit_log", COLUMNS))?.execute(params_from_iter(values))?;
            tx.prepare_cached("DELETE FROM audit_log WHERE app_id = ?1 AND expires_at <= ?2")?
                .execute(params_from_iter(expired))?;
            tx.commit()
        })
        .await
    }

    async fn audit_entries(
        &self,
        app: AppId,
        before: Option<AuditId>,
        fetch: usize,
        now: Timestamp,
    ) -> StoreResult<Vec<AuditEntry>> {
        let mut values = args![app, now, fetch as i64];
        if let Some(id) = before {
            values.extend(args![id]);
        }
        self.page(list_sql(before.is_some()), values, entry_from_row).await
    }
}
