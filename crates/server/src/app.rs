//! The whole HTTP application as one router: `/health`, the console API and the `/v1` data plane,
//! with the limits `serve` puts on every request head.

use axum::routing::get;
use burncloud_router::create_router_app;

use crate::console;
use crate::state::AppState;

/// At most this many request headers.
pub const MAX_REQUEST_HEADERS: usize = 100;
/// At most this many bytes of request line and headers.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// The whole HTTP application.
pub fn create_app(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/health", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .merge(console::routes(state.clone()))
        .merge(create_router_app(state.gateway.clone()))
        .fallback(console::not_found)
}
