//! Ollama's API in front of every channel: `/api/chat`, `/api/generate`, `/api/embed` and the older
//! `/api/embeddings` read as the router's OpenAI-format calls, and their answers, NDJSON streams and
//! errors written back the way Ollama writes them (its API reference, docs.ollama.com/api).

use std::time::{Duration, Instant};

use burncloud_service_api::KeepAlive;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::anthropic::Unconvertible;
use super::ChunkReader;

/// The Ollama operation a call came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OllamaOp {
    /// `POST /api/chat`: messages in, one assistant message out.
    Chat,
    /// `POST /api/generate`: a prompt (and a system prompt) in, a `response` string out.
    Generate,
    /// `POST /api/embed`: `input` as a string or strings, `embeddings` out.
    Embed,
    /// `POST /api/embeddings`: the older single `prompt`, one `embedding` out.
    Embeddings,
}

impl OllamaOp {
    pub fn route(self) -> &'static str {
        match self {
            OllamaOp::Chat => "/api/chat",
            OllamaOp::Generate => "/api/generate",
            OllamaOp::Embed => "/api/embed",
            OllamaOp::Embeddings => "/api/embeddings",
        }
    }
}

/// Ollama's `keep_alive`: seconds as a number, or a duration such as `"5m"`, `"1h30m"`, `"300ms"`
/// (a bare number in a string counts as seconds); negative keeps the model loaded, zero unloads it
/// as soon as the call ends.
pub fn keep_alive(native: &Map<String, Value>) -> Result<KeepAlive, Unconvertible> {
    let seconds = match native.get("keep_alive") {
        None | Some(Value::Null) => return Ok(KeepAlive::AsSet),
        Some(Value::Number(number)) => number.as_f64(),
        Some(Value::String(text)) => text.trim().parse::<f64>().ok().or_else(|| go_duration_seconds(text.trim())),
        Some(_) => None,
    };
    match seconds {
        Some(seconds) if seconds < 0.0 => Ok(KeepAlive::Forever),
        Some(seconds) if seconds.is_finite() => Ok(KeepAlive::For(Duration::from_secs_f64(seconds.min(1e12)))),
        _ => Err(unconvertible(
            "keep_alive: expected seconds or a duration such as \"5m\" or \"1h\" (negative: keep loaded)",
        )),
    }
}

/// A Go duration (`"-1m"`, `"1h2m3.5s"`, `"300ms"`) in seconds.
fn go_duration_seconds(text: &str) -> Option<f64> {
    let (sign, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit..];
    }
    Some(sign * total)
}

/// A chat with no messages, or a generate with no prompt: Ollama's way to load a model (or, with
/// `keep_alive: 0`, to unload it) without generating anything.
pub fn only_loads(op: OllamaOp, native: &Map<String, Value>) -> bool {
    let empty = |field: &str| match native.get(field) {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(_) => false,
    };
    match op {
        OllamaOp::Chat => empty("messages"),
        OllamaOp::Generate => empty("prompt") && empty("images"),
        OllamaOp::Embed | OllamaOp::Embeddings => false,
    }
}

/// The answer to a load or unload: done, with nothing generated.
pub fn loaded(op: OllamaOp, model: &str, unloaded: bool) -> Bytes {
    let mut answer = json!({"model": model, "created_at": created_at(), "done": true,
        "done_reason": if unloaded { "unload" } else { "load" }});
    if op == OllamaOp::Chat {
        answer["message"] = json!({"role": "assistant", "content": ""});
    } else {
        answer["response"] = json!("");
    }
    Bytes::from(answer.to_string())
}

fn unconvertible(message: impl Into<String>) -> Unconvertible {
    Unconvertible(message.into())
}

