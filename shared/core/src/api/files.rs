//! `POST /files/upload` and `GET /files/:id/preview`.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::body::{self, BodyError, Failure, Recorded};
use super::input::Body;
use super::views::{MessageFile, UploadHeaders, UploadUrl, UploadedFile};
use super::{ApiResponse, Ctx, ResponseBody};
use crate::api::error::ApiError;
use crate::domain::{DownloadHeaders, FileClass, FileId, FileNameError, Owner, UploadFile, UserRef, check_filename};
use crate::ports::{BlobRange, BlobStream};

/// How long a presigned `source_url` stays valid.
const SOURCE_URL_TTL: Duration = Duration::from_secs(3600);

/// How long a presigned upload URL stays valid.
const UPLOAD_URL_TTL: Duration = Duration::from_secs(900);

/// One file part of a multipart body, read whole (bounded by its reader's limit).
pub(crate) struct Part {
    pub name: String,
    pub content_type: String,
    pub bytes: Bytes,
}

/// The longest `user` field read from a multipart body (255 characters of up to 4 bytes).
const MAX_USER_FIELD_BYTES: usize = 1024;

/// A multipart upload read as it arrives: text fields are read (bounded), file parts are
/// handed out one at a time and never held whole by this reader.
pub(crate) struct Uploads {
    multipart: multer::Multipart<'static>,
    /// What went wrong with the body itself (too large, too slow, broken off), if anything.
    failure: Failure,
    user: Option<String>,
    files: usize,
}

impl Uploads {
    /// The upload body of `ctx`; `None` when the request is not `multipart/form-data`.
    pub fn open(ctx: &Ctx<'_>) -> Option<Self> {
        let content_type = ctx.request.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let boundary = multer::parse_boundary(content_type).ok()?;
        let failure = Failure::default();
        let stream = Recorded::new(ctx.take_upload(), &failure);
        Some(Self { multipart: multer::Multipart::new(stream, boundary), failure, user: None, files: 0 })
    }

    /// A parser error in API terms: the body's own failure when that is the cause.
    fn error(&self, error: multer::Error) -> ApiError {
        match self.failure.get() {
            Some(failure) => failure.into(),
            None => ApiError::BadRequest(format!("malformed multipart body: {error}")),
        }
    }

    /// The next file part (with its field name), reading the text fields before it.
    pub async fn next_file(&mut self) -> Result<Option<multer::Field<'static>>, ApiError> {
        loop {
            let next = self.multipart.next_field().await;
            let Some(mut field) = next.map_err(|e| self.error(e))? else { return Ok(None) };
            if field.file_name().is_some() {
                self.files += 1;
                return Ok(Some(field));
            }
            let is_user = field.name() == Some("user");
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| self.error(e))? {
                if is_user {
                    if text.len() + chunk.len() > MAX_USER_FIELD_BYTES {
                        return Err(ApiError::InvalidParam("user: must be at most 255 characters".into()));
                    }
                    text.extend_from_slice(&chunk);
                }
            }
            if is_user {
                let text = String::from_utf8(text)
                    .map_err(|_| ApiError::BadRequest("malformed multipart body: user is not UTF-8".into()))?;
                self.user = Some(text);
            }
        }
    }

    /// Reads past a file part without keeping its bytes.
    pub async fn skip(&self, mut field: multer::Field<'static>) -> Result<(), ApiError> {
        while field.chunk().await.map_err(|e| self.error(e))?.is_some() {}
        Ok(())
    }

    /// Reads the rest of the body, skipping any further file parts, and returns the number
    /// of file parts and the `user` (Dify's `DEFAULT-USER` when absent).
    pub async fn finish(mut self) -> Result<(usize, UserRef), ApiError> {
        while let Some(field) = self.next_file().await? {
            self.skip(field).await?;
        }
        let user = match self.user.as_deref() {
            None | Some("") => UserRef::default_user(),
            Some(raw) => UserRef::parse(raw)?,
        };
        Ok((self.files, user))
    }

    /// A file part as a body stream that fails past `limit` bytes; its failures are recorded
    /// in `failure` (the whole body's failures stay in this reader's).
    fn part_stream(&self, field: multer::Field<'static>, limit: usize, failure: &Failure) -> BlobStream {
        let body = self.failure.clone();
        let chunks = field.map(move |chunk| {
            chunk.map_err(|error| body.get().unwrap_or_else(|| BodyError::Malformed(error.to_string())))
        });
        body::as_blob(body::limited(Box::pin(chunks), limit), failure)
    }
}

