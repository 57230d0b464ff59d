//! Cross-origin requests, answered as Dify's Service API answers them (Flask-CORS on its
//! blueprint): the caller's origin echoed with `Vary: Origin`, Dify's methods and request
//! headers, and its exposed headers. Which origins are allowed is configurable.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::{ApiRequest, ApiResponse, ResponseBody, routes};
use crate::api::error::ApiError;

/// Dify's Service API methods (what Flask-CORS answers in preflights, whatever the route).
const METHODS: &str = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT";
/// Request headers a browser may send (Dify's list, and our `Idempotency-Key`).
const REQUEST_HEADERS: [&str; 5] = ["content-type", "authorization", "x-app-code", "x-app-passport", "idempotency-key"];
/// Response headers scripts may read (Dify's list, and our `Idempotent-Replayed`).
const EXPOSED: &str = "X-Version, X-Env, X-Trace-Id, Idempotent-Replayed";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// The origins allowed to call the API from a browser.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Cors {
    /// Any origin (Dify's default).
    #[default]
    AnyOrigin,
    /// Only these origins (`scheme://host[:port]`, compared exactly, without a trailing slash).
    Origins(Vec<String>),
    /// No cross-origin access.
    Off,
}

impl Cors {
    /// Reads a setting: `*` (any origin), empty or `none` (off), or a comma-separated list.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw == "*" {
            return Ok(Self::AnyOrigin);
        }
        if raw.is_empty() || raw.eq_ignore_ascii_case("none") {
            return Ok(Self::Off);
        }
        let mut origins = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let origin = origin.trim_end_matches('/');
            let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.split_once("://").is_some_and(|(_, rest)| rest.is_empty() || rest.contains('/'));
            if !valid {
                return Err(format!("'{origin}' is not an origin (scheme://host[:port])"));
            }
            origins.push(origin.to_owned());
        }
        Ok(Self::Origins(origins))
    }

    /// The request's `Origin` when it may call us.
    pub(crate) fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let allowed = match self {
            Self::AnyOrigin => true,
            Self::Origins(list) => origin.to_str().is_ok_and(|o| list.iter().any(|allowed| allowed == o)),
            Self::Off => false,
        };
        allowed.then(|| origin.clone())
    }

    /// Adds the CORS headers for an allowed origin (and `Vary: Origin` whenever it matters).
    pub(crate) fn decorate(&self, headers: &mut HeaderMap, origin: Option<HeaderValue>) {
        if *self != Self::Off {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(origin) = origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
        }
    }
}

/// The answer to an `OPTIONS` request: 200 for a route of the API, with the preflight headers
/// when the origin is allowed; 404 for anything else. Needs no key (browsers send none).
pub(crate) fn preflight(request: &ApiRequest, allowed: bool) -> ApiResponse {
    let Some(allow) = routes::allowed_at(&request.path) else {
        return ApiError::RouteNotFound.into_response();
    };
    let mut headers = HeaderMap::new();
    if let Ok(allow) = HeaderValue::from_str(&allow) {
        headers.insert(header::ALLOW, allow);
    }
    if allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(METHODS));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        let requested =
            request.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).and_then(|v| v.to_str().ok()).unwrap_or("");
        let granted: Vec<&str> = requested
            .split(',')
            .map(str::trim)
            .filter(|name| REQUEST_HEADERS.iter().any(|allowed| allowed.eq_ignore_ascii_case(name)))
            .collect();
        if let Ok(value) = HeaderValue::from_str(&granted.join(", "))
            && !granted.is_empty()
        {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
    }
    ApiResponse { status: StatusCode::OK, headers, body: ResponseBody::Full(Bytes::new()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        assert_eq!(Cors::parse("*").unwrap(), Cors::AnyOrigin);
        assert_eq!(Cors::parse("none").unwrap(), Cors::Off);
        assert_eq!(
            Cors::parse("https://a.example, http://localhost:3000/").unwrap(),
            Cors::Origins(vec!["https://a.example".into(), "http://localhost:3000".into()])
        );
        assert!(Cors::parse("a.example").is_err());
        assert!(Cors::parse("https://a.example/path").is_err());
    }

    #[test]
    fn only_listed_origins_are_echoed() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://a.example"));
        let listed = Cors::Origins(vec!["https://a.example".into()]);
        assert_eq!(listed.allowed_origin(&headers).unwrap(), "https://a.example");
        let other = Cors::Origins(vec!["https://b.example".into()]);
        assert!(other.allowed_origin(&headers).is_none());
        assert!(Cors::Off.allowed_origin(&headers).is_none());
        assert!(Cors::AnyOrigin.allowed_origin(&HeaderMap::new()).is_none());
    }
}
