//! Gemini's own API in front of every channel: `generateContent`, `streamGenerateContent` (SSE
//! with `alt=sse`, else a streamed JSON array), `countTokens`, `embedContent` and
//! `batchEmbedContents` read as the router's OpenAI-format calls, and their answers, streams and
//! errors written back as Gemini writes them. Field names are read in either of the two spellings
//! the API accepts (`systemInstruction` and `system_instruction`).

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::anthropic::Unconvertible;
use super::ChunkReader;

/// The Gemini method a call came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeminiOp {
    Generate,
    /// `streamGenerateContent`; `sse`: with `alt=sse` (server-sent events), else a JSON array
    /// written as it grows.
    StreamGenerate {
        sse: bool,
    },
    CountTokens,
    EmbedContent,
    BatchEmbedContents,
}

impl GeminiOp {
    /// The method after the model in `models/{model}:{method}`.
    pub fn parse(method: &str, sse: bool) -> Option<GeminiOp> {
        Some(match method {
            "generateContent" => GeminiOp::Generate,
            "streamGenerateContent" => GeminiOp::StreamGenerate { sse },
            "countTokens" => GeminiOp::CountTokens,
            "embedContent" => GeminiOp::EmbedContent,
            "batchEmbedContents" => GeminiOp::BatchEmbedContents,
            _ => return None,
        })
    }

    pub fn route(self) -> &'static str {
        match self {
            GeminiOp::Generate => "/v1beta/models:generateContent",
            GeminiOp::StreamGenerate { .. } => "/v1beta/models:streamGenerateContent",
            GeminiOp::CountTokens => "/v1beta/models:countTokens",
            GeminiOp::EmbedContent => "/v1beta/models:embedContent",
            GeminiOp::BatchEmbedContents => "/v1beta/models:batchEmbedContents",
        }
    }

    pub fn is_embedding(self) -> bool {
        matches!(self, GeminiOp::EmbedContent | GeminiOp::BatchEmbedContents)
    }
}

fn unconvertible(message: impl Into<String>) -> Unconvertible {
    Unconvertible(message.into())
}

/// A field under either of its spellings.
fn field<'a>(object: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    object.get(camel).or_else(|| object.get(snake)).filter(|value| !value.is_null())
}

fn object_field<'a>(value: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    value.as_object().and_then(|object| field(object, camel, snake))
}

/// The request as an OpenAI-format chat or embeddings request for `model`.
pub fn to_openai(op: GeminiOp, model: &str, native: &Map<String, Value>) -> Result<Map<String, Value>, Unconvertible> {
    let mut request = Map::new();
    request.insert("model".into(), json!(model));
    match op {
        GeminiOp::Generate | GeminiOp::StreamGenerate { .. } | GeminiOp::CountTokens => {
            // countTokens may wrap a whole generateContent request.
            let native = match field(native, "generateContentRequest", "generate_content_request") {
                Some(Value::Object(inner)) => inner,
                _ => native,
            };
            request.insert("messages".into(), Value::Array(messages(native)?));
            if let Some(tools) = tools(native)? {
                request.insert("tools".into(), tools);
            }
            if let Some(choice) = tool_choice(native) {
                request.insert("tool_choice".into(), choice);
            }
            generation_config(native, &mut request)?;
            let stream = matches!(op, GeminiOp::StreamGenerate { .. });
            request.insert("stream".into(), json!(stream));
            if stream {
                request.insert("stream_options".into(), json!({"include_usage": true}));
            }
        }
        GeminiOp::EmbedContent => {
            let content = field(native, "content", "content").ok_or_else(|| unconvertible("content is required"))?;
            request.insert("input".into(), json!(embedded_text(content)?));
            if let Some(dimensions) = field(native, "outputDimensionality", "output_dimensionality") {
                request.insert("dimensions".into(), dimensions.clone());
            }
        }
        GeminiOp::BatchEmbedContents => {
            let requests = field(native, "requests", "requests")
                .and_then(Value::as_array)
                .filter(|requests| !requests.is_empty())
                .ok_or_else(|| unconvertible("requests: a non-empty list is required"))?;
            let mut inputs = Vec::with_capacity(requests.len());
            for item in requests {
                let content = object_field(item, "content", "content")
                    .ok_or_else(|| unconvertible("requests[].content is required"))?;
                inputs.push(json!(embedded_text(content)?));
            }
            request.insert("input".into(), Value::Array(inputs));
            if let Some(dimensions) =
                requests.first().and_then(|item| object_field(item, "outputDimensionality", "output_dimensionality"))
            {
                request.insert("dimensions".into(), dimensions.clone());
            }
        }
    }
    Ok(request)
}

