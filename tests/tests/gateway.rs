//! Integration tests of the gateway: a real BurnCloud server on 127.0.0.1:0 over a real SQLite
//! file, in front of local servers that speak OpenAI's wire format.

use std::time::Duration;

mod support;

use burncloud_server::RouterConfig;
use burncloud_tests::openai_mock::{self, Mode, OpenAiMock, COMPLETION_TOKENS, EMBEDDING_TOKENS, PROMPT_TOKENS, REPLY};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{Harness, ADMIN};

impl Harness {
    async fn channel(&self, name: &str, base_url: &str, extra: Value) -> i64 {
        let mut body = json!({"name": name, "kind": "openai", "base_url": base_url, "api_key": "sk-upstream-secret-0123456789", "models": ["gpt-4o-mini"]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        self.post("/console/api/channels", body).await["id"].as_i64().unwrap()
    }

    async fn token(&self, extra: Value) -> (i64, String) {
        let mut body = json!({"name": "tester"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let created = self.post("/console/api/tokens", body).await;
        (created["id"].as_i64().unwrap(), created["key"].as_str().unwrap().to_string())
    }

    async fn v1(&self, path: &str, key: &str, body: Value) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.base)).bearer_auth(key).json(&body).send().await.unwrap()
    }

    /// Waits for every call in progress to be logged, then returns the log rows, newest first.
    async fn logs(&self) -> Vec<Value> {
        self.settle().await;
        self.get("/console/api/logs?limit=1000").await["items"].as_array().unwrap().clone()
    }

    async fn settle(&self) {
        for _ in 0..500 {
            if self.state.gateway.in_flight() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.state.gateway.log_sink().flush().await;
    }

    /// Checks the accounting invariant: logged costs add up to the token's and account's spend.
    async fn assert_books_balance(&self) {
        self.settle().await;
        let logs = self.logs().await;
        let logged: i64 = logs.iter().map(|row| nanos(&row["cost"])).sum();
        let tokens = self.get("/console/api/tokens").await;
        let token_used: i64 = tokens.as_array().unwrap().iter().map(|t| nanos(&t["used_quota"])).sum();
        let account = self.get("/console/api/account").await;
        assert_eq!(logged, token_used, "logged costs equal the tokens' used quota");
        assert_eq!(logged, nanos(&account["used"]), "logged costs equal the account's spend");
    }
}

fn nanos(value: &Value) -> i64 {
    burncloud_service_api::Money::parse(value.as_str().unwrap_or_else(|| panic!("money {value}"))).unwrap().0
}

fn chat_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Say hello"}]})
}

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].clone())
}

