//! Who may drive the console and the browser UI: the admin key as a bearer token, compared in
//! constant time, and never a page from another origin.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ConsoleError;
use crate::state::AppState;

/// Compares in time independent of where the first difference is.
pub(crate) fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A browser page from another origin must not drive the console on localhost, even if it could
/// guess or steal the key: a request whose `Origin` is not this server's own is refused.
/// Behind a TLS-terminating reverse proxy the page's origin is `https://` on the same host.
pub(crate) fn foreign_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return false };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let own = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    host.is_empty() || own != Some(host)
}

/// Whether the request carries `Authorization: Bearer <admin key>`.
pub(crate) fn bears_admin_key(headers: &HeaderMap, admin_key: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .is_some_and(|key| same_secret(key.trim().as_bytes(), admin_key.as_bytes()))
}

/// The console's guard: its own origin only, and the admin key.
pub(crate) async fn require_admin_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if foreign_origin(request.headers()) {
        return ConsoleError::ForeignOrigin.into_response();
    }
    if !bears_admin_key(request.headers(), &state.admin_key()) {
        return ConsoleError::Unauthorized.into_response();
    }
    next.run(request).await
}
