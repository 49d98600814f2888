//! The gateway's configuration and accounts: channels, groups, tokens, prices, the account, logs
//! and usage; and the app's own health, window and admin key.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use burncloud_service_api::{
    Account, AccountPatch, AccountService, Channel, ChannelHealthReport, ChannelInput, ChannelMonitor, ChannelPatch,
    ChannelService, ChannelTestReport, CreatedToken, Group, GroupInput, GroupPatch, GroupService, LogPage, LogQuery,
    LogService, PresetSelection, Price, PriceInput, PricePreset, PriceService, Token, TokenInput, TokenPatch,
    TokenService, TopUp, UsageQuery, UsageReport,
};
use serde_json::json;

use super::api::{deleted_id, deleted_name, object, ConsoleApi, Doc};
use super::extract::{blocking, body, deleted, id, name, on_blocking_thread, query, ConsoleResult};
use crate::state::AppState;

pub(super) fn routes(api: ConsoleApi) -> ConsoleApi {
    const CHANNELS: &str = "/console/api/channels";
    const CHANNEL: &str = "/console/api/channels/{id}";
    const TOKENS: &str = "/console/api/tokens";
    const TOKEN: &str = "/console/api/tokens/{id}";
    const GROUPS: &str = "/console/api/groups";
    const GROUP: &str = "/console/api/groups/{id}";
    const PRICE: &str = "/console/api/prices/{model}";
    const ACCOUNT: &str = "/console/api/account";
    api.get(CHANNELS, Doc::answers::<Vec<Channel>>("List channels"), list_channels)
        .post(CHANNELS, Doc::answers::<Channel>("Create a channel").status(201).body::<ChannelInput>(), create_channel)
        .get(CHANNEL, Doc::answers::<Channel>("One channel"), get_channel)
        .put(CHANNEL, Doc::answers::<Channel>("Change a channel").body::<ChannelPatch>(), update_channel)
        .delete(CHANNEL, Doc::shaped("Delete a channel", deleted_id), delete_channel)
        .post(
            "/console/api/channels/{id}/test",
            Doc::answers::<ChannelTestReport>("Send a test call through a channel"),
            test_channel,
        )
        .get(TOKENS, Doc::answers::<Vec<Token>>("List tokens"), list_tokens)
        .post(TOKENS, Doc::answers::<CreatedToken>("Create a token").status(201).body::<TokenInput>(), create_token)
        .get(TOKEN, Doc::answers::<Token>("One token"), get_token)
        .put(TOKEN, Doc::answers::<Token>("Change a token").body::<TokenPatch>(), update_token)
        .delete(TOKEN, Doc::shaped("Delete a token", deleted_id), delete_token)
        .get("/console/api/prices", Doc::answers::<Vec<Price>>("List model prices"), list_prices)
        .put(PRICE, Doc::answers::<Price>("Set a model's price").body::<PriceInput>(), set_price)
        .delete(PRICE, Doc::shaped("Remove a model's price", deleted_name), delete_price)
        .get(
            "/console/api/prices/presets",
            Doc::answers::<Vec<PricePreset>>("Providers' published prices, with their source and the day checked"),
            price_presets,
        )
        .post(
            "/console/api/prices/presets/apply",
            Doc::answers::<Vec<Price>>("Set models' prices to their published ones").body::<PresetSelection>(),
            apply_price_presets,
        )
        .get(ACCOUNT, Doc::answers::<Account>("Balance and spend"), get_account)
        .put(ACCOUNT, Doc::answers::<Account>("Change currency or credit").body::<AccountPatch>(), update_account)
        .post("/console/api/account/topup", Doc::answers::<Account>("Add credit").body::<TopUp>(), top_up)
        .get("/console/api/logs", Doc::answers::<LogPage>("Logged calls, newest first").query::<LogQuery>(), query_logs)
        .get(
            "/console/api/usage",
            Doc::answers::<UsageReport>("Requests, tokens and cost over a time range").query::<UsageQuery>(),
            usage,
        )
        .get(GROUPS, Doc::answers::<Vec<Group>>("List groups"), list_groups)
        .post(GROUPS, Doc::answers::<Group>("Create a group").status(201).body::<GroupInput>(), create_group)
        .get(GROUP, Doc::answers::<Group>("One group"), get_group)
        .put(GROUP, Doc::answers::<Group>("Change a group").body::<GroupPatch>(), update_group)
        .delete(GROUP, Doc::shaped("Delete a group", deleted_id), delete_group)
        .post(
            "/console/api/admin-key/rotate",
            Doc::shaped("Replace the admin key", |_| object(json!({"admin_key": {"type": "string"}}))),
            rotate_admin_key,
        )
        .get(
            "/console/internal/health",
            Doc::shaped("Breakers, log writer, Redis, secret store", |generator| {
                let channels = generator.subschema_for::<Vec<ChannelHealthReport>>().to_value();
                json!({"type": "object", "properties": {
                    "status": {"type": "string"}, "channels": channels, "log_writer": {"type": "object"},
                    "redis": {"type": "string"}, "secrets": {"type": "string"}}})
            }),
            health,
        )
        .post(
            "/console/internal/show",
            Doc::shaped("Ask the running app to show its window", |_| {
                object(json!({"requested": {"type": "boolean"}}))
            })
            .status(202),
            show_window,
        )
}

