//! How failures of AWS model and speech services become provider errors.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use colloquy_core::ports::ProviderError;

/// Classifies an SDK failure the way Dify reports provider failures.
pub(crate) fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    error: SdkError<E, R>,
) -> ProviderError {
    let detail = error.message().map(str::to_owned).unwrap_or_else(|| format!("{error:?}"));
    match error.code() {
        Some("AccessDeniedException" | "UnrecognizedClientException" | "ExpiredTokenException") => {
            ProviderError::NotInitialized(detail)
        }
        Some("ThrottlingException" | "ServiceQuotaExceededException" | "LimitExceededException") => {
            ProviderError::RateLimited(detail)
        }
        Some(code) => ProviderError::Failed(format!("{code}: {detail}")),
        // A request that could not be built: typically no credentials or region.
        None if matches!(error, SdkError::ConstructionFailure(_)) => ProviderError::NotInitialized(detail),
        None => ProviderError::Failed(detail),
    }
}
