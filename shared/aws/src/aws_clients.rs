//! Every AWS client the service builds, with retries and timeouts tuned for an interactive
//! API in this one place, and how the store's SDK failures are classified.
//!
//! The SDK's defaults suit batch jobs: the first back-off is near a second, three attempts,
//! no attempt timeout, and a retry quota that, once drained by a burst of faults, refills
//! only with later successes. Here a transient fault (a cut connection, a 5xx, throttling)
//! is retried after tens of milliseconds, every attempt is bounded, all attempts of a call
//! end well inside the 29 s a route has on Lambda, and the quota also refills with time.
//! What still fails becomes `StoreError::Unavailable`, answered 503 with `Retry-After`.

use std::time::Duration;

use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
// Every SDK crate re-exports the same runtime types.
use aws_sdk_dynamodb::config::retry::{RetryPartition, TokenBucket};

/// How one kind of client retries and times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// TCP (and TLS) connection set-up.
    pub connect: Duration,
    /// One attempt, from sending the request to reading the response (not a streamed body).
    pub attempt: Duration,
    /// The whole call: every attempt and every back-off.
    pub operation: Duration,
}

/// The first back-off: a retry after a cut connection or a 5xx mostly succeeds at once.
/// Back-offs double (with full jitter): ≤ 25, 50, 100, 200 ms, so five attempts of a call
/// that fails fast spend at most 375 ms waiting.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(25);
/// No back-off is longer than this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// DynamoDB: single-digit-millisecond calls, many per route. Five attempts make a call
/// survive a 20 % fault rate (0.2⁵ = 0.03 % of calls fail); a black-holed endpoint answers
/// 503 after 6 s.
pub const STORE: Tuning = Tuning {
    max_attempts: 5,
    connect: Duration::from_secs(1),
    attempt: Duration::from_secs(2),
    operation: Duration::from_secs(6),
};

/// S3: uploads of up to 100 MB (locally; 6 MB through Lambda) need longer attempts.
pub const BLOBS: Tuning = Tuning {
    max_attempts: 5,
    connect: Duration::from_secs(1),
    attempt: Duration::from_secs(15),
    operation: Duration::from_secs(25),
};

/// Polly and Transcribe: one synthesis of 3,000 characters takes a few seconds.
pub const SPEECH: Tuning = Tuning {
    max_attempts: 3,
    connect: Duration::from_secs(1),
    attempt: Duration::from_secs(10),
    operation: Duration::from_secs(25),
};

/// Bedrock: a Converse call generates a whole answer (a stream only needs to start within
/// the attempt); retries are few, since a refused model is answered at once as Dify does.
pub const MODEL: Tuning = Tuning {
    max_attempts: 3,
    connect: Duration::from_secs(1),
    attempt: Duration::from_secs(20),
    operation: Duration::from_secs(25),
};

/// The retry quota of one client: the SDK's costs (5 per retry, 10 after a timeout or a cut
/// connection) from 500 tokens, with a success giving one back as in the SDK, plus 10 a
/// second with time, so a quiet instance is not left without retries after a burst of
/// faults. A sustained outage still drains it, and calls then fail fast instead of
/// multiplying the load.
pub const QUOTA_CAPACITY: usize = 500;
pub const QUOTA_REFILL_PER_SECOND: f32 = 10.0;

impl Tuning {
    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(INITIAL_BACKOFF)
            .with_max_backoff(MAX_BACKOFF)
    }

    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }
}

/// A retry partition with its own quota (`name` only labels it in the SDK's logs).
fn retry_partition(name: &'static str) -> RetryPartition {
    let quota = TokenBucket::builder().capacity(QUOTA_CAPACITY).refill_rate(QUOTA_REFILL_PER_SECOND).build();
    RetryPartition::custom(name).token_bucket(quota).build()
}

/// The DynamoDB client configuration (a test may add an endpoint or interceptors).
pub fn dynamodb_config(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::from(sdk)
        .retry_config(STORE.retry_config())
        .timeout_config(STORE.timeout_config())
        .retry_partition(retry_partition("colloquy-dynamodb"))
}

pub fn dynamodb(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(dynamodb_config(sdk).build())
}

/// The S3 client configuration; path-style addressing for emulators and S3-compatible services.
pub fn s3_config(sdk: &aws_config::SdkConfig, force_path_style: bool) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(force_path_style)
        .retry_config(BLOBS.retry_config())
        .timeout_config(BLOBS.timeout_config())
        .retry_partition(retry_partition("colloquy-s3"))
}

pub fn s3(sdk: &aws_config::SdkConfig, force_path_style: bool) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(s3_config(sdk, force_path_style).build())
}

pub fn polly(sdk: &aws_config::SdkConfig) -> aws_sdk_polly::Client {
    let config = aws_sdk_polly::config::Builder::from(sdk)
        .retry_config(SPEECH.retry_config())
        .timeout_config(SPEECH.timeout_config())
        .retry_partition(retry_partition("colloquy-polly"));
    aws_sdk_polly::Client::from_conf(config.build())
}

pub fn transcribe(sdk: &aws_config::SdkConfig) -> aws_sdk_transcribe::Client {
    let config = aws_sdk_transcribe::config::Builder::from(sdk)
        .retry_config(SPEECH.retry_config())
        .timeout_config(SPEECH.timeout_config())
        .retry_partition(retry_partition("colloquy-transcribe"));
    aws_sdk_transcribe::Client::from_conf(config.build())
}

