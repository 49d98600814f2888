//! OpenAI chat completions and embeddings ⇄ Google Gemini's `generateContent`,
//! `streamGenerateContent` (SSE) and `batchEmbedContents`.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::{image_source, now_seconds, push_turn, text_of, ChunkStream, ImageSource, Unconvertible};
use crate::usage::Usage;

/// Gemini's path for a model and method, under the channel's base URL.
pub fn path(model: &str, method: &str) -> String {
    let model = model.strip_prefix("models/").unwrap_or(model);
    match method {
        "streamGenerateContent" => format!("v1beta/models/{model}:streamGenerateContent?alt=sse"),
        _ => format!("v1beta/models/{model}:{method}"),
    }
}

fn parts_of(content: &Value) -> Result<Vec<Value>, Unconvertible> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) if text.is_empty() => Ok(Vec::new()),
        Value::String(text) => Ok(vec![json!({"text": text})]),
        Value::Array(items) => items
            .iter()
            .map(|part| match part.get("type").and_then(Value::as_str) {
                Some("text") => Ok(json!({"text": part.get("text").cloned().unwrap_or(json!(""))})),
                Some("image_url") => match image_source(part)? {
                    ImageSource::Inline { media_type, data } => {
                        Ok(json!({"inline_data": {"mime_type": media_type, "data": data}}))
                    }
                    ImageSource::Url(_) => Err(Unconvertible("Gemini takes images as data: URLs only".into())),
                },
                other => Err(Unconvertible(format!("content parts of type {other:?} cannot go to Gemini"))),
            })
            .collect(),
        _ => Err(Unconvertible("message content must be a string or a list of parts".into())),
    }
}

/// An OpenAI chat request as a Gemini `generateContent` request.
pub fn request(openai: &Map<String, Value>) -> Result<Value, Unconvertible> {
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // Gemini answers a function by name; OpenAI tool messages carry only the call's id.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for message in openai.get("messages").and_then(Value::as_array).into_iter().flatten() {
        let content = message.get("content").unwrap_or(&Value::Null);
        match message.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => {
                let text = text_of(content);
                if !text.is_empty() {
                    system.push(json!({"text": text}));
                }
            }
            Some("user") => push_turn(&mut contents, "user", "parts", parts_of(content)?),
            Some("assistant") => {
                let mut parts = parts_of(content)?;
                for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                    let function = call.get("function").unwrap_or(&Value::Null);
                    let name = function.get("name").and_then(Value::as_str).unwrap_or("").to_string();
                    let arguments = function.get("arguments").and_then(Value::as_str).unwrap_or("{}");
                    let args: Value = serde_json::from_str(if arguments.trim().is_empty() { "{}" } else { arguments })
                        .map_err(|e| Unconvertible(format!("tool call arguments are not JSON: {e}")))?;
                    if let Some(id) = call.get("id").and_then(Value::as_str) {
                        call_names.insert(id.to_string(), name.clone());
                    }
                    parts.push(json!({"functionCall": {"name": name, "args": args}}));
                }
                push_turn(&mut contents, "model", "parts", parts);
            }
            Some("tool") => {
                let id = message.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                let name = call_names.get(id).cloned().unwrap_or_else(|| id.to_string());
                let text = text_of(content);
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(object)) => Value::Object(object),
                    _ => json!({"content": text}),
                };
                push_turn(
                    &mut contents,
                    "user",
                    "parts",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                );
            }
            other => return Err(Unconvertible(format!("messages with role {other:?} cannot go to Gemini"))),
        }
    }
    let mut out = json!({"contents": contents});
    if !system.is_empty() {
        out["systemInstruction"] = json!({"parts": system});
    }
    let mut generation = Map::new();
    for (from, to) in [("temperature", "temperature"), ("top_p", "topP")] {
        if let Some(value) = openai.get(from).filter(|v| !v.is_null()) {
            generation.insert(to.into(), value.clone());
        }
    }
    if let Some(max) =
        ["max_completion_tokens", "max_tokens"].iter().find_map(|k| openai.get(*k).and_then(Value::as_u64))
    {
        generation.insert("maxOutputTokens".into(), json!(max));
    }
    match openai.get("stop") {
        Some(Value::String(stop)) => {
            generation.insert("stopSequences".into(), json!([stop]));
        }
        Some(Value::Array(stops)) if !stops.is_empty() => {
            generation.insert("stopSequences".into(), Value::Array(stops.clone()));
        }
        _ => {}
    }
    // Structured output: Gemini takes the JSON schema itself.
    match openai.get("response_format").and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("json_object") => {
            generation.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") => {
            generation.insert("responseMimeType".into(), json!("application/json"));
            let schema = openai.get("response_format").and_then(|f| f.pointer("/json_schema/schema"));
            if let Some(schema) = schema.filter(|s| s.is_object()) {
                generation.insert("responseJsonSchema".into(), schema.clone());
            }
        }
        _ => {}
    }
    if !generation.is_empty() {
        out["generationConfig"] = Value::Object(generation);
    }
    if let Some(tools) = openai.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty()) {
        let declarations: Vec<Value> = tools
            .iter()
            .filter_map(|tool| tool.get("function"))
            .map(|f| {
                let mut declaration = json!({"name": f.get("name").cloned().unwrap_or(json!(""))});
                for key in ["description", "parameters"] {
                    if let Some(value) = f.get(key) {
                        declaration[key] = value.clone();
                    }
                }
                declaration
            })
            .collect();
        out["tools"] = json!([{"functionDeclarations": declarations}]);
    }
    let mode = match openai.get("tool_choice") {
        Some(Value::String(choice)) if choice == "none" => Some(json!({"mode": "NONE"})),
        Some(Value::String(choice)) if choice == "required" => Some(json!({"mode": "ANY"})),
        Some(Value::String(choice)) if choice == "auto" => Some(json!({"mode": "AUTO"})),
        Some(Value::Object(choice)) => choice
            .get("function")
            .and_then(|f| f.get("name"))
            .map(|name| json!({"mode": "ANY", "allowedFunctionNames": [name]})),
        _ => None,
    };
    if let Some(mode) = mode {
        out["toolConfig"] = json!({"functionCallingConfig": mode});
    }
    Ok(out)
}