#[tokio::test]
async fn health_answers_and_the_console_needs_the_admin_key() {
    let h = Harness::start().await;
    let health: Value = h.http.get(format!("{}/health", h.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    for auth in [None, Some("wrong")] {
        let mut request = h.http.get(format!("{}/console/api/channels", h.base));
        if let Some(key) = auth {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let (status, body) = h.console(reqwest::Method::GET, "/console/api/nothing-here", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    for filter in ["ok", "success", "error", "404"] {
        let (status, body) = h.console(reqwest::Method::GET, &format!("/console/api/logs?status={filter}"), None).await;
        assert_eq!(status, StatusCode::OK, "{filter}: {body}");
    }
    let (status, body) = h.console(reqwest::Method::GET, "/console/api/logs?status=sometimes", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("use an HTTP code, ok or error"), "{body}");
}

#[tokio::test]
async fn channels_are_created_read_updated_and_deleted_without_showing_keys() {
    let h = Harness::start().await;
    let created = h
        .post(
            "/console/api/channels",
            json!({"name": "DeepSeek", "kind": "deepseek", "api_key": "sk-deepseek-abcdef9f3a", "models": ["deepseek-chat"],
                   "model_mapping": {"ds": "deepseek-chat"}, "priority": 5, "weight": 3}),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["key_hint"], "sk-…9f3a");
    assert!(created.get("api_key").is_none(), "{created}");
    assert_eq!(created["base_url"], Value::Null, "presets keep their default base URL");
    assert_eq!(created["model_mapping"], json!({"ds": "deepseek-chat"}));

    let updated = h.put(&format!("/console/api/channels/{id}"), json!({"weight": 7, "enabled": false})).await;
    assert_eq!((updated["weight"].as_i64(), updated["enabled"].as_bool()), (Some(7), Some(false)));
    assert_eq!(updated["name"], "DeepSeek", "fields left out stay as they were");
    assert_eq!(h.get(&format!("/console/api/channels/{id}")).await, updated);
    assert_eq!(h.get("/console/api/channels").await.as_array().unwrap().len(), 1);
    let listed = serde_json::to_string(&h.get("/console/api/channels").await).unwrap();
    assert!(!listed.contains("sk-deepseek-abcdef9f3a"));

    let (status, _) = h.console(reqwest::Method::DELETE, &format!("/console/api/channels/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = h.console(reqwest::Method::GET, &format!("/console/api/channels/{id}"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    for (bad, fragment) in [
        (json!({"name": "x", "kind": "openai"}), "base_url"),
        (json!({"name": "x", "kind": "martian", "base_url": "http://a"}), "kind"),
        (json!({"name": "", "kind": "qwen"}), "name"),
        (json!({"name": "x", "kind": "qwen", "weight": -1}), "weight"),
    ] {
        let (status, body) = h.console(reqwest::Method::POST, "/console/api/channels", Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{bad}: {message}");
    }
    let response = h
        .http
        .post(format!("{}/console/api/channels", h.base))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
}

#[tokio::test]
async fn tokens_show_their_key_once_and_accept_edits() {
    let h = Harness::start().await;
    let created = h.post("/console/api/tokens", json!({"name": "laptop", "quota_limit": "2.5", "rpm_limit": 60})).await;
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("sk-bc-"));
    assert_eq!(created["group"], "default");
    assert_eq!(created["quota_limit"], "2.5");
    assert_eq!(created["used_quota"], "0");
    let id = created["id"].as_i64().unwrap();
    let read = h.get(&format!("/console/api/tokens/{id}")).await;
    assert!(read.get("key").is_none());
    assert!(key.starts_with(read["key_prefix"].as_str().unwrap()));
    let updated =
        h.put(&format!("/console/api/tokens/{id}"), json!({"quota_limit": null, "models": ["gpt-4o-mini"]})).await;
    assert_eq!(updated["quota_limit"], Value::Null);
    assert_eq!(updated["rpm_limit"], 60);
    assert_eq!(updated["models"], json!(["gpt-4o-mini"]));
    let (status, body) = h
        .console(reqwest::Method::POST, "/console/api/tokens", Some(json!({"name": "x", "quota_limit": "lots"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = h.console(reqwest::Method::DELETE, &format!("/console/api/tokens/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.get("/console/api/tokens").await, json!([]));
}

#[tokio::test]
async fn prices_and_account_take_decimal_strings() {
    let h = Harness::start().await;
    let price =
        h.put("/console/api/prices/gpt-4o-mini", json!({"input_per_mtok": "0.15", "output_per_mtok": "0.6"})).await;
    assert_eq!(
        price,
        json!({"model": "gpt-4o-mini", "input_per_mtok": "0.15", "output_per_mtok": "0.6",
               "cache_read_per_mtok": null, "cache_write_per_mtok": null, "cache_write_1h_per_mtok": null,
               "per_image": null, "per_audio_second": null, "per_million_characters": null, "tiers": [],
               "peak": null}),
        "cache prices not given are unset: those tokens are charged as input; unit prices not given are not \
         charged; no tiers or peak hours"
    );
    assert_eq!(h.get("/console/api/prices").await, json!([price]));
    let account = h.get("/console/api/account").await;
    assert_eq!(account, json!({"currency": "USD", "balance": null, "used": "0"}));
    let account = h.post("/console/api/account/topup", json!({"amount": "10"})).await;
    assert_eq!(account["balance"], "10");
    let account = h.put("/console/api/account", json!({"currency": "CNY"})).await;
    assert_eq!((account["currency"].as_str(), account["balance"].as_str()), (Some("CNY"), Some("10")));
    for bad in [json!({"amount": "-1"}), json!({"amount": "ten"}), json!({})] {
        let (status, body) = h.console(reqwest::Method::POST, "/console/api/account/topup", Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"]["message"].is_string());
    }
    let unit_prices = json!({"input_per_mtok": "0", "output_per_mtok": "0", "per_image": "0.04",
        "per_audio_second": "0.0001", "per_million_characters": "15"});
    let price = h.put("/console/api/prices/media", unit_prices).await;
    assert_eq!((&price["per_image"], &price["per_audio_second"]), (&json!("0.04"), &json!("0.0001")));
    assert_eq!(price["per_million_characters"], "15");
    for unit in ["per_image", "per_audio_second", "per_million_characters"] {
        let bad = json!({"input_per_mtok": "0", "output_per_mtok": "0", unit: "-0.01"});
        let (status, body) = h.console(reqwest::Method::PUT, "/console/api/prices/media", Some(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{unit}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("negative"), "{body}");
    }
}

#[tokio::test]
async fn a_chat_call_is_answered_billed_and_logged() {
    let mock = OpenAiMock::start(Some("sk-upstream-secret-0123456789")).await;
    let h = Harness::start().await;
    let channel = h.channel("mock", &mock.base_url(), json!({"model_mapping": {"fast": "gpt-4o-mini"}})).await;
    h.put("/console/api/prices/fast", json!({"input_per_mtok": "1.5", "output_per_mtok": "6"})).await;
    let (token, key) = h.token(json!({})).await;

    let response = h.v1("/v1/chat/completions", &key, chat_body("fast")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], REPLY);
    assert_eq!(body["usage"]["prompt_tokens"], PROMPT_TOKENS);
    let sent = mock.received();
    assert_eq!(sent[0].body["model"], "gpt-4o-mini", "the mapping renames the model upstream");
    assert_eq!(sent[0].authorization.as_deref(), Some("Bearer sk-upstream-secret-0123456789"));

    let logs = h.logs().await;
    let row = &logs[0];
    assert_eq!(row["request_id"], request_id.as_str());
    assert_eq!((row["token_id"].as_i64(), row["channel_id"].as_i64()), (Some(token), Some(channel)));
    assert_eq!((row["model"].as_str(), row["upstream_model"].as_str()), (Some("fast"), Some("gpt-4o-mini")));
    assert_eq!(
        (row["prompt_tokens"].as_u64(), row["completion_tokens"].as_u64()),
        (Some(PROMPT_TOKENS), Some(COMPLETION_TOKENS))
    );
    assert_eq!(row["usage_source"], "upstream");
    assert_eq!(
        (row["status"].as_u64(), row["end_reason"].as_str(), row["attempts"].as_u64()),
        (Some(200), Some("completed"), Some(1))
    );
    assert_eq!(row["endpoint"], "/v1/chat/completions");
    assert_eq!(row["is_stream"], false);
    assert_eq!(row["priced"], true);
    // 21 tokens at 1.5 per million plus 9 at 6 per million.
    assert_eq!(row["cost"], "0.0000855");
    assert_eq!(h.get(&format!("/console/api/tokens/{token}")).await["used_quota"], "0.0000855");
    h.assert_books_balance().await;
}

#[tokio::test]
async fn streams_get_usage_upstream_and_the_extra_chunk_only_when_asked() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    h.channel("mock", &mock.base_url(), json!({})).await;
    h.put("/console/api/prices/gpt-4o-mini", json!({"input_per_mtok": "1", "output_per_mtok": "1"})).await;
    let (_, key) = h.token(json!({})).await;

    for client_asks in [false, true] {
        let mut body = chat_body("gpt-4o-mini");
        body["stream"] = json!(true);
        if client_asks {
            body["stream_options"] = json!({"include_usage": true});
        }
        let response = h.v1("/v1/chat/completions", &key, body).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        let text = response.text().await.unwrap();
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(*events.last().unwrap(), "data: [DONE]");
        let content: String = events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e.strip_prefix("data: ")?).ok())
            .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().map(String::from))
            .collect();
        assert_eq!(content, REPLY);
        let usage_chunks = events.iter().filter(|e| e.contains("\"usage\":{")).count();
        assert_eq!(usage_chunks, usize::from(client_asks), "client asked for usage: {client_asks}\n{text}");
        let upstream = mock.received().pop().unwrap();
        assert_eq!(upstream.body["stream_options"]["include_usage"], true, "usage is always requested upstream");
    }
    let logs = h.logs().await;
    assert_eq!(logs.len(), 2);
    for row in logs {
        assert_eq!(row["is_stream"], true);
        assert_eq!(row["usage_source"], "upstream");
        assert_eq!(row["prompt_tokens"], PROMPT_TOKENS);
        assert_eq!(row["completion_tokens"], COMPLETION_TOKENS);
        assert_eq!(row["end_reason"], "completed");
        assert!(row["first_token_ms"].is_u64());
    }
    h.assert_books_balance().await;
}

#[tokio::test]
async fn without_upstream_usage_the_tokenizer_estimates_it() {
    let mock = OpenAiMock::start(None).await;
    mock.set_mode(Mode::NoUsage);
    let h = Harness::start().await;
    h.channel("mock", &mock.base_url(), json!({})).await;
    let (_, key) = h.token(json!({})).await;
    let reply_tokens = burncloud_router::count_tokens(REPLY);
    let prompt_tokens = burncloud_router::count_tokens("Say hello") + 3 * 2;

    assert_eq!(h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await.status(), StatusCode::OK);
    let mut streamed = chat_body("gpt-4o-mini");
    streamed["stream"] = json!(true);
    let text = h.v1("/v1/chat/completions", &key, streamed).await.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    for row in h.logs().await {
        assert_eq!(row["usage_source"], "estimated", "{row}");
        assert_eq!(row["completion_tokens"], reply_tokens, "{row}");
        assert_eq!(row["prompt_tokens"], prompt_tokens, "{row}");
        assert_eq!(row["priced"], false);
        assert_eq!(row["cost"], "0");
    }
}

#[tokio::test]
async fn failing_channels_fail_over_to_the_next() {
    let broken = OpenAiMock::start(None).await;
    let limited = OpenAiMock::start(None).await;
    let healthy = OpenAiMock::start(None).await;
    broken.set_mode(Mode::Error { status: 500 });
    limited.set_mode(Mode::Error { status: 429 });
    let h = Harness::start().await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    h.channel("unreachable", &format!("http://127.0.0.1:{closed_port}/v1"), json!({"priority": 30})).await;
    h.channel("broken", &broken.base_url(), json!({"priority": 20})).await;
    let good = h.channel("healthy", &healthy.base_url(), json!({"priority": 10})).await;
    h.channel("limited", &limited.base_url(), json!({"priority": 10, "weight": 0})).await;
    let (_, key) = h.token(json!({})).await;

    let response = h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let row = &h.logs().await[0];
    assert_eq!((row["channel_id"].as_i64(), row["attempts"].as_u64()), (Some(good), Some(3)));
    assert_eq!(row["end_reason"], "completed");
    assert_eq!(broken.received().len(), 1);
    assert_eq!(limited.received().len(), 0, "weight 0 is tried last");
}

#[tokio::test]
async fn caller_errors_are_not_retried_and_pass_through() {
    let bad_request = OpenAiMock::start(None).await;
    let spare = OpenAiMock::start(None).await;
    bad_request.set_mode(Mode::Error { status: 400 });
    let h = Harness::start().await;
    h.channel("first", &bad_request.base_url(), json!({"priority": 1})).await;
    h.channel("spare", &spare.base_url(), json!({})).await;
    let (_, key) = h.token(json!({})).await;
    let (status, error) = error_of(h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error, openai_mock::error_body(400)["error"]);
    assert!(spare.received().is_empty());
    let row = &h.logs().await[0];
    assert_eq!((row["status"].as_u64(), row["end_reason"].as_str()), (Some(400), Some("upstream_error")));
    assert_eq!(row["error"], "Invalid value for 'messages'.");
}

#[tokio::test]
async fn when_every_upstream_fails_the_caller_learns_how() {
    let h = Harness::start().await;
    let (_, key) = h.token(json!({})).await;
    let failing = OpenAiMock::start(None).await;
    failing.set_mode(Mode::Error { status: 429 });
    let channel = h.channel("limited", &failing.base_url(), json!({})).await;
    let response = h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "the last upstream error passes through");
    assert_eq!(error_of(response).await.1["code"], "rate_limit_exceeded");

    let hanging = OpenAiMock::start(None).await;
    hanging.set_mode(Mode::Hang);
    h.put(&format!("/console/api/channels/{channel}"), json!({"base_url": hanging.base_url()})).await;
    let (status, error) = error_of(h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::GATEWAY_TIMEOUT, Some("upstream_timeout")));

    h.put(&format!("/console/api/channels/{channel}"), json!({"base_url": "http://127.0.0.1:1/v1"})).await;
    let (status, error) = error_of(h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("upstream_error")));
    assert!(!error["message"].as_str().unwrap().contains("sk-upstream-secret"));

    let logs = h.logs().await;
    let statuses: Vec<u64> = logs.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![502, 504, 429]);
    assert!(logs.iter().all(|r| r["end_reason"] == "upstream_error"));
}

#[tokio::test]
async fn bad_requests_get_openai_shaped_errors() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    h.channel("mock", &mock.base_url(), json!({"models": ["gpt-4o-mini", "gpt-4o"]})).await;
    let (_, key) = h.token(json!({"models": ["gpt-4o-mini", "ghost"]})).await;
    let (disabled, disabled_key) = h.token(json!({"name": "off"})).await;
    h.put(&format!("/console/api/tokens/{disabled}"), json!({"enabled": false})).await;
    let (_, expired_key) = h.token(json!({"expires_at_ms": 1000})).await;

    let raw = |key: &str, body: &'static str| {
        h.http.post(format!("{}/v1/chat/completions", h.base)).bearer_auth(key).body(body).send()
    };
    let cases: Vec<(reqwest::Response, StatusCode, &str)> = vec![
        (
            h.http
                .post(format!("{}/v1/chat/completions", h.base))
                .json(&chat_body("gpt-4o-mini"))
                .send()
                .await
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            h.v1("/v1/chat/completions", "sk-bc-not-a-real-key", chat_body("gpt-4o-mini")).await,
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            h.v1("/v1/chat/completions", &disabled_key, chat_body("gpt-4o-mini")).await,
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            h.v1("/v1/chat/completions", &expired_key, chat_body("gpt-4o-mini")).await,
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (raw(&key, "{\"model\":").await.unwrap(), StatusCode::BAD_REQUEST, ""),
        (raw(&key, "{\"messages\":[]}").await.unwrap(), StatusCode::BAD_REQUEST, ""),
        (h.v1("/v1/chat/completions", &key, chat_body("gpt-4o")).await, StatusCode::FORBIDDEN, "model_not_allowed"),
        (h.v1("/v1/chat/completions", &key, chat_body("ghost")).await, StatusCode::NOT_FOUND, "model_not_found"),
        (
            h.v1(
                "/v1/chat/completions",
                &key,
                json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x".repeat(70_000)}]}),
            )
            .await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
        ),
    ];
    for (index, (response, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(response.status(), status, "case {index}");
        assert!(response.headers().contains_key("x-request-id"), "case {index}");
        let body: Value = response.json().await.unwrap();
        let error = &body["error"];
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "case {index}: {body}");
        assert!(error["type"].is_string() && error.get("param").is_some(), "case {index}: {body}");
        if !code.is_empty() {
            assert_eq!(error["code"], code, "case {index}: {body}");
        }
    }
    assert!(mock.received().is_empty(), "no bad request reached the upstream");
    let rejected = h.logs().await;
    assert_eq!(rejected.len(), 5, "calls with a valid token are logged as rejected");
    assert!(rejected.iter().all(|r| r["end_reason"] == "rejected" && r["cost"] == "0"));
}

#[tokio::test]
async fn spent_quota_and_balance_stop_calls_with_429() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    h.channel("mock", &mock.base_url(), json!({})).await;
    // One call costs 21 * 1000 / 1e6 + 9 * 1000 / 1e6 = 0.03.
    h.put("/console/api/prices/gpt-4o-mini", json!({"input_per_mtok": "1000", "output_per_mtok": "1000"})).await;
    let (token, key) = h.token(json!({"quota_limit": "0.05"})).await;
    assert_eq!(h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await.status(), StatusCode::OK);
    assert_eq!(h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await.status(), StatusCode::OK);
    let refused = h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await;
    // Spent: the official SDKs are told not to retry a 429 that cannot succeed.
    assert_eq!(refused.headers()["x-should-retry"], "false");
    let (status, error) = error_of(refused).await;
    assert_eq!(
        (status, error["code"].as_str(), error["type"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("insufficient_quota"), Some("insufficient_quota"))
    );
    h.settle().await;
    assert_eq!(h.get(&format!("/console/api/tokens/{token}")).await["used_quota"], "0.06");

    let (_, unlimited_key) = h.token(json!({"name": "unlimited"})).await;
    h.put("/console/api/account", json!({"balance": "0.01"})).await;
    assert_eq!(h.v1("/v1/chat/completions", &unlimited_key, chat_body("gpt-4o-mini")).await.status(), StatusCode::OK);
    let (status, error) = error_of(h.v1("/v1/chat/completions", &unlimited_key, chat_body("gpt-4o-mini")).await).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("insufficient_quota")));
    assert!(error["message"].as_str().unwrap().contains("balance"));
    h.post("/console/api/account/topup", json!({"amount": "1"})).await;
    assert_eq!(h.v1("/v1/chat/completions", &unlimited_key, chat_body("gpt-4o-mini")).await.status(), StatusCode::OK);
    h.assert_books_balance().await;
}

/// `count` chat calls made together; each one's status and body, with its `Retry-After` in front
/// of the body where it has one.
async fn at_once(h: &Harness, key: &str, body: &Value, count: usize) -> Vec<(StatusCode, String)> {
    let calls = (0..count).map(|_| async {
        let response = h.v1("/v1/chat/completions", key, body.clone()).await;
        let status = response.status();
        let retry_after = response.headers().get("retry-after").map(|v| format!("retry-after: {v:?} "));
        (status, retry_after.unwrap_or_default() + &response.text().await.unwrap())
    });
    futures_util::future::join_all(calls).await
}

#[tokio::test]
async fn calls_started_together_cannot_each_spend_the_last_of_a_quota() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    h.channel("mock", &mock.base_url(), json!({})).await;
    // 0.03 a call, as above; 0.2 allows six more after the first.
    h.put("/console/api/prices/gpt-4o-mini", json!({"input_per_mtok": "1000", "output_per_mtok": "1000"})).await;
    let (token, key) = h.token(json!({"quota_limit": "0.2"})).await;
    assert_eq!(h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await.status(), StatusCode::OK);

    // Ten streams at once, each under way for a second: each is let in only while what is
    // spent plus what the streams already under way are expected to cost leaves some quota.
    mock.set_mode(Mode::Slow { delay_ms: 200, chunks: 5 });
    let mut body = chat_body("gpt-4o-mini");
    body["stream"] = json!(true);
    let answers = at_once(&h, &key, &body, 10).await;
    let served = answers.iter().filter(|(status, _)| *status == StatusCode::OK).count();
    let refused: Vec<&String> =
        answers.iter().filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS).map(|(_, text)| text).collect();
    assert_eq!((served, refused.len()), (6, 4), "{answers:?}");
    assert!(
        refused.iter().all(|text| text.starts_with("retry-after: \"1\" ")
            && text.contains("insufficient_quota")
            && text.contains("under way")),
        "{refused:?}"
    );
    h.settle().await;
    // Spent past the limit by less than one call, where all ten would have taken it to 0.33.
    assert_eq!(h.get(&format!("/console/api/tokens/{token}")).await["used_quota"], "0.21");

    // Once they are done, what is left is spent as before.
    mock.set_mode(Mode::Normal);
    let (status, error) = error_of(h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("insufficient_quota")));

    // The account's balance the same way: 0.1 left lets four of eight in (0, 0.03, 0.06 and 0.09
    // expected of the calls already under way).
    let (_, unlimited_key) = h.token(json!({"name": "unlimited"})).await;
    h.put("/console/api/account", json!({"balance": "0.1"})).await;
    mock.set_mode(Mode::Slow { delay_ms: 200, chunks: 5 });
    let answers = at_once(&h, &unlimited_key, &body, 8).await;
    let served = answers.iter().filter(|(status, _)| *status == StatusCode::OK).count();
    assert_eq!(served, 4, "{answers:?}");
    assert!(answers.iter().filter(|(status, _)| *status != StatusCode::OK).all(|(status, text)| {
        *status == StatusCode::TOO_MANY_REQUESTS && text.contains("account balance") && text.contains("under way")
    }));
    h.settle().await;
    h.assert_books_balance().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_stream_is_still_billed_from_upstream_usage() {
    let mock = OpenAiMock::start(None).await;
    mock.set_mode(Mode::Slow { delay_ms: 40, chunks: 12 });
    let h = Harness::start().await;
    h.channel("mock", &mock.base_url(), json!({})).await;
    h.put("/console/api/prices/gpt-4o-mini", json!({"input_per_mtok": "1", "output_per_mtok": "1"})).await;
    let (_, key) = h.token(json!({})).await;
    let mut body = chat_body("gpt-4o-mini");
    body["stream"] = json!(true);
    let response = h.v1("/v1/chat/completions", &key, body).await;
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(stream);
    let row = &h.logs().await[0];
    assert_eq!(row["end_reason"], "client_cancelled");
    assert_eq!(row["usage_source"], "upstream", "the upstream was read to its end for usage: {row}");
    assert_eq!(row["completion_tokens"], COMPLETION_TOKENS);
    assert_ne!(row["cost"], "0");
    h.assert_books_balance().await;
}

