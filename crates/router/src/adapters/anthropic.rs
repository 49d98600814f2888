//! OpenAI chat completions ⇄ Anthropic Messages: requests, answers, stream events and errors.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::usage::Usage;

pub const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; used when the caller sets none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

pub use super::Unconvertible;
use super::{image_source, now_seconds, push_turn, text_of, ChunkStream, ImageSource};

/// An OpenAI `image_url` part as an Anthropic image block: data URLs inline, others by URL.
fn image_block(part: &Value) -> Result<Value, Unconvertible> {
    Ok(match image_source(part)? {
        ImageSource::Inline { media_type, data } => {
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
        }
        ImageSource::Url(url) => json!({"type": "image", "source": {"type": "url", "url": url}}),
    })
}

/// OpenAI message content as Anthropic content blocks.
fn content_blocks(content: &Value) -> Result<Vec<Value>, Unconvertible> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) if text.is_empty() => Ok(Vec::new()),
        Value::String(text) => Ok(vec![json!({"type": "text", "text": text})]),
        Value::Array(parts) => parts
            .iter()
            .map(|part| match part.get("type").and_then(Value::as_str) {
                Some("text") => Ok(json!({"type": "text", "text": part.get("text").cloned().unwrap_or(json!(""))})),
                Some("image_url") => image_block(part),
                other => Err(Unconvertible(format!("content parts of type {other:?} cannot go to Anthropic"))),
            })
            .collect(),
        _ => Err(Unconvertible("message content must be a string or a list of parts".into())),
    }
}

/// An OpenAI chat request as an Anthropic Messages request for `model`.
pub fn request(openai: &Map<String, Value>, model: &str, stream: bool) -> Result<Value, Unconvertible> {
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for message in openai.get("messages").and_then(Value::as_array).into_iter().flatten() {
        let content = message.get("content").unwrap_or(&Value::Null);
        match message.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => {
                let text = text_of(content);
                if !text.is_empty() {
                    system.push(json!({"type": "text", "text": text}));
                }
            }
            Some("user") => push_turn(&mut messages, "user", "content", content_blocks(content)?),
            Some("assistant") => {
                let mut blocks = content_blocks(content)?;
                for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                    let function = call.get("function").unwrap_or(&Value::Null);
                    let arguments = function.get("arguments").and_then(Value::as_str).unwrap_or("{}");
                    let input: Value = serde_json::from_str(if arguments.trim().is_empty() { "{}" } else { arguments })
                        .map_err(|e| Unconvertible(format!("tool call arguments are not JSON: {e}")))?;
                    blocks.push(json!({"type": "tool_use", "id": call.get("id").cloned().unwrap_or(json!("")),
                        "name": function.get("name").cloned().unwrap_or(json!("")), "input": input}));
                }
                push_turn(&mut messages, "assistant", "content", blocks);
            }
            Some("tool") => {
                let block = json!({"type": "tool_result", "tool_use_id": message.get("tool_call_id").cloned().unwrap_or(json!("")),
                    "content": text_of(content)});
                push_turn(&mut messages, "user", "content", vec![block]);
            }
            other => return Err(Unconvertible(format!("messages with role {other:?} cannot go to Anthropic"))),
        }
    }
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|key| openai.get(*key).and_then(Value::as_u64))
        .unwrap_or(DEFAULT_MAX_TOKENS);
    let mut out = json!({"model": model, "max_tokens": max_tokens, "messages": messages});
    if !system.is_empty() {
        out["system"] = Value::Array(system);
    }
    if stream {
        out["stream"] = json!(true);
    }
    for (from, to) in [("temperature", "temperature"), ("top_p", "top_p")] {
        if let Some(value) = openai.get(from).filter(|v| !v.is_null()) {
            out[to] = value.clone();
        }
    }
    match openai.get("stop") {
        Some(Value::String(stop)) => out["stop_sequences"] = json!([stop]),
        Some(Value::Array(stops)) if !stops.is_empty() => out["stop_sequences"] = Value::Array(stops.clone()),
        _ => {}
    }
    if let Some(tools) = openai.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty()) {
        let tools: Vec<Value> = tools
            .iter()
            .filter_map(|tool| tool.get("function"))
            .map(|f| {
                let mut tool = json!({"name": f.get("name").cloned().unwrap_or(json!("")),
                    "input_schema": f.get("parameters").cloned().unwrap_or(json!({"type": "object", "properties": {}}))});
                if let Some(description) = f.get("description") {
                    tool["description"] = description.clone();
                }
                tool
            })
            .collect();
        out["tools"] = Value::Array(tools);
    }
    let mut choice = match openai.get("tool_choice") {
        Some(Value::String(choice)) if choice == "none" => Some(json!({"type": "none"})),
        Some(Value::String(choice)) if choice == "required" => Some(json!({"type": "any"})),
        Some(Value::String(choice)) if choice == "auto" => Some(json!({"type": "auto"})),
        Some(Value::Object(choice)) => {
            choice.get("function").and_then(|f| f.get("name")).map(|name| json!({"type": "tool", "name": name}))
        }
        _ => None,
    };
    if openai.get("parallel_tool_calls") == Some(&Value::Bool(false)) && out.get("tools").is_some() {
        let choice = choice.get_or_insert_with(|| json!({"type": "auto"}));
        choice["disable_parallel_tool_use"] = json!(true);
    }
    if let Some(choice) = choice {
        out["tool_choice"] = choice;
    }
    if let Some(user) = openai.get("user").and_then(Value::as_str) {
        out["metadata"] = json!({"user_id": user});
    }
    Ok(out)
}