fn embedded_text(content: &Value) -> Result<String, Unconvertible> {
    let parts = object_field(content, "parts", "parts").and_then(Value::as_array);
    let texts: Vec<&str> = parts.into_iter().flatten().filter_map(|part| part.get("text")?.as_str()).collect();
    if texts.is_empty() {
        return Err(unconvertible("content: text parts are required to embed"));
    }
    Ok(texts.join("\n"))
}

fn text_of_parts(content: &Value) -> String {
    let parts = object_field(content, "parts", "parts").and_then(Value::as_array);
    parts.into_iter().flatten().filter_map(|part| part.get("text")?.as_str()).collect::<Vec<_>>().join("\n")
}

fn messages(native: &Map<String, Value>) -> Result<Vec<Value>, Unconvertible> {
    let mut out = Vec::new();
    if let Some(system) = field(native, "systemInstruction", "system_instruction") {
        let text = match system {
            Value::String(text) => text.clone(),
            other => text_of_parts(other),
        };
        if !text.is_empty() {
            out.push(json!({"role": "system", "content": text}));
        }
    }
    let contents = match field(native, "contents", "contents") {
        Some(Value::Array(contents)) if !contents.is_empty() => contents,
        _ => return Err(unconvertible("contents: at least one content is required")),
    };
    // Gemini answers a function by name; OpenAI pairs a result with its call by id.
    let mut pending: HashMap<String, Vec<String>> = HashMap::new();
    let mut next_id = 0usize;
    for content in contents {
        let role = object_field(content, "role", "role").and_then(Value::as_str).unwrap_or("user");
        let parts = object_field(content, "parts", "parts").and_then(Value::as_array).cloned().unwrap_or_default();
        match role {
            "user" | "function" | "tool" => {
                let mut pieces = Vec::new();
                for part in &parts {
                    if let Some(result) = object_field(part, "functionResponse", "function_response") {
                        let name = object_field(result, "name", "name").and_then(Value::as_str).unwrap_or_default();
                        let id = pending.get_mut(name).and_then(|ids| (!ids.is_empty()).then(|| ids.remove(0)));
                        let id = id.unwrap_or_else(|| {
                            next_id += 1;
                            format!("call_{}", next_id - 1)
                        });
                        let response = object_field(result, "response", "response").cloned().unwrap_or(json!({}));
                        out.push(json!({"role": "tool", "tool_call_id": id, "content": response.to_string()}));
                    } else if let Some(text) = part.get("text").and_then(Value::as_str) {
                        pieces.push(json!({"type": "text", "text": text}));
                    } else if let Some(inline) = object_field(part, "inlineData", "inline_data") {
                        let mime = object_field(inline, "mimeType", "mime_type").and_then(Value::as_str).unwrap_or("");
                        let data = object_field(inline, "data", "data").and_then(Value::as_str).unwrap_or("");
                        if !mime.starts_with("image/") {
                            return Err(unconvertible(format!(
                                "inlineData of type '{mime}' can go only to a Gemini channel; other channels take images"
                            )));
                        }
                        pieces.push(
                            json!({"type": "image_url", "image_url": {"url": format!("data:{mime};base64,{data}")}}),
                        );
                    } else if object_field(part, "fileData", "file_data").is_some() {
                        return Err(unconvertible(
                            "fileData refers to Google's Files API, which only Gemini channels can read; send the file inline",
                        ));
                    }
                }
                if !pieces.is_empty() {
                    let only_text = pieces.iter().all(|piece| piece["type"] == "text");
                    let content = if only_text {
                        json!(pieces.iter().filter_map(|piece| piece["text"].as_str()).collect::<Vec<_>>().join(""))
                    } else {
                        Value::Array(pieces)
                    };
                    out.push(json!({"role": "user", "content": content}));
                }
            }
            "model" => {
                let mut text = String::new();
                let mut calls = Vec::new();
                for part in &parts {
                    if let Some(call) = object_field(part, "functionCall", "function_call") {
                        let name = object_field(call, "name", "name").and_then(Value::as_str).unwrap_or_default();
                        let args = object_field(call, "args", "args").cloned().unwrap_or(json!({}));
                        let id = format!("call_{next_id}");
                        next_id += 1;
                        pending.entry(name.to_string()).or_default().push(id.clone());
                        calls.push(json!({"id": id, "type": "function",
                            "function": {"name": name, "arguments": args.to_string()}}));
                    } else if part.get("thought") != Some(&Value::Bool(true)) {
                        if let Some(piece) = part.get("text").and_then(Value::as_str) {
                            text.push_str(piece);
                        }
                    }
                }
                let mut message = json!({"role": "assistant", "content": text});
                if !calls.is_empty() {
                    message["tool_calls"] = Value::Array(calls);
                }
                out.push(message);
            }
            other => return Err(unconvertible(format!("contents[].role must be user or model, not '{other}'"))),
        }
    }
    Ok(out)
}

