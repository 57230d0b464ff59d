//! Exports of an app's messages (table `exports`): the jobs; the files are blobs. Jobs past
//! their retention are removed as new ones are stored.

use async_trait::async_trait;
use rusqlite::{Row, params_from_iter};

use colloquy_core::domain::{
    AppId, EXPORT_RETENTION_DAYS, ExportFormat, ExportId, ExportJob, ExportStatus, TimeRange, Timestamp,
};
use colloquy_core::ports::{ExportStore, StoreResult};

use super::SqliteStore;
use super::codec::{Fields, args};

const COLUMNS: &str =
    "id, app_id, format, range_from, range_until, status, expected, exported, size, error, created_at, updated_at";

fn export_from_row(row: &Row<'_>) -> rusqlite::Result<ExportJob> {
    let f = Fields::of("exports", row);
    Ok(ExportJob {
        id: f.parse("id")?,
        app_id: f.parse("app_id")?,
        format: f.parse_with("format", ExportFormat::parse)?,
        // Nullable by design: an open end of the range.
        range: TimeRange::new(f.time_opt("range_from")?, f.time_opt("range_until")?),
        status: f.parse_with("status", ExportStatus::parse)?,
        expected: f.count("expected")?,
        exported: f.count("exported")?,
        // Nullable by design: known once the file is complete.
        size: f.get::<Option<i64>>("size")?.map(|size| size.max(0) as u64),
        // Nullable by design: only a failed export has an error.
        error: f.get("error")?,
        created_at: f.time("created_at")?,
        updated_at: f.time("updated_at")?,
    })
}

#[async_trait]
impl ExportStore for SqliteStore {
    async fn save_export(&self, job: &ExportJob) -> StoreResult<()> {
        let values = args![
            job.id,
            job.app_id,
            job.format.as_str(),
            job.range.from,
            job.range.until,
            job.status.as_str(),
            job.expected as i64,
            job.exported as i64,
            job.size.map(|size| size as i64),
            job.error.clone(),
            job.created_at,
            job.updated_at
        ];
        let retention = EXPORT_RETENTION_DAYS as i64 * 86_400 * 1_000_000;
        let expired = args![job.app_id, Timestamp::from_micros(job.updated_at.micros() - retention)];
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached(&format!(
                "INSERT INTO exports ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, expected = excluded.expected,
                     exported = excluded.exported, size = excluded.size, error = excluded.error,
                     updated_at = excluded.updated_at"
            ))?
            .execute(params_from_iter(values))?;
            tx.prepare_cached("DELETE FROM exports WHERE app_id = ?1 AND created_at < ?2")?
                .execute(params_from_iter(expired))?;
            tx.commit()
        })
        .await
    }

    async fn export(&self, app: AppId, id: ExportId) -> StoreResult<Option<ExportJob>> {
        let sql = format!("SELECT {COLUMNS} FROM exports WHERE id = ?1 AND app_id = ?2");
        self.one(sql, args![id, app], export_from_row).await
    }
}
