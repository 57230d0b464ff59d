//! Amazon S3 as the blob store: files and audio.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::aws_clients::StoreFailure;
use colloquy_core::ports::{Blob, BlobRange, BlobStore, BlobStream, StoreError, StoreResult};

/// The bucket's lifecycle rules, as `template.yaml` declares them (a test keeps the two equal):
/// (rule id, key prefix, days an object is kept).
pub const LIFECYCLE_RULES: [(&str, &str, i32); 2] =
    [("expire-scratch-audio", "scratch/", 1), ("expire-exports", "exports/", 7)];

/// Size of the parts of a streamed upload (S3's minimum is 5 MiB): the most one upload holds.
const PART_BYTES: usize = 8 * 1024 * 1024;

/// Reads `body` into `part` until it holds a whole part (true) or the body ends (false),
/// counting the bytes read into `size`.
async fn fill_part(body: &mut BlobStream, part: &mut BytesMut, size: &mut u64) -> StoreResult<bool> {
    while part.len() < PART_BYTES {
        let Some(chunk) = body.next().await else { return Ok(false) };
        let chunk = chunk?;
        *size += chunk.len() as u64;
        part.extend_from_slice(&chunk);
    }
    Ok(true)
}

/// One bucket of S3 (or an S3-compatible service).
#[derive(Debug, Clone)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
}

/// A failed request as a `StoreError`: `Unavailable` (503) when retrying later may succeed
/// (a cut connection, a timeout, `SlowDown`, a 5xx, a body that broke off), `Failed` (500)
/// otherwise; see `aws_clients`.
fn sdk_error<E: StoreFailure>(error: E) -> StoreError {
    error.into_store_error()
}

