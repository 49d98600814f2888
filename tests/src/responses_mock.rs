//! OpenAI's own Responses API on the mock server (`POST /v1/responses`): a response object, or
//! its typed event stream (`response.created` … `response.completed`, no `[DONE]`), for the
//! channels that pass `/v1/responses` calls through natively.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::mock_state::{admit, hang, Mode, SharedState, CACHED_TOKENS, COMPLETION_TOKENS, PROMPT_TOKENS, REPLY};

const RESPONSE_ID: &str = "resp_mock0123";
const MESSAGE_ID: &str = "msg_mock0123";

fn usage(mode: &Mode) -> Value {
    let cached = if *mode == Mode::CachedUsage { CACHED_TOKENS } else { 0 };
    json!({"input_tokens": PROMPT_TOKENS, "input_tokens_details": {"cached_tokens": cached},
           "output_tokens": COMPLETION_TOKENS, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS})
}

fn response(model: &str, status: &str, output: Value, usage: Value) -> Value {
    json!({"id": RESPONSE_ID, "object": "response", "created_at": 1_741_476_542, "status": status,
           "error": null, "incomplete_details": null, "instructions": null, "max_output_tokens": null,
           "model": model, "output": output, "parallel_tool_calls": true, "previous_response_id": null,
           "reasoning": {"effort": null, "summary": null}, "store": true, "temperature": 1.0,
           "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
           "truncation": "disabled", "usage": usage, "user": null, "metadata": {}})
}

fn message(text: &str, status: &str) -> Value {
    json!({"type": "message", "id": MESSAGE_ID, "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

pub(crate) async fn create(State(shared): State<SharedState>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let mode = match admit(&shared, "/v1/responses", &headers, &body) {
        Ok(mode) => mode,
        Err(response) => return *response,
    };
    if mode == Mode::Hang {
        return hang().await;
    }
    let model = body.get("model").and_then(Value::as_str).unwrap_or("gpt-4o-mini").to_string();
    if body.get("stream") != Some(&Value::Bool(true)) {
        return Json(response(&model, "completed", json!([message(REPLY, "completed")]), usage(&mode))).into_response();
    }
    let mut sequence = 0u64;
    let mut events = Vec::new();
    let mut push = |mut data: Value| {
        data["sequence_number"] = json!(sequence);
        sequence += 1;
        events.push(format!("event: {}\ndata: {data}\n\n", data["type"].as_str().unwrap_or_default()));
    };
    let started = response(&model, "in_progress", json!([]), Value::Null);
    push(json!({"type": "response.created", "response": started}));
    push(json!({"type": "response.in_progress", "response": started}));
    push(json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "message", "id": MESSAGE_ID,
        "status": "in_progress", "role": "assistant", "content": []}}));
    push(json!({"type": "response.content_part.added", "item_id": MESSAGE_ID, "output_index": 0, "content_index": 0,
        "part": {"type": "output_text", "text": "", "annotations": []}}));
    for word in REPLY.split_inclusive(' ') {
        push(json!({"type": "response.output_text.delta", "item_id": MESSAGE_ID, "output_index": 0,
            "content_index": 0, "delta": word, "logprobs": []}));
    }
    push(json!({"type": "response.output_text.done", "item_id": MESSAGE_ID, "output_index": 0, "content_index": 0,
        "text": REPLY, "logprobs": []}));
    push(json!({"type": "response.content_part.done", "item_id": MESSAGE_ID, "output_index": 0, "content_index": 0,
        "part": {"type": "output_text", "text": REPLY, "annotations": []}}));
    push(json!({"type": "response.output_item.done", "output_index": 0, "item": message(REPLY, "completed")}));
    push(json!({"type": "response.completed",
        "response": response(&model, "completed", json!([message(REPLY, "completed")]), usage(&mode))}));
    let stream = futures_util::stream::iter(events.into_iter().map(|e| Ok::<Bytes, std::io::Error>(Bytes::from(e))));
    Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// `POST /v1/responses/compact`: the caller's user messages, then one compaction item whose
/// content only this "provider" can read.
pub(crate) async fn compact(
    State(shared): State<SharedState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mode = match admit(&shared, "/v1/responses/compact", &headers, &body) {
        Ok(mode) => mode,
        Err(response) => return *response,
    };
    let mut output: Vec<Value> = match body.get("input") {
        Some(Value::Array(items)) => items
            .iter()
            .filter(|item| item["role"] == "user")
            .map(|item| json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": crate::agent::text_of(&item["content"])}]}))
            .collect(),
        Some(Value::String(text)) => {
            vec![json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})]
        }
        _ => Vec::new(),
    };
    output.push(json!({"type": "compaction", "id": "cmp_mock0123", "encrypted_content": "gAAAAB-openai-only"}));
    Json(json!({"id": RESPONSE_ID, "object": "response.compaction", "created_at": 1_741_476_542,
                "output": output, "usage": usage(&mode)}))
    .into_response()
}
