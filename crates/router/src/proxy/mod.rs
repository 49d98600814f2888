//! The `/v1` handlers: authenticate, check, walk the candidate channels with failover, answer the
//! caller, and account for the call (usage, cost, one log row) whatever happens to the caller.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use burncloud_database::{now_ms, token_key_digest, NewLogRow};
use burncloud_service_api::{ChannelTestReport, EndReason, KeepAlive, Money, UsageSource};
use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::adapters::anthropic_inbound::{self, AnthropicStreamWriter};
use crate::adapters::gemini_inbound::{self, GeminiOp, GeminiStreamWriter};
use crate::adapters::ollama_inbound::{self, OllamaOp, OllamaStreamWriter};
use crate::adapters::responses_inbound::{self, ResponsesStreamWriter, ToolNames};
use crate::adapters::{anthropic, BadAnswer, Endpoint, EventTranslator, Wire};
use crate::balancer::Member;
use crate::breaker::{Admission, Verdict};
use crate::error::CallError;
use crate::limiter::{Limits, Reservation};
use crate::scrub::{scrub, truncate};
use crate::snapshot::{ChannelEntry, GroupEntry, TokenEntry};
use crate::sse::{event_data, has_key_with, malformed_data, SseSplitter};
use crate::upload::{wav_duration_ms, Upload};
use crate::upstream::{Outgoing, UpstreamResponse, UpstreamUrl};
use crate::usage::{collect_generated_text, count_tokens, estimate_prompt, usage_in, Usage};
use crate::{balancer, Gateway, REQUEST_ID_HEADER};

mod accounting;
mod admission;
mod dialects;
mod failover;
mod media;
mod streaming;

use accounting::*;
use admission::*;
pub(crate) use dialects::{dialect_error, Dialect};
pub(crate) use failover::with_request_id;
use failover::*;
use media::*;
use streaming::*;

pub(crate) async fn chat_completions(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle(gateway, Endpoint::ChatCompletions, headers, body).await
}

pub(crate) async fn completions(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle(gateway, Endpoint::Completions, headers, body).await
}

pub(crate) async fn embeddings(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle(gateway, Endpoint::Embeddings, headers, body).await
}

/// `POST /v1/rerank`: documents ordered by relevance to a query, in the shape Cohere and Jina
/// use and RAG clients send.
pub(crate) async fn rerank(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle(gateway, Endpoint::Rerank, headers, body).await
}

/// `POST /v1/moderations`: passed through to the channels that serve it in OpenAI's format.
pub(crate) async fn moderations(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle(gateway, Endpoint::Moderations, headers, body).await
}

/// `POST /v1/images/generations`: passed through to the channels that serve it in OpenAI's format.
pub(crate) async fn image_generations(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle(gateway, Endpoint::ImageGenerations, headers, body).await
}

/// `POST /v1/images/edits`: a multipart upload of images, passed through.
pub(crate) async fn image_edits(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle(gateway, Endpoint::ImageEdits, headers, body).await
}

/// `POST /v1/audio/speech`: text spoken, the audio streamed back as the upstream sends it.
pub(crate) async fn audio_speech(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle(gateway, Endpoint::AudioSpeech, headers, body).await
}

/// `POST /v1/audio/transcriptions`: a recording uploaded (spooled, never held whole in memory), its text back.
pub(crate) async fn audio_transcriptions(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(gateway, Endpoint::AudioTranscriptions, headers, body).await
}

/// `POST /v1/audio/translations`: a recording uploaded, its text back in English.
pub(crate) async fn audio_translations(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(gateway, Endpoint::AudioTranslations, headers, body).await
}

/// `POST /v1/responses`: OpenAI's Responses API in front of every channel.
pub(crate) async fn responses(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle_in(gateway, Endpoint::ChatCompletions, Dialect::Responses, headers, body).await
}

/// `POST /v1/responses/compact`: a conversation shortened to its user turns and one compaction item.
pub(crate) async fn responses_compact(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle_in(gateway, Endpoint::ChatCompletions, Dialect::ResponsesCompact, headers, body).await
}

/// `POST /v1/messages`: Anthropic's Messages API in front of every channel.
pub(crate) async fn messages(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle_in(gateway, Endpoint::ChatCompletions, Dialect::Anthropic, headers, body).await
}