/// Gemini's schemas name types in capitals (`OBJECT`, `STRING`); JSON Schema in lower case.
fn json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| match (key.as_str(), value) {
                    ("type", Value::String(kind)) => (key.clone(), json!(kind.to_ascii_lowercase())),
                    _ => (key.clone(), json_schema(value)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
        other => other.clone(),
    }
}

fn tools(native: &Map<String, Value>) -> Result<Option<Value>, Unconvertible> {
    let Some(tools) = field(native, "tools", "tools").and_then(Value::as_array) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for tool in tools {
        let Some(object) = tool.as_object() else { continue };
        let declarations = field(object, "functionDeclarations", "function_declarations");
        for kind in object.keys() {
            if !matches!(kind.as_str(), "functionDeclarations" | "function_declarations") {
                return Err(unconvertible(format!(
                    "the tool '{kind}' runs only on Google's servers; it can go only to a Gemini channel"
                )));
            }
        }
        for declaration in declarations.and_then(Value::as_array).into_iter().flatten() {
            let name = object_field(declaration, "name", "name").cloned().unwrap_or(json!(""));
            let mut function = json!({"name": name});
            if let Some(description) = object_field(declaration, "description", "description") {
                function["description"] = description.clone();
            }
            let parameters = object_field(declaration, "parametersJsonSchema", "parameters_json_schema")
                .cloned()
                .or_else(|| object_field(declaration, "parameters", "parameters").map(json_schema));
            if let Some(parameters) = parameters {
                function["parameters"] = parameters;
            }
            out.push(json!({"type": "function", "function": function}));
        }
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

fn tool_choice(native: &Map<String, Value>) -> Option<Value> {
    let config = field(native, "toolConfig", "tool_config")?;
    let calling = object_field(config, "functionCallingConfig", "function_calling_config")?;
    let allowed = object_field(calling, "allowedFunctionNames", "allowed_function_names").and_then(Value::as_array);
    match object_field(calling, "mode", "mode").and_then(Value::as_str)? {
        "NONE" => Some(json!("none")),
        "ANY" => match allowed.map(Vec::as_slice) {
            Some([only]) => Some(json!({"type": "function", "function": {"name": only}})),
            _ => Some(json!("required")),
        },
        _ => Some(json!("auto")),
    }
}

fn generation_config(native: &Map<String, Value>, request: &mut Map<String, Value>) -> Result<(), Unconvertible> {
    let Some(config) = field(native, "generationConfig", "generation_config") else {
        return Ok(());
    };
    let config = config.as_object().ok_or_else(|| unconvertible("generationConfig must be an object"))?;
    for (camel, snake, to) in [
        ("temperature", "temperature", "temperature"),
        ("topP", "top_p", "top_p"),
        ("maxOutputTokens", "max_output_tokens", "max_tokens"),
        ("stopSequences", "stop_sequences", "stop"),
        ("seed", "seed", "seed"),
        ("presencePenalty", "presence_penalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty", "frequency_penalty"),
    ] {
        if let Some(value) = field(config, camel, snake) {
            request.insert(to.into(), value.clone());
        }
    }
    if let Some(count) = field(config, "candidateCount", "candidate_count").and_then(Value::as_u64) {
        if count > 1 {
            return Err(unconvertible("candidateCount: one candidate is offered through BurnCloud"));
        }
    }
    let schema = field(config, "responseJsonSchema", "response_json_schema")
        .cloned()
        .or_else(|| field(config, "responseSchema", "response_schema").map(json_schema));
    match (field(config, "responseMimeType", "response_mime_type").and_then(Value::as_str), schema) {
        (Some("application/json"), Some(schema)) => {
            request.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}),
            );
        }
        (Some("application/json"), None) => {
            request.insert("response_format".into(), json!({"type": "json_object"}));
        }
        _ => {}
    }
    if let Some(thinking) = field(config, "thinkingConfig", "thinking_config") {
        if let Some(level) = object_field(thinking, "thinkingLevel", "thinking_level").and_then(Value::as_str) {
            request.insert("reasoning_effort".into(), json!(level.to_ascii_lowercase()));
        }
    }
    Ok(())
}

