//! The console API's error type: `{"error":{"message","code"}}` with a fitting status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burncloud_service_api::{RemoteFailure, ServiceError};

#[derive(Debug)]
pub enum ConsoleError {
    Unauthorized,
    ForeignOrigin,
    BadRequest(String),
    NotFound(String),
    Service(ServiceError),
    Internal(String),
}

impl From<ServiceError> for ConsoleError {
    fn from(error: ServiceError) -> Self {
        ConsoleError::Service(error)
    }
}

impl ConsoleError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::Unauthorized => StatusCode::UNAUTHORIZED,
            ConsoleError::ForeignOrigin => StatusCode::FORBIDDEN,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Service(error) => match error {
                ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
                ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
                ServiceError::Conflict(_) => StatusCode::CONFLICT,
                ServiceError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
                ServiceError::Remote { code: RemoteFailure::HubTokenRequired | RemoteFailure::HubGated, .. } => {
                    StatusCode::FORBIDDEN
                }
                ServiceError::Remote { code: RemoteFailure::LlamaServerMissing, .. } => StatusCode::SERVICE_UNAVAILABLE,
                ServiceError::Remote { code: RemoteFailure::RuntimeNotFound, .. } => StatusCode::NOT_FOUND,
                ServiceError::Remote { .. } => StatusCode::BAD_GATEWAY,
                ServiceError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
                ServiceError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ConsoleError::Unauthorized => "unauthorized",
            ConsoleError::ForeignOrigin => "forbidden_origin",
            ConsoleError::BadRequest(_) => "invalid_request",
            ConsoleError::NotFound(_) => "not_found",
            ConsoleError::Service(error) => error.code(),
            ConsoleError::Internal(_) => "internal_error",
        }
    }

    fn message(&self) -> String {
        match self {
            ConsoleError::Unauthorized => {
                "missing or wrong admin key: send 'Authorization: Bearer <key>' (see `burncloud admin-key`)".into()
            }
            ConsoleError::ForeignOrigin => "the console answers only its own origin, not pages from other sites".into(),
            ConsoleError::BadRequest(m) | ConsoleError::NotFound(m) | ConsoleError::Internal(m) => m.clone(),
            ConsoleError::Service(error) => error.to_string(),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if matches!(self, ConsoleError::Service(ServiceError::Storage(_)) | ConsoleError::Internal(_)) {
            tracing::error!(error = %self.message(), "console request failed");
        }
        let body = serde_json::json!({"error": {"message": self.message(), "code": self.code()}});
        let mut response = (self.status_code(), axum::Json(body)).into_response();
        if matches!(self, ConsoleError::Service(ServiceError::Busy(_))) {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}