/// The `file` part (read whole, at most `limit` bytes) and the `user` field of a multipart
/// upload. `check` sees the part's file name and type before any of its bytes are read, so a
/// refused part costs nothing; a part over `limit` is `too_large`.
pub(crate) async fn read_upload(
    ctx: &Ctx<'_>,
    field: &str,
    limit: usize,
    check: impl Fn(&str, &str) -> Result<(), ApiError>,
    too_large: ApiError,
) -> Result<(Option<Part>, UserRef), ApiError> {
    let Some(mut uploads) = Uploads::open(ctx) else {
        return Ok((None, UserRef::default_user()));
    };
    let mut part = None;
    if let Some(file) = uploads.next_file().await? {
        if file.name() == Some(field) {
            let name = file.file_name().unwrap_or("").to_owned();
            let content_type = file.content_type().map(|m| m.essence_str().to_owned()).unwrap_or_default();
            check(&name, &content_type)?;
            let failure = Failure::default();
            let mut chunks = uploads.part_stream(file, limit, &failure);
            let mut bytes = BytesMut::new();
            while let Some(chunk) = chunks.next().await {
                match chunk {
                    Ok(chunk) => bytes.extend_from_slice(&chunk),
                    Err(_) => {
                        return Err(match failure.get() {
                            Some(BodyError::TooLarge(part_limit)) if part_limit == limit => too_large,
                            Some(other) => other.into(),
                            None => ApiError::BadRequest("malformed multipart body".into()),
                        });
                    }
                }
            }
            part = Some(Part { name, content_type, bytes: bytes.freeze() });
        } else {
            uploads.skip(file).await?;
        }
    }
    let (files, user) = uploads.finish().await?;
    if files > 1 {
        return Err(ApiError::TooManyFiles);
    }
    Ok((part, user))
}

/// Where clients fetch a file: a presigned blob URL, or this API's preview route.
pub(crate) async fn file_url(ctx: &Ctx<'_>, file: &UploadFile, user: &UserRef) -> Result<String, ApiError> {
    let headers = file.download_headers(false);
    if let Some(url) = ctx.services.blobs.presign_get(&file.blob_key(), SOURCE_URL_TTL, &headers).await? {
        return Ok(url);
    }
    let user: String = form_urlencoded::byte_serialize(user.as_str().as_bytes()).collect();
    Ok(ctx.url_of(&format!("/v1/files/{}/preview?user={user}", file.id)))
}

/// A file about to be stored: its checked name, extension and type, and its kind's limit.
struct Checked {
    name: String,
    extension: String,
    mime_type: String,
    limit_mb: u32,
}

impl Checked {
    /// Dify's name and type checks, and the size limit of the file's kind.
    fn new(ctx: &Ctx<'_>, raw_name: &str, mime_type: String) -> Result<Self, ApiError> {
        if mime_type.is_empty() {
            return Err(ApiError::UnsupportedFileType);
        }
        let (name, extension) = match check_filename(raw_name) {
            Ok(checked) => checked,
            Err(FileNameError::Missing) => return Err(ApiError::FilenameNotExists),
            Err(FileNameError::Invalid(invalid)) => return Err(invalid.into()),
            Err(FileNameError::Blocked) => return Err(ApiError::UnsupportedFileType),
        };
        let limits = ctx.app.config.file_size_limits;
        let limit_mb = match FileClass::of(&extension, &mime_type) {
            FileClass::Image => limits.image,
            FileClass::Video => limits.video,
            FileClass::Audio => limits.audio,
            FileClass::Document => limits.document,
        };
        Ok(Self { name, extension, mime_type, limit_mb })
    }

    fn limit_bytes(&self) -> u64 {
        u64::from(self.limit_mb) * 1024 * 1024
    }

    fn too_large(&self, size: Option<u64>) -> ApiError {
        let limit_mb = self.limit_mb;
        ApiError::FileTooLarge(match size {
            Some(size) => format!("File size exceeded. {} MB > {limit_mb} MB", size / (1024 * 1024)),
            None => format!("File size exceeded. More than {limit_mb} MB."),
        })
    }