/// The request as an OpenAI-format chat or embeddings request.
pub fn to_openai(op: OllamaOp, native: &Map<String, Value>) -> Result<Map<String, Value>, Unconvertible> {
    let model = match native.get("model") {
        Some(Value::String(model)) if !model.is_empty() => model.clone(),
        _ => return Err(unconvertible("model: a model name is required")),
    };
    let mut request = Map::new();
    request.insert("model".into(), Value::String(model));
    match op {
        OllamaOp::Generate if fills_in(op, native) => {
            // A text completion between the prompt and the suffix, as OpenAI's completions take it.
            if !image_parts(native.get("images"))?.is_empty() {
                return Err(unconvertible("images: fill-in-the-middle takes text only"));
            }
            request.insert("prompt".into(), json!(text_of(native, "prompt")?));
            request.insert("suffix".into(), json!(text_of(native, "suffix")?));
            let stream = native.get("stream").and_then(Value::as_bool).unwrap_or(true);
            request.insert("stream".into(), Value::Bool(stream));
            if stream {
                request.insert("stream_options".into(), json!({"include_usage": true}));
            }
            sampling_options(native.get("options"), &mut request)?;
        }
        OllamaOp::Chat | OllamaOp::Generate => {
            let messages = match op {
                OllamaOp::Chat => chat_messages(native)?,
                _ => generate_messages(native)?,
            };
            request.insert("messages".into(), Value::Array(messages));
            // Ollama streams unless told not to.
            let stream = native.get("stream").and_then(Value::as_bool).unwrap_or(true);
            request.insert("stream".into(), Value::Bool(stream));
            if stream {
                // The last line's counters come from the stream's usage.
                request.insert("stream_options".into(), json!({"include_usage": true}));
            }
            if let Some(tools) = native.get("tools").filter(|tools| !tools.is_null()) {
                if !tools.is_array() {
                    return Err(unconvertible("tools: must be an array of function tools"));
                }
                if tools.as_array().is_some_and(|tools| !tools.is_empty()) {
                    request.insert("tools".into(), tools.clone());
                }
            }
            if let Some(format) = response_format(native.get("format"))? {
                request.insert("response_format".into(), format);
            }
            sampling_options(native.get("options"), &mut request)?;
            match native.get("think") {
                Some(Value::String(level)) if ["low", "medium", "high"].contains(&level.as_str()) => {
                    request.insert("reasoning_effort".into(), Value::String(level.clone()));
                }
                None | Some(Value::Null | Value::Bool(_)) => {}
                Some(other) => {
                    return Err(unconvertible(format!(
                        "think: expected true, false, \"low\", \"medium\" or \"high\", not {other}"
                    )))
                }
            }
        }
        OllamaOp::Embed => {
            let input = match native.get("input") {
                Some(Value::String(text)) => Value::String(text.clone()),
                Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
                    Value::Array(items.clone())
                }
                _ => return Err(unconvertible("input: a string or a non-empty array of strings is required")),
            };
            request.insert("input".into(), input);
            if let Some(dimensions) = native.get("dimensions").filter(|d| !d.is_null()) {
                request.insert("dimensions".into(), dimensions.clone());
            }
        }
        OllamaOp::Embeddings => match native.get("prompt") {
            Some(Value::String(prompt)) => {
                request.insert("input".into(), Value::String(prompt.clone()));
            }
            _ => return Err(unconvertible("prompt: a string is required")),
        },
    }
    Ok(request)
}

fn text_of(message: &Map<String, Value>, field: &str) -> Result<String, Unconvertible> {
    match message.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(unconvertible(format!("{field}: expected a string, not {other}"))),
    }
}

/// Base64 images as data URLs, with the type their first bytes show.
fn image_parts(images: Option<&Value>) -> Result<Vec<Value>, Unconvertible> {
    let Some(images) = images.filter(|images| !images.is_null()) else {
        return Ok(Vec::new());
    };
    let images = images.as_array().ok_or_else(|| unconvertible("images: expected an array of base64 strings"))?;
    images
        .iter()
        .map(|image| {
            let data = image.as_str().ok_or_else(|| unconvertible("images: expected base64 strings"))?;
            let media_type = match data.as_bytes() {
                [b'i', b'V', b'B', b'O', ..] => "image/png",
                [b'R', b'0', b'l', b'G', ..] => "image/gif",
                [b'U', b'k', b'l', b'G', ..] => "image/webp",
                _ => "image/jpeg",
            };
            Ok(json!({"type": "image_url", "image_url": {"url": format!("data:{media_type};base64,{data}")}}))
        })
        .collect()
}

