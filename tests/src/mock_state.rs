//! What every mock provider shares: the canned answer and its token counts, the switchable
//! `Mode`, the calls received, and admitting a call (its key checked, its failure decided) with
//! OpenAI's error bodies.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The answer every successful chat call gets, streamed word by word.
pub const REPLY: &str = "Hello! How can I help you today?";
pub const PROMPT_TOKENS: u64 = 21;
pub const COMPLETION_TOKENS: u64 = 9;
pub const EMBEDDING_TOKENS: u64 = 8;

/// How the mock answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    /// Answer normally.
    #[default]
    Normal,
    /// Answer without any `usage` object, as some OpenAI-compatible servers do.
    NoUsage,
    /// Answer every call with this status and OpenAI's error body for it.
    Error { status: u16 },
    /// Accept the call and never answer.
    Hang,
    /// Stream slowly: a chunk every `delay_ms`, `chunks` content chunks, then finish normally.
    Slow { delay_ms: u64, chunks: u32 },
    /// Send the first stream chunk, then drop the connection.
    CutStream,
    /// Answer normally, except that `percent` of the calls, at random, get a 500.
    Flaky { percent: u32 },
    /// Answer as a coding agent's model would (see `agent`): call the agent's shell tool when
    /// asked to run the probe, then report what it printed.
    Agent,
    /// Answer normally, with usage that says part of the prompt came from (or went to) the
    /// provider's prompt cache, in each provider's own fields.
    CachedUsage,
}

/// Prompt tokens the mock reports as read from its cache in `Mode::CachedUsage` (of `PROMPT_TOKENS`).
pub const CACHED_TOKENS: u64 = 15;

const MAX_RECEIVED: usize = 10_000;

/// One request the mock received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) mode: Mode,
    /// The latest calls, at most `MAX_RECEIVED`, so that long benchmark runs stay small.
    pub(crate) received: std::collections::VecDeque<Received>,
    pub(crate) expected_key: Option<String>,
}

pub(crate) type SharedState = Arc<Mutex<Shared>>;

/// OpenAI's error bodies, as its API reference documents them.
pub fn error_body(status: u16) -> Value {
    let (message, error_type, code) = match status {
        400 => ("Invalid value for 'messages'.", "invalid_request_error", Value::Null),
        401 => (
            "Incorrect API key provided: sk-wrong***. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            json!("invalid_api_key"),
        ),
        404 => ("The model `nope` does not exist or you do not have access to it.", "invalid_request_error", json!("model_not_found")),
        429 => (
            "Rate limit reached for gpt-4o-mini in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested 1.",
            "requests",
            json!("rate_limit_exceeded"),
        ),
        _ => ("The server had an error while processing your request. Sorry about that!", "server_error", Value::Null),
    };
    json!({"error": {"message": message, "type": error_type, "param": null, "code": code}})
}

/// Records the call and decides, before any body, whether it fails.
/// Records a call; returns the mode to answer in, or the error status (401 for a wrong key).
pub(crate) fn record_call(
    shared: &SharedState,
    path: &str,
    credential: Option<String>,
    expected: impl Fn(&str) -> String,
    body: &Value,
) -> Result<Mode, u16> {
    let mut state = shared.lock().unwrap();
    if state.received.len() == MAX_RECEIVED {
        state.received.pop_front();
    }
    state.received.push_back(Received { path: path.into(), authorization: credential.clone(), body: body.clone() });
    if let Some(key) = &state.expected_key {
        if credential.as_deref() != Some(expected(key).as_str()) {
            return Err(401);
        }
    }
    match state.mode.clone() {
        Mode::Error { status } => Err(status),
        Mode::Flaky { percent } if fastrand::u32(..100) < percent => Err(500),
        Mode::Flaky { .. } => Ok(Mode::Normal),
        mode => Ok(mode),
    }
}

pub(crate) fn admit(
    shared: &SharedState,
    path: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Result<Mode, Box<Response>> {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(String::from);
    match record_call(shared, path, authorization, |key| format!("Bearer {key}"), body) {
        Ok(mode) => Ok(mode),
        Err(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, Json(error_body(status.as_u16()))).into_response();
            if status == StatusCode::TOO_MANY_REQUESTS {
                response.headers_mut().insert("retry-after", "1".parse().unwrap());
            }
            Err(Box::new(response))
        }
    }
}

pub(crate) async fn hang() -> Response {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    StatusCode::GATEWAY_TIMEOUT.into_response()
}

/// A PNG of one transparent pixel, as image generations return it in `b64_json`.
pub const ONE_PIXEL_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