    /// The metadata of the stored file.
    fn into_file(self, ctx: &Ctx<'_>, id: FileId, owner: Owner, size: u64) -> UploadFile {
        let created_at = ctx.now();
        UploadFile {
            expires_at: ctx.app.config.retention.file_expiry(created_at),
            id,
            owner,
            name: self.name,
            size,
            extension: self.extension,
            mime_type: self.mime_type,
            created_at,
        }
    }
}

/// `POST /files/upload`: the `file` part goes to the blob store as it arrives (checked by name
/// and type first, refused past its kind's limit), so an upload never sits whole in memory.
/// Its metadata is written only once the bytes are stored and the body was read to the end:
/// a file that was cut off, too large or refused leaves nothing that reads as uploaded.
pub(crate) async fn upload(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let mut uploads = Uploads::open(ctx).ok_or(ApiError::NoFileUploaded)?;
    let id = FileId::from_uuid(ctx.services.ids.new_id());
    let key = UploadFile::key_for(ctx.app.id, id);
    let mut stored: Option<(Checked, u64)> = None;
    let result = async {
        while let Some(field) = uploads.next_file().await? {
            if stored.is_some() {
                return Err(ApiError::TooManyFiles);
            }
            if field.name() != Some("file") {
                uploads.skip(field).await?;
                continue;
            }
            let raw_name = field.file_name().unwrap_or("").to_owned();
            let mime_type = field.content_type().map(|m| m.essence_str().to_owned()).unwrap_or_default();
            let checked = Checked::new(ctx, &raw_name, mime_type)?;
            let limit = usize::try_from(checked.limit_bytes()).unwrap_or(usize::MAX);
            let failure = Failure::default();
            let chunks = uploads.part_stream(field, limit, &failure);
            match ctx.services.blobs.put_blob_stream(&key, &checked.mime_type, chunks).await {
                Ok(size) => stored = Some((checked, size)),
                Err(error) => {
                    return Err(match failure.get() {
                        Some(BodyError::TooLarge(part_limit)) if part_limit == limit => {
                            checked.too_large(super::declared_length(&ctx.request.headers))
                        }
                        Some(other) => other.into(),
                        None => error.into(),
                    });
                }
            }
        }
        let (files, user) = uploads.finish().await?;
        if files > 1 {
            return Err(ApiError::TooManyFiles);
        }
        Ok(user)
    }
    .await;
    let user = match result {
        Ok(user) => user,
        Err(error) => {
            if stored.is_some() {
                discard(ctx, &key).await;
            }
            return Err(error);
        }
    };
    let Some((checked, size)) = stored else { return Err(ApiError::NoFileUploaded) };
    let owner = match ctx.end_user(user.clone()).await {
        Ok(end_user) => end_user.owner(),
        Err(error) => {
            discard(ctx, &key).await;
            return Err(error);
        }
    };
    let file = checked.into_file(ctx, id, owner, size);
    if let Err(error) = ctx.store().insert_file(&file).await {
        discard(ctx, &key).await;
        return Err(error.into());
    }
    let source_url = file_url(ctx, &file, &user).await?;
    Ok(ApiResponse::json(StatusCode::CREATED, &UploadedFile::new(file, source_url)))
}

/// Removes the bytes of an upload that will not be recorded (best effort: without metadata
/// they are unreachable anyway).
async fn discard(ctx: &Ctx<'_>, key: &str) {
    if let Err(error) = ctx.services.blobs.delete_blob(key).await {
        tracing::warn!(%key, %error, "could not remove the bytes of a refused upload");
    }
}

