//! Stored Responses API answers: what `previous_response_id` continues from, and the
//! `GET` / `DELETE /v1/responses/{id}` routes. Only answers BurnCloud made itself (through a chat
//! channel) are stored here; an upstream with its own Responses API keeps its own.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use burncloud_database::now_ms;
use burncloud_database::repo::responses::{self, StoredResponse};
use serde_json::{json, Value};

use crate::error::CallError;
use crate::proxy::{authenticate, dialect_error, new_request_id, Dialect};
use crate::snapshot::TokenEntry;
use crate::{Gateway, REQUEST_ID_HEADER};

fn storage_error(error: impl std::fmt::Display) -> CallError {
    CallError::Internal(format!("stored responses could not be read: {error}"))
}

/// The most turns a conversation is followed back: far beyond any real one, it bounds a lookup.
const MAX_TURNS: usize = 100_000;

/// The conversation `id` stands for — every turn's items, oldest first, up to and including its
/// own — if this token stored it here.
pub(crate) async fn conversation(
    gateway: &Gateway,
    token: &TokenEntry,
    id: &str,
) -> Result<Option<Vec<Value>>, CallError> {
    let (db, first, token_id) = (gateway.db.clone(), id.to_string(), token.token.id);
    let turns = tokio::task::spawn_blocking(move || {
        db.read(|c| {
            let mut turns = Vec::new();
            let mut next = Some(first.clone());
            while let Some(id) = next.take().filter(|_| turns.len() < MAX_TURNS) {
                match responses::get(c, &id, token_id)? {
                    Some(stored) => {
                        next = stored.previous_id.clone();
                        turns.push(stored);
                    }
                    None if turns.is_empty() => return Ok(None),
                    None => return Ok(Some(Err(id))),
                }
            }
            Ok(Some(Ok(turns)))
        })
    })
    .await
    .map_err(storage_error)?
    .map_err(storage_error)?;
    let turns = match turns {
        None => return Ok(None),
        Some(Err(gone)) => {
            return Err(CallError::BadRequest {
                message: format!(
                    "An earlier response of this conversation ('{gone}') is no longer stored (older than the log retention, or deleted)."
                ),
                param: Some("previous_response_id"),
            })
        }
        Some(Ok(turns)) => turns,
    };
    let mut items = Vec::new();
    for turn in turns.iter().rev() {
        items.extend(serde_json::from_str::<Vec<Value>>(&turn.items).map_err(storage_error)?);
    }
    Ok(Some(items))
}

/// Stores `response` and its turn's items, linked to the response it continued. A failure is
/// logged, not the caller's problem: their answer is complete; only a later
/// `previous_response_id` would miss it.
pub(crate) async fn store(gateway: &Gateway, token_id: i64, response: &Value, items: &[Value]) {
    let stored = StoredResponse {
        id: response["id"].as_str().unwrap_or_default().to_string(),
        token_id,
        created_at_ms: now_ms(),
        previous_id: response["previous_response_id"].as_str().map(String::from),
        items: Value::Array(items.to_vec()).to_string(),
        response: response.to_string(),
    };
    let db = gateway.db.clone();
    let written = tokio::task::spawn_blocking(move || db.write(|c| responses::insert(c, &stored))).await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::warn!("a response could not be stored; previous_response_id will not find it");
    }
}

fn answer(body: Value, request_id: &str) -> Response {
    let mut response = axum::Json(body).into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

fn not_found(id: &str) -> CallError {
    CallError::NotFound(format!("Response with id '{id}' not found."))
}

/// Runs `work` on the stored response `id` of the calling token, on a blocking thread, and answers
/// with its JSON or the error in OpenAI's shape.
async fn with_stored<T: Send + 'static>(
    gateway: Arc<Gateway>,
    headers: HeaderMap,
    id: String,
    work: fn(&Gateway, &str, i64) -> Result<Option<T>, burncloud_database::DbError>,
    answer_with: fn(T, &str) -> Result<Value, CallError>,
) -> Response {
    let request_id = new_request_id();
    let result = async {
        let token = authenticate(&gateway, &headers)?;
        let (lookup_gateway, lookup, token_id) = (gateway.clone(), id.clone(), token.token.id);
        let found = tokio::task::spawn_blocking(move || work(&lookup_gateway, &lookup, token_id))
            .await
            .map_err(storage_error)?
            .map_err(storage_error)?
            .ok_or_else(|| not_found(&id))?;
        answer_with(found, &id)
    }
    .await;
    match result {
        Ok(body) => answer(body, &request_id),
        Err(error) => dialect_error(Dialect::Responses, error, &request_id),
    }
}

/// `GET /v1/responses/{id}`: a response this token stored.
pub(crate) async fn get_response(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let read = |gateway: &Gateway, id: &str, token_id| gateway.db.read(|c| responses::get(c, id, token_id));
    with_stored(gateway, headers, id, read, |stored, _| {
        serde_json::from_str::<Value>(&stored.response).map_err(storage_error)
    })
    .await
}

/// `DELETE /v1/responses/{id}`: forgets a stored response.
pub(crate) async fn delete_response(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let delete = |gateway: &Gateway, id: &str, token_id| {
        gateway.db.write(|c| responses::delete(c, id, token_id)).map(|deleted| deleted.then_some(()))
    };
    with_stored(gateway, headers, id, delete, |(), id| {
        Ok(json!({"id": id, "object": "response.deleted", "deleted": true}))
    })
    .await
}
