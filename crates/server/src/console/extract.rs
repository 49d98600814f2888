//! What every console handler shares: its result type, reading a body, a query or an id with a
//! clear 400, and running a synchronous service call on a blocking thread.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use burncloud_service_api::ServiceResult;

use crate::error::ConsoleError;

/// What a console handler answers: a JSON response, or an error in the console's shape.
pub(crate) type ConsoleResult = Result<Response, ConsoleError>;

/// Runs a service call on a blocking thread: SQLite and the file system are synchronous.
pub(crate) async fn on_blocking_thread<S, T, F>(service: Arc<S>, work: F) -> Result<T, ConsoleError>
where
    S: ?Sized + Send + Sync + 'static,
    T: Send + 'static,
    F: FnOnce(&S) -> ServiceResult<T> + Send + 'static,
{
    Ok(tokio::task::spawn_blocking(move || work(&service))
        .await
        .map_err(|e| ConsoleError::Internal(format!("service task failed: {e}")))??)
}

/// Runs a service call on a blocking thread and answers its JSON with `status`.
pub(crate) async fn blocking<S, T, F>(service: Arc<S>, status: StatusCode, work: F) -> ConsoleResult
where
    S: ?Sized + Send + Sync + 'static,
    T: serde::Serialize + Send + 'static,
    F: FnOnce(&S) -> ServiceResult<T> + Send + 'static,
{
    Ok((status, Json(on_blocking_thread(service, work).await?)).into_response())
}

/// `{"deleted": <what>}`, the answer of every delete.
pub(crate) fn deleted(what: impl serde::Serialize) -> serde_json::Value {
    serde_json::json!({ "deleted": what })
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

/// A path parameter that is text (a model name, a runtime id).
pub(crate) fn name(path: Result<Path<String>, PathRejection>) -> Result<String, ConsoleError> {
    path.map(|Path(name)| name).map_err(|rejection| ConsoleError::BadRequest(rejection.body_text()))
}