fn with_images(text: String, images: Vec<Value>) -> Value {
    if images.is_empty() {
        return Value::String(text);
    }
    let mut parts = Vec::with_capacity(images.len() + 1);
    if !text.is_empty() {
        parts.push(json!({"type": "text", "text": text}));
    }
    parts.extend(images);
    Value::Array(parts)
}

fn chat_messages(native: &Map<String, Value>) -> Result<Vec<Value>, Unconvertible> {
    let messages = match native.get("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        _ => return Err(unconvertible("messages: at least one message is required")),
    };
    // Ollama's tool calls and results carry no ids; OpenAI's pair them by id. Each call gets one,
    // and each result takes the oldest unanswered call of its tool (or of any tool).
    let mut pending: Vec<(String, String)> = Vec::new();
    let mut next_id = 0usize;
    let mut out = Vec::with_capacity(messages.len());
    for message in messages {
        let message = message.as_object().ok_or_else(|| unconvertible("messages: each message must be an object"))?;
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = text_of(message, "content")?;
        match role {
            "system" | "user" => {
                let images = image_parts(message.get("images"))?;
                out.push(json!({"role": role, "content": with_images(content, images)}));
            }
            "assistant" => {
                let mut converted = Map::new();
                converted.insert("role".into(), json!("assistant"));
                converted.insert("content".into(), Value::String(content));
                let calls = match message.get("tool_calls") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(calls)) => calls.clone(),
                    Some(_) => return Err(unconvertible("tool_calls: expected an array")),
                };
                if !calls.is_empty() {
                    let mut converted_calls = Vec::with_capacity(calls.len());
                    for call in &calls {
                        let function = call
                            .get("function")
                            .and_then(Value::as_object)
                            .ok_or_else(|| unconvertible("tool_calls: each call needs a function"))?;
                        let name = function.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                        let arguments = match function.get("arguments") {
                            Some(Value::String(text)) => text.clone(),
                            Some(value) => value.to_string(),
                            None => "{}".into(),
                        };
                        let id = format!("call_{next_id}");
                        next_id += 1;
                        pending.push((id.clone(), name.clone()));
                        converted_calls.push(json!({"id": id, "type": "function",
                            "function": {"name": name, "arguments": arguments}}));
                    }
                    converted.insert("tool_calls".into(), Value::Array(converted_calls));
                }
                out.push(Value::Object(converted));
            }
            "tool" => {
                let name = message.get("tool_name").or_else(|| message.get("name")).and_then(Value::as_str);
                let position = name
                    .and_then(|name| pending.iter().position(|(_, pending_name)| pending_name == name))
                    .or((!pending.is_empty()).then_some(0));
                let id = match position {
                    Some(position) => pending.remove(position).0,
                    None => {
                        next_id += 1;
                        format!("call_{}", next_id - 1)
                    }
                };
                out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
            other => {
                return Err(unconvertible(format!(
                    "messages: role must be system, user, assistant or tool, not '{other}'"
                )))
            }
        }
    }
    Ok(out)
}

/// Whether a generate call fills in the middle: it has a `suffix` (the code after the cursor).
pub fn fills_in(op: OllamaOp, native: &Map<String, Value>) -> bool {
    op == OllamaOp::Generate && native.get("suffix").and_then(Value::as_str).is_some_and(|suffix| !suffix.is_empty())
}

fn generate_messages(native: &Map<String, Value>) -> Result<Vec<Value>, Unconvertible> {
    let prompt = text_of(native, "prompt")?;
    let images = image_parts(native.get("images"))?;
    if prompt.is_empty() && images.is_empty() {
        return Err(unconvertible("prompt: a prompt is required"));
    }
    let mut messages = Vec::with_capacity(2);
    let system = text_of(native, "system")?;
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.push(json!({"role": "user", "content": with_images(prompt, images)}));
    Ok(messages)
}