/// `POST /v1/messages/count_tokens`: the prompt's size by the tokenizer, in Anthropic's shape.
pub(crate) async fn messages_count_tokens(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = new_request_id();
    let fail = |error: CallError| dialect_error(Dialect::Anthropic, error, &request_id);
    if let Err(error) = authenticate(&gateway, &headers) {
        return fail(error);
    }
    let bytes = match read_body(body, gateway.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => return fail(error),
    };
    let request = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => map,
        _ => return fail(CallError::BadRequest { message: "the body must be a JSON object".into(), param: None }),
    };
    match anthropic_inbound::to_openai(&request) {
        Ok(openai) => {
            let body = serde_json::json!({"input_tokens": estimate_prompt(&openai)});
            with_request_id(axum::Json(body).into_response(), &request_id)
        }
        Err(anthropic::Unconvertible(message)) => fail(CallError::BadRequest { message, param: None }),
    }
}

/// A request ID that sorts by time: 48 bits of Unix milliseconds, then 80 random bits, as 32 hex
/// digits after `req-`. Time first keeps the log's request-ID index growing at its right edge: a
/// random ID touched a different index page for every row, which made the log writer ten times
/// slower once the log held a million calls.
pub fn new_request_id() -> String {
    let stamped = (u128::from(now_ms() as u64 & ((1u64 << 48) - 1)) << 80) | (fastrand::u128(..) & ((1u128 << 80) - 1));
    // Not `format!` with padded hex, which cost more than the rest of the ID.
    let mut digits = [0u8; 32];
    hex::encode_to_slice(stamped.to_be_bytes(), &mut digits).expect("16 bytes are 32 hex digits");
    let mut id = String::with_capacity(36);
    id.push_str("req-");
    id.extend(digits.iter().map(|&digit| char::from(digit)));
    id
}

/// The BurnCloud key of a request: `Authorization: Bearer …` or `x-api-key`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if value.len() > 7 && value[..7].eq_ignore_ascii_case("bearer ") {
            return Some(value[7..].trim());
        }
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

pub(crate) fn authenticate(gateway: &Gateway, headers: &HeaderMap) -> Result<Arc<TokenEntry>, CallError> {
    let key = presented_key(headers).filter(|key| !key.is_empty()).ok_or_else(|| {
        CallError::InvalidApiKey(
            "You didn't provide an API key. Send your BurnCloud token as 'Authorization: Bearer sk-bc-…'.".into(),
        )
    })?;
    let snapshot = gateway.snapshot.load();
    let entry = snapshot
        .token_by_digest(&token_key_digest(key))
        .cloned()
        .ok_or_else(|| CallError::InvalidApiKey("Incorrect API key provided.".into()))?;
    usable(entry)
}

fn usable(entry: Arc<TokenEntry>) -> Result<Arc<TokenEntry>, CallError> {
    if !entry.token.enabled {
        return Err(CallError::InvalidApiKey(format!("The token '{}' is disabled.", entry.token.name)));
    }
    if entry.token.expires_at_ms.is_some_and(|expires| expires <= now_ms()) {
        return Err(CallError::InvalidApiKey(format!("The token '{}' has expired.", entry.token.name)));
    }
    Ok(entry)
}

/// Whether a caller at `peer` is on this machine (an IPv4 address mapped into IPv6 included).
pub(crate) fn is_local(peer: SocketAddr) -> bool {
    peer.ip().to_canonical().is_loopback()
}

/// The call's token: the key presented, or for a caller on this machine that sends none, the
/// token the user chose for such calls (Ollama clients that cannot send a key), if they chose one.
pub(crate) fn authenticate_from(
    gateway: &Gateway,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Arc<TokenEntry>, CallError> {
    if presented_key(headers).is_none_or(str::is_empty) && peer.is_some_and(is_local) {
        if let Some(entry) = gateway.snapshot.load().keyless_local.clone() {
            return usable(entry);
        }
    }
    authenticate(gateway, headers)
}

/// The peer address the server put beside the request.
pub(crate) fn peer_of(parts: &axum::http::request::Parts) -> Option<SocketAddr> {
    parts.extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|info| info.0)
}

