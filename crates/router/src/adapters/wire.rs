//! Where every wire's knowledge meets the router: for each format a channel's upstream speaks —
//! its URLs, auth headers, request, whole answer, error body and stream translator — one method
//! each, matched over every `Wire` with no wildcard arm, so a new wire is one enum arm that the
//! compiler then asks for in each of them.

use axum::http::{header, HeaderName, HeaderValue};
use burncloud_service_api::ChannelKind;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::{anthropic, dashscope, gemini, llama, EventTranslator, Unconvertible};
use crate::upstream::UpstreamUrl;
use crate::usage::{checked_usage_in, Usage};

/// The format a channel's upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI's own format: requests and answers pass through.
    OpenAi,
    /// llama.cpp's llama-server (local deployments): OpenAI's format, and its own `/infill` for
    /// fill-in-the-middle.
    LlamaServer,
    /// Qwen's DashScope: OpenAI's format in its compatible mode, its own API for reranking.
    DashScope,
    Anthropic,
    Gemini,
}

/// The OpenAI-format operation a call asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    Rerank,
    /// `/v1/moderations`, passed through to OpenAI-format channels.
    Moderations,
    /// `/v1/images/generations`, passed through to OpenAI-format channels.
    ImageGenerations,
    /// `/v1/images/edits`: a multipart upload, passed through.
    ImageEdits,
    /// `/v1/audio/speech`: text in, audio bytes streamed back.
    AudioSpeech,
    /// `/v1/audio/transcriptions`: a multipart upload of audio, text back.
    AudioTranscriptions,
    /// `/v1/audio/translations`: the same, into English.
    AudioTranslations,
    /// `/v1/completions` with a `suffix`: the text between a prompt and a suffix (code completion
    /// at a cursor), as OpenAI-format servers take it, or llama-server's `/infill`.
    Infill,
}

/// How many endpoints a channel has parsed URLs for.
pub(crate) const ENDPOINTS: usize = 11;

impl Endpoint {
    /// Index into a channel's parsed endpoint URLs.
    pub(crate) fn url_index(self) -> usize {
        match self {
            Endpoint::ChatCompletions => 0,
            Endpoint::Completions => 1,
            Endpoint::Embeddings => 2,
            Endpoint::Rerank => 3,
            Endpoint::Moderations => 4,
            Endpoint::ImageGenerations => 5,
            Endpoint::ImageEdits => 6,
            Endpoint::AudioSpeech => 7,
            Endpoint::AudioTranscriptions => 8,
            Endpoint::AudioTranslations => 9,
            Endpoint::Infill => 10,
        }
    }

    pub(crate) fn route(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions | Endpoint::Infill => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
            Endpoint::Rerank => "/v1/rerank",
            Endpoint::Moderations => "/v1/moderations",
            Endpoint::ImageGenerations => "/v1/images/generations",
            Endpoint::ImageEdits => "/v1/images/edits",
            Endpoint::AudioSpeech => "/v1/audio/speech",
            Endpoint::AudioTranscriptions => "/v1/audio/transcriptions",
            Endpoint::AudioTranslations => "/v1/audio/translations",
        }
    }

    /// Whether the caller may ask for a stream of chat-style events (`stream: true`).
    pub(crate) fn can_stream(self) -> bool {
        match self {
            Endpoint::ChatCompletions | Endpoint::Completions | Endpoint::Infill => true,
            Endpoint::Embeddings
            | Endpoint::Rerank
            | Endpoint::Moderations
            | Endpoint::ImageGenerations
            | Endpoint::ImageEdits
            | Endpoint::AudioSpeech
            | Endpoint::AudioTranscriptions
            | Endpoint::AudioTranslations => false,
        }
    }

    /// Whether the request is a multipart form (a file upload) rather than JSON.
    pub(crate) fn takes_upload(self) -> bool {
        matches!(self, Endpoint::ImageEdits | Endpoint::AudioTranscriptions | Endpoint::AudioTranslations)
    }

    /// Whether the answer is media or text passed on as the upstream sent it (audio bytes, a
    /// transcript in any of its formats, a stream of its events), rather than a JSON object to check.
    pub(crate) fn answers_verbatim(self) -> bool {
        matches!(self, Endpoint::AudioSpeech | Endpoint::AudioTranscriptions | Endpoint::AudioTranslations)
    }

    /// The operations only OpenAI's own format serves.
    fn openai_only(self) -> bool {
        match self {
            Endpoint::Moderations
            | Endpoint::ImageGenerations
            | Endpoint::ImageEdits
            | Endpoint::AudioSpeech
            | Endpoint::AudioTranscriptions
            | Endpoint::AudioTranslations => true,
            Endpoint::ChatCompletions
            | Endpoint::Completions
            | Endpoint::Embeddings
            | Endpoint::Rerank
            | Endpoint::Infill => false,
        }
    }
}

