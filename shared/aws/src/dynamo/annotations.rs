//! Annotations (`AnnotationStore`): an app's annotations and annotation settings in one
//! partition, and its annotation jobs in another.

use async_trait::async_trait;

use colloquy_core::domain::{Annotation, AnnotationId, AnnotationJob, AnnotationSettings, AppId, JobId};
use colloquy_core::ports::{AnnotationStore, StoreResult};

use super::DynamoStore;
use super::codec::{embedding, n, s};
use super::items::{annotation_from, annotation_item, job_from, job_item, settings_from, settings_item};
use super::keys::{ANNOTATION_PREFIX, SETTINGS_SK, annotation_sk, annotations_pk, job_pk, job_sk, key};
use super::requests::condition_met;

impl DynamoStore {
    /// All annotations of an app, newest first.
    async fn app_annotations(&self, app: AppId) -> StoreResult<Vec<Annotation>> {
        let items = self.partition(annotations_pk(app), Some(ANNOTATION_PREFIX)).await?;
        let mut all: Vec<Annotation> = items.iter().map(annotation_from).collect::<StoreResult<_>>()?;
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
                .expression_attribute_values(":e", embedding(vector)),
            None => update.update_expression("SET question = :q, answer = :a REMOVE embedding"),
        };
        condition_met(update.send().await)
    }

    async fn delete_annotation(&self, app: AppId, id: AnnotationId) -> StoreResult<bool> {
        self.delete_existing(annotations_pk(app), annotation_sk(id)).await
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
        self.get(annotations_pk(app), SETTINGS_SK).await?.as_ref().map(settings_from).transpose()
    }

    async fn save_annotation_settings(&self, app: AppId, settings: Option<&AnnotationSettings>) -> StoreResult<()> {
        match settings {
            None => self.delete(annotations_pk(app), SETTINGS_SK).await,
            Some(settings) => self.put(settings_item(app, settings)).await,
        }
    }

    async fn save_job(&self, job: &AnnotationJob) -> StoreResult<()> {
        self.put(job_item(job)).await
    }

    async fn job(&self, app: AppId, id: JobId) -> StoreResult<Option<AnnotationJob>> {
        self.get(job_pk(app), job_sk(id)).await?.as_ref().map(job_from).transpose()
    }
}
