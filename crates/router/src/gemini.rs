//! Gemini's own routes: `GET /v1beta/models` (and one model), and
//! `POST /v1beta/models/{model}:{method}` for `generateContent`, `streamGenerateContent`,
//! `countTokens`, `embedContent` and `batchEmbedContents`, with the key as `x-goog-api-key` or
//! `?key=` as Google's clients send it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use burncloud_service_api::{InstanceKind, LocalModelFacts};
use serde_json::{json, Map, Value};

use crate::adapters::gemini_inbound::{self, GeminiOp};
use crate::adapters::{anthropic, Endpoint};
use crate::error::CallError;
use crate::proxy::{authenticate, dialect_error, handle_in, new_request_id, reachable_models, read_body, Dialect};
use crate::usage::estimate_prompt;
use crate::Gateway;

fn fail(error: CallError) -> Response {
    dialect_error(Dialect::Gemini(GeminiOp::Generate), error, &new_request_id())
}

/// The key where Google's clients put it (`x-goog-api-key`, or `?key=`), as a Bearer key.
fn with_google_key(mut headers: HeaderMap, query: Option<&str>) -> HeaderMap {
    if headers.contains_key(header::AUTHORIZATION) {
        return headers;
    }
    let from_header = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let from_query =
        query.and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("key=")).map(|key| key.to_string()));
    if let Some(key) = from_header.or(from_query) {
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", key.trim())) {
            headers.insert(header::AUTHORIZATION, value);
        }
    }
    headers
}

fn query_has(query: Option<&str>, pair: &str) -> bool {
    query.is_some_and(|query| query.split('&').any(|item| item == pair))
}

fn described(name: &str, local: Option<&LocalModelFacts>) -> Value {
    let embedding = match local {
        Some(facts) => facts.kind == InstanceKind::Embedding,
        None => name.contains("embedding"),
    };
    let methods: &[&str] = if embedding {
        &["embedContent", "batchEmbedContents"]
    } else {
        &["generateContent", "streamGenerateContent", "countTokens"]
    };
    json!({"name": format!("models/{name}"), "baseModelId": name, "displayName": name, "description": "",
        "supportedGenerationMethods": methods})
}

/// `GET /v1beta/models`: every model the key can call.
pub(crate) async fn list(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let headers = with_google_key(parts.headers, parts.uri.query());
    let token = match authenticate(&gateway, &headers) {
        Ok(token) => token,
        Err(error) => return fail(error),
    };
    let facts = gateway.local.get().map(|local| local.describe()).unwrap_or_default();
    let models: Vec<Value> = reachable_models(&gateway, &token)
        .into_iter()
        .map(|(name, _)| described(&name, facts.iter().find(|facts| facts.alias == name)))
        .collect();
    axum::Json(json!({"models": models})).into_response()
}

/// `GET /v1beta/models/{model}`: one model the key can call.
pub(crate) async fn get(State(gateway): State<Arc<Gateway>>, Path(model): Path<String>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let headers = with_google_key(parts.headers, parts.uri.query());
    let token = match authenticate(&gateway, &headers) {
        Ok(token) => token,
        Err(error) => return fail(error),
    };
    let model = model.strip_prefix("models/").unwrap_or(&model);
    if !reachable_models(&gateway, &token).iter().any(|(name, _)| name == model) {
        return fail(CallError::ModelNotFound(format!("models/{model} is not found for this key")));
    }
    let facts = gateway.local.get().map(|local| local.describe()).unwrap_or_default();
    axum::Json(described(model, facts.iter().find(|facts| facts.alias == model))).into_response()
}

/// `POST /v1beta/models/{model}:{method}`.
pub(crate) async fn call(
    State(gateway): State<Arc<Gateway>>,
    Path(target): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let query = parts.uri.query();
    let Some((model, method)) = target.rsplit_once(':') else {
        return fail(CallError::NotFound(format!("no method in '{target}': expected models/{{model}}:{{method}}")));
    };
    let Some(op) = GeminiOp::parse(method, query_has(query, "alt=sse")) else {
        return fail(CallError::NotFound(format!("the method '{method}' is not offered")));
    };
    let model = model.strip_prefix("models/").unwrap_or(model).to_string();
    let headers = with_google_key(parts.headers, query);
    let fail_in = |error: CallError| dialect_error(Dialect::Gemini(op), error, &new_request_id());
    let bytes = match read_body(body, gateway.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => return fail_in(error),
    };
    let mut native = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(native)) => native,
        _ => return fail_in(CallError::BadRequest { message: "the body must be a JSON object".into(), param: None }),
    };
    if op == GeminiOp::CountTokens {
        return count_tokens(&gateway, &headers, &model, &native).unwrap_or_else(fail_in);
    }
    // The model travels in the path; the router reads it from the body.
    native.insert("model".into(), Value::String(model));
    let endpoint = if op.is_embedding() { Endpoint::Embeddings } else { Endpoint::ChatCompletions };
    let body = Body::from(Value::Object(native).to_string());
    handle_in(gateway, endpoint, Dialect::Gemini(op), headers, body).await
}

/// `countTokens`: the prompt's size by the tokenizer, without a call upstream.
fn count_tokens(
    gateway: &Gateway,
    headers: &HeaderMap,
    model: &str,
    native: &Map<String, Value>,
) -> Result<Response, CallError> {
    let token = authenticate(gateway, headers)?;
    if !reachable_models(gateway, &token).iter().any(|(name, _)| name == model) {
        return Err(CallError::ModelNotFound(format!("models/{model} is not found for this key")));
    }
    let request = gemini_inbound::to_openai(GeminiOp::CountTokens, model, native)
        .map_err(|anthropic::Unconvertible(message)| CallError::BadRequest { message, param: None })?;
    Ok(axum::Json(json!({"totalTokens": estimate_prompt(&request)})).into_response())
}