/// OpenAI's `finish_reason` as Gemini's `finishReason`.
fn finish_reason(reason: Option<&str>) -> &'static str {
    match reason {
        Some("length") => "MAX_TOKENS",
        Some("content_filter") => "SAFETY",
        _ => "STOP",
    }
}

fn usage_metadata(usage: &Value) -> Value {
    let count = |field: &str| usage.get(field).and_then(Value::as_u64).unwrap_or(0);
    let (prompt, completion) = (count("prompt_tokens"), count("completion_tokens"));
    let mut metadata = json!({"promptTokenCount": prompt, "candidatesTokenCount": completion,
        "totalTokenCount": prompt + completion});
    if let Some(cached) = usage.pointer("/prompt_tokens_details/cached_tokens").and_then(Value::as_u64) {
        if cached > 0 {
            metadata["cachedContentTokenCount"] = json!(cached);
        }
    }
    if let Some(thoughts) = usage.pointer("/completion_tokens_details/reasoning_tokens").and_then(Value::as_u64) {
        if thoughts > 0 {
            metadata["thoughtsTokenCount"] = json!(thoughts);
            metadata["candidatesTokenCount"] = json!(completion.saturating_sub(thoughts));
        }
    }
    metadata
}

fn function_call_part(name: &str, arguments: &str) -> Value {
    let args = serde_json::from_str::<Value>(arguments).unwrap_or_else(|_| json!({}));
    json!({"functionCall": {"name": name, "args": args}})
}

/// A whole OpenAI-format answer as Gemini's.
pub fn from_openai(op: GeminiOp, body: &[u8], model: &str, response_id: &str) -> Result<Bytes, Unconvertible> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| unconvertible(format!("the answer is not JSON: {e}")))?;
    let out = match op {
        GeminiOp::EmbedContent | GeminiOp::BatchEmbedContents => {
            let vectors: Vec<Value> = answer
                .get("data")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|item| json!({"values": item.get("embedding").cloned().unwrap_or(json!([]))}))
                        .collect()
                })
                .unwrap_or_default();
            if vectors.is_empty() {
                return Err(unconvertible("the answer has no embeddings"));
            }
            if op == GeminiOp::EmbedContent {
                json!({"embedding": vectors[0]})
            } else {
                json!({"embeddings": vectors})
            }
        }
        GeminiOp::Generate | GeminiOp::StreamGenerate { .. } | GeminiOp::CountTokens => {
            let choice = answer.pointer("/choices/0").ok_or_else(|| unconvertible("the answer has no choices"))?;
            let message = choice.get("message").cloned().unwrap_or(json!({}));
            let mut parts = Vec::new();
            if let Some(thought) = message.get("reasoning_content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                parts.push(json!({"text": thought, "thought": true}));
            }
            if let Some(text) = message.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                parts.push(json!({"text": text}));
            }
            for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                let function = call.get("function").cloned().unwrap_or(json!({}));
                let name = function.get("name").and_then(Value::as_str).unwrap_or_default();
                parts.push(function_call_part(name, function.get("arguments").and_then(Value::as_str).unwrap_or("{}")));
            }
            let mut out = json!({
                "candidates": [{"content": {"role": "model", "parts": parts},
                    "finishReason": finish_reason(choice.get("finish_reason").and_then(Value::as_str)), "index": 0}],
                "modelVersion": model,
                "responseId": response_id,
            });
            if let Some(usage) = answer.get("usage") {
                out["usageMetadata"] = usage_metadata(usage);
            }
            out
        }
    };
    Ok(Bytes::from(out.to_string()))
}

