//! Secrets stay secret: known keys are planted (channel keys, a hub token, a gateway token), every
//! kind of route is exercised, failures included, against an upstream that echoes the key it was
//! sent in its errors; then the database files, every file in the data dir and every response body
//! are scanned for the planted values.

use std::time::Duration;

mod support;

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use burncloud_service_api::SettingsService;
use burncloud_tests::openai_mock::OpenAiMock;
use reqwest::Method;
use serde_json::{json, Value};
use support::{Harness, ADMIN};

const GOOD_KEY: &str = "sk-PLANTEDgood0123456789abcdefXYZ";
const LEAKY_KEY: &str = "sk-PLANTEDleak9876543210fedcbaQRS";
const EDITED_KEY: &str = "sk-PLANTEDedit1111222233334444ABC";
const HUB_TOKEN: &str = "hf_PLANTEDhubToken0123456789abcdef";

/// An OpenAI-compatible upstream that refuses every call and, as some do, repeats the full key
/// and the URL it was called on in the error.
async fn leaky_upstream() -> String {
    async fn refuse(headers: HeaderMap, uri: axum::http::Uri) -> axum::response::Response {
        let key = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let message = format!("Incorrect API key provided: {key} (request {uri}, header Authorization: {key})");
        (
            AxumStatus::UNAUTHORIZED,
            [("x-echo-key", key.clone())],
            axum::Json(
                json!({"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}),
            ),
        )
            .into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new().fallback(refuse)).await;
    });
    format!("http://{address}/v1")
}

/// Every response body the test saw, to be scanned at the end.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    async fn console(&mut self, h: &Harness, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = h.console(method.clone(), path, body).await;
        self.0.push((format!("{method} {path} → {status}"), value.to_string()));
        value
    }

    async fn v1(&mut self, h: &Harness, key: &str, path: &str, body: Value) -> reqwest::StatusCode {
        let response = h.http.post(format!("{}{path}", h.base)).bearer_auth(key).json(&body).send().await.unwrap();
        let status = response.status();
        let headers = format!("{:?}", response.headers());
        let text = response.text().await.unwrap();
        self.0.push((format!("POST {path} → {status}"), format!("{headers}\n{text}")));
        status
    }
}

fn assert_absent(place: &str, haystack: &[u8], secrets: &[&str]) {
    for secret in secrets {
        let found = haystack.windows(secret.len()).any(|window| window == secret.as_bytes());
        assert!(!found, "{secret} found in {place}");
    }
}

