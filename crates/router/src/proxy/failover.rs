//! Failover: walk the candidate channels, send each attempt in the channel's wire format, read
//! whole answers, and judge each channel's breaker; the channel test uses the same wire dispatch.

use super::*;

/// Whether a failure of this kind may be retried on another channel.
pub(super) fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// How long to wait for an upstream's next bytes: the idle timeout, cut short by the attempt's
/// total deadline. The flag says which of the two it is.
pub(super) fn next_read_wait(gateway: &Gateway, deadline: tokio::time::Instant) -> (std::time::Duration, bool) {
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    if left < gateway.config.idle_read_timeout {
        (left, true)
    } else {
        (gateway.config.idle_read_timeout, false)
    }
}

pub(super) fn total_timeout_error(gateway: &Gateway) -> CallError {
    CallError::UpstreamTimeout(format!(
        "the upstream took longer than {} s in all",
        gateway.config.total_timeout.as_secs_f32()
    ))
}

/// Reads an upstream body to the end within the idle timeout, the attempt's deadline and the
/// size limit.
pub(super) async fn read_upstream_body(
    gateway: &Gateway,
    mut response: UpstreamResponse,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<Bytes, CallError> {
    // Most answers arrive in one piece, which is then passed on without a copy.
    let mut first: Option<Bytes> = None;
    let mut body = bytes::BytesMut::new();
    loop {
        let (wait, is_deadline) = next_read_wait(gateway, deadline);
        match tokio::time::timeout(wait, response.chunk()).await {
            Err(_) if is_deadline => return Err(total_timeout_error(gateway)),
            Err(_) => return Err(CallError::UpstreamTimeout("the upstream stopped sending its answer".into())),
            Ok(None) if body.is_empty() => return Ok(first.unwrap_or_default()),
            Ok(None) => return Ok(body.freeze()),
            Ok(Some(Err(error))) => {
                return Err(CallError::UpstreamUnreachable(format!("the upstream connection failed: {error}")))
            }
            Ok(Some(Ok(chunk))) => {
                let so_far = first.as_ref().map_or(0, Bytes::len) + body.len();
                if so_far + chunk.len() > limit {
                    return Err(CallError::UpstreamUnreachable(format!(
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

/// Hands the caller its response; false when the caller is gone (or was already answered).
pub(super) fn deliver(reply: &mut Option<oneshot::Sender<Response>>, response: Response) -> bool {
    reply.take().is_some_and(|reply| reply.send(response).is_ok())
}

pub(crate) fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// What one attempt on one channel came to.
pub(super) enum Attempt {
    /// The call has its final outcome; the response, unless a stream already delivered it, goes
    /// to the caller once the call is accounted for.
    Done(Outcome, Option<Response>),
    /// Try the next channel; the upstream's `Retry-After`, if it sent one.
    Failed(CallError, Option<std::time::Duration>),
}

pub(super) async fn run(
    gateway: Arc<Gateway>,
    call: Call,
    candidates: Vec<Arc<ChannelEntry>>,
    reply: oneshot::Sender<Response>,
) {
    let mut reply = Some(reply);
    let mut attempts = 0u32;
    let mut last: Option<(Arc<ChannelEntry>, CallError)> = None;
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
        let unconvertible =
            call.unconvertible.as_ref().or_else(|| call.responses.as_ref().and_then(|r| r.unconvertible.as_ref()));
        let wire = channel.wire;
        let body = if let Some(upload) = &call.upload {
            match wire.request(call.endpoint, &Map::new(), &upstream_model, false) {
                Ok(_) => Ok(Outgoing::Form(upload.clone(), upstream_model.clone())),
                Err(anthropic::Unconvertible(message)) => Err(message),
            }
        } else if call.passes_natively(&channel) {
            // The caller's own request, untouched but the model: a Claude caller on a Claude
            // channel, a Responses caller on an upstream with its own Responses API.
            let mut native = call.native.clone().unwrap_or_default();
            if call.dialect.model_in_body() {
                native.insert("model".into(), Value::String(upstream_model.clone()));
            }
            Ok(Outgoing::Json(Bytes::from(Value::Object(native).to_string())))
        } else if let Some(message) = unconvertible {
            Err(message.clone())
        } else {
            match wire.request(call.endpoint, call.request(), &upstream_model, call.is_stream) {
                Ok(Some(converted)) => Ok(Outgoing::Json(Bytes::from(converted.to_string()))),
                Err(anthropic::Unconvertible(message)) => Err(message),
                Ok(None) => Ok(Outgoing::Json(match (&call.as_received, &cached_body) {
                    (Some(as_received), _) if upstream_model == call.model => as_received.clone(),
                    (_, Some((model, body))) if *model == upstream_model => body.clone(),
                    _ => {
                        let mut request = call.request().clone();
                        request.insert("model".into(), Value::String(upstream_model.clone()));
                        let body = Bytes::from(serde_json::to_vec(&request).unwrap_or_default());
                        cached_body = Some((upstream_model.clone(), body.clone()));
                        body
                    }
                })),
            }
        };
        let url = match call.dialect.native_url(&channel) {
            Some(native) => native,
            None => wire.url(&channel.base_url, &channel.urls, call.endpoint, &upstream_model, call.is_stream),
        };
        let body = body.and_then(|body| url.map(|url| (url, body)));
        let (url, body) = match body {
            Ok(prepared) => prepared,
            Err(message) => {
                // Not this channel's kind of request; another channel may take it.
                attempts -= 1;
                gateway.breakers.release_probe(channel.channel.id);
                last = Some((channel, CallError::BadRequest { message, param: None }));
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
            let error = CallError::Unavailable {
                message: format!(
                    "Every channel serving '{}' is resting after failures; try again in {:.0}s.",
                    call.model,
                    wait.as_secs_f64().ceil()
                ),
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            };
            (None, error)
        }
        (None, None) => (None, CallError::UpstreamUnreachable("no channel could be tried".into())),
    };
    let response = call.error_response(&error);
    let outcome = Outcome::failed(channel, &error, attempts, EndReason::UpstreamError);
    finish(&gateway, &call, outcome, Some(response), &mut reply).await;
}

/// Accounts for the call, then hands the caller its response. Accounting comes first so that a
/// call served inline (the usual case) is complete when the caller gets its answer.
pub(super) async fn finish(
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

pub(super) async fn attempt(
    gateway: &Gateway,
    call: &Call,
    channel: &ChannelEntry,
    url: UpstreamUrl,
    body: Outgoing,
    reply: &mut Option<oneshot::Sender<Response>>,
) -> Attempt {
    let deadline = tokio::time::Instant::now() + gateway.config.total_timeout;
    let request = gateway.http.post(&url, &channel.auth_headers, body);
    let response = match tokio::time::timeout(gateway.config.first_byte_timeout, request).await {
        Err(_) => {
            return Attempt::Failed(
                CallError::UpstreamTimeout(format!(
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
            return Attempt::Failed(CallError::UpstreamUnreachable(message), None);
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
        body = channel.wire.error_body(body);
        let error = CallError::Upstream { status, body };
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
    if call.endpoint.answers_verbatim() {
        return relay(gateway, call, channel, response, reply, deadline).await;
    }
    if call.is_stream && is_event_stream {
        return stream(gateway, call, channel, response, reply, deadline).await;
    }
    complete(gateway, call, channel, status, response, deadline).await
}

/// A whole (non-streamed) answer: read it, pass it on, read its usage.
pub(super) async fn complete(
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
    let native_body = call.passes_natively(channel).then(|| body.clone());
    let (body, upstream_usage) = match channel.wire.answer(call.endpoint, body, &call.model) {
        Ok((body, usage)) => {
            let usage = usage.or_else(|| usage_in(&body));
            let body = match call.endpoint {
                Endpoint::Rerank => crate::adapters::rerank::with_documents(call.request(), body),
                _ => body,
            };
            (body, usage)
        }
        Err(BadAnswer::Unreadable(problem)) => {
            let content_type = content_type.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("none");
            let message =
                format!("channel '{}' answered with {problem}, content type {content_type}", channel.channel.name);
            return Attempt::Failed(CallError::UpstreamUnreachable(scrub(&message, &channel.api_key)), None);
        }
        Err(BadAnswer::Unconvertible(anthropic::Unconvertible(message))) => {
            return Attempt::Failed(CallError::UpstreamUnreachable(message), None);
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
    let (mut usage, usage_source) = (usage, usage_source);
    if matches!(call.endpoint, Endpoint::ImageGenerations | Endpoint::ImageEdits) {
        usage.images = images_in(&body);
    }
    let body = match call.dialect.render_answer(gateway, call, body, native_body).await {
        Ok(body) => body,
        Err(anthropic::Unconvertible(message)) => {
            return Attempt::Failed(CallError::UpstreamUnreachable(message), None);
        }
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

pub(super) fn scrubbed(error: CallError, channel: &ChannelEntry) -> CallError {
    match error {
        CallError::UpstreamUnreachable(message) => CallError::UpstreamUnreachable(scrub(&message, &channel.api_key)),
        other => other,
    }
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
        let endpoint = Endpoint::ChatCompletions;
        if let Some(Ok(Some(converted))) =
            body.as_object().map(|openai| entry.wire.request(endpoint, openai, &model, false))
        {
            body = converted;
        }
        let url = match entry.wire.url(&entry.base_url, &entry.urls, endpoint, &model, false) {
            Ok(url) => url,
            Err(error) => {
                return ChannelTestReport {
                    ok: false,
                    model: Some(model),
                    status: None,
                    latency_ms: 0,
                    error: Some(error),
                }
            }
        };
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
