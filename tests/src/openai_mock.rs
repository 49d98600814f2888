//! A local server that speaks OpenAI's wire format (chat, completions, embeddings, SSE streams with
//! `stream_options.include_usage`, and OpenAI's error bodies), with behaviour that tests can switch.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::mock_state::{admit, hang, Shared, SharedState};
pub use crate::mock_state::{
    error_body, Mode, Received, CACHED_TOKENS, COMPLETION_TOKENS, EMBEDDING_TOKENS, ONE_PIXEL_PNG, PROMPT_TOKENS, REPLY,
};

/// A running mock; it stops when the test process ends.
#[derive(Clone)]
pub struct OpenAiMock {
    pub address: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl OpenAiMock {
    /// Starts on `127.0.0.1:0`. With `expected_key`, calls with another bearer key get OpenAI's 401.
    pub async fn start(expected_key: Option<&str>) -> OpenAiMock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
        Self::serve_on(listener, expected_key)
    }

    pub fn serve_on(listener: tokio::net::TcpListener, expected_key: Option<&str>) -> OpenAiMock {
        let address = listener.local_addr().expect("mock address");
        let shared = Arc::new(Mutex::new(Shared { expected_key: expected_key.map(String::from), ..Shared::default() }));
        let app = router(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener.tap_io(|s| drop(s.set_nodelay(true))), app).await;
        });
        OpenAiMock { address, shared }
    }

    /// The base URL a channel uses: `http://addr/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.lock().unwrap().mode = mode;
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.iter().cloned().collect()
    }
}