/// Everything known about a call once it passed the checks.
struct Call {
    request_id: String,
    started: Instant,
    created_at_ms: i64,
    endpoint: Endpoint,
    token: Arc<TokenEntry>,
    /// The request as OpenAI's format, parsed on first use: an OpenAI-format call passed through
    /// unchanged never needs more than its model and stream flags.
    request: OnceLock<Map<String, Value>>,
    /// The caller's bytes the request is parsed from.
    body: Bytes,
    model: String,
    is_stream: bool,
    client_wants_usage: bool,
    reservation: Reservation,
    /// Counted among its token's and the account's calls under way (see `SpendLedger::start_call`).
    under_way: bool,
    dialect: Dialect,
    /// The caller's own request when it is not OpenAI's chat format (sent as-is to an upstream
    /// that speaks the caller's protocol; for `/v1/responses`, with a stored conversation expanded).
    native: Option<Map<String, Value>>,
    /// The caller's bytes, when an OpenAI upstream serving the model under the same name can take
    /// them unchanged: no need to write the parsed request out again.
    as_received: Option<Bytes>,
    /// What a `/v1/responses` call carries beside its chat form.
    responses: Option<Box<ResponsesCall>>,
    /// The local deployment serving the call, held loaded until the call is accounted for.
    lease: Option<burncloud_service_api::LocalLease>,
    /// How long a local model stays loaded after this call (Ollama's `keep_alive`).
    keep_alive: KeepAlive,
    /// Why the request cannot go to a channel that would need it converted (a Gemini request
    /// with Google's own tools): only channels that take it natively may serve it.
    unconvertible: Option<String>,
    /// A multipart upload's form, sent on to each channel tried.
    upload: Option<Arc<Upload>>,
    /// Units measured from the request itself (characters to speak, a WAV's length), for when the
    /// upstream does not report them.
    units: Usage,
}

/// A `/v1/responses` call: sent as it is to channels with their own Responses API, converted to
/// chat (the call's `request`) for every other channel, and answered as a Responses object.
struct ResponsesCall {
    /// Why the request cannot go to a chat channel, if it cannot.
    unconvertible: Option<String>,
    tools: ToolNames,
    /// The response object before any output.
    skeleton: Value,
    /// How many of the conversation's last input items are this call's own (the rest is a stored
    /// conversation it continues).
    own_input: usize,
    store: bool,
}

impl Call {
    /// The conversation a Responses call carries: its input items, a stored one it continues
    /// included.
    fn conversation(&self) -> std::borrow::Cow<'_, [Value]> {
        let items = self.native.as_ref().map(responses_inbound::input_items);
        items.and_then(Result::ok).unwrap_or_default()
    }

    /// Whether the caller and the channel speak the same protocol (see `Dialect::native_on`).
    fn passes_natively(&self, channel: &ChannelEntry) -> bool {
        self.dialect.native_on(channel)
    }
}

impl Call {
    fn error_response(&self, error: &CallError) -> Response {
        dialect_error(self.dialect, error.clone(), &self.request_id)
    }

    /// The whole request; `admit` has checked that `body` is a JSON object.
    fn request(&self) -> &Map<String, Value> {
        self.request.get_or_init(|| match serde_json::from_slice(&self.body) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        })
    }

    fn request_mut(&mut self) -> &mut Map<String, Value> {
        self.request();
        self.request.get_mut().expect("parsed just above")
    }
}

/// The fields of a request every call needs; the rest is skipped over, not built.
#[derive(serde::Deserialize)]
struct RequestPeek {
    model: Option<Value>,
    stream: Option<Value>,
    stream_options: Option<Value>,
}

/// How a call ended, for its log row.
struct Outcome {
    channel: Option<Arc<ChannelEntry>>,
    status: u16,
    error: Option<String>,
    usage: Usage,
    usage_source: UsageSource,
    first_token_ms: Option<u64>,
    end_reason: EndReason,
    attempts: u32,
}

impl Outcome {
    fn failed(channel: Option<Arc<ChannelEntry>>, error: &CallError, attempts: u32, reason: EndReason) -> Outcome {
        Outcome {
            channel,
            status: error.status_code().as_u16(),
            error: Some(truncate(&error.message(), 2000)),
            usage: Usage::default(),
            usage_source: UsageSource::Upstream,
            first_token_ms: None,
            end_reason: reason,
            attempts,
        }
    }
}

pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, CallError> {
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(error) => {
            let too_large =
                std::error::Error::source(&error).is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if too_large {
                Err(CallError::PayloadTooLarge(limit))
            } else {
                Err(CallError::BadRequest { message: format!("could not read the request body: {error}"), param: None })
            }
        }
    }
}

async fn handle(gateway: Arc<Gateway>, endpoint: Endpoint, headers: HeaderMap, body: Body) -> Response {
    handle_in(gateway, endpoint, Dialect::OpenAi, headers, body).await
}

pub(crate) async fn handle_in(
    gateway: Arc<Gateway>,
    endpoint: Endpoint,
    dialect: Dialect,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_from(gateway, endpoint, dialect, headers, None, body).await
}

/// A call, from `peer` where keyless local calls may be allowed.
async fn handle_from(
    gateway: Arc<Gateway>,
    endpoint: Endpoint,
    dialect: Dialect,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
    body: Body,
) -> Response {
    let started = Instant::now();
    let created_at_ms = now_ms();
    let request_id = new_request_id();
    // Held until the answer is handed over; a stream's pump then runs on without a slot.
    let Ok(_slot) = gateway.call_slots.clone().try_acquire_owned() else {
        let error = CallError::Unavailable {
            message: "BurnCloud is serving as many calls as it is set to; try again in a moment.".into(),
            retry_after_secs: 1,
        };
        return dialect_error(dialect, error, &request_id);
    };
    let token = match authenticate_from(&gateway, &headers, peer) {
        Ok(token) => token,
        Err(error) => return dialect_error(dialect, error, &request_id),
    };
    let mut call = Call {
        request_id,
        started,
        created_at_ms,
        endpoint,
        token,
        request: OnceLock::new(),
        body: Bytes::new(),
        model: String::new(),
        is_stream: false,
        client_wants_usage: false,
        reservation: Reservation::default(),
        under_way: false,
        dialect,
        native: None,
        as_received: None,
        responses: None,
        lease: None,
        keep_alive: KeepAlive::AsSet,
        unconvertible: None,
        upload: None,
        units: Usage::default(),
    };
    let candidates = match admit(&gateway, &mut call, &headers, body).await {
        Ok(candidates) => candidates,
        Err(error) => {
            let response = call.error_response(&error);
            gateway.in_flight.fetch_add(1, Ordering::Relaxed);
            record(&gateway, &call, Outcome::failed(None, &error, 0, EndReason::Rejected)).await;
            return response;
        }
    };
    gateway.in_flight.fetch_add(1, Ordering::Relaxed);
    let (reply, mut response) = oneshot::channel();
    // The call runs inline — no hand-off to another task or thread on the way — until its
    // response is ready. If the caller hangs up first, or a stream keeps going after its
    // response, the rest is spawned so the call is always finished and accounted for.
    let mut work = FinishOnDrop::new(run(gateway, call, candidates, reply));
    tokio::select! {
        biased;
        answer = &mut response => answer.unwrap_or_else(|_| unanswered()),
        () = &mut work => response.await.unwrap_or_else(|_| unanswered()),
    }
}

fn unanswered() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "the call ended without an answer").into_response()
}

/// A future that, if dropped before it completes, is spawned to run to completion.
struct FinishOnDrop {
    work: Option<Pin<Box<dyn Future<Output = ()> + Send + 'static>>>,
}

impl FinishOnDrop {
    fn new(work: impl Future<Output = ()> + Send + 'static) -> FinishOnDrop {
        FinishOnDrop { work: Some(Box::pin(work)) }
    }
}

impl Future for FinishOnDrop {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(work) = self.work.as_mut() else { return Poll::Ready(()) };
        let poll = work.as_mut().poll(cx);
        if poll.is_ready() {
            self.work = None;
        }
        poll
    }
}

impl Drop for FinishOnDrop {
    #[expect(
        clippy::disallowed_methods,
        reason = "the rest of a call whose caller left: it holds the call's in-flight count, which `Gateway::drain` waits on"
    )]
    fn drop(&mut self) {
        if let (Some(work), Ok(runtime)) = (self.work.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(work);
        }
    }
}

