//! The API's one error enum and its mapping to status codes and JSON error bodies.

use super::ApiResponse;
use crate::ports::{QueueError, StoreError};
use crate::validation::ValidationError;
use http::StatusCode;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("this token may not use this route")]
    Forbidden,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Validation(ValidationError),
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    #[error("the hook was changed concurrently; read it again and retry")]
    Conflict,
    #[error("an event with this id is being accepted right now; retry shortly")]
    EventInProgress,
    #[error("the delivery is still pending")]
    DeliveryPending,
    #[error("the endpoint did not accept the test request")]
    TestFailed {
        response_status: Option<u16>,
        response_body: Option<String>,
    },
    #[error("the service is temporarily unavailable; retry later")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Conflict | ApiError::EventInProgress | ApiError::DeliveryPending => {
                StatusCode::CONFLICT
            }
            ApiError::TestFailed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "auth.unauthorized",
            ApiError::Forbidden => "auth.forbidden",
            ApiError::NotFound("hook not found") => "hook.not_found",
            ApiError::NotFound("delivery not found") => "delivery.not_found",
            ApiError::NotFound(_) => "route.not_found",
            ApiError::MethodNotAllowed => "route.method_not_allowed",
            ApiError::Validation(_) => "request.invalid",
            ApiError::PayloadTooLarge(_) => "request.too_large",
            ApiError::UnsupportedMediaType => "request.unsupported_media_type",
            ApiError::Conflict => "hook.conflict",
            ApiError::EventInProgress => "event.in_progress",
            ApiError::DeliveryPending => "delivery.pending",
            ApiError::TestFailed { .. } => "hook.test_failed",
            ApiError::Unavailable => "service.unavailable",
            ApiError::Internal => "internal",
        }
    }

    pub fn into_response(self) -> ApiResponse {
        let mut body = json!({ "code": self.code(), "message": self.to_string() });
        match &self {
            ApiError::Validation(v) => body["details"] = json!({ "field": v.field }),
            ApiError::TestFailed {
                response_status,
                response_body,
            } => {
                body["responseStatus"] = json!(response_status);
                body["responseBody"] = json!(response_body);
            }
            _ => {}
        }
        let response = ApiResponse::json(self.status(), &body);
        match self {
            ApiError::Unauthorized => response.with_header("www-authenticate", "Bearer"),
            ApiError::Unavailable => response.with_header("retry-after", "1"),
            _ => response,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_code_message_and_field() {
        let r = ApiError::Validation(ValidationError::new("config.url", "must use https"))
            .into_response();
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let body = r.body_json();
        assert_eq!(body["code"], "request.invalid");
        assert_eq!(body["details"]["field"], "config.url");
        assert_eq!(body["message"], "config.url: must use https");
        assert_eq!(
            ApiError::NotFound("hook not found").code(),
            "hook.not_found"
        );
        assert_eq!(
            ApiError::from(StoreError::Unavailable("x".into())).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
