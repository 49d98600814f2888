//! Provider wire formats. Every channel speaks OpenAI's format to BurnCloud's callers; a channel
//! whose upstream speaks another format has an adapter here that converts requests, responses,
//! stream events and errors, one file per provider, all of the same shape.

pub mod anthropic;
pub mod anthropic_inbound;
pub mod dashscope;
pub mod gemini;
pub mod gemini_inbound;
pub(crate) mod llama;
pub mod ollama_inbound;
pub mod rerank;
pub mod responses_inbound;
mod wire;

pub(crate) use wire::BadAnswer;
pub(crate) use wire::ENDPOINTS;
pub use wire::{Endpoint, Wire};

use serde_json::{json, Value};

/// Why a request or answer cannot be expressed in the other format.
#[derive(Debug, Clone, PartialEq)]
pub struct Unconvertible(pub String);

/// The text of message content: a string, or the `text` (or `refusal`) of its parts.
pub(crate) fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").or_else(|| p.get("refusal")).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Where an OpenAI `image_url` part's image is.
pub(crate) enum ImageSource<'a> {
    /// A base64 `data:` URL.
    Inline {
        media_type: &'a str,
        data: &'a str,
    },
    Url(&'a str),
}

pub(crate) fn image_source(part: &Value) -> Result<ImageSource<'_>, Unconvertible> {
    let url = part
        .get("image_url")
        .and_then(|i| i.get("url").or(Some(i)))
        .and_then(Value::as_str)
        .ok_or_else(|| Unconvertible("an image_url part has no url".into()))?;
    let Some(rest) = url.strip_prefix("data:") else { return Ok(ImageSource::Url(url)) };
    let (meta, data) = rest.split_once(',').ok_or_else(|| Unconvertible("a data: URL has no data".into()))?;
    let media_type = meta.strip_suffix(";base64").ok_or_else(|| Unconvertible("data: URLs must be base64".into()))?;
    Ok(ImageSource::Inline { media_type, data })
}

/// Appends a turn of `items` under `key`, merged into the previous turn when the role repeats:
/// Anthropic and Gemini want alternating roles, while OpenAI sends tool results one per message.
pub(crate) fn push_turn(turns: &mut Vec<Value>, role: &str, key: &str, items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    if let Some(last) = turns.last_mut().filter(|last| last["role"] == role) {
        if let Some(existing) = last[key].as_array_mut() {
            existing.extend(items);
            return;
        }
    }
    turns.push(json!({"role": role, key: items}));
}

/// What every chunk of one OpenAI chat completion stream repeats: id, creation time, model.
#[derive(Debug, Default)]
pub(crate) struct ChunkStream {
    pub id: String,
    pub model: String,
    pub created: u64,
}

impl ChunkStream {
    pub fn new(id: &str, model: &str) -> ChunkStream {
        ChunkStream { id: id.to_string(), model: model.to_string(), created: now_seconds() }
    }

    /// One `chat.completion.chunk` event with this delta and finish reason.
    pub fn chunk(&self, delta: Value, finish_reason: Value) -> bytes::Bytes {
        let chunk = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]});
        bytes::Bytes::from(format!("data: {chunk}\n\n"))
    }

    /// The end of the stream: the usage-only chunk when there is one to send, then `[DONE]`.
    pub fn closing(&self, usage: Option<Value>) -> Vec<bytes::Bytes> {
        let mut out = Vec::new();
        if let Some(usage) = usage {
            let chunk = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": usage});
            out.push(bytes::Bytes::from(format!("data: {chunk}\n\n")));
        }
        out.push(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
        out
    }
}