pub fn bedrock(sdk: &aws_config::SdkConfig) -> aws_sdk_bedrockruntime::Client {
    let config = aws_sdk_bedrockruntime::config::Builder::from(sdk)
        .retry_config(MODEL.retry_config())
        .timeout_config(MODEL.timeout_config())
        .retry_partition(retry_partition("colloquy-bedrock"));
    aws_sdk_bedrockruntime::Client::from_conf(config.build())
}

pub(crate) use failures::StoreFailure;

/// How the store's SDK failures become `StoreError`s: what retrying later may fix is
/// `Unavailable` (503); what it will not fix (a bug, a missing table, denied access) is `Failed` (500).
mod failures {
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};

    use colloquy_core::ports::StoreError;

    /// Error codes that mean "not now": throttling, a service-side fault, a conflicting or
    /// still-running transaction (the SDK retries most of them first).
    fn is_transient_code(code: &str) -> bool {
        matches!(
            code,
            "ThrottlingException"
                | "Throttling"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "LimitExceededException"
                | "InternalServerError"
                | "InternalFailure"
                | "InternalError"
                | "ServiceUnavailable"
                | "ServiceUnavailableException"
                | "RequestTimeout"
                | "RequestTimeoutException"
                | "SlowDown"
                | "TransactionConflictException"
                | "TransactionInProgressException"
                // A TransactGetItems cancelled by a concurrent write (conditions are read
                // from its reasons where a write transaction can fail one).
                | "TransactionCanceledException"
        )
    }

    /// Anything the adapters turn into a `StoreError`.
    pub(crate) trait StoreFailure {
        fn into_store_error(self) -> StoreError;
    }

    impl<E> StoreFailure for SdkError<E, HttpResponse>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        fn into_store_error(self) -> StoreError {
            let transient = match &self {
                SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
                SdkError::DispatchFailure(failure) => !failure.is_user(),
                SdkError::ServiceError(service) => {
                    service.raw().status().is_server_error() || self.code().is_some_and(is_transient_code)
                }
                _ => false,
            };
            let detail = DisplayErrorContext(self).to_string();
            if transient { StoreError::Unavailable(detail) } else { StoreError::Failed(detail) }
        }
    }

    /// A request the adapter could not even build: a bug.
    impl StoreFailure for BuildError {
        fn into_store_error(self) -> StoreError {
            StoreError::Failed(DisplayErrorContext(self).to_string())
        }
    }

    /// A response body that broke off while it was read.
    impl StoreFailure for aws_sdk_s3::primitives::ByteStreamError {
        fn into_store_error(self) -> StoreError {
            StoreError::Unavailable(DisplayErrorContext(self).to_string())
        }
    }

    impl StoreFailure for aws_sdk_s3::presigning::PresigningConfigError {
        fn into_store_error(self) -> StoreError {
            StoreError::Failed(DisplayErrorContext(self).to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_ends_within_a_lambda_route() {
        for tuning in [STORE, BLOBS, SPEECH, MODEL] {
            assert!(tuning.operation < Duration::from_secs(29), "{tuning:?}");
            assert!(tuning.attempt <= tuning.operation && tuning.connect < tuning.attempt, "{tuning:?}");
            let config = tuning.retry_config();
            assert_eq!(config.initial_backoff(), INITIAL_BACKOFF);
            assert_eq!(config.max_attempts(), tuning.max_attempts);
            // The worst back-offs of a call fit in a second.
            let waits: Duration = (0..tuning.max_attempts - 1).map(|n| INITIAL_BACKOFF * 2_u32.pow(n)).sum();
            assert!(waits < Duration::from_secs(1), "{tuning:?}");
        }
    }

    #[test]
    fn store_failures_are_classified() {
        use aws_sdk_dynamodb::config::http::HttpResponse;
        use aws_sdk_dynamodb::error::{ConnectorError, SdkError};
        use aws_sdk_dynamodb::operation::get_item::GetItemError;
        use aws_sdk_dynamodb::types::error::ResourceNotFoundException;

        use colloquy_core::ports::StoreError;

        let response =
            |status: u16| HttpResponse::new(status.try_into().unwrap(), aws_smithy_types::body::SdkBody::empty());
        let cut: SdkError<GetItemError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection closed before message completed".into()));
        assert!(matches!(cut.into_store_error(), StoreError::Unavailable(_)));
        let timeout: SdkError<GetItemError, HttpResponse> = SdkError::timeout_error("attempt timeout");
        assert!(matches!(timeout.into_store_error(), StoreError::Unavailable(_)));
        let throttled = SdkError::service_error(
            GetItemError::generic(
                aws_sdk_dynamodb::error::ErrorMetadata::builder().code("ThrottlingException").build(),
            ),
            response(400),
        );
        assert!(matches!(throttled.into_store_error(), StoreError::Unavailable(_)));
        let server = SdkError::service_error(
            GetItemError::generic(aws_sdk_dynamodb::error::ErrorMetadata::builder().code("Unknown").build()),
            response(502),
        );
        assert!(matches!(server.into_store_error(), StoreError::Unavailable(_)));
        let missing_table = SdkError::service_error(
            GetItemError::ResourceNotFoundException(ResourceNotFoundException::builder().message("no table").build()),
            response(400),
        );
        assert!(matches!(missing_table.into_store_error(), StoreError::Failed(_)));
        let bug: SdkError<GetItemError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::user("invalid header".into()));
        assert!(matches!(bug.into_store_error(), StoreError::Failed(_)));
    }
}