#[tokio::test]
async fn a_stream_cut_by_the_upstream_is_logged_as_cut() {
    let mock = OpenAiMock::start(None).await;
    mock.set_mode(Mode::CutStream);
    let h = Harness::start().await;
    h.channel("mock", &mock.base_url(), json!({})).await;
    let (_, key) = h.token(json!({})).await;
    let mut body = chat_body("gpt-4o-mini");
    body["stream"] = json!(true);
    let text = h.v1("/v1/chat/completions", &key, body).await.text().await.unwrap();
    assert!(text.contains("\"code\":\"upstream_cut\""), "the caller is told: {text}");
    let row = &h.logs().await[0];
    assert_eq!(row["end_reason"], "upstream_cut");
    assert_eq!(row["usage_source"], "estimated");
    assert!(row["error"].as_str().is_some());
}

#[tokio::test]
async fn completions_embeddings_and_the_model_list() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    h.channel("mock", &mock.base_url(), json!({"models": ["gpt-3.5-turbo-instruct", "text-embedding-3-small"], "model_mapping": {"embed": "text-embedding-3-small"}})).await;
    let (_, key) = h.token(json!({})).await;
    let (_, narrow_key) = h.token(json!({"models": ["embed"]})).await;

    let completion: Value = h
        .v1("/v1/completions", &key, json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(completion["choices"][0]["text"], REPLY);
    let embedding: Value =
        h.v1("/v1/embeddings", &key, json!({"model": "embed", "input": ["a", "b"]})).await.json().await.unwrap();
    assert_eq!(embedding["data"].as_array().unwrap().len(), 2);

    let models: Value =
        h.http.get(format!("{}/v1/models", h.base)).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["embed", "gpt-3.5-turbo-instruct", "text-embedding-3-small"]);
    assert_eq!(models["object"], "list");
    let narrow: Value = h
        .http
        .get(format!("{}/v1/models", h.base))
        .bearer_auth(&narrow_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(narrow["data"].as_array().unwrap().len(), 1);
    let unauthorized = h.http.get(format!("{}/v1/models", h.base)).send().await.unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);

    let logs = h.logs().await;
    assert_eq!(logs[0]["endpoint"], "/v1/embeddings");
    assert_eq!(logs[0]["prompt_tokens"], EMBEDDING_TOKENS);
    assert_eq!(logs[0]["completion_tokens"], 0);
    assert_eq!(logs[1]["endpoint"], "/v1/completions");
}