fn response_format(format: Option<&Value>) -> Result<Option<Value>, Unconvertible> {
    match format {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(kind)) if kind.is_empty() => Ok(None),
        Some(Value::String(kind)) if kind == "json" => Ok(Some(json!({"type": "json_object"}))),
        Some(Value::Object(schema)) => Ok(Some(json!({"type": "json_schema",
            "json_schema": {"name": "response", "schema": schema, "strict": true}}))),
        Some(other) => Err(unconvertible(format!("format: expected \"json\" or a JSON schema, not {other}"))),
    }
}

/// The options every kind of channel understands. Runtime settings of Ollama's own (`num_ctx`,
/// `num_gpu`, `top_k`, `repeat_penalty` …) have no OpenAI counterpart and are left out: an OpenAI
/// upstream refuses parameters it does not know.
fn sampling_options(options: Option<&Value>, request: &mut Map<String, Value>) -> Result<(), Unconvertible> {
    let Some(options) = options.filter(|options| !options.is_null()) else {
        return Ok(());
    };
    let options = options.as_object().ok_or_else(|| unconvertible("options: expected an object"))?;
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("seed", "seed"),
        ("frequency_penalty", "frequency_penalty"),
        ("presence_penalty", "presence_penalty"),
        ("stop", "stop"),
    ] {
        if let Some(value) = options.get(from).filter(|value| !value.is_null()) {
            request.insert(to.into(), value.clone());
        }
    }
    // -1 (and -2, "until the context fills") mean no limit.
    if let Some(limit) = options.get("num_predict").and_then(Value::as_i64).filter(|limit| *limit > 0) {
        request.insert("max_tokens".into(), json!(limit));
    }
    Ok(())
}

/// `2025-10-17T23:14:07.414Z`: Ollama's `created_at`.
fn created_at() -> String {
    burncloud_service_api::rfc3339_from_unix_ms(burncloud_database::now_ms())
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn done_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "length",
        _ => "stop",
    }
}

/// OpenAI tool calls as Ollama's: arguments as a JSON object rather than a string.
fn ollama_tool_calls(calls: &[Value]) -> Vec<Value> {
    calls
        .iter()
        .filter_map(|call| {
            let function = call.get("function")?;
            let arguments = function.get("arguments").and_then(Value::as_str).unwrap_or("{}");
            let arguments = serde_json::from_str::<Value>(arguments).unwrap_or_else(|_| json!({}));
            Some(json!({"function": {"name": function.get("name").cloned().unwrap_or(Value::Null), "arguments": arguments}}))
        })
        .collect()
}

fn counters(usage: Option<&Value>, total: Duration) -> Map<String, Value> {
    let mut counters = Map::new();
    counters.insert("total_duration".into(), json!(nanos(total)));
    let count = |field: &str| usage.and_then(|usage| usage.get(field)).and_then(Value::as_u64);
    if let Some(prompt) = count("prompt_tokens") {
        counters.insert("prompt_eval_count".into(), json!(prompt));
    }
    if let Some(completion) = count("completion_tokens") {
        counters.insert("eval_count".into(), json!(completion));
    }
    counters
}