fn router(shared_state: SharedState) -> axum::Router {
    axum::Router::new()
        .route("/v1/messages", post(crate::anthropic_mock::messages))
        .route("/v1beta/models/{target}", post(crate::gemini_mock::models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/responses", post(crate::responses_mock::create))
        .route("/v1/responses/compact", post(crate::responses_mock::compact))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/rerank", post(rerank))
        .route("/v1/moderations", post(moderations))
        .route("/v1/images/generations", post(image_generations))
        .route("/v1/images/edits", post(crate::media_mock::image_edits))
        .route("/v1/audio/speech", post(crate::media_mock::speech))
        .route("/v1/audio/transcriptions", post(crate::media_mock::transcriptions))
        .route("/v1/audio/translations", post(crate::media_mock::translations))
        .route("/api/v1/services/rerank/text-rerank/text-rerank", post(dashscope_rerank))
        .route("/_mock/mode", post(set_mode))
        .route("/_mock/received", axum::routing::get(received))
        .with_state(shared_state)
}

/// Builds a mock router for the standalone binary.
pub fn standalone_router(expected_key: Option<String>) -> axum::Router {
    router(Arc::new(Mutex::new(Shared { expected_key, ..Shared::default() })))
}

/// What the calls so far carried, oldest first, for tests that drive the mock from another process.
async fn received(State(shared): State<SharedState>) -> Json<Value> {
    let shared = shared.lock().unwrap();
    Json(shared.received.iter().map(|call| json!({"path": call.path, "body": call.body})).collect())
}

async fn set_mode(State(shared): State<SharedState>, Json(mode): Json<Mode>) -> StatusCode {
    shared.lock().unwrap().mode = mode;
    StatusCode::NO_CONTENT
}

fn usage(mode: &Mode, model: &str) -> Value {
    let cached = if *mode == Mode::CachedUsage { CACHED_TOKENS } else { 0 };
    if cached > 0 && model.starts_with("deepseek") {
        // DeepSeek's own fields for its context cache.
        return json!({
            "prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
            "prompt_cache_hit_tokens": cached, "prompt_cache_miss_tokens": PROMPT_TOKENS - cached
        });
    }
    json!({
        "prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    })
}

/// What a chat answer holds: text, or tool calls (id, name, arguments).
enum Plan {
    Text(String),
    Calls(Vec<(String, String, String)>),
}

fn plan(mode: &Mode, request: &Value) -> Plan {
    let format = request.pointer("/response_format/type").and_then(Value::as_str);
    let (text, calls) = match (mode, format, tool_name(request)) {
        (Mode::Agent, _, _) => crate::agent::for_chat(request).into_reply("call_probe"),
        // Asked for a structured answer: JSON that fits the schema.
        (_, Some("json_schema"), _) => {
            let schema = request.pointer("/response_format/json_schema/schema").unwrap_or(&Value::Null);
            (crate::agent::sample_of(schema).to_string(), Vec::new())
        }
        (_, Some("json_object"), _) => (json!({"answer": REPLY}).to_string(), Vec::new()),
        (_, _, Some(name)) => (String::new(), crate::anthropic_mock::parallel_calls(&name, "call_")),
        (_, _, None) => (REPLY.to_string(), Vec::new()),
    };
    if calls.is_empty() {
        Plan::Text(text)
    } else {
        Plan::Calls(calls)
    }
}

fn model_of(body: &Value) -> String {
    body.get("model").and_then(Value::as_str).unwrap_or("gpt-4o-mini").to_string()
}

async fn chat(State(shared): State<SharedState>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let mode = match admit(&shared, "/v1/chat/completions", &headers, &body) {
        Ok(mode) => mode,
        Err(response) => return *response,
    };
    if mode == Mode::Hang {
        return hang().await;
    }
    let model = model_of(&body);
    let with_usage = mode != Mode::NoUsage;
    let plan = plan(&mode, &body);
    if body.get("stream") == Some(&Value::Bool(true)) {
        let include_usage =
            with_usage && body.get("stream_options").and_then(|o| o.get("include_usage")) == Some(&Value::Bool(true));
        return chat_stream(model, include_usage, mode, plan);
    }
    let (message, finish) = match plan {
        Plan::Calls(calls) => {
            let calls: Vec<Value> = calls
                .into_iter()
                .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
                .collect();
            (json!({"role": "assistant", "content": null, "tool_calls": calls, "refusal": null}), "tool_calls")
        }
        Plan::Text(text) => (json!({"role": "assistant", "content": text, "refusal": null}), "stop"),
    };
    let mut answer = json!({
        "id": "chatcmpl-mock123", "object": "chat.completion", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "system_fingerprint": "fp_mock"
    });
    if with_usage {
        answer["usage"] = usage(&mode, &model);
    }
    Json(answer).into_response()
}

/// A chat completion stream exactly as OpenAI sends it: role chunk, content chunks, a finish
/// chunk, the usage-only chunk when asked for, then `[DONE]`.
/// The tool the model calls, if it calls one: once the conversation ends with the tools' results it
/// answers in words, unless `tool_choice` says it must call one (a client that offers tools on every
/// turn, as Open WebUI does, would otherwise loop).
fn tool_name(request: &Value) -> Option<String> {
    let name = request.pointer("/tools/0/function/name")?.as_str().map(String::from);
    let forced = request["tool_choice"].is_object() || request["tool_choice"] == "required";
    let answered = request["messages"].as_array().and_then(|m| m.last()).is_some_and(|last| last["role"] == "tool");
    name.filter(|_| forced || !answered)
}

fn chat_stream(model: String, include_usage: bool, mode: Mode, plan: Plan) -> Response {
    let chunk = |delta: Value, finish: Value| {
        let mut chunk = json!({
            "id": "chatcmpl-mock123", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        format!("data: {chunk}\n\n")
    };
    let (delay, words): (Duration, Vec<String>) = match mode {
        Mode::Slow { delay_ms, chunks } => {
            (Duration::from_millis(delay_ms), (0..chunks).map(|i| format!("word{i} ")).collect())
        }
        _ => match &plan {
            Plan::Text(text) => (Duration::ZERO, text.split_inclusive(' ').map(String::from).collect()),
            Plan::Calls(_) => (Duration::ZERO, Vec::new()),
        },
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null)];
    match &plan {
        // Parallel tool calls as OpenAI streams them: id and name first, then the arguments in pieces.
        Plan::Calls(calls) => {
            for (i, (id, name, args)) in calls.iter().enumerate() {
                let opening =
                    json!({"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": ""}});
                events.push(chunk(json!({"tool_calls": [opening]}), Value::Null));
                let (head, tail) = args.split_at(8.min(args.len()));
                for part in [head, tail] {
                    events.push(chunk(
                        json!({"tool_calls": [{"index": i, "function": {"arguments": part}}]}),
                        Value::Null,
                    ));
                }
            }
            events.push(chunk(json!({}), json!("tool_calls")));
        }
        Plan::Text(_) => {
            events.extend(words.iter().map(|word| chunk(json!({"content": word}), Value::Null)));
            events.push(chunk(json!({}), json!("stop")));
        }
    }
    if include_usage {
        let last = json!({
            "id": "chatcmpl-mock123", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "system_fingerprint": "fp_mock", "choices": [], "usage": usage(&mode, &model)
        });
        events.push(format!("data: {last}\n\n"));
    }
    events.push("data: [DONE]\n\n".to_string());
    let cut = mode == Mode::CutStream;
    let stream = futures_util::stream::unfold((events.into_iter(), 0usize), move |(mut events, sent)| async move {
        if cut && sent == 2 {
            // Let the first events leave before the body fails and hyper drops the connection.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Some((Err(std::io::Error::other("cut")), (events, usize::MAX)));
        }
        if sent == usize::MAX {
            return None;
        }
        let event = events.next()?;
        if sent > 0 && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(event)), (events, sent + 1)))
    });
    Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn completions(State(shared): State<SharedState>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let mode = match admit(&shared, "/v1/completions", &headers, &body) {
        Ok(mode) => mode,
        Err(response) => return *response,
    };
    if mode == Mode::Hang {
        return hang().await;
    }
    // With a suffix (fill-in-the-middle, as gpt-3.5-turbo-instruct and DeepSeek's FIM take it):
    // what goes between the prompt and the suffix.
    let fills_in = body.get("suffix").and_then(Value::as_str).is_some_and(|suffix| !suffix.is_empty());
    let text = if fills_in { FILL } else { REPLY };
    let usage = json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                       "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS});
    let chunk = |text: &str, finish: Value| {
        json!({"id": "cmpl-mock123", "object": "text_completion", "created": 1_700_000_000, "model": model_of(&body),
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]})
    };
    if body.get("stream") == Some(&json!(true)) {
        let mut events: Vec<String> =
            text.split_inclusive(' ').map(|word| format!("data: {}\n\n", chunk(word, Value::Null))).collect();
        events.push(format!("data: {}\n\n", chunk("", json!("stop"))));
        if body.pointer("/stream_options/include_usage") == Some(&json!(true)) && mode != Mode::NoUsage {
            let last = json!({"id": "cmpl-mock123", "object": "text_completion", "created": 1_700_000_000,
                "model": model_of(&body), "choices": [], "usage": usage});
            events.push(format!("data: {last}\n\n"));
        }
        events.push("data: [DONE]\n\n".into());
        return ([("content-type", "text/event-stream")], events.concat()).into_response();
    }
    let mut answer = chunk(text, json!("stop"));
    if mode != Mode::NoUsage {
        answer["usage"] = usage;
    }
    Json(answer).into_response()
}

/// What a completion with a suffix fills in.
pub const FILL: &str = " a + b";

async fn embeddings(State(shared): State<SharedState>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let mode = match admit(&shared, "/v1/embeddings", &headers, &body) {
        Ok(mode) => mode,
        Err(response) => return *response,
    };
    if mode == Mode::Hang {
        return hang().await;
    }
    let inputs = match body.get("input") {
        Some(Value::Array(items)) => items.len(),
        _ => 1,
    };
    let data: Vec<Value> = (0..inputs)
        .map(|index| json!({"object": "embedding", "index": index, "embedding": [0.0023064255, -0.009327292, 0.015797347]}))
        .collect();
    let mut answer = json!({"object": "list", "data": data, "model": model_of(&body)});
    if mode != Mode::NoUsage {
        answer["usage"] = json!({"prompt_tokens": EMBEDDING_TOKENS, "total_tokens": EMBEDDING_TOKENS});
    }
    Json(answer).into_response()
}

/// A moderation as OpenAI answers it: every category with its flag and score, for each input
/// (flagged only when the text says `violence`).
async fn moderations(State(shared): State<SharedState>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Err(response) = admit(&shared, "/v1/moderations", &headers, &body) {
        return *response;
    }
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::Array(items)) => items.iter().map(|item| item.as_str().unwrap_or_default().to_string()).collect(),
        Some(Value::String(text)) => vec![text.clone()],
        _ => Vec::new(),
    };
    const CATEGORIES: [&str; 13] = [
        "harassment",
        "harassment/threatening",
        "hate",
        "hate/threatening",
        "illicit",
        "illicit/violent",
        "self-harm",
        "self-harm/instructions",
        "self-harm/intent",
        "sexual",
        "sexual/minors",
        "violence",
        "violence/graphic",
    ];
    let results: Vec<Value> = inputs
        .iter()
        .map(|text| {
            let violent = text.contains("violence");
            let flags: serde_json::Map<String, Value> =
                CATEGORIES.iter().map(|c| (c.to_string(), json!(violent && *c == "violence"))).collect();
            let scores: serde_json::Map<String, Value> = CATEGORIES
                .iter()
                .map(|c| (c.to_string(), json!(if violent && *c == "violence" { 0.91 } else { 0.0001 })))
                .collect();
            let types: serde_json::Map<String, Value> =
                CATEGORIES.iter().map(|c| (c.to_string(), json!(["text"]))).collect();
            json!({"flagged": violent, "categories": flags, "category_scores": scores,
                "category_applied_input_types": types})
        })
        .collect();
    Json(json!({"id": "modr-mock123", "model": model_of(&body), "results": results})).into_response()
}