impl S3Blobs {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }

    /// Sends `first` and then the rest of `body` as parts of a multipart upload.
    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        first: BytesMut,
        body: &mut BlobStream,
        size: &mut u64,
    ) -> StoreResult<Vec<CompletedPart>> {
        let mut parts = Vec::new();
        let mut pending = first;
        loop {
            let last = !fill_part(body, &mut pending, size).await?;
            if !pending.is_empty() || parts.is_empty() {
                let number = i32::try_from(parts.len() + 1).unwrap_or(i32::MAX);
                let sent = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .body(ByteStream::from(std::mem::take(&mut pending).freeze()))
                    .send()
                    .await
                    .map_err(sdk_error)?;
                parts.push(CompletedPart::builder().part_number(number).set_e_tag(sent.e_tag).build());
            }
            if last {
                return Ok(parts);
            }
        }
    }

    /// Abandons a multipart upload (best effort: S3 lifecycle rules clean up what remains).
    async fn abort(&self, key: &str, upload_id: &str) {
        let aborted =
            self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id).send().await;
        if let Err(error) = aborted {
            tracing::warn!(%key, error = %sdk_error(error), "could not abort a multipart upload");
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Sets the bucket's lifecycle rules to [`LIFECYCLE_RULES`] (replacing what it had).
    pub async fn apply_lifecycle(&self) -> StoreResult<()> {
        use aws_sdk_s3::types::{
            BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
        };
        let mut rules = Vec::new();
        for (id, prefix, days) in LIFECYCLE_RULES {
            let rule = LifecycleRule::builder()
                .id(id)
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
                .expiration(LifecycleExpiration::builder().days(days).build())
                .build()
                .map_err(sdk_error)?;
            rules.push(rule);
        }
        let configuration =
            BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build().map_err(sdk_error)?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .lifecycle_configuration(configuration)
            .send()
            .await
            .map_err(sdk_error)
            .map(drop)
    }

    /// The bucket's lifecycle rules as stored: (rule id, prefix, days).
    pub async fn lifecycle(&self) -> StoreResult<Vec<(String, String, i32)>> {
        let output =
            self.client.get_bucket_lifecycle_configuration().bucket(&self.bucket).send().await.map_err(sdk_error)?;
        Ok(output
            .rules
            .unwrap_or_default()
            .into_iter()
            .map(|rule| {
                let prefix = rule.filter.and_then(|f| f.prefix).unwrap_or_default();
                let days = rule.expiration.and_then(|e| e.days).unwrap_or_default();
                (rule.id.unwrap_or_default(), prefix, days)
            })
            .collect())
    }

    /// Creates the bucket; false when it exists already (and is ours).
    pub async fn create_bucket(&self) -> StoreResult<bool> {
        // us-east-1 answers 200 to re-creating one's own bucket, so ask first.
        if self.client.head_bucket().bucket(&self.bucket).send().await.is_ok() {
            return Ok(false);
        }
        match self.client.create_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(e)),
        }
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put_blob(&self, key: &str, content_type: &str, bytes: Bytes) -> StoreResult<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(sdk_error)
            .map(drop)
    }

    async fn put_blob_stream(&self, key: &str, content_type: &str, mut body: BlobStream) -> StoreResult<u64> {
        // A blob that fits one part is one PutObject; a larger one a multipart upload, one part
        // in memory at a time, completed (and so visible) only at the end, aborted on failure.
        let mut part = BytesMut::with_capacity(PART_BYTES.min(1024 * 1024));
        let mut size = 0u64;
        if !fill_part(&mut body, &mut part, &mut size).await? {
            self.put_blob(key, content_type, part.freeze()).await?;
            return Ok(size);
        }
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(sdk_error)?;
        let upload_id = upload.upload_id().ok_or_else(|| StoreError::Corrupt("S3 gave no upload id".into()))?;
        let uploaded = self.upload_parts(key, upload_id, part, &mut body, &mut size).await;
        match uploaded {
            Ok(parts) => {
                let completed = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await;
                if let Err(error) = completed {
                    self.abort(key, upload_id).await;
                    return Err(sdk_error(error));
                }
                Ok(size)
            }
            Err(error) => {
                self.abort(key, upload_id).await;
                Err(error)
            }
        }
    }

    async fn get_blob(&self, key: &str, range: Option<BlobRange>) -> StoreResult<Option<Blob>> {
        let header = range.map(|r| match r.end {
            Some(end) => format!("bytes={}-{end}", r.start),
            None => format!("bytes={}-", r.start),
        });
        let output = match self.client.get_object().bucket(&self.bucket).key(key).set_range(header).send().await {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                // A range past the end reads nothing, as the embedded store does.
                let head = self.client.head_object().bucket(&self.bucket).key(key).send().await.map_err(sdk_error)?;
                return Ok(Some(Blob {
                    bytes: Bytes::new(),
                    content_type: head.content_type.unwrap_or_else(|| "application/octet-stream".into()),
                    total_size: head.content_length.unwrap_or(0).max(0) as u64,
                }));
            }
            Err(e) => return Err(sdk_error(e)),
        };
        let total_size = output
            .content_range()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.parse().ok())
            .or(output.content_length().map(|l| l.max(0) as u64))
            .unwrap_or(0);
        let content_type = output.content_type().unwrap_or("application/octet-stream").to_owned();
        let bytes = output.body.collect().await.map_err(sdk_error)?.into_bytes();
        Ok(Some(Blob { bytes, content_type, total_size }))
    }

    async fn stream_blob(&self, key: &str) -> StoreResult<Option<(BlobStream, String, u64)>> {
        let output = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(sdk_error(e)),
        };
        let content_type = output.content_type().unwrap_or("application/octet-stream").to_owned();
        let size = output.content_length().unwrap_or(0).max(0) as u64;
        let chunks = futures_util::stream::unfold(Some(output.body), |body| async move {
            let mut body = body?;
            match body.next().await {
                None => None,
                Some(Ok(bytes)) => Some((Ok(bytes), Some(body))),
                Some(Err(e)) => Some((Err(sdk_error(e)), None)),
            }
        });
        Ok(Some((Box::pin(chunks), content_type, size)))
    }

    async fn presign_get(
        &self,
        key: &str,
        expires: Duration,
        headers: &colloquy_core::domain::DownloadHeaders,
    ) -> StoreResult<Option<String>> {
        let config = PresigningConfig::expires_in(expires).map_err(sdk_error)?;
        // S3's response overrides (signed query parameters) replace the stored object's headers.
        // S3 has none for `X-Content-Type-Options` or `Content-Security-Policy`: only inert types
        // are ever inline.
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_type(&headers.content_type)
            .response_content_disposition(&headers.content_disposition)
            .response_cache_control(&headers.cache_control)
            .presigned(config)
            .await
            .map_err(sdk_error)?;
        Ok(Some(request.uri().to_owned()))
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        expires: Duration,
    ) -> StoreResult<Option<String>> {
        let config = PresigningConfig::expires_in(expires).map_err(sdk_error)?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            // Signed, so S3 refuses a body of any other length.
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .presigned(config)
            .await
            .map_err(sdk_error)?;
        Ok(Some(request.uri().to_owned()))
    }

    async fn delete_blob(&self, key: &str) -> StoreResult<()> {
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(sdk_error).map(drop)
    }

    /// ListObjectsV2 under the prefix, page after page.
    async fn count_blobs(&self, prefix: &str) -> StoreResult<u64> {
        let mut count = 0;
        let mut token = None;
        loop {
            let output = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(sdk_error)?;
            count += output.contents.map_or(0, |c| c.len() as u64);
            token = output.next_continuation_token;
            if token.is_none() {
                return Ok(count);
            }
        }
    }
}