/// A whole OpenAI-format answer as Ollama's, `started` being when the call came in.
pub fn from_openai(op: OllamaOp, body: &[u8], model: &str, started: Instant) -> Result<Bytes, Unconvertible> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| unconvertible(format!("the answer is not JSON: {e}")))?;
    let total = started.elapsed();
    let usage = answer.get("usage");
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    match op {
        OllamaOp::Chat | OllamaOp::Generate => {
            out.insert("created_at".into(), json!(created_at()));
            let choice = answer.pointer("/choices/0").ok_or_else(|| unconvertible("the answer has no choices"))?;
            // A chat answer's message, or a text completion's text (fill-in-the-middle).
            let message = match (choice.get("message"), choice.get("text")) {
                (Some(message), _) => message.clone(),
                (None, Some(text)) => json!({"content": text}),
                (None, None) => json!({}),
            };
            let content = message.get("content").and_then(Value::as_str).unwrap_or_default();
            let thinking = message.get("reasoning_content").and_then(Value::as_str).filter(|t| !t.is_empty());
            if op == OllamaOp::Chat {
                let mut reply = json!({"role": "assistant", "content": content});
                if let Some(thinking) = thinking {
                    reply["thinking"] = json!(thinking);
                }
                if let Some(calls) = message.get("tool_calls").and_then(Value::as_array).filter(|c| !c.is_empty()) {
                    reply["tool_calls"] = Value::Array(ollama_tool_calls(calls));
                }
                out.insert("message".into(), reply);
            } else {
                out.insert("response".into(), json!(content));
                if let Some(thinking) = thinking {
                    out.insert("thinking".into(), json!(thinking));
                }
            }
            out.insert("done".into(), json!(true));
            out.insert("done_reason".into(), json!(done_reason(choice.get("finish_reason").and_then(Value::as_str))));
            out.extend(counters(usage, total));
        }
        OllamaOp::Embed | OllamaOp::Embeddings => {
            let vectors: Vec<Value> = answer
                .get("data")
                .and_then(Value::as_array)
                .map(|items| items.iter().filter_map(|item| item.get("embedding").cloned()).collect())
                .unwrap_or_default();
            if vectors.is_empty() {
                return Err(unconvertible("the answer has no embeddings"));
            }
            if op == OllamaOp::Embeddings {
                let mut vectors = vectors;
                return Ok(Bytes::from(json!({"embedding": vectors.swap_remove(0)}).to_string()));
            }
            out.insert("embeddings".into(), Value::Array(vectors));
            out.insert("total_duration".into(), json!(nanos(total)));
            if let Some(prompt) = usage.and_then(|u| u.get("prompt_tokens")).and_then(Value::as_u64) {
                out.insert("prompt_eval_count".into(), json!(prompt));
            }
        }
    }
    Ok(Bytes::from(Value::Object(out).to_string()))
}

/// An error as Ollama shapes it: `{"error": "…"}`.
pub fn error_body(message: &str) -> Bytes {
    Bytes::from(json!({"error": message}).to_string())
}

/// Writes OpenAI-format stream chunks as Ollama's NDJSON lines: one line per piece of text, tool
/// calls once complete, and a last line with `done: true` and the counters.
pub struct OllamaStreamWriter {
    op: OllamaOp,
    model: String,
    started: Instant,
    first_token: Option<Instant>,
    /// The usage, finish reason and tool calls the chunks carried.
    reader: ChunkReader,
}

impl OllamaStreamWriter {
    pub fn new(op: OllamaOp, model: &str, started: Instant) -> Self {
        OllamaStreamWriter { op, model: model.to_string(), started, first_token: None, reader: ChunkReader::default() }
    }

    fn line(&self, fields: Map<String, Value>) -> Bytes {
        let mut line = Map::new();
        line.insert("model".into(), json!(self.model));
        line.insert("created_at".into(), json!(created_at()));
        line.extend(fields);
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        Bytes::from(text)
    }

    fn piece(&self, content: &str, thinking: &str) -> Map<String, Value> {
        let mut fields = Map::new();
        if self.op == OllamaOp::Chat {
            let mut message = json!({"role": "assistant", "content": content});
            if !thinking.is_empty() {
                message["thinking"] = json!(thinking);
            }
            fields.insert("message".into(), message);
        } else {
            fields.insert("response".into(), json!(content));
            if !thinking.is_empty() {
                fields.insert("thinking".into(), json!(thinking));
            }
        }
        fields.insert("done".into(), json!(false));
        fields
    }

    /// One OpenAI-format chunk's data; the lines it makes.
    pub fn on_chunk(&mut self, data: &[u8]) -> Vec<Bytes> {
        let Some(delta) = self.reader.read(data) else {
            return Vec::new();
        };
        let content = delta.get("content").and_then(Value::as_str).unwrap_or_default();
        let thinking = delta.get("reasoning_content").and_then(Value::as_str).unwrap_or_default();
        if content.is_empty() && thinking.is_empty() {
            return Vec::new();
        }
        self.first_token.get_or_insert_with(Instant::now);
        vec![self.line(self.piece(content, thinking))]
    }

