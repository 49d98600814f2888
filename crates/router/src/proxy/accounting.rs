//! Accounting: price a finished call, charge it, queue its one log row, and store a Responses
//! answer that asked to be kept.

use super::*;

/// Prices the call, charges it, and queues its log row.
pub(super) async fn record(gateway: &Gateway, call: &Call, outcome: Outcome) {
    let snapshot = gateway.snapshot.load();
    let upstream_model = outcome.channel.as_ref().map(|c| c.channel.upstream_model(&call.model).to_string());
    let price = snapshot.price(&call.model).or_else(|| upstream_model.as_deref().and_then(|m| snapshot.price(m)));
    let cost = price.map_or(Money::ZERO, |price| outcome.usage.cost(price, call.created_at_ms));
    gateway.charge(&call.token, cost);
    if call.under_way {
        gateway.ledger.finish_call(&call.token, cost);
    }
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
        images: outcome.usage.images,
        audio_ms: outcome.usage.audio_ms,
        characters: outcome.usage.characters,
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

/// Keeps a Responses answer for `previous_response_id` and `GET /v1/responses/{id}`, unless the
/// caller said `store: false`.
pub(super) async fn store_response(gateway: &Gateway, call: &Call, response: &Value) {
    let Some(responses) = call.responses.as_deref().filter(|r| r.store) else { return };
    let conversation = call.conversation();
    let own_input = &conversation[conversation.len().saturating_sub(responses.own_input)..];
    let items = responses_inbound::turn_items(own_input, &response["output"]);
    crate::responses::store(gateway, call.token.token.id, response, &items).await;
}
