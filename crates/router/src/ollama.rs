//! Ollama's model routes beside its chat ones: `/api/version`, `/api/tags`, `/api/show`, `/api/ps`,
//! and a clear answer for the model-management routes that belong to BurnCloud's own pages.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use burncloud_service_api::{rfc3339_from_unix_ms, InstanceKind, LocalModelFacts};
use serde_json::{json, Value};

use crate::adapters::ollama_inbound::OllamaOp;
use crate::error::CallError;
use crate::proxy::{authenticate_from, dialect_error, new_request_id, peer_of, reachable_models, Dialect};
use crate::snapshot::TokenEntry;
use crate::Gateway;

/// The version of Ollama's API whose shapes these routes follow; clients compare it to decide
/// which fields to send.
pub const OLLAMA_API_VERSION: &str = "0.12.0";

fn fail(error: CallError) -> Response {
    dialect_error(Dialect::Ollama(OllamaOp::Chat), error, &new_request_id())
}

/// The caller's token (a key, or a keyless call from this machine where allowed) and the body.
fn caller(gateway: &Gateway, request: Request) -> Result<(Arc<TokenEntry>, Body), CallError> {
    let (parts, body) = request.into_parts();
    Ok((authenticate_from(gateway, &parts.headers, peer_of(&parts))?, body))
}

/// `GET /api/version`
pub(crate) async fn version() -> Response {
    axum::Json(json!({"version": OLLAMA_API_VERSION})).into_response()
}

/// A model as Ollama's lists show it: what BurnCloud knows of a local GGUF, and the name alone
/// for a model a hosted channel serves.
fn entry(name: &str, local: Option<&LocalModelFacts>) -> Value {
    let fact = |read: fn(&LocalModelFacts) -> Option<String>| local.and_then(read).unwrap_or_default();
    let quantization = fact(|facts| facts.quantization.clone());
    let family = fact(|facts| facts.family.clone());
    json!({
        "name": name,
        "model": name,
        "modified_at": rfc3339_from_unix_ms(local.map_or(0, |facts| facts.added_at_ms)),
        "size": local.map_or(0, |facts| facts.size_bytes),
        "digest": local.and_then(|facts| facts.sha256.clone()).unwrap_or_default(),
        "details": {
            "parent_model": "",
            "format": if local.is_some() { "gguf" } else { "" },
            "families": if family.is_empty() { Value::Null } else { json!([family]) },
            "family": family,
            "parameter_size": fact(|facts| facts.parameter_size.clone()),
            "quantization_level": quantization,
        },
    })
}

fn local_facts(gateway: &Gateway) -> Vec<LocalModelFacts> {
    gateway.local.get().map(|local| local.describe()).unwrap_or_default()
}

/// `GET /api/tags`: every model the token can call, as `/v1/models` lists them.
pub(crate) async fn tags(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (token, _) = match caller(&gateway, request) {
        Ok(caller) => caller,
        Err(error) => return fail(error),
    };
    let facts = local_facts(&gateway);
    let models: Vec<Value> = reachable_models(&gateway, &token)
        .into_iter()
        .map(|(name, _)| entry(&name, facts.iter().find(|facts| facts.alias == name)))
        .collect();
    axum::Json(json!({"models": models})).into_response()
}

/// `GET /api/ps`: the local models loaded now.
pub(crate) async fn running(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (token, _) = match caller(&gateway, request) {
        Ok(caller) => caller,
        Err(error) => return fail(error),
    };
    let reachable = reachable_models(&gateway, &token);
    let models: Vec<Value> = local_facts(&gateway)
        .iter()
        .filter(|facts| reachable.iter().any(|(name, _)| *name == facts.alias))
        .filter_map(|facts| {
            let loaded = facts.loaded.as_ref()?;
            let mut model = entry(&facts.alias, Some(facts));
            let object = model.as_object_mut()?;
            object.remove("modified_at");
            object.insert("size_vram".into(), json!(loaded.memory_bytes));
            // A pinned deployment, or one never unloaded for idleness, has no such time.
            if let Some(unloads) = loaded.unloads_at_ms {
                object.insert("expires_at".into(), json!(rfc3339_from_unix_ms(unloads)));
            }
            Some(model)
        })
        .collect();
    axum::Json(json!({"models": models})).into_response()
}

/// `POST /api/show`: a model's details, for one the token can call.
pub(crate) async fn show(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (token, body) = match caller(&gateway, request) {
        Ok(caller) => caller,
        Err(error) => return fail(error),
    };
    let body = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(body) => body,
        Err(_) => return fail(CallError::PayloadTooLarge(64 * 1024)),
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(name) = request.get("model").or_else(|| request.get("name")).and_then(Value::as_str) else {
        return fail(CallError::BadRequest { message: "model: a model name is required".into(), param: None });
    };
    let Some((name, _)) = reachable_models(&gateway, &token).into_iter().find(|(known, _)| known == name) else {
        return fail(CallError::ModelNotFound(format!("model '{name}' not found")));
    };
    let facts = local_facts(&gateway);
    let local = facts.iter().find(|facts| facts.alias == name);
    let capabilities: &[&str] = match local.map(|facts| facts.kind) {
        Some(InstanceKind::Embedding) => &["embedding"],
        Some(InstanceKind::Rerank) => &[],
        Some(InstanceKind::Chat) | None => &["completion", "tools"],
    };
    let described = entry(&name, local);
    axum::Json(json!({
        "modelfile": "",
        "parameters": "",
        "template": "",
        "details": described["details"],
        "model_info": {},
        "capabilities": capabilities,
        "modified_at": described["modified_at"],
    }))
    .into_response()
}

/// `/api/pull`, `/api/push`, `/api/create`, `/api/copy`, `/api/delete`: models are found,
/// downloaded and deployed on BurnCloud's Models and Deployments pages, not through these.
pub(crate) async fn managed_elsewhere() -> Response {
    let message = "BurnCloud manages models on its Models and Deployments pages (or /console/api/downloads and \
                   /console/api/instances); Ollama's pull, push, create, copy and delete are not offered here";
    (StatusCode::NOT_IMPLEMENTED, axum::Json(json!({"error": message}))).into_response()
}
