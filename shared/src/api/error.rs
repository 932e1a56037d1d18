//! The API's one error enum and its mapping to status codes and JSON error bodies. Routing
//! refusals (no such route, method not served) are variants too, so every answer the router
//! gives, matched or not, has the same shape.

use crate::app::PortError;
use crate::app::ingest::IngestError;
use crate::app::samples::{SampleError, SampleFailure};
use crate::domain::validation::ValidationError;
use crate::ports::{QueueError, StoreError};
use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("this token may not use this route")]
    Forbidden,
    #[error("the logto-signature-sha-256 header does not sign this body for this source")]
    SignatureInvalid,
    #[error("route not found")]
    RouteNotFound,
    #[error("this route does not serve this method")]
    MethodNotAllowed,
    #[error("hook not found")]
    HookNotFound,
    #[error("delivery not found")]
    DeliveryNotFound,
    #[error("recovery not found")]
    RecoveryNotFound,
    /// A field of the body or query breaks a rule (Logto's `guard.invalid_input`).
    #[error("{0}")]
    Validation(ValidationError),
    /// `page`, `page_size` or `cursor` is not usable (Logto's `guard.invalid_pagination`).
    #[error("{0}")]
    InvalidPagination(ValidationError),
    /// A delivery-log window whose start is after its end (Logto's `log.invalid_time_window`).
    #[error("{0}")]
    InvalidTimeWindow(ValidationError),
    #[error("the request line or header section is not valid HTTP, or too large")]
    MalformedRequest,
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    #[error("the hook was changed concurrently; read it again and retry")]
    Conflict,
    #[error("a hook with this id exists")]
    HookExists,
    #[error("an event with this id is being accepted right now; retry shortly")]
    EventInProgress,
    #[error("the delivery is still pending")]
    DeliveryPending,
    #[error("you need to provide at least one event")]
    MissingEvents,
    #[error("the endpoint responded with an error")]
    TestFailed {
        response_status: Option<u16>,
        response_body: Option<String>,
        /// Every sample's `{event, status?, error?}`.
        results: Vec<serde_json::Value>,
    },
    #[error("failed to send the test payload: {0}")]
    TestNotSent(String, Vec<serde_json::Value>),
    #[error("the service is temporarily unavailable; retry later")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::SignatureInvalid => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::RouteNotFound
            | ApiError::HookNotFound
            | ApiError::DeliveryNotFound
            | ApiError::RecoveryNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Validation(_)
            | ApiError::InvalidPagination(_)
            | ApiError::InvalidTimeWindow(_)
            | ApiError::MalformedRequest
            | ApiError::MissingEvents => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Conflict
            | ApiError::HookExists
            | ApiError::EventInProgress
            | ApiError::DeliveryPending => StatusCode::CONFLICT,
            ApiError::TestFailed { .. } | ApiError::TestNotSent(..) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "auth.unauthorized",
            ApiError::Forbidden => "auth.forbidden",
            ApiError::SignatureInvalid => "auth.invalid_signature",
            ApiError::RouteNotFound => "route.not_found",
            ApiError::MethodNotAllowed => "route.method_not_allowed",
            ApiError::HookNotFound => "hook.not_found",
            ApiError::DeliveryNotFound => "delivery.not_found",
            ApiError::RecoveryNotFound => "recovery.not_found",
            ApiError::Validation(_) => "guard.invalid_input",
            ApiError::InvalidPagination(_) => "guard.invalid_pagination",
            ApiError::InvalidTimeWindow(_) => "log.invalid_time_window",
            ApiError::MalformedRequest => "request.malformed",
            ApiError::PayloadTooLarge(_) => "request.too_large",
            ApiError::UnsupportedMediaType => "request.unsupported_media_type",
            ApiError::Conflict => "hook.conflict",
            ApiError::HookExists => "hook.id_taken",
            ApiError::EventInProgress => "event.in_progress",
            ApiError::DeliveryPending => "delivery.pending",
            ApiError::MissingEvents => "hook.missing_events",
            ApiError::TestFailed { .. } => "hook.endpoint_responded_with_error",
            ApiError::TestNotSent(..) => "hook.send_test_payload_failed",
            ApiError::Unavailable => "service.unavailable",
            ApiError::Internal => "internal",
        }
    }

    /// The JSON error body, Logto's envelope: `{code, message, data?, details?}`. A refused
    /// field is `data.field` and described in `details`; the test button's endpoint answer is
    /// `data.responseStatus` and `data.responseBody` (also at the top level, as before).
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({ "code": self.code(), "message": self.to_string() });
        match self {
            ApiError::Validation(v)
            | ApiError::InvalidPagination(v)
            | ApiError::InvalidTimeWindow(v) => {
                body["data"] = json!({ "field": v.field });
                body["details"] =
                    format!("Error in key path \"{}\": {}", v.field, v.message).into();
            }
            ApiError::MissingEvents => body["data"] = json!({ "field": "events" }),
            ApiError::TestNotSent(_, results) => body["data"] = json!({ "results": results }),
            ApiError::TestFailed {
                response_status,
                response_body,
                results,
            } => {
                body["data"] = json!({
                    "responseStatus": response_status,
                    "responseBody": response_body,
                    "results": results,
                });
                body["responseStatus"] = json!(response_status);
                body["responseBody"] = json!(response_body);
            }
            _ => {}
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        let extra = match self {
            ApiError::Unauthorized => Some(("www-authenticate", "Bearer")),
            ApiError::Unavailable => Some(("retry-after", "1")),
            _ => None,
        };
        if let Some((name, value)) = extra {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
        response
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::Validation(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict | StoreError::AlreadyExists => ApiError::Conflict,
            StoreError::Unavailable(detail) => {
                tracing::error!(error = %detail, "storage unavailable");
                ApiError::Unavailable
            }
            StoreError::Corrupt(detail) => {
                tracing::error!(error = %detail, "malformed stored item");
                ApiError::Internal
            }
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        tracing::error!(error = %e, "queue unavailable");
        ApiError::Unavailable
    }
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Store(e) => e.into(),
            PortError::Queue(e) => e.into(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Invalid(e) => e.into(),
            IngestError::InProgress => ApiError::EventInProgress,
            IngestError::Port(e) => e.into(),
        }
    }
}

/// The test button's failures.
impl From<SampleFailure> for ApiError {
    fn from(e: SampleFailure) -> Self {
        match e.first {
            SampleError::Answered { status, body } => ApiError::TestFailed {
                response_status: Some(status),
                response_body: body,
                results: e.results,
            },
            SampleError::NotSent(reason) => ApiError::TestNotSent(reason, e.results),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_render_code_message_and_field() {
        let r = ApiError::Validation(ValidationError::new("config.url", "must use https"))
            .into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()["content-type"], "application/json");
        let bytes = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["code"], "guard.invalid_input");
        assert_eq!(body["data"]["field"], "config.url");
        assert_eq!(
            body["details"],
            "Error in key path \"config.url\": must use https"
        );
        assert_eq!(body["message"], "config.url: must use https");
        assert_eq!(ApiError::HookNotFound.code(), "hook.not_found");
        assert_eq!(ApiError::RouteNotFound.code(), "route.not_found");
        assert_eq!(
            ApiError::from(StoreError::Unavailable("x".into())).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let r = ApiError::Unauthorized.into_response();
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
    }
}
