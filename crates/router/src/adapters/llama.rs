//! llama.cpp's `llama-server` (local deployments) beyond OpenAI's format: fill-in-the-middle. Its
//! `/v1/completions` ignores a `suffix`, so a completion with one goes to its own `/infill`
//! (`input_prefix`, `input_suffix`), which puts the model's FIM tokens around them, and its native
//! answer (`content`, `tokens_evaluated`, `tokens_predicted`, `stop_type`) comes back as an OpenAI
//! text completion, whole or as chunks.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::Unconvertible;
use crate::usage::Usage;

/// The sampling fields `/infill` reads under the same names as OpenAI's completions.
const SAME_NAMES: [&str; 6] = ["temperature", "top_p", "seed", "stop", "frequency_penalty", "presence_penalty"];

/// An OpenAI completions request with a `suffix`, as `/infill`'s body.
pub(crate) fn infill_request(openai: &Map<String, Value>, stream: bool) -> Result<Value, Unconvertible> {
    let text = |field: &str| match openai.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(Unconvertible(format!("{field}: fill-in-the-middle takes one string"))),
    };
    let mut body = Map::new();
    body.insert("input_prefix".into(), json!(text("prompt")?));
    body.insert("input_suffix".into(), json!(text("suffix")?));
    body.insert("stream".into(), json!(stream));
    let limit = openai.get("max_tokens").and_then(Value::as_i64).filter(|limit| *limit > 0);
    body.insert("n_predict".into(), json!(limit.unwrap_or(-1)));
    for field in SAME_NAMES {
        if let Some(value) = openai.get(field).filter(|value| !value.is_null()) {
            body.insert(field.into(), value.clone());
        }
    }
    Ok(Value::Object(body))
}

/// OpenAI's finish reason for llama-server's `stop_type` (`limit`: `n_predict` reached).
fn finish_reason(native: &Value) -> &'static str {
    match native.get("stop_type").and_then(Value::as_str) {
        Some("limit") => "length",
        _ => "stop",
    }
}

fn usage_of(native: &Value) -> Option<Usage> {
    let count = |field: &str| native.get(field).and_then(Value::as_u64);
    let prompt = count("tokens_evaluated")?;
    let mut usage = Usage::new(prompt, count("tokens_predicted").unwrap_or(0));
    usage.cached_tokens = native.pointer("/timings/cache_n").and_then(Value::as_u64).unwrap_or(0).min(prompt);
    Some(usage)
}

/// `/infill`'s whole answer as an OpenAI text completion, with its usage.
pub(crate) fn infill_response(body: &[u8], model: &str) -> Result<(Bytes, Option<Usage>), Unconvertible> {
    let native: Value = serde_json::from_slice(body)
        .map_err(|error| Unconvertible(format!("llama-server's infill answer is not JSON: {error}")))?;
    let content = native.get("content").and_then(Value::as_str).unwrap_or_default();
    let usage = usage_of(&native);
    let mut completion = json!({
        "id": "cmpl-infill", "object": "text_completion", "created": created(), "model": model,
        "choices": [{"index": 0, "text": content, "logprobs": null, "finish_reason": finish_reason(&native)}],
    });
    if let Some(usage) = usage {
        completion["usage"] = usage.openai_json();
    }
    Ok((Bytes::from(completion.to_string()), usage))
}

fn created() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// `/infill`'s stream events (`{"content": …, "stop": false}`, then one with `stop: true` and the
/// counts) as OpenAI text completion chunks.
pub(crate) struct InfillStreamTranslator {
    model: String,
    created: u64,
    usage: Option<Usage>,
    finished: bool,
    pub(crate) error: Option<String>,
}

impl InfillStreamTranslator {
    pub(crate) fn new(model: &str) -> Self {
        InfillStreamTranslator {
            model: model.to_string(),
            created: created(),
            usage: None,
            finished: false,
            error: None,
        }
    }

