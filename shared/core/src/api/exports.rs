//! Exports of an app's messages (Colloquy extensions, operator keys): start one, follow it,
//! download its file. Locally the server runs the export itself; on AWS the job's insert
//! reaches the table's stream and the export function runs it ([`JobRunner`]).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::input::Body;
use super::views;
use super::{ApiResponse, Ctx, ResponseBody};
use crate::api::error::ApiError;
use crate::api::files::{download_header_map, streamed_blob};
use crate::domain::{
    AuditAction, DownloadHeaders, ExportFormat, ExportId, ExportJob, ExportStatus, Invalid, TimeRange, parse_time,
};
use crate::export::{expected_messages, run_export};

/// Who runs an export or an erasure once it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JobRunner {
    /// This process, in the background (the local server).
    #[default]
    InProcess,
    /// Another function, which the job's insert reaches through the table's stream (Lambda).
    Stream,
}

const NOT_FOUND: &str = "Export Not Exists.";
/// How long a download link lasts.
const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(900);

fn bound(body: &Body, name: &str) -> Result<Option<crate::domain::Timestamp>, ApiError> {
    match body.raw(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        // A whole number, also written as one with a zero fraction (`1700000000.0`).
        Some(serde_json::Value::Number(n)) => {
            let whole =
                n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map(|f| f as i64));
            let seconds = whole.ok_or_else(|| Invalid(format!("{name}: expected whole Unix seconds")))?;
            Ok(Some(parse_time(name, &seconds.to_string())?))
        }
        Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(parse_time(name, s)?)),
        Some(_) => Err(Invalid(format!("{name}: expected Unix seconds or an RFC 3339 time")).into()),
    }
}

/// `POST /v1/app/exports` `{format, start, end}` → 202 with the job: the app's messages created
/// in `[start, end)` (and before the export started).
pub(crate) async fn create(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let body = Body::read(ctx.request)?;
    let format = ExportFormat::parse(body.string("format")?.filter(|f| !f.is_empty()).unwrap_or("jsonl"))?;
    let (start, end) = (bound(&body, "start")?, bound(&body, "end")?);
    ctx.require_chat_app()?;
    let now = ctx.now();
    let range = TimeRange::new(start, Some(end.map_or(now, |end| end.min(now))));
    // What was asked for (the body's fields, as a query would name them).
    let seconds = |t: Option<crate::domain::Timestamp>| t.map_or(String::new(), |t| t.unix_seconds().to_string());
    let asked = format!("format={}&start={}&end={}", format.as_str(), seconds(range.from), seconds(range.until));
    ctx.audit(AuditAction::CreateExport, None, Some(&asked)).await?;
    let store = ctx.services.store.clone();
    let job = ExportJob {
        id: ExportId::from_uuid(ctx.services.ids.new_id()),
        app_id: ctx.app.id,
        format,
        range,
        status: ExportStatus::Pending,
        expected: expected_messages(store.as_ref(), ctx.app.id, range, now).await?,
        exported: 0,
        size: None,
        error: None,
        created_at: now,
        updated_at: now,
    };
    store.save_export(&job).await?;
    if ctx.services.jobs == JobRunner::InProcess {
        let (blobs, clock, job) = (ctx.services.blobs.clone(), ctx.services.clock.clone(), job.clone());
        tokio::spawn(async move { run_export(store, blobs.as_ref(), clock.as_ref(), job).await });
    }
    Ok(ApiResponse::json(StatusCode::ACCEPTED, &views::Export::new(&job, None)))
}

async fn find(ctx: &Ctx<'_>, action: AuditAction) -> Result<ExportJob, ApiError> {
    let id = ctx.ids.export.ok_or(ApiError::RouteNotFound)?;
    ctx.require_chat_app()?;
    let job = ctx.store().export(ctx.app.id, id).await?.ok_or(ApiError::NotFound(NOT_FOUND))?;
    ctx.audit(action, Some(id.to_string()), None).await?;
    Ok(job.as_of(ctx.now()))
}

/// `GET /v1/app/exports/:id`: where the export stands, with its download link once done: a
/// short-lived link to the file where the blob store has links (S3), else the download route.
pub(crate) async fn status(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let job = find(ctx, AuditAction::ReadExport).await?;
    let link = match job.status {
        ExportStatus::Done => {
            match ctx.services.blobs.presign_get(&job.blob_key(), DOWNLOAD_URL_TTL, &headers(&job)).await? {
                Some(url) => Some(url),
                None => Some(ctx.url_of(&format!("/v1/app/exports/{}/download", job.id))),
            }
        }
        _ => None,
    };
    Ok(ApiResponse::ok(&views::Export::new(&job, link)))
}

/// What a download of the file answers with.
fn headers(job: &ExportJob) -> DownloadHeaders {
    DownloadHeaders {
        content_type: job.format.content_type().into(),
        content_disposition: format!("attachment; filename=\"{}\"", job.file_name()),
        cache_control: "private, no-store".into(),
    }
}

/// `GET /v1/app/exports/:id/download`: the file (a redirect to a short-lived link where the
/// blob store has links of its own, as S3 does).
pub(crate) async fn download(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let job = find(ctx, AuditAction::DownloadExport).await?;
    if job.status != ExportStatus::Done {
        return Err(ApiError::Conflict("export_not_ready", "The export is not finished: see its status."));
    }
    let headers = headers(&job);
    let blobs = &ctx.services.blobs;
    if let Some(url) = blobs.presign_get(&job.blob_key(), DOWNLOAD_URL_TTL, &headers).await? {
        let mut out = HeaderMap::new();
        out.insert(header::LOCATION, HeaderValue::from_str(&url).map_err(|e| ApiError::Internal(e.to_string()))?);
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(ApiResponse { status: StatusCode::FOUND, headers: out, body: ResponseBody::Full(Bytes::new()) });
    }
    let (stream, _, size) = blobs.stream_blob(&job.blob_key()).await?.ok_or(ApiError::NotFound(NOT_FOUND))?;
    Ok(streamed_blob(download_header_map(&headers), stream, size, "an export's download broke"))
}
