//! `/console/api/instances*`, `/console/api/llama-server`, `/console/api/hardware` and
//! `/console/api/runtimes*`: deploying local models on a llama.cpp runtime fit for this machine.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use burncloud_service_api::{InferenceService, InstanceInput, InstancePatch, RuntimeInstallRequest, ServiceResult};
use burncloud_service_inference::Inference;
use serde::Deserialize;

use crate::console::{body, id, on_blocking_thread, query};
use crate::{AppState, ConsoleError};

type ConsoleResult = Result<Response, ConsoleError>;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/console/api/llama-server", get(llama_server))
        .route("/console/api/instances", get(list_instances).post(create_instance))
        .route("/console/api/instances/{id}", get(get_instance).patch(update_instance).delete(delete_instance))
        .route("/console/api/instances/{id}/stop", post(stop_instance))
        .route("/console/api/instances/{id}/restart", post(restart_instance))
        .route("/console/api/instances/{id}/logs", get(instance_logs))
        .route("/console/api/hardware", get(hardware))
        .route("/console/api/runtimes", get(list_runtimes))
        .route("/console/api/runtimes/install", post(install_runtime))
        .route("/console/api/runtimes/{id}", axum::routing::delete(delete_runtime))
        .route("/console/api/runtimes/{id}/activate", post(activate_runtime))
}

async fn blocking<T, F>(state: &AppState, status: StatusCode, work: F) -> ConsoleResult
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce(&Inference) -> ServiceResult<T> + Send + 'static,
{
    on_blocking_thread(state.inference.clone(), status, work).await
}

async fn llama_server(State(state): State<AppState>) -> ConsoleResult {
    blocking(&state, StatusCode::OK, |i| i.llama_server()).await
}

async fn list_instances(State(state): State<AppState>) -> ConsoleResult {
    blocking(&state, StatusCode::OK, |i| i.list_instances()).await
}

async fn create_instance(
    State(state): State<AppState>,
    payload: Result<Json<InstanceInput>, JsonRejection>,
) -> ConsoleResult {
    let input = body(payload)?;
    blocking(&state, StatusCode::CREATED, move |i| i.create_instance(input)).await
}

async fn get_instance(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(&state, StatusCode::OK, move |i| i.get_instance(id)).await
}

async fn update_instance(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    payload: Result<Json<InstancePatch>, JsonRejection>,
) -> ConsoleResult {
    let (id, patch) = (id(path)?, body(payload)?);
    blocking(&state, StatusCode::OK, move |i| i.update_instance(id, patch)).await
}

async fn stop_instance(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    Ok(Json(state.inference.stop_instance(id).await?).into_response())
}

async fn restart_instance(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    Ok(Json(state.inference.restart_instance(id).await?).into_response())
}

async fn delete_instance(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    state.inference.delete_instance(id).await?;
    Ok(Json(serde_json::json!({"deleted": id})).into_response())
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(crate) struct LogsQuery {
    tail: Option<usize>,
}

async fn instance_logs(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    params: Result<Query<LogsQuery>, QueryRejection>,
) -> ConsoleResult {
    let (id, LogsQuery { tail }) = (id(path)?, query(params)?);
    blocking(&state, StatusCode::OK, move |i| {
        i.instance_logs(id, tail.unwrap_or(200)).map(|lines| serde_json::json!({"lines": lines}))
    })
    .await
}

async fn hardware(State(state): State<AppState>) -> ConsoleResult {
    Ok(Json(state.inference.hardware().await?).into_response())
}

async fn list_runtimes(State(state): State<AppState>) -> ConsoleResult {
    blocking(&state, StatusCode::OK, |i| i.list_runtimes()).await
}

async fn install_runtime(
    State(state): State<AppState>,
    payload: Result<Json<RuntimeInstallRequest>, JsonRejection>,
) -> ConsoleResult {
    let request = body(payload)?;
    let download = state.inference.install_runtime(request).await?;
    Ok((StatusCode::ACCEPTED, Json(download)).into_response())
}

async fn activate_runtime(State(state): State<AppState>, path: Result<Path<String>, PathRejection>) -> ConsoleResult {
    let id = runtime_id(path)?;
    blocking(&state, StatusCode::OK, move |i| i.activate_runtime(&id)).await
}

async fn delete_runtime(State(state): State<AppState>, path: Result<Path<String>, PathRejection>) -> ConsoleResult {
    let id = runtime_id(path)?;
    blocking(&state, StatusCode::OK, move |i| i.delete_runtime(&id).map(|()| serde_json::json!({"deleted": id}))).await
}

fn runtime_id(path: Result<Path<String>, PathRejection>) -> Result<String, ConsoleError> {
    path.map(|Path(id)| id).map_err(|rejection| ConsoleError::BadRequest(rejection.body_text()))
}
