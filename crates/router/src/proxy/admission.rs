//! Admission: read and check a request (body, model, quota, balance, rate limits), prepare a
//! Responses call's chat form, and order the channels that may serve it.

use super::*;

/// Parses and checks the request; returns the channels to try, in order.
pub(super) async fn admit(
    gateway: &Gateway,
    call: &mut Call,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<Arc<ChannelEntry>>, CallError> {
    let limit =
        if call.endpoint.takes_upload() { gateway.config.max_upload_bytes } else { gateway.config.max_body_bytes };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(CallError::PayloadTooLarge(limit));
    }
    let peek = if call.endpoint.takes_upload() {
        receive_upload(call, headers, body, limit).await?
    } else {
        let bytes = read_body(body, limit).await?;
        let peek = peek_request(&bytes)?;
        call.body = bytes;
        peek
    };
    let (model, stream, stream_options) = call.dialect.read_request(gateway, call, peek).await?;
    call.model = match model {
        Some(Value::String(model)) if !model.trim().is_empty() => model,
        _ => {
            return Err(CallError::BadRequest {
                message: "you must provide a model parameter".into(),
                param: Some("model"),
            })
        }
    };
    let suffix = (call.endpoint == Endpoint::Completions).then(|| call.request().get("suffix")).flatten();
    if suffix.and_then(Value::as_str).is_some_and(|suffix| !suffix.is_empty()) {
        call.endpoint = Endpoint::Infill;
    }
    call.is_stream = call.endpoint.can_stream() && stream == Some(Value::Bool(true));
    if call.endpoint.answers_verbatim() {
        // Streams of the upstream's own events, passed on as they come (see `relay`).
        let speech_events = call.request().get("stream_format").and_then(Value::as_str) == Some("sse");
        call.is_stream = stream == Some(Value::Bool(true)) || speech_events;
    }
    if call.endpoint == Endpoint::AudioSpeech {
        let input = call.request().get("input").and_then(Value::as_str).unwrap_or_default();
        call.units.characters = input.chars().count() as u64;
    }
    if call.is_stream && call.endpoint.can_stream() {
        call.client_wants_usage =
            stream_options.as_ref().and_then(|o| o.get("include_usage")) == Some(&Value::Bool(true));
    }
    if call.dialect == Dialect::OpenAi && (!call.is_stream || call.client_wants_usage) {
        call.as_received = Some(call.body.clone());
    }
    if call.is_stream && call.endpoint.can_stream() && !call.client_wants_usage {
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
        return Err(CallError::ModelNotAllowed(format!(
            "The token '{}' is not allowed to use the model '{}'.",
            token.name, call.model
        )));
    }
    let mut snapshot = gateway.snapshot.load();
    // Counted as under way from here, so that calls starting together each see the others; `record`
    // ends it however the call ends.
    let (token_under_way, account_under_way) = gateway.ledger.start_call(&call.token);
    call.under_way = true;
    if let Some(limit) = token.quota_limit {
        let used = call.token.used();
        if used >= limit {
            return Err(CallError::InsufficientQuota(format!(
                "You exceeded your current quota: the token '{}' has used its {limit} limit.",
                token.name
            )));
        }
        if used.saturating_add(token_under_way.expected) >= limit {
            return Err(CallError::QuotaBusy(format!(
                "The token '{}' has {} left of its {limit} limit, and its calls under way ({}) are expected to use it. Try again when they finish.",
                token.name,
                limit.saturating_sub(used),
                token_under_way.calls
            )));
        }
    }
    if let Some(credit) = snapshot.account_credit {
        let used = gateway.ledger.account_used();
        if used >= credit {
            return Err(CallError::InsufficientQuota(
                "You exceeded your current quota: the account balance is spent. Top up in the console.".into(),
            ));
        }
        if used.saturating_add(account_under_way.expected) >= credit {
            return Err(CallError::QuotaBusy(format!(
                "The account balance has {} left, and the calls under way ({}) are expected to use it. Try again when they finish.",
                credit.saturating_sub(used),
                account_under_way.calls
            )));
        }
    }
    let not_found = || {
        CallError::ModelNotFound(format!(
            "The model '{}' does not exist or you do not have access to it (no enabled channel in group '{}' serves it).",
            call.model, token.group
        ))
    };
    let group = snapshot.group(&token.group);
    // A local deployment, loaded or not, is held for the call: woken if stopped, never unloaded
    // under it.
    let wake = group
        .filter(|group| group.all_channels)
        .and_then(|_| gateway.local.get())
        .and_then(|local| local.acquire(&call.model));
    let serves = |group: &GroupEntry| group.members.iter().any(|m| m.channel.channel.serves(&call.model));
    if wake.is_none() && !group.is_some_and(serves) {
        return Err(not_found());
    }
    let limits = Limits { rpm: token.rpm_limit, tpm: token.tpm_limit };
    if limits.is_limited() {
        let estimate = if limits.tpm.is_some() { estimated_call_tokens(call.request()) } else { 0 };
        call.reservation = gateway.limiter.admit(token.id, limits, estimate).await.map_err(|limited| {
            let (unit, label) = if limited.requests { ("requests", "RPM") } else { ("tokens", "TPM") };
            CallError::RateLimited {
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
    if let Some(wake) = wake {
        call.lease = Some(wake.await?);
        if let Some(local) = gateway.local.get() {
            local.keep_alive(&call.model, call.keep_alive);
        }
        // It registered its channel on becoming ready.
        snapshot = gateway.snapshot.load();
    }
    let group = snapshot.group(&token.group).ok_or_else(not_found)?;
    let members: Vec<&Member<ChannelEntry>> =
        group.members.iter().filter(|m| m.channel.channel.serves(&call.model)).collect();
    if members.is_empty() {
        return Err(not_found());
    }
    Ok(balancer::order(group.strategy, &group.rotation, &call.model, members))
}

/// Receives a multipart upload into the call; its `model` and `stream` fields are the call's.
async fn receive_upload(
    call: &mut Call,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<RequestPeek, CallError> {
    let upload = Upload::receive(headers.get(header::CONTENT_TYPE), body, limit as u64).await?;
    let stream = upload.field("stream").map(|flag| Value::Bool(flag.trim().eq_ignore_ascii_case("true")));
    let peek = RequestPeek { model: upload.field("model").map(Value::from), stream, stream_options: None };
    call.units.audio_ms =
        upload.files().find_map(|file| wav_duration_ms(&file.value, file.end - file.start)).unwrap_or(0);
    call.upload = Some(Arc::new(upload));
    Ok(peek)
}

/// Completion tokens assumed when a request sets no `max_tokens`, for the tokens-per-minute reservation.
pub(super) const DEFAULT_COMPLETION_RESERVATION: i64 = 1024;

/// What a call may use: its prompt, counted, plus the completion it allows.
pub(super) fn estimated_call_tokens(request: &Map<String, Value>) -> i64 {
    let completion = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|key| request.get(*key).and_then(Value::as_i64))
        .unwrap_or(DEFAULT_COMPLETION_RESERVATION);
    estimate_prompt(request) as i64 + completion.max(0)
}

/// Reads the fields every call needs and checks the body is a JSON object a parser accepts,
/// without building the rest. Anything unusual (not an object, a repeated field) gets the full
/// parser's verdict and error message.
pub(super) fn peek_request(bytes: &[u8]) -> Result<RequestPeek, CallError> {
    let bad = |message: String| CallError::BadRequest { message, param: None };
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

/// A Responses call prepared at admission: the caller's request (a stored conversation it
/// continues expanded into its input), its chat form, and what answers need.
pub(super) struct PreparedResponses {
    pub(super) native: Map<String, Value>,
    pub(super) chat: Map<String, Value>,
    pub(super) call: ResponsesCall,
}

/// Reads a `/v1/responses` request: expands a `previous_response_id` stored here into the items
/// it stands for, and converts the request to chat for the channels that need it.
pub(super) async fn prepare_responses(
    gateway: &Gateway,
    token: &TokenEntry,
    mut native: Map<String, Value>,
    request_id: &str,
    compact: bool,
) -> Result<PreparedResponses, CallError> {
    let bad = |message: String, param: Option<&'static str>| CallError::BadRequest { message, param };
    let own_input = responses_inbound::input_items(&native).map_err(|e| bad(e.0, Some("input")))?.into_owned();
    let own_len = own_input.len();
    let model = native.get("model").and_then(Value::as_str).unwrap_or_default().to_string();
    // Echoes the request as the caller sent it, `previous_response_id` included.
    let skeleton = responses_inbound::skeleton(&native, &responses_inbound::response_id(request_id), &model);
    let store = !compact && native.get("store") != Some(&Value::Bool(false));
    let mut unconvertible = None;
    match native.get("previous_response_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(previous)) => match crate::responses::conversation(gateway, token, previous).await? {
            Some(mut conversation) => {
                // Expanded here, so that every channel sees the whole conversation.
                conversation.extend(own_input);
                native.insert("input".into(), Value::Array(conversation));
                native.remove("previous_response_id");
            }
            // An upstream with its own Responses API may know it; for the others it is missing.
            None => unconvertible = Some(format!("Previous response with id '{previous}' not found.")),
        },
        Some(_) => return Err(bad("previous_response_id must be a string".into(), Some("previous_response_id"))),
    }
    let converted = match (&unconvertible, compact) {
        (Some(_), _) => None,
        (None, false) => Some(responses_inbound::to_chat(&native)),
        (None, true) => {
            Some(responses_inbound::compaction_request(&native).and_then(|ask| responses_inbound::to_chat(&ask)))
        }
    };
    let (mut chat, tools) = match converted {
        Some(Ok(converted)) => (converted.chat, converted.tools),
        Some(Err(anthropic::Unconvertible(message))) => {
            unconvertible = Some(message);
            (Map::new(), ToolNames::default())
        }
        None => (Map::new(), ToolNames::default()),
    };
    chat.entry("model").or_insert_with(|| Value::String(model));
    let call = ResponsesCall { unconvertible, tools, skeleton, own_input: own_len, store };
    Ok(PreparedResponses { native, chat, call })
}
