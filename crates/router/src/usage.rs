//! Token counts: read from the upstream's `usage` when it gives one, otherwise estimated with a
//! real tokenizer (o200k_base) over the request and the generated text — never over error text.

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::tokenizer::TokenCounter;

/// Token counts of one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<Usage>,
}

/// The `usage` object of an OpenAI response body or stream chunk, if it has one.
pub fn usage_in(json: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<WithUsage>(json).ok()?.usage
}

/// Reads a whole upstream answer in one pass: its `usage` if any, or why it is not a JSON object
/// a client could read (not UTF-8, not JSON, cut short).
pub fn checked_usage_in(json: &[u8]) -> Result<Option<Usage>, String> {
    std::str::from_utf8(json).map_err(|error| format!("a body that is not UTF-8 ({error})"))?;
    serde_json::from_slice::<WithUsage>(json).map(|parsed| parsed.usage).map_err(|error| match error.classify() {
        serde_json::error::Category::Eof => format!("a body cut short ({error})"),
        _ => format!("a body that is not a JSON object ({error})"),
    })
}

static TOKENIZER: OnceLock<Option<TokenCounter>> = OnceLock::new();

fn tokenizer() -> Option<&'static TokenCounter> {
    TOKENIZER
        .get_or_init(|| match TokenCounter::o200k_base() {
            Ok(counter) => Some(counter),
            Err(error) => {
                tracing::error!(%error, "the o200k_base tokenizer failed to load; estimates will count bytes / 4");
                None
            }
        })
        .as_ref()
}

/// Loads the tokenizer in the background so that the first estimate does not wait for it.
pub fn warm_up() {
    std::thread::spawn(|| {
        tokenizer();
    });
}

pub fn count_tokens(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    match tokenizer() {
        Some(counter) => counter.count(text),
        None => (text.len() as u64).div_ceil(4),
    }
}

/// Collects the text of a content value: a string or a list of parts with `text`.
fn push_content(content: Option<&Value>, out: &mut String) {
    match content {
        Some(Value::String(text)) => out.push_str(text),
        Some(Value::Array(parts)) => {
            for part in parts {
                if let Some(text) = part.get("text").and_then(Value::as_str) {
                    out.push_str(text);
                }
            }
        }
        _ => {}
    }
}

fn push_tool_calls(tool_calls: Option<&Value>, out: &mut String) {
    for call in tool_calls.and_then(Value::as_array).into_iter().flatten() {
        if let Some(function) = call.get("function") {
            for key in ["name", "arguments"] {
                if let Some(text) = function.get(key).and_then(Value::as_str) {
                    out.push_str(text);
                }
            }
        }
    }
}

/// OpenAI's per-message overhead for chat formats.
const TOKENS_PER_MESSAGE: u64 = 3;

/// Estimates the prompt tokens of a request body of the given endpoint.
pub fn estimate_prompt(request: &Map<String, Value>) -> u64 {
    if let Some(messages) = request.get("messages").and_then(Value::as_array) {
        let mut text = String::new();
        for message in messages {
            push_content(message.get("content"), &mut text);
            push_tool_calls(message.get("tool_calls"), &mut text);
            if let Some(name) = message.get("name").and_then(Value::as_str) {
                text.push_str(name);
            }
        }
        return count_tokens(&text) + TOKENS_PER_MESSAGE * (messages.len() as u64 + 1);
    }
    let input = request.get("prompt").or_else(|| request.get("input"));
    match input {
        Some(Value::String(text)) => count_tokens(text),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => count_tokens(text),
                Value::Array(ids) => ids.len() as u64,
                Value::Number(_) => 1,
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

/// Appends the generated text of one response or stream chunk (`message`, `delta` or `text`).
pub fn collect_generated_text(body: &Value, out: &mut String) {
    for choice in body.get("choices").and_then(Value::as_array).into_iter().flatten() {
        if let Some(text) = choice.get("text").and_then(Value::as_str) {
            out.push_str(text);
        }
        for key in ["message", "delta"] {
            if let Some(message) = choice.get(key) {
                push_content(message.get("content"), out);
                if let Some(reasoning) = message.get("reasoning_content").and_then(Value::as_str) {
                    out.push_str(reasoning);
                }
                push_tool_calls(message.get("tool_calls"), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_usage_and_ignores_null() {
        let body = br#"{"id":"x","usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#;
        assert_eq!(usage_in(body), Some(Usage { prompt_tokens: 12, completion_tokens: 5 }));
        assert_eq!(usage_in(br#"{"usage":null}"#), None);
        assert_eq!(usage_in(br#"{"usage":{"prompt_tokens":3,"total_tokens":3}}"#).unwrap().prompt_tokens, 3);
        assert_eq!(usage_in(b"not json"), None);
    }

    #[test]
    fn whole_answers_are_checked_in_the_same_pass_that_reads_usage() {
        let body = br#"{"id":"x","usage":{"prompt_tokens":2,"completion_tokens":1}}"#;
        assert_eq!(checked_usage_in(body), Ok(Some(Usage { prompt_tokens: 2, completion_tokens: 1 })));
        assert_eq!(checked_usage_in(br#"{"id":"x"}"#), Ok(None));
        assert!(checked_usage_in(br#"{"id":"x","choi"#).unwrap_err().contains("cut short"));
        assert!(checked_usage_in(b"<html></html>").unwrap_err().contains("not a JSON object"));
        assert!(checked_usage_in(b"[1, 2]").unwrap_err().contains("not a JSON object"));
        assert!(checked_usage_in(b"{\"id\":\"\xff\"}").unwrap_err().contains("not UTF-8"));
    }

    #[test]
    fn estimates_with_the_real_tokenizer() {
        assert_eq!(count_tokens("hello world"), 2);
        let request: Map<String, Value> = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"hello world"},{"role":"user","content":[{"type":"text","text":"hello world"}]}]}"#,
        )
        .unwrap();
        assert_eq!(estimate_prompt(&request), 4 + 3 * 3);
        let mut text = String::new();
        collect_generated_text(
            &serde_json::json!({"choices":[{"delta":{"content":"hello"}},{"message":{"content":" world"}}]}),
            &mut text,
        );
        assert_eq!(text, "hello world");
    }
}
