//! The data plane's routes as data: what each takes, what it answers and in which protocol's error
//! shape, for the OpenAPI document the console serves. A test sends each one to the real router,
//! so a route listed here that the router does not serve fails the build's tests.

/// The protocol whose error body a route answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error": {"message", "type", "param", "code"}}`
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`
    Anthropic,
    /// `{"error": {"code", "message", "status"}}`
    Gemini,
    /// `{"error": "…"}`
    Ollama,
}

/// What a route's request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestBody {
    None,
    /// A JSON object in the protocol's own request format.
    Json,
    /// A `multipart/form-data` upload with a `model` field.
    Form,
}

/// One data-plane operation.
#[derive(Clone, Copy, Debug)]
pub struct DataRoute {
    pub method: &'static str,
    /// As OpenAPI writes it: `{name}` for a path parameter.
    pub path: &'static str,
    pub summary: &'static str,
    pub body: RequestBody,
    /// The media types of a successful answer.
    pub answers: &'static [&'static str],
    pub errors: ErrorShape,
    /// Whether it takes no key at all.
    pub open: bool,
    /// The protocol's own reference, for the request and answer formats.
    pub reference: &'static str,
}

const JSON: &[&str] = &["application/json"];
const JSON_OR_EVENTS: &[&str] = &["application/json", "text/event-stream"];
const OLLAMA_STREAM: &[&str] = &["application/json", "application/x-ndjson"];
const OPENAI: &str = "https://platform.openai.com/docs/api-reference";
const ANTHROPIC: &str = "https://docs.anthropic.com/en/api/messages";
const GEMINI: &str = "https://ai.google.dev/api";
const OLLAMA: &str = "https://github.com/ollama/ollama/blob/main/docs/api.md";

const fn route(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: RequestBody,
    answers: &'static [&'static str],
    errors: ErrorShape,
    reference: &'static str,
) -> DataRoute {
    DataRoute { method, path, summary, body, answers, errors, open: false, reference }
}

use ErrorShape::{Anthropic, Gemini, Ollama, OpenAi};
use RequestBody::{Form, Json, None as Nothing};

/// Every data-plane operation `create_router_app` serves.
pub const DATA_ROUTES: &[DataRoute] = &[
    route("post", "/v1/chat/completions", "A chat completion", Json, JSON_OR_EVENTS, OpenAi, OPENAI),
    route(
        "post",
        "/v1/completions",
        "A text completion (with a suffix: fill-in-the-middle)",
        Json,
        JSON_OR_EVENTS,
        OpenAi,
        OPENAI,
    ),
    route("post", "/v1/embeddings", "Embeddings", Json, JSON, OpenAi, OPENAI),
    route("post", "/v1/rerank", "Documents ordered by relevance (Cohere / Jina shape)", Json, JSON, OpenAi, OPENAI),
    route("post", "/v1/moderations", "A moderation", Json, JSON, OpenAi, OPENAI),
    route("post", "/v1/images/generations", "Images drawn", Json, JSON, OpenAi, OPENAI),
    route("post", "/v1/images/edits", "Images edited (uploaded as a form)", Form, JSON, OpenAi, OPENAI),
    route(
        "post",
        "/v1/audio/speech",
        "Text spoken, the audio streamed back",
        Json,
        &["audio/mpeg", "audio/opus", "audio/aac", "audio/flac", "audio/wav", "audio/pcm", "text/event-stream"],
        OpenAi,
        OPENAI,
    ),
    route(
        "post",
        "/v1/audio/transcriptions",
        "A recording transcribed (uploaded as a form)",
        Form,
        &["application/json", "text/plain", "text/event-stream"],
        OpenAi,
        OPENAI,
    ),
    route(
        "post",
        "/v1/audio/translations",
        "A recording translated into English (uploaded as a form)",
        Form,
        &["application/json", "text/plain"],
        OpenAi,
        OPENAI,
    ),
    route("get", "/v1/models", "The models this key may call", Nothing, JSON, OpenAi, OPENAI),
    route("post", "/v1/responses", "A response (OpenAI's Responses API)", Json, JSON_OR_EVENTS, OpenAi, OPENAI),
    route("post", "/v1/responses/compact", "A conversation compacted", Json, JSON, OpenAi, OPENAI),
    route("get", "/v1/responses/{id}", "A stored response", Nothing, JSON, OpenAi, OPENAI),
    route("delete", "/v1/responses/{id}", "Delete a stored response", Nothing, JSON, OpenAi, OPENAI),
    route("post", "/v1/messages", "A message (Anthropic's Messages API)", Json, JSON_OR_EVENTS, Anthropic, ANTHROPIC),
    route("post", "/v1/messages/count_tokens", "A message's input tokens", Json, JSON, Anthropic, ANTHROPIC),
    route("get", "/v1/key", "This key's group, limits, spend and expiry", Nothing, JSON, OpenAi, OPENAI),
    route(
        "get",
        "/v1/dashboard/billing/subscription",
        "This key's limit (one-api's shape)",
        Nothing,
        JSON,
        OpenAi,
        OPENAI,
    ),
    route("get", "/v1/dashboard/billing/usage", "This key's spend (one-api's shape)", Nothing, JSON, OpenAi, OPENAI),
    route("get", "/v1beta/models", "The models this key may call (Gemini's shape)", Nothing, JSON, Gemini, GEMINI),
    route("get", "/v1beta/models/{model}", "One model (Gemini's shape)", Nothing, JSON, Gemini, GEMINI),
    route("post", "/v1beta/models/{model}:generateContent", "Content generated", Json, JSON, Gemini, GEMINI),
    route(
        "post",
        "/v1beta/models/{model}:streamGenerateContent",
        "Content generated as it comes (`alt=sse`: events, else a JSON array)",
        Json,
        JSON_OR_EVENTS,
        Gemini,
        GEMINI,
    ),
    route("post", "/v1beta/models/{model}:countTokens", "A request's tokens", Json, JSON, Gemini, GEMINI),
    route("post", "/v1beta/models/{model}:embedContent", "An embedding", Json, JSON, Gemini, GEMINI),
    route("post", "/v1beta/models/{model}:batchEmbedContents", "Embeddings", Json, JSON, Gemini, GEMINI),
    DataRoute { open: true, ..route("get", "/api/version", "The Ollama API version", Nothing, JSON, Ollama, OLLAMA) },
    route("get", "/api/tags", "The models this key may call (Ollama's shape)", Nothing, JSON, Ollama, OLLAMA),
    route("get", "/api/ps", "The local models loaded now", Nothing, JSON, Ollama, OLLAMA),
    route("post", "/api/show", "One model's details", Json, JSON, Ollama, OLLAMA),
    route("post", "/api/chat", "A chat (NDJSON unless `stream: false`)", Json, OLLAMA_STREAM, Ollama, OLLAMA),
    route(
        "post",
        "/api/generate",
        "A completion (with a suffix: fill-in-the-middle; without a prompt: load or unload)",
        Json,
        OLLAMA_STREAM,
        Ollama,
        OLLAMA,
    ),
    route("post", "/api/embed", "Embeddings", Json, JSON, Ollama, OLLAMA),
    route("post", "/api/embeddings", "One embedding (Ollama's older route)", Json, JSON, Ollama, OLLAMA),
    refused("post", "/api/pull"),
    refused("post", "/api/push"),
    refused("post", "/api/create"),
    refused("post", "/api/copy"),
    refused("delete", "/api/delete"),
];

/// Ollama's model management, answered 501 for everyone: models are managed on the Models page.
const fn refused(method: &'static str, path: &'static str) -> DataRoute {
    let summary = "Refused (501): models are managed on BurnCloud's Models and Deployments pages";
    DataRoute { open: true, ..route(method, path, summary, Json, JSON, Ollama, OLLAMA) }
}