/// An error as Gemini shapes it: `{"error": {"code", "message", "status"}}`.
pub fn error_body(status: u16, message: &str) -> Bytes {
    let name = match status {
        400 | 413 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
    Bytes::from(json!({"error": {"code": status, "message": message, "status": name}}).to_string())
}

/// Writes OpenAI-format stream chunks as Gemini's stream: each piece of text as a
/// `GenerateContentResponse`, function calls once complete, the last with `finishReason` and
/// `usageMetadata`; as server-sent events, or as the elements of one JSON array.
pub struct GeminiStreamWriter {
    sse: bool,
    model: String,
    response_id: String,
    /// Whether the JSON array has been opened.
    opened: bool,
    /// The usage, finish reason and function calls the chunks carried.
    reader: ChunkReader,
}

impl GeminiStreamWriter {
    pub fn new(sse: bool, model: &str, response_id: &str) -> Self {
        GeminiStreamWriter {
            sse,
            model: model.to_string(),
            response_id: response_id.to_string(),
            opened: false,
            reader: ChunkReader::default(),
        }
    }

    fn event(&mut self, response: Value) -> Bytes {
        if self.sse {
            return Bytes::from(format!("data: {response}\r\n\r\n"));
        }
        let separator = if self.opened { ",\r\n" } else { "[" };
        self.opened = true;
        Bytes::from(format!("{separator}{response}"))
    }

    fn response(&self, parts: Vec<Value>) -> Value {
        json!({"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
            "modelVersion": self.model, "responseId": self.response_id})
    }

    /// One OpenAI-format chunk's data; the events it makes.
    pub fn on_chunk(&mut self, data: &[u8]) -> Vec<Bytes> {
        let Some(delta) = self.reader.read(data) else {
            return Vec::new();
        };
        let mut parts = Vec::new();
        if let Some(thought) = delta.get("reasoning_content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            parts.push(json!({"text": thought, "thought": true}));
        }
        if let Some(text) = delta.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            parts.push(json!({"text": text}));
        }
        if parts.is_empty() {
            return Vec::new();
        }
        let response = self.response(parts);
        vec![self.event(response)]
    }

    /// The events that end the stream: the function calls, the finish reason and the usage.
    pub fn end(&mut self) -> Vec<Bytes> {
        let parts: Vec<Value> =
            self.reader.tool_calls.drain(..).map(|(name, arguments)| function_call_part(&name, &arguments)).collect();
        let mut last = self.response(parts);
        last["candidates"][0]["finishReason"] = json!(finish_reason(self.reader.finish_reason.as_deref()));
        if let Some(usage) = &self.reader.usage {
            last["usageMetadata"] = usage_metadata(usage);
        }
        let mut events = vec![self.event(last)];
        if !self.sse {
            events.push(Bytes::from_static(b"]"));
        }
        events
    }

    /// The event that tells the caller the stream broke.
    pub fn fail(&mut self, message: &str) -> Bytes {
        let error = json!({"error": {"code": 502, "message": message, "status": "UNAVAILABLE"}});
        if self.sse {
            return Bytes::from(format!("data: {error}\r\n\r\n"));
        }
        let separator = if self.opened { ",\r\n" } else { "[" };
        self.opened = true;
        Bytes::from(format!("{separator}{error}]"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_gemini_request_with_tools_results_and_images_becomes_openai_chat() {
        let native = object(json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}}]},
                {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"sky": "clear"}}}]}
            ],
            "tools": [{"functionDeclarations": [{"name": "weather", "description": "d",
                "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}},
            "generationConfig": {"temperature": 0.5, "maxOutputTokens": 99, "stopSequences": ["x"],
                "responseMimeType": "application/json"}
        }));
        let request = to_openai(GeminiOp::StreamGenerate { sse: true }, "gemini-pro", &native).unwrap();
        let messages = request["messages"].as_array().unwrap();
        assert_eq!(messages[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(messages[1]["content"][1]["image_url"]["url"], json!("data:image/png;base64,iVBOR"));
        assert_eq!(messages[2]["tool_calls"][0]["function"]["arguments"], json!("{\"city\":\"Paris\"}"));
        assert_eq!(messages[3]["tool_call_id"], messages[2]["tool_calls"][0]["id"]);
        assert_eq!(request["tools"][0]["function"]["parameters"]["properties"]["city"]["type"], json!("string"));
        assert_eq!(request["tool_choice"], json!({"type": "function", "function": {"name": "weather"}}));
        assert_eq!((request["max_tokens"].clone(), request["stop"].clone()), (json!(99), json!(["x"])));
        assert_eq!(request["response_format"], json!({"type": "json_object"}));
        assert_eq!(
            (request["stream"].clone(), request["stream_options"]["include_usage"].clone()),
            (json!(true), json!(true))
        );
        // The other spelling reads the same.
        let snake = object(json!({"system_instruction": {"parts": [{"text": "s"}]},
            "contents": [{"parts": [{"text": "hi"}]}], "generation_config": {"max_output_tokens": 5}}));
        let request = to_openai(GeminiOp::Generate, "m", &snake).unwrap();
        assert_eq!(request["max_tokens"], json!(5));
        assert_eq!(request["messages"][1], json!({"role": "user", "content": "hi"}));
    }

    #[test]
    fn what_only_google_can_run_is_refused_by_name() {
        for bad in [
            json!({"contents": [{"parts": [{"text": "x"}]}], "tools": [{"googleSearch": {}}]}),
            json!({"contents": [{"parts": [{"fileData": {"fileUri": "https://x"}}]}]}),
            json!({"contents": []}),
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 2}}),
        ] {
            assert!(to_openai(GeminiOp::Generate, "m", &object(bad.clone())).is_err(), "{bad}");
        }
        let batch = object(
            json!({"requests": [{"content": {"parts": [{"text": "a"}]}}, {"content": {"parts": [{"text": "b"}]}}]}),
        );
        assert_eq!(to_openai(GeminiOp::BatchEmbedContents, "e", &batch).unwrap()["input"], json!(["a", "b"]));
    }

    #[test]
    fn answers_and_streams_come_back_in_geminis_shape() {
        let answer = json!({"choices": [{"message": {"role": "assistant", "content": "Hi", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 7, "completion_tokens": 2}});
        let out: Value =
            serde_json::from_slice(&from_openai(GeminiOp::Generate, answer.to_string().as_bytes(), "m", "r").unwrap())
                .unwrap();
        assert_eq!(out["candidates"][0]["content"]["parts"][0], json!({"text": "Hi"}));
        assert_eq!(out["candidates"][0]["content"]["parts"][1]["functionCall"]["args"], json!({"city": "Paris"}));
        assert_eq!(out["usageMetadata"]["totalTokenCount"], json!(9));

        for sse in [true, false] {
            let mut writer = GeminiStreamWriter::new(sse, "m", "r");
            let mut out: Vec<Bytes> = [
                json!({"choices": [{"delta": {"content": "Hel"}}]}),
                json!({"choices": [{"delta": {"content": "lo"}, "finish_reason": "length"}]}),
                json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}),
            ]
            .iter()
            .flat_map(|chunk| writer.on_chunk(chunk.to_string().as_bytes()))
            .collect();
            out.extend(writer.end());
            let text = String::from_utf8(out.concat()).unwrap();
            let responses: Vec<Value> = if sse {
                text.split("\r\n\r\n")
                    .filter(|e| !e.is_empty())
                    .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
                    .collect()
            } else {
                serde_json::from_str::<Vec<Value>>(&text).unwrap()
            };
            let joined: String =
                responses.iter().filter_map(|r| r.pointer("/candidates/0/content/parts/0/text")?.as_str()).collect();
            assert_eq!(joined, "Hello");
            let last = responses.last().unwrap();
            assert_eq!(last["candidates"][0]["finishReason"], json!("MAX_TOKENS"));
            assert_eq!(last["usageMetadata"]["candidatesTokenCount"], json!(2));
        }
    }
}