pub(crate) fn now_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Converts another provider's stream events into OpenAI chat completion chunks, event by event.
pub trait EventTranslator: Send {
    /// The OpenAI chunks for one upstream event's `data`.
    fn on_event(&mut self, data: &[u8]) -> Vec<bytes::Bytes>;
    /// What ends the OpenAI stream: the usage chunk if the caller asked for it, then `[DONE]`.
    fn finish(&self, include_usage: bool) -> Vec<bytes::Bytes>;
    /// Whether the upstream said the answer is complete.
    fn finished(&self) -> bool;
    fn usage(&self) -> Option<crate::usage::Usage>;
    /// The upstream's own error event, already passed on to the caller translated.
    fn error(&self) -> Option<String>;
}

macro_rules! event_translator {
    ($translator:ty) => {
        impl EventTranslator for $translator {
            fn on_event(&mut self, data: &[u8]) -> Vec<bytes::Bytes> {
                <$translator>::on_event(self, data)
            }
            fn finish(&self, include_usage: bool) -> Vec<bytes::Bytes> {
                <$translator>::finish(self, include_usage)
            }
            fn finished(&self) -> bool {
                <$translator>::finished(self)
            }
            fn usage(&self) -> Option<crate::usage::Usage> {
                <$translator>::usage(self)
            }
            fn error(&self) -> Option<String> {
                self.error.clone()
            }
        }
    };
}

event_translator!(anthropic::StreamTranslator);
event_translator!(gemini::StreamTranslator);
event_translator!(llama::InfillStreamTranslator);

/// What the OpenAI-format chunks of a stream have said so far, for the writers that turn them into
/// another protocol's stream (Ollama's, Gemini's): the usage, the finish reason, and the tool calls
/// put together from their pieces.
#[derive(Debug, Default)]
pub struct ChunkReader {
    /// (name, arguments) of each call, by its index.
    pub tool_calls: Vec<(String, String)>,
    pub finish_reason: Option<String>,
    pub usage: Option<Value>,
}

