//! The HTTP API as plain request → response functions, independent of how requests arrive
//! (API Gateway through lambda_http, or axum in the local dev server).

pub mod auth;
pub mod error;
pub mod ingest;
pub mod management;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

pub use auth::Tokens;
pub use error::ApiError;
pub use ingest::IngestHandler;
pub use management::ManagementHandler;

/// An HTTP request as the handlers see it.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiRequest {
    /// Query parameters, decoded; the last value of a repeated name wins.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .last()
    }

    /// From the parts of any `http` request (lambda_http, axum…).
    pub fn from_parts(parts: http::request::Parts, body: Bytes) -> Self {
        Self {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers,
            body,
        }
    }

    /// The path split into segments, without empty ones.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }
}

/// An HTTP response as the handlers produce it.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    pub fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Self {
            status,
            headers,
            body: Bytes::from(serde_json::to_vec(value).expect("JSON values serialize")),
        }
    }

    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    pub fn into_http(self) -> http::Response<Bytes> {
        let mut response = http::Response::new(self.body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }

    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl From<Result<ApiResponse, ApiError>> for ApiResponse {
    fn from(r: Result<ApiResponse, ApiError>) -> Self {
        r.unwrap_or_else(|e| e.into_response())
    }
}

/// Both handlers behind one entry point: what the local dev server serves.
pub struct Api {
    pub ingest: IngestHandler,
    pub management: ManagementHandler,
}

impl Api {
    pub async fn handle(&self, req: ApiRequest) -> ApiResponse {
        if req.path.trim_end_matches('/') == "/api/events" {
            self.ingest.handle(req).await
        } else {
            self.management.handle(req).await
        }
    }
}

/// Rejects bodies that are not JSON when a content type is given.
pub(crate) fn require_json(req: &ApiRequest) -> Result<(), ApiError> {
    match req.headers.get(http::header::CONTENT_TYPE) {
        None => Ok(()),
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

/// Parses a JSON request body, with a 400 naming the problem.
pub(crate) fn json_body(req: &ApiRequest) -> Result<serde_json::Value, ApiError> {
    require_json(req)?;
    if req.body.is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_slice(&req.body).map_err(|e| {
        ApiError::Validation(crate::validation::ValidationError::new(
            "",
            format!("body is not valid JSON: {e}"),
        ))
    })
}
