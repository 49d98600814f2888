//! `/console/api/*`: thin handlers that check the admin key, extract, call one service method on a
//! blocking thread, and answer JSON.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Json;
use burncloud_service_api::{
    AccountPatch, AccountService, ChannelInput, ChannelPatch, ChannelService, GatewayMonitor, GroupInput, GroupPatch,
    GroupService, LogQuery, LogService, Money, PriceInput, PriceService, TokenInput, TokenPatch, TokenService,
    UsageQuery,
};
use burncloud_service_gateway::GatewayStore;
use serde::Deserialize;

use crate::{AppState, ConsoleError};

type ConsoleResult = Result<Response, ConsoleError>;

pub(crate) fn routes(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/console/api/channels", get(list_channels).post(create_channel))
        .route("/console/api/channels/{id}", get(get_channel).put(update_channel).delete(delete_channel))
        .route("/console/api/channels/{id}/test", post(test_channel))
        .route("/console/api/groups", get(list_groups).post(create_group))
        .route("/console/api/groups/{id}", get(get_group).put(update_group).delete(delete_group))
        .route("/console/internal/health", get(health))
        .route("/console/internal/show", post(show_window))
        .route("/console/api/admin-key/rotate", post(rotate_admin_key))
        .route("/console/api/tokens", get(list_tokens).post(create_token))
        .route("/console/api/tokens/{id}", get(get_token).put(update_token).delete(delete_token))
        .route("/console/api/prices", get(list_prices))
        .route("/console/api/prices/{model}", put(set_price).delete(delete_price))
        .route("/console/api/account", get(get_account).put(update_account))
        .route("/console/api/account/topup", post(top_up))
        .route("/console/api/logs", get(query_logs))
        .route("/console/api/openapi.json", get(openapi))
        .route("/console/api/usage", get(usage))
        .merge(crate::console_models::routes())
        .merge(crate::console_inference::routes())
        .route("/console/api/{*rest}", axum::routing::any(not_found))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin_key))
        .with_state(state)
}

/// Compares in time independent of where the first difference is.
pub(crate) fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A browser page from another origin must not drive the console on localhost, even if it could
/// guess or steal the key: a request whose `Origin` is not this server's own is refused.
/// Behind a TLS-terminating reverse proxy the page's origin is `https://` on the same host.
pub(crate) fn foreign_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return false };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let own = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    host.is_empty() || own != Some(host)
}

/// Whether the request carries `Authorization: Bearer <admin key>`.
pub(crate) fn bears_admin_key(headers: &axum::http::HeaderMap, admin_key: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .is_some_and(|key| same_secret(key.trim().as_bytes(), admin_key.as_bytes()))
}

async fn require_admin_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if foreign_origin(request.headers()) {
        return ConsoleError::ForeignOrigin.into_response();
    }
    if !bears_admin_key(request.headers(), &state.admin_key()) {
        return ConsoleError::Unauthorized.into_response();
    }
    next.run(request).await
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

/// Runs a service call on a blocking thread (SQLite and the file system are synchronous) and
/// answers its JSON with `status`.
pub(crate) async fn on_blocking_thread<S, T, F>(service: Arc<S>, status: StatusCode, work: F) -> ConsoleResult
where
    S: ?Sized + Send + Sync + 'static,
    T: serde::Serialize + Send + 'static,
    F: FnOnce(&S) -> Result<T, burncloud_service_api::ServiceError> + Send + 'static,
{
    let value = tokio::task::spawn_blocking(move || work(&service))
        .await
        .map_err(|e| ConsoleError::Internal(format!("service task failed: {e}")))??;
    Ok((status, Json(value)).into_response())
}

async fn call<T, F>(state: &AppState, status: StatusCode, work: F) -> ConsoleResult
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce(&GatewayStore) -> Result<T, burncloud_service_api::ServiceError> + Send + 'static,
{
    on_blocking_thread(state.store.clone(), status, work).await
}