#[tokio::test]
async fn planted_secrets_never_reach_the_disk_the_logs_or_a_response() {
    let healthy = OpenAiMock::start(Some(GOOD_KEY)).await;
    let leaky = leaky_upstream().await;
    let h = Harness::start().await;
    let mut seen = Seen::default();

    let good = seen
        .console(&h, Method::POST, "/console/api/channels", Some(json!({"name": "good", "kind": "openai", "base_url": healthy.base_url(), "api_key": GOOD_KEY, "models": ["gpt-4o-mini"]})))
        .await["id"]
        .as_i64()
        .unwrap();
    let leak = seen
        .console(&h, Method::POST, "/console/api/channels", Some(json!({"name": "leaky", "kind": "openai", "base_url": leaky, "api_key": LEAKY_KEY, "models": ["leaky-model"]})))
        .await["id"]
        .as_i64()
        .unwrap();
    h.state.store.set_setting("hub_token.huggingface", HUB_TOKEN).unwrap();
    assert_eq!(h.state.store.get_setting("hub_token.huggingface").unwrap().as_deref(), Some(HUB_TOKEN));

    let created = h.post("/console/api/tokens", json!({"name": "scan"})).await;
    let token_key = created["key"].as_str().unwrap().to_string();
    let token_id = created["id"].as_i64().unwrap();

    // Reads and edits of every kind.
    for path in ["/console/api/channels", &format!("/console/api/channels/{good}"), "/console/api/tokens"] {
        seen.console(&h, Method::GET, path, None).await;
    }
    seen.console(&h, Method::GET, &format!("/console/api/tokens/{token_id}"), None).await;
    seen.console(&h, Method::PUT, &format!("/console/api/channels/{good}"), Some(json!({"priority": 5}))).await;
    seen.console(&h, Method::PUT, &format!("/console/api/channels/{good}"), Some(json!({"weight": -1}))).await;

    // Calls that succeed, stream, and fail through the key-echoing upstream.
    let chat = |model: &str, stream: bool| json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(seen.v1(&h, &token_key, "/v1/chat/completions", chat("gpt-4o-mini", false)).await, 200);
    assert_eq!(seen.v1(&h, &token_key, "/v1/chat/completions", chat("gpt-4o-mini", true)).await, 200);
    let refused = seen.v1(&h, &token_key, "/v1/chat/completions", chat("leaky-model", false)).await;
    assert_eq!(refused, 401, "the upstream's refusal reaches the caller, scrubbed");
    seen.v1(&h, &token_key, "/v1/chat/completions", chat("leaky-model", true)).await;
    seen.v1(&h, &token_key, "/v1/embeddings", json!({"model": "leaky-model", "input": "x"})).await;
    seen.v1(&h, "sk-bc-not-a-real-token", "/v1/chat/completions", chat("gpt-4o-mini", false)).await;
    seen.console(&h, Method::POST, &format!("/console/api/channels/{leak}/test"), None).await;
    seen.console(&h, Method::POST, &format!("/console/api/channels/{good}/test"), None).await;

    // The key changes; the old and the new one must both stay hidden.
    seen.console(&h, Method::PUT, &format!("/console/api/channels/{good}"), Some(json!({"api_key": EDITED_KEY}))).await;
    seen.v1(&h, &token_key, "/v1/chat/completions", chat("gpt-4o-mini", false)).await;

    h.state.gateway.log_sink().flush().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    for path in
        ["/console/api/logs?limit=100", "/console/api/usage", "/console/internal/health", "/console/api/account"]
    {
        seen.console(&h, Method::GET, path, None).await;
    }
    let logs = seen.console(&h, Method::GET, "/console/api/logs?limit=100", None).await;
    let errors: Vec<&str> = logs["items"].as_array().unwrap().iter().filter_map(|row| row["error"].as_str()).collect();
    assert!(errors.iter().any(|e| e.contains("Incorrect API key")), "the upstream's error is logged: {errors:?}");

    let dir = h.stop().await;
    let planted = [GOOD_KEY, LEAKY_KEY, EDITED_KEY, HUB_TOKEN, token_key.as_str(), ADMIN];
    for (place, body) in &seen.0 {
        assert_absent(place, body.as_bytes(), &planted);
    }
    let mut files = vec![dir.path().to_path_buf()];
    let mut scanned = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
        } else if path.file_name().is_some_and(|name| name != "admin.key") {
            assert_absent(&path.display().to_string(), &std::fs::read(&path).unwrap(), &planted);
            scanned += 1;
        }
    }
    assert!(dir.path().join("burncloud.db").exists() && scanned >= 2, "the database was scanned");
}

#[tokio::test]
async fn keys_stored_in_plain_text_are_sealed_on_the_next_start_and_still_work() {
    let healthy = OpenAiMock::start(Some(GOOD_KEY)).await;
    let h = Harness::start().await;
    let id = h
        .post("/console/api/channels", json!({"name": "good", "kind": "openai", "base_url": healthy.base_url(), "api_key": GOOD_KEY, "models": ["gpt-4o-mini"]}))
        .await["id"]
        .as_i64()
        .unwrap();
    let dir = h.stop().await;
    let models = burncloud_service_models::ModelHubConfig::from_env(dir.path());
    // What a database written before encryption at rest looks like.
    {
        let connection = rusqlite::Connection::open(dir.path().join("burncloud.db")).unwrap();
        connection.execute("UPDATE channels SET api_key = ?1 WHERE id = ?2", rusqlite::params![GOOD_KEY, id]).unwrap();
        connection
            .execute("INSERT INTO settings (key, value) VALUES ('hub_token.modelscope', ?1)", [HUB_TOKEN])
            .unwrap();
    }
    let h = Harness::open(dir, Default::default(), models).await;
    let stored: Vec<String> = {
        let connection = rusqlite::Connection::open(h.data_dir().join("burncloud.db")).unwrap();
        let mut statement = connection
            .prepare("SELECT api_key FROM channels UNION ALL SELECT value FROM settings WHERE key LIKE 'hub_token.%'")
            .unwrap();
        statement.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|value| value.starts_with("bc-enc:v1:")), "sealed: {stored:?}");
    assert_eq!(h.state.store.get_setting("hub_token.modelscope").unwrap().as_deref(), Some(HUB_TOKEN));
    let result = h.post(&format!("/console/api/channels/{id}/test"), json!({})).await;
    assert_eq!(result["ok"], true, "the sealed key still authenticates upstream: {result}");
    let health = h.get("/console/internal/health").await;
    assert_eq!(health["secrets"], "file", "no keyring in tests, and the health report says so");
}