/// Anthropic's `stop_reason` as OpenAI's `finish_reason`.
pub fn finish_reason(stop_reason: Option<&str>) -> Value {
    match stop_reason {
        Some("end_turn" | "stop_sequence" | "pause_turn") => json!("stop"),
        Some("max_tokens") => json!("length"),
        Some("tool_use") => json!("tool_calls"),
        Some("refusal") => json!("content_filter"),
        Some(_) => json!("stop"),
        None => Value::Null,
    }
}

/// Anthropic usage as token counts. Anthropic's `input_tokens` leaves out cache reads and writes,
/// which are prompt tokens too (billed at their own prices); the 1-hour writes are a part of the
/// writes, given in `cache_creation`.
pub(crate) fn usage_of(usage: &Value) -> Usage {
    let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    let read = count("cache_read_input_tokens");
    let creation = usage.get("cache_creation");
    let split = |key: &str| creation.and_then(|c| c.get(key)).and_then(Value::as_u64);
    let write_1h = split("ephemeral_1h_input_tokens").unwrap_or(0);
    let write = match usage.get("cache_creation_input_tokens").and_then(Value::as_u64) {
        Some(write) => write,
        None => write_1h + split("ephemeral_5m_input_tokens").unwrap_or(0),
    };
    Usage {
        prompt_tokens: count("input_tokens") + write + read,
        completion_tokens: count("output_tokens"),
        cached_tokens: read,
        cache_write_tokens: write,
        cache_write_1h_tokens: write_1h.min(write),
        ..Usage::default()
    }
}