/// An image generation as OpenAI answers it: `n` images as `b64_json` or URLs.
async fn image_generations(State(shared): State<SharedState>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Err(response) = admit(&shared, "/v1/images/generations", &headers, &body) {
        return *response;
    }
    let count = body.get("n").and_then(Value::as_u64).unwrap_or(1).clamp(1, 10);
    let as_data = body.get("response_format").and_then(Value::as_str) == Some("b64_json");
    let prompt = body.get("prompt").and_then(Value::as_str).unwrap_or_default();
    let data: Vec<Value> = (0..count)
        .map(|index| {
            if as_data {
                json!({"b64_json": ONE_PIXEL_PNG, "revised_prompt": prompt})
            } else {
                json!({"url": format!("https://images.invalid/mock-{index}.png"), "revised_prompt": prompt})
            }
        })
        .collect();
    Json(json!({"created": 1_700_000_000, "data": data})).into_response()
}

/// Tokens a rerank call reports.
pub const RERANK_TOKENS: u64 = 18;

/// The documents' order by the words they share with the query (the most first, then by index),
/// cut to `top_n`, as Cohere-shaped results (with each document's text when asked).
fn ranked(query: &str, documents: &[Value], top_n: Option<u64>, with_text: bool) -> Vec<Value> {
    let words: std::collections::HashSet<&str> = query.split_whitespace().collect();
    let mut scored: Vec<(usize, f64, String)> = documents
        .iter()
        .enumerate()
        .map(|(index, document)| {
            let text = document.as_str().or_else(|| document["text"].as_str()).unwrap_or_default().to_string();
            let shared = text.split_whitespace().filter(|word| words.contains(word)).count();
            (index, shared as f64 / (1.0 + shared as f64), text)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(top_n.map_or(usize::MAX, |n| n as usize));
    scored
        .into_iter()
        .map(|(index, score, text)| {
            let mut result = json!({"index": index, "relevance_score": score});
            if with_text {
                result["document"] = json!({"text": text});
            }
            result
        })
        .collect()
}

/// Jina's and SiliconFlow's `/v1/rerank`: usage as `total_tokens` alone, as Jina sends it.
async fn rerank(State(shared): State<SharedState>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Err(response) = admit(&shared, "/v1/rerank", &headers, &body) {
        return *response;
    }
    let documents = body["documents"].as_array().cloned().unwrap_or_default();
    let with_text = body["return_documents"].as_bool().unwrap_or(false);
    let results = ranked(body["query"].as_str().unwrap_or_default(), &documents, body["top_n"].as_u64(), with_text);
    Json(json!({"model": model_of(&body), "usage": {"total_tokens": RERANK_TOKENS}, "results": results}))
        .into_response()
}

/// DashScope's own `text-rerank` API: `input` and `parameters` in, `output.results` out.
async fn dashscope_rerank(State(shared): State<SharedState>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let path = "/api/v1/services/rerank/text-rerank/text-rerank";
    if let Err(response) = admit(&shared, path, &headers, &body) {
        return *response;
    }
    let (Some(query), Some(documents)) = (
        body.pointer("/input/query").and_then(Value::as_str),
        body.pointer("/input/documents").and_then(Value::as_array),
    ) else {
        let error = json!({"code": "InvalidParameter", "message": "input.query and input.documents are required", "request_id": "mock"});
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    };
    let with_text = body.pointer("/parameters/return_documents").and_then(Value::as_bool).unwrap_or(false);
    let results = ranked(query, documents, body.pointer("/parameters/top_n").and_then(Value::as_u64), with_text);
    Json(json!({"output": {"results": results}, "usage": {"total_tokens": RERANK_TOKENS}, "request_id": "mock-rerank"}))
        .into_response()
}