pub(crate) fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ConsoleError> {
    payload.map(|Json(value)| value).map_err(|rejection| ConsoleError::BadRequest(rejection.body_text()))
}

pub(crate) fn query<T>(payload: Result<Query<T>, QueryRejection>) -> Result<T, ConsoleError> {
    payload.map(|Query(value)| value).map_err(|rejection| ConsoleError::BadRequest(rejection.body_text()))
}

pub(crate) fn id(path: Result<Path<i64>, PathRejection>) -> Result<i64, ConsoleError> {
    path.map(|Path(id)| id).map_err(|_| ConsoleError::BadRequest("the id in the path must be an integer".into()))
}

async fn list_channels(State(state): State<AppState>) -> ConsoleResult {
    call(&state, StatusCode::OK, |s| s.list_channels()).await
}

async fn create_channel(
    State(state): State<AppState>,
    payload: Result<Json<ChannelInput>, JsonRejection>,
) -> ConsoleResult {
    let input = body(payload)?;
    call(&state, StatusCode::CREATED, move |s| s.create_channel(input)).await
}

async fn get_channel(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    call(&state, StatusCode::OK, move |s| s.get_channel(id)).await
}

async fn update_channel(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    payload: Result<Json<ChannelPatch>, JsonRejection>,
) -> ConsoleResult {
    let (id, patch) = (id(path)?, body(payload)?);
    call(&state, StatusCode::OK, move |s| s.update_channel(id, patch)).await
}

async fn delete_channel(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    call(&state, StatusCode::OK, move |s| s.delete_channel(id).map(|()| serde_json::json!({"deleted": id}))).await
}

async fn list_tokens(State(state): State<AppState>) -> ConsoleResult {
    call(&state, StatusCode::OK, |s| s.list_tokens()).await
}

async fn create_token(
    State(state): State<AppState>,
    payload: Result<Json<TokenInput>, JsonRejection>,
) -> ConsoleResult {
    let input = body(payload)?;
    call(&state, StatusCode::CREATED, move |s| s.create_token(input)).await
}

async fn get_token(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    call(&state, StatusCode::OK, move |s| s.get_token(id)).await
}

async fn update_token(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    payload: Result<Json<TokenPatch>, JsonRejection>,
) -> ConsoleResult {
    let (id, patch) = (id(path)?, body(payload)?);
    call(&state, StatusCode::OK, move |s| s.update_token(id, patch)).await
}

async fn delete_token(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    call(&state, StatusCode::OK, move |s| s.delete_token(id).map(|()| serde_json::json!({"deleted": id}))).await
}

async fn list_prices(State(state): State<AppState>) -> ConsoleResult {
    call(&state, StatusCode::OK, |s| s.list_prices()).await
}

async fn set_price(
    State(state): State<AppState>,
    Path(model): Path<String>,
    payload: Result<Json<PriceInput>, JsonRejection>,
) -> ConsoleResult {
    let input = body(payload)?;
    call(&state, StatusCode::OK, move |s| s.set_price(&model, input)).await
}

async fn delete_price(State(state): State<AppState>, Path(model): Path<String>) -> ConsoleResult {
    call(&state, StatusCode::OK, move |s| s.delete_price(&model).map(|()| serde_json::json!({"deleted": model}))).await
}

async fn get_account(State(state): State<AppState>) -> ConsoleResult {
    call(&state, StatusCode::OK, |s| s.account()).await
}

