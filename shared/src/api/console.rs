//! The operator console: static files compiled into the binary and served at `/console/` with
//! a strict Content-Security-Policy. The pages call the same JSON API with the admin token the
//! operator pastes; serving them needs no token, and they hold no secret.

use super::ApiError;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};

/// Only the console's own files, no inline script or style, calls to this origin only, and
/// never inside a frame.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'self'; \
form-action 'self'; frame-ancestors 'none'";

/// `(name, content type, contents)` of every file.
pub const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../console/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/dom.js"),
    ),
    (
        "hooks.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/hooks.js"),
    ),
    (
        "hook.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/hook.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/charts.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../console/style.css"),
    ),
];

/// `GET /console/` and `GET /console` (the page names its base, so either address works,
/// whichever of them a gateway in front passes on).
pub async fn index() -> Response {
    file("index.html").unwrap_or_else(|| ApiError::RouteNotFound.into_response())
}

/// `GET /console/{file}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    file(&name).unwrap_or_else(|| ApiError::RouteNotFound.into_response())
}

fn file(name: &str) -> Option<Response> {
    let (_, content_type, contents) = FILES.iter().find(|(n, _, _)| *n == name)?;
    let mut response = (*contents).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}