fn unanswerable() -> CallError {
    CallError::UpstreamUnreachable("the call lost its Responses request".into())
}

/// `GET /v1/models`: the models this token may use.
pub(crate) async fn list_models(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let request_id = new_request_id();
    let token = match authenticate(&gateway, &headers) {
        Ok(token) => token,
        Err(error) => return error.into_response_with_id(&request_id),
    };
    let data: Vec<Value> = reachable_models(&gateway, &token)
        .into_iter()
        .map(|(id, owner)| serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
        .collect();
    let body = serde_json::json!({"object": "list", "data": data});
    with_request_id(axum::Json(body).into_response(), &request_id)
}

/// Every model `token` may call, sorted, with the kind of channel that serves it: its group's
/// channels' models, and the local deployments (loaded or not: a call loads one).
pub(crate) fn reachable_models(gateway: &Gateway, token: &TokenEntry) -> Vec<(String, &'static str)> {
    let snapshot = gateway.snapshot.load();
    let mut models: Vec<(String, &'static str)> = Vec::new();
    let allowed = |model: &str| token.token.models.is_empty() || token.token.models.iter().any(|m| m == model);
    let group = snapshot.group(&token.token.group);
    let members = group.map(|g| g.members.as_slice()).unwrap_or_default();
    for member in members {
        let channel = &member.channel.channel;
        for model in channel.models.iter().chain(channel.model_mapping.keys()) {
            if allowed(model) && !models.iter().any(|(known, _)| known == model) {
                models.push((model.clone(), channel.kind.as_str()));
            }
        }
    }
    let local = match (group.filter(|g| g.all_channels), gateway.local.get()) {
        (Some(_), Some(local)) => local.local_models(),
        _ => Vec::new(),
    };
    for alias in local {
        if allowed(&alias) && !models.iter().any(|(known, _)| *known == alias) {
            models.push((alias, burncloud_service_api::ChannelKind::Local.as_str()));
        }
    }
    models.sort_unstable();
    models
}

/// `POST /api/chat`: Ollama's chat in front of every channel.
pub(crate) async fn ollama_chat(State(gateway): State<Arc<Gateway>>, request: axum::extract::Request) -> Response {
    ollama_call(gateway, Endpoint::ChatCompletions, OllamaOp::Chat, request).await
}

/// `POST /api/generate`: a prompt completed, as Ollama does it, through chat.
pub(crate) async fn ollama_generate(State(gateway): State<Arc<Gateway>>, request: axum::extract::Request) -> Response {
    ollama_call(gateway, Endpoint::ChatCompletions, OllamaOp::Generate, request).await
}

/// `POST /api/embed`: one or more inputs embedded.
pub(crate) async fn ollama_embed(State(gateway): State<Arc<Gateway>>, request: axum::extract::Request) -> Response {
    ollama_call(gateway, Endpoint::Embeddings, OllamaOp::Embed, request).await
}

/// `POST /api/embeddings`: Ollama's older single-prompt embedding.
pub(crate) async fn ollama_embeddings(
    State(gateway): State<Arc<Gateway>>,
    request: axum::extract::Request,
) -> Response {
    ollama_call(gateway, Endpoint::Embeddings, OllamaOp::Embeddings, request).await
}

/// Ollama's calls may come keyless from this machine (see `authenticate_from`); a chat or generate
/// with nothing to generate only loads (or unloads) its model.
async fn ollama_call(
    gateway: Arc<Gateway>,
    endpoint: Endpoint,
    op: OllamaOp,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let peer = peer_of(&parts);
    let dialect = Dialect::Ollama(op);
    let bytes = match read_body(body, gateway.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => return dialect_error(dialect, error, &new_request_id()),
    };
    let native = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(native)) if ollama_inbound::only_loads(op, &native) => native,
        Ok(Value::Object(native)) if ollama_inbound::fills_in(op, &native) => {
            return handle_from(gateway, Endpoint::Completions, dialect, parts.headers, peer, Body::from(bytes)).await
        }
        _ => return handle_from(gateway, endpoint, dialect, parts.headers, peer, Body::from(bytes)).await,
    };
    let request_id = new_request_id();
    match load_only(&gateway, op, &parts.headers, peer, &native).await {
        Ok(answer) => with_request_id(answer, &request_id),
        Err(error) => dialect_error(dialect, error, &request_id),
    }
}