/// Why a whole answer cannot go to the caller.
#[derive(Debug)]
pub(crate) enum BadAnswer {
    /// An OpenAI-format answer that is not a JSON object (what is wrong with it).
    Unreadable(String),
    /// Another format's answer that does not convert.
    Unconvertible(Unconvertible),
}

fn secret(value: String) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

impl Wire {
    pub fn of(kind: ChannelKind) -> Wire {
        match kind {
            ChannelKind::Openai | ChannelKind::Deepseek => Wire::OpenAi,
            ChannelKind::Local => Wire::LlamaServer,
            ChannelKind::Qwen => Wire::DashScope,
            ChannelKind::Anthropic => Wire::Anthropic,
            ChannelKind::Gemini => Wire::Gemini,
        }
    }

    /// The paths under the base URL for each `Endpoint`, in `url_index` order, parsed once per
    /// snapshot. Gemini puts the model in the path and DashScope reranks on
    /// another path of its host: those URLs are built per call (`url`).
    pub(crate) fn endpoint_paths(self) -> [&'static str; ENDPOINTS] {
        match self {
            Wire::OpenAi | Wire::LlamaServer => {
                // llama-server's own `/infill` is beside `/v1`: the URL parser resolves the `..`.
                let infill = if self == Wire::LlamaServer { "../infill" } else { "completions" };
                [
                    "chat/completions",
                    "completions",
                    "embeddings",
                    "rerank",
                    "moderations",
                    "images/generations",
                    "images/edits",
                    "audio/speech",
                    "audio/transcriptions",
                    "audio/translations",
                    infill,
                ]
            }
            Wire::DashScope => {
                ["chat/completions", "completions", "embeddings", "", "", "", "", "", "", "", "completions"]
            }
            Wire::Anthropic => ["v1/messages"; ENDPOINTS],
            Wire::Gemini => [""; ENDPOINTS],
        }
    }

