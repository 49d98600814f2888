//! What a key holder may read about their own key: `GET /v1/key` (BurnCloud's own), and the
//! balance routes one-api made common (`/v1/dashboard/billing/subscription` and `/usage`), which
//! NextChat-style clients and key checkers read. Each answers for the presented token only.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use burncloud_service_api::{Money, NANOS_PER_UNIT};
use serde_json::json;

use crate::proxy::{authenticate, new_request_id, with_request_id};
use crate::snapshot::TokenEntry;
use crate::Gateway;

/// What one-api reports as the limit of a key that has none; clients show it as unlimited.
const NO_LIMIT: f64 = 100_000_000.0;

fn units(money: Money) -> f64 {
    money.nanos() as f64 / NANOS_PER_UNIT as f64
}

fn answer(
    gateway: &Gateway,
    headers: &HeaderMap,
    write: impl FnOnce(&Gateway, &TokenEntry) -> serde_json::Value,
) -> Response {
    let request_id = new_request_id();
    match authenticate(gateway, headers) {
        Ok(token) => with_request_id(axum::Json(write(gateway, &token)).into_response(), &request_id),
        Err(error) => error.into_response_with_id(&request_id),
    }
}

/// `GET /v1/key`: the presented token's name, group, limits, spend and expiry, in the account's
/// currency.
pub(crate) async fn key(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    answer(&gateway, &headers, |gateway, entry| {
        let token = &entry.token;
        let used = entry.used();
        json!({
            "object": "key",
            "name": token.name,
            "key_prefix": token.key_prefix,
            "group": token.group,
            "currency": gateway.snapshot.load().account_currency.as_str(),
            "quota_limit": token.quota_limit,
            "used": used,
            "remaining": token.quota_limit.map(|limit| limit.saturating_sub(used).max(Money::ZERO)),
            "rpm_limit": token.rpm_limit,
            "tpm_limit": token.tpm_limit,
            "expires_at": token.expires_at_ms.map(|ms| ms / 1000),
            "models": token.models,
        })
    })
}

/// `GET /v1/dashboard/billing/subscription`: the key's limit (its own, else the account's credit,
/// else `100000000` for none), in the account's currency whatever the field names say.
pub(crate) async fn subscription(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    answer(&gateway, &headers, |gateway, entry| {
        let limit = entry.token.quota_limit.or(gateway.snapshot.load().account_credit).map_or(NO_LIMIT, units);
        json!({
            "object": "billing_subscription",
            "has_payment_method": true,
            "soft_limit_usd": limit,
            "hard_limit_usd": limit,
            "system_hard_limit_usd": limit,
            "access_until": entry.token.expires_at_ms.map_or(0, |ms| ms / 1000),
        })
    })
}

/// `GET /v1/dashboard/billing/usage`: what the key has spent, in hundredths (cents), as one-api
/// answers it: all of it, whatever `start_date` and `end_date` ask.
pub(crate) async fn usage(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    answer(&gateway, &headers, |_, entry| json!({"object": "list", "total_usage": units(entry.used()) * 100.0}))
}
