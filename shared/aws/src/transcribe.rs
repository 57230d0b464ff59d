//! Amazon Transcribe: speech to text with a batch job. The audio goes to our bucket, the job
//! writes its transcript back to the bucket, and the caller polls with backoff inside a
//! deadline shorter than API Gateway's 30 s, then reads the transcript and cleans up.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_transcribe::Client;
use aws_sdk_transcribe::types::{LanguageCode, Media, MediaFormat, TranscriptionJobStatus};
use bytes::Bytes;
use serde_json::Value;

use super::aws_errors::classify;
use super::s3::S3Blobs;
use colloquy_core::domain::AudioFormat;
use colloquy_core::ports::{BlobStore, ProviderError, Transcriber};
use colloquy_core::settings::TranscribePolling;

/// Where jobs put their input and transcript; the bucket's lifecycle rule expires `scratch/`.
const SCRATCH: &str = "scratch/transcribe";

/// How long to wait for a job and how often to ask.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    /// Give up (and say so) after this long.
    pub deadline: Duration,
    /// The first pause between status checks; each later pause doubles, up to `max_interval`.
    pub first_interval: Duration,
    pub max_interval: Duration,
}

/// The longest pause between two status checks.
const MAX_INTERVAL: Duration = Duration::from_secs(2);

impl From<TranscribePolling> for Polling {
    /// The configured deadline and first pause (their defaults are the settings'), doubling
    /// up to [`MAX_INTERVAL`].
    fn from(settings: TranscribePolling) -> Self {
        Self { deadline: settings.deadline, first_interval: settings.first_interval, max_interval: MAX_INTERVAL }
    }
}

/// The Transcribe adapter; `blobs` is the bucket Transcribe reads from and writes to.
#[derive(Debug, Clone)]
pub struct AwsTranscribe {
    client: Client,
    blobs: S3Blobs,
    /// A BCP 47 language such as `en-US`; `None` lets Transcribe identify it.
    language: Option<String>,
    polling: Polling,
}

/// The object key of a job's transcript (tests that stand in for Transcribe write it here).
pub fn transcript_key(job: &str) -> String {
    format!("{SCRATCH}/{job}.json")
}

impl AwsTranscribe {
    pub fn new(client: Client, blobs: S3Blobs, language: Option<String>, polling: Polling) -> Self {
        Self { client, blobs, language, polling }
    }

    /// Runs one job on the object at `key` and returns its transcript's text.
    async fn run(&self, key: &str, format: AudioFormat) -> Result<String, ProviderError> {
        let job = uuid::Uuid::new_v4().to_string();
        let output_key = transcript_key(&job);
        let media = Media::builder().media_file_uri(format!("s3://{}/{key}", self.blobs.bucket())).build();
        let mut start = self
            .client
            .start_transcription_job()
            .transcription_job_name(&job)
            .media(media)
            .media_format(MediaFormat::from(format.extension()))
            .output_bucket_name(self.blobs.bucket())
            .output_key(&output_key);
        start = match &self.language {
            Some(language) => start.language_code(LanguageCode::from(language.as_str())),
            None => start.identify_language(true),
        };
        start.send().await.map_err(classify)?;
        let outcome = match tokio::time::timeout(self.polling.deadline, self.wait(&job, &output_key)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ProviderError::Failed(format!(
                "the transcription did not finish within {} s; try a shorter recording",
                self.polling.deadline.as_secs()
            ))),
        };
        // Clean up whatever happened; the bucket's lifecycle rule catches what this misses.
        if let Err(error) = self.blobs.delete_blob(&output_key).await {
            tracing::warn!(%error, job, "could not delete a transcript");
        }
        if let Err(error) = self.client.delete_transcription_job().transcription_job_name(&job).send().await {
            tracing::debug!(error = %classify(error), job, "could not delete a transcription job");
        }
        outcome
    }

    async fn wait(&self, job: &str, output_key: &str) -> Result<String, ProviderError> {
        let mut interval = self.polling.first_interval;
        loop {
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(self.polling.max_interval);
            let answer =
                self.client.get_transcription_job().transcription_job_name(job).send().await.map_err(classify)?;
            let Some(state) = answer.transcription_job() else {
                return Err(ProviderError::Failed("Transcribe answered without the job".into()));
            };
            match state.transcription_job_status() {
                Some(TranscriptionJobStatus::Completed) => return self.read_transcript(output_key).await,
                Some(TranscriptionJobStatus::Failed) => {
                    return Err(ProviderError::Failed(format!(
                        "the transcription failed: {}",
                        state.failure_reason().unwrap_or("no reason given")
                    )));
                }
                _ => {}
            }
        }
    }

    async fn read_transcript(&self, key: &str) -> Result<String, ProviderError> {
        let blob = self
            .blobs
            .get_blob(key, None)
            .await
            .map_err(|e| ProviderError::Failed(format!("cannot read the transcript: {e}")))?
            .ok_or_else(|| ProviderError::Failed("the transcription finished without a transcript".into()))?;
        let json: Value = serde_json::from_slice(&blob.bytes)
            .map_err(|e| ProviderError::Failed(format!("unreadable transcript: {e}")))?;
        let texts: Vec<&str> = json["results"]["transcripts"]
            .as_array()
            .ok_or_else(|| ProviderError::Failed("the transcript has no results.transcripts".into()))?
            .iter()
            .filter_map(|t| t["transcript"].as_str())
            .collect();
        Ok(texts.join(" ").trim().to_owned())
    }
}

#[async_trait]
impl Transcriber for AwsTranscribe {
    fn name(&self) -> &'static str {
        "transcribe"
    }

    async fn transcribe(&self, audio: Bytes, format: AudioFormat) -> Result<String, ProviderError> {
        let key = format!("{SCRATCH}/{}.{}", uuid::Uuid::new_v4(), format.extension());
        self.blobs
            .put_blob(&key, format.mime_type(), audio)
            .await
            .map_err(|e| ProviderError::Failed(format!("cannot store the audio for Transcribe: {e}")))?;
        let outcome = self.run(&key, format).await;
        if let Err(error) = self.blobs.delete_blob(&key).await {
            tracing::warn!(%error, key, "could not delete transcribed audio");
        }
        outcome
    }

    async fn transcribe_stored(&self, key: &str, format: AudioFormat) -> Option<Result<String, ProviderError>> {
        Some(self.run(key, format).await)
    }
}
