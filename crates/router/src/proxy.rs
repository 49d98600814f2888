//! The `/v1` handlers: authenticate, check, walk the candidate channels with failover, answer the
//! caller, and account for the call (usage, cost, one log row) whatever happens to the caller.

use std::future::Future;
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
use burncloud_service_api::{ChannelTestReport, EndReason, Money, UsageSource};
use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::adapters::anthropic_inbound::{self, AnthropicStreamWriter};
use crate::adapters::responses_inbound::{self, ResponsesStreamWriter, ToolNames};
use crate::adapters::{anthropic, gemini, EventTranslator, Wire};
use crate::balancer::Member;
use crate::breaker::{Admission, Verdict};
use crate::error::GatewayError;
use crate::limiter::{Limits, Reservation};
use crate::scrub::{scrub, truncate};
use crate::snapshot::{ChannelEntry, TokenEntry};
use crate::sse::{event_data, has_key_with, malformed_data, SseSplitter};
use crate::upstream::{UpstreamResponse, UpstreamUrl};
use crate::usage::{checked_usage_in, collect_generated_text, count_tokens, estimate_prompt, usage_in, Usage};
use crate::{balancer, Gateway, REQUEST_ID_HEADER};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
}

impl Endpoint {
    /// Index into [`ChannelEntry::urls`].
    fn url_index(self) -> usize {
        match self {
            Endpoint::ChatCompletions => 0,
            Endpoint::Completions => 1,
            Endpoint::Embeddings => 2,
        }
    }

    fn route(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
        }
    }

    fn can_stream(self) -> bool {
        !matches!(self, Endpoint::Embeddings)
    }
}

pub(crate) async fn chat_completions(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle(gateway, Endpoint::ChatCompletions, headers, body).await
}

pub(crate) async fn completions(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle(gateway, Endpoint::Completions, headers, body).await
}

pub(crate) async fn embeddings(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle(gateway, Endpoint::Embeddings, headers, body).await
}

/// `POST /v1/responses`: OpenAI's Responses API in front of every channel.
pub(crate) async fn responses(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    handle_in(gateway, Endpoint::ChatCompletions, Dialect::Responses, headers, body).await
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
    let fail = |error: GatewayError| dialect_error(Dialect::Anthropic, error, &request_id);
    if let Err(error) = authenticate(&gateway, &headers) {
        return fail(error);
    }
    let bytes = match read_body(body, gateway.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(error) => return fail(error),
    };
    let request = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => map,
        _ => return fail(GatewayError::BadRequest { message: "the body must be a JSON object".into(), param: None }),
    };
    match anthropic_inbound::to_openai(&request) {
        Ok(openai) => {
            let body = serde_json::json!({"input_tokens": estimate_prompt(&openai)});
            with_request_id(axum::Json(body).into_response(), &request_id)
        }
        Err(anthropic::Unconvertible(message)) => fail(GatewayError::BadRequest { message, param: None }),
    }
}

/// The protocol a caller speaks: its requests, answers, streams and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    OpenAi,
    Anthropic,
    /// OpenAI's Responses API (`/v1/responses`).
    Responses,
}

impl Dialect {
    fn route(self, endpoint: Endpoint) -> &'static str {
        match self {
            Dialect::OpenAi => endpoint.route(),
            Dialect::Anthropic => "/v1/messages",
            Dialect::Responses => "/v1/responses",
        }
    }
}