/// Loads a local model (or unloads it, with `keep_alive: 0`) and answers with nothing generated;
/// a hosted model has nothing to load.
async fn load_only(
    gateway: &Gateway,
    op: OllamaOp,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    native: &Map<String, Value>,
) -> Result<Response, CallError> {
    let token = authenticate_from(gateway, headers, peer)?;
    let bad = |message: String| CallError::BadRequest { message, param: None };
    let model = native.get("model").and_then(Value::as_str).filter(|m| !m.is_empty());
    let model = model.ok_or_else(|| bad("model: a model name is required".into()))?;
    let keep = ollama_inbound::keep_alive(native).map_err(|anthropic::Unconvertible(message)| bad(message))?;
    if !reachable_models(gateway, &token).iter().any(|(name, _)| name == model) {
        return Err(CallError::ModelNotFound(format!("model '{model}' not found")));
    }
    let unloaded = keep == KeepAlive::For(std::time::Duration::ZERO);
    // A hosted model has nothing to load; `acquire` and `keep_alive` ignore names no deployment has.
    if let Some(local) = gateway.local.get() {
        if !unloaded {
            if let Some(wake) = local.acquire(model) {
                drop(wake.await?);
            }
        }
        local.keep_alive(model, keep);
    }
    let mut response = Response::new(Body::from(ollama_inbound::loaded(op, model, unloaded)));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_callers_on_this_machine_count_as_local() {
        for local in ["127.0.0.1:5000", "127.8.9.10:1", "[::1]:5000", "[::ffff:127.0.0.1]:5000"] {
            assert!(is_local(local.parse().unwrap()), "{local}");
        }
        for remote in ["10.0.0.7:5000", "192.168.1.2:80", "[::ffff:10.0.0.7]:5000", "[2001:db8::1]:443", "0.0.0.0:1"] {
            assert!(!is_local(remote.parse().unwrap()), "{remote}");
        }
    }

    #[test]
    fn request_ids_are_unique_and_sort_by_time() {
        let earlier = new_request_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let ids: Vec<String> = (0..1000).map(|_| new_request_id()).collect();
        for id in &ids {
            assert_eq!(id.len(), 36, "{id}");
            assert!(id.starts_with("req-") && id[4..].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
            assert!(*id > earlier, "{id} should sort after {earlier}");
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        let stamped = i64::from_str_radix(&earlier[4..16], 16).unwrap();
        assert!((now_ms() - stamped).abs() < 60_000, "the ID carries the current time: {stamped} vs {}", now_ms());
    }

    fn message(result: Result<RequestPeek, CallError>) -> String {
        match result {
            Err(CallError::BadRequest { message, .. }) => message,
            Err(other) => panic!("not a bad request: {other:?}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn the_peek_reads_model_and_stream_flags_and_skips_the_rest() {
        let body = br#" {"messages":[{"role":"user","content":"hi \u00e9"}],"model":"m","stream":true,
            "stream_options":{"include_usage":true},"tools":[{"type":"function"}]}"#;
        let peek = peek_request(body).unwrap();
        assert_eq!(peek.model, Some(Value::String("m".into())));
        assert_eq!(peek.stream, Some(Value::Bool(true)));
        assert_eq!(peek.stream_options, Some(serde_json::json!({"include_usage": true})));
    }

    #[test]
    fn the_peek_answers_unusual_bodies_as_the_full_parser_does() {
        let peek = peek_request(br#"{"model":"first","model":"second"}"#).unwrap();
        assert_eq!(peek.model, Some(Value::String("second".into())), "the last of repeated keys wins");
        assert!(message(peek_request(b"[1, 2]")).contains("must be a JSON object"));
        assert!(message(peek_request(b"\"model\"")).contains("must be a JSON object"));
        assert!(message(peek_request(br#"{"model":"#)).contains("could not parse"));
        assert!(message(peek_request(br#"{"model":"m"} trailing"#)).contains("could not parse"));
        let not_utf8 = b"{\"model\":\"m\",\"messages\":[{\"content\":\"\xff\"}]}";
        assert!(message(peek_request(not_utf8)).contains("not UTF-8"));
    }
}
