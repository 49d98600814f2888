//! The one error type of the service layer; front ends map it to their own shapes.

/// What went wrong in a service call, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("storage error: {0}")]
    Storage(String),
    /// A remote service (a model hub) refused or failed; `code` says how, for example
    /// `hub_token_required`, `hub_gated` or `hub_unreachable`.
    #[error("{message}")]
    Remote { code: &'static str, message: String },
    #[error("{0}")]
    InsufficientStorage(String),
    /// Another program holds the database; the same call will work once it lets go.
    #[error("{0}")]
    Busy(String),
}

impl ServiceError {
    /// A stable machine-readable code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::NotFound(_) => "not_found",
            ServiceError::Invalid(_) => "invalid_request",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::Storage(_) => "storage_error",
            ServiceError::Remote { code, .. } => code,
            ServiceError::InsufficientStorage(_) => "insufficient_storage",
            ServiceError::Busy(_) => "database_busy",
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ServiceError::Invalid(message.into())
    }
}