    fn chunk(&self, text: &str, finish_reason: Option<&str>) -> Bytes {
        let chunk = json!({"id": "cmpl-infill", "object": "text_completion", "created": self.created,
            "model": self.model, "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason}]});
        Bytes::from(format!("data: {chunk}\n\n"))
    }

    pub(crate) fn on_event(&mut self, data: &[u8]) -> Vec<Bytes> {
        let Ok(native) = serde_json::from_slice::<Value>(data) else { return Vec::new() };
        if let Some(error) = native.get("error") {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("llama-server failed");
            self.error = Some(message.to_string());
            let event = json!({"error": {"message": message, "type": "upstream_error", "param": null, "code": null}});
            return vec![Bytes::from(format!("data: {event}\n\n"))];
        }
        let content = native.get("content").and_then(Value::as_str).unwrap_or_default();
        if native.get("stop").and_then(Value::as_bool) == Some(true) {
            self.finished = true;
            self.usage = usage_of(&native);
            return vec![self.chunk(content, Some(finish_reason(&native)))];
        }
        if content.is_empty() {
            return Vec::new();
        }
        vec![self.chunk(content, None)]
    }

    pub(crate) fn finish(&self, include_usage: bool) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let (true, Some(usage)) = (include_usage, self.usage) {
            let chunk = json!({"id": "cmpl-infill", "object": "text_completion", "created": self.created,
                "model": self.model, "choices": [], "usage": usage.openai_json()});
            out.push(Bytes::from(format!("data: {chunk}\n\n")));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        out
    }

    pub(crate) fn finished(&self) -> bool {
        self.finished
    }

    pub(crate) fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_completion_with_a_suffix_becomes_an_infill() {
        let openai =
            object(json!({"model": "m", "prompt": "def add(a, b):\n    return", "suffix": "\nprint(add(1, 2))",
            "max_tokens": 16, "temperature": 0.2, "stop": ["\n\n"], "stream": true, "logprobs": 2}));
        assert_eq!(
            infill_request(&openai, true).unwrap(),
            json!({"input_prefix": "def add(a, b):\n    return", "input_suffix": "\nprint(add(1, 2))", "stream": true,
                "n_predict": 16, "temperature": 0.2, "stop": ["\n\n"]})
        );
        let unlimited = infill_request(&object(json!({"prompt": "a", "suffix": "b"})), false).unwrap();
        assert_eq!(unlimited["n_predict"], -1);
        assert!(infill_request(&object(json!({"prompt": ["a", "b"], "suffix": "c"})), false).is_err());
    }

    #[test]
    fn the_native_answer_becomes_a_text_completion() {
        let native = br#"{"index":0,"content":" a + b","stop":true,"tokens_predicted":4,"tokens_evaluated":46,
            "stop_type":"eos","timings":{"cache_n":40}}"#;
        let (body, usage) = infill_response(native, "coder").unwrap();
        let completion: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(completion["choices"][0]["text"], " a + b");
        assert_eq!(
            (completion["choices"][0]["finish_reason"].as_str(), completion["model"].as_str()),
            (Some("stop"), Some("coder"))
        );
        assert_eq!(completion["usage"]["prompt_tokens_details"]["cached_tokens"], 40);
        assert_eq!(usage, Some(Usage { cached_tokens: 40, ..Usage::new(46, 4) }));
        assert!(infill_response(b"<html>", "coder").is_err());
    }

    #[test]
    fn the_native_stream_becomes_completion_chunks() {
        let mut translator = InfillStreamTranslator::new("coder");
        let mut text = String::new();
        for event in [
            &br#"{"content":" a","stop":false,"tokens_predicted":1}"#[..],
            br#"{"content":"","stop":false}"#,
            br#"{"content":" + b","stop":false,"tokens_predicted":2}"#,
            br#"{"content":"","stop":true,"stop_type":"limit","tokens_predicted":2,"tokens_evaluated":46}"#,
        ] {
            for chunk in translator.on_event(event) {
                let data: Value = serde_json::from_slice(chunk.strip_prefix(b"data: ").unwrap().trim_ascii()).unwrap();
                text.push_str(data["choices"][0]["text"].as_str().unwrap());
                if let Some(reason) = data["choices"][0]["finish_reason"].as_str() {
                    assert_eq!(reason, "length");
                }
            }
        }
        assert_eq!(text, " a + b");
        assert!(translator.finished());
        assert_eq!(translator.usage(), Some(Usage::new(46, 2)));
        let tail = translator.finish(true);
        assert_eq!(tail.len(), 2, "the usage chunk, then [DONE]");
        assert_eq!(tail[1].as_ref(), b"data: [DONE]\n\n");
    }
}
