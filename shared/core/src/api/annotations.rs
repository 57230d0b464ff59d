//! Q&A annotations (`/apps/annotations`) and annotation reply (`/apps/annotation-reply`).
//! These act for the app, not for an end user.

use serde_json::Value;

use super::input::Body;
use super::views::{self, AnnotationPage, ReplyJob, ReplyJobStatus};
use super::{ApiResponse, Ctx, Services};
use crate::api::error::ApiError;
use crate::domain::{
    Annotation, AnnotationId, AnnotationJob, AnnotationSettings, App, Invalid, JobId, JobStatus, Limit, PageNumber,
    ReplyAction, cosine_similarity,
};
use crate::ports::Embedder;

/// Dify pages annotations with `max_per_page=100`: larger limits are served 100 at a time.
const MAX_PAGE: u32 = 100;
const NOT_FOUND: &str = "Annotation not found";

pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let page = PageNumber::parse(ctx.query.get("page"))?;
    let requested = Limit::parse(ctx.query.get("limit"), u32::MAX)?;
    let limit = Limit::parse(Some(&requested.get().min(MAX_PAGE).to_string()), MAX_PAGE)?;
    let keyword = ctx.query.get("keyword");
    let offset = page.offset(limit);
    let (rows, total) = ctx.store().annotations(ctx.app.id, keyword, offset, limit.get()).await?;
    Ok(ApiResponse::ok(&AnnotationPage {
        has_more: offset + (rows.len() as u64) < total,
        data: rows.into_iter().map(views::Annotation::from).collect(),
        limit: requested.get(),
        total,
        page: page.get(),
    }))
}

/// Question and answer of a create or update body.
fn texts(body: &Body) -> Result<(String, String), ApiError> {
    let question = body.string("question")?.ok_or_else(|| Invalid::new("question: Field required"))?;
    let answer = body.string("answer")?.ok_or_else(|| Invalid::new("answer: Field required"))?;
    Annotation::check_texts(question, answer)?;
    Ok((question.to_owned(), answer.to_owned()))
}

/// Annotation writes share the feedback write budget, counted per app.
async fn check_rate(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    ctx.check_rate(&format!("annotations:{}", ctx.app.id)).await.map(drop)
}

/// The question's embedding under the app's reply settings; `None` when reply is off or the
/// provider fails (the annotation then simply cannot match until reply is enabled again).
async fn embedding_for(services: &Services, app: &App, question: &str) -> Result<Option<Vec<f32>>, ApiError> {
    let Some(settings) = services.store.annotation_settings(app.id).await? else { return Ok(None) };
    let embedded = match services.models.embedder(&settings.embedding_provider) {
        Ok(embedder) => embedder.embed(&[question.to_owned()], Some(&settings.embedding_model)).await,
        Err(error) => Err(error),
    };
    match embedded {
        Ok(mut vectors) => Ok(vectors.pop()),
        Err(error) => {
            tracing::warn!(%error, "could not embed an annotation");
            Ok(None)
        }
    }
}

pub(crate) async fn create(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let (question, answer) = texts(&Body::read(ctx.request)?)?;
    check_rate(ctx).await?;
    let annotation = Annotation {
        id: AnnotationId::from_uuid(ctx.services.ids.new_id()),
        app_id: ctx.app.id,
        embedding: embedding_for(ctx.services, &ctx.app, &question).await?,
        question,
        answer,
        hit_count: 0,
        created_at: ctx.now(),
    };
    ctx.store().insert_annotation(&annotation).await?;
    Ok(ApiResponse::ok(&views::Annotation::from(annotation)))
}

pub(crate) async fn update(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = ctx.ids.annotation.ok_or(ApiError::RouteNotFound)?;
    let (question, answer) = texts(&Body::read(ctx.request)?)?;
    let mut annotation = ctx.store().annotation(ctx.app.id, id).await?.ok_or(ApiError::NotFound(NOT_FOUND))?;
    check_rate(ctx).await?;
    annotation.embedding = embedding_for(ctx.services, &ctx.app, &question).await?;
    annotation.question = question;
    annotation.answer = answer;
    if !ctx.store().update_annotation(&annotation).await? {
        return Err(ApiError::NotFound(NOT_FOUND));
    }
    Ok(ApiResponse::ok(&views::Annotation::from(annotation)))
}

pub(crate) async fn delete(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = ctx.ids.annotation.ok_or(ApiError::RouteNotFound)?;
    ctx.store().annotation(ctx.app.id, id).await?.ok_or(ApiError::NotFound(NOT_FOUND))?;
    check_rate(ctx).await?;
    if !ctx.store().delete_annotation(ctx.app.id, id).await? {
        return Err(ApiError::NotFound(NOT_FOUND));
    }
    Ok(ApiResponse::no_content())
}

