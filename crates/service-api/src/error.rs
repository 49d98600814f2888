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
    /// A remote service (a model hub, llama.cpp's releases) or a local runtime refused or failed;
    /// `code` says how.
    #[error("{message}")]
    Remote { code: RemoteFailure, message: String },
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
            ServiceError::Remote { code, .. } => code.as_str(),
            ServiceError::InsufficientStorage(_) => "insufficient_storage",
            ServiceError::Busy(_) => "database_busy",
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ServiceError::Invalid(message.into())
    }
}

/// How a remote service or a local runtime failed: what `ServiceError::Remote` carries, and the
/// `code` the console answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteFailure {
    /// The hub wants a token (a private repo), or refused the one given.
    HubTokenRequired,
    /// The repo is gated: its terms must be accepted on the hub first.
    HubGated,
    /// The hub could not be reached.
    HubUnreachable,
    /// The hub answered with an error or something unreadable.
    HubError,
    /// The hub would not resume a download from where it stopped.
    HubRangeRefused,
    /// A downloaded file's sha256 is not the one the hub lists.
    ChecksumMismatch,
    /// A download stopped for good (disk full, the file changed upstream).
    DownloadFailed,
    /// A downloaded or imported file is not a GGUF.
    NotGguf,
    /// No llama-server to run a local model with.
    LlamaServerMissing,
    /// An installed llama.cpp runtime does not start.
    RuntimeBroken,
    /// A llama.cpp runtime could not be unpacked or installed.
    RuntimeInstallFailed,
    /// No installed llama.cpp runtime has that id.
    RuntimeNotFound,
    /// llama.cpp's release list answered with an error or something unreadable.
    RuntimeSourceError,
    /// llama.cpp's release list could not be reached.
    RuntimeSourceUnreachable,
    /// A downloaded runtime's checksum could not be checked.
    RuntimeUnverifiable,
}

impl RemoteFailure {
    /// The code as the console's error JSON carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteFailure::HubTokenRequired => "hub_token_required",
            RemoteFailure::HubGated => "hub_gated",
            RemoteFailure::HubUnreachable => "hub_unreachable",
            RemoteFailure::HubError => "hub_error",
            RemoteFailure::HubRangeRefused => "hub_range_refused",
            RemoteFailure::ChecksumMismatch => "checksum_mismatch",
            RemoteFailure::DownloadFailed => "download_failed",
            RemoteFailure::NotGguf => "not_gguf",
            RemoteFailure::LlamaServerMissing => "llama_server_missing",
            RemoteFailure::RuntimeBroken => "runtime_broken",
            RemoteFailure::RuntimeInstallFailed => "runtime_install_failed",
            RemoteFailure::RuntimeNotFound => "runtime_not_found",
            RemoteFailure::RuntimeSourceError => "runtime_source_error",
            RemoteFailure::RuntimeSourceUnreachable => "runtime_source_unreachable",
            RemoteFailure::RuntimeUnverifiable => "runtime_unverifiable",
        }
    }

    /// Whether the same request may work if tried again (a download resumes after these).
    pub fn is_transient(self) -> bool {
        matches!(self, RemoteFailure::HubUnreachable | RemoteFailure::HubError | RemoteFailure::HubRangeRefused)
    }
}
