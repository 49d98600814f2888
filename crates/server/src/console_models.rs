//! `/console/api/hub/*`, `/console/api/downloads*` and `/console/api/models/local*`: the model hub and
//! the local model store.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use burncloud_service_api::{
    DownloadRequest, HubSearchQuery, HubSource, ImportRequest, LocalModelService, ModelHubService, ServiceResult,
};
use burncloud_service_models::ModelHub;
use serde::Deserialize;

use crate::console::{body, id, on_blocking_thread, query};
use crate::{AppState, ConsoleError};

type ConsoleResult = Result<Response, ConsoleError>;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/console/api/hub/search", get(search))
        .route("/console/api/hub/files", get(files))
        .route("/console/api/downloads", get(list_downloads).post(start_download))
        .route("/console/api/downloads/{id}", get(get_download).delete(cancel_download))
        .route("/console/api/downloads/{id}/pause", post(pause_download))
        .route("/console/api/downloads/{id}/resume", post(resume_download))
        .route("/console/api/models/local", get(list_local_models))
        .route("/console/api/models/local/import", post(import_local_model))
        .route("/console/api/models/local/{id}", get(get_local_model).delete(delete_local_model))
}

/// Runs a synchronous store call on a blocking thread (SQLite and the file system).
async fn blocking<T, F>(state: &AppState, status: StatusCode, work: F) -> ConsoleResult
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce(&ModelHub) -> ServiceResult<T> + Send + 'static,
{
    on_blocking_thread(state.models.clone(), status, work).await
}

async fn search(State(state): State<AppState>, params: Result<Query<HubSearchQuery>, QueryRejection>) -> ConsoleResult {
    let search = query(params)?;
    Ok(Json(state.models.search(search).await?).into_response())
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(crate) struct FilesQuery {
    source: Option<HubSource>,
    repo: String,
}

async fn files(State(state): State<AppState>, params: Result<Query<FilesQuery>, QueryRejection>) -> ConsoleResult {
    let FilesQuery { source, repo } = query(params)?;
    Ok(Json(state.models.files(source.unwrap_or(HubSource::Huggingface), repo).await?).into_response())
}

async fn start_download(
    State(state): State<AppState>,
    payload: Result<Json<DownloadRequest>, JsonRejection>,
) -> ConsoleResult {
    let request = body(payload)?;
    Ok((StatusCode::CREATED, Json(state.models.start_download(request).await?)).into_response())
}

async fn list_downloads(State(state): State<AppState>) -> ConsoleResult {
    blocking(&state, StatusCode::OK, |m| m.list_downloads()).await
}

async fn get_download(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(&state, StatusCode::OK, move |m| m.get_download(id)).await
}

async fn pause_download(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(&state, StatusCode::OK, move |m| m.pause_download(id)).await
}

async fn resume_download(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(&state, StatusCode::OK, move |m| m.resume_download(id)).await
}

async fn cancel_download(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(&state, StatusCode::OK, move |m| m.cancel_download(id).map(|()| serde_json::json!({"deleted": id}))).await
}

async fn list_local_models(State(state): State<AppState>) -> ConsoleResult {
    blocking(&state, StatusCode::OK, |m| m.list_local_models()).await
}

async fn get_local_model(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(&state, StatusCode::OK, move |m| m.get_local_model(id)).await
}

async fn import_local_model(
    State(state): State<AppState>,
    payload: Result<Json<ImportRequest>, JsonRejection>,
) -> ConsoleResult {
    let request = body(payload)?;
    Ok((StatusCode::CREATED, Json(state.models.import_local_model(request).await?)).into_response())
}

async fn delete_local_model(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(&state, StatusCode::OK, move |m| m.delete_local_model(id).map(|()| serde_json::json!({"deleted": id})))
        .await
}