    /// The lines that end the stream: the tool calls, if any, then `done: true` with the counters.
    pub fn end(&mut self) -> Vec<Bytes> {
        let mut lines = Vec::new();
        if self.op == OllamaOp::Chat && !self.reader.tool_calls.is_empty() {
            let calls: Vec<Value> = self
                .reader
                .tool_calls
                .drain(..)
                .map(|(name, arguments)| json!({"function": {"name": name, "arguments": arguments}}))
                .collect();
            let mut fields = self.piece("", "");
            fields["message"]["tool_calls"] = Value::Array(ollama_tool_calls(&calls));
            lines.push(self.line(fields));
        }
        let mut fields = self.piece("", "");
        fields.insert("done".into(), json!(true));
        fields.insert("done_reason".into(), json!(done_reason(self.reader.finish_reason.as_deref())));
        let now = Instant::now();
        fields.extend(counters(self.reader.usage.as_ref(), now - self.started));
        if let Some(first) = self.first_token {
            fields.insert("prompt_eval_duration".into(), json!(nanos(first - self.started)));
            fields.insert("eval_duration".into(), json!(nanos(now - first)));
        }
        lines.push(self.line(fields));
        lines
    }

    /// The line that tells the caller the stream broke.
    pub fn fail(&self, message: &str) -> Bytes {
        let mut text = json!({"error": message}).to_string();
        text.push('\n');
        Bytes::from(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_chat_with_images_tools_and_results_becomes_openai_chat() {
        let native = object(json!({
            "model": "qwen3", "stream": false, "format": "json", "think": "high",
            "options": {"temperature": 0.2, "num_predict": 64, "num_ctx": 8192, "top_k": 40, "stop": ["\n\n"]},
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is this?", "images": ["iVBORw0KGgoAAAA"]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"function": {"name": "weather", "arguments": {"city": "Paris"}}}]},
                {"role": "tool", "tool_name": "weather", "content": "sunny"}
            ]
        }));
        let request = to_openai(OllamaOp::Chat, &native).unwrap();
        assert_eq!(request["stream"], json!(false));
        assert_eq!(request["max_tokens"], json!(64));
        assert_eq!(request["temperature"], json!(0.2));
        assert_eq!(request["stop"], json!(["\n\n"]));
        assert!(!request.contains_key("num_ctx") && !request.contains_key("top_k"));
        assert_eq!(request["response_format"], json!({"type": "json_object"}));
        assert_eq!(request["reasoning_effort"], json!("high"));
        let messages = request["messages"].as_array().unwrap();
        assert_eq!(messages[1]["content"][1]["image_url"]["url"], json!("data:image/png;base64,iVBORw0KGgoAAAA"));
        assert_eq!(messages[2]["tool_calls"][0]["function"]["arguments"], json!("{\"city\":\"Paris\"}"));
        assert_eq!(messages[3]["tool_call_id"], messages[2]["tool_calls"][0]["id"]);
    }

    #[test]
    fn ollama_streams_unless_told_not_to_and_refuses_what_it_cannot_send() {
        let request =
            to_openai(OllamaOp::Generate, &object(json!({"model": "m", "prompt": "hi", "system": "s"}))).unwrap();
        assert_eq!(request["stream"], json!(true));
        assert_eq!(request["messages"], json!([{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]));
        for bad in [
            json!({"prompt": "hi"}),
            json!({"model": "m", "messages": []}),
            json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "format": 3}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "think": 2}),
        ] {
            assert!(to_openai(OllamaOp::Chat, &object(bad.clone())).is_err(), "{bad}");
        }
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let request = to_openai(
            OllamaOp::Chat,
            &object(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "format": schema})),
        )
        .unwrap();
        assert_eq!(request["response_format"]["json_schema"]["schema"], schema);
        let filled = to_openai(
            OllamaOp::Generate,
            &object(json!({"model": "m", "prompt": "a", "suffix": "b",
            "stream": false, "options": {"num_predict": 8}})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(filled),
            json!({"model": "m", "prompt": "a", "suffix": "b", "stream": false, "max_tokens": 8})
        );
        let embed = to_openai(OllamaOp::Embed, &object(json!({"model": "e", "input": ["a", "b"]}))).unwrap();
        assert_eq!(embed["input"], json!(["a", "b"]));
        let legacy = to_openai(OllamaOp::Embeddings, &object(json!({"model": "e", "prompt": "a"}))).unwrap();
        assert_eq!(legacy["input"], json!("a"));
    }

    #[test]
    fn keep_alive_reads_numbers_and_go_durations() {
        let read = |value: Value| keep_alive(&object(json!({"keep_alive": value})));
        let for_secs = |seconds: f64| Ok(KeepAlive::For(Duration::from_secs_f64(seconds)));
        assert_eq!(keep_alive(&Map::new()), Ok(KeepAlive::AsSet));
        assert_eq!(read(json!(0)), for_secs(0.0));
        assert_eq!(read(json!(30)), for_secs(30.0));
        assert_eq!(read(json!("600")), for_secs(600.0));
        assert_eq!(read(json!("5m")), for_secs(300.0));
        assert_eq!(read(json!("1h30m")), for_secs(5400.0));
        assert_eq!(read(json!("1.5s")), for_secs(1.5));
        assert_eq!(read(json!("300ms")), for_secs(0.3));
        assert_eq!(read(json!(-1)), Ok(KeepAlive::Forever));
        assert_eq!(read(json!("-1m")), Ok(KeepAlive::Forever));
        for bad in [json!("soon"), json!("5 minutes"), json!("m"), json!(true), json!([1]), json!("")] {
            assert!(read(bad.clone()).is_err(), "{bad}");
        }
        assert!(only_loads(OllamaOp::Generate, &object(json!({"model": "m", "keep_alive": 0}))));
        assert!(only_loads(OllamaOp::Chat, &object(json!({"model": "m", "messages": []}))));
        assert!(!only_loads(OllamaOp::Generate, &object(json!({"model": "m", "prompt": "hi"}))));
    }

    #[test]
    fn answers_and_streams_come_back_in_ollamas_shape() {
        let started = Instant::now();
        let answer = json!({"choices": [{"message": {"role": "assistant", "content": "Hi", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 7, "completion_tokens": 2}});
        let chat: Value =
            serde_json::from_slice(&from_openai(OllamaOp::Chat, answer.to_string().as_bytes(), "m", started).unwrap())
                .unwrap();
        assert_eq!(chat["message"]["tool_calls"][0]["function"]["arguments"], json!({"city": "Paris"}));
        assert_eq!((chat["done"].clone(), chat["done_reason"].clone()), (json!(true), json!("stop")));
        assert_eq!((chat["prompt_eval_count"].clone(), chat["eval_count"].clone()), (json!(7), json!(2)));
        assert!(chat["created_at"].as_str().unwrap().ends_with('Z'));

        let mut writer = OllamaStreamWriter::new(OllamaOp::Generate, "m", started);
        let mut lines: Vec<Bytes> = [
            json!({"choices": [{"delta": {"content": "Hel"}}]}),
            json!({"choices": [{"delta": {"content": "lo"}, "finish_reason": "length"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}),
        ]
        .iter()
        .flat_map(|chunk| writer.on_chunk(chunk.to_string().as_bytes()))
        .collect();
        lines.extend(writer.end());
        let parsed: Vec<Value> =
            lines.iter().map(|line| serde_json::from_slice(line.strip_suffix(b"\n").unwrap()).unwrap()).collect();
        assert_eq!(parsed.iter().map(|line| line["response"].as_str().unwrap()).collect::<String>(), "Hello");
        let last = parsed.last().unwrap();
        assert_eq!(
            (last["done"].clone(), last["done_reason"].clone(), last["eval_count"].clone()),
            (json!(true), json!("length"), json!(2))
        );
        assert!(last["eval_duration"].as_u64().is_some());
    }
}
