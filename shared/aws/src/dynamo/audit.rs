//! The audit log (`AuditLog`): one partition per app (`AUDIT#<app>`), sorted by entry id
//! (UUIDv7, so by time), each entry with a TTL at the end of its retention. Operators' actions
//! are few (a console's clicks), far below the ~1,000 writes a second of one partition.

use async_trait::async_trait;

use colloquy_core::domain::{AppId, AuditAction, AuditEntry, AuditId, Timestamp};
use colloquy_core::ports::{AuditLog, StoreResult};

use super::codec::{Read, n, s};
use super::keys::{audit_pk, key};
use super::table::TTL_ATTRIBUTE;
use super::{DynamoStore, Item};

fn entry_item(e: &AuditEntry) -> Item {
    let mut item = key(audit_pk(e.app_id), e.id.to_string());
    item.insert("id".into(), s(e.id.to_string()));
    item.insert("app_id".into(), s(e.app_id.to_string()));
    item.insert("at".into(), n(e.at.micros()));
    item.insert("actor".into(), s(&e.actor));
    item.insert("action".into(), s(e.action.as_str()));
    if let Some(target) = &e.target {
        item.insert("target".into(), s(target));
    }
    if let Some(detail) = &e.detail {
        item.insert("detail".into(), s(detail));
    }
    item.insert(TTL_ATTRIBUTE.into(), n(e.expires_at().unix_seconds()));
    item
}

fn entry_from(item: &Item) -> StoreResult<(AuditEntry, i64)> {
    let r = Read::new("audit entry", item);
    let entry = AuditEntry {
        id: r.parse("id")?,
        app_id: r.parse("app_id")?,
        at: r.time("at")?,
        actor: r.s("actor")?,
        action: r.parse_with("action", AuditAction::parse)?,
        // Optional by design: actions without a target or a query.
        target: r.opt_s("target")?,
        detail: r.opt_s("detail")?,
    };
    Ok((entry, r.n(TTL_ATTRIBUTE)?))
}

#[async_trait]
impl AuditLog for DynamoStore {
    async fn record(&self, entry: &AuditEntry) -> StoreResult<()> {
        self.put(entry_item(entry)).await
    }

    /// One Query, newest first. TTL deletes expired entries within days, not at once: the
    /// oldest entries are the expired ones, so the page ends at the first of them.
    async fn audit_entries(
        &self,
        app: AppId,
        before: Option<AuditId>,
        fetch: usize,
        now: Timestamp,
    ) -> StoreResult<Vec<AuditEntry>> {
        let items = self.newest_first(audit_pk(app), before.map(|id| id.to_string()), fetch).await?;
        let mut entries = Vec::new();
        for item in items {
            let (entry, expires) = entry_from(&item)?;
            if expires <= now.unix_seconds() {
                break;
            }
            entries.push(entry);
        }
        Ok(entries)
    }
}