async fn list_channels(State(state): State<AppState>) -> ConsoleResult {
    blocking(state.store, StatusCode::OK, |s| s.list_channels()).await
}

async fn create_channel(
    State(state): State<AppState>,
    payload: Result<Json<ChannelInput>, JsonRejection>,
) -> ConsoleResult {
    let input = body(payload)?;
    blocking(state.store, StatusCode::CREATED, move |s| s.create_channel(input)).await
}

async fn get_channel(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(state.store, StatusCode::OK, move |s| s.get_channel(id)).await
}

async fn update_channel(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    payload: Result<Json<ChannelPatch>, JsonRejection>,
) -> ConsoleResult {
    let (id, patch) = (id(path)?, body(payload)?);
    blocking(state.store, StatusCode::OK, move |s| s.update_channel(id, patch)).await
}

async fn delete_channel(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(state.store, StatusCode::OK, move |s| s.delete_channel(id).map(|()| deleted(id))).await
}

/// Sends a minimal real request through the channel and reports latency or the upstream's error.
async fn test_channel(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    Ok(Json(state.monitor.test_channel(id).await?).into_response())
}

async fn list_tokens(State(state): State<AppState>) -> ConsoleResult {
    blocking(state.store, StatusCode::OK, |s| s.list_tokens()).await
}

async fn create_token(
    State(state): State<AppState>,
    payload: Result<Json<TokenInput>, JsonRejection>,
) -> ConsoleResult {
    let input = body(payload)?;
    blocking(state.store, StatusCode::CREATED, move |s| s.create_token(input)).await
}

async fn get_token(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(state.store, StatusCode::OK, move |s| s.get_token(id)).await
}

async fn update_token(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    payload: Result<Json<TokenPatch>, JsonRejection>,
) -> ConsoleResult {
    let (id, patch) = (id(path)?, body(payload)?);
    blocking(state.store, StatusCode::OK, move |s| s.update_token(id, patch)).await
}

async fn delete_token(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(state.store, StatusCode::OK, move |s| s.delete_token(id).map(|()| deleted(id))).await
}

async fn list_prices(State(state): State<AppState>) -> ConsoleResult {
    blocking(state.store, StatusCode::OK, |s| s.list_prices()).await
}

async fn set_price(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    payload: Result<Json<PriceInput>, JsonRejection>,
) -> ConsoleResult {
    let (model, input) = (name(path)?, body(payload)?);
    blocking(state.store, StatusCode::OK, move |s| s.set_price(&model, input)).await
}

async fn delete_price(State(state): State<AppState>, path: Result<Path<String>, PathRejection>) -> ConsoleResult {
    let model = name(path)?;
    blocking(state.store, StatusCode::OK, move |s| s.delete_price(&model).map(|()| deleted(&model))).await
}

async fn price_presets(State(state): State<AppState>) -> ConsoleResult {
    blocking(state.store, StatusCode::OK, |s| s.price_presets()).await
}

async fn apply_price_presets(
    State(state): State<AppState>,
    payload: Result<Json<PresetSelection>, JsonRejection>,
) -> ConsoleResult {
    let selection = body(payload)?;
    blocking(state.store, StatusCode::OK, move |s| s.apply_price_presets(selection)).await
}