/// Our extension for files larger than a Lambda request may carry (about 4.5 MB of binary):
/// JSON `{"name", "size", "mime_type", "user"}` in, Dify's file fields plus a presigned
/// `upload_url` out. The caller PUTs exactly `size` bytes there with the given headers; the file
/// id then works wherever an uploaded file's does (chat `files`, preview, `audio-to-text`).
pub(crate) async fn upload_url(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let body = Body::read(ctx.request)?;
    let user = body.user(false)?;
    let name = body.string("name")?.ok_or(ApiError::FilenameNotExists)?;
    let size = match body.raw("size") {
        Some(Value::Number(n)) => n.as_u64().filter(|s| *s > 0),
        _ => None,
    }
    .ok_or_else(|| ApiError::InvalidParam("size: a positive number of bytes is required".into()))?;
    let mime_type = body.string("mime_type")?.unwrap_or("application/octet-stream").trim().to_ascii_lowercase();
    let checked = Checked::new(ctx, name, mime_type)?;
    if size > checked.limit_bytes() {
        return Err(checked.too_large(Some(size)));
    }
    let owner = ctx.end_user(user.clone()).await?.owner();
    let file = checked.into_file(ctx, FileId::from_uuid(ctx.services.ids.new_id()), owner, size);
    let Some(upload_url) =
        ctx.services.blobs.presign_put(&file.blob_key(), &file.mime_type, file.size, UPLOAD_URL_TTL).await?
    else {
        return Err(ApiError::InvalidParam(
            "This server stores files itself: send them to POST /v1/files/upload.".into(),
        ));
    };
    ctx.store().insert_file(&file).await?;
    let source_url = file_url(ctx, &file, &user).await?;
    let answer = UploadUrl {
        upload_url,
        upload_method: "PUT",
        upload_headers: UploadHeaders { content_type: file.mime_type.clone() },
        upload_expires_at: file.created_at.unix_seconds() + UPLOAD_URL_TTL.as_secs() as i64,
        file: UploadedFile::new(file, source_url),
    };
    Ok(ApiResponse::json(StatusCode::CREATED, &answer))
}

/// The one byte range of a `Range` header: `first-last`, `first-` or `-suffix`.
///
/// What it cannot read (another unit, several ranges, bad syntax, `last` before `first`) is
/// ignored and the whole file sent, as RFC 9110 §14.2 says; a readable range that starts at or
/// past the end is 416.
fn parse_range(raw: &str, size: u64) -> Result<Option<BlobRange>, ApiError> {
    let Some((unit, spec)) = raw.trim().split_once('=') else { return Ok(None) };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Ok(None) };
    // Digits only (`parse` would take `+5`); a position too large to count is still a position.
    let position = |text: &str| {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().unwrap_or(u64::MAX))
    };
    let range = match (first, last) {
        ("", suffix) => match position(suffix) {
            Some(0) => return Err(ApiError::RangeNotSatisfiable(size)),
            Some(suffix) => BlobRange { start: size.saturating_sub(suffix), end: None },
            None => return Ok(None),
        },
        (first, "") => match position(first) {
            Some(start) => BlobRange { start, end: None },
            None => return Ok(None),
        },
        (first, last) => match (position(first), position(last)) {
            (Some(start), Some(end)) if end >= start => BlobRange { start, end: Some(end) },
            _ => return Ok(None),
        },
    };
    if range.start >= size {
        return Err(ApiError::RangeNotSatisfiable(size));
    }
    Ok(Some(range))
}

/// Whether `as_attachment` asks for a download rather than an inline view.
pub(crate) fn as_attachment(ctx: &Ctx<'_>) -> bool {
    matches!(ctx.query.get("as_attachment").map(str::to_ascii_lowercase).as_deref(), Some("true" | "1" | "yes"))
}

/// An unexpired file of `owner`, if there is one.
pub(crate) async fn live_file(ctx: &Ctx<'_>, owner: Owner, id: FileId) -> Result<Option<UploadFile>, ApiError> {
    Ok(ctx.store().file(owner, id).await?.filter(|f| !f.is_expired(ctx.now())))
}

pub(crate) async fn preview(ctx: &Ctx<'_>) -> Result<ApiResponse, ApiError> {
    let id = ctx.ids.file.ok_or(ApiError::RouteNotFound)?;
    let attachment = as_attachment(ctx);
    let user = ctx.query.user(false)?;
    let (_, file) = ctx
        .read_as(&user, move |owner| async move { live_file(ctx, owner, id).await })
        .await?
        .ok_or(ApiError::FileNotFound)?;
    serve(ctx, &file, attachment).await
}

