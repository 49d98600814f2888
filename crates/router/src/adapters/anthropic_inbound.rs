//! BurnCloud's Anthropic-compatible endpoint (`/v1/messages`): Anthropic requests in, converted to
//! OpenAI's format for the router, and OpenAI answers, chunks and errors converted back.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::Unconvertible;
use crate::usage::{usage_of_value, Usage};

fn blocks(content: &Value) -> Vec<Value> {
    match content {
        Value::String(text) => vec![json!({"type": "text", "text": text})],
        Value::Array(blocks) => blocks.clone(),
        _ => Vec::new(),
    }
}

fn text_of_blocks(content: &Value) -> String {
    blocks(content).iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
}

fn image_part(block: &Value) -> Option<Value> {
    let source = block.get("source")?;
    let url = match source.get("type").and_then(Value::as_str)? {
        "base64" => format!(
            "data:{};base64,{}",
            source.get("media_type").and_then(Value::as_str).unwrap_or("image/png"),
            source.get("data").and_then(Value::as_str).unwrap_or("")
        ),
        "url" => source.get("url").and_then(Value::as_str)?.to_string(),
        _ => return None,
    };
    Some(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// A document block's text, when it carries plain text (PDFs have no meaning outside Claude).
fn document_text(block: &Value) -> Option<Value> {
    let source = block.get("source")?;
    let text = match source.get("type").and_then(Value::as_str)? {
        "text" => source.get("data").and_then(Value::as_str)?.to_string(),
        "content" => text_of_blocks(source.get("content")?),
        _ => return None,
    };
    Some(json!({"type": "text", "text": text}))
}

/// An Anthropic Messages request as an OpenAI chat request. What only Claude understands —
/// `thinking`, `output_config`, `context_management`, `cache_control`, thinking blocks, server
/// tools — is left out rather than refused, so that any request the Anthropic API accepts runs
/// on any model.
pub fn to_openai(anthropic: &Map<String, Value>) -> Result<Map<String, Value>, Unconvertible> {
    let mut messages = Vec::new();
    if let Some(system) = anthropic.get("system") {
        let text = text_of_blocks(system);
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    for message in anthropic.get("messages").and_then(Value::as_array).into_iter().flatten() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let content = blocks(message.get("content").unwrap_or(&Value::Null));
        match role {
            "user" => {
                let mut parts = Vec::new();
                for block in &content {
                    match block.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            parts.push(json!({"type": "text", "text": block.get("text").cloned().unwrap_or(json!(""))}))
                        }
                        Some("image") => parts.extend(image_part(block)),
                        Some("document") => parts.extend(document_text(block)),
                        Some("tool_result") => messages.push(json!({"role": "tool",
                            "tool_call_id": block.get("tool_use_id").cloned().unwrap_or(json!("")),
                            "content": text_of_blocks(block.get("content").unwrap_or(&Value::Null))})),
                        _ => {}
                    }
                }
                if !parts.is_empty() {
                    messages.push(json!({"role": "user", "content": parts}));
                }
            }
            "assistant" => {
                let text: String = content
                    .iter()
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect();
                let calls: Vec<Value> = content
                    .iter()
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
                    .map(|b| {
                        json!({"id": b.get("id").cloned().unwrap_or(json!("")), "type": "function",
                        "function": {"name": b.get("name").cloned().unwrap_or(json!("")),
                                     "arguments": b.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into())}})
                    })
                    .collect();
                let mut turn =
                    json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
                if !calls.is_empty() {
                    turn["tool_calls"] = Value::Array(calls);
                }
                messages.push(turn);
            }
            // Current Claude Code sends system reminders as `system` turns between the others.
            "system" => {
                let text = text_of_blocks(message.get("content").unwrap_or(&Value::Null));
                if !text.is_empty() {
                    messages.push(json!({"role": "system", "content": text}));
                }
            }
            other => return Err(Unconvertible(format!("messages.role: {other:?} is not user, assistant or system"))),
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), anthropic.get("model").cloned().unwrap_or(Value::Null));
    out.insert("messages".into(), Value::Array(messages));
    if let Some(max) = anthropic.get("max_tokens") {
        out.insert("max_tokens".into(), max.clone());
    }
    for key in ["temperature", "top_p"] {
        if let Some(value) = anthropic.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    if let Some(stops) = anthropic.get("stop_sequences").filter(|s| s.as_array().is_some_and(|a| !a.is_empty())) {
        out.insert("stop".into(), stops.clone());
    }
    if anthropic.get("stream") == Some(&Value::Bool(true)) {
        out.insert("stream".into(), json!(true));
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(tools) = anthropic.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .filter(|t| t.get("input_schema").is_some())
            .map(|t| {
                let mut function = json!({"name": t.get("name").cloned().unwrap_or(json!("")),
                    "parameters": t.get("input_schema").cloned().unwrap_or(json!({}))});
                if let Some(description) = t.get("description") {
                    function["description"] = description.clone();
                }
                json!({"type": "function", "function": function})
            })
            .collect();
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(choice) = anthropic.get("tool_choice") {
        let converted = match choice.get("type").and_then(Value::as_str) {
            Some("auto") => Some(json!("auto")),
            Some("any") => Some(json!("required")),
            Some("none") => Some(json!("none")),
            Some("tool") => choice.get("name").map(|name| json!({"type": "function", "function": {"name": name}})),
            _ => None,
        };
        if let Some(converted) = converted {
            out.insert("tool_choice".into(), converted);
        }
        if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
            out.insert("parallel_tool_calls".into(), json!(false));
        }
    }
    if let Some(user) = anthropic.get("metadata").and_then(|m| m.get("user_id")) {
        out.insert("user".into(), user.clone());
    }
    Ok(out)
}

