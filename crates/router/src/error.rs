//! The gateway's errors and their OpenAI-shaped JSON bodies.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::REQUEST_ID_HEADER;

/// Everything that can end a `/v1` request before or instead of an upstream answer.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// No key, an unknown key, or a disabled or expired token.
    InvalidApiKey(String),
    BadRequest {
        message: String,
        param: Option<&'static str>,
    },
    ModelNotAllowed(String),
    ModelNotFound(String),
    /// A stored object (a response) that does not exist for this token.
    NotFound(String),
    /// BurnCloud's own storage failed.
    Internal(String),
    PayloadTooLarge(usize),
    /// Spent: told not to retry (`x-should-retry: false`, which the official SDKs heed).
    InsufficientQuota(String),
    /// What is left is expected to go to the calls under way: worth a retry once they finish.
    QuotaBusy(String),
    /// Every upstream failed to connect or answered with an error we could not pass through.
    UpstreamUnreachable(String),
    UpstreamTimeout(String),
    /// The upstream answered with an error: its status and (scrubbed) body go to the caller.
    Upstream {
        status: StatusCode,
        body: Bytes,
    },
    /// The token's rate limit: OpenAI's rate-limit headers and when to retry.
    RateLimited {
        message: String,
        retry_after_secs: u64,
        headers: Vec<(&'static str, String)>,
    },
    /// Every channel that could answer is resting after failures.
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    /// A local model could not be made ready for the call: still loading, waiting for memory,
    /// or unable to start (then without a retry time).
    LocalModel {
        message: String,
        code: &'static str,
        retry_after_secs: Option<u64>,
    },
}

impl From<burncloud_service_api::WakeError> for CallError {
    fn from(error: burncloud_service_api::WakeError) -> CallError {
        use burncloud_service_api::WakeError;
        let message = error.to_string();
        let (code, retry_after_secs) = match error {
            WakeError::StillLoading { .. } => ("model_loading", Some(5)),
            WakeError::NoRoom { .. } => ("model_waiting_for_memory", Some(5)),
            WakeError::Failed { .. } => ("model_load_failed", None),
        };
        CallError::LocalModel { message, code, retry_after_secs }
    }
}

impl CallError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            CallError::InvalidApiKey(_) => StatusCode::UNAUTHORIZED,
            CallError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            CallError::ModelNotAllowed(_) => StatusCode::FORBIDDEN,
            CallError::ModelNotFound(_) | CallError::NotFound(_) => StatusCode::NOT_FOUND,
            CallError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            CallError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            CallError::InsufficientQuota(_) | CallError::QuotaBusy(_) => StatusCode::TOO_MANY_REQUESTS,
            CallError::UpstreamUnreachable(_) => StatusCode::BAD_GATEWAY,
            CallError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            CallError::Upstream { status, .. } => *status,
            CallError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            CallError::Unavailable { .. } | CallError::LocalModel { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The text recorded in the log row's `error` column.
    pub fn message(&self) -> String {
        match self {
            CallError::InvalidApiKey(m)
            | CallError::ModelNotAllowed(m)
            | CallError::ModelNotFound(m)
            | CallError::NotFound(m)
            | CallError::Internal(m)
            | CallError::InsufficientQuota(m)
            | CallError::QuotaBusy(m)
            | CallError::UpstreamUnreachable(m)
            | CallError::UpstreamTimeout(m) => m.clone(),
            CallError::BadRequest { message, .. }
            | CallError::RateLimited { message, .. }
            | CallError::Unavailable { message, .. }
            | CallError::LocalModel { message, .. } => message.clone(),
            CallError::PayloadTooLarge(limit) => {
                format!("request body is larger than {limit} bytes")
            }
            CallError::Upstream { body, .. } => crate::scrub::error_message(body),
        }
    }

    fn type_and_code(&self) -> (&'static str, Option<&'static str>) {
        match self {
            CallError::InvalidApiKey(_) => ("invalid_request_error", Some("invalid_api_key")),
            CallError::BadRequest { .. } => ("invalid_request_error", None),
            CallError::ModelNotAllowed(_) => ("invalid_request_error", Some("model_not_allowed")),
            CallError::ModelNotFound(_) => ("invalid_request_error", Some("model_not_found")),
            CallError::NotFound(_) => ("invalid_request_error", Some("not_found")),
            CallError::Internal(_) => ("server_error", Some("internal_error")),
            CallError::PayloadTooLarge(_) => ("invalid_request_error", Some("request_too_large")),
            CallError::InsufficientQuota(_) | CallError::QuotaBusy(_) => {
                ("insufficient_quota", Some("insufficient_quota"))
            }
            CallError::UpstreamUnreachable(_) => ("server_error", Some("upstream_error")),
            CallError::UpstreamTimeout(_) => ("server_error", Some("upstream_timeout")),
            CallError::Upstream { .. } => ("upstream_error", None),
            CallError::RateLimited { .. } => ("requests", Some("rate_limit_exceeded")),
            CallError::Unavailable { .. } => ("server_error", Some("channels_unavailable")),
            CallError::LocalModel { code, .. } => ("server_error", Some(code)),
        }
    }

    /// The response body: OpenAI's error JSON, or the upstream's own body when it is JSON.
    pub fn body(&self) -> Bytes {
        if let CallError::Upstream { body, .. } = self {
            if serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.get("error").is_some()) {
                return body.clone();
            }
        }
        let (error_type, code) = self.type_and_code();
        let param = match self {
            CallError::BadRequest { param, .. } => *param,
            CallError::ModelNotFound(_) | CallError::ModelNotAllowed(_) => Some("model"),
            _ => None,
        };
        let json = serde_json::json!({
            "error": { "message": self.message(), "type": error_type, "param": param, "code": code }
        });
        Bytes::from(json.to_string())
    }

    pub fn into_response_with_id(self, request_id: &str) -> Response {
        let mut response = (self.status_code(), self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert(REQUEST_ID_HEADER, value);
        }
        match &self {
            CallError::RateLimited { retry_after_secs, headers: limits, .. } => {
                headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
                for (name, value) in limits {
                    if let Ok(value) = HeaderValue::from_str(value) {
                        headers.insert(*name, value);
                    }
                }
            }
            CallError::Unavailable { retry_after_secs, .. }
            | CallError::LocalModel { retry_after_secs: Some(retry_after_secs), .. } => {
                headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            CallError::InsufficientQuota(_) => {
                headers.insert("x-should-retry", HeaderValue::from_static("false"));
            }
            CallError::QuotaBusy(_) => {
                headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