/// Gemini's `finishReason` as OpenAI's `finish_reason`.
pub fn finish_reason(reason: Option<&str>, called_tools: bool) -> Value {
    match reason {
        None => Value::Null,
        Some("MAX_TOKENS") => json!("length"),
        Some("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII") => json!("content_filter"),
        Some(_) if called_tools => json!("tool_calls"),
        Some(_) => json!("stop"),
    }
}

fn usage_of(metadata: &Value) -> Usage {
    let count = |key: &str| metadata.get(key).and_then(Value::as_u64).unwrap_or(0);
    // Gemini's prompt count includes the cached part; thoughts are billed as output but counted apart.
    let prompt = count("promptTokenCount");
    let thoughts = count("thoughtsTokenCount");
    Usage {
        prompt_tokens: prompt,
        completion_tokens: count("candidatesTokenCount") + thoughts,
        cached_tokens: count("cachedContentTokenCount").min(prompt),
        reasoning_tokens: thoughts,
        ..Usage::default()
    }
}

/// The parts of a response's first candidate, split into text, thoughts and function calls.
struct Parts {
    text: String,
    reasoning: String,
    calls: Vec<(String, String)>,
}

fn read_parts(response: &Value) -> Parts {
    let mut parts = Parts { text: String::new(), reasoning: String::new(), calls: Vec::new() };
    let candidate_parts = response.pointer("/candidates/0/content/parts").and_then(Value::as_array);
    for part in candidate_parts.into_iter().flatten() {
        if let Some(call) = part.get("functionCall") {
            let name = call.get("name").and_then(Value::as_str).unwrap_or("").to_string();
            parts.calls.push((name, call.get("args").map(Value::to_string).unwrap_or_else(|| "{}".into())));
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            if part.get("thought") == Some(&Value::Bool(true)) {
                parts.reasoning.push_str(text);
            } else {
                parts.text.push_str(text);
            }
        }
    }
    parts
}

