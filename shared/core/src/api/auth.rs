//! `Authorization: Bearer <app key>`, checked as Dify checks it.

use http::{HeaderMap, header};

use super::Services;
use crate::api::error::ApiError;
use crate::domain::{ApiKey, App, AppStatus};

/// Finds the app a request's key belongs to and checks the app may be used.
pub(crate) async fn authenticate(services: &Services, headers: &HeaderMap) -> Result<App, ApiError> {
    let raw = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).unwrap_or("");
    let Some((scheme, token)) = raw.trim().split_once(char::is_whitespace) else {
        return Err(ApiError::Unauthorized("Authorization header must be provided and start with 'Bearer'"));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized("Authorization scheme must be 'Bearer'"));
    }
    let hash = ApiKey::presented(token.trim()).hash();
    let now = services.clock.now();
    let app = match services.keys.get(&hash, now) {
        Some(app) => app,
        None => {
            let Some(app) = services.store.app_for_key(&hash).await? else {
                return Err(ApiError::Unauthorized("Access token is invalid"));
            };
            services.keys.put(&hash, &app, now);
            app
        }
    };
    if app.config.status != AppStatus::Normal {
        return Err(ApiError::Forbidden("The app's status is abnormal."));
    }
    if !app.config.enable_api {
        return Err(ApiError::Forbidden("The app's API service has been disabled."));
    }
    Ok(app)
}
