//! Annotations (table `annotations`), an app's annotation reply settings
//! (`annotation_settings`) and its bulk annotation jobs (`annotation_jobs`).

use async_trait::async_trait;
use rusqlite::{Row, params_from_iter};

use colloquy_core::domain::{
    Annotation, AnnotationId, AnnotationJob, AnnotationSettings, AppId, JobId, JobStatus, ReplyAction,
};
use colloquy_core::ports::{AnnotationStore, StoreResult};

use super::codec::{Fields, args, to_json};
use super::{SqliteStore, insert_sql};

const COLUMNS: &str = "id, app_id, question, answer, hit_count, embedding, created_at";
const JOB_COLUMNS: &str = "id, app_id, action, status, error, created_at";

fn annotation_from_row(row: &Row<'_>) -> rusqlite::Result<Annotation> {
    let f = Fields::of("annotations", row);
    Ok(Annotation {
        id: f.parse("id")?,
        app_id: f.parse("app_id")?,
        question: f.get("question")?,
        answer: f.get("answer")?,
        hit_count: f.count("hit_count")?,
        // Nullable by design: the embedding is computed later, under the app's reply settings.
        embedding: f.json_opt("embedding")?,
        created_at: f.time("created_at")?,
    })
}

fn settings_from_row(row: &Row<'_>) -> rusqlite::Result<AnnotationSettings> {
    let f = Fields::of("annotation_settings", row);
    Ok(AnnotationSettings {
        score_threshold: f.get::<f64>("score_threshold")? as f32,
        embedding_provider: f.get("embedding_provider")?,
        embedding_model: f.get("embedding_model")?,
    })
}

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<AnnotationJob> {
    let f = Fields::of("annotation_jobs", row);
    Ok(AnnotationJob {
        id: f.parse("id")?,
        app_id: f.parse("app_id")?,
        action: f.parse_with("action", ReplyAction::parse)?,
        status: f.parse_with("status", JobStatus::parse)?,
        error: f.get("error")?,
        created_at: f.time("created_at")?,
    })
}

/// The rows of an app's annotation list: `?1` the app, `?2` a keyword or `NULL`.
const LIST_FILTER: &str = "app_id = ?1 \
    AND (?2 IS NULL OR instr(lower(question), lower(?2)) > 0 OR instr(lower(answer), lower(?2)) > 0)";

/// A page of an app's annotations, newest first: [`LIST_FILTER`], `?3` how many rows, `?4`
/// how many to skip. Dify pages this list by number, so it is an offset rather than a cursor;
/// it walks `annotations_by_app` in order and needs no sort of its own.
pub(super) fn list_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM annotations WHERE {LIST_FILTER} ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4"
    )
}

#[async_trait]
impl AnnotationStore for SqliteStore {
    async fn insert_annotation(&self, a: &Annotation) -> StoreResult<()> {
        let embedding = a.embedding.as_ref().map(to_json).transpose()?;
        let values =
            args![a.id, a.app_id, a.question.as_str(), a.answer.as_str(), a.hit_count as i64, embedding, a.created_at];
        self.execute(insert_sql("annotations", COLUMNS), values).await.map(drop)
    }

    async fn annotation(&self, app: AppId, id: AnnotationId) -> StoreResult<Option<Annotation>> {
        let sql = format!("SELECT {COLUMNS} FROM annotations WHERE id = ?1 AND app_id = ?2");
        self.one(sql, args![id, app], annotation_from_row).await
    }

    async fn update_annotation(&self, a: &Annotation) -> StoreResult<bool> {
        let sql = "UPDATE annotations SET question = ?3, answer = ?4, embedding = ?5 WHERE id = ?1 AND app_id = ?2";
        let embedding = a.embedding.as_ref().map(to_json).transpose()?;
        let values = args![a.id, a.app_id, a.question.as_str(), a.answer.as_str(), embedding];
        Ok(self.execute(sql.into(), values).await? == 1)
    }

    async fn delete_annotation(&self, app: AppId, id: AnnotationId) -> StoreResult<bool> {
        Ok(self.execute("DELETE FROM annotations WHERE id = ?1 AND app_id = ?2".into(), args![id, app]).await? == 1)
    }

    async fn annotations(
        &self,
        app: AppId,
        keyword: Option<&str>,
        offset: u64,
        limit: u32,
    ) -> StoreResult<(Vec<Annotation>, u64)> {
        let keyword = keyword.map(str::to_owned);
        // An offset beyond what SQLite can count skips every row, as the largest one does.
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let values = args![app, keyword.clone(), i64::from(limit), offset];
        let rows = self.all(list_sql(), values, annotation_from_row).await?;
        let count_sql = format!("SELECT COUNT(*) AS total FROM annotations WHERE {LIST_FILTER}");
        let count_args = args![app, keyword];
        let total = self.read(move |conn| {
            conn.prepare_cached(&count_sql)?
                .query_row(params_from_iter(count_args), |row| Fields::of("annotations", row).count("total"))
        });
        Ok((rows, total.await?))
    }

    async fn all_annotations(&self, app: AppId) -> StoreResult<Vec<Annotation>> {
        let sql = format!("SELECT {COLUMNS} FROM annotations WHERE app_id = ?1 ORDER BY created_at, id");
        self.all(sql, args![app], annotation_from_row).await
    }

    async fn record_annotation_hit(&self, app: AppId, id: AnnotationId) -> StoreResult<()> {
        let sql = "UPDATE annotations SET hit_count = hit_count + 1 WHERE id = ?1 AND app_id = ?2";
        self.execute(sql.into(), args![id, app]).await.map(drop)
    }

    async fn annotation_settings(&self, app: AppId) -> StoreResult<Option<AnnotationSettings>> {
        let sql =
            "SELECT score_threshold, embedding_provider, embedding_model FROM annotation_settings WHERE app_id = ?1";
        self.one(sql.into(), args![app], settings_from_row).await
    }

    async fn save_annotation_settings(&self, app: AppId, settings: Option<&AnnotationSettings>) -> StoreResult<()> {
        match settings {
            None => {
                self.execute("DELETE FROM annotation_settings WHERE app_id = ?1".into(), args![app]).await.map(drop)
            }
            Some(s) => {
                let sql = "INSERT INTO annotation_settings (app_id, score_threshold, embedding_provider, embedding_model)
                           VALUES (?1, ?2, ?3, ?4) ON CONFLICT (app_id) DO UPDATE SET score_threshold = excluded.score_threshold,
                           embedding_provider = excluded.embedding_provider, embedding_model = excluded.embedding_model";
                let values =
                    args![app, f64::from(s.score_threshold), s.embedding_provider.as_str(), s.embedding_model.as_str()];
                self.execute(sql.into(), values).await.map(drop)
            }
        }
    }

    async fn save_job(&self, job: &AnnotationJob) -> StoreResult<()> {
        let sql = insert_sql("annotation_jobs", JOB_COLUMNS)
            + " ON CONFLICT (id) DO UPDATE SET status = excluded.status, error = excluded.error";
        let values =
            args![job.id, job.app_id, job.action.as_str(), job.status.as_str(), job.error.as_str(), job.created_at];
        self.execute(sql, values).await.map(drop)
    }

    async fn job(&self, app: AppId, id: JobId) -> StoreResult<Option<AnnotationJob>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM annotation_jobs WHERE id = ?1 AND app_id = ?2");
        self.one(sql, args![id, app], job_from_row).await
    }
}
