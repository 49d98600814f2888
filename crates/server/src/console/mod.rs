//! `/console/api/*`: thin handlers that check the admin key, extract, call one service method on a
//! blocking thread, and answer JSON. Each file registers its routes with their descriptions in
//! the one table (`api()`) the router and the OpenAPI document are both made from.

mod api;
mod extract;
mod gateway;
mod inference;
mod models;
mod openapi;

use axum::http::{header, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::Json;

use api::ConsoleApi;

use crate::auth::require_admin_key;
use crate::error::ConsoleError;
use crate::state::AppState;

/// Every console route with its description.
pub(crate) fn api() -> ConsoleApi {
    let api = gateway::routes(ConsoleApi::default());
    let api = models::routes(api);
    let api = inference::routes(api);
    api.get(
        "/console/api/openapi.json",
        api::Doc::shaped(
            "This document: the console API and the data plane",
            |_| serde_json::json!({"type": "object"}),
        ),
        openapi,
    )
}

pub(crate) fn routes(state: AppState) -> axum::Router {
    api()
        .into_router()
        .route("/console/api/{*rest}", axum::routing::any(not_found))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin_key))
        .with_state(state)
}

pub(crate) async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/v1/") || uri.path() == "/v1" {
        let body = serde_json::json!({"error": {
            "message": format!("Invalid URL (no route {}).", uri.path()),
            "type": "invalid_request_error", "param": null, "code": "unknown_url"
        }});
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    ConsoleError::NotFound(format!("no route {}", uri.path())).into_response()
}

/// `GET /console/api/openapi.json`, written once from the route table.
async fn openapi() -> Response {
    static DOCUMENT: std::sync::OnceLock<axum::body::Bytes> = std::sync::OnceLock::new();
    let document =
        DOCUMENT.get_or_init(|| axum::body::Bytes::from(openapi::document(api().operations()).to_string())).clone();
    ([(header::CONTENT_TYPE, "application/json")], document).into_response()
}