impl ChunkReader {
    /// Reads one chunk's data; returns its delta when it carries a choice.
    pub fn read(&mut self, data: &[u8]) -> Option<Value> {
        let chunk = serde_json::from_slice::<Value>(data).ok()?;
        if let Some(usage) = chunk.get("usage").filter(|usage| usage.is_object()) {
            self.usage = Some(usage.clone());
        }
        let choice = chunk.pointer("/choices/0")?;
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        // A chat chunk's delta, or a text completion chunk's text.
        let delta = match (choice.get("delta"), choice.get("text")) {
            (Some(delta), _) => delta.clone(),
            (None, Some(text)) => serde_json::json!({"content": text}),
            (None, None) => Value::Object(serde_json::Map::new()),
        };
        for call in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            if index >= 1024 {
                continue;
            }
            while self.tool_calls.len() <= index {
                self.tool_calls.push((String::new(), String::new()));
            }
            let function = call.get("function");
            if let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str) {
                self.tool_calls[index].0.push_str(name);
            }
            if let Some(arguments) = function.and_then(|f| f.get("arguments")).and_then(Value::as_str) {
                self.tool_calls[index].1.push_str(arguments);
            }
        }
        Some(delta)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::sse::{event_data, SseSplitter};

    const KEYS: [&str; 41] = [
        "messages",
        "role",
        "content",
        "type",
        "text",
        "image_url",
        "url",
        "tool_calls",
        "function",
        "arguments",
        "tools",
        "tool_choice",
        "stop",
        "max_tokens",
        "delta",
        "index",
        "usage",
        "message",
        "content_block",
        "partial_json",
        "stop_reason",
        "error",
        "system",
        "user",
        "tool",
        "assistant",
        "candidates",
        "parts",
        "functionCall",
        "usageMetadata",
        "finishReason",
        "choices",
        "source",
        "input",
        "function_call",
        "function_call_output",
        "call_id",
        "instructions",
        "input_text",
        "namespace",
        "previous_response_id",
    ];

    fn arbitrary(rng: &mut fastrand::Rng, depth: u32) -> Value {
        match if depth > 3 { rng.u8(0..4) } else { rng.u8(0..7) } {
            0 => Value::Null,
            1 => json!(rng.bool()),
            2 => json!(rng.i64(-5..5000)),
            3 => json!(KEYS[rng.usize(..KEYS.len())]),
            4 | 5 => Value::Object(
                (0..rng.usize(0..5))
                    .map(|_| (KEYS[rng.usize(..KEYS.len())].to_string(), arbitrary(rng, depth + 1)))
                    .collect(),
            ),
            _ => Value::Array((0..rng.usize(0..4)).map(|_| arbitrary(rng, depth + 1)).collect()),
        }
    }

    /// Every converter, fed arbitrary JSON, gives a result or a clean error — never a panic.
    #[test]
    fn converters_survive_arbitrary_json() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let value = arbitrary(&mut rng, 0);
            let bytes = value.to_string();
            if let Some(map) = value.as_object() {
                let _ = anthropic::request(map, "m", rng.bool());
                let _ = gemini::request(map);
                let _ = gemini::embeddings_request(map, "m");
                let _ = anthropic_inbound::to_openai(map);
                let _ = responses_inbound::to_chat(map);
                let _ = responses_inbound::skeleton(map, "resp_x", "m");
            }
            let _ = anthropic::response(bytes.as_bytes(), "m");
            let _ = anthropic::error_body(bytes.as_bytes());
            let _ = gemini::response(bytes.as_bytes(), "m");
            let _ = gemini::embeddings_response(bytes.as_bytes(), "m");
            let _ = gemini::error_body(bytes.as_bytes());
            let _ = anthropic_inbound::from_openai_response(bytes.as_bytes(), "m");
            let _ =
                responses_inbound::from_chat_response(bytes.as_bytes(), json!({"id": "resp_x"}), &Default::default());
            let _ = responses_inbound::ResponsesStreamWriter::new(json!({"id": "resp_x"}), Default::default())
                .on_chunk(bytes.as_bytes());
            let _ = anthropic::StreamTranslator::new("m").on_event(bytes.as_bytes());
            let _ = gemini::StreamTranslator::new("m").on_event(bytes.as_bytes());
            let _ = anthropic_inbound::AnthropicStreamWriter::new("m").on_chunk(bytes.as_bytes());
        }
    }

    /// Arbitrary bytes cut at arbitrary places (inside UTF-8 characters too) through the SSE
    /// splitter and each stream translator: no panic, and nothing is lost by the splitter.
    #[test]
    fn streams_survive_arbitrary_bytes_and_splits() {
        let mut rng = fastrand::Rng::with_seed(11);
        let pieces: [&[u8]; 8] = [
            b"data: ",
            b"event: x\n",
            b"\n\n",
            b"\r\n",
            "é世".as_bytes(),
            b"{\"type\":\"message_start\"",
            b"[DONE]",
            b"\xff\xfe",
        ];
        for _ in 0..3_000 {
            let mut stream = Vec::new();
            for _ in 0..rng.usize(1..30) {
                stream.extend_from_slice(pieces[rng.usize(..pieces.len())]);
            }
            let mut splitter = SseSplitter::default();
            let mut translators: Vec<Box<dyn EventTranslator>> =
                vec![Box::new(anthropic::StreamTranslator::new("m")), Box::new(gemini::StreamTranslator::new("m"))];
            let mut writer = anthropic_inbound::AnthropicStreamWriter::new("m");
            let mut seen = 0;
            let mut rest = stream.as_slice();
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(rng.usize(1..=rest.len()));
                rest = tail;
                for event in splitter.push(chunk) {
                    seen += event.len();
                    if let Some(data) = event_data(&event) {
                        for translator in translators.iter_mut() {
                            let _ = translator.on_event(&data);
                        }
                        let _ = writer.on_chunk(&data);
                    }
                }
            }
            seen += splitter.finish().map_or(0, |rest| rest.len());
            let trailing_blank = stream.iter().rev().take_while(|b| b.is_ascii_whitespace()).count();
            assert!(seen + trailing_blank >= stream.len(), "the splitter lost bytes");
            let _ = writer.end();
        }
    }
}
