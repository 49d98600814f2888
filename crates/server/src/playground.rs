//! The playground's way into the gateway: each call goes through the very `/v1` router clients
//! use, in process, under a built-in token, so it is routed, limited, logged and priced like any
//! other call, and a stopped local model loads for it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use burncloud_router::Gateway;
use burncloud_service_api::{
    LogQuery, LogService, PlaygroundEvent, PlaygroundModel, PlaygroundRequest, PlaygroundService, PlaygroundStats,
    ServiceError, ServiceFuture, ServiceResult, SettingsService, TokenInput, TokenService, PLAYGROUND_TOKEN_NAME,
    PLAYGROUND_TOKEN_SETTING,
};
use burncloud_service_gateway::GatewayStore;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Events buffered between the call and the page.
const EVENTS: usize = 256;

/// Cloning shares it.
#[derive(Clone)]
pub struct Playground {
    router: axum::Router,
    gateway: Arc<Gateway>,
    store: Arc<GatewayStore>,
    /// The built-in token's key, once read or made.
    key: Arc<Mutex<Option<String>>>,
    /// The chats streaming now; `stop` waits for them at shutdown.
    chats: TaskTracker,
}

impl Playground {
    pub fn new(gateway: Arc<Gateway>, store: Arc<GatewayStore>) -> Playground {
        let router = burncloud_router::create_router_app(gateway.clone());
        Playground { router, gateway, store, key: Arc::new(Mutex::new(None)), chats: TaskTracker::new() }
    }

    /// Gives the chats streaming now up to `limit` to finish (the app is shutting down).
    pub async fn stop(&self, limit: std::time::Duration) {
        self.chats.close();
        if tokio::time::timeout(limit, self.chats.wait()).await.is_err() {
            tracing::warn!(chats = self.chats.len(), "playground chats still streaming at shutdown");
        }
    }

    /// The built-in token's key: the stored one while its token exists, else a new token.
    fn key(&self) -> ServiceResult<String> {
        let mut cached = self.key.lock().unwrap_or_else(|p| p.into_inner());
        let stored = self.store.get_setting(PLAYGROUND_TOKEN_SETTING)?.filter(|key| !key.is_empty());
        let tokens = self.store.list_tokens()?;
        let alive = |key: &str| {
            tokens.iter().any(|t| t.name == PLAYGROUND_TOKEN_NAME && t.enabled && key.starts_with(&t.key_prefix))
        };
        if let Some(key) = cached.clone().or(stored).filter(|key| alive(key)) {
            *cached = Some(key.clone());
            return Ok(key);
        }
        let created = self.store.create_token(TokenInput {
            name: PLAYGROUND_TOKEN_NAME.into(),
            group: burncloud_service_api::DEFAULT_GROUP.into(),
            quota_limit: None,
            rpm_limit: None,
            tpm_limit: None,
            expires_at_ms: None,
            models: Vec::new(),
            enabled: true,
        })?;
        self.store.set_setting(PLAYGROUND_TOKEN_SETTING, &created.key)?;
        *cached = Some(created.key.clone());
        Ok(created.key)
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> ServiceResult<axum::response::Response> {
        let key = self.key()?;
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
            .map_err(|e| ServiceError::Storage(format!("the playground request could not be built: {e}")))?;
        self.router
            .clone()
            .oneshot(request)
            .await
            .map_err(|never| ServiceError::Storage(format!("the gateway did not answer: {never:?}")))
    }

    /// Streams one call's answer into `events`; stops as soon as the page stops listening.
    async fn stream(self, request: PlaygroundRequest, events: mpsc::Sender<PlaygroundEvent>) {
        let started = Instant::now();
        let response = match self.send(Method::POST, "/v1/chat/completions", Some(request.body())).await {
            Ok(response) => response,
            Err(error) => {
                let _ = events.send(PlaygroundEvent::Failed(error.to_string())).await;
                return;
            }
        };
        let status = response.status();
        let request_id =
            response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let mut body = response.into_body();
        if status != StatusCode::OK {
            let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            let _ = events.send(PlaygroundEvent::Failed(error_message(status, &bytes))).await;
            return;
        }
        let mut stats = PlaygroundStats { request_id, ..PlaygroundStats::default() };
        let mut pending = String::new();
        while let Some(frame) = body.frame().await {
            let chunk = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
                Err(error) => {
                    let _ = events.send(PlaygroundEvent::Failed(format!("the answer was cut off: {error}"))).await;
                    return;
                }
            };
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                for data in event.lines().filter_map(|line| line.strip_prefix("data:")).map(str::trim) {
                    if data == "[DONE]" {
                        continue;
                    }
                    let Ok(chunk) = serde_json::from_str::<Value>(data) else { continue };
                    if let Some(message) = chunk.pointer("/error/message").and_then(Value::as_str) {
                        let _ = events.send(PlaygroundEvent::Failed(message.to_string())).await;
                        return;
                    }
                    if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
                        stats.prompt_tokens = usage["prompt_tokens"].as_u64().unwrap_or(0);
                        stats.completion_tokens = usage["completion_tokens"].as_u64().unwrap_or(0);
                    }
                    let text = chunk.pointer("/choices/0/delta/content").and_then(Value::as_str).unwrap_or_default();
                    if text.is_empty() {
                        continue;
                    }
                    stats.first_token_ms.get_or_insert(started.elapsed().as_millis() as u64);
                    if events.send(PlaygroundEvent::Text(text.to_string())).await.is_err() {
                        // The page stopped the answer: dropping the body cancels the call.
                        return;
                    }
                }
            }
        }
        stats.total_ms = started.elapsed().as_millis() as u64;
        drop(body);
        stats.cost = self.charged(&stats.request_id).await;
        let _ = events.send(PlaygroundEvent::Finished(stats)).await;
    }

    /// What the call was charged, from its log row once written.
    async fn charged(&self, request_id: &str) -> Option<burncloud_service_api::Money> {
        // The row is written once the stream's accounting ends, just after its last byte.
        for _ in 0..50 {
            self.gateway.log_sink().flush().await;
            let query = LogQuery { request_id: Some(request_id.to_string()), limit: Some(1), ..LogQuery::default() };
            if let Some(row) = self.store.query_logs(&query).ok().and_then(|page| page.items.into_iter().next()) {
                return row.priced.then_some(row.cost);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        None
    }
}

fn error_message(status: StatusCode, body: &[u8]) -> String {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let message = parsed.as_ref().and_then(|v| v.pointer("/error/message")).and_then(Value::as_str);
    match message {
        Some(message) => format!("{} {message}", status.as_u16()),
        None => format!("{} {}", status.as_u16(), String::from_utf8_lossy(body)),
    }
}

impl PlaygroundService for Playground {
    fn models(&self) -> ServiceFuture<Vec<PlaygroundModel>> {
        let playground = self.clone();
        Box::pin(async move {
            let response = playground.send(Method::GET, "/v1/models", None).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            if status != StatusCode::OK {
                return Err(ServiceError::Storage(error_message(status, &bytes)));
            }
            let listed: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            Ok(listed["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|model| {
                    Some(PlaygroundModel {
                        id: model["id"].as_str()?.to_string(),
                        owned_by: model["owned_by"].as_str().unwrap_or_default().to_string(),
                    })
                })
                .collect())
        })
    }

    fn chat(&self, request: PlaygroundRequest) -> mpsc::Receiver<PlaygroundEvent> {
        let (events, receiver) = mpsc::channel(EVENTS);
        self.chats.spawn(self.clone().stream(request, events));
        receiver
    }
}
