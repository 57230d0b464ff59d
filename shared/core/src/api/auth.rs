//! `Authorization: Bearer <key>`, checked as Dify checks it, and the key's role checked
//! against the endpoint's access (in this one place).

use http::{HeaderMap, header};

use super::Services;
use super::routes::Access;
use crate::api::error::ApiError;
use crate::domain::{ApiKey, AppStatus, Grant, KeyRecord, KeyRole};

/// Finds the app a request's key belongs to, checks the app may be used and that the key's
/// role may call an endpoint of `access`.
pub(crate) async fn authenticate(services: &Services, headers: &HeaderMap, access: Access) -> Result<Grant, ApiError> {
    let raw = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).unwrap_or("");
    let Some((scheme, token)) = raw.trim().split_once(char::is_whitespace) else {
        return Err(ApiError::Unauthorized("Authorization header must be provided and start with 'Bearer'"));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized("Authorization scheme must be 'Bearer'"));
    }
    let hash = ApiKey::presented(token.trim()).hash();
    let now = services.clock.now();
    let grant = match services.keys.get(&hash, now) {
        Some(grant) => grant,
        None => {
            let Some(grant) = services.store.app_for_key(&hash).await? else {
                return Err(ApiError::Unauthorized("Access token is invalid"));
            };
            if KeyRecord::use_is_stale(grant.last_used_at, now) {
                // Best effort: a key that works is not refused because its use was not noted.
                if let Err(error) = services.store.touch_key(&hash, now).await {
                    tracing::warn!(%error, "could not record a key's use");
                }
            }
            services.keys.put(&hash, &grant, now);
            grant
        }
    };
    if grant.app.config.status != AppStatus::Normal {
        return Err(ApiError::Forbidden("The app's status is abnormal."));
    }
    if !grant.app.config.enable_api {
        return Err(ApiError::Forbidden("The app's API service has been disabled."));
    }
    match (access, grant.role) {
        (Access::AnyKey, _) | (Access::AppKey, KeyRole::App) | (Access::OperatorKey, KeyRole::Operator) => Ok(grant),
        (Access::OperatorKey, KeyRole::App) => Err(ApiError::Forbidden("This route needs an operator key.")),
        (Access::AppKey, KeyRole::Operator) => {
            Err(ApiError::Forbidden("An operator key cannot act as an end user; use an app key."))
        }
    }
}