/// An Anthropic message as an OpenAI chat completion, with its usage.
pub fn response(body: &[u8], requested_model: &str) -> Result<(Bytes, Usage), Unconvertible> {
    let message: Value =
        serde_json::from_slice(body).map_err(|e| Unconvertible(format!("Anthropic's answer is not JSON: {e}")))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in message.get("content").and_then(Value::as_array).into_iter().flatten() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => tool_calls.push(json!({
                "id": block.get("id").cloned().unwrap_or(json!("")),
                "type": "function",
                "function": {"name": block.get("name").cloned().unwrap_or(json!("")),
                             "arguments": block.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into())},
            })),
            _ => {}
        }
    }
    let usage_value = message.get("usage").cloned().unwrap_or(json!({}));
    let usage = usage_of(&usage_value);
    let mut reply = json!({"role": "assistant", "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { json!(text) }});
    if !tool_calls.is_empty() {
        reply["tool_calls"] = Value::Array(tool_calls);
    }
    if !reasoning.is_empty() {
        reply["reasoning_content"] = json!(reasoning);
    }
    let completion = json!({
        "id": message.get("id").and_then(Value::as_str).map(|id| format!("chatcmpl-{id}")).unwrap_or_default(),
        "object": "chat.completion",
        "created": now_seconds(),
        "model": message.get("model").and_then(Value::as_str).unwrap_or(requested_model),
        "choices": [{"index": 0, "message": reply, "logprobs": null,
                     "finish_reason": finish_reason(message.get("stop_reason").and_then(Value::as_str))}],
        "usage": usage.openai_json(),
    });
    Ok((Bytes::from(completion.to_string()), usage))
}

/// Anthropic's error body (`{"type":"error","error":{"type","message"}}`) in OpenAI's shape.
pub fn error_body(body: &[u8]) -> Bytes {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let error_type = error.and_then(|e| e.get("type")).and_then(Value::as_str).unwrap_or("upstream_error");
    Bytes::from(
        json!({"error": {"message": message, "type": error_type, "param": null, "code": error_type}}).to_string(),
    )
}

/// Translates an Anthropic event stream into OpenAI chat completion chunks, event by event.
#[derive(Debug, Default)]
pub struct StreamTranslator {
    stream: ChunkStream,
    usage: Usage,
    saw_usage: bool,
    /// Anthropic content block index → OpenAI tool call index, for tool_use blocks.
    tool_indexes: Vec<(u64, usize)>,
    finished: bool,
    pub error: Option<String>,
}

impl StreamTranslator {
    pub fn new(model: &str) -> StreamTranslator {
        StreamTranslator { stream: ChunkStream::new("", model), ..StreamTranslator::default() }
    }

    fn chunk(&self, delta: Value, finish_reason: Value) -> Bytes {
        self.stream.chunk(delta, finish_reason)
    }

    /// The OpenAI chunks for one Anthropic event's `data`.
    pub fn on_event(&mut self, data: &[u8]) -> Vec<Bytes> {
        let Ok(event) = serde_json::from_slice::<Value>(data) else { return Vec::new() };
        match event.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let message = &event["message"];
                if let Some(id) = message.get("id").and_then(Value::as_str) {
                    self.stream.id = format!("chatcmpl-{id}");
                }
                if let Some(model) = message.get("model").and_then(Value::as_str) {
                    self.stream.model = model.to_string();
                }
                if let Some(usage) = message.get("usage") {
                    self.usage = usage_of(usage);
                    self.saw_usage = true;
                }
                vec![self.chunk(json!({"role": "assistant", "content": ""}), Value::Null)]
            }
            Some("content_block_start") => {
                let block = &event["content_block"];
                if block.get("type").and_then(Value::as_str) != Some("tool_use") {
                    return Vec::new();
                }
                let index = self.tool_indexes.len();
                self.tool_indexes.push((event["index"].as_u64().unwrap_or(0), index));
                let call = json!({"index": index, "id": block.get("id").cloned().unwrap_or(json!("")), "type": "function",
                    "function": {"name": block.get("name").cloned().unwrap_or(json!("")), "arguments": ""}});
                vec![self.chunk(json!({"tool_calls": [call]}), Value::Null)]
            }
            Some("content_block_delta") => {
                let delta = &event["delta"];
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => vec![self.chunk(json!({"content": delta["text"]}), Value::Null)],
                    Some("thinking_delta") => {
                        vec![self.chunk(json!({"reasoning_content": delta["thinking"]}), Value::Null)]
                    }
                    Some("input_json_delta") => {
                        let block = event["index"].as_u64().unwrap_or(0);
                        let Some(&(_, index)) = self.tool_indexes.iter().find(|(b, _)| *b == block) else {
                            return Vec::new();
                        };
                        let call = json!({"index": index, "function": {"arguments": delta["partial_json"]}});
                        vec![self.chunk(json!({"tool_calls": [call]}), Value::Null)]
                    }
                    _ => Vec::new(),
                }
            }
            Some("message_delta") => {
                // The final usage is cumulative; newer API versions repeat the input counts in it.
                if let Some(usage) = event.get("usage").filter(|u| u.is_object()) {
                    if usage.get("input_tokens").is_some_and(Value::is_u64) {
                        self.usage = usage_of(usage);
                    } else if let Some(output) = usage.get("output_tokens").and_then(Value::as_u64) {
                        self.usage.completion_tokens = output;
                    }
                    self.saw_usage = true;
                }
                let reason = finish_reason(event["delta"].get("stop_reason").and_then(Value::as_str));
                vec![self.chunk(json!({}), reason)]
            }
            Some("message_stop") => {
                self.finished = true;
                Vec::new()
            }
            Some("error") => {
                let message = event["error"].get("message").and_then(Value::as_str).unwrap_or("upstream error");
                self.error = Some(message.to_string());
                let error_type = event["error"].get("type").and_then(Value::as_str).unwrap_or("upstream_error");
                let body =
                    json!({"error": {"message": message, "type": error_type, "param": null, "code": error_type}});
                vec![Bytes::from(format!("data: {body}\n\n"))]
            }
            _ => Vec::new(),
        }
    }

    /// What ends the OpenAI stream: the usage chunk if the caller asked for it, then `[DONE]`.
    pub fn finish(&self, include_usage: bool) -> Vec<Bytes> {
        self.stream.closing((include_usage && self.saw_usage).then(|| self.usage.openai_json()))
    }

    pub fn finished(&self) -> bool {
        self.finished
    }

    pub fn usage(&self) -> Option<Usage> {
        self.saw_usage.then_some(self.usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::{event_data, SseSplitter};

    const STREAM: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm…\"}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Grüße, \"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"世界\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":7}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    fn translate(chunks: &[&[u8]]) -> (String, String, Vec<String>, StreamTranslator) {
        let mut splitter = SseSplitter::default();
        let mut translator = StreamTranslator::new("requested");
        let mut out = Vec::new();
        for chunk in chunks {
            for event in splitter.push(chunk) {
                if let Some(data) = event_data(&event) {
                    out.extend(translator.on_event(&data));
                }
            }
        }
        let (mut text, mut reasoning, mut finish) = (String::new(), String::new(), Vec::new());
        for bytes in &out {
            let line = std::str::from_utf8(bytes).unwrap();
            let chunk: Value = serde_json::from_str(line.trim().strip_prefix("data: ").unwrap()).unwrap();
            let choice = &chunk["choices"][0];
            text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            reasoning.push_str(choice["delta"]["reasoning_content"].as_str().unwrap_or(""));
            if let Some(reason) = choice["finish_reason"].as_str() {
                finish.push(reason.to_string());
            }
        }
        (text, reasoning, finish, translator)
    }

    #[test]
    fn a_stream_split_anywhere_translates_the_same() {
        let bytes = STREAM.as_bytes();
        for at in 0..bytes.len() {
            let (text, reasoning, finish, translator) = translate(&[&bytes[..at], &bytes[at..]]);
            assert_eq!(text, "Grüße, 世界", "split at {at}");
            assert_eq!(reasoning, "hmm…", "thinking goes to reasoning_content, never content");
            assert_eq!(finish, vec!["length"]);
            assert!(translator.finished());
            assert_eq!(
                translator.usage(),
                Some(Usage { prompt_tokens: 15, completion_tokens: 7, cached_tokens: 3, ..Usage::default() })
            );
        }
    }

    /// Every cache field of Anthropic's usage lands in its own counter, whichever way it is given.
    #[test]
    fn cache_reads_and_writes_are_counted_apart() {
        let usage = usage_of(&json!({"input_tokens": 10, "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 300, "output_tokens": 20,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200}}));
        assert_eq!(
            usage,
            Usage {
                prompt_tokens: 1310,
                completion_tokens: 20,
                cached_tokens: 1000,
                cache_write_tokens: 300,
                cache_write_1h_tokens: 200,
                ..Usage::default()
            }
        );
        let only_split = usage_of(&json!({"input_tokens": 1, "output_tokens": 2,
            "cache_creation": {"ephemeral_5m_input_tokens": 4, "ephemeral_1h_input_tokens": 8}}));
        assert_eq!(
            (only_split.prompt_tokens, only_split.cache_write_tokens, only_split.cache_write_1h_tokens),
            (13, 12, 8)
        );
        let mut translator = StreamTranslator::new("m");
        translator.on_event(br#"{"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}"#);
        translator.on_event(br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":5,"cache_read_input_tokens":50,"cache_creation_input_tokens":7,"output_tokens":9}}"#);
        assert_eq!(
            translator.usage().map(|u| (u.prompt_tokens, u.cached_tokens, u.cache_write_tokens, u.completion_tokens)),
            Some((62, 50, 7, 9))
        );
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            assert_eq!(finish_reason(Some(stop)), json!(finish));
        }
        assert_eq!(finish_reason(None), Value::Null);
    }
}
