//! Colloquy on AWS: DynamoDB for data, S3 for files and audio, Amazon Polly and Amazon
//! Transcribe for speech, Amazon Bedrock for models. Every client is built through
//! [`aws_clients`] (its retries and time-outs) on the HTTP client of [`trust`] (its root
//! certificates). Implements the core's ports.

pub mod aws_clients;
mod aws_errors;
pub mod bedrock;
pub mod dynamo;
pub mod polly;
pub mod s3;
pub mod transcribe;
pub mod trust;

use std::sync::Arc;

use aws_config::environment::{EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider};

use colloquy_core::models::Provider;
use colloquy_core::ports::{SpeechSynthesizer, Transcriber};
use colloquy_core::settings::{BedrockSettings, StoreSettings, TranscribePolling};

/// The AWS configuration of a process (region, credentials, endpoints), loaded once, and
/// every adapter built from it.
#[derive(Clone)]
pub struct Aws {
    config: aws_config::SdkConfig,
}

impl Aws {
    /// The standard AWS environment (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL*`), with
    /// one HTTP client for every SDK client and credential provider, verifying against the
    /// compiled-in roots or `SSL_CERT_FILE`'s ([`trust`]). Fails only on an unusable
    /// `SSL_CERT_FILE`.
    ///
    /// Credentials in the environment (always so on Lambda) are taken from it directly: the
    /// SDK's default chain would take them from there too, as its first source, but it builds
    /// every other source first (an STS client with its endpoint rules for web identity, the
    /// SSO, container and instance metadata providers), a quarter of a function's start-up.
    /// Without them, the default chain finds them (a profile, SSO, instance metadata). The
    /// region likewise: from the environment when it is there (always on Lambda).
    pub async fn load(settings: &StoreSettings) -> Result<Self, trust::CertFileError> {
        let http_client = trust::http_client(&trust::Roots::from_cert_file(settings.cert_file.clone()))?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http_client);
        if settings.env_credentials {
            loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
        }
        if settings.env_region {
            loader = loader.region(EnvironmentVariableRegionProvider::new());
        }
        Ok(Self::from_config(loader.load().await))
    }

    pub fn from_config(config: aws_config::SdkConfig) -> Self {
        Self { config }
    }

    pub fn store(&self, settings: &StoreSettings) -> dynamo::DynamoStore {
        dynamo::DynamoStore::new(aws_clients::dynamodb(&self.config), settings.table.clone())
    }

    pub fn blobs(&self, settings: &StoreSettings) -> s3::S3Blobs {
        s3::S3Blobs::new(aws_clients::s3(&self.config, settings.s3_path_style), settings.bucket.clone())
    }

    /// Bedrock as a model provider (chat and embeddings).
    pub fn bedrock(&self, settings: &BedrockSettings) -> Provider {
        let bedrock = Arc::new(bedrock::Bedrock::new(aws_clients::bedrock(&self.config), settings.clone()));
        Provider { name: "bedrock", llm: bedrock.clone(), embedder: Some(bedrock) }
    }

    pub fn polly(&self, engine: &str) -> Arc<dyn SpeechSynthesizer> {
        Arc::new(polly::Polly::new(aws_clients::polly(&self.config), engine))
    }

    /// Transcribe, which reads the audio from and writes its transcript to `blobs`' bucket.
    pub fn transcribe(
        &self,
        blobs: s3::S3Blobs,
        language: Option<String>,
        polling: TranscribePolling,
    ) -> Arc<dyn Transcriber> {
        let client = aws_clients::transcribe(&self.config);
        Arc::new(transcribe::AwsTranscribe::new(client, blobs, language, polling.into()))
    }
}
