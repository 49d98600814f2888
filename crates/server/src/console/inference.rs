//! `/console/api/instances*`, `/console/api/llama-server`, `/console/api/hardware` and
//! `/console/api/runtimes*`: deploying local models on a llama.cpp runtime fit for this machine.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use burncloud_service_api::{
    Download, Hardware, InferenceService, Instance, InstanceInput, InstanceLogsQuery, InstancePatch, LlamaServerInfo,
    Runtime, RuntimeInstallRequest,
};
use serde_json::json;

use super::api::{deleted_id, deleted_name, object, ConsoleApi, Doc};
use super::extract::{blocking, body, deleted, id, name, query, ConsoleResult};
use crate::state::AppState;

/// How many log lines an instance answers when the caller does not say.
const DEFAULT_LOG_TAIL: usize = 200;

pub(super) fn routes(api: ConsoleApi) -> ConsoleApi {
    const INSTANCES: &str = "/console/api/instances";
    const INSTANCE: &str = "/console/api/instances/{id}";
    api.get(
        "/console/api/llama-server",
        Doc::answers::<LlamaServerInfo>("The llama-server in use and its version"),
        llama_server,
    )
    .get(INSTANCES, Doc::answers::<Vec<Instance>>("Deployments, loaded or not"), list_instances)
    .post(
        INSTANCES,
        Doc::answers::<Instance>("Deploy a local model").status(201).body::<InstanceInput>(),
        create_instance,
    )
    .get(INSTANCE, Doc::answers::<Instance>("One instance"), get_instance)
    .patch(
        INSTANCE,
        Doc::answers::<Instance>("Change an instance's idle TTL or pin").body::<InstancePatch>(),
        update_instance,
    )
    .delete(INSTANCE, Doc::shaped("Stop and remove an instance", deleted_id), delete_instance)
    .post("/console/api/instances/{id}/stop", Doc::answers::<Instance>("Stop an instance"), stop_instance)
    .post("/console/api/instances/{id}/restart", Doc::answers::<Instance>("Restart an instance"), restart_instance)
    .get(
        "/console/api/instances/{id}/logs",
        Doc::shaped("An instance's latest log lines", |_| {
            object(json!({"lines": {"type": "array", "items": {"type": "string"}}}))
        })
        .query::<InstanceLogsQuery>(),
        instance_logs,
    )
    .get("/console/api/hardware", Doc::answers::<Hardware>("CPU, memory, GPUs and what the runtime can use"), hardware)
    .get("/console/api/runtimes", Doc::answers::<Vec<Runtime>>("Installed llama.cpp runtimes"), list_runtimes)
    .post(
        "/console/api/runtimes/install",
        Doc::answers::<Download>("Download, verify, unpack and activate the llama.cpp build for this machine")
            .status(202)
            .body::<RuntimeInstallRequest>()
            .reaching_out(),
        install_runtime,
    )
    .post(
        "/console/api/runtimes/{id}/activate",
        Doc::answers::<Runtime>("Make a runtime the active one").reaching_out(),
        activate_runtime,
    )
    .delete("/console/api/runtimes/{id}", Doc::shaped("Remove an inactive runtime", deleted_name), delete_runtime)
}

async fn llama_server(State(state): State<AppState>) -> ConsoleResult {
    blocking(state.inference, StatusCode::OK, |i| i.llama_server()).await
}

async fn list_instances(State(state): State<AppState>) -> ConsoleResult {
    blocking(state.inference, StatusCode::OK, |i| i.list_instances()).await
}

async fn create_instance(
    State(state): State<AppState>,
    payload: Result<Json<InstanceInput>, JsonRejection>,
) -> ConsoleResult {
    let input = body(payload)?;
    blocking(state.inference, StatusCode::CREATED, move |i| i.create_instance(input)).await
}

async fn get_instance(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(state.inference, StatusCode::OK, move |i| i.get_instance(id)).await
}

async fn update_instance(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    payload: Result<Json<InstancePatch>, JsonRejection>,
) -> ConsoleResult {
    let (id, patch) = (id(path)?, body(payload)?);
    blocking(state.inference, StatusCode::OK, move |i| i.update_instance(id, patch)).await
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
    Ok(Json(deleted(id)).into_response())
}

async fn instance_logs(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    params: Result<Query<InstanceLogsQuery>, QueryRejection>,
) -> ConsoleResult {
    let (id, InstanceLogsQuery { tail }) = (id(path)?, query(params)?);
    blocking(state.inference, StatusCode::OK, move |i| {
        i.instance_logs(id, tail.unwrap_or(DEFAULT_LOG_TAIL)).map(|lines| json!({"lines": lines}))
    })
    .await
}

async fn hardware(State(state): State<AppState>) -> ConsoleResult {
    Ok(Json(state.inference.hardware().await?).into_response())
}

async fn list_runtimes(State(state): State<AppState>) -> ConsoleResult {
    blocking(state.inference, StatusCode::OK, |i| i.list_runtimes()).await
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
    let id = name(path)?;
    blocking(state.inference, StatusCode::OK, move |i| i.activate_runtime(&id)).await
}

async fn delete_runtime(State(state): State<AppState>, path: Result<Path<String>, PathRejection>) -> ConsoleResult {
    let id = name(path)?;
    blocking(state.inference, StatusCode::OK, move |i| i.delete_runtime(&id).map(|()| deleted(&id))).await
}
