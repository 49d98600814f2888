//! Local inference against a real llama-server and a real (tiny) GGUF: start to ready, chat and
//! stream through the gateway, a crash restarted, a broken model failing with the server's own
//! message, and no process left behind after stop. `./scripts/test` installs llama-server and
//! generates the model, passing them in `BURNCLOUD_LLAMA_SERVER` and `BURNCLOUD_TEST_GGUF`.

mod support;

use std::time::Duration;

use burncloud_server::{GatewayLimits, InferenceConfig, ModelHubConfig};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{prerequisites, wait_for, Harness};

async fn start() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let models = ModelHubConfig::from_env(dir.path());
    let mut inference = InferenceConfig::new(dir.path());
    inference.restart_backoff = Duration::from_millis(100);
    Harness::open_with(dir, GatewayLimits::default(), models, inference).await
}

async fn import(h: &Harness, model: &std::path::Path) -> i64 {
    let copy = h.data_dir().join("tiny-F32.gguf");
    std::fs::copy(model, &copy).unwrap();
    h.post("/console/api/models/local/import", json!({"path": copy})).await["id"].as_i64().unwrap()
}

fn process_exists(pid: u64) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A zombie has exited; only its entry remains until it is reaped.
    !stat.is_empty() && stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z'))
}

async fn chat(h: &Harness, key: &str, body: Value) -> reqwest::Response {
    h.http.post(format!("{}/v1/chat/completions", h.base)).bearer_auth(key).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn a_deployed_model_serves_chat_and_streams_through_the_gateway_then_stops_cleanly() {
    let Some((_server, model)) = prerequisites() else { return };
    let h = start().await;
    let found = h.get("/console/api/llama-server").await;
    assert!(found["version"].as_str().unwrap().starts_with("version:"), "{found}");
    assert_eq!(found["found_in"], "env");

    let model_id = import(&h, &model).await;
    let created = h.post("/console/api/instances", json!({"model_id": model_id, "ctx_size": 512, "parallel": 1})).await;
    assert_eq!(created["alias"], "tiny-F32");
    assert_eq!(created["state"], "starting");
    let id = created["id"].as_i64().unwrap();
    let ready = wait_for(&h, id, &["ready", "failed"]).await;
    assert_eq!(ready["state"], "ready", "{ready}");
    let pid = ready["pid"].as_u64().unwrap();
    let port = ready["port"].as_u64().unwrap();
    assert!(process_exists(pid));
    assert_eq!(h.get("/console/api/models/local").await[0]["in_use"], true);
    let (status, refused) =
        h.console(reqwest::Method::DELETE, &format!("/console/api/models/local/{model_id}"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");

    let channel = h.get(&format!("/console/api/channels/{}", ready["channel_id"])).await;
    assert_eq!(channel["kind"], "local");
    assert_eq!(channel["base_url"], format!("http://127.0.0.1:{port}/v1"));
    assert_eq!(channel["models"], json!(["tiny-F32"]));
    let direct = h
        .http
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .json(&json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), StatusCode::UNAUTHORIZED, "the instance wants its random key");

    let key = h.post("/console/api/tokens", json!({"name": "local"})).await["key"].as_str().unwrap().to_string();
    let listed: Value =
        h.http.get(format!("{}/v1/models", h.base)).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert!(listed["data"].as_array().unwrap().iter().any(|m| m["id"] == "tiny-F32"), "{listed}");

    let answer = chat(
        &h,
        &key,
        json!({"model": "tiny-F32", "max_tokens": 8, "messages": [{"role": "user", "content": "hello world"}]}),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["choices"][0]["finish_reason"], "length", "{answer}");
    assert_eq!(answer["usage"]["completion_tokens"], 8);
    assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let stream = chat(
        &h,
        &key,
        json!({"model": "tiny-F32", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(stream.status(), StatusCode::OK);
    let mut body = String::new();
    let mut chunks = stream.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        body.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    assert!(body.matches("\"content\":").count() >= 5, "{body}");

    h.state.gateway.log_sink().flush().await;
    let logs = h.get("/console/api/logs?limit=10").await["items"].as_array().unwrap().clone();
    assert_eq!(logs.len(), 2, "{logs:?}");
    for row in &logs {
        assert_eq!(row["channel_name"], "local: tiny-F32");
        assert_eq!(row["status"], 200);
        assert_eq!(row["usage_source"], "upstream", "real usage from llama-server: {row}");
    }
    assert!(logs.iter().any(|row| row["completion_tokens"] == 5 && row["is_stream"] == true), "{logs:?}");

    let stopped = h.post(&format!("/console/api/instances/{id}/stop"), json!({})).await;
    assert_eq!(stopped["state"], "stopped");
    assert!(stopped["channel_id"].is_null());
    assert!(!process_exists(pid), "no llama-server left after stop");
    let listed: Value =
        h.http.get(format!("{}/v1/models", h.base)).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert!(!listed["data"].as_array().unwrap().iter().any(|m| m["id"] == "tiny-F32"), "{listed}");
    let logs = h.get(&format!("/console/api/instances/{id}/logs?tail=500")).await;
    assert!(logs["lines"].as_array().unwrap().iter().any(|l| l.as_str().unwrap().contains("listening")), "{logs}");

    let restarted = h.post(&format!("/console/api/instances/{id}/restart"), json!({})).await;
    assert_eq!(restarted["state"], "starting");
    assert_eq!(wait_for(&h, id, &["ready", "failed"]).await["state"], "ready");
    h.delete(&format!("/console/api/instances/{id}")).await;
    h.delete(&format!("/console/api/models/local/{model_id}")).await;
}

#[tokio::test]
async fn a_crash_while_ready_restarts_the_server() {
    let Some((_server, model)) = prerequisites() else { return };
    let h = start().await;
    let model_id = import(&h, &model).await;
    let id = h.post("/console/api/instances", json!({"model_id": model_id, "ctx_size": 256, "parallel": 1})).await
        ["id"]
        .as_i64()
        .unwrap();
    let first = wait_for(&h, id, &["ready", "failed"]).await;
    assert_eq!(first["state"], "ready", "{first}");
    let first_pid = first["pid"].as_u64().unwrap();
    // SAFETY: a plain kill of the llama-server this test started.
    unsafe { libc_kill(first_pid as i32, 9) };

    let mut again = Value::Null;
    for _ in 0..200 {
        again = h.get(&format!("/console/api/instances/{id}")).await;
        if again["state"] == "ready" && again["pid"].as_u64() != Some(first_pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(again["state"], "ready", "{again}");
    assert_eq!(again["restarts"], 1);
    assert_ne!(again["pid"].as_u64(), Some(first_pid));
    let channels = h.get("/console/api/channels").await;
    assert_eq!(channels.as_array().unwrap().iter().filter(|c| c["kind"] == "local").count(), 1, "{channels}");
    h.post(&format!("/console/api/instances/{id}/stop"), json!({})).await;
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

#[tokio::test]
async fn a_broken_model_fails_with_the_servers_message() {
    let Some(_) = prerequisites() else { return };
    let h = start().await;
    // A valid header with no tensors: importable, but llama-server cannot load it.
    let broken = h.data_dir().join("broken-Q4_K_M.gguf");
    let mut bytes = b"GGUF\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    bytes.resize(4096, 0);
    std::fs::write(&broken, bytes).unwrap();
    let model_id = h.post("/console/api/models/local/import", json!({"path": broken})).await["id"].as_i64().unwrap();
    let id = h.post("/console/api/instances", json!({"model_id": model_id})).await["id"].as_i64().unwrap();
    let failed = wait_for(&h, id, &["ready", "failed"]).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("exited") && error.contains("before it was ready"), "{error}");
    assert!(error.to_lowercase().contains("model"), "the server's own words are kept: {error}");
    assert!(failed["channel_id"].is_null());
    let channels = h.get("/console/api/channels").await;
    assert!(channels.as_array().unwrap().is_empty(), "{channels}");
    assert_eq!(h.get("/console/api/models/local").await[0]["in_use"], false);

    let (status, error) =
        h.console(reqwest::Method::POST, "/console/api/instances", Some(json!({"model_id": 999}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    let (status, error) = h
        .console(reqwest::Method::POST, "/console/api/instances", Some(json!({"model_id": model_id, "ctx_size": 1})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, _) = h
        .console(
            reqwest::Method::POST,
            "/console/api/instances",
            Some(json!({"model_id": model_id, "alias": "broken-Q4_K_M"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}