fn stop_reason(finish_reason: Option<&str>) -> Value {
    match finish_reason {
        Some("length") => json!("max_tokens"),
        Some("tool_calls" | "function_call") => json!("tool_use"),
        Some("content_filter") => json!("refusal"),
        Some(_) => json!("end_turn"),
        None => Value::Null,
    }
}

fn message_id(openai_id: Option<&str>) -> String {
    let id = openai_id.unwrap_or("burncloud");
    format!("msg_{}", id.strip_prefix("chatcmpl-").unwrap_or(id))
}

/// An OpenAI chat completion as an Anthropic message.
pub fn from_openai_response(body: &[u8], model: &str) -> Result<Bytes, Unconvertible> {
    let completion: Value =
        serde_json::from_slice(body).map_err(|e| Unconvertible(format!("the answer is not JSON: {e}")))?;
    let choice = completion.pointer("/choices/0").cloned().unwrap_or(Value::Null);
    let message = &choice["message"];
    let mut content = Vec::new();
    if let Some(text) = message.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        let arguments = call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("{}");
        content.push(json!({"type": "tool_use", "id": call.get("id").cloned().unwrap_or(json!("")),
            "name": call.pointer("/function/name").cloned().unwrap_or(json!("")),
            "input": serde_json::from_str::<Value>(arguments).unwrap_or_else(|_| json!({}))}));
    }
    let usage = completion.get("usage").and_then(usage_of_value).unwrap_or_default();
    let answer = json!({
        "id": message_id(completion.get("id").and_then(Value::as_str)),
        "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason").and_then(Value::as_str).or(Some("stop"))),
        "stop_sequence": null,
        "usage": anthropic_usage(&usage)
    });
    Ok(Bytes::from(answer.to_string()))
}

/// Anthropic's `usage` object: its `input_tokens` leaves out the cache reads and writes.
pub fn anthropic_usage(usage: &Usage) -> Value {
    json!({"input_tokens": usage.uncached_prompt_tokens(), "cache_creation_input_tokens": usage.cache_write_tokens,
           "cache_read_input_tokens": usage.cached_tokens, "output_tokens": usage.completion_tokens})
}

/// Anthropic's error type for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 | 503 => "overloaded_error",
        _ => "api_error",
    }
}

/// An error in Anthropic's shape.
pub fn error_body(status: u16, message: &str) -> Bytes {
    Bytes::from(json!({"type": "error", "error": {"type": error_type(status), "message": message}}).to_string())
}

