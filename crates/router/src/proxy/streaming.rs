//! Streaming: forward an upstream's events as soon as each is complete, translated to the caller's
//! dialect, learning the usage on the way and ending cleanly whatever the upstream or caller does.

use super::*;

/// The longest single stream event accepted: far above any real chunk, it bounds what a broken
/// upstream that never ends an event can make us buffer.
pub(super) const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Bytes of stream events kept for estimating usage when the upstream reports none.
pub(super) const MAX_KEPT_FOR_ESTIMATE: usize = 8 * 1024 * 1024;

/// What the stream pump learns while forwarding events.
#[derive(Default)]
pub(super) struct StreamWatch {
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
pub(super) struct ResponsesWatch {
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
pub(super) enum Translator {
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
        let reported = match self {
            Translator::PassThrough(watch) => return watch.usage(call),
            Translator::Converted(translator) => translator.usage(),
            Translator::NativeResponses(watch) => watch.usage,
        };
        match reported {
            Some(usage) => (usage, UsageSource::Upstream),
            None => (Usage::new(estimate_prompt(call.request()), 0), UsageSource::Estimated),
        }
    }
}

/// What the caller receives, made from the OpenAI-format chunks the translator produces.
pub(super) enum Output {
    OpenAi,
    /// The caller speaks the upstream's own format: its events go through untouched.
    Native,
    Anthropic(AnthropicStreamWriter),
    Responses(Box<ResponsesStreamWriter>),
    /// Ollama's NDJSON lines.
    Ollama(OllamaStreamWriter),
    /// Gemini's `GenerateContentResponse`s, as events or array elements.
    Gemini(GeminiStreamWriter),
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
            Output::Ollama(writer) => rewrite_chunks(openai?, |data| writer.on_chunk(data)),
            Output::Gemini(writer) => rewrite_chunks(openai?, |data| writer.on_chunk(data)),
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
            Output::Ollama(writer) => writer.end(),
            Output::Gemini(writer) => writer.end(),
        };
        for event in end {
            out.extend_from_slice(&event);
        }
        (!out.is_empty()).then(|| out.into())
    }
}

/// Re-splits OpenAI-format chunks into events and rewrites each with `write`.
pub(super) fn rewrite_chunks(openai: Bytes, mut write: impl FnMut(&[u8]) -> Vec<Bytes>) -> Option<Bytes> {
    let mut splitter = SseSplitter::default();
    let mut events = splitter.push(&openai);
    events.extend(splitter.finish());
    let out: Vec<Bytes> = events.iter().filter_map(|event| event_data(event)).flat_map(|data| write(&data)).collect();
    (!out.is_empty()).then(|| out.concat().into())
}

pub(super) type ChunkSender = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// A response body fed chunk by chunk through the sender.
pub(super) fn body_channel() -> (ChunkSender, Body) {
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let body = Body::from_stream(futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    }));
    (sender, body)
}

/// An answer's first chunk (`None`: it has none), waited for within the first-byte timeout.
/// Until it comes nothing has reached the caller, so a failure lets another channel answer.
pub(super) async fn first_chunk(
    gateway: &Gateway,
    channel: &ChannelEntry,
    upstream: &mut UpstreamResponse,
) -> Result<Option<Bytes>, Attempt> {
    match tokio::time::timeout(gateway.config.first_byte_timeout, upstream.chunk()).await {
        Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
        Ok(None) => Ok(None),
        Ok(Some(Err(error))) => {
            let message = format!("the upstream answer failed before its first byte: {error}");
            Err(Attempt::Failed(scrubbed(CallError::UpstreamUnreachable(message), channel), None))
        }
        Err(_) => Err(Attempt::Failed(CallError::UpstreamTimeout("the upstream sent nothing".into()), None)),
    }
}

/// A streamed answer: wait for its first chunk (before that, another channel may still answer),
/// then forward each event as soon as it is complete.
pub(super) async fn stream(
    gateway: &Gateway,
    call: &Call,
    channel: &ChannelEntry,
    mut upstream: UpstreamResponse,
    reply: &mut Option<oneshot::Sender<Response>>,
    deadline: tokio::time::Instant,
) -> Attempt {
    let first = match first_chunk(gateway, channel, &mut upstream).await {
        Ok(Some(chunk)) => chunk,
        Ok(None) => {
            return Attempt::Failed(CallError::UpstreamUnreachable("the upstream stream was empty".into()), None)
        }
        Err(failed) => return failed,
    };
    let (sender, body) = body_channel();
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(call.dialect.stream_content_type()));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    let mut client_gone = !deliver(reply, with_request_id(response, &call.request_id));

    let mut splitter = SseSplitter::default();
    let mut watch = match channel.wire.stream_translator(call.endpoint, &call.model) {
        Some(translator) => Translator::Converted(translator),
        // An OpenAI-format upstream that speaks the caller's protocol: its own Responses API.
        None if call.passes_natively(channel) => Translator::NativeResponses(ResponsesWatch::default()),
        None => Translator::PassThrough(StreamWatch::default()),
    };
    let Some(mut output) = call.dialect.stream_output(call, channel) else {
        return Attempt::Failed(unanswerable(), None);
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
        let event = call.dialect.cut_event(&mut output, message);
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
pub(super) fn forwardable(
    watch: &mut StreamWatch,
    chunk: &Bytes,
    events: Vec<Bytes>,
    client_wants_usage: bool,
) -> Option<Bytes> {
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

pub(super) async fn send(sender: &ChunkSender, bytes: Bytes) -> bool {
    sender.send(Ok(bytes)).await.is_ok()
}