async fn update_account(
    State(state): State<AppState>,
    payload: Result<Json<AccountPatch>, JsonRejection>,
) -> ConsoleResult {
    let patch = body(payload)?;
    call(&state, StatusCode::OK, move |s| s.update_account(patch)).await
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(crate) struct TopUp {
    amount: Money,
}

async fn top_up(State(state): State<AppState>, payload: Result<Json<TopUp>, JsonRejection>) -> ConsoleResult {
    let TopUp { amount } = body(payload)?;
    call(&state, StatusCode::OK, move |s| s.top_up(amount)).await
}

async fn query_logs(State(state): State<AppState>, params: Result<Query<LogQuery>, QueryRejection>) -> ConsoleResult {
    let filter = query(params)?;
    call(&state, StatusCode::OK, move |s| s.query_logs(&filter)).await
}

async fn usage(State(state): State<AppState>, params: Result<Query<UsageQuery>, QueryRejection>) -> ConsoleResult {
    let filter = query(params)?;
    call(&state, StatusCode::OK, move |s| s.usage(&filter)).await
}

async fn list_groups(State(state): State<AppState>) -> ConsoleResult {
    call(&state, StatusCode::OK, |s| s.list_groups()).await
}

async fn create_group(
    State(state): State<AppState>,
    payload: Result<Json<GroupInput>, JsonRejection>,
) -> ConsoleResult {
    let input = body(payload)?;
    call(&state, StatusCode::CREATED, move |s| s.create_group(input)).await
}

async fn get_group(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    call(&state, StatusCode::OK, move |s| s.get_group(id)).await
}

async fn update_group(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    payload: Result<Json<GroupPatch>, JsonRejection>,
) -> ConsoleResult {
    let (id, patch) = (id(path)?, body(payload)?);
    call(&state, StatusCode::OK, move |s| s.update_group(id, patch)).await
}

async fn delete_group(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    call(&state, StatusCode::OK, move |s| s.delete_group(id).map(|()| serde_json::json!({"deleted": id}))).await
}

/// Sends a minimal real request through the channel and reports latency or the upstream's error.
async fn test_channel(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    Ok(Json(state.monitor.test_channel(id).await?).into_response())
}

/// `GET /console/api/openapi.json`: this API, described from the types its handlers use.
async fn openapi() -> Response {
    static DOCUMENT: std::sync::OnceLock<axum::body::Bytes> = std::sync::OnceLock::new();
    let document = DOCUMENT.get_or_init(|| axum::body::Bytes::from(crate::openapi::document().to_string())).clone();
    ([(axum::http::header::CONTENT_TYPE, "application/json")], document).into_response()
}

/// `GET /console/internal/health`: breakers per channel, the log writer, Redis.
async fn health(State(state): State<AppState>) -> ConsoleResult {
    let monitor = state.monitor.clone();
    let channels = tokio::task::spawn_blocking(move || monitor.channel_health())
        .await
        .map_err(|e| ConsoleError::Internal(format!("service task failed: {e}")))??;
    let stats = state.gateway.log_sink().stats();
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    let written = stats.written.load(relaxed);
    Ok(Json(serde_json::json!({
        "status": "ok",
        "channels": channels,
        "log_writer": {
            "queued": stats.queued.load(relaxed).saturating_sub(written),
            "written": written,
            "write_errors": stats.write_errors.load(relaxed),
            "failing": stats.failing.load(relaxed),
        },
        "redis": state.gateway.redis_status(),
        "secrets": state.secrets_store,
    }))
    .into_response())
}

/// `POST /console/internal/show`: a second launch asks the running app to show its window.
async fn show_window(State(state): State<AppState>) -> ConsoleResult {
    state.show_window.notify_one();
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"requested": true}))).into_response())
}

/// `POST /console/api/admin-key/rotate`: a new admin key; the one this request used stops working.
async fn rotate_admin_key(State(state): State<AppState>) -> ConsoleResult {
    let keys = state.admin_keys.clone();
    let key =
        tokio::task::spawn_blocking(move || burncloud_service_api::AdminKeyService::rotate_admin_key(keys.as_ref()))
            .await
            .map_err(|e| ConsoleError::Internal(format!("service task failed: {e}")))??;
    Ok(Json(serde_json::json!({"admin_key": key})).into_response())
}