/// A Gemini answer as an OpenAI chat completion, with its usage.
pub fn response(body: &[u8], model: &str) -> Result<(Bytes, Usage), Unconvertible> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| Unconvertible(format!("Gemini's answer is not JSON: {e}")))?;
    let parts = read_parts(&answer);
    let usage = usage_of(answer.get("usageMetadata").unwrap_or(&Value::Null));
    let mut message = json!({"role": "assistant", "content": if parts.text.is_empty() && !parts.calls.is_empty() { Value::Null } else { json!(parts.text) }});
    if !parts.calls.is_empty() {
        let calls: Vec<Value> = parts
            .calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| json!({"id": format!("call_{i}"), "type": "function", "function": {"name": name, "arguments": args}}))
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    if !parts.reasoning.is_empty() {
        message["reasoning_content"] = json!(parts.reasoning);
    }
    let reason = answer.pointer("/candidates/0/finishReason").and_then(Value::as_str);
    let completion = json!({
        "id": format!("chatcmpl-{}", answer.get("responseId").and_then(Value::as_str).unwrap_or("gemini")),
        "object": "chat.completion",
        "created": now_seconds(),
        "model": answer.get("modelVersion").and_then(Value::as_str).unwrap_or(model),
        "choices": [{"index": 0, "message": message, "logprobs": null,
                     "finish_reason": finish_reason(reason.or(Some("STOP")), !parts.calls.is_empty())}],
        "usage": usage.openai_json(),
    });
    Ok((Bytes::from(completion.to_string()), usage))
}

/// An OpenAI embeddings request as a Gemini `batchEmbedContents` request.
pub fn embeddings_request(openai: &Map<String, Value>, model: &str) -> Result<Value, Unconvertible> {
    let inputs: Vec<String> = match openai.get("input") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).map(String::from).collect()
        }
        _ => return Err(Unconvertible("Gemini embeds text: input must be a string or a list of strings".into())),
    };
    let model = format!("models/{}", model.strip_prefix("models/").unwrap_or(model));
    let requests: Vec<Value> =
        inputs.iter().map(|text| json!({"model": model, "content": {"parts": [{"text": text}]}})).collect();
    Ok(json!({"requests": requests}))
}

/// A Gemini `batchEmbedContents` answer as an OpenAI embeddings list.
pub fn embeddings_response(body: &[u8], model: &str) -> Result<Bytes, Unconvertible> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| Unconvertible(format!("Gemini's answer is not JSON: {e}")))?;
    let data: Vec<Value> = answer
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or_else(|| Unconvertible("Gemini's answer has no embeddings".into()))?
        .iter()
        .enumerate()
        .map(|(index, e)| json!({"object": "embedding", "index": index, "embedding": e.get("values").cloned().unwrap_or(json!([]))}))
        .collect();
    Ok(Bytes::from(json!({"object": "list", "data": data, "model": model}).to_string()))
}

/// Gemini's error body (`{"error":{"code","message","status"}}`) in OpenAI's shape.
pub fn error_body(body: &[u8]) -> Bytes {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let status = error.and_then(|e| e.get("status")).and_then(Value::as_str).unwrap_or("UNKNOWN");
    let error_type = match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "NOT_FOUND" => "invalid_request_error",
        "PERMISSION_DENIED" | "UNAUTHENTICATED" => "authentication_error",
        "RESOURCE_EXHAUSTED" => "rate_limit_error",
        _ => "server_error",
    };
    Bytes::from(json!({"error": {"message": message, "type": error_type, "param": null, "code": status}}).to_string())
}

/// Translates Gemini's SSE stream (whole `GenerateContentResponse`s with partial parts) into
/// OpenAI chat completion chunks.
#[derive(Debug, Default)]
pub struct StreamTranslator {
    stream: ChunkStream,
    started: bool,
    usage: Option<Usage>,
    tool_calls: usize,
    finished: bool,
    pub error: Option<String>,
}

impl StreamTranslator {
    pub fn new(model: &str) -> StreamTranslator {
        StreamTranslator { stream: ChunkStream::new("chatcmpl-gemini", model), ..StreamTranslator::default() }
    }

    fn chunk(&self, delta: Value, finish_reason: Value) -> Bytes {
        self.stream.chunk(delta, finish_reason)
    }

