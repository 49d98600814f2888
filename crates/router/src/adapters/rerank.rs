//! `/v1/rerank` answers as RAG clients read them (Cohere / Jina): whatever the server, each
//! result carries its document's text when the caller asked for it with `return_documents`.

use bytes::Bytes;
use serde_json::{json, Map, Value};

/// Adds `document: {text}` to each result that lacks it when the request has
/// `return_documents: true` (llama-server answers with indices and scores only).
pub fn with_documents(request: &Map<String, Value>, body: Bytes) -> Bytes {
    if request.get("return_documents") != Some(&Value::Bool(true)) {
        return body;
    }
    let Some(documents) = request.get("documents").and_then(Value::as_array) else { return body };
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(&body) else { return body };
    let Some(results) = answer.get_mut("results").and_then(Value::as_array_mut) else { return body };
    let mut changed = false;
    for result in results.iter_mut() {
        let document = result.get("index").and_then(Value::as_u64).and_then(|index| documents.get(index as usize));
        let text = document.and_then(|d| d.as_str().or_else(|| d.get("text").and_then(Value::as_str)));
        if let (Some(result), Some(text)) = (result.as_object_mut(), text) {
            if !result.contains_key("document") {
                result.insert("document".into(), json!({"text": text}));
                changed = true;
            }
        }
    }
    if changed {
        Bytes::from(Value::Object(answer).to_string())
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_added_only_when_asked_and_missing() {
        let request = json!({"query": "q", "documents": ["a", {"text": "b"}], "return_documents": true});
        let body =
            Bytes::from_static(br#"{"results":[{"index":1,"relevance_score":0.9},{"index":0,"relevance_score":0.1}]}"#);
        let answer: Value =
            serde_json::from_slice(&with_documents(request.as_object().unwrap(), body.clone())).unwrap();
        assert_eq!(answer["results"][0]["document"], json!({"text": "b"}));
        assert_eq!(answer["results"][1]["document"], json!({"text": "a"}));
        let unasked = json!({"query": "q", "documents": ["a", "b"]});
        assert_eq!(with_documents(unasked.as_object().unwrap(), body.clone()), body);
    }
}
