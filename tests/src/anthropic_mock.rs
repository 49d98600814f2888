//! Anthropic's Messages API on the mock server (`POST /v1/messages`): answers, tool use, streams
//! with Anthropic's exact event sequence, and Anthropic's error bodies.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::mock_state::{hang, record_call, Mode, SharedState, COMPLETION_TOKENS, PROMPT_TOKENS, REPLY};

/// The arguments of the tool calls the mock makes, one per tool call (parallel calls).
pub const TOOL_INPUTS: [&str; 2] = [r#"{"location": "Paris"}"#, r#"{"location": "Tokyo"}"#];

/// The parallel calls of tool `name` with `TOOL_INPUTS`, their ids `{id_prefix}{i}`.
pub fn parallel_calls(name: &str, id_prefix: &str) -> Vec<(String, String, String)> {
    TOOL_INPUTS
        .iter()
        .enumerate()
        .map(|(i, input)| (format!("{id_prefix}{i}"), name.to_string(), input.to_string()))
        .collect()
}

/// Anthropic's error bodies, as its API reference documents them.
pub fn error_body(status: u16) -> Value {
    let (error_type, message) = match status {
        400 => ("invalid_request_error", "messages: roles must alternate between \"user\" and \"assistant\""),
        401 => ("authentication_error", "invalid x-api-key"),
        429 => ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    };
    json!({"type": "error", "error": {"type": error_type, "message": message}})
}

/// The tool the model calls, if it calls one: once the conversation ends with the tools' results it
/// answers in words, unless `tool_choice` says it must call one.
fn tool_name(request: &Value) -> Option<String> {
    let name = request.get("tools")?.as_array()?.first()?.get("name")?.as_str().map(String::from);
    let forced = matches!(request.pointer("/tool_choice/type").and_then(Value::as_str), Some("any" | "tool"));
    let answered = request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_array())
        .is_some_and(|blocks| blocks.iter().any(|block| block["type"] == "tool_result"));
    name.filter(|_| forced || !answered)
}

pub(crate) async fn messages(
    State(shared): State<SharedState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(String::from);
    if headers.get("anthropic-version").and_then(|v| v.to_str().ok()) != Some("2023-06-01") {
        let error = json!({"type": "error", "error": {"type": "invalid_request_error", "message": "anthropic-version header is required"}});
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let mode = match record_call(&shared, "/v1/messages", key, |key| key.to_string(), &body) {
        Ok(mode) => mode,
        Err(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, Json(error_body(status.as_u16()))).into_response();
        }
    };
    if mode == Mode::Hang {
        return hang().await;
    }
    let model = body.get("model").and_then(Value::as_str).unwrap_or("claude-sonnet-4-5").to_string();
    let answer = answer(&mode, &body);
    let usage = usage(&mode);
    if body.get("stream") == Some(&Value::Bool(true)) {
        return stream(model, answer, usage);
    }
    let mut content = vec![json!({"type": "text", "text": answer.text})];
    for (id, name, input) in &answer.calls {
        let input: Value = serde_json::from_str(input).unwrap();
        content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    let mut usage = usage;
    usage["output_tokens"] = json!(COMPLETION_TOKENS);
    Json(json!({
        "id": "msg_01mock", "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": if answer.calls.is_empty() { "end_turn" } else { "tool_use" }, "stop_sequence": null,
        "usage": usage
    }))
    .into_response()
}

/// Cache reads and writes the mock reports in `Mode::CachedUsage`, besides `PROMPT_TOKENS` uncached.
pub const CACHE_READ_TOKENS: u64 = 1000;
pub const CACHE_WRITE_5M_TOKENS: u64 = 100;
pub const CACHE_WRITE_1H_TOKENS: u64 = 200;

/// Anthropic's usage at the start of a message: `input_tokens` leaves out cache reads and writes.
fn usage(mode: &Mode) -> Value {
    if *mode == Mode::CachedUsage {
        return json!({"input_tokens": PROMPT_TOKENS, "output_tokens": 1,
            "cache_read_input_tokens": CACHE_READ_TOKENS,
            "cache_creation_input_tokens": CACHE_WRITE_5M_TOKENS + CACHE_WRITE_1H_TOKENS,
            "cache_creation": {"ephemeral_5m_input_tokens": CACHE_WRITE_5M_TOKENS,
                               "ephemeral_1h_input_tokens": CACHE_WRITE_1H_TOKENS}});
    }
    json!({"input_tokens": PROMPT_TOKENS, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
}

/// What the message holds: its text and its tool calls (id, name, JSON input).
struct Answer {
    text: String,
    calls: Vec<(String, String, String)>,
}

fn answer(mode: &Mode, request: &Value) -> Answer {
    let (text, calls) = match (mode, tool_name(request)) {
        (Mode::Agent, _) => crate::agent::for_anthropic(request).into_reply("toolu_probe"),
        (_, Some(name)) => ("Let me check.".into(), parallel_calls(&name, "toolu_0")),
        (_, None) => (REPLY.into(), Vec::new()),
    };
    Answer { text, calls }
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// The event sequence Anthropic streams: message_start, content blocks (start, deltas, stop),
/// message_delta with the stop reason and output tokens, message_stop — with a ping in between.
fn stream(model: String, answer: Answer, usage: Value) -> Response {
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_01mock", "type": "message",
            "role": "assistant", "content": [], "model": model, "stop_reason": null, "stop_sequence": null,
            "usage": usage}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
    ];
    for word in answer.text.split_inclusive(' ') {
        events.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}}),
        ));
    }
    events.push(event("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
    for (i, (id, name, input)) in answer.calls.iter().enumerate() {
        let index = i + 1;
        events.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        ));
        let (head, tail) = input.split_at(8.min(input.len()));
        for part in [head, tail] {
            events.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": part}}),
            ));
        }
        events.push(event("content_block_stop", json!({"type": "content_block_stop", "index": index})));
    }
    events.push(event(
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": if answer.calls.is_empty() { "end_turn" } else { "tool_use" }, "stop_sequence": null},
        "usage": {"output_tokens": COMPLETION_TOKENS}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    let stream = futures_util::stream::iter(events.into_iter().map(|e| Ok::<Bytes, std::io::Error>(Bytes::from(e))));
    Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap()
}