/// A stored file's bytes (a `Range` of them when asked) with its type and disposition.
pub(crate) async fn serve(ctx: &Ctx<'_>, file: &UploadFile, attachment: bool) -> Result<ApiResponse, ApiError> {
    let mut headers = download_header_map(&file.download_headers(attachment));
    insert(&mut headers, header::ACCEPT_RANGES, "bytes".into());
    // Even an inline image is a document of its own origin when opened directly: no sniffing
    // it into another type, and no script, forms or same-origin rights should it be active.
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));

    let range = match ctx.request.headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(raw) => parse_range(raw, file.size)?,
        None => None,
    };
    if let Some(range) = range {
        let blob = ctx.services.blobs.get_blob(&file.blob_key(), Some(range)).await?.ok_or(ApiError::FileNotFound)?;
        let end = range.start + (blob.bytes.len() as u64).saturating_sub(1);
        insert(&mut headers, header::CONTENT_RANGE, format!("bytes {}-{end}/{}", range.start, blob.total_size));
        insert(&mut headers, header::CONTENT_LENGTH, blob.bytes.len().to_string());
        return Ok(ApiResponse { status: StatusCode::PARTIAL_CONTENT, headers, body: ResponseBody::Full(blob.bytes) });
    }
    let (stream, _, size) = ctx.services.blobs.stream_blob(&file.blob_key()).await?.ok_or(ApiError::FileNotFound)?;
    Ok(streamed_blob(headers, stream, size, "a file stream broke"))
}

/// Sets a header whose value is valid (every value here is built by this crate).
fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name, value);
    }
}

/// The headers a download is served with: its type, disposition and caching.
pub(crate) fn download_header_map(served: &DownloadHeaders) -> HeaderMap {
    let mut headers = HeaderMap::new();
    insert(&mut headers, header::CONTENT_TYPE, served.content_type.clone());
    insert(&mut headers, header::CONTENT_DISPOSITION, served.content_disposition.clone());
    insert(&mut headers, header::CACHE_CONTROL, served.cache_control.clone());
    headers
}

/// A whole blob, 200, sent as it is read, with `headers` and its length. A read that breaks
/// (logged as `broke`) can only end the body early: the status is sent already, and the length
/// tells the client the body is short.
pub(crate) fn streamed_blob(mut headers: HeaderMap, stream: BlobStream, size: u64, broke: &'static str) -> ApiResponse {
    insert(&mut headers, header::CONTENT_LENGTH, size.to_string());
    let body = stream.map(move |chunk| match chunk {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!(%error, "{broke}");
            Bytes::new()
        }
    });
    ApiResponse { status: StatusCode::OK, headers, body: ResponseBody::Stream(Box::pin(body)) }
}

/// A chat request's `local_file` entry as a message file of the caller's upload.
pub(crate) async fn message_file(
    ctx: &Ctx<'_>,
    owner: Owner,
    user: &UserRef,
    item: &Value,
) -> Result<MessageFile, ApiError> {
    let raw = item.get("upload_file_id").and_then(Value::as_str).unwrap_or("");
    let id: FileId =
        raw.parse().map_err(|_| ApiError::InvalidParam(format!("files: '{raw}' is not an upload file id")))?;
    // A missing or foreign upload is a missing resource, as on the preview route.
    let file = live_file(ctx, owner, id).await?.ok_or(ApiError::FileNotFound)?;
    let url = file_url(ctx, &file, user).await?;
    Ok(MessageFile::local(ctx.services.ids.new_id(), file, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let range = |start, end| Some(BlobRange { start, end });
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), range(0, Some(9)));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), range(90, None));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), range(90, None));
        assert_eq!(parse_range("bytes=-500", 100).unwrap(), range(0, None));
        assert_eq!(parse_range("Bytes=5-5", 100).unwrap(), range(5, Some(5)));
        assert_eq!(parse_range("bytes=10-500", 100).unwrap(), range(10, Some(500)));
    }

    #[test]
    fn ranges_it_cannot_read_are_ignored() {
        for raw in [
            "items=0-9",
            "bytes=0-1,5-6",
            "bytes=a-b",
            "bytes=x-2",
            "bytes=",
            "bytes=-",
            "bytes=5",
            "bytes=9-2",
            "bytes=+1-2",
            "bytes=1-2-3",
            "bytes=--1",
            "bytes 0-9",
            "",
        ] {
            assert_eq!(parse_range(raw, 100).unwrap(), None, "{raw:?}");
        }
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        for (raw, size) in [
            ("bytes=100-", 100),
            ("bytes=100-200", 100),
            ("bytes=-0", 100),
            ("bytes=0-", 0),
            ("bytes=-5", 0),
            ("bytes=99999999999999999999999-", 100),
        ] {
            assert!(matches!(parse_range(raw, size), Err(ApiError::RangeNotSatisfiable(s)) if s == size), "{raw:?}");
        }
    }
}