    pub fn on_event(&mut self, data: &[u8]) -> Vec<Bytes> {
        let Ok(event) = serde_json::from_slice::<Value>(data) else { return Vec::new() };
        if let Some(error) = event.get("error") {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("upstream error").to_string();
            self.error = Some(message.clone());
            let body = json!({"error": {"message": message, "type": "server_error", "param": null, "code": error.get("status")}});
            return vec![Bytes::from(format!("data: {body}\n\n"))];
        }
        let mut out = Vec::new();
        if let Some(id) = event.get("responseId").and_then(Value::as_str) {
            self.stream.id = format!("chatcmpl-{id}");
        }
        if !self.started {
            self.started = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), Value::Null));
        }
        let parts = read_parts(&event);
        if !parts.reasoning.is_empty() {
            out.push(self.chunk(json!({"reasoning_content": parts.reasoning}), Value::Null));
        }
        if !parts.text.is_empty() {
            out.push(self.chunk(json!({"content": parts.text}), Value::Null));
        }
        for (name, args) in parts.calls {
            let call = json!({"index": self.tool_calls, "id": format!("call_{}", self.tool_calls), "type": "function",
                "function": {"name": name, "arguments": args}});
            self.tool_calls += 1;
            out.push(self.chunk(json!({"tool_calls": [call]}), Value::Null));
        }
        if let Some(metadata) = event.get("usageMetadata") {
            self.usage = Some(usage_of(metadata));
        }
        if let Some(reason) = event.pointer("/candidates/0/finishReason").and_then(Value::as_str) {
            self.finished = true;
            out.push(self.chunk(json!({}), finish_reason(Some(reason), self.tool_calls > 0)));
        }
        out
    }

    pub fn finish(&self, include_usage: bool) -> Vec<Bytes> {
        self.stream.closing(self.usage.filter(|_| include_usage).map(|usage| usage.openai_json()))
    }

    pub fn finished(&self) -> bool {
        self.finished
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_system_tools_images_and_tool_results() {
        let openai: Map<String, Value> = serde_json::from_value(json!({"model": "gemini-2.0-flash", "max_tokens": 50, "stop": ["X"],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}}]},
                {"role": "assistant", "tool_calls": [{"id": "call_7", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                {"role": "tool", "tool_call_id": "call_7", "content": "{\"temp\": -3}"},
            ]})).unwrap();
        let gemini = request(&openai).unwrap();
        assert_eq!(gemini["systemInstruction"], json!({"parts": [{"text": "Be brief."}]}));
        assert_eq!(
            gemini["contents"][0]["parts"][1],
            json!({"inline_data": {"mime_type": "image/jpeg", "data": "/9j/"}})
        );
        assert_eq!(
            gemini["contents"][1],
            json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]})
        );
        assert_eq!(
            gemini["contents"][2]["parts"][0],
            json!({"functionResponse": {"name": "get_weather", "response": {"temp": -3}}})
        );
        assert_eq!(gemini["generationConfig"], json!({"maxOutputTokens": 50, "stopSequences": ["X"]}));
        let structured: Map<String, Value> =
            serde_json::from_value(json!({"messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "c", "schema": {"type": "object"}}}}))
            .unwrap();
        let structured = request(&structured).unwrap();
        assert_eq!(
            structured["generationConfig"],
            json!({"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}})
        );
        assert_eq!(
            gemini["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
        );
        assert_eq!(gemini["tools"][0]["functionDeclarations"][0]["name"], "get_weather");
    }

    #[test]
    fn finish_reasons_map() {
        assert_eq!(finish_reason(Some("STOP"), false), json!("stop"));
        assert_eq!(finish_reason(Some("STOP"), true), json!("tool_calls"));
        assert_eq!(finish_reason(Some("MAX_TOKENS"), false), json!("length"));
        assert_eq!(finish_reason(Some("SAFETY"), false), json!("content_filter"));
        assert_eq!(finish_reason(Some("RECITATION"), false), json!("content_filter"));
    }

    #[test]
    fn converters_never_panic_on_odd_input() {
        for body in [
            "",
            "null",
            "[]",
            "{\"candidates\": 5}",
            "{\"candidates\": [{\"content\": {\"parts\": [1, {\"functionCall\": 2}]}}]}",
            "{\"error\": 1}",
        ] {
            let _ = response(body.as_bytes(), "m");
            let _ = embeddings_response(body.as_bytes(), "m");
            let _ = error_body(body.as_bytes());
            let _ = StreamTranslator::new("m").on_event(body.as_bytes());
        }
    }
}
