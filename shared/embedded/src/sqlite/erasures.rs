//! Erasures of end users (table `erasures`, jobs kept [`ERASURE_RETENTION_DAYS`]) and the
//! removals only an erasure makes. Each step is one transaction: a crash leaves every row
//! either there, to be found by the next run, or gone.

use async_trait::async_trait;
use rusqlite::{Row, params_from_iter};

use colloquy_core::domain::{
    AppId, ERASURE_RETENTION_DAYS, EndUserId, ErasureCounts, ErasureId, ErasureJob, ErasureStatus, Owner, Timestamp,
    UploadFile, UserRef,
};
use colloquy_core::ports::{ErasureStore, StoreError, StoreResult};

use super::SqliteStore;
use super::codec::{Args, Fields, args};

const COLUMNS: &str =
    "id, app_id, user, end_users, status, conversations, messages, files, other, error, created_at, updated_at";

fn erasure_from_row(row: &Row<'_>) -> rusqlite::Result<ErasureJob> {
    let f = Fields::of("erasures", row);
    let end_users: String = f.get("end_users")?;
    let end_users = end_users
        .split(',')
        .map(|id| id.parse::<EndUserId>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(ErasureJob {
        id: f.parse("id")?,
        app_id: f.parse("app_id")?,
        // Nullable by design: forgotten once the erasure is done.
        user: f
            .get::<Option<String>>("user")?
            .map(|u| UserRef::parse(&u))
            .transpose()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))?,
        end_users,
        status: f.parse_with("status", ErasureStatus::parse)?,
        counts: ErasureCounts {
            conversations: f.count("conversations")?,
            messages: f.count("messages")?,
            files: f.count("files")?,
            other: f.count("other")?,
        },
        // Nullable by design: only a failed erasure has an error.
        error: f.get("error")?,
        created_at: f.time("created_at")?,
        updated_at: f.time("updated_at")?,
    })
}

/// `?2, ?3, …` for `n` values after `?1`.
fn list_after_first(n: usize) -> String {
    (2..2 + n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
}

#[async_trait]
impl ErasureStore for SqliteStore {
    async fn save_erasure(&self, job: &ErasureJob) -> StoreResult<()> {
        let end_users = job.end_users.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        let values = args![
            job.id,
            job.app_id,
            job.user.as_ref().map(|u| u.as_str().to_owned()),
            end_users,
            job.status.as_str(),
            job.counts.conversations as i64,
            job.counts.messages as i64,
            job.counts.files as i64,
            job.counts.other as i64,
            job.error.clone(),
            job.created_at,
            job.updated_at
        ];
        let retention = ERASURE_RETENTION_DAYS as i64 * 86_400 * 1_000_000;
        let expired = args![job.app_id, Timestamp::from_micros(job.updated_at.micros() - retention)];
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.prepare_cached(&format!(
                "INSERT INTO erasures ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (id) DO UPDATE SET user = excluded.user, status = excluded.status,
                     conversations = excluded.conversations, messages = excluded.messages,
                     files = excluded.files, other = excluded.other, error = excluded.error,
                     updated_at = excluded.updated_at"
            ))?
            .execute(params_from_iter(values))?;
            tx.prepare_cached("DELETE FROM erasures WHERE app_id = ?1 AND created_at < ?2")?
                .execute(params_from_iter(expired))?;
            tx.commit()
        })
        .await
    }

    async fn erasure(&self, app: AppId, id: ErasureId) -> StoreResult<Option<ErasureJob>> {
        let sql = format!("SELECT {COLUMNS} FROM erasures WHERE id = ?1 AND app_id = ?2");
        self.one(sql, args![id, app], erasure_from_row).await
    }

    /// Here deleting is removing: the same as [`erase_conversations`](Self::erase_conversations).
    async fn hide_conversations(&self, owner: Owner, up_to: usize) -> StoreResult<ErasureCounts> {
        Ok(self.erase_conversations(owner, up_to).await?.1)
    }

    /// One transaction: up to `up_to` conversations with their messages, feedback and
    /// variables (every conversation here is live: deleting one removes it).
    async fn erase_conversations(&self, owner: Owner, up_to: usize) -> StoreResult<(u64, ErasureCounts)> {
        let (app, end_user) = (owner.app_id.to_string(), owner.end_user_id.to_string());
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let ids: Vec<String> = tx
                .prepare_cached("SELECT id FROM conversations WHERE app_id = ?1 AND end_user_id = ?2 LIMIT ?3")?
                .query_map(rusqlite::params![app, end_user, up_to as i64], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut counts = ErasureCounts::default();
            for id in &ids {
                counts.messages +=
                    tx.prepare_cached("DELETE FROM messages WHERE conversation_id = ?1")?.execute([id])? as u64;
                for table in ["feedbacks", "conversation_variables", "conversation_lists"] {
                    tx.prepare_cached(&format!("DELETE FROM {table} WHERE conversation_id = ?1"))?.execute([id])?;
                }
                counts.conversations +=
                    tx.prepare_cached("DELETE FROM conversations WHERE id = ?1")?.execute([id])? as u64;
            }
            tx.commit()?;
            Ok((counts.conversations, counts))
        })
        .await
    }

    /// One transaction: activity marks, tasks, the end users.
    /// Every file is listed by owner here.
    async fn unlisted_files(&self, _owner: Owner) -> StoreResult<Vec<UploadFile>> {
        Ok(Vec::new())
    }

    async fn forget_end_user(&self, app: AppId, user: &UserRef, ids: &[EndUserId]) -> StoreResult<u64> {
        if ids.is_empty() {
            return Err(StoreError::Failed("an erasure names no end user".into()));
        }
        let list = list_after_first(ids.len());
        let mut values: Args = args![app];
        values.extend(ids.iter().map(|id| super::codec::arg(*id)));
        let derived = EndUserId::derived(app, user);
        let user = user.as_str().to_owned();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let mut removed = 0;
            for table in ["stats_active", "tasks", "idempotent_requests"] {
                let sql = format!("DELETE FROM {table} WHERE app_id = ?1 AND end_user_id IN ({list})");
                removed += tx.execute(&sql, params_from_iter(values.clone()))? as u64;
            }
            // Requests with an Idempotency-Key are kept under the id derived from the user string.
            removed += tx.execute(
                "DELETE FROM idempotent_requests WHERE app_id = ?1 AND end_user_id = ?2",
                rusqlite::params![app.to_string(), derived.to_string()],
            )? as u64;
            let sql = format!("DELETE FROM end_users WHERE app_id = ?1 AND id IN ({list})");
            removed += tx.execute(&sql, params_from_iter(values.clone()))? as u64;
            removed += tx.execute(
                "DELETE FROM end_users WHERE app_id = ?1 AND session_id = ?2",
                rusqlite::params![app.to_string(), user],
            )? as u64;
            // The app's earlier erasures of them (one that failed, say) forget the string too.
            tx.execute(
                "UPDATE erasures SET user = NULL WHERE app_id = ?1 AND user = ?2",
                rusqlite::params![app.to_string(), user],
            )?;
            tx.commit()?;
            Ok(removed)
        })
        .await
    }
}