    /// How the upstream takes its key: a bearer token, `x-api-key` (with the API version), or
    /// Gemini's `x-goog-api-key` — in a header, never in the URL, where keys leak into logs.
    pub(crate) fn auth_headers(self, key: &str) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = Vec::new();
        let key_header = |value: String| secret(value).filter(|_| !key.is_empty());
        match self {
            Wire::OpenAi | Wire::LlamaServer | Wire::DashScope => {
                headers.extend(key_header(format!("Bearer {key}")).map(|v| (header::AUTHORIZATION, v)))
            }
            Wire::Anthropic => {
                headers.extend(key_header(key.to_string()).map(|v| (HeaderName::from_static("x-api-key"), v)));
                headers.push((
                    HeaderName::from_static("anthropic-version"),
                    HeaderValue::from_static(anthropic::API_VERSION),
                ));
            }
            Wire::Gemini => {
                headers.extend(key_header(key.to_string()).map(|v| (HeaderName::from_static("x-goog-api-key"), v)))
            }
        }
        headers
    }

    /// The upstream's request for an OpenAI-format one; `None` means the wire is OpenAI's own and
    /// the request goes as it is (with the upstream's model name).
    pub(crate) fn request(
        self,
        endpoint: Endpoint,
        openai: &Map<String, Value>,
        upstream_model: &str,
        stream: bool,
    ) -> Result<Option<Value>, Unconvertible> {
        if endpoint.openai_only() {
            return match self {
                Wire::OpenAi | Wire::LlamaServer => Ok(None),
                Wire::DashScope | Wire::Anthropic | Wire::Gemini => Err(self.does_not_serve(endpoint)),
            };
        }
        match (self, endpoint) {
            (Wire::LlamaServer, Endpoint::Infill) => llama::infill_request(openai, stream).map(Some),
            (Wire::OpenAi | Wire::LlamaServer, _) => Ok(None),
            (
                Wire::DashScope,
                Endpoint::ChatCompletions | Endpoint::Completions | Endpoint::Embeddings | Endpoint::Infill,
            ) => Ok(None),
            (Wire::DashScope, Endpoint::Rerank) => dashscope::rerank_request(openai, upstream_model).map(Some),
            (Wire::Anthropic, Endpoint::ChatCompletions) => {
                anthropic::request(openai, upstream_model, stream).map(Some)
            }
            (Wire::Gemini, Endpoint::ChatCompletions) => gemini::request(openai).map(Some),
            (Wire::Gemini, Endpoint::Embeddings) => gemini::embeddings_request(openai, upstream_model).map(Some),
            (Wire::DashScope | Wire::Anthropic | Wire::Gemini, _) => Err(self.does_not_serve(endpoint)),
        }
    }

    /// Why a channel of this wire cannot take `endpoint`.
    fn does_not_serve(self, endpoint: Endpoint) -> Unconvertible {
        let route = endpoint.route();
        Unconvertible(match self {
            Wire::OpenAi | Wire::LlamaServer => format!("this channel does not serve {route}"),
            Wire::DashScope => format!("Qwen channels do not serve {route} in OpenAI's format"),
            Wire::Anthropic => format!("Anthropic channels serve chat completions, not {route}"),
            Wire::Gemini => format!("Gemini channels do not serve {route}"),
        })
    }

    /// Where the call goes: the channel's parsed endpoint URL, or for Gemini one built for the
    /// model and method.
    pub(crate) fn url(
        self,
        base_url: &str,
        urls: &[UpstreamUrl; ENDPOINTS],
        endpoint: Endpoint,
        upstream_model: &str,
        stream: bool,
    ) -> Result<UpstreamUrl, String> {
        match self {
            Wire::OpenAi | Wire::LlamaServer | Wire::Anthropic => Ok(urls[endpoint.url_index()].clone()),
            Wire::DashScope if endpoint == Endpoint::Rerank => dashscope::rerank_url(base_url).map(UpstreamUrl::new),
            Wire::DashScope => Ok(urls[endpoint.url_index()].clone()),
            Wire::Gemini => {
                let method = match (endpoint, stream) {
                    (Endpoint::Embeddings | Endpoint::Rerank, _) => "batchEmbedContents",
                    (Endpoint::ChatCompletions | Endpoint::Completions, true) => "streamGenerateContent",
                    (Endpoint::ChatCompletions | Endpoint::Completions, false) => "generateContent",
                    (_, _) => return Err(self.does_not_serve(endpoint).0),
                };
                reqwest::Url::parse(&format!("{base_url}/{}", gemini::path(upstream_model, method)))
                    .map(UpstreamUrl::new)
                    .map_err(|e| format!("the Gemini URL for model {upstream_model:?} does not parse: {e}"))
            }
        }
    }

    /// An upstream error body in OpenAI's shape.
    pub(crate) fn error_body(self, body: Bytes) -> Bytes {
        match self {
            Wire::OpenAi | Wire::LlamaServer => body,
            Wire::DashScope => dashscope::error_body(body),
            Wire::Anthropic => anthropic::error_body(&body),
            Wire::Gemini => gemini::error_body(&body),
        }
    }

    /// A whole answer in OpenAI's format, with the usage it reports. An OpenAI answer passes
    /// through as it is, so it is checked here: a caller must never get a 200 it cannot parse.
    pub(crate) fn answer(
        self,
        endpoint: Endpoint,
        body: Bytes,
        model: &str,
    ) -> Result<(Bytes, Option<Usage>), BadAnswer> {
        let converted =
            |result: Result<(Bytes, Option<Usage>), Unconvertible>| result.map_err(BadAnswer::Unconvertible);
        let checked = |body: Bytes| checked_usage_in(&body).map(|usage| (body, usage)).map_err(BadAnswer::Unreadable);
        if endpoint.openai_only() {
            return match self {
                Wire::OpenAi | Wire::LlamaServer => checked(body),
                Wire::DashScope | Wire::Anthropic | Wire::Gemini => {
                    Err(BadAnswer::Unconvertible(self.does_not_serve(endpoint)))
                }
            };
        }
        match (self, endpoint) {
            (Wire::LlamaServer, Endpoint::Infill) => converted(llama::infill_response(&body, model)),
            (Wire::OpenAi | Wire::LlamaServer, _)
            | (
                Wire::DashScope,
                Endpoint::ChatCompletions | Endpoint::Completions | Endpoint::Embeddings | Endpoint::Infill,
            ) => checked(body),
            (Wire::DashScope, Endpoint::Rerank) => converted(dashscope::rerank_response(&body, model)),
            (Wire::Gemini, Endpoint::Embeddings | Endpoint::Rerank) => {
                converted(gemini::embeddings_response(&body, model).map(|body| (body, None)))
            }
            (Wire::Gemini, Endpoint::ChatCompletions | Endpoint::Completions) => {
                converted(gemini::response(&body, model).map(|(body, usage)| (body, Some(usage))))
            }
            (Wire::Anthropic, _) => {
                converted(anthropic::response(&body, model).map(|(body, usage)| (body, Some(usage))))
            }
            (Wire::DashScope | Wire::Gemini, _) => Err(BadAnswer::Unconvertible(self.does_not_serve(endpoint))),
        }
    }

    /// What turns the upstream's stream events into OpenAI chunks; `None`: they are OpenAI chunks.
    pub(crate) fn stream_translator(self, endpoint: Endpoint, model: &str) -> Option<Box<dyn EventTranslator>> {
        match self {
            Wire::LlamaServer if endpoint == Endpoint::Infill => {
                Some(Box::new(llama::InfillStreamTranslator::new(model)))
            }
            Wire::OpenAi | Wire::LlamaServer | Wire::DashScope => None,
            Wire::Anthropic => Some(Box::new(anthropic::StreamTranslator::new(model))),
            Wire::Gemini => Some(Box::new(gemini::StreamTranslator::new(model))),
        }
    }
}
