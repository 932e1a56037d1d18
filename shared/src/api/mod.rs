//! The HTTP API: one axum router that the dev server serves with `axum::serve` and both
//! HTTP Lambdas serve through `lambda_http`, so routes, checks and answers cannot differ
//! between entry points.

pub mod auth;
pub mod bodies;
pub mod checks;
pub mod console;
pub mod error;
pub mod hook_events;
pub mod hooks;
pub mod ingest;
pub mod logs;
pub mod management;
pub mod paging;
pub mod recoveries;
pub mod router;
pub mod stats;
pub mod views;

use crate::domain::event::MAX_BODY_BYTES;
use crate::domain::validation::ValidationError;
use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http::HeaderMap;

pub use auth::Tokens;
pub use error::ApiError;
pub use ingest::IngestHandler;
pub use management::ManagementHandler;
pub use router::{Api, router};

/// The window the delivery log and a hook's stats cover when the query names no start.
pub(crate) const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The request body, at most [`MAX_BODY_BYTES`] (413 above). Extracted last, so routing,
/// the token and the method are checked before any of it is read.
pub(crate) struct LimitedBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for LimitedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES + 1).await {
            Ok(bytes) if bytes.len() <= MAX_BODY_BYTES => Ok(LimitedBody(bytes)),
            _ => Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES)),
        }
    }
}

/// The most a Logto relay body may hold: Logto sends organization membership deltas of up to
/// four lists of 5,000 ids (about 470 KB with 21-character ids); such a body is kept once,
/// deflated, within DynamoDB's 400 KB item.
pub const MAX_RELAYED_BYTES: usize = 512 * 1024;

/// A relayed body, at most [`MAX_RELAYED_BYTES`] (413 above), extracted last as
/// [`LimitedBody`] is.
pub(crate) struct RelayedBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RelayedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        match axum::body::to_bytes(req.into_body(), MAX_RELAYED_BYTES + 1).await {
            Ok(bytes) if bytes.len() <= MAX_RELAYED_BYTES => Ok(RelayedBody(bytes)),
            _ => Err(ApiError::PayloadTooLarge(MAX_RELAYED_BYTES)),
        }
    }
}

/// A JSON request body: size, then content type, then strict parsing (an empty body is `{}`).
pub(crate) struct JsonBody(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let LimitedBody(bytes) = LimitedBody::from_request(req, state).await?;
        require_json(&headers)?;
        if bytes.is_empty() {
            return Ok(JsonBody(serde_json::Value::Object(Default::default())));
        }
        Ok(JsonBody(crate::domain::json::parse(&bytes)?))
    }
}

/// Rejects bodies that are not JSON when a content type is given.
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(http::header::CONTENT_TYPE) {
        None => Ok(()),
        Some(_) => require_declared_json(headers),
    }
}

/// As [`require_json`], and the type must be declared: events are never read from a body of
/// unknown type.
pub(crate) fn require_declared_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(http::header::CONTENT_TYPE) {
        None => Err(ApiError::UnsupportedMediaType),
        Some(v) => {
            let essence = v
                .to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if essence == "application/json" || essence.ends_with("+json") {
                Ok(())
            } else {
                Err(ApiError::UnsupportedMediaType)
            }
        }
    }
}

/// A query parameter, decoded; the last value of a repeated name wins.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .last()
}

/// A query parameter in unix milliseconds, if given.
pub(crate) fn ms_param(query: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    query_param(query, name)
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ValidationError::new(name, "must be unix milliseconds").into())
        })
        .transpose()
}

/// As [`ms_param`], read as JavaScript reads a number, as Logto does: decimals and exponents
/// too (`1.7e12`), rounded down.
pub(crate) fn js_ms_param(query: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    query_param(query, name)
        .map(|v| {
            let ms = v.trim().parse::<i64>().ok().or_else(|| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && f.abs() < 9.0e15)
                    .map(|f| f.floor() as i64)
            });
            ms.ok_or_else(|| ValidationError::new(name, "must be unix milliseconds").into())
        })
        .transpose()
}
