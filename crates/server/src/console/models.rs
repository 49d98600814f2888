//! `/console/api/hub/*`, `/console/api/downloads*` and `/console/api/models/local*`: the model hub and
//! the local model store.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use burncloud_service_api::{
    Download, DownloadRequest, HubFileList, HubFilesQuery, HubSearchPage, HubSearchQuery, HubSource, ImportRequest,
    LocalModel, LocalModelService, ModelHubService,
};

use super::api::{deleted_id, ConsoleApi, Doc};
use super::extract::{blocking, body, deleted, id, query, ConsoleResult};
use crate::state::AppState;

pub(super) fn routes(api: ConsoleApi) -> ConsoleApi {
    const DOWNLOADS: &str = "/console/api/downloads";
    const DOWNLOAD: &str = "/console/api/downloads/{id}";
    const LOCAL_MODEL: &str = "/console/api/models/local/{id}";
    api.get(
        "/console/api/hub/search",
        Doc::answers::<HubSearchPage>("Search a model hub for GGUF repos").query::<HubSearchQuery>().reaching_out(),
        search,
    )
    .get(
        "/console/api/hub/files",
        Doc::answers::<HubFileList>("A repo's files, with quant and shards").query::<HubFilesQuery>().reaching_out(),
        files,
    )
    .get(DOWNLOADS, Doc::answers::<Vec<Download>>("List downloads"), list_downloads)
    .post(DOWNLOADS, Doc::answers::<Download>("Start a download").status(201).body::<DownloadRequest>(), start_download)
    .get(DOWNLOAD, Doc::answers::<Download>("One download's progress"), get_download)
    .delete(DOWNLOAD, Doc::shaped("Cancel a download", deleted_id), cancel_download)
    .post("/console/api/downloads/{id}/pause", Doc::answers::<Download>("Pause a download"), pause_download)
    .post("/console/api/downloads/{id}/resume", Doc::answers::<Download>("Resume a download"), resume_download)
    .get("/console/api/models/local", Doc::answers::<Vec<LocalModel>>("Local models"), list_local_models)
    .post(
        "/console/api/models/local/import",
        Doc::answers::<LocalModel>("Register a GGUF on disk").status(201).body::<ImportRequest>(),
        import_local_model,
    )
    .get(LOCAL_MODEL, Doc::answers::<LocalModel>("One local model"), get_local_model)
    .delete(LOCAL_MODEL, Doc::shaped("Delete a local model and its files", deleted_id), delete_local_model)
}

async fn search(State(state): State<AppState>, params: Result<Query<HubSearchQuery>, QueryRejection>) -> ConsoleResult {
    let search = query(params)?;
    Ok(Json(state.models.search(search).await?).into_response())
}

async fn files(State(state): State<AppState>, params: Result<Query<HubFilesQuery>, QueryRejection>) -> ConsoleResult {
    let HubFilesQuery { source, repo } = query(params)?;
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
    blocking(state.models, StatusCode::OK, |m| m.list_downloads()).await
}

async fn get_download(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(state.models, StatusCode::OK, move |m| m.get_download(id)).await
}

async fn pause_download(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(state.models, StatusCode::OK, move |m| m.pause_download(id)).await
}

async fn resume_download(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(state.models, StatusCode::OK, move |m| m.resume_download(id)).await
}

async fn cancel_download(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(state.models, StatusCode::OK, move |m| m.cancel_download(id).map(|()| deleted(id))).await
}

async fn list_local_models(State(state): State<AppState>) -> ConsoleResult {
    blocking(state.models, StatusCode::OK, |m| m.list_local_models()).await
}

async fn get_local_model(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(state.models, StatusCode::OK, move |m| m.get_local_model(id)).await
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
    blocking(state.models, StatusCode::OK, move |m| m.delete_local_model(id).map(|()| deleted(id))).await
}