#[tokio::test]
async fn rerank_reaches_compatible_servers_and_dashscope_and_is_priced_and_logged() {
    let mock = OpenAiMock::start(Some("sk-upstream-secret-0123456789")).await;
    let h = Harness::start().await;
    h.channel("jina", &mock.base_url(), json!({"models": ["jina-reranker-v2"]})).await;
    h.channel("dashscope", &mock.base_url(), json!({"kind": "qwen", "models": ["gte-rerank-v2"]})).await;
    h.put("/console/api/prices/gte-rerank-v2", json!({"input_per_mtok": "0.8", "output_per_mtok": "0"})).await;
    let (token, key) = h.token(json!({"rpm_limit": 2})).await;
    let documents = json!(["a cat sat", "the quick brown fox", {"text": "quick fox jumps quick"}]);

    for model in ["jina-reranker-v2", "gte-rerank-v2"] {
        let answer = h
            .v1(
                "/v1/rerank",
                &key,
                json!({"model": model, "query": "quick fox", "documents": documents, "top_n": 2,
                "return_documents": true}),
            )
            .await;
        assert_eq!(answer.status(), StatusCode::OK);
        let answer: Value = answer.json().await.unwrap();
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "top_n: {answer}");
        assert_eq!(results[0]["index"], 2, "the most shared words first: {answer}");
        assert_eq!(results[1]["index"], 1);
        assert!(results[0]["relevance_score"].as_f64() > results[1]["relevance_score"].as_f64());
        assert_eq!(results[0]["document"]["text"], "quick fox jumps quick", "{answer}");
    }
    let sent = mock.received();
    assert_eq!(sent[0].path, "/v1/rerank");
    assert_eq!(sent[0].body["documents"], documents, "a compatible server gets the call as it was sent");
    assert_eq!(sent[1].path, "/api/v1/services/rerank/text-rerank/text-rerank");
    assert_eq!(
        sent[1].body,
        json!({"model": "gte-rerank-v2", "input": {"query": "quick fox",
            "documents": ["a cat sat", "the quick brown fox", "quick fox jumps quick"]},
            "parameters": {"top_n": 2, "return_documents": true}})
    );
    assert_eq!(sent[1].authorization.as_deref(), Some("Bearer sk-upstream-secret-0123456789"));

    let limited = h.v1("/v1/rerank", &key, json!({"model": "gte-rerank-v2", "query": "q", "documents": ["d"]})).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS, "rate limits apply as for chat");
    let (_, other) = h.token(json!({})).await;
    let (status, error) =
        error_of(h.v1("/v1/rerank", &other, json!({"model": "gte-rerank-v2", "query": "q"})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(error["message"].as_str().unwrap().contains("documents"), "{error}");
    let (status, error) = error_of(h.v1("/v1/rerank", &other, json!({"query": "q", "documents": []})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");

    let logs = h.logs().await;
    let served: Vec<&Value> = logs.iter().filter(|row| row["status"] == 200).collect();
    assert_eq!(served.len(), 2, "{logs:?}");
    for row in &served {
        assert_eq!(row["endpoint"], "/v1/rerank");
        assert_eq!(row["token_id"].as_i64(), Some(token));
        assert_eq!(
            (row["prompt_tokens"].as_u64(), row["completion_tokens"].as_u64()),
            (Some(openai_mock::RERANK_TOKENS), Some(0))
        );
        assert_eq!(row["usage_source"], "upstream");
    }
    // 18 tokens at 0.8 per million.
    assert_eq!(served[0]["model"], "gte-rerank-v2");
    assert_eq!(served[0]["cost"], "0.0000144");
    h.assert_books_balance().await;
}

#[tokio::test]
async fn retention_prunes_old_calls_but_keeps_usage_totals() {
    use burncloud_service_api::SettingsService;
    let upstream = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    h.channel("mock", &upstream.base_url(), json!({})).await;
    let (_, key) = h.token(json!({})).await;
    for _ in 0..3 {
        assert_eq!(h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await.status(), StatusCode::OK);
    }
    assert_eq!(h.logs().await.len(), 3);
    let totals_before = h.get("/console/api/usage?group_by=model").await["totals"].clone();

    assert_eq!(burncloud_server::log_retention_days(h.state.store.as_ref()), None, "keep everything by default");
    for (value, days) in [("7", Some(7)), ("0", None), ("soon", None), ("30", Some(30))] {
        h.state.store.set_setting(burncloud_server::LOG_RETENTION_SETTING, value).unwrap();
        assert_eq!(burncloud_server::log_retention_days(h.state.store.as_ref()), days, "{value}");
    }
    let db = std::sync::Arc::new(burncloud_database::Db::open(h.data_dir().join("burncloud.db")).unwrap());
    let now = burncloud_database::now_ms();
    assert_eq!(burncloud_server::prune_expired_logs(&db, 30, now).await, 0, "nothing is 30 days old yet");
    assert_eq!(burncloud_server::prune_expired_logs(&db, 30, now + 31 * 86_400_000).await, 3);
    assert!(h.logs().await.is_empty());
    assert_eq!(h.get("/console/api/usage?group_by=model").await["totals"], totals_before, "usage totals remain");
}

#[tokio::test]
async fn logs_filter_and_page_and_usage_groups() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    let channel = h.channel("mock", &mock.base_url(), json!({"models": ["gpt-4o-mini", "gpt-4o"]})).await;
    h.put("/console/api/prices/gpt-4o", json!({"input_per_mtok": "1", "output_per_mtok": "2"})).await;
    let (first, key) = h.token(json!({"name": "alice"})).await;
    let (_, other_key) = h.token(json!({"name": "bob"})).await;
    for _ in 0..3 {
        h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await;
    }
    let priced_call = h.v1("/v1/chat/completions", &other_key, chat_body("gpt-4o")).await;
    let priced_request_id = priced_call.headers()["x-request-id"].to_str().unwrap().to_string();
    h.v1("/v1/chat/completions", &other_key, chat_body("missing")).await;
    h.settle().await;

    let page = h.get("/console/api/logs?limit=2").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let before = page["next_before_id"].as_i64().unwrap();
    let next = h.get(&format!("/console/api/logs?limit=10&before_id={before}")).await;
    assert_eq!(next["items"].as_array().unwrap().len(), 3);
    assert_eq!(next["next_before_id"], Value::Null);
    let check = |query: &'static str, expected: usize| {
        let h = &h;
        async move {
            let items = h.get(&format!("/console/api/logs?{query}")).await["items"].as_array().unwrap().len();
            assert_eq!(items, expected, "{query}");
        }
    };
    check("model=gpt-4o", 1).await;
    check(Box::leak(format!("token_id={first}").into_boxed_str()), 3).await;
    check(Box::leak(format!("channel_id={channel}").into_boxed_str()), 4).await;
    check("status=404", 1).await;
    check("status=ok", 4).await;
    check("status=error", 1).await;
    check("since_ms=0&until_ms=1", 0).await;
    let found = h.get(&format!("/console/api/logs?request_id={priced_request_id}")).await;
    let found = found["items"].as_array().unwrap();
    assert_eq!(found.len(), 1, "the x-request-id finds its call");
    assert_eq!(
        (found[0]["request_id"].as_str(), found[0]["model"].as_str()),
        (Some(&*priced_request_id), Some("gpt-4o"))
    );
    check("request_id=req-00000000000000000000000000000000", 0).await;
    let (status, body) = h.console(reqwest::Method::GET, "/console/api/logs?status=maybe", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    let (status, _) = h.console(reqwest::Method::GET, "/console/api/logs?limit=lots", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let by_model = h.get("/console/api/usage?group_by=model").await;
    assert_eq!(by_model["totals"]["requests"], 5);
    let rows = by_model["rows"].as_array().unwrap();
    let gpt4o = rows.iter().find(|r| r["key"] == "gpt-4o").unwrap();
    assert_eq!(gpt4o["cost"], "0.000039");
    assert_eq!(by_model["totals"]["cost"], "0.000039");
    let by_token = h.get("/console/api/usage?group_by=token").await;
    let keys: Vec<&str> = by_token["rows"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["alice", "bob"]);
    let by_day = h.get("/console/api/usage").await;
    assert_eq!(by_day["rows"].as_array().unwrap().len(), 1);
    assert_eq!(by_day["rows"][0]["prompt_tokens"], PROMPT_TOKENS * 4);
    let by_channel = h.get("/console/api/usage?group_by=channel").await;
    assert!(by_channel["rows"].as_array().unwrap().iter().any(|r| r["key"] == "mock"));
}

#[tokio::test]
async fn groups_route_their_tokens_by_exact_weights() {
    let light = OpenAiMock::start(None).await;
    let heavy = OpenAiMock::start(None).await;
    let middle = OpenAiMock::start(None).await;
    let outsider = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    let a = h.channel("light", &light.base_url(), json!({})).await;
    let b = h.channel("heavy", &heavy.base_url(), json!({})).await;
    let c = h.channel("middle", &middle.base_url(), json!({})).await;
    h.channel("outsider", &outsider.base_url(), json!({})).await;
    let group = h
        .post(
            "/console/api/groups",
            json!({"name": "team", "strategy": "weighted", "members": [
                {"channel_id": a, "weight": 1}, {"channel_id": b, "weight": 10}, {"channel_id": c, "weight": 5}]}),
        )
        .await;
    assert_eq!(group["strategy"], "weighted");
    assert_eq!(group["members"].as_array().unwrap().len(), 3);
    let (_, key) = h.token(json!({"group": "team"})).await;
    // 10,000 calls from 16 concurrent clients: each channel's share is within 1% of its weight's.
    let picks = 10_000;
    let clients: Vec<_> = (0..16)
        .map(|client| {
            let (http, base, key) = (h.http.clone(), h.base.clone(), key.clone());
            tokio::spawn(async move {
                for _ in (client..picks).step_by(16) {
                    let response = http
                        .post(format!("{base}/v1/chat/completions"))
                        .bearer_auth(&key)
                        .json(&chat_body("gpt-4o-mini"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    for (mock, weight) in [(&light, 1.0), (&heavy, 10.0), (&middle, 5.0)] {
        let share = mock.received().len() as f64 / picks as f64;
        assert!((share - weight / 16.0).abs() <= 0.01, "share {share} for weight {weight}");
    }
    assert!(outsider.received().is_empty(), "channels outside the group are not used");

    let (status, body) =
        h.console(reqwest::Method::POST, "/console/api/tokens", Some(json!({"name": "x", "group": "nope"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = h.console(reqwest::Method::POST, "/console/api/groups", Some(json!({"name": "team"}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = h
        .console(
            reqwest::Method::POST,
            "/console/api/groups",
            Some(json!({"name": "y", "members": [{"channel_id": 999}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let team = group["id"].as_i64().unwrap();
    let (status, _) = h.console(reqwest::Method::DELETE, &format!("/console/api/groups/{team}"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "a group in use stays");
    let groups = h.get("/console/api/groups").await;
    let default = groups.as_array().unwrap().iter().find(|g| g["name"] == "default").unwrap()["id"].as_i64().unwrap();
    let (status, _) = h.console(reqwest::Method::DELETE, &format!("/console/api/groups/{default}"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "default always exists");
    let updated = h.put(&format!("/console/api/groups/{team}"), json!({"strategy": "round_robin"})).await;
    assert_eq!(updated["strategy"], "round_robin");
    assert_eq!(updated["members"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_failing_channel_trips_its_breaker_and_a_probe_closes_it_again() {
    let flaky = OpenAiMock::start(None).await;
    let steady = OpenAiMock::start(None).await;
    flaky.set_mode(Mode::Error { status: 503 });
    let h = Harness::with_limits(RouterConfig {
        breaker: burncloud_router::BreakerConfig {
            failure_threshold: 2,
            cooldown: Duration::from_millis(400),
            auth_cooldown: Duration::from_secs(600),
        },
        ..RouterConfig::default()
    })
    .await;
    let flaky_id = h.channel("flaky", &flaky.base_url(), json!({"priority": 10})).await;
    h.channel("steady", &steady.base_url(), json!({})).await;
    let (_, key) = h.token(json!({})).await;
    for _ in 0..3 {
        assert_eq!(h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await.status(), StatusCode::OK);
    }
    assert_eq!(flaky.received().len(), 2, "after two failures the breaker keeps calls away");
    let attempts: Vec<u64> = h.logs().await.iter().map(|r| r["attempts"].as_u64().unwrap()).collect();
    assert_eq!(attempts, vec![1, 2, 2]);
    let health = h.get("/console/internal/health").await;
    let entry = health["channels"].as_array().unwrap().iter().find(|c| c["id"] == flaky_id).unwrap().clone();
    assert_eq!(entry["breaker"], "open");
    assert_eq!(entry["consecutive_failures"], 2);
    assert!(entry["retry_at_ms"].as_i64().unwrap() > 0);
    assert!(entry["last_error"].as_str().unwrap().contains("server had an error"), "{entry}");
    assert_eq!(health["redis"], "disabled");
    assert!(health["log_writer"]["written"].as_u64().unwrap() >= 3);

    flaky.set_mode(Mode::Normal);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await.status(), StatusCode::OK);
    assert_eq!(flaky.received().len(), 3, "the half-open probe went to the recovered channel");
    let health = h.get("/console/internal/health").await;
    let entry = health["channels"].as_array().unwrap().iter().find(|c| c["id"] == flaky_id).unwrap().clone();
    assert_eq!(entry["breaker"], "closed");
}

/// Slowloris: clients that trickle their headers, or connect and say nothing, are cut off after
/// the header deadline, and everyone else is served meanwhile.
#[tokio::test]
async fn slow_and_silent_clients_are_cut_off_while_others_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::with_limits(RouterConfig {
        client_header_timeout: Duration::from_millis(600),
        ..RouterConfig::default()
    })
    .await;
    let address = h.base.trim_start_matches("http://").to_string();
    let mut attackers = Vec::new();
    for n in 0..200 {
        let address = address.clone();
        attackers.push(tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            if n % 2 == 0 {
                stream.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n").await.unwrap();
            }
            // Trickle a header line every 100 ms (or stay silent) until the server hangs up.
            let mut buffer = [0u8; 1024];
            loop {
                tokio::select! {
                    read = stream.read(&mut buffer) => {
                        match read {
                            Ok(0) | Err(_) => return started.elapsed(),
                            Ok(_) => {} // a 408 before the close is fine
                        }
                    }
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {
                        if n % 2 == 0 && stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                            return started.elapsed();
                        }
                    }
                }
                if started.elapsed() > Duration::from_secs(10) {
                    return started.elapsed();
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, key) = h.token(json!({})).await;
    let response = h.http.get(format!("{}/v1/models", h.base)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "served while 200 slow clients hold connections");
    for attacker in attackers {
        let held = attacker.await.unwrap();
        assert!(held < Duration::from_secs(3), "a slow client held its connection for {held:?}");
        assert!(held >= Duration::from_millis(500), "cut off only after the deadline: {held:?}");
    }
}

/// Sends a raw request head and returns the status line of the answer.
async fn status_line_for(address: &str, head: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    // The server may answer and close before it has read everything; that is the point.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn oversized_request_heads_get_431() {
    let h = Harness::start().await;
    let address = h.base.trim_start_matches("http://").to_string();
    let many: String = (0..burncloud_server::MAX_REQUEST_HEADERS + 1).map(|n| format!("X-H{n}: 1\r\n")).collect();
    let head = format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert!(status_line_for(&address, head).await.starts_with("HTTP/1.1 431"), "too many headers");
    // hyper checks the limit between reads, so a head is refused once a read leaves it over the limit.
    let huge = "a".repeat(4 * burncloud_server::MAX_REQUEST_HEAD_BYTES);
    let head = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n");
    let line = status_line_for(&address, head).await;
    assert!(line.starts_with("HTTP/1.1 431"), "a head larger than the limit: {line:?}");
    // Just under both limits is served.
    let fine: String = (0..90).map(|n| format!("X-H{n}: 1\r\n")).collect();
    let head = format!("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{fine}\r\n");
    assert_eq!(status_line_for(&address, head).await, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn a_trickling_stream_ends_at_the_total_timeout() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::with_limits(RouterConfig {
        idle_read_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_millis(1500),
        ..RouterConfig::default()
    })
    .await;
    h.channel("slow", &mock.base_url(), json!({})).await;
    let (_, key) = h.token(json!({})).await;
    // A chunk every 200 ms never trips the idle timeout; 40 of them outlast the total one.
    mock.set_mode(Mode::Slow { delay_ms: 200, chunks: 40 });
    let started = std::time::Instant::now();
    let mut body = chat_body("gpt-4o-mini");
    body["stream"] = json!(true);
    let text = h.v1("/v1/chat/completions", &key, body).await.text().await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(4), "cut at the total timeout, not after 8 s: {elapsed:?}");
    assert!(text.contains("took longer than 1.5 s in all"), "{text}");
    assert!(!text.contains("[DONE]"));
    h.settle().await;
    let logs = h.logs().await;
    assert_eq!(logs[0]["end_reason"], "upstream_cut", "{:?}", logs[0]);
}

#[tokio::test]
async fn when_every_channel_rests_the_caller_gets_503_with_retry_after() {
    let broken = OpenAiMock::start(None).await;
    broken.set_mode(Mode::Error { status: 500 });
    let h = Harness::with_limits(RouterConfig {
        breaker: burncloud_router::BreakerConfig {
            failure_threshold: 1,
            cooldown: Duration::from_secs(30),
            auth_cooldown: Duration::from_secs(600),
        },
        ..RouterConfig::default()
    })
    .await;
    h.channel("broken", &broken.base_url(), json!({})).await;
    let (_, key) = h.token(json!({})).await;
    assert_eq!(
        h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let response = h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((29..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(error_of(response).await.1["code"], "channels_unavailable");
    assert_eq!(broken.received().len(), 1);
}

#[tokio::test]
async fn exactly_the_rpm_limit_is_admitted_under_64_concurrent_clients() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    h.channel("mock", &mock.base_url(), json!({})).await;
    let (_, key) = h.token(json!({"rpm_limit": 100})).await;
    let base = h.base.clone();
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let (http, base, key) = (reqwest::Client::new(), base.clone(), key.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..2 {
                    let response = http
                        .post(format!("{base}/v1/chat/completions"))
                        .bearer_auth(&key)
                        .json(&chat_body("gpt-4o-mini"))
                        .send()
                        .await
                        .unwrap();
                    if response.status() == StatusCode::TOO_MANY_REQUESTS {
                        assert_eq!(response.headers()["x-ratelimit-limit-requests"], "100");
                        assert_eq!(response.headers()["x-ratelimit-remaining-requests"], "0");
                        assert!(response.headers().contains_key("x-ratelimit-reset-requests"));
                        assert!(response.headers().contains_key("retry-after"));
                        let error: Value = response.json().await.unwrap();
                        assert_eq!(error["error"]["code"], "rate_limit_exceeded");
                        statuses.push(429);
                    } else {
                        statuses.push(response.status().as_u16());
                    }
                }
                statuses
            })
        })
        .collect();
    let mut admitted = 0;
    let mut limited = 0;
    for client in clients {
        for status in client.await.unwrap() {
            match status {
                200 => admitted += 1,
                429 => limited += 1,
                other => panic!("unexpected status {other}"),
            }
        }
    }
    assert_eq!((admitted, limited), (100, 28));
    assert_eq!(mock.received().len(), 100);
}

#[tokio::test]
async fn the_tokens_per_minute_limit_follows_real_usage() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    h.channel("mock", &mock.base_url(), json!({})).await;
    // Each call reserves its prompt (8 tokens) plus max_tokens 200 = 208, then settles to the 30
    // tokens it really used. Without settling, the second call would find only 42 left.
    let (_, key) = h.token(json!({"tpm_limit": 250})).await;
    let mut body = chat_body("gpt-4o-mini");
    body["max_tokens"] = json!(200);
    for _ in 0..2 {
        assert_eq!(h.v1("/v1/chat/completions", &key, body.clone()).await.status(), StatusCode::OK);
    }
    let response = h.v1("/v1/chat/completions", &key, body.clone()).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "2 × 30 used, 190 left: not enough to reserve 208");
    assert_eq!(response.headers()["x-ratelimit-limit-tokens"], "250");
}

#[tokio::test]
async fn the_channel_test_reports_latency_or_the_upstreams_error() {
    let healthy = OpenAiMock::start(Some("sk-upstream-secret-0123456789")).await;
    let h = Harness::start().await;
    let good = h.channel("good", &healthy.base_url(), json!({})).await;
    let bad = h.channel("bad key", &healthy.base_url(), json!({"api_key": "sk-wrong-key-abcdefghijkl"})).await;
    let result = h.post(&format!("/console/api/channels/{good}/test"), json!({})).await;
    assert_eq!((result["ok"].as_bool(), result["status"].as_u64()), (Some(true), Some(200)));
    assert!(result["latency_ms"].is_u64());
    assert_eq!(healthy.received().last().unwrap().body["max_tokens"], 1);
    let result = h.post(&format!("/console/api/channels/{bad}/test"), json!({})).await;
    assert_eq!((result["ok"].as_bool(), result["status"].as_u64()), (Some(false), Some(401)));
    assert!(result["error"].as_str().unwrap().contains("Incorrect API key"));
    let health = h.get("/console/internal/health").await;
    let entry = health["channels"].as_array().unwrap().iter().find(|c| c["id"] == bad).unwrap().clone();
    assert_eq!(entry["breaker"], "open", "a refused key takes the channel out at once");
    let (status, _) = h.console(reqwest::Method::POST, "/console/api/channels/999/test", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn claude_channel(h: &Harness, mock: &OpenAiMock, extra: Value) -> i64 {
    let mut body = json!({"name": "claude", "kind": "anthropic", "base_url": format!("http://{}", mock.address),
        "api_key": "sk-ant-upstream-0123456789", "models": ["claude-sonnet-4-5"]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    h.post("/console/api/channels", body).await["id"].as_i64().unwrap()
}

fn weather_tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}])
}

#[tokio::test]
async fn claude_channels_answer_in_openai_format() {
    let mock = OpenAiMock::start(Some("sk-ant-upstream-0123456789")).await;
    let h = Harness::start().await;
    claude_channel(&h, &mock, json!({})).await;
    h.put("/console/api/prices/claude-sonnet-4-5", json!({"input_per_mtok": "3", "output_per_mtok": "15"})).await;
    let (_, key) = h.token(json!({})).await;
    let request = json!({"model": "claude-sonnet-4-5", "temperature": 0.2, "stop": "END", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
    ]});
    let answer: Value = h.v1("/v1/chat/completions", &key, request).await.json().await.unwrap();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["choices"][0]["message"]["content"], REPLY);
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["usage"]["prompt_tokens"], PROMPT_TOKENS);
    assert_eq!(answer["usage"]["completion_tokens"], COMPLETION_TOKENS);

    let sent = mock.received().pop().unwrap();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.authorization.as_deref(), Some("sk-ant-upstream-0123456789"), "the key goes in x-api-key");
    let body = &sent.body;
    assert_eq!(body["system"], json!([{"type": "text", "text": "Be brief."}]));
    assert_eq!(body["max_tokens"], 4096, "Anthropic requires max_tokens");
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert_eq!(body["messages"].as_array().unwrap().len(), 1, "consecutive user turns are merged");
    let blocks = body["messages"][0]["content"].as_array().unwrap();
    assert_eq!(blocks.len(), 3);
    assert_eq!(
        blocks[2],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}})
    );

    let row = &h.logs().await[0];
    assert_eq!((row["usage_source"].as_str(), row["cost"].as_str()), (Some("upstream"), Some("0.000198")));
}

#[tokio::test]
async fn claude_tool_calls_round_trip() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    claude_channel(&h, &mock, json!({})).await;
    let (_, key) = h.token(json!({})).await;
    let request = json!({"model": "claude-sonnet-4-5", "tools": weather_tools(), "tool_choice": "required",
        "parallel_tool_calls": false, "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_prev", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"location\":\"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "toolu_prev", "content": "cold"},
    ]});
    let answer: Value = h.v1("/v1/chat/completions", &key, request).await.json().await.unwrap();
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let arguments: Value = serde_json::from_str(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"location": "Tokyo"}));

    let body = mock.received().pop().unwrap().body;
    assert_eq!(body["tools"][0]["input_schema"]["required"], json!(["location"]));
    assert_eq!(body["tool_choice"], json!({"type": "any", "disable_parallel_tool_use": true}));
    let turns = body["messages"].as_array().unwrap();
    assert_eq!(
        turns[1]["content"][0],
        json!({"type": "tool_use", "id": "toolu_prev", "name": "get_weather", "input": {"location": "Oslo"}})
    );
    assert_eq!(turns[2]["content"][0], json!({"type": "tool_result", "tool_use_id": "toolu_prev", "content": "cold"}));
}

#[tokio::test]
async fn claude_streams_become_openai_chunks_with_tool_call_indexes() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    claude_channel(&h, &mock, json!({})).await;
    let (_, key) = h.token(json!({})).await;
    let mut request = json!({"model": "claude-sonnet-4-5", "stream": true, "stream_options": {"include_usage": true},
        "tools": weather_tools(), "messages": [{"role": "user", "content": "Weather in Paris and Tokyo?"}]});
    let text = h.v1("/v1/chat/completions", &key, request.clone()).await.text().await.unwrap();
    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(text.ends_with("data: [DONE]\n\n"));
    let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, "Let me check.");
    let mut arguments = [String::new(), String::new()];
    for chunk in &chunks {
        for call in chunk["choices"][0]["delta"]["tool_calls"].as_array().into_iter().flatten() {
            arguments[call["index"].as_u64().unwrap() as usize]
                .push_str(call["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(arguments, [r#"{"location": "Paris"}"#.to_string(), r#"{"location": "Tokyo"}"#.to_string()]);
    let finish: Vec<&str> = chunks.iter().filter_map(|c| c["choices"][0]["finish_reason"].as_str()).collect();
    assert_eq!(finish, vec!["tool_calls"]);
    let last = chunks.last().unwrap();
    assert_eq!(
        (last["choices"].as_array().map(Vec::len), last["usage"]["completion_tokens"].as_u64()),
        (Some(0), Some(COMPLETION_TOKENS))
    );

    request["stream_options"] = json!({"include_usage": false});
    request.as_object_mut().unwrap().remove("tools");
    let text = h.v1("/v1/chat/completions", &key, request).await.text().await.unwrap();
    assert!(!text.contains("\"usage\""), "no usage chunk unless asked for");
    let row = &h.logs().await[0];
    assert_eq!(
        (row["prompt_tokens"].as_u64(), row["completion_tokens"].as_u64()),
        (Some(PROMPT_TOKENS), Some(COMPLETION_TOKENS))
    );
    assert_eq!(row["end_reason"], "completed");
}

#[tokio::test]
async fn claude_errors_reach_the_caller_in_openai_shape_and_overload_fails_over() {
    let mock = OpenAiMock::start(None).await;
    let backup = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    claude_channel(&h, &mock, json!({"priority": 5})).await;
    let (_, key) = h.token(json!({})).await;
    mock.set_mode(Mode::Error { status: 400 });
    let (status, error) = error_of(h.v1("/v1/chat/completions", &key, chat_body("claude-sonnet-4-5")).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["type"], "invalid_request_error");
    assert!(error["message"].as_str().unwrap().contains("roles must alternate"));

    h.channel("backup", &backup.base_url(), json!({"models": ["claude-sonnet-4-5"]})).await;
    mock.set_mode(Mode::Error { status: 529 });
    let response = h.v1("/v1/chat/completions", &key, chat_body("claude-sonnet-4-5")).await;
    assert_eq!(response.status(), StatusCode::OK, "an overloaded Claude fails over to the next channel");
    assert_eq!(backup.received().len(), 1);
    let embeddings = h.v1("/v1/embeddings", &key, json!({"model": "claude-sonnet-4-5", "input": "x"})).await;
    assert_eq!(embeddings.status(), StatusCode::OK, "embeddings skip the Claude channel");
    assert_eq!(backup.received().last().unwrap().path, "/v1/embeddings");
}

async fn gemini_channel(h: &Harness, mock: &OpenAiMock) -> i64 {
    let body = json!({"name": "gemini", "kind": "gemini", "base_url": format!("http://{}", mock.address),
        "api_key": "AIzaSyMockKey0123456789", "models": ["gemini-2.5-flash", "text-embedding-004"]});
    h.post("/console/api/channels", body).await["id"].as_i64().unwrap()
}

fn sse_chunks(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn gemini_channels_answer_stream_call_tools_and_embed_in_openai_format() {
    let mock = OpenAiMock::start(Some("AIzaSyMockKey0123456789")).await;
    let h = Harness::start().await;
    gemini_channel(&h, &mock).await;
    let (_, key) = h.token(json!({})).await;

    let answer: Value = h.v1("/v1/chat/completions", &key, chat_body("gemini-2.5-flash")).await.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], REPLY);
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["usage"]["prompt_tokens"], PROMPT_TOKENS);
    let sent = mock.received().pop().unwrap();
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.authorization.as_deref(), Some("AIzaSyMockKey0123456789"), "the key rides in x-goog-api-key");
    assert_eq!(sent.body["contents"][0], json!({"role": "user", "parts": [{"text": "Say hello"}]}));

    let mut tools = json!({"model": "gemini-2.5-flash", "tools": weather_tools(),
        "messages": [{"role": "user", "content": "Weather in Paris and Tokyo?"}]});
    let answer: Value = h.v1("/v1/chat/completions", &key, tools.clone()).await.json().await.unwrap();
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    let calls = answer["choices"][0]["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        serde_json::from_str::<Value>(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"location": "Paris"})
    );

    tools["stream"] = json!(true);
    let chunks = sse_chunks(&h.v1("/v1/chat/completions", &key, tools).await.text().await.unwrap());
    let indexes: Vec<u64> = chunks
        .iter()
        .flat_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array().cloned().unwrap_or_default())
        .map(|call| call["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, vec![0, 1]);
    assert_eq!(mock.received().pop().unwrap().path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent");

    let mut streamed = chat_body("gemini-2.5-flash");
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let text = h.v1("/v1/chat/completions", &key, streamed).await.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    let chunks = sse_chunks(&text);
    let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, REPLY);
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], COMPLETION_TOKENS);

    let embedded: Value = h
        .v1("/v1/embeddings", &key, json!({"model": "text-embedding-004", "input": ["a", "b"]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(embedded["data"].as_array().unwrap().len(), 2);
    assert_eq!(embedded["data"][1]["index"], 1);
    let sent = mock.received().pop().unwrap();
    assert_eq!(sent.path, "/v1beta/models/text-embedding-004:batchEmbedContents");
    assert_eq!(sent.body["requests"][1]["model"], "models/text-embedding-004");

    let logs = h.logs().await;
    assert_eq!(logs[0]["usage_source"], "estimated", "Gemini's embeddings carry no usage: it is counted");
    assert!(logs[1..].iter().all(|r| r["usage_source"] == "upstream" && r["end_reason"] == "completed"), "{logs:?}");
}

#[tokio::test]
async fn gemini_errors_reach_the_caller_in_openai_shape() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    gemini_channel(&h, &mock).await;
    let (_, key) = h.token(json!({})).await;
    mock.set_mode(Mode::Error { status: 400 });
    let (status, error) = error_of(h.v1("/v1/chat/completions", &key, chat_body("gemini-2.5-flash")).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("invalid_request_error"), Some("INVALID_ARGUMENT"))
    );
    assert!(!error.to_string().contains("AIzaSyMockKey"), "no key in the error");
}

#[tokio::test]
async fn the_messages_endpoint_speaks_anthropic_in_front_of_any_channel() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    h.channel("mock", &mock.base_url(), json!({})).await;
    let (_, key) = h.token(json!({})).await;
    let request = json!({"model": "gpt-4o-mini", "max_tokens": 64, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello"}]});
    let response =
        h.http.post(format!("{}/v1/messages", h.base)).header("x-api-key", &key).json(&request).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let message: Value = response.json().await.unwrap();
    assert_eq!((message["type"].as_str(), message["role"].as_str()), (Some("message"), Some("assistant")));
    assert_eq!(message["content"], json!([{"type": "text", "text": REPLY}]));
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(
        message["usage"],
        json!({"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS,
               "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    );
    let sent = mock.received().pop().unwrap().body;
    assert_eq!(sent["messages"][0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(sent["max_tokens"], 64);

    let unauthorized =
        h.http.post(format!("{}/v1/messages", h.base)).header("x-api-key", "nope").json(&request).send().await.unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    let error: Value = unauthorized.json().await.unwrap();
    assert_eq!(
        (error["type"].as_str(), error["error"]["type"].as_str()),
        (Some("error"), Some("authentication_error"))
    );

    let counted: Value = h
        .http
        .post(format!("{}/v1/messages/count_tokens", h.base))
        .header("x-api-key", &key)
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello world"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counted, json!({"input_tokens": 2 + 3 * 2}));
    let row = &h.logs().await[0];
    assert_eq!((row["endpoint"].as_str(), row["status"].as_u64()), (Some("/v1/messages"), Some(200)));
}

/// The shared adapter matrix: every upstream wire format — OpenAI's (passed through), Anthropic's
/// and Gemini's (converted) — must look the same to an OpenAI caller, case by case.
/// What current Claude Code sends (found with the real client, 2.1.x): system turns inside
/// `messages`, adaptive thinking, `output_config`, `context_management`, `cache_control` on
/// blocks, thinking blocks and server tools. A non-Claude model must take all of it.
#[tokio::test]
async fn claude_code_requests_reach_any_model() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    h.channel("mock", &mock.base_url(), json!({"models": ["deepseek-chat"]})).await;
    let (_, key) = h.token(json!({})).await;
    let request = json!({
        "model": "deepseek-chat", "max_tokens": 32000, "stream": false,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Fix the bug", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "<system-reminder>Todo list is empty</system-reminder>"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Looking."}]},
            {"role": "user", "content": [{"type": "text", "text": "Go on"},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}}]},
        ],
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "tools": [{"name": "Bash", "description": "Run", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}},
                  {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
        "metadata": {"user_id": "user_abc_account__session_1"},
        "future_field_nobody_knows": {"x": 1},
    });
    let response =
        h.http.post(format!("{}/v1/messages", h.base)).header("x-api-key", &key).json(&request).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let sent = mock.received().pop().unwrap().body;
    let roles: Vec<&str> = sent["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "system", "assistant", "user"]);
    assert_eq!(sent["messages"][2]["content"], "<system-reminder>Todo list is empty</system-reminder>");
    assert_eq!(sent["messages"][4]["content"][1]["text"], "notes");
    assert_eq!(sent["tools"].as_array().unwrap().len(), 1, "the server tool has no meaning for this model");
    for dropped in ["thinking", "output_config", "context_management", "future_field_nobody_knows"] {
        assert!(sent.get(dropped).is_none(), "{dropped} is Claude's alone: {sent}");
    }
    assert!(!sent.to_string().contains("cache_control"));
}

#[tokio::test]
async fn every_adapter_passes_the_same_matrix() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    let wires = [
        ("openai", mock.base_url(), "model-openai"),
        ("anthropic", format!("http://{}", mock.address), "model-anthropic"),
        ("gemini", format!("http://{}", mock.address), "model-gemini"),
    ];
    for (kind, base_url, model) in &wires {
        h.post("/console/api/channels", json!({"name": kind, "kind": kind, "base_url": base_url, "models": [model]}))
            .await;
    }
    let (_, key) = h.token(json!({})).await;
    let image = json!([{"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]);
    let history = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_9", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"location\":\"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_9", "content": "cold"},
        {"role": "user", "content": image},
    ]);
    for (kind, _, model) in &wires {
        let case = |name: &str| format!("{kind}: {name}");
        let chat = |messages: Value, extra: Value| {
            let mut body = json!({"model": model, "messages": messages});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            h.v1("/v1/chat/completions", &key, body)
        };
        // Plain text, usage and the stop reason.
        let answer: Value = chat(json!([{"role": "user", "content": "Hi"}]), json!({})).await.json().await.unwrap();
        assert_eq!(answer["choices"][0]["message"]["content"], REPLY, "{}", case("plain text"));
        assert_eq!(answer["choices"][0]["finish_reason"], "stop", "{}", case("stop reason"));
        assert_eq!(answer["usage"]["prompt_tokens"], PROMPT_TOKENS, "{}", case("usage"));
        assert_eq!(answer["usage"]["completion_tokens"], COMPLETION_TOKENS, "{}", case("usage"));
        // System prompt, multi-turn, tool results and an image in one conversation.
        let answer: Value = chat(history.clone(), json!({})).await.json().await.unwrap();
        assert_eq!(answer["choices"][0]["message"]["content"], REPLY, "{}", case("history with tools and image"));
        // Parallel tool calls.
        let answer: Value = chat(json!([{"role": "user", "content": "Weather?"}]), json!({"tools": weather_tools()}))
            .await
            .json()
            .await
            .unwrap();
        let calls = answer["choices"][0]["message"]["tool_calls"].as_array().cloned().unwrap_or_default();
        let arguments: Vec<Value> =
            calls.iter().map(|c| serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap()).collect();
        assert_eq!(
            arguments,
            vec![json!({"location": "Paris"}), json!({"location": "Tokyo"})],
            "{}",
            case("parallel tool calls")
        );
        assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls", "{}", case("tool stop reason"));
        // Stream text with the usage chunk.
        let text = chat(
            json!([{"role": "user", "content": "Hi"}]),
            json!({"stream": true, "stream_options": {"include_usage": true}}),
        )
        .await
        .text()
        .await
        .unwrap();
        let chunks = sse_chunks(&text);
        let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(content, REPLY, "{}", case("stream text"));
        assert!(text.ends_with("data: [DONE]\n\n"), "{}", case("stream end"));
        assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], COMPLETION_TOKENS, "{}", case("stream usage"));
        // Stream tool calls, assembled by index.
        let text =
            chat(json!([{"role": "user", "content": "Weather?"}]), json!({"stream": true, "tools": weather_tools()}))
                .await
                .text()
                .await
                .unwrap();
        let mut assembled = [String::new(), String::new()];
        for chunk in sse_chunks(&text) {
            for call in chunk["choices"][0]["delta"]["tool_calls"].as_array().into_iter().flatten() {
                assembled[call["index"].as_u64().unwrap() as usize]
                    .push_str(call["function"]["arguments"].as_str().unwrap_or(""));
            }
        }
        let assembled: Vec<Value> = assembled.iter().map(|a| serde_json::from_str(a).unwrap()).collect();
        assert_eq!(
            assembled,
            vec![json!({"location": "Paris"}), json!({"location": "Tokyo"})],
            "{}",
            case("stream tool calls")
        );
    }
    // Upstream errors reach the caller with their status, in OpenAI's shape. 401 comes last: it
    // rests a channel for a long while.
    for status in [400u16, 429, 500, 401] {
        mock.set_mode(Mode::Error { status });
        for (kind, _, model) in &wires {
            let (got, error) = error_of(h.v1("/v1/chat/completions", &key, chat_body(model)).await).await;
            assert_eq!(got.as_u16(), status, "{kind}: upstream {status}");
            assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{kind}: {status}: {error}");
            assert!(error["type"].is_string(), "{kind}: {status}: {error}");
        }
    }
}

#[tokio::test]
async fn the_console_refuses_pages_from_other_origins() {
    let h = Harness::start().await;
    let host = h.base.trim_start_matches("http://").to_string();
    let foreign = h
        .http
        .get(format!("{}/console/api/account", h.base))
        .bearer_auth(ADMIN)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let body: Value = foreign.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden_origin");
    assert!(foreign_free_of_cors(&h).await, "no permissive CORS headers");
    // The app's own page, served directly or through a TLS-terminating proxy on the same host.
    for (origin, status) in [
        (format!("http://{host}"), StatusCode::OK),
        (format!("https://{host}"), StatusCode::OK),
        (format!("http://{host}.evil.example"), StatusCode::FORBIDDEN),
        (format!("http://evil.example/{host}"), StatusCode::FORBIDDEN),
        ("null".to_string(), StatusCode::FORBIDDEN),
    ] {
        let answer = h
            .http
            .get(format!("{}/console/api/account", h.base))
            .bearer_auth(ADMIN)
            .header("origin", &origin)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "Origin: {origin}");
    }
}

async fn foreign_free_of_cors(h: &Harness) -> bool {
    let response = h
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/console/api/account", h.base))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    !response.headers().contains_key("access-control-allow-origin")
}

#[tokio::test]
async fn beyond_the_concurrency_cap_callers_get_503_with_retry_after() {
    let mock = OpenAiMock::start(None).await;
    mock.set_mode(Mode::Hang);
    let h = Harness::with_limits(RouterConfig {
        max_concurrent_calls: 1,
        first_byte_timeout: Duration::from_millis(1500),
        ..RouterConfig::default()
    })
    .await;
    h.channel("slow", &mock.base_url(), json!({})).await;
    let (_, key) = h.token(json!({})).await;
    let first = {
        let (http, base, key) = (h.http.clone(), h.base.clone(), key.clone());
        tokio::spawn(async move {
            http.post(format!("{base}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&chat_body("gpt-4o-mini"))
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await;
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.headers()["retry-after"], "1");
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::GATEWAY_TIMEOUT);
    mock.set_mode(Mode::Normal);
    assert_eq!(
        h.v1("/v1/chat/completions", &key, chat_body("gpt-4o-mini")).await.status(),
        StatusCode::OK,
        "the slot is free again"
    );
}

/// The data of each event of a Responses API stream (`event: …` / `data: …`), in order.
fn response_events(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}")))
        .collect()
}

/// Channels of every wire, each serving one model: OpenAI passed through to its own Responses
/// API, an OpenAI-compatible server without it, DeepSeek, Claude and Gemini (converted to chat).
async fn every_wire(h: &Harness, mock: &OpenAiMock) -> [&'static str; 5] {
    let host = format!("http://{}", mock.address);
    let channels = [
        ("openai native", "openai", mock.base_url(), "model-native", true),
        ("openai-compatible", "openai", mock.base_url(), "model-openai", false),
        ("deepseek", "deepseek", mock.base_url(), "deepseek-chat", false),
        ("claude", "anthropic", host.clone(), "model-anthropic", false),
        ("gemini", "gemini", host, "model-gemini", false),
    ];
    for (name, kind, base_url, model, native) in &channels {
        h.post(
            "/console/api/channels",
            json!({"name": name, "kind": kind, "base_url": base_url, "models": [model], "native_responses": native}),
        )
        .await;
    }
    channels.map(|(_, _, _, model, _)| model)
}

#[tokio::test]
async fn the_responses_endpoint_answers_and_streams_through_every_wire() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    let models = every_wire(&h, &mock).await;
    let (_, key) = h.token(json!({})).await;
    for model in models {
        let response: Value = h
            .v1("/v1/responses", &key, json!({"model": model, "input": "Hi", "instructions": "Be brief."}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(response["object"], "response", "{model}: {response}");
        assert_eq!(response["status"], "completed", "{model}");
        let message = response["output"].as_array().unwrap().iter().find(|i| i["type"] == "message").unwrap().clone();
        assert_eq!(message["content"][0]["text"], REPLY, "{model}");
        assert_eq!(response["usage"]["input_tokens"], PROMPT_TOKENS, "{model}");
        assert_eq!(response["usage"]["output_tokens"], COMPLETION_TOKENS, "{model}");

        let text = h
            .v1("/v1/responses", &key, json!({"model": model, "input": "Hi", "stream": true}))
            .await
            .text()
            .await
            .unwrap();
        let events = response_events(&text);
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types.first(), Some(&"response.created"), "{model}: {types:?}");
        assert_eq!(types.last(), Some(&"response.completed"), "{model}: {types:?}");
        assert!(!text.contains("[DONE]"), "{model}: Responses streams have no [DONE]");
        let deltas: String = events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .filter_map(|e| e["delta"].as_str())
            .collect();
        assert_eq!(deltas, REPLY, "{model}");
        let sequence: Vec<u64> = events.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
        assert_eq!(sequence, (0..events.len() as u64).collect::<Vec<_>>(), "{model}: sequence numbers");
        assert_eq!(events.last().unwrap()["response"]["usage"]["output_tokens"], COMPLETION_TOKENS, "{model}");
    }
    let native = mock.received().into_iter().filter(|r| r.path == "/v1/responses").count();
    assert_eq!(native, 2, "only the OpenAI channel's calls went to its own Responses API");
    let logs = h.logs().await;
    assert!(logs.iter().all(|row| row["endpoint"] == "/v1/responses" && row["status"] == 200), "{logs:?}");
    assert_eq!(logs.len(), 10);
    h.assert_books_balance().await;
}

#[tokio::test]
async fn responses_call_tools_and_continue_from_a_stored_response_on_chat_channels() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    let models = every_wire(&h, &mock).await;
    let (_, key) = h.token(json!({})).await;
    let (_, other_key) = h.token(json!({})).await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}]);
    for model in &models[1..] {
        for stream in [false, true] {
            let request =
                json!({"model": model, "input": "Weather in Paris and Tokyo?", "tools": tools, "stream": stream});
            let response = if stream {
                let text = h.v1("/v1/responses", &key, request).await.text().await.unwrap();
                response_events(&text).last().unwrap()["response"].clone()
            } else {
                h.v1("/v1/responses", &key, request).await.json().await.unwrap()
            };
            let calls: Vec<Value> = response["output"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["type"] == "function_call")
                .map(|i| serde_json::from_str(i["arguments"].as_str().unwrap()).unwrap())
                .collect();
            assert_eq!(calls, [json!({"location": "Paris"}), json!({"location": "Tokyo"})], "{model} stream={stream}");
        }
        // A JSON schema asked for as text.format reaches the chat upstream as response_format.
        let format =
            json!({"format": {"type": "json_schema", "name": "city", "schema": {"type": "object"}, "strict": true}});
        h.v1("/v1/responses", &key, json!({"model": model, "input": "City?", "text": format})).await;

        // The first turn is stored; the second continues from it by id.
        let first: Value = h
            .v1("/v1/responses", &key, json!({"model": model, "input": "Remember: blue."}))
            .await
            .json()
            .await
            .unwrap();
        let id = first["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("resp_"), "{id}");
        let second = h
            .v1("/v1/responses", &key, json!({"model": model, "input": "What colour?", "previous_response_id": id}))
            .await;
        assert_eq!(second.status(), StatusCode::OK, "{model}");
        let sent = mock.received().last().unwrap().body.to_string();
        for part in ["Remember: blue.", REPLY, "What colour?"] {
            assert!(sent.contains(part), "{model}: the upstream got the whole conversation: {sent}");
        }
        // A third turn continues the second: the chain of stored turns is the whole conversation.
        let second: Value = second.json().await.unwrap();
        let third = h
            .v1(
                "/v1/responses",
                &key,
                json!({"model": model, "input": "And now?", "previous_response_id": second["id"]}),
            )
            .await;
        assert_eq!(third.status(), StatusCode::OK, "{model}");
        let sent = mock.received().last().unwrap().body.to_string();
        let at = |part: &str| sent.find(part).unwrap_or_else(|| panic!("{model}: {part} missing from {sent}"));
        assert!(at("Remember: blue.") < at("What colour?") && at("What colour?") < at("And now?"), "{model}: {sent}");
        let stored = h.http.get(format!("{}/v1/responses/{id}", h.base)).bearer_auth(&key).send().await.unwrap();
        assert_eq!(stored.json::<Value>().await.unwrap()["id"], id.as_str());
        let foreign = h.http.get(format!("{}/v1/responses/{id}", h.base)).bearer_auth(&other_key).send().await.unwrap();
        assert_eq!(foreign.status(), StatusCode::NOT_FOUND, "another token cannot read it");
        let deleted = h.http.delete(format!("{}/v1/responses/{id}", h.base)).bearer_auth(&key).send().await.unwrap();
        assert_eq!(
            deleted.json::<Value>().await.unwrap(),
            json!({"id": id, "object": "response.deleted", "deleted": true})
        );
        let (status, error) =
            error_of(h.http.get(format!("{}/v1/responses/{id}", h.base)).bearer_auth(&key).send().await.unwrap()).await;
        assert_eq!((status, error["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
        // With its first turn gone, the conversation cannot be continued, and the caller learns why.
        let (status, error) = error_of(
            h.v1(
                "/v1/responses",
                &key,
                json!({"model": model, "input": "More?", "previous_response_id": second["id"]}),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{model}");
        assert!(error["message"].as_str().unwrap().contains("no longer stored"), "{error}");
    }
    let sent_formats: Vec<Value> =
        mock.received().iter().filter_map(|r| r.body.get("response_format").cloned()).collect();
    assert!(sent_formats.iter().any(|f| f["json_schema"]["name"] == "city"), "{sent_formats:?}");
    // Unstored calls leave nothing to continue from.
    let unstored: Value = h
        .v1("/v1/responses", &key, json!({"model": models[1], "input": "x", "store": false}))
        .await
        .json()
        .await
        .unwrap();
    let (status, error) = error_of(
        h.v1("/v1/responses", &key, json!({"model": models[1], "input": "y", "previous_response_id": unstored["id"]}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error["message"].as_str().unwrap().contains("not found"), "{error}");
    h.assert_books_balance().await;
}

#[tokio::test]
async fn bad_responses_requests_get_clear_openai_errors() {
    let mock = OpenAiMock::start(None).await;
    let h = Harness::start().await;
    let models = every_wire(&h, &mock).await;
    let (_, key) = h.token(json!({})).await;
    let cases = [
        (json!({"model": models[1], "input": "x", "tools": [{"type": "web_search"}]}), "web_search"),
        (
            json!({"model": models[2], "input": "x", "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}),
            "hosted tool",
        ),
        (json!({"model": models[3], "input": [{"type": "mystery_item"}]}), "mystery_item"),
        (json!({"model": models[4], "input": 42}), "string or a list"),
        (json!({"model": models[1], "input": "x", "previous_response_id": "resp_nowhere"}), "resp_nowhere"),
        (json!({"model": models[1], "input": "x", "previous_response_id": 7}), "must be a string"),
        (json!({"input": "x"}), "model"),
    ];
    for (request, expected) in cases {
        let (status, error) = error_of(h.v1("/v1/responses", &key, request.clone()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}: {error}");
        assert!(error["message"].as_str().unwrap().contains(expected), "{request}: {error}");
        assert_eq!(error["type"], "invalid_request_error", "{request}: {error}");
    }
    let (status, _) = error_of(h.v1("/v1/responses", &key, json!({"model": "unknown", "input": "x"})).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A hosted tool reaches an upstream that runs it: the native OpenAI channel.
    let native =
        h.v1("/v1/responses", &key, json!({"model": models[0], "input": "x", "tools": [{"type": "web_search"}]})).await;
    assert_eq!(native.status(), StatusCode::OK);
    assert_eq!(mock.received().last().unwrap().body["tools"][0]["type"], "web_search");
}

#[tokio::test]
async fn cache_reads_and_writes_are_logged_and_billed_from_every_providers_usage() {
    use burncloud_tests::anthropic_mock::{CACHE_READ_TOKENS, CACHE_WRITE_1H_TOKENS, CACHE_WRITE_5M_TOKENS};
    use burncloud_tests::openai_mock::CACHED_TOKENS;
    let mock = OpenAiMock::start(None).await;
    mock.set_mode(Mode::CachedUsage);
    let h = Harness::start().await;
    let models = every_wire(&h, &mock).await;
    let (_, key) = h.token(json!({})).await;
    let price = json!({"input_per_mtok": "2", "output_per_mtok": "8", "cache_read_per_mtok": "0.5",
        "cache_write_per_mtok": "2.5", "cache_write_1h_per_mtok": "4"});
    for model in models {
        let stored = h.put(&format!("/console/api/prices/{model}"), price.clone()).await;
        assert_eq!(stored["cache_write_1h_per_mtok"], "4");
    }
    let cost = |uncached: u64, read: u64, write_5m: u64, write_1h: u64| -> i64 {
        let per = |rate: &str, tokens: u64| {
            burncloud_service_api::Money::per_million_tokens(burncloud_service_api::Money::parse(rate).unwrap(), tokens)
                .0
        };
        per("2", uncached) + per("0.5", read) + per("2.5", write_5m) + per("4", write_1h) + per("8", COMPLETION_TOKENS)
    };
    for (model, path, stream) in [
        (models[1], "/v1/chat/completions", false),
        (models[1], "/v1/chat/completions", true),
        (models[2], "/v1/chat/completions", false),
        (models[2], "/v1/chat/completions", true),
        (models[0], "/v1/responses", false),
        (models[0], "/v1/responses", true),
        (models[3], "/v1/chat/completions", false),
        (models[3], "/v1/chat/completions", true),
        (models[4], "/v1/chat/completions", false),
        (models[4], "/v1/chat/completions", true),
    ] {
        let body = if path == "/v1/responses" {
            json!({"model": model, "input": "Hi", "stream": stream})
        } else {
            json!({"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": stream})
        };
        let response = h.v1(path, &key, body).await;
        assert_eq!(response.status(), StatusCode::OK, "{model}");
        let answer = response.text().await.unwrap();
        let row = h.logs().await[0].clone();
        let (prompt, cached, writes, writes_1h, expected) = if model == models[3] {
            let writes = CACHE_WRITE_5M_TOKENS + CACHE_WRITE_1H_TOKENS;
            let prompt = PROMPT_TOKENS + CACHE_READ_TOKENS + writes;
            (
                prompt,
                CACHE_READ_TOKENS,
                writes,
                CACHE_WRITE_1H_TOKENS,
                cost(PROMPT_TOKENS, CACHE_READ_TOKENS, CACHE_WRITE_5M_TOKENS, CACHE_WRITE_1H_TOKENS),
            )
        } else {
            (PROMPT_TOKENS, CACHED_TOKENS, 0, 0, cost(PROMPT_TOKENS - CACHED_TOKENS, CACHED_TOKENS, 0, 0))
        };
        let case = format!("{model} stream={stream}");
        assert_eq!(row["prompt_tokens"], prompt, "{case}: {row}");
        assert_eq!(row["cached_tokens"], cached, "{case}: {row}");
        assert_eq!(row["cache_write_tokens"], writes, "{case}: {row}");
        assert_eq!(row["cache_write_1h_tokens"], writes_1h, "{case}: {row}");
        assert_eq!(nanos(&row["cost"]), expected, "{case}: {row}");
        if !stream && path == "/v1/chat/completions" {
            let answer: Value = serde_json::from_str(&answer).unwrap();
            // DeepSeek's answer passes through with DeepSeek's own cache fields.
            let field = if model == models[2] {
                "/usage/prompt_cache_hit_tokens"
            } else {
                "/usage/prompt_tokens_details/cached_tokens"
            };
            assert_eq!(answer.pointer(field), Some(&json!(cached)), "{case}: OpenAI callers see cached_tokens");
        }
    }
    // Anthropic callers see the cache in Anthropic's fields, whichever channel answered.
    for model in [models[3], models[1]] {
        let answer: Value = h
            .http
            .post(format!("{}/v1/messages", h.base))
            .header("x-api-key", &key)
            .json(&json!({"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let expected_read = if model == models[3] { CACHE_READ_TOKENS } else { CACHED_TOKENS };
        assert_eq!(answer["usage"]["cache_read_input_tokens"], expected_read, "{model}: {answer}");
        assert_eq!(
            answer["usage"]["input_tokens"],
            PROMPT_TOKENS - if model == models[3] { 0 } else { CACHED_TOKENS },
            "{model}"
        );
    }
    let usage = h.get("/console/api/usage?group_by=model").await;
    assert!(usage["totals"]["cached_tokens"].as_u64().unwrap() > 0, "{usage}");
    h.assert_books_balance().await;
}

/// Every route the OpenAPI document lists for the data plane is served: without a key each answers
/// 401 in its protocol's error shape (the open ones answer as they always do), never 404 or 405.
#[tokio::test]
async fn every_listed_data_plane_route_is_served_and_refuses_a_missing_key_in_its_own_shape() {
    let h = Harness::start().await;
    for route in burncloud_router::DATA_ROUTES {
        let path = route.path.replace("{model}", "gpt-4o-mini").replace("{id}", "resp_0123");
        let method = reqwest::Method::from_bytes(route.method.to_uppercase().as_bytes()).unwrap();
        let mut request = h.http.request(method, format!("{}{path}", h.base));
        request = match route.body {
            burncloud_router::RequestBody::Json => request.json(&json!({"model": "gpt-4o-mini"})),
            burncloud_router::RequestBody::Form => {
                request.header("content-type", "multipart/form-data; boundary=b").body("--b--\r\n")
            }
            burncloud_router::RequestBody::None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_else(|e| panic!("{} {path}: not JSON: {e}", route.method));
        let label = format!("{} {path}: {status} {body}", route.method);
        match (route.open, path.as_str()) {
            (true, "/api/version") => assert_eq!(status, StatusCode::OK, "{label}"),
            (true, _) => assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{label}"),
            (false, _) => assert_eq!(status, StatusCode::UNAUTHORIZED, "{label}"),
        }
        if status != StatusCode::OK {
            let message = match route.errors {
                burncloud_router::ErrorShape::Ollama => body["error"].as_str(),
                burncloud_router::ErrorShape::OpenAi
                | burncloud_router::ErrorShape::Anthropic
                | burncloud_router::ErrorShape::Gemini => body["error"]["message"].as_str(),
            };
            assert!(message.is_some_and(|m| !m.is_empty()), "{label}");
            match route.errors {
                burncloud_router::ErrorShape::Anthropic => assert_eq!(body["type"], "error", "{label}"),
                burncloud_router::ErrorShape::Gemini => assert_eq!(body["error"]["code"], 401, "{label}"),
                burncloud_router::ErrorShape::OpenAi => assert!(body["error"]["type"].is_string(), "{label}"),
                burncloud_router::ErrorShape::Ollama => {}
            }
        }
    }
}
