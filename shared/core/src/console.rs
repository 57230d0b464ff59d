//! The console (a Colloquy extension): the web page for the people who run an app, served at
//! `/console/` from assets compiled into the program (the repository's `console/`). It talks to
//! the operator API from the browser with the operator key the user signs in with; serving it
//! needs no store. Every answer carries a strict Content-Security-Policy (no inline script or
//! style, nothing from another origin), `nosniff`, no referrer and no framing.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::api::{ApiResponse, ResponseBody};

/// The console's files: (path under `/console/`, content type, bytes).
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    ("", "text/html; charset=utf-8", include_bytes!("../../../console/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../../console/app.js")),
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../../console/app.css")),
];

/// What every console answer allows the page to do.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// Whether `path` is the console's (the local server and the console function answer it).
pub fn is_console(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// The answer to a request for the console's `path`.
pub fn respond(method: &Method, path: &str) -> ApiResponse {
    let mut headers = security_headers();
    if method != Method::GET && method != Method::HEAD {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return text(StatusCode::METHOD_NOT_ALLOWED, headers, "Method not allowed.\n");
    }
    if path == "/console" {
        headers.insert(header::LOCATION, HeaderValue::from_static("/console/"));
        return text(StatusCode::PERMANENT_REDIRECT, headers, "");
    }
    let name = path.strip_prefix("/console/").unwrap_or_default();
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(asset, _, _)| *asset == name) else {
        return text(StatusCode::NOT_FOUND, headers, "Not found.\n");
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    // The page is read again on every visit (a new program version brings new files).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let body = if method == Method::HEAD { Bytes::new() } else { Bytes::from_static(bytes) };
    ApiResponse { status: StatusCode::OK, headers, body: ResponseBody::Full(body) }
}

fn security_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
}

fn text(status: StatusCode, mut headers: HeaderMap, body: &'static str) -> ApiResponse {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    ApiResponse { status, headers, body: ResponseBody::Full(Bytes::from_static(body.as_bytes())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_carry_the_security_headers() {
        for (name, content_type, _) in ASSETS {
            let response = respond(&Method::GET, &format!("/console/{name}"));
            assert_eq!(response.status, StatusCode::OK, "{name}");
            assert_eq!(response.headers[header::CONTENT_TYPE], *content_type);
            assert_eq!(response.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(response.headers[header::REFERRER_POLICY], "no-referrer");
            assert_eq!(response.headers[header::X_FRAME_OPTIONS], "DENY");
            assert!(response.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
        }
        assert_eq!(respond(&Method::GET, "/console").status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(respond(&Method::GET, "/console/nope.js").status, StatusCode::NOT_FOUND);
        assert_eq!(respond(&Method::POST, "/console/").status, StatusCode::METHOD_NOT_ALLOWED);
        let head = respond(&Method::HEAD, "/console/app.js");
        assert!(head.body.as_full().unwrap().is_empty() && head.headers.contains_key(header::CONTENT_LENGTH));
    }

    #[test]
    fn the_page_runs_no_inline_script_or_style() {
        let page = std::str::from_utf8(ASSETS[0].2).unwrap();
        assert!(!page.contains("<script>") && !page.contains(" style=") && !page.contains("<style"));
        assert!(!page.contains("http://") && !page.contains("https://"), "nothing from another origin");
    }
}