async fn get_account(State(state): State<AppState>) -> ConsoleResult {
    blocking(state.store, StatusCode::OK, |s| s.account()).await
}

async fn update_account(
    State(state): State<AppState>,
    payload: Result<Json<AccountPatch>, JsonRejection>,
) -> ConsoleResult {
    let patch = body(payload)?;
    blocking(state.store, StatusCode::OK, move |s| s.update_account(patch)).await
}

async fn top_up(State(state): State<AppState>, payload: Result<Json<TopUp>, JsonRejection>) -> ConsoleResult {
    let TopUp { amount } = body(payload)?;
    blocking(state.store, StatusCode::OK, move |s| s.top_up(amount)).await
}

async fn query_logs(State(state): State<AppState>, params: Result<Query<LogQuery>, QueryRejection>) -> ConsoleResult {
    let filter = query(params)?;
    blocking(state.store, StatusCode::OK, move |s| s.query_logs(&filter)).await
}

async fn usage(State(state): State<AppState>, params: Result<Query<UsageQuery>, QueryRejection>) -> ConsoleResult {
    let filter = query(params)?;
    blocking(state.store, StatusCode::OK, move |s| s.usage(&filter)).await
}

async fn list_groups(State(state): State<AppState>) -> ConsoleResult {
    blocking(state.store, StatusCode::OK, |s| s.list_groups()).await
}

async fn create_group(
    State(state): State<AppState>,
    payload: Result<Json<GroupInput>, JsonRejection>,
) -> ConsoleResult {
    let input = body(payload)?;
    blocking(state.store, StatusCode::CREATED, move |s| s.create_group(input)).await
}

async fn get_group(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(state.store, StatusCode::OK, move |s| s.get_group(id)).await
}

async fn update_group(
    State(state): State<AppState>,
    path: Result<Path<i64>, PathRejection>,
    payload: Result<Json<GroupPatch>, JsonRejection>,
) -> ConsoleResult {
    let (id, patch) = (id(path)?, body(payload)?);
    blocking(state.store, StatusCode::OK, move |s| s.update_group(id, patch)).await
}

async fn delete_group(State(state): State<AppState>, path: Result<Path<i64>, PathRejection>) -> ConsoleResult {
    let id = id(path)?;
    blocking(state.store, StatusCode::OK, move |s| s.delete_group(id).map(|()| deleted(id))).await
}

/// `GET /console/internal/health`: breakers per channel, the log writer, Redis.
async fn health(State(state): State<AppState>) -> ConsoleResult {
    // Health answers even while the database does not: calls are still served from memory.
    let (status, channels, database_error) =
        match on_blocking_thread(state.monitor.clone(), |monitor| monitor.channel_health()).await {
            Ok(channels) => ("ok", channels, None),
            Err(crate::error::ConsoleError::Service(error)) => ("degraded", Vec::new(), Some(error.to_string())),
            Err(other) => ("degraded", Vec::new(), Some(format!("{other:?}"))),
        };
    let stats = state.gateway.log_sink().stats();
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    let written = stats.written.load(relaxed);
    Ok(Json(json!({
        "status": status,
        "channels": channels,
        "log_writer": {
            "queued": stats.queued.load(relaxed).saturating_sub(written),
            "written": written,
            "write_errors": stats.write_errors.load(relaxed),
            "failing": stats.failing.load(relaxed),
        },
        "redis": state.gateway.redis_status(),
        "secrets": state.secrets_store,
        "database": state.database,
        "database_error": database_error,
    }))
    .into_response())
}

/// `POST /console/internal/show`: a second launch asks the running app to show its window.
async fn show_window(State(state): State<AppState>) -> ConsoleResult {
    state.show_window.notify_one();
    Ok((StatusCode::ACCEPTED, Json(json!({"requested": true}))).into_response())
}

/// `POST /console/api/admin-key/rotate`: a new admin key; the one this request used stops working.
async fn rotate_admin_key(State(state): State<AppState>) -> ConsoleResult {
    use burncloud_service_api::AdminKeyService;
    blocking(state.admin_keys, StatusCode::OK, |keys| keys.rotate_admin_key().map(|key| json!({"admin_key": key})))
        .await
}
