//! Dialects: everything that depends on the protocol a caller speaks — its route, its error shape,
//! how its request becomes the router's OpenAI-format call, and how a whole answer, a stream and a
//! broken stream are written back to it — one method each, matched over every `Dialect` with no
//! wildcard arm, so a new door is one enum arm that the compiler then asks for in each of them.

use super::*;

/// The protocol a caller speaks: its requests, answers, streams and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    OpenAi,
    Anthropic,
    /// OpenAI's Responses API (`/v1/responses`).
    Responses,
    /// Its compaction (`/v1/responses/compact`): a Responses request in, a `response.compaction` out.
    ResponsesCompact,
    /// Ollama's API (`/api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings`).
    Ollama(OllamaOp),
    /// Gemini's own API (`/v1beta/models/{model}:{method}`).
    Gemini(GeminiOp),
}

/// The request fields every call needs, whatever the dialect: model, stream and stream options.
pub(super) type CallFields = (Option<Value>, Option<Value>, Option<Value>);

fn native_request(body: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(native)) => native,
        _ => Map::new(),
    }
}

impl Dialect {
    /// The route the caller called, for its log row.
    pub(super) fn route(self, endpoint: Endpoint) -> &'static str {
        match self {
            Dialect::OpenAi => endpoint.route(),
            Dialect::Anthropic => "/v1/messages",
            Dialect::Responses => "/v1/responses",
            Dialect::ResponsesCompact => "/v1/responses/compact",
            Dialect::Ollama(op) => op.route(),
            Dialect::Gemini(op) => op.route(),
        }
    }

    /// A stream's media type: Ollama's streams are NDJSON, the others server-sent events.
    pub(super) fn stream_content_type(self) -> &'static str {
        match self {
            Dialect::Ollama(_) => "application/x-ndjson",
            Dialect::Gemini(GeminiOp::StreamGenerate { sse: false }) => "application/json",
            Dialect::Gemini(_) => "text/event-stream",
            Dialect::OpenAi | Dialect::Anthropic | Dialect::Responses | Dialect::ResponsesCompact => {
                "text/event-stream"
            }
        }
    }

    /// Whether `channel` speaks this dialect itself, so that the caller's own request goes up and
    /// the upstream's own answer comes back, untranslated: a Claude caller on a Claude channel, or
    /// a Responses caller on a channel with its own Responses API.
    pub(super) fn native_on(self, channel: &ChannelEntry) -> bool {
        match self {
            Dialect::Anthropic => channel.wire == Wire::Anthropic,
            Dialect::Responses | Dialect::ResponsesCompact => channel.responses_url.is_some(),
            // Content generated, whole or as server-sent events: what Gemini itself answers
            // (grounding, safety ratings, thought signatures) reaches the caller untouched. A JSON
            // array stream is written from Gemini's events, so it is converted.
            Dialect::Gemini(op) => {
                channel.wire == Wire::Gemini
                    && matches!(op, GeminiOp::Generate | GeminiOp::StreamGenerate { sse: true })
            }
            Dialect::OpenAi | Dialect::Ollama(_) => false,
        }
    }

    /// Whether the caller's own request names its model in the body (Gemini's names it in the
    /// path, and its API refuses fields it does not know).
    pub(super) fn model_in_body(self) -> bool {
        match self {
            Dialect::Gemini(_) => false,
            Dialect::OpenAi
            | Dialect::Anthropic
            | Dialect::Responses
            | Dialect::ResponsesCompact
            | Dialect::Ollama(_) => true,
        }
    }

    /// Where the caller's own request goes on a channel that takes it natively at an address of
    /// its own (the Responses API); `None`: the wire's usual URL.
    pub(super) fn native_url(self, channel: &ChannelEntry) -> Option<Result<UpstreamUrl, String>> {
        match self {
            Dialect::OpenAi | Dialect::Anthropic | Dialect::Ollama(_) | Dialect::Gemini(_) => None,
            Dialect::Responses => channel.responses_url.clone().map(Ok),
            Dialect::ResponsesCompact => channel.responses_url.as_ref().map(|_| {
                reqwest::Url::parse(&format!("{}/responses/compact", channel.base_url))
                    .map(UpstreamUrl::new)
                    .map_err(|e| format!("the compaction URL does not parse: {e}"))
            }),
        }
    }

    /// Reads the caller's request into `call` (its OpenAI form, and the caller's own where a
    /// channel may take it natively); returns the fields every call needs.
    pub(super) async fn read_request(
        self,
        gateway: &Gateway,
        call: &mut Call,
        peek: RequestPeek,
    ) -> Result<CallFields, CallError> {
        match self {
            // The rest of an OpenAI-format body is parsed only if something needs it.
            Dialect::OpenAi => Ok((peek.model, peek.stream, peek.stream_options)),
            Dialect::Anthropic => {
                let native = native_request(&call.body);
                let request = anthropic_inbound::to_openai(&native)
                    .map_err(|anthropic::Unconvertible(message)| CallError::BadRequest { message, param: None })?;
                call.native = Some(native);
                let field = |name: &str| request.get(name).cloned();
                let fields = (field("model"), field("stream"), field("stream_options"));
                let _ = call.request.set(request);
                Ok(fields)
            }
            Dialect::Responses | Dialect::ResponsesCompact => {
                let compact = self == Dialect::ResponsesCompact;
                let native = native_request(&call.body);
                let prepared = prepare_responses(gateway, &call.token, native, &call.request_id, compact).await?;
                let field = |name: &str| prepared.native.get(name).cloned();
                let stream = field("stream").filter(|_| !compact);
                let stream_options = (stream == Some(Value::Bool(true))).then(|| json!({"include_usage": true}));
                let fields = (field("model"), stream, stream_options);
                call.native = Some(prepared.native);
                call.responses = Some(Box::new(prepared.call));
                let _ = call.request.set(prepared.chat);
                Ok(fields)
            }
            Dialect::Ollama(op) => {
                let native = native_request(&call.body);
                let bad = |anthropic::Unconvertible(message)| CallError::BadRequest { message, param: None };
                call.keep_alive = ollama_inbound::keep_alive(&native).map_err(bad)?;
                let request = ollama_inbound::to_openai(op, &native).map_err(bad)?;
                let field = |name: &str| request.get(name).cloned();
                let fields = (field("model"), field("stream"), field("stream_options"));
                let _ = call.request.set(request);
                Ok(fields)
            }
            Dialect::Gemini(op) => {
                let native = native_request(&call.body);
                let model = peek.model.as_ref().and_then(Value::as_str).unwrap_or_default();
                let request = match gemini_inbound::to_openai(op, model, &native) {
                    Ok(request) => request,
                    // What only Google runs (its search, files it holds) may still go to a Gemini
                    // channel as it is; every other channel refuses it with this reason.
                    Err(anthropic::Unconvertible(message))
                        if matches!(op, GeminiOp::Generate | GeminiOp::StreamGenerate { sse: true }) =>
                    {
                        call.unconvertible = Some(message);
                        let stream = op != GeminiOp::Generate;
                        let mut request = Map::new();
                        request.insert("model".into(), Value::from(model));
                        request.insert("stream".into(), Value::Bool(stream));
                        request
                    }
                    Err(anthropic::Unconvertible(message)) => {
                        return Err(CallError::BadRequest { message, param: None })
                    }
                };
                let field = |name: &str| request.get(name).cloned();
                let fields = (field("model"), field("stream"), field("stream_options"));
                let _ = call.request.set(request);
                call.native = Some(native);
                Ok(fields)
            }
        }
    }

    /// An error as the caller's protocol shapes it.
    pub(crate) fn error_response(self, error: CallError, request_id: &str) -> Response {
        let message = error.message();
        let mut response = error.into_response_with_id(request_id);
        match self {
            Dialect::OpenAi | Dialect::Responses | Dialect::ResponsesCompact => {}
            Dialect::Anthropic => {
                let status = response.status().as_u16();
                *response.body_mut() = Body::from(anthropic_inbound::error_body(status, &message));
            }
            Dialect::Ollama(_) => *response.body_mut() = Body::from(ollama_inbound::error_body(&message)),
            Dialect::Gemini(_) => {
                let status = response.status().as_u16();
                *response.body_mut() = Body::from(gemini_inbound::error_body(status, &message));
            }
        }
        response
    }

    /// A whole answer for the caller: the upstream's own bytes where it speaks the caller's
    /// protocol (`native`), otherwise the OpenAI-format `body` converted (and a Responses answer
    /// stored when asked to be).
    pub(super) async fn render_answer(
        self,
        gateway: &Gateway,
        call: &Call,
        body: Bytes,
        native: Option<Bytes>,
    ) -> Result<Bytes, anthropic::Unconvertible> {
        let lost = || anthropic::Unconvertible(unanswerable().message());
        match (self, native) {
            (Dialect::OpenAi, _) => Ok(body),
            (Dialect::Ollama(op), _) => ollama_inbound::from_openai(op, &body, &call.model, call.started),
            (
                Dialect::Anthropic | Dialect::Responses | Dialect::ResponsesCompact | Dialect::Gemini(_),
                Some(native),
            ) => Ok(native),
            (Dialect::Gemini(op), None) => gemini_inbound::from_openai(op, &body, &call.model, &call.request_id),
            (Dialect::Anthropic, None) => anthropic_inbound::from_openai_response(&body, &call.model),
            (Dialect::Responses, None) => {
                let responses = call.responses.as_deref().ok_or_else(lost)?;
                let response =
                    responses_inbound::from_chat_response(&body, responses.skeleton.clone(), &responses.tools)?;
                store_response(gateway, call, &response).await;
                Ok(Bytes::from(response.to_string()))
            }
            (Dialect::ResponsesCompact, None) => {
                let responses = call.responses.as_deref().ok_or_else(lost)?;
                let id = responses.skeleton["id"].as_str().unwrap_or_default();
                responses_inbound::compaction_from_chat(&body, id, &call.conversation())
                    .map(|compacted| Bytes::from(compacted.to_string()))
            }
        }
    }

    /// What writes a stream for the caller from the OpenAI-format chunks; `None` if the call lost
    /// what its writer needs.
    pub(super) fn stream_output(self, call: &Call, channel: &ChannelEntry) -> Option<Output> {
        if call.passes_natively(channel) {
            return Some(Output::Native);
        }
        match self {
            Dialect::OpenAi => Some(Output::OpenAi),
            Dialect::Ollama(op) => Some(Output::Ollama(OllamaStreamWriter::new(op, &call.model, call.started))),
            Dialect::Gemini(op) => {
                let sse = op != GeminiOp::StreamGenerate { sse: false };
                Some(Output::Gemini(GeminiStreamWriter::new(sse, &call.model, &call.request_id)))
            }
            Dialect::Anthropic => Some(Output::Anthropic(AnthropicStreamWriter::new(&call.model))),
            Dialect::Responses | Dialect::ResponsesCompact => call.responses.as_deref().map(|responses| {
                Output::Responses(Box::new(ResponsesStreamWriter::new(
                    responses.skeleton.clone(),
                    responses.tools.clone(),
                )))
            }),
        }
    }

    /// The event that tells the caller the stream broke, in the caller's protocol.
    pub(super) fn cut_event(self, output: &mut Output, message: &str) -> Bytes {
        match output {
            Output::Responses(writer) => return writer.fail(message).concat().into(),
            Output::Ollama(writer) => return writer.fail(message),
            Output::Gemini(writer) => return writer.fail(message),
            Output::OpenAi | Output::Native | Output::Anthropic(_) => {}
        }
        match self {
            Dialect::OpenAi => {
                let event = json!({"error": {"message": message, "type": "upstream_error", "param": null, "code": "upstream_cut"}});
                Bytes::from(format!("data: {event}\n\n"))
            }
            Dialect::Anthropic => {
                let event = json!({"type": "error", "error": {"type": "api_error", "message": message}});
                Bytes::from(format!("event: error\ndata: {event}\n\n"))
            }
            Dialect::Responses | Dialect::ResponsesCompact => {
                let event = json!({"type": "error", "code": "upstream_cut", "message": message, "param": null, "sequence_number": 0});
                Bytes::from(format!("event: error\ndata: {event}\n\n"))
            }
            Dialect::Ollama(_) => ollama_inbound::error_body(message),
            // Only a Gemini stream passed through natively gets here: it is server-sent events.
            Dialect::Gemini(_) => Bytes::from(format!(
                "data: {}\r\n\r\n",
                String::from_utf8_lossy(&gemini_inbound::error_body(502, message))
            )),
        }
    }
}

/// An error as the caller's protocol shapes it.
pub(crate) fn dialect_error(dialect: Dialect, error: CallError, request_id: &str) -> Response {
    dialect.error_response(error, request_id)
}
