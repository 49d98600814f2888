//! Qwen's DashScope: chat, completions and embeddings go to its OpenAI-compatible mode as they
//! are; reranking has only DashScope's own API (`text-rerank`), converted here both ways.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::Unconvertible;
use crate::usage::Usage;

/// DashScope's rerank path, under the origin of the channel's base URL.
pub const RERANK_PATH: &str = "api/v1/services/rerank/text-rerank/text-rerank";

/// The rerank URL for a channel whose base URL is its compatible mode
/// (`https://dashscope.aliyuncs.com/compatible-mode/v1`): the same host, DashScope's own path.
pub fn rerank_url(base_url: &str) -> Result<reqwest::Url, String> {
    let base = reqwest::Url::parse(base_url).map_err(|e| format!("the DashScope base URL does not parse: {e}"))?;
    // The compatible mode lives at `<prefix>/compatible-mode/v1`; DashScope's own API at
    // `<prefix>/api/v1`. A base URL without it (a proxy) puts the API at its root.
    let prefix = base.path().find("/compatible-mode").map_or("", |at| &base.path()[..at]);
    let mut url = base.clone();
    url.set_path(&format!("{prefix}/{RERANK_PATH}"));
    url.set_query(None);
    Ok(url)
}

/// A document as Cohere and Jina callers send it: a string, or an object with `text`.
fn document_text(document: &Value) -> Option<&str> {
    document.as_str().or_else(|| document.get("text").and_then(Value::as_str))
}

/// `{model, query, documents, top_n, return_documents}` as DashScope's `text-rerank` request.
pub fn rerank_request(request: &Map<String, Value>, upstream_model: &str) -> Result<Value, Unconvertible> {
    let query =
        request.get("query").and_then(document_text).ok_or_else(|| Unconvertible("query must be a string".into()))?;
    let documents = request
        .get("documents")
        .and_then(Value::as_array)
        .ok_or_else(|| Unconvertible("documents must be an array of strings".into()))?
        .iter()
        .map(|document| {
            document_text(document)
                .map(|text| Value::String(text.to_string()))
                .ok_or_else(|| Unconvertible("each document must be a string or an object with text".into()))
        })
        .collect::<Result<Vec<Value>, Unconvertible>>()?;
    let mut parameters = Map::new();
    if let Some(top_n) = request.get("top_n").filter(|n| !n.is_null()) {
        parameters.insert("top_n".into(), top_n.clone());
    }
    let return_documents = request.get("return_documents").and_then(Value::as_bool).unwrap_or(false);
    parameters.insert("return_documents".into(), Value::Bool(return_documents));
    Ok(json!({"model": upstream_model, "input": {"query": query, "documents": documents}, "parameters": parameters}))
}

/// DashScope's `{output: {results}, usage: {total_tokens}, request_id}` in the Cohere / Jina shape.
pub fn rerank_response(body: &[u8], model: &str) -> Result<(Bytes, Option<Usage>), Unconvertible> {
    let answer: Value = serde_json::from_slice(body)
        .map_err(|e| Unconvertible(format!("DashScope's rerank answer is not JSON: {e}")))?;
    let results = answer
        .pointer("/output/results")
        .and_then(Value::as_array)
        .ok_or_else(|| Unconvertible("DashScope's rerank answer has no output.results".into()))?;
    let results: Vec<Value> = results
        .iter()
        .map(|result| {
            let mut item = json!({"index": result["index"], "relevance_score": result["relevance_score"]});
            if let Some(document) = result.get("document").filter(|d| !d.is_null()) {
                item["document"] = document.clone();
            }
            item
        })
        .collect();
    let tokens = answer.pointer("/usage/total_tokens").and_then(Value::as_u64);
    let id = answer.get("request_id").and_then(Value::as_str).unwrap_or_default();
    let mut converted = json!({"id": id, "model": model, "results": results});
    if let Some(tokens) = tokens {
        converted["usage"] = json!({"prompt_tokens": tokens, "total_tokens": tokens});
    }
    Ok((Bytes::from(converted.to_string()), tokens.map(|tokens| Usage::new(tokens, 0))))
}

/// DashScope's own errors (`{code, message, request_id}`) in OpenAI's shape; the compatible
/// mode's errors are OpenAI's already and pass.
pub fn error_body(body: Bytes) -> Bytes {
    let Ok(Value::Object(error)) = serde_json::from_slice::<Value>(&body) else { return body };
    if error.contains_key("error") {
        return body;
    }
    match (error.get("code").and_then(Value::as_str), error.get("message").and_then(Value::as_str)) {
        (Some(code), Some(message)) => Bytes::from(
            json!({"error": {"message": message, "type": "upstream_error", "param": null, "code": code}}).to_string(),
        ),
        _ => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rerank_url_keeps_the_host_and_drops_the_compatible_mode() {
        let url = rerank_url("https://dashscope.aliyuncs.com/compatible-mode/v1").unwrap();
        assert_eq!(url.as_str(), "https://dashscope.aliyuncs.com/api/v1/services/rerank/text-rerank/text-rerank");
        let local = rerank_url("http://127.0.0.1:9000/proxy/compatible-mode/v1").unwrap();
        assert_eq!(local.as_str(), "http://127.0.0.1:9000/proxy/api/v1/services/rerank/text-rerank/text-rerank");
        let bare = rerank_url("http://127.0.0.1:9000/v1").unwrap();
        assert_eq!(bare.as_str(), "http://127.0.0.1:9000/api/v1/services/rerank/text-rerank/text-rerank");
    }

    #[test]
    fn rerank_converts_both_ways() {
        let request = json!({"model": "gte-rerank", "query": "q", "documents": ["a", {"text": "b"}], "top_n": 1});
        let converted = rerank_request(request.as_object().unwrap(), "gte-rerank-v2").unwrap();
        assert_eq!(
            converted,
            json!({"model": "gte-rerank-v2", "input": {"query": "q", "documents": ["a", "b"]},
                "parameters": {"top_n": 1, "return_documents": false}})
        );
        let bad = json!({"query": "q", "documents": [1]});
        assert!(rerank_request(bad.as_object().unwrap(), "m").is_err());

        let answer = br#"{"output":{"results":[{"index":1,"relevance_score":0.9,"document":{"text":"b"}}]},
            "usage":{"total_tokens":12},"request_id":"r-1"}"#;
        let (body, usage) = rerank_response(answer, "gte-rerank").unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["results"][0], json!({"index": 1, "relevance_score": 0.9, "document": {"text": "b"}}));
        assert_eq!(body["usage"]["total_tokens"], 12);
        assert_eq!(usage.unwrap().prompt_tokens, 12);
        let error = error_body(Bytes::from_static(br#"{"code":"InvalidParameter","message":"bad top_n"}"#));
        let error: Value = serde_json::from_slice(&error).unwrap();
        assert_eq!(error["error"]["message"], "bad top_n");
    }
}