fn action(ctx: &Ctx<'_>) -> Result<ReplyAction, ApiError> {
    Ok(ReplyAction::parse(ctx.ids.action.as_deref().unwrap_or(""))?)
}

/// `POST /apps/annotation-reply/{enable|disable}`. All three fields are required for both
/// actions, as in Dify. The job runs within the request, so its status is final when answered.
pub(crate) async fn reply_action(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let action = action(ctx)?;
    let body = Body::read(ctx.request)?;
    let threshold = match body.raw("score_threshold") {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(_) => return Err(Invalid::new("score_threshold: Input should be a valid number").into()),
        None => return Err(Invalid::new("score_threshold: Field required").into()),
    };
    let provider = body
        .string("embedding_provider_name")?
        .ok_or_else(|| Invalid::new("embedding_provider_name: Field required"))?;
    let model =
        body.string("embedding_model_name")?.ok_or_else(|| Invalid::new("embedding_model_name: Field required"))?;
    let settings = AnnotationSettings::new(threshold, provider, model)?;

    let mut job = AnnotationJob {
        id: JobId::from_uuid(ctx.services.ids.new_id()),
        app_id: ctx.app.id,
        action,
        status: JobStatus::Processing,
        error: String::new(),
        created_at: ctx.now(),
    };
    ctx.store().save_job(&job).await?;
    let outcome = match action {
        ReplyAction::Enable => enable(ctx, &settings).await,
        ReplyAction::Disable => ctx.store().save_annotation_settings(ctx.app.id, None).await.map_err(ApiError::from),
    };
    match outcome {
        Ok(()) => job.status = JobStatus::Completed,
        Err(ApiError::Provider(error)) => {
            job.status = JobStatus::Error;
            job.error = error.to_string();
        }
        Err(other) => return Err(other),
    }
    ctx.store().save_job(&job).await?;
    Ok(ApiResponse::ok(&ReplyJob::from(&job)))
}

/// Embeds every annotation with the new settings, then switches reply on.
async fn enable(ctx: &Ctx<'_>, settings: &AnnotationSettings) -> Result<(), ApiError> {
    let embedder = ctx.services.models.embedder(&settings.embedding_provider)?;
    let mut annotations = ctx.store().all_annotations(ctx.app.id).await?;
    let questions: Vec<String> = annotations.iter().map(|a| a.question.clone()).collect();
    if !questions.is_empty() {
        let vectors = embedder.embed(&questions, Some(&settings.embedding_model)).await?;
        for (annotation, vector) in annotations.iter_mut().zip(vectors) {
            annotation.embedding = Some(vector);
            ctx.store().update_annotation(annotation).await?;
        }
    }
    ctx.store().save_annotation_settings(ctx.app.id, Some(settings)).await?;
    Ok(())
}

pub(crate) async fn reply_status(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    action(ctx)?;
    const MISSING: &str = "The job does not exist.";
    let id: JobId = ctx.ids.job.as_deref().unwrap_or("").parse().map_err(|_| ApiError::NotFound(MISSING))?;
    let job = ctx.store().job(ctx.app.id, id).await?.ok_or(ApiError::NotFound(MISSING))?;
    Ok(ApiResponse::ok(&ReplyJobStatus::from(job)))
}

/// The annotation that answers `query`, when annotation reply is on and one scores at least
/// the threshold. Provider failures fall back to the model rather than failing the chat.
pub(crate) async fn matching(services: &Services, app: &App, query: &str) -> Result<Option<Annotation>, ApiError> {
    let Some(settings) = services.store.annotation_settings(app.id).await? else { return Ok(None) };
    let annotations = services.store.all_annotations(app.id).await?;
    if annotations.iter().all(|a| a.embedding.is_none()) {
        return Ok(None);
    }
    let embedded = match services.models.embedder(&settings.embedding_provider) {
        Ok(embedder) => best_match(embedder.as_ref(), &settings, annotations, query).await,
        Err(error) => Err(error),
    };
    embedded.or_else(|error| {
        tracing::warn!(%error, "annotation matching failed; answering with the model");
        Ok(None)
    })
}

async fn best_match(
    embedder: &dyn Embedder,
    settings: &AnnotationSettings,
    annotations: Vec<Annotation>,
    query: &str,
) -> Result<Option<Annotation>, crate::ports::ProviderError> {
    let query = embedder.embed(&[query.to_owned()], Some(&settings.embedding_model)).await?.pop().unwrap_or_default();
    let best = annotations
        .into_iter()
        .filter_map(|a| a.embedding.as_deref().map(|e| cosine_similarity(&query, e)).map(|score| (score, a)))
        .max_by(|(x, _), (y, _)| x.total_cmp(y));
    Ok(best.filter(|(score, _)| *score >= settings.score_threshold).map(|(_, a)| a))
}