/// An error as the caller's protocol shapes it.
pub(crate) fn dialect_error(dialect: Dialect, error: GatewayError, request_id: &str) -> Response {
    let message = error.message();
    let mut response = error.into_response_with_id(request_id);
    match dialect {
        Dialect::OpenAi | Dialect::Responses => {}
        Dialect::Anthropic => {
            let status = response.status().as_u16();
            *response.body_mut() = Body::from(anthropic_inbound::error_body(status, &message));
        }
    }
    response
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

pub(crate) fn authenticate(gateway: &Gateway, headers: &HeaderMap) -> Result<Arc<TokenEntry>, GatewayError> {
    let key = presented_key(headers).filter(|key| !key.is_empty()).ok_or_else(|| {
        GatewayError::InvalidApiKey(
            "You didn't provide an API key. Send your BurnCloud token as 'Authorization: Bearer sk-bc-…'.".into(),
        )
    })?;
    let snapshot = gateway.snapshot.load();
    let entry = snapshot
        .token_by_digest(&token_key_digest(key))
        .cloned()
        .ok_or_else(|| GatewayError::InvalidApiKey("Incorrect API key provided.".into()))?;
    if !entry.token.enabled {
        return Err(GatewayError::InvalidApiKey(format!("The token '{}' is disabled.", entry.token.name)));
    }
    if entry.token.expires_at_ms.is_some_and(|expires| expires <= now_ms()) {
        return Err(GatewayError::InvalidApiKey(format!("The token '{}' has expired.", entry.token.name)));
    }
    Ok(entry)
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
    dialect: Dialect,
    /// The caller's own request when it is not OpenAI's format (sent as-is to a same-format upstream).
    native: Option<Map<String, Value>>,
    /// The caller's bytes, when an OpenAI upstream serving the model under the same name can take
    /// them unchanged: no need to write the parsed request out again.
    as_received: Option<Bytes>,
    /// What a `/v1/responses` call carries beside its chat form.
    responses: Option<Box<ResponsesCall>>,
}

/// A `/v1/responses` call: sent as it is to channels with their own Responses API, converted to
/// chat (the call's `request`) for every other channel, and answered as a Responses object.
struct ResponsesCall {
    /// The caller's request, with a `previous_response_id` stored here expanded into its items.
    native: Map<String, Value>,
    /// Why the request cannot go to a chat channel, if it cannot.
    unconvertible: Option<String>,
    tools: ToolNames,
    /// The response object before any output.
    skeleton: Value,
    /// The conversation before this call, and this call's own input items.
    history: Vec<Value>,
    input: Vec<Value>,
    store: bool,
}

impl ResponsesCall {
    /// The request for an upstream's own Responses API, with the upstream's model name.
    fn native_body(&self, upstream_model: &str) -> Bytes {
        let mut native = self.native.clone();
        native.insert("model".into(), Value::String(upstream_model.to_string()));
        Bytes::from(Value::Object(native).to_string())
    }
}

impl Call {
    /// Whether this attempt passes a Responses call through to the channel's own Responses API.
    fn is_native_responses(&self, channel: &ChannelEntry) -> bool {
        self.responses.is_some() && channel.responses_url.is_some()
    }
}

impl Call {
    fn error_response(&self, error: &GatewayError) -> Response {
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
    fn failed(channel: Option<Arc<ChannelEntry>>, error: &GatewayError, attempts: u32, reason: EndReason) -> Outcome {
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

async fn read_body(body: Body, limit: usize) -> Result<Bytes, GatewayError> {
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(error) => {
            let too_large =
                std::error::Error::source(&error).is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if too_large {
                Err(GatewayError::PayloadTooLarge(limit))
            } else {
                Err(GatewayError::BadRequest {
                    message: format!("could not read the request body: {error}"),
                    param: None,
                })
            }
        }
    }
}

async fn handle(gateway: Arc<Gateway>, endpoint: Endpoint, headers: HeaderMap, body: Body) -> Response {
    handle_in(gateway, endpoint, Dialect::OpenAi, headers, body).await
}

async fn handle_in(
    gateway: Arc<Gateway>,
    endpoint: Endpoint,
    dialect: Dialect,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let created_at_ms = now_ms();
    let request_id = new_request_id();
    // Held until the answer is handed over; a stream's pump then runs on without a slot.
    let Ok(_slot) = gateway.call_slots.clone().try_acquire_owned() else {
        let error = GatewayError::Unavailable {
            message: "BurnCloud is serving as many calls as it is set to; try again in a moment.".into(),
            retry_after_secs: 1,
        };
        return dialect_error(dialect, error, &request_id);
    };
    let token = match authenticate(&gateway, &headers) {
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
        dialect,
        native: None,
        as_received: None,
        responses: None,
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
    fn drop(&mut self) {
        if let (Some(work), Ok(runtime)) = (self.work.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(work);
        }
    }
}

/// Parses and checks the request; returns the channels to try, in order.
async fn admit(
    gateway: &Gateway,
    call: &mut Call,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<Arc<ChannelEntry>>, GatewayError> {
    let limit = gateway.config.max_body_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(GatewayError::PayloadTooLarge(limit));
    }
    let bytes = read_body(body, limit).await?;
    let peek = peek_request(&bytes)?;
    call.body = bytes;
    let (model, stream, stream_options) = match call.dialect {
        Dialect::OpenAi => (peek.model, peek.stream, peek.stream_options),
        Dialect::Anthropic => {
            let native = match serde_json::from_slice::<Value>(&call.body) {
                Ok(Value::Object(native)) => native,
                _ => Map::new(),
            };
            let request = anthropic_inbound::to_openai(&native)
                .map_err(|anthropic::Unconvertible(message)| GatewayError::BadRequest { message, param: None })?;
            call.native = Some(native);
            let field = |name: &str| request.get(name).cloned();
            let fields = (field("model"), field("stream"), field("stream_options"));
            let _ = call.request.set(request);
            fields
        }
        Dialect::Responses => {
            let native = match serde_json::from_slice::<Value>(&call.body) {
                Ok(Value::Object(native)) => native,
                _ => Map::new(),
            };
            let prepared = prepare_responses(gateway, &call.token, native, &call.request_id).await?;
            let field = |name: &str| prepared.native.get(name).cloned();
            let stream_options = (field("stream") == Some(Value::Bool(true))).then(|| json!({"include_usage": true}));
            let fields = (field("model"), field("stream"), stream_options);
            call.responses = Some(Box::new(prepared.call));
            let _ = call.request.set(prepared.chat);
            fields
        }
    };
    call.model = match model {
        Some(Value::String(model)) if !model.trim().is_empty() => model,
        _ => {
            return Err(GatewayError::BadRequest {
                message: "you must provide a model parameter".into(),
                param: Some("model"),
            })
        }
    };
    call.is_stream = call.endpoint.can_stream() && stream == Some(Value::Bool(true));
    if call.is_stream {
        call.client_wants_usage =
            stream_options.as_ref().and_then(|o| o.get("include_usage")) == Some(&Value::Bool(true));
    }
    if call.dialect == Dialect::OpenAi && (!call.is_stream || call.client_wants_usage) {
        call.as_received = Some(call.body.clone());
    }
    if call.is_stream && !call.client_wants_usage {
        // Ask for usage whether or not the caller did: it is what the call is billed by.
        let options = call.request_mut().entry("stream_options").or_insert_with(|| Value::Object(Map::new()));
        if !options.is_object() {
            *options = Value::Object(Map::new());
        }
        if let Some(options) = options.as_object_mut() {
            options.insert("include_usage".into(), Value::Bool(true));
        }
    }
    let token = &call.token.token;
    if !token.models.is_empty() && !token.models.contains(&call.model) {
        return Err(GatewayError::ModelNotAllowed(format!(
            "The token '{}' is not allowed to use the model '{}'.",
            token.name, call.model
        )));
    }
    let snapshot = gateway.snapshot.load();
    if let Some(limit) = token.quota_limit {
        if Money(call.token.used.load(Ordering::Relaxed)) >= limit {
            return Err(GatewayError::InsufficientQuota(format!(
                "You exceeded your current quota: the token '{}' has used its {limit} limit.",
                token.name
            )));
        }
    }
    if let Some(credit) = snapshot.account_credit {
        if gateway.ledger.account_used() >= credit {
            return Err(GatewayError::InsufficientQuota(
                "You exceeded your current quota: the account balance is spent. Top up in the console.".into(),
            ));
        }
    }
    let group = snapshot.group(&token.group);
    let members: Vec<&Member> =
        group.map(|g| g.members.iter().filter(|m| m.channel.channel.serves(&call.model)).collect()).unwrap_or_default();
    let Some(group) = group.filter(|_| !members.is_empty()) else {
        return Err(GatewayError::ModelNotFound(format!(
            "The model '{}' does not exist or you do not have access to it (no enabled channel in group '{}' serves it).",
            call.model, token.group
        )));
    };
    let limits = Limits { rpm: token.rpm_limit, tpm: token.tpm_limit };
    if limits.is_limited() {
        let estimate = if limits.tpm.is_some() { estimated_call_tokens(call.request()) } else { 0 };
        call.reservation = gateway.limiter.admit(token.id, limits, estimate).await.map_err(|limited| {
            let (unit, label) = if limited.requests { ("requests", "RPM") } else { ("tokens", "TPM") };
            GatewayError::RateLimited {
                message: format!(
                    "Rate limit reached for token '{}' on {unit} per min ({label}): Limit {}. Please try again in {:.1}s.",
                    token.name,
                    limited.limit,
                    limited.reset.as_secs_f64()
                ),
                retry_after_secs: limited.reset.as_secs_f64().ceil().max(1.0) as u64,
                headers: limited.headers,
            }
        })?;
    }
    Ok(balancer::order(group.strategy, &group.rotation, &call.model, members))
}

/// Completion tokens assumed when a request sets no `max_tokens`, for the tokens-per-minute reservation.
const DEFAULT_COMPLETION_RESERVATION: i64 = 1024;

/// What a call may use: its prompt, counted, plus the completion it allows.
fn estimated_call_tokens(request: &Map<String, Value>) -> i64 {
    let completion = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|key| request.get(*key).and_then(Value::as_i64))
        .unwrap_or(DEFAULT_COMPLETION_RESERVATION);
    estimate_prompt(request) as i64 + completion.max(0)
}

/// Whether a failure of this kind may be retried on another channel.
fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// How long to wait for an upstream's next bytes: the idle timeout, cut short by the attempt's
/// total deadline. The flag says which of the two it is.
fn next_read_wait(gateway: &Gateway, deadline: tokio::time::Instant) -> (std::time::Duration, bool) {
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    if left < gateway.config.idle_read_timeout {
        (left, true)
    } else {
        (gateway.config.idle_read_timeout, false)
    }
}

fn total_timeout_error(gateway: &Gateway) -> GatewayError {
    GatewayError::UpstreamTimeout(format!(
        "the upstream took longer than {} s in all",
        gateway.config.total_timeout.as_secs_f32()
    ))
}

/// Reads an upstream body to the end within the idle timeout, the attempt's deadline and the
/// size limit.
async fn read_upstream_body(
    gateway: &Gateway,
    mut response: UpstreamResponse,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<Bytes, GatewayError> {
    // Most answers arrive in one piece, which is then passed on without a copy.
    let mut first: Option<Bytes> = None;
    let mut body = bytes::BytesMut::new();
    loop {
        let (wait, is_deadline) = next_read_wait(gateway, deadline);
        match tokio::time::timeout(wait, response.chunk()).await {
            Err(_) if is_deadline => return Err(total_timeout_error(gateway)),
            Err(_) => return Err(GatewayError::UpstreamTimeout("the upstream stopped sending its answer".into())),
            Ok(None) if body.is_empty() => return Ok(first.unwrap_or_default()),
            Ok(None) => return Ok(body.freeze()),
            Ok(Some(Err(error))) => {
                return Err(GatewayError::UpstreamUnreachable(format!("the upstream connection failed: {error}")))
            }
            Ok(Some(Ok(chunk))) => {
                let so_far = first.as_ref().map_or(0, Bytes::len) + body.len();
                if so_far + chunk.len() > limit {
                    return Err(GatewayError::UpstreamUnreachable(format!(
                        "the upstream answer is larger than {limit} bytes"
                    )));
                }
                match first.take() {
                    None if body.is_empty() => first = Some(chunk),
                    earlier => {
                        if let Some(earlier) = earlier {
                            body.extend_from_slice(&earlier);
                        }
                        body.extend_from_slice(&chunk);
                    }
                }
            }
        }
    }
}

/// Reads the fields every call needs and checks the body is a JSON object a parser accepts,
/// without building the rest. Anything unusual (not an object, a repeated field) gets the full
/// parser's verdict and error message.
fn peek_request(bytes: &[u8]) -> Result<RequestPeek, GatewayError> {
    let bad = |message: String| GatewayError::BadRequest { message, param: None };
    let parse_error =
        |error: serde_json::Error| bad(format!("We could not parse the JSON body of your request: {error}"));
    // Skipped strings are not checked for UTF-8 by the fast path; the check is one fast pass.
    if let Err(error) = std::str::from_utf8(bytes) {
        return Err(bad(format!("We could not parse the JSON body of your request: it is not UTF-8 ({error})")));
    }
    let starts_as_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if starts_as_object {
        if let Ok(peek) = serde_json::from_slice::<RequestPeek>(bytes) {
            return Ok(peek);
        }
    }
    match serde_json::from_slice::<Value>(bytes).map_err(parse_error)? {
        Value::Object(map) => {
            let field = |name: &str| map.get(name).cloned();
            Ok(RequestPeek { model: field("model"), stream: field("stream"), stream_options: field("stream_options") })
        }
        _ => Err(bad("the request body must be a JSON object".into())),
    }
}

/// A Gemini channel's URL for `method` on `model`: Gemini puts the model in the path, so these are
/// built per call rather than once per snapshot.
fn gemini_url(channel: &ChannelEntry, model: &str, method: &str) -> Result<UpstreamUrl, String> {
    reqwest::Url::parse(&format!("{}/{}", channel.base_url, gemini::path(model, method)))
        .map(UpstreamUrl::new)
        .map_err(|e| format!("the Gemini URL for model {model:?} does not parse: {e}"))
}

/// Hands the caller its response; false when the caller is gone (or was already answered).
fn deliver(reply: &mut Option<oneshot::Sender<Response>>, response: Response) -> bool {
    reply.take().is_some_and(|reply| reply.send(response).is_ok())
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// What one attempt on one channel came to.
enum Attempt {
    /// The call has its final outcome; the response, unless a stream already delivered it, goes
    /// to the caller once the call is accounted for.
    Done(Outcome, Option<Response>),
    /// Try the next channel; the upstream's `Retry-After`, if it sent one.
    Failed(GatewayError, Option<std::time::Duration>),
}

async fn run(gateway: Arc<Gateway>, call: Call, candidates: Vec<Arc<ChannelEntry>>, reply: oneshot::Sender<Response>) {
    let mut reply = Some(reply);
    let mut attempts = 0u32;
    let mut last: Option<(Arc<ChannelEntry>, GatewayError)> = None;
    let mut cached_body: Option<(String, Bytes)> = None;
    let mut resting_until: Option<std::time::Instant> = None;
    for channel in candidates {
        if attempts as usize >= gateway.config.max_attempts.max(1) {
            break;
        }
        let admission = gateway.breakers.admit(channel.channel.id);
        if let Admission::Rejected { retry_at } = admission {
            resting_until = Some(resting_until.map_or(retry_at, |t| t.min(retry_at)));
            continue;
        }
        attempts += 1;
        let attempt_started = Instant::now();
        let upstream_model = channel.channel.upstream_model(&call.model).to_string();
        let unconvertible = call.responses.as_ref().and_then(|r| r.unconvertible.clone());
        let body = match channel.wire {
            _ if call.is_native_responses(&channel) => {
                Ok(call.responses.as_ref().map(|r| r.native_body(&upstream_model)).unwrap_or_default())
            }
            _ if unconvertible.is_some() => Err(unconvertible.unwrap_or_default()),
            Wire::OpenAi => match (&call.as_received, &cached_body) {
                (Some(as_received), _) if upstream_model == call.model => Ok(as_received.clone()),
                (_, Some((model, body))) if *model == upstream_model => Ok(body.clone()),
                _ => {
                    let mut request = call.request().clone();
                    request.insert("model".into(), Value::String(upstream_model.clone()));
                    let body = Bytes::from(serde_json::to_vec(&request).unwrap_or_default());
                    cached_body = Some((upstream_model.clone(), body.clone()));
                    Ok(body)
                }
            },
            Wire::Anthropic if call.native.is_some() && call.dialect == Dialect::Anthropic => {
                let mut native = call.native.clone().unwrap_or_default();
                native.insert("model".into(), Value::String(upstream_model.clone()));
                Ok(Bytes::from(Value::Object(native).to_string()))
            }
            Wire::Anthropic if call.endpoint == Endpoint::ChatCompletions => {
                anthropic::request(call.request(), &upstream_model, call.is_stream)
                    .map(|body| Bytes::from(body.to_string()))
                    .map_err(|anthropic::Unconvertible(message)| message)
            }
            Wire::Anthropic => Err(format!("Anthropic channels serve chat completions, not {}", call.endpoint.route())),
            Wire::Gemini => match call.endpoint {
                Endpoint::ChatCompletions => gemini::request(call.request()),
                Endpoint::Embeddings => gemini::embeddings_request(call.request(), &upstream_model),
                Endpoint::Completions => {
                    Err(anthropic::Unconvertible("Gemini channels do not serve /v1/completions".into()))
                }
            }
            .map(|body| Bytes::from(body.to_string()))
            .map_err(|anthropic::Unconvertible(message)| message),
        };
        let url = match (&channel.responses_url, channel.wire) {
            (Some(url), _) if call.responses.is_some() => Ok(url.clone()),
            (_, Wire::Gemini) => {
                let method = match (call.endpoint, call.is_stream) {
                    (Endpoint::Embeddings, _) => "batchEmbedContents",
                    (_, true) => "streamGenerateContent",
                    (_, false) => "generateContent",
                };
                gemini_url(&channel, &upstream_model, method)
            }
            (_, Wire::OpenAi | Wire::Anthropic) => Ok(channel.urls[call.endpoint.url_index()].clone()),
        };
        let body = body.and_then(|body| url.map(|url| (url, body)));
        let (url, body) = match body {
            Ok(prepared) => prepared,
            Err(message) => {
                // Not this channel's kind of request; another channel may take it.
                attempts -= 1;
                gateway.breakers.release_probe(channel.channel.id);
                last = Some((channel, GatewayError::BadRequest { message, param: None }));
                continue;
            }
        };
        match attempt(&gateway, &call, &channel, url, body, &mut reply).await {
            Attempt::Done(mut outcome, response) => {
                let verdict = match outcome.status {
                    401..=403 => Verdict::Refused { error: outcome.error.clone().unwrap_or_default() },
                    _ if outcome.end_reason == EndReason::UpstreamCut => {
                        Verdict::Failed { error: outcome.error.clone().unwrap_or_default(), retry_after: None }
                    }
                    _ => Verdict::Healthy { latency_ms: attempt_started.elapsed().as_millis() as u64 },
                };
                gateway.judge(channel.channel.id, verdict);
                outcome.attempts = attempts;
                outcome.channel = Some(channel);
                finish(&gateway, &call, outcome, response, &mut reply).await;
                return;
            }
            Attempt::Failed(error, retry_after) => {
                gateway.judge(channel.channel.id, Verdict::Failed { error: error.message(), retry_after });
                tracing::debug!(request_id = %call.request_id, channel = %channel.channel.name, error = %error.message(), "attempt failed");
                last = Some((channel, error));
            }
        }
    }
    let (channel, error) = match (last, resting_until) {
        (Some((channel, error)), _) => (Some(channel), error),
        (None, Some(until)) => {
            let wait = until.saturating_duration_since(gateway.breakers.now());
            let error = GatewayError::Unavailable {
                message: format!(
                    "Every channel serving '{}' is resting after failures; try again in {:.0}s.",
                    call.model,
                    wait.as_secs_f64().ceil()
                ),
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            };
            (None, error)
        }
        (None, None) => (None, GatewayError::UpstreamUnreachable("no channel could be tried".into())),
    };
    let response = call.error_response(&error);
    let outcome = Outcome::failed(channel, &error, attempts, EndReason::UpstreamError);
    finish(&gateway, &call, outcome, Some(response), &mut reply).await;
}

/// Accounts for the call, then hands the caller its response. Accounting comes first so that a
/// call served inline (the usual case) is complete when the caller gets its answer.
async fn finish(
    gateway: &Gateway,
    call: &Call,
    mut outcome: Outcome,
    response: Option<Response>,
    reply: &mut Option<oneshot::Sender<Response>>,
) {
    if let Some(response) = response {
        if reply.as_ref().is_none_or(oneshot::Sender::is_closed) {
            outcome.end_reason = EndReason::ClientCancelled;
        }
        record(gateway, call, outcome).await;
        deliver(reply, response);
    } else {
        record(gateway, call, outcome).await;
    }
}

async fn attempt(
    gateway: &Gateway,
    call: &Call,
    channel: &ChannelEntry,
    url: UpstreamUrl,
    body: Bytes,
    reply: &mut Option<oneshot::Sender<Response>>,
) -> Attempt {
    let deadline = tokio::time::Instant::now() + gateway.config.total_timeout;
    let request = gateway.http.post_json(&url, &channel.auth_headers, body);
    let response = match tokio::time::timeout(gateway.config.first_byte_timeout, request).await {
        Err(_) => {
            return Attempt::Failed(
                GatewayError::UpstreamTimeout(format!(
                    "channel '{}' did not answer within {} s",
                    channel.channel.name,
                    gateway.config.first_byte_timeout.as_secs_f32()
                )),
                None,
            )
        }
        Ok(Err(error)) => {
            let message =
                scrub(&format!("channel '{}' could not be reached: {error}", channel.channel.name), &channel.api_key);
            return Attempt::Failed(GatewayError::UpstreamUnreachable(message), None);
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status;
    if !status.is_success() {
        let retry_after = response
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map(std::time::Duration::from_secs);
        let body = read_upstream_body(gateway, response, 1024 * 1024, deadline).await.unwrap_or_default();
        let mut body = Bytes::from(scrub(&String::from_utf8_lossy(&body), &channel.api_key));
        body = match channel.wire {
            Wire::OpenAi => body,
            Wire::Anthropic => anthropic::error_body(&body),
            Wire::Gemini => gemini::error_body(&body),
        };
        let error = GatewayError::Upstream { status, body };
        if is_retryable(status) {
            return Attempt::Failed(error, retry_after);
        }
        let response = call.error_response(&error);
        return Attempt::Done(Outcome::failed(None, &error, 0, EndReason::UpstreamError), Some(response));
    }
    let is_event_stream = response
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if call.is_stream && is_event_stream {
        return crate::proxy::stream(gateway, call, channel, response, reply, deadline).await;
    }
    complete(gateway, call, channel, status, response, deadline).await
}

/// A whole (non-streamed) answer: read it, pass it on, read its usage.
async fn complete(
    gateway: &Gateway,
    call: &Call,
    channel: &ChannelEntry,
    status: StatusCode,
    response: UpstreamResponse,
    deadline: tokio::time::Instant,
) -> Attempt {
    let content_type = response.headers.get(header::CONTENT_TYPE).cloned();
    let body = match read_upstream_body(gateway, response, gateway.config.max_response_bytes, deadline).await {
        Ok(body) => body,
        // Nothing reached the caller yet, so another channel may still answer.
        Err(error) => return Attempt::Failed(scrubbed(error, channel), None),
    };
    let first_token_ms = Some(call.started.elapsed().as_millis() as u64);
    // The upstream's own bytes, for a caller that speaks the upstream's format.
    let native_body = ((call.dialect == Dialect::Anthropic && channel.wire == Wire::Anthropic)
        || call.is_native_responses(channel))
    .then(|| body.clone());
    let (body, upstream_usage) = match channel.wire {
        // Passed through as it is, so it is checked here: a caller must never get a 200 it cannot parse.
        Wire::OpenAi => match checked_usage_in(&body) {
            Ok(usage) => (body, usage),
            Err(problem) => {
                let content_type = content_type.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("none");
                let message =
                    format!("channel '{}' answered with {problem}, content type {content_type}", channel.channel.name);
                return Attempt::Failed(GatewayError::UpstreamUnreachable(scrub(&message, &channel.api_key)), None);
            }
        },
        wire => {
            let converted = match (wire, call.endpoint) {
                (Wire::Gemini, Endpoint::Embeddings) => {
                    gemini::embeddings_response(&body, &call.model).map(|body| (body, None))
                }
                (Wire::Gemini, _) => gemini::response(&body, &call.model).map(|(body, usage)| (body, Some(usage))),
                _ => anthropic::response(&body, &call.model).map(|(body, usage)| (body, Some(usage))),
            };
            match converted {
                Ok((body, usage)) => {
                    let usage = usage.or_else(|| usage_in(&body));
                    (body, usage)
                }
                Err(anthropic::Unconvertible(message)) => {
                    return Attempt::Failed(GatewayError::UpstreamUnreachable(message), None);
                }
            }
        }
    };
    let (usage, usage_source) = match upstream_usage {
        Some(usage) => (usage, UsageSource::Upstream),
        None => {
            let mut text = String::new();
            if let Ok(value) = serde_json::from_slice::<Value>(&body) {
                collect_generated_text(&value, &mut text);
            }
            let usage = Usage::new(estimate_prompt(call.request()), count_tokens(&text));
            (usage, UsageSource::Estimated)
        }
    };
    let body = match (call.dialect, native_body) {
        (Dialect::OpenAi, _) => body,
        (Dialect::Anthropic | Dialect::Responses, Some(native)) => native,
        (Dialect::Responses, None) => {
            let Some(responses) = call.responses.as_deref() else { return Attempt::Failed(unanswerable(), None) };
            match responses_inbound::from_chat_response(&body, responses.skeleton.clone(), &responses.tools) {
                Ok(response) => {
                    store_response(gateway, call, &response).await;
                    Bytes::from(response.to_string())
                }
                Err(anthropic::Unconvertible(message)) => {
                    return Attempt::Failed(GatewayError::UpstreamUnreachable(message), None);
                }
            }
        }
        (Dialect::Anthropic, None) => match anthropic_inbound::from_openai_response(&body, &call.model) {
            Ok(body) => body,
            Err(anthropic::Unconvertible(message)) => {
                return Attempt::Failed(GatewayError::UpstreamUnreachable(message), None);
            }
        },
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    // Whatever the upstream called it, what goes out is JSON (checked or converted above).
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let response = with_request_id(response, &call.request_id);
    let outcome = Outcome {
        channel: None,
        status: status.as_u16(),
        error: None,
        usage,
        usage_source,
        first_token_ms,
        end_reason: EndReason::Completed,
        attempts: 0,
    };
    Attempt::Done(outcome, Some(response))
}

fn scrubbed(error: GatewayError, channel: &ChannelEntry) -> GatewayError {
    match error {
        GatewayError::UpstreamUnreachable(message) => {
            GatewayError::UpstreamUnreachable(scrub(&message, &channel.api_key))
        }
        other => other,
    }
}

/// The longest single stream event accepted: far above any real chunk, it bounds what a broken
/// upstream that never ends an event can make us buffer.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Bytes of stream events kept for estimating usage when the upstream reports none.
const MAX_KEPT_FOR_ESTIMATE: usize = 8 * 1024 * 1024;

/// What the stream pump learns while forwarding events.
#[derive(Default)]
struct StreamWatch {
    usage: Option<Usage>,
    finished: bool,
    kept: Vec<Bytes>,
    kept_bytes: usize,
}

impl StreamWatch {
    /// Inspects one complete event; returns whether it goes on to the caller.
    fn inspect(&mut self, event: &Bytes, client_wants_usage: bool) -> bool {
        let Some(data) = event_data(event) else {
            return true;
        };
        if data.as_slice() == b"[DONE]" {
            self.finished = true;
            return true;
        }
        if has_key_with(&data, b"\"finish_reason\"", b'"') {
            self.finished = true;
        }
        if has_key_with(&data, b"\"usage\"", b'{') {
            if let Some(usage) = usage_in(&data) {
                self.usage = Some(usage);
                self.kept.clear();
                // The usage-only chunk exists because we asked for it: drop it unless the caller did.
                let usage_only = serde_json::from_slice::<Value>(&data)
                    .ok()
                    .and_then(|v| v.get("choices").and_then(Value::as_array).map(Vec::is_empty))
                    .unwrap_or(false);
                return client_wants_usage || !usage_only;
            }
        }
        if self.usage.is_none() && self.kept_bytes + data.len() <= MAX_KEPT_FOR_ESTIMATE {
            self.kept_bytes += data.len();
            self.kept.push(Bytes::from(data));
        }
        true
    }

    fn usage(&self, call: &Call) -> (Usage, UsageSource) {
        if let Some(usage) = self.usage {
            return (usage, UsageSource::Upstream);
        }
        let mut text = String::new();
        for data in &self.kept {
            if let Ok(value) = serde_json::from_slice::<Value>(data) {
                collect_generated_text(&value, &mut text);
            }
        }
        (Usage::new(estimate_prompt(call.request()), count_tokens(&text)), UsageSource::Estimated)
    }
}

/// What a pass-through Responses API stream says about itself: whether it reached its terminal
/// event, the usage in it, and an error event if the upstream sent one.
#[derive(Default)]
struct ResponsesWatch {
    finished: bool,
    usage: Option<Usage>,
    error: Option<String>,
}

impl ResponsesWatch {
    fn inspect(&mut self, event: &Bytes) {
        let Some(data) = event_data(event) else { return };
        let terminal =
            [&b"\"response.completed\""[..], b"\"response.incomplete\"", b"\"response.failed\"", b"\"error\""];
        if !terminal.iter().any(|kind| data.windows(kind.len()).any(|window| window == *kind)) {
            return;
        }
        let Ok(event) = serde_json::from_slice::<Value>(&data) else { return };
        match event.get("type").and_then(Value::as_str) {
            Some("response.completed" | "response.incomplete") => {
                self.finished = true;
                self.usage = event.pointer("/response/usage").and_then(crate::usage::usage_of_value);
            }
            Some("response.failed") => {
                self.finished = true;
                self.usage = event.pointer("/response/usage").and_then(crate::usage::usage_of_value);
                let message = event.pointer("/response/error/message").and_then(Value::as_str);
                self.error.get_or_insert_with(|| message.unwrap_or("the response failed").to_string());
            }
            Some("error") => {
                let message = event.get("message").and_then(Value::as_str).unwrap_or("upstream error");
                self.error = Some(message.to_string());
            }
            _ => {}
        }
    }
}

/// Turns upstream stream events into what the caller receives.
enum Translator {
    /// OpenAI's format: events go through as they are (less the usage chunk nobody asked for).
    PassThrough(StreamWatch),
    Converted(Box<dyn EventTranslator>),
    /// A Responses API stream from an upstream's own Responses API: events go through as they are.
    NativeResponses(ResponsesWatch),
}

impl Translator {
    fn forward(&mut self, chunk: &Bytes, events: Vec<Bytes>, client_wants_usage: bool) -> Option<Bytes> {
        match self {
            Translator::PassThrough(watch) => forwardable(watch, chunk, events, client_wants_usage),
            Translator::NativeResponses(watch) => {
                for event in &events {
                    watch.inspect(event);
                }
                (!events.is_empty()).then(|| chunk.clone())
            }
            Translator::Converted(translator) => {
                let mut out = bytes::BytesMut::new();
                for event in events {
                    if let Some(data) = event_data(&event) {
                        for converted in translator.on_event(&data) {
                            out.extend_from_slice(&converted);
                        }
                    }
                }
                (!out.is_empty()).then(|| out.freeze())
            }
        }
    }

    fn finished(&self) -> bool {
        match self {
            Translator::PassThrough(watch) => watch.finished,
            Translator::Converted(translator) => translator.finished(),
            Translator::NativeResponses(watch) => watch.finished,
        }
    }

    fn upstream_error(&self) -> Option<String> {
        match self {
            Translator::PassThrough(_) => None,
            Translator::Converted(translator) => translator.error(),
            Translator::NativeResponses(watch) => watch.error.clone(),
        }
    }

    /// What closes a translated stream (usage chunk, `[DONE]`); pass-through streams carry their own.
    fn tail(&self, client_wants_usage: bool) -> Option<Bytes> {
        match self {
            Translator::PassThrough(_) | Translator::NativeResponses(_) => None,
            Translator::Converted(translator) => Some(translator.finish(client_wants_usage).concat().into()),
        }
    }

    fn usage(&self, call: &Call) -> (Usage, UsageSource) {
        match self {
            Translator::PassThrough(watch) => watch.usage(call),
            Translator::Converted(translator) => match translator.usage() {
                Some(usage) => (usage, UsageSource::Upstream),
                None => (Usage::new(estimate_prompt(call.request()), 0), UsageSource::Estimated),
            },
            Translator::NativeResponses(watch) => match watch.usage {
                Some(usage) => (usage, UsageSource::Upstream),
                None => (Usage::new(estimate_prompt(call.request()), 0), UsageSource::Estimated),
            },
        }
    }
}

/// What the caller receives, made from the OpenAI-format chunks the translator produces.
enum Output {
    OpenAi,
    /// The caller speaks the upstream's own format: its events go through untouched.
    Native,
    Anthropic(AnthropicStreamWriter),
    Responses(Box<ResponsesStreamWriter>),
}

impl Output {
    fn keeps_raw(&self) -> bool {
        matches!(self, Output::Native)
    }

    fn render(&mut self, openai: Option<Bytes>, raw: Option<Vec<Bytes>>) -> Option<Bytes> {
        match self {
            Output::OpenAi => openai,
            Output::Native => {
                let raw = raw.unwrap_or_default();
                (!raw.is_empty()).then(|| raw.concat().into())
            }
            Output::Anthropic(writer) => rewrite_chunks(openai?, |data| writer.on_chunk(data)),
            Output::Responses(writer) => rewrite_chunks(openai?, |data| writer.on_chunk(data)),
        }
    }

    /// The stream's closing bytes: the translator's tail, and the Anthropic message's or the
    /// response's end.
    fn finish(&mut self, tail: Option<Bytes>) -> Option<Bytes> {
        let mut out = self.render(tail, None).map(|b| b.to_vec()).unwrap_or_default();
        let end = match self {
            Output::OpenAi | Output::Native => Vec::new(),
            Output::Anthropic(writer) => writer.end(),
            Output::Responses(writer) => writer.end(),
        };
        for event in end {
            out.extend_from_slice(&event);
        }
        (!out.is_empty()).then(|| out.into())
    }

    /// The event that tells the caller the stream broke, in the caller's protocol.
    fn cut_event(&mut self, dialect: Dialect, message: &str) -> Bytes {
        match (self, dialect) {
            (Output::Responses(writer), _) => writer.fail(message).concat().into(),
            (_, Dialect::OpenAi) => {
                let event = serde_json::json!({"error": {"message": message, "type": "upstream_error", "param": null, "code": "upstream_cut"}});
                Bytes::from(format!("data: {event}\n\n"))
            }
            (_, Dialect::Anthropic) => {
                let event = serde_json::json!({"type": "error", "error": {"type": "api_error", "message": message}});
                Bytes::from(format!("event: error\ndata: {event}\n\n"))
            }
            (_, Dialect::Responses) => {
                let event = serde_json::json!({"type": "error", "code": "upstream_cut", "message": message, "param": null, "sequence_number": 0});
                Bytes::from(format!("event: error\ndata: {event}\n\n"))
            }
        }
    }
}

/// Re-splits OpenAI-format chunks into events and rewrites each with `write`.
fn rewrite_chunks(openai: Bytes, mut write: impl FnMut(&[u8]) -> Vec<Bytes>) -> Option<Bytes> {
    let mut splitter = SseSplitter::default();
    let mut events = splitter.push(&openai);
    events.extend(splitter.finish());
    let out: Vec<Bytes> = events.iter().filter_map(|event| event_data(event)).flat_map(|data| write(&data)).collect();
    (!out.is_empty()).then(|| out.concat().into())
}

type ChunkSender = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// A streamed answer: wait for its first chunk (before that, another channel may still answer),
/// then forward each event as soon as it is complete.
async fn stream(
    gateway: &Gateway,
    call: &Call,
    channel: &ChannelEntry,
    mut upstream: UpstreamResponse,
    reply: &mut Option<oneshot::Sender<Response>>,
    deadline: tokio::time::Instant,
) -> Attempt {
    let first = match tokio::time::timeout(gateway.config.first_byte_timeout, upstream.chunk()).await {
        Ok(Some(Ok(chunk))) => chunk,
        Ok(Some(Err(error))) => {
            let message = format!("the upstream stream failed before its first byte: {error}");
            return Attempt::Failed(scrubbed(GatewayError::UpstreamUnreachable(message), channel), None);
        }
        Ok(None) => {
            return Attempt::Failed(GatewayError::UpstreamUnreachable("the upstream stream was empty".into()), None)
        }
        Err(_) => {
            return Attempt::Failed(GatewayError::UpstreamTimeout("the upstream stream sent nothing".into()), None)
        }
    };
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let body = Body::from_stream(futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    }));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    let mut client_gone = !deliver(reply, with_request_id(response, &call.request_id));

    let mut splitter = SseSplitter::default();
    let native_responses = call.is_native_responses(channel);
    let mut watch = match channel.wire {
        Wire::OpenAi if native_responses => Translator::NativeResponses(ResponsesWatch::default()),
        Wire::OpenAi => Translator::PassThrough(StreamWatch::default()),
        Wire::Anthropic => Translator::Converted(Box::new(anthropic::StreamTranslator::new(&call.model))),
        Wire::Gemini => Translator::Converted(Box::new(gemini::StreamTranslator::new(&call.model))),
    };
    let mut output = match (call.dialect, channel.wire) {
        (Dialect::OpenAi, _) => Output::OpenAi,
        (Dialect::Anthropic, Wire::Anthropic) => Output::Native,
        (Dialect::Anthropic, _) => Output::Anthropic(AnthropicStreamWriter::new(&call.model)),
        (Dialect::Responses, _) if native_responses => Output::Native,
        (Dialect::Responses, _) => match call.responses.as_deref() {
            Some(responses) => Output::Responses(Box::new(ResponsesStreamWriter::new(
                responses.skeleton.clone(),
                responses.tools.clone(),
            ))),
            None => return Attempt::Failed(unanswerable(), None),
        },
    };
    let mut first_token_ms: Option<u64> = None;
    let mut cut: Option<String> = None;
    let mut malformed: Option<String> = None;
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    let mut next_chunk = Some(first);
    loop {
        let chunk = match next_chunk.take() {
            Some(chunk) => chunk,
            None => {
                let (wait, is_deadline) = match drain_deadline {
                    Some(drain) => (drain.min(deadline).saturating_duration_since(tokio::time::Instant::now()), false),
                    None => next_read_wait(gateway, deadline),
                };
                match tokio::time::timeout(wait, upstream.chunk()).await {
                    Ok(Some(Ok(chunk))) => chunk,
                    Ok(None) => break,
                    Ok(Some(Err(error))) => {
                        cut = Some(scrub(&format!("the upstream stream broke: {error}"), &channel.api_key));
                        break;
                    }
                    Err(_) => {
                        if is_deadline {
                            cut = Some(total_timeout_error(gateway).message());
                        } else if drain_deadline.is_none() {
                            cut = Some("the upstream stream went silent".into());
                        }
                        break;
                    }
                }
            }
        };
        let mut events = splitter.push(&chunk);
        // A client cannot parse a broken event, and nothing after it can be trusted: the events
        // before it go out, then the stream ends with an error the caller's SDK understands.
        if let Some((index, problem)) =
            events.iter().enumerate().find_map(|(i, event)| Some((i, malformed_data(&event_data(event)?)?)))
        {
            events.truncate(index);
            malformed = Some(problem);
        } else if splitter.pending() > MAX_EVENT_BYTES {
            malformed = Some(format!("an event longer than {} MiB", MAX_EVENT_BYTES / (1024 * 1024)));
        }
        let raw = output.keeps_raw().then(|| events.clone());
        let forward = output.render(watch.forward(&chunk, events, call.client_wants_usage), raw);
        if let Some(bytes) = forward {
            if first_token_ms.is_none() {
                first_token_ms = Some(call.started.elapsed().as_millis() as u64);
            }
            if !client_gone {
                client_gone = !send(&sender, bytes).await;
            }
        }
        if malformed.is_some() {
            break;
        }
        if client_gone && drain_deadline.is_none() {
            drain_deadline = Some(tokio::time::Instant::now() + gateway.config.cancel_drain_timeout);
        }
    }
    // Whatever is left after a broken event is not read; an unfinished last event is checked too.
    let rest = if malformed.is_none() { splitter.finish() } else { None };
    if let Some(rest) = rest {
        malformed = event_data(&rest).and_then(|data| malformed_data(&data));
        let raw = output.keeps_raw().then(|| vec![rest.clone()]);
        let forward = malformed.is_none().then(|| watch.forward(&rest.clone(), vec![rest], call.client_wants_usage));
        if let Some(bytes) = forward.and_then(|openai| output.render(openai, raw)) {
            if !client_gone {
                client_gone = !send(&sender, bytes).await;
            }
        }
    }
    if let Some(problem) = malformed {
        cut = Some(scrub(&format!("channel '{}' sent {problem}", channel.channel.name), &channel.api_key));
    }
    let reported = watch.upstream_error();
    if let Some(message) = &reported {
        // The upstream's own error event has gone to the caller already, translated.
        cut = Some(message.clone());
    }
    if !watch.finished() && cut.is_none() && !client_gone {
        cut = Some("the upstream stream ended before it finished".into());
    }
    if cut.is_none() && !client_gone {
        let tail = output.finish(watch.tail(call.client_wants_usage));
        // A stored response must be findable by the time the caller reads its last event.
        if let Some(response) = match &output {
            Output::Responses(writer) => writer.response(),
            _ => None,
        } {
            store_response(gateway, call, response).await;
        }
        if let Some(tail) = tail {
            client_gone = !send(&sender, tail).await;
        }
    }
    if let (Some(message), false, None) = (&cut, client_gone, &reported) {
        let event = output.cut_event(call.dialect, message);
        send(&sender, event).await;
    }
    let (usage, usage_source) = watch.usage(call);
    let end_reason = if client_gone {
        EndReason::ClientCancelled
    } else if cut.is_some() {
        EndReason::UpstreamCut
    } else {
        EndReason::Completed
    };
    Attempt::Done(
        Outcome {
            channel: None,
            status: 200,
            error: cut,
            usage,
            usage_source,
            first_token_ms,
            end_reason,
            attempts: 0,
        },
        None,
    )
}

/// The bytes of `chunk` to pass on: the chunk itself when every event in it goes through whole.
fn forwardable(watch: &mut StreamWatch, chunk: &Bytes, events: Vec<Bytes>, client_wants_usage: bool) -> Option<Bytes> {
    let total: usize = events.iter().map(Bytes::len).sum();
    let mut kept: Vec<Bytes> = Vec::with_capacity(events.len());
    let mut dropped = false;
    for event in events {
        if watch.inspect(&event, client_wants_usage) {
            kept.push(event);
        } else {
            dropped = true;
        }
    }
    if kept.is_empty() {
        return None;
    }
    if !dropped && kept.len() == 1 {
        return kept.pop();
    }
    if !dropped && total == chunk.len() && kept.len() > 1 {
        return Some(chunk.clone());
    }
    let mut joined = bytes::BytesMut::with_capacity(kept.iter().map(Bytes::len).sum());
    for event in kept {
        joined.extend_from_slice(&event);
    }
    Some(joined.freeze())
}

async fn send(sender: &ChunkSender, bytes: Bytes) -> bool {
    sender.send(Ok(bytes)).await.is_ok()
}

/// Prices the call, charges it, and queues its log row.
async fn record(gateway: &Gateway, call: &Call, outcome: Outcome) {
    let snapshot = gateway.snapshot.load();
    let upstream_model = outcome.channel.as_ref().map(|c| c.channel.upstream_model(&call.model).to_string());
    let price = snapshot.price(&call.model).or_else(|| upstream_model.as_deref().and_then(|m| snapshot.price(m)));
    let cost = price.map_or(Money::ZERO, |price| outcome.usage.cost(price));
    gateway.ledger.charge(&call.token, cost);
    let used_tokens = (outcome.usage.prompt_tokens + outcome.usage.completion_tokens) as i64;
    gateway.limiter.settle(call.reservation, used_tokens).await;
    let row = NewLogRow {
        request_id: call.request_id.clone(),
        created_at_ms: call.created_at_ms,
        token_id: Some(call.token.token.id),
        token_name: Some(call.token.token.name.clone()),
        channel_id: outcome.channel.as_ref().map(|c| c.channel.id),
        channel_name: outcome.channel.as_ref().map(|c| c.channel.name.clone()),
        endpoint: call.dialect.route(call.endpoint).to_string(),
        model: call.model.clone(),
        upstream_model,
        is_stream: call.is_stream,
        status: outcome.status,
        error: outcome.error,
        prompt_tokens: outcome.usage.prompt_tokens,
        completion_tokens: outcome.usage.completion_tokens,
        cached_tokens: outcome.usage.cached_tokens,
        cache_write_tokens: outcome.usage.cache_write_tokens,
        cache_write_1h_tokens: outcome.usage.cache_write_1h_tokens,
        reasoning_tokens: outcome.usage.reasoning_tokens,
        usage_source: outcome.usage_source,
        cost,
        priced: price.is_some(),
        latency_ms: call.started.elapsed().as_millis() as u64,
        first_token_ms: outcome.first_token_ms,
        end_reason: outcome.end_reason,
        attempts: outcome.attempts,
    };
    gateway.logs.record(row).await;
    gateway.in_flight.fetch_sub(1, Ordering::Relaxed);
}

fn unanswerable() -> GatewayError {
    GatewayError::UpstreamUnreachable("the call lost its Responses request".into())
}

/// A Responses call prepared at admission: its chat form and what answers need.
struct PreparedResponses {
    native: Map<String, Value>,
    chat: Map<String, Value>,
    call: ResponsesCall,
}

/// Reads a `/v1/responses` request: expands a `previous_response_id` stored here into the items
/// it stands for, and converts the request to chat for the channels that need it.
async fn prepare_responses(
    gateway: &Gateway,
    token: &TokenEntry,
    mut native: Map<String, Value>,
    request_id: &str,
) -> Result<PreparedResponses, GatewayError> {
    let bad = |message: String, param: Option<&'static str>| GatewayError::BadRequest { message, param };
    let input = responses_inbound::input_items(&native).map_err(|e| bad(e.0, Some("input")))?;
    let mut history = Vec::new();
    let mut unconvertible = None;
    let previous = native.get("previous_response_id").and_then(Value::as_str).map(String::from);
    match native.get("previous_response_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(previous)) => match crate::responses::conversation(gateway, token, previous).await? {
            Some(items) => {
                // Expanded here, so that every channel sees the whole conversation.
                history = items;
                let mut expanded = history.clone();
                expanded.extend(input.iter().cloned());
                native.insert("input".into(), Value::Array(expanded));
                native.remove("previous_response_id");
            }
            // An upstream with its own Responses API may know it; for the others it is missing.
            None => unconvertible = Some(format!("Previous response with id '{previous}' not found.")),
        },
        Some(_) => return Err(bad("previous_response_id must be a string".into(), Some("previous_response_id"))),
    }
    let model = native.get("model").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut skeleton = responses_inbound::skeleton(&native, &responses_inbound::response_id(request_id), &model);
    // The response says what it continued from, even where the conversation was expanded here.
    skeleton["previous_response_id"] = previous.map_or(Value::Null, Value::String);
    let store = native.get("store") != Some(&Value::Bool(false));
    let for_chat = if history.is_empty() { native.clone() } else { without_history(&native, &input) };
    let (chat, tools) = match responses_inbound::to_chat(&for_chat, &history) {
        Ok(converted) if unconvertible.is_none() => (converted.chat, converted.tools),
        Ok(_) => (Map::new(), ToolNames::default()),
        Err(anthropic::Unconvertible(message)) => {
            unconvertible = Some(message);
            (Map::new(), ToolNames::default())
        }
    };
    let mut chat = chat;
    chat.entry("model").or_insert_with(|| Value::String(model));
    let call = ResponsesCall { native: native.clone(), unconvertible, tools, skeleton, history, input, store };
    Ok(PreparedResponses { native, chat, call })
}

/// The request with only its own input, for converting after the history is given apart.
fn without_history(native: &Map<String, Value>, input: &[Value]) -> Map<String, Value> {
    let mut own = native.clone();
    own.insert("input".into(), Value::Array(input.to_vec()));
    own
}

/// Keeps a Responses answer for `previous_response_id` and `GET /v1/responses/{id}`, unless the
/// caller said `store: false`.
async fn store_response(gateway: &Gateway, call: &Call, response: &Value) {
    let Some(responses) = call.responses.as_deref().filter(|r| r.store) else { return };
    let items =
        responses_inbound::stored_conversation(&responses.history, responses.input.clone(), &response["output"]);
    crate::responses::store(gateway, call.token.token.id, response, &items).await;
}

/// `GET /v1/models`: the models this token may use.
pub(crate) async fn list_models(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let request_id = new_request_id();
    let token = match authenticate(&gateway, &headers) {
        Ok(token) => token,
        Err(error) => return error.into_response_with_id(&request_id),
    };
    let snapshot = gateway.snapshot.load();
    let mut models: Vec<(&str, &str)> = Vec::new();
    let members = snapshot.group(&token.token.group).map(|g| g.members.as_slice()).unwrap_or_default();
    for member in members {
        let channel = &member.channel.channel;
        for model in channel.models.iter().chain(channel.model_mapping.keys()) {
            let allowed = token.token.models.is_empty() || token.token.models.iter().any(|m| m == model);
            if allowed && !models.iter().any(|(known, _)| known == model) {
                models.push((model, channel.kind.as_str()));
            }
        }
    }
    models.sort_unstable();
    let data: Vec<Value> = models
        .into_iter()
        .map(|(id, owner)| serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": owner}))
        .collect();
    let body = serde_json::json!({"object": "list", "data": data});
    with_request_id(axum::Json(body).into_response(), &request_id)
}

impl Gateway {
    /// Sends a one-token chat completion to `entry` for its first model and records the outcome
    /// in the channel's breaker.
    pub async fn test_channel(&self, entry: ChannelEntry) -> ChannelTestReport {
        let channel = &entry.channel;
        let model = channel.models.first().cloned().or_else(|| channel.model_mapping.values().next().cloned());
        let Some(model) = model else {
            return ChannelTestReport {
                ok: false,
                model: None,
                status: None,
                latency_ms: 0,
                error: Some("the channel lists no models to test with".into()),
            };
        };
        let mut body =
            serde_json::json!({"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1});
        let mut url = entry.urls[Endpoint::ChatCompletions.url_index()].clone();
        let converted = body.as_object().and_then(|openai| match entry.wire {
            Wire::OpenAi => None,
            Wire::Anthropic => anthropic::request(openai, &model, false).ok(),
            Wire::Gemini => gemini::request(openai).ok(),
        });
        if let Some(converted) = converted {
            body = converted;
        }
        if entry.wire == Wire::Gemini {
            if let Ok(gemini) = gemini_url(&entry, &model, "generateContent") {
                url = gemini;
            }
        }
        let request = self.http.post_json(&url, &entry.auth_headers, Bytes::from(body.to_string()));
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.config.first_byte_timeout, request).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let (status, error) = match outcome {
            Err(_) => (None, Some(format!("no answer within {} s", self.config.first_byte_timeout.as_secs()))),
            Ok(Err(error)) => (None, Some(scrub(&format!("could not connect: {error}"), &entry.api_key))),
            Ok(Ok(response)) => {
                let status = response.status.as_u16();
                if response.status.is_success() {
                    (Some(status), None)
                } else {
                    let deadline = tokio::time::Instant::now() + self.config.total_timeout;
                    let body = read_upstream_body(self, response, 64 * 1024, deadline).await.unwrap_or_default();
                    let body = Bytes::from(scrub(&String::from_utf8_lossy(&body), &entry.api_key));
                    (Some(status), Some(crate::scrub::error_message(&body)))
                }
            }
        };
        let verdict = match (status, &error) {
            (Some(_), None) => Verdict::Healthy { latency_ms },
            (Some(401..=403), Some(error)) => Verdict::Refused { error: error.clone() },
            (_, error) => Verdict::Failed { error: error.clone().unwrap_or_default(), retry_after: None },
        };
        self.judge(channel.id, verdict);
        ChannelTestReport { ok: error.is_none(), model: Some(model), status, latency_ms, error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn message(result: Result<RequestPeek, GatewayError>) -> String {
        match result {
            Err(GatewayError::BadRequest { message, .. }) => message,
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
