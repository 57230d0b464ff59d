//! Q&A annotations and the jobs that turn annotation reply on or off.

use serde::Serialize;

use crate::domain::{self, AnnotationId, AnnotationJob, JobId};

/// One annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Annotation {
    pub id: AnnotationId,
    pub question: String,
    pub answer: String,
    pub hit_count: u64,
    pub created_at: i64,
}

impl From<domain::Annotation> for Annotation {
    fn from(a: domain::Annotation) -> Self {
        Self {
            id: a.id,
            question: a.question,
            answer: a.answer,
            hit_count: a.hit_count,
            created_at: a.created_at.unix_seconds(),
        }
    }
}

/// A page of annotations: numbered pages with a total, unlike the cursor-paginated lists.
/// `limit` is the one requested, even when fewer are served per page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnnotationPage {
    pub data: Vec<Annotation>,
    pub has_more: bool,
    pub limit: u32,
    pub total: u64,
    pub page: u32,
}

/// An annotation-reply job, as its action answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyJob {
    pub job_id: JobId,
    pub job_status: &'static str,
}

impl From<&AnnotationJob> for ReplyJob {
    fn from(job: &AnnotationJob) -> Self {
        Self { job_id: job.id, job_status: job.status.as_str() }
    }
}

/// An annotation-reply job, as its status route answers it (with its error, empty if none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyJobStatus {
    pub job_id: JobId,
    pub job_status: &'static str,
    pub error_msg: String,
}

impl From<AnnotationJob> for ReplyJobStatus {
    fn from(job: AnnotationJob) -> Self {
        Self { job_id: job.id, job_status: job.status.as_str(), error_msg: job.error }
    }
}
