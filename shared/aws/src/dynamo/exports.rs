//! Exports of an app's messages (`ExportStore`): one partition per app (`EXPORT#<app>`, sort
//! key the export id), each job expiring by TTL after its retention. A new job's insert reaches
//! the table's stream, where the export function picks it up (`template.yaml`).

use std::time::Duration;

use async_trait::async_trait;

use colloquy_core::domain::{AppId, EXPORT_RETENTION_DAYS, ExportFormat, ExportId, ExportJob, ExportStatus, TimeRange};
use colloquy_core::ports::{ExportStore, StoreResult};

use super::codec::{Read, n, s, ttl};
use super::keys::key;
use super::table::TTL_ATTRIBUTE;
use super::{DynamoStore, Item};

/// The sort-key prefix-free partition of an app's exports (also how the stream consumer
/// recognises an export).
pub const EXPORT_PREFIX: &str = "EXPORT#";

fn export_pk(app: AppId) -> String {
    format!("{EXPORT_PREFIX}{app}")
}

fn export_item(job: &ExportJob) -> Item {
    let mut item = key(export_pk(job.app_id), job.id.to_string());
    item.insert("format".into(), s(job.format.as_str()));
    if let Some(from) = job.range.from {
        item.insert("range_from".into(), n(from.micros()));
    }
    if let Some(until) = job.range.until {
        item.insert("range_until".into(), n(until.micros()));
    }
    item.insert("status".into(), s(job.status.as_str()));
    item.insert("expected".into(), n(job.expected as i64));
    item.insert("exported".into(), n(job.exported as i64));
    if let Some(size) = job.size {
        item.insert("size".into(), n(size as i64));
    }
    if let Some(error) = &job.error {
        item.insert("error".into(), s(error));
    }
    item.insert("created_at".into(), n(job.created_at.micros()));
    item.insert("updated_at".into(), n(job.updated_at.micros()));
    let retention = Duration::from_secs(EXPORT_RETENTION_DAYS * 86_400);
    item.insert(TTL_ATTRIBUTE.into(), ttl(job.created_at, retention));
    item
}

/// A job from its item.
pub fn export_from(item: &Item) -> StoreResult<ExportJob> {
    let r = Read::new("export", item);
    let app_id: AppId = r.parse_with("PK", |pk| pk.trim_start_matches(EXPORT_PREFIX).parse())?;
    Ok(ExportJob {
        id: r.parse("SK")?,
        app_id,
        format: r.parse_with("format", ExportFormat::parse)?,
        // Optional by design: an open end of the range.
        range: TimeRange::new(r.opt_time("range_from")?, r.opt_time("range_until")?),
        status: r.parse_with("status", ExportStatus::parse)?,
        expected: r.count("expected")?,
        exported: r.count("exported")?,
        // Optional by design: known once the file is complete.
        size: r.opt_n("size")?.map(|size| size.max(0) as u64),
        // Optional by design: only a failed export has an error.
        error: r.opt_s("error")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

#[async_trait]
impl ExportStore for DynamoStore {
    /// One PutItem (the whole job: a few hundred bytes).
    async fn save_export(&self, job: &ExportJob) -> StoreResult<()> {
        self.put(export_item(job)).await
    }

    async fn export(&self, app: AppId, id: ExportId) -> StoreResult<Option<ExportJob>> {
        self.get(export_pk(app), id.to_string()).await?.as_ref().map(export_from).transpose()
    }
}