fn event(name: &str, data: Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

#[derive(Debug, PartialEq)]
enum Block {
    None,
    Text(usize),
    Tool { block: usize, openai_index: u64 },
}

/// Turns OpenAI chat completion chunks into Anthropic's stream events as they arrive.
#[derive(Debug)]
pub struct AnthropicStreamWriter {
    model: String,
    started: bool,
    open: Block,
    next_block: usize,
    stop_reason: Value,
    usage: Usage,
    done: bool,
}

impl AnthropicStreamWriter {
    pub fn new(model: &str) -> AnthropicStreamWriter {
        AnthropicStreamWriter {
            model: model.to_string(),
            started: false,
            open: Block::None,
            next_block: 0,
            stop_reason: Value::Null,
            usage: Usage::default(),
            done: false,
        }
    }

    fn close_block(&mut self, out: &mut Vec<Bytes>) {
        let index = match self.open {
            Block::None => return,
            Block::Text(index) | Block::Tool { block: index, .. } => index,
        };
        out.push(event("content_block_stop", json!({"type": "content_block_stop", "index": index})));
        self.open = Block::None;
    }

    /// Anthropic events for one OpenAI chunk's `data` (`[DONE]` ends the message).
    pub fn on_chunk(&mut self, data: &[u8]) -> Vec<Bytes> {
        let mut out = Vec::new();
        if data == b"[DONE]" {
            return self.end();
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else { return out };
        if let Some(error) = chunk.get("error") {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("upstream error");
            out.push(event("error", json!({"type": "error", "error": {"type": "api_error", "message": message}})));
            return out;
        }
        if !self.started {
            self.started = true;
            out.push(event(
                "message_start",
                json!({"type": "message_start", "message": {
                "id": message_id(chunk.get("id").and_then(Value::as_str)), "type": "message", "role": "assistant",
                "content": [], "model": self.model, "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}}}),
            ));
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = usage_of_value(usage).unwrap_or_default();
        }
        let Some(choice) = chunk.pointer("/choices/0") else { return out };
        let delta = &choice["delta"];
        if let Some(text) = delta.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            if !matches!(self.open, Block::Text(_)) {
                self.close_block(&mut out);
                let index = self.next_block;
                self.next_block += 1;
                out.push(event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "text", "text": ""}}),
                ));
                self.open = Block::Text(index);
            }
            if let Block::Text(index) = self.open {
                out.push(event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": text}}),
                ));
            }
        }
        for call in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let openai_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let same = matches!(self.open, Block::Tool { openai_index: open, .. } if open == openai_index);
            if !same {
                self.close_block(&mut out);
                let block = self.next_block;
                self.next_block += 1;
                out.push(event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": block,
                    "content_block": {"type": "tool_use", "id": call.get("id").cloned().unwrap_or(json!("")),
                        "name": call.pointer("/function/name").cloned().unwrap_or(json!("")), "input": {}}}),
                ));
                self.open = Block::Tool { block, openai_index };
            }
            if let (Block::Tool { block, .. }, Some(arguments)) =
                (&self.open, call.pointer("/function/arguments").and_then(Value::as_str).filter(|a| !a.is_empty()))
            {
                out.push(event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": block,
                    "delta": {"type": "input_json_delta", "partial_json": arguments}}),
                ));
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.stop_reason = stop_reason(Some(reason));
        }
        out
    }

    /// Closes the message: the last block, the stop reason with the output tokens, message_stop.
    pub fn end(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.done || !self.started {
            return out;
        }
        self.done = true;
        self.close_block(&mut out);
        let stop = if self.stop_reason.is_null() { json!("end_turn") } else { self.stop_reason.clone() };
        out.push(event(
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": anthropic_usage(&self.usage)}),
        ));
        out.push(event("message_stop", json!({"type": "message_stop"})));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_openai_chat_requests() {
        let anthropic: Map<String, Value> = serde_json::from_value(json!({"model": "m", "max_tokens": 100,
            "system": [{"type": "text", "text": "Be brief."}], "stop_sequences": ["X"], "stream": true,
            "tools": [{"name": "get_weather", "description": "d", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Checking"}, {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Oslo"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "cold"}]},
            ]})).unwrap();
        let openai = to_openai(&anthropic).unwrap();
        let messages = openai["messages"].as_array().unwrap();
        assert_eq!(messages[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(
            messages[1]["content"][1],
            json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}})
        );
        assert_eq!(messages[2]["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Oslo\"}");
        assert_eq!(messages[3], json!({"role": "tool", "tool_call_id": "t1", "content": "cold"}));
        assert_eq!(
            (openai["tool_choice"].clone(), openai["parallel_tool_calls"].clone()),
            (json!("required"), json!(false))
        );
        assert_eq!(openai["stream_options"], json!({"include_usage": true}));
        assert_eq!(openai["stop"], json!(["X"]));
    }

    #[test]
    fn openai_chunks_become_anthropic_events_in_order() {
        let mut writer = AnthropicStreamWriter::new("m");
        let chunks = [
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"Let me "}}]}"#,
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"check."}}]}"#,
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c0","type":"function","function":{"name":"w","arguments":""}}]}}]}"#,
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]}}]}"#,
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c1","type":"function","function":{"name":"w","arguments":"{}"}}]}}]}"#,
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#,
            "[DONE]",
        ];
        let events: Vec<String> = chunks
            .iter()
            .flat_map(|c| writer.on_chunk(c.as_bytes()))
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect();
        let names: Vec<&str> = events.iter().map(|e| e.lines().next().unwrap().trim_start_matches("event: ")).collect();
        assert_eq!(
            names,
            vec![
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert!(events[11].contains("\"stop_reason\":\"tool_use\"") && events[11].contains("\"output_tokens\":7"));
        assert!(events[8].contains("\"index\":2"), "blocks are numbered in order: {}", events[8]);
    }
}
