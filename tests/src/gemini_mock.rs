//! Google's Gemini API on the mock server: `generateContent`, `streamGenerateContent?alt=sse`,
//! `batchEmbedContents`, with Gemini's error bodies. The key arrives in `x-goog-api-key`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::anthropic_mock::TOOL_INPUTS;
use crate::mock_state::{hang, record_call, Mode, SharedState, CACHED_TOKENS, COMPLETION_TOKENS, PROMPT_TOKENS, REPLY};

pub fn error_body(status: u16) -> Value {
    let (code_name, message) = match status {
        400 => ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401 | 403 => ("PERMISSION_DENIED", "API key not valid. Please pass a valid API key."),
        429 => ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        503 => ("UNAVAILABLE", "The model is overloaded. Please try again later."),
        _ => ("INTERNAL", "An internal error has occurred."),
    };
    json!({"error": {"code": status, "message": message, "status": code_name}})
}

fn usage(mode: &Mode) -> Value {
    let mut usage = json!({"promptTokenCount": PROMPT_TOKENS, "candidatesTokenCount": COMPLETION_TOKENS, "totalTokenCount": PROMPT_TOKENS + COMPLETION_TOKENS});
    if *mode == Mode::CachedUsage {
        // Gemini counts the cached part inside promptTokenCount.
        usage["cachedContentTokenCount"] = json!(CACHED_TOKENS);
    }
    usage
}

/// The function the model calls, if it calls one: once the conversation ends with the functions'
/// results it answers in words, unless the function calling mode is `ANY`.
fn function_name(request: &Value) -> Option<String> {
    let name = request.pointer("/tools/0/functionDeclarations/0/name")?.as_str().map(String::from);
    let forced = request.pointer("/toolConfig/functionCallingConfig/mode").and_then(Value::as_str) == Some("ANY");
    let answered = request["contents"]
        .as_array()
        .and_then(|c| c.last())
        .and_then(|c| c["parts"].as_array())
        .is_some_and(|parts| parts.iter().any(|part| part.get("functionResponse").is_some()));
    name.filter(|_| forced || !answered)
}

fn calls(name: &str) -> Vec<Value> {
    TOOL_INPUTS
        .iter()
        .map(|input| json!({"functionCall": {"name": name, "args": serde_json::from_str::<Value>(input).unwrap()}}))
        .collect()
}

pub(crate) async fn models(
    State(shared): State<SharedState>,
    Path(target): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let key = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).map(String::from);
    let path = format!("/v1beta/models/{target}");
    let mode = match record_call(&shared, &path, key, |key| key.to_string(), &body) {
        Ok(mode) => mode,
        Err(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, Json(error_body(status.as_u16()))).into_response();
        }
    };
    if mode == Mode::Hang {
        return hang().await;
    }
    let (model, method) = target.split_once(':').unwrap_or((&target, ""));
    match method {
        "generateContent" => {
            let structured = body.pointer("/generationConfig/responseJsonSchema").map(crate::agent::sample_of);
            let parts = match (function_name(&body), structured) {
                (Some(name), _) => calls(&name),
                (None, Some(answer)) => vec![json!({"text": answer.to_string()})],
                (None, None) => vec![json!({"text": REPLY})],
            };
            let mut candidate =
                json!({"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0});
            if let Some(grounding) = grounding(&body) {
                candidate["groundingMetadata"] = grounding;
            }
            Json(json!({
                "candidates": [candidate], "usageMetadata": usage(&mode), "modelVersion": model, "responseId": "resp-mock"
            }))
            .into_response()
        }
        "streamGenerateContent" if uri.query() == Some("alt=sse") => {
            let mut events: Vec<Value> = Vec::new();
            match function_name(&body) {
                Some(name) => events
                    .push(json!({"candidates": [{"content": {"role": "model", "parts": calls(&name)}, "index": 0}]})),
                None => {
                    for word in REPLY.split_inclusive(' ') {
                        events.push(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": word}]}, "index": 0}]}));
                    }
                }
            }
            let mut last =
                json!({"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0});
            if let Some(grounding) = grounding(&body) {
                last["groundingMetadata"] = grounding;
            }
            events.push(json!({"candidates": [last], "usageMetadata": usage(&mode), "modelVersion": model,
                "responseId": "resp-mock"}));
            let chunks =
                events.into_iter().map(|e| Ok::<Bytes, std::io::Error>(Bytes::from(format!("data: {e}\r\n\r\n"))));
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(futures_util::stream::iter(chunks)))
                .unwrap()
        }
        "batchEmbedContents" => {
            let count = body.get("requests").and_then(Value::as_array).map_or(0, Vec::len);
            let embeddings: Vec<Value> =
                (0..count).map(|i| json!({"values": [0.013, -0.008, i as f64 / 10.0]})).collect();
            Json(json!({"embeddings": embeddings})).into_response()
        }
        _ => (StatusCode::NOT_FOUND, Json(error_body(404))).into_response(),
    }
}

/// With Google Search among the tools, the sources an answer was grounded in, as Gemini reports them.
fn grounding(request: &Value) -> Option<Value> {
    let tools = request.get("tools")?.as_array()?;
    tools.iter().any(|tool| tool.get("googleSearch").is_some()).then(|| {
        json!({"webSearchQueries": ["burncloud gateway"],
            "groundingChunks": [{"web": {"uri": "https://example.invalid/burncloud", "title": "BurnCloud"}}],
            "searchEntryPoint": {"renderedContent": "<div>BurnCloud</div>"}})
    })
}
