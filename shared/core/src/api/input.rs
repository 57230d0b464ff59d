//! Reading parameters the way real Dify clients send them: empty query values count as
//! absent, GETs may carry `{}`, unknown parameters are ignored.

use std::str::FromStr;

use http::header;
use serde_json::{Map, Value};

use super::ApiRequest;
use crate::api::error::ApiError;
use crate::domain::{Invalid, UserRef};

/// A parsed query string.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: &str) -> Self {
        Self(form_urlencoded::parse(raw.as_bytes()).into_owned().collect())
    }

    /// The first value of `name`; an empty value counts as absent (httpx sends `limit=`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).filter(|v| !v.is_empty())
    }

    /// Every parameter, in order, as given.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether `name` is present at all, even empty.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(key, _)| key == name)
    }

    /// An optional UUID parameter.
    pub fn id<T: FromStr<Err = Invalid>>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name).map(|raw| parse_id(name, raw)).transpose()
    }

    /// `user` from the query; absent means Dify's shared `DEFAULT-USER` unless required.
    pub fn user(&self, required: bool) -> Result<UserRef, ApiError> {
        match self.get("user") {
            Some(raw) => Ok(UserRef::parse(raw)?),
            None if required => Err(Invalid::new("Arg user must be provided.").into()),
            None => Ok(UserRef::default_user()),
        }
    }
}

pub(crate) fn parse_id<T: FromStr<Err = Invalid>>(name: &str, raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::InvalidParam(format!("{name}: '{raw}' is not a valid UUID")))
}

/// Whether the request says its body is JSON (`application/json` or `application/*+json`).
pub(crate) fn declares_json(request: &ApiRequest) -> bool {
    request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// The JSON object body of a request. An empty body counts as `{}`; a non-empty body must be
/// declared JSON (else 415) and be a JSON object (else 400).
pub(crate) fn json_body(request: &ApiRequest) -> Result<Map<String, Value>, ApiError> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if !declares_json(request) {
        return Err(ApiError::UnsupportedMediaType);
    }
    match serde_json::from_slice(&request.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::BadRequest("The JSON payload must be an object.".into())),
        Err(_) => Err(ApiError::MalformedJson),
    }
}

/// Typed access to fields of a JSON body.
pub(crate) struct Body(pub Map<String, Value>);

impl Body {
    pub fn read(request: &ApiRequest) -> Result<Self, ApiError> {
        json_body(request).map(Self)
    }

    fn present(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|value| !value.is_null())
    }

    /// `user` from the body: a string, or a number turned into one.
    pub fn user(&self, required: bool) -> Result<UserRef, ApiError> {
        let raw = match self.present("user") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(Invalid::new("user: Input should be a valid string").into()),
            None => String::new(),
        };
        match raw.as_str() {
            "" if required => Err(Invalid::new("Arg user must be provided.").into()),
            "" => Ok(UserRef::default_user()),
            raw => Ok(UserRef::parse(raw)?),
        }
    }

    /// An optional string field (`null` counts as absent).
    pub fn string(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::InvalidParam(format!("{name}: Input should be a valid string"))),
        }
    }

    /// An optional boolean field; accepts what pydantic's lax mode accepts.
    pub fn boolean(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.present(name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(false),
            Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(true),
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
                "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
                _ => Err(ApiError::InvalidParam(format!("{name}: Input should be a valid boolean"))),
            },
            Some(_) => Err(ApiError::InvalidParam(format!("{name}: Input should be a valid boolean"))),
        }
    }

    /// A boolean field that may be absent (or `null`).
    pub fn optional_boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        if self.present(name).is_none() { Ok(None) } else { self.boolean(name, false).map(Some) }
    }

    /// A field that may be `null` but whose key is required.
    pub fn required_any(&self, name: &str) -> Result<&Value, ApiError> {
        self.0.get(name).ok_or_else(|| ApiError::InvalidParam(format!("{name}: Field required")))
    }

    pub fn raw(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method};

    fn request(content_type: Option<&str>, body: &str) -> ApiRequest {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        ApiRequest {
            method: Method::POST,
            path: "/v1/x".into(),
            query: String::new(),
            headers,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn empty_values_are_absent() {
        let query = Query::parse("user=u&limit=&pinned=True&last_id=");
        assert_eq!(query.get("user"), Some("u"));
        assert_eq!(query.get("limit"), None);
        assert!(query.has("limit"));
        assert_eq!(query.id::<crate::domain::ConversationId>("last_id").unwrap(), None);
        assert!(query.id::<crate::domain::ConversationId>("user").is_err());
        assert_eq!(query.user(false).unwrap().as_str(), "u");
        assert_eq!(Query::parse("").user(false).unwrap().as_str(), "DEFAULT-USER");
        assert!(Query::parse("user=").user(true).is_err());
    }

    #[test]
    fn json_bodies() {
        assert!(json_body(&request(None, "")).unwrap().is_empty());
        assert!(json_body(&request(Some("application/json"), "  ")).unwrap().is_empty());
        assert_eq!(json_body(&request(Some("application/json; charset=utf-8"), r#"{"a":1}"#)).unwrap()["a"], 1);
        assert!(matches!(json_body(&request(Some("text/plain"), "{}")), Err(ApiError::UnsupportedMediaType)));
        assert!(matches!(json_body(&request(None, "{}")), Err(ApiError::UnsupportedMediaType)));
        assert!(matches!(json_body(&request(Some("application/json"), "{")), Err(ApiError::MalformedJson)));
        assert!(matches!(json_body(&request(Some("application/json"), "[]")), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn body_fields() {
        let body = Body::read(&request(Some("application/json"), r#"{"user":42,"flag":"true","name":null}"#)).unwrap();
        assert_eq!(body.user(true).unwrap().as_str(), "42");
        assert!(body.boolean("flag", false).unwrap());
        assert_eq!(body.string("name").unwrap(), None);
        let body = Body::read(&request(Some("application/json"), r#"{"user":"","flag":[]}"#)).unwrap();
        assert!(body.user(true).is_err());
        assert_eq!(body.user(false).unwrap().as_str(), "DEFAULT-USER");
        assert!(body.boolean("flag", false).is_err());
    }
}
