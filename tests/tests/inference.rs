//! Local inference against a real llama-server and a real (tiny) GGUF: start to ready, chat and
//! stream through the gateway, a crash restarted, a broken model failing with the server's own
//! message, and no process left behind after stop. `./scripts/test` installs llama-server and
//! generates the model, passing them in `BURNCLOUD_LLAMA_SERVER` and `BURNCLOUD_TEST_GGUF`.

mod support;

use std::time::Duration;

use burncloud_server::{InferenceConfig, ModelHubConfig, RouterConfig};
use burncloud_service_api::SettingsService;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{prerequisites, wait_for, Harness};

async fn start() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let models = ModelHubConfig::from_env(dir.path());
    let mut inference = InferenceConfig::new(dir.path());
    inference.restart_backoff = Duration::from_millis(100);
    Harness::open_with(dir, RouterConfig::default(), models, inference).await
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
    assert!(listed["data"].as_array().unwrap().iter().any(|m| m["id"] == "tiny-F32"), "a call loads it: {listed}");
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
    kill_hard(first_pid);

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

/// SIGKILL to a llama-server this test started, as a crash or the OOM killer would end it.
fn kill_hard(pid: u64) {
    let killed = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    assert!(killed.success(), "kill -KILL {pid}: {killed}");
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

/// The tiny embedding or rerank model `./scripts/test` writes beside the chat model.
fn sibling(model: &std::path::Path, kind: &str) -> std::path::PathBuf {
    let path = model.with_file_name(format!("tiny-{kind}.gguf"));
    assert!(path.is_file(), "{} is missing: ./scripts/test writes it beside the chat model", path.display());
    path
}

async fn import_as(h: &Harness, model: &std::path::Path, name: &str) -> i64 {
    let copy = h.data_dir().join(name);
    std::fs::copy(model, &copy).unwrap();
    h.post("/console/api/models/local/import", json!({"path": copy})).await["id"].as_i64().unwrap()
}

/// How many times the instance's llama-server started, from its log file (which keeps every run).
fn starts(h: &Harness, id: i64) -> usize {
    let log = std::fs::read_to_string(h.data_dir().join("logs").join(format!("instance-{id}.log"))).unwrap_or_default();
    log.lines().filter(|line| line.contains("listening on")).count()
}

async fn token(h: &Harness) -> String {
    h.post("/console/api/tokens", json!({"name": "local"})).await["key"].as_str().unwrap().to_string()
}

async fn model_ids(h: &Harness, key: &str) -> Vec<String> {
    let listed: Value =
        h.http.get(format!("{}/v1/models", h.base)).bearer_auth(key).send().await.unwrap().json().await.unwrap();
    listed["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_call_loads_a_stopped_model_once_for_twenty_callers_and_idle_unloads_it() {
    let Some((_server, model)) = prerequisites() else { return };
    let h = start().await;
    let model_id = import(&h, &model).await;
    let created = h
        .post(
            "/console/api/instances",
            json!({"model_id": model_id, "ctx_size": 512, "parallel": 2, "idle_ttl_s": 2, "start": false}),
        )
        .await;
    assert_eq!(created["state"], "stopped", "{created}");
    assert_eq!(created["kind"], "chat");
    assert_eq!(created["idle_ttl_s"], 2);
    assert_eq!(created["pinned"], false);
    assert!(created["last_used_at"].is_null());
    assert!(created["estimated_bytes"].as_u64().unwrap() > 0, "{created}");
    let id = created["id"].as_i64().unwrap();
    let key = token(&h).await;
    assert!(model_ids(&h, &key).await.contains(&"tiny-F32".to_string()), "listed while not loaded");

    let calls = (0..20).map(|n| {
        let (http, base, key) = (h.http.clone(), h.base.clone(), key.clone());
        async move {
            let body = json!({"model": "tiny-F32", "max_tokens": 2, "stream": n % 2 == 0,
                "messages": [{"role": "user", "content": "hello"}]});
            let response =
                http.post(format!("{base}/v1/chat/completions")).bearer_auth(&key).json(&body).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    });
    for (status, body) in futures_util::future::join_all(calls).await {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("\"finish_reason\":\"length\""), "a whole answer or a normal stream: {body}");
    }
    assert_eq!(starts(&h, id), 1, "twenty first calls start the model once");
    let loaded = h.get(&format!("/console/api/instances/{id}")).await;
    assert_eq!(loaded["state"], "ready", "{loaded}");
    assert_eq!(loaded["in_flight"], 0);
    let pid = loaded["pid"].as_u64().unwrap();
    assert!(loaded["last_used_at"].as_i64().unwrap() > 0);

    let unloaded = wait_for(&h, id, &["stopped"]).await;
    assert!(unloaded["channel_id"].is_null(), "{unloaded}");
    assert!(!process_exists(pid), "idle past its TTL: the process is gone");
    assert!(model_ids(&h, &key).await.contains(&"tiny-F32".to_string()), "still listed once unloaded");

    // Pinned, it stays loaded however long it idles; a call loads it again first.
    let pinned = h.patch(&format!("/console/api/instances/{id}"), json!({"pinned": true})).await;
    assert_eq!(pinned["pinned"], true);
    let answer =
        chat(&h, &key, json!({"model": "tiny-F32", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}))
            .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(starts(&h, id), 2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h.get(&format!("/console/api/instances/{id}")).await["state"], "ready", "pinned: never unloaded");
    let (status, error) = h
        .console(
            reqwest::Method::PATCH,
            &format!("/console/api/instances/{id}"),
            Some(json!({"idle_ttl_s": 10_000_000})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    h.post(&format!("/console/api/instances/{id}/stop"), json!({})).await;

    h.state.gateway.log_sink().flush().await;
    let logs = h.get("/console/api/logs?limit=50").await["items"].as_array().unwrap().clone();
    assert_eq!(logs.len(), 21, "every call is logged once");
    assert!(logs.iter().all(|row| row["status"] == 200 && row["channel_name"] == "local: tiny-F32"), "{logs:?}");
}

#[tokio::test]
async fn a_budget_for_one_model_unloads_the_idle_one_and_never_the_busy_one() {
    let Some((_server, model)) = prerequisites() else { return };
    let h = start().await;
    let first = import_as(&h, &model, "first-F32.gguf").await;
    let second = import_as(&h, &model, "second-F32.gguf").await;
    let deploy =
        |model_id: i64| json!({"model_id": model_id, "ctx_size": 4096, "parallel": 1, "idle_ttl_s": 0, "start": false});
    let a = h.post("/console/api/instances", deploy(first)).await;
    let b = h.post("/console/api/instances", deploy(second)).await;
    let (a, b) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap());
    let each = h.get(&format!("/console/api/instances/{a}")).await["estimated_bytes"].as_u64().unwrap();
    let budget_mib = (each * 3 / 2) >> 20;
    assert!(
        budget_mib << 20 >= each && budget_mib << 20 < 2 * each,
        "one fits, two do not: {each} B, {budget_mib} MiB"
    );
    h.state.store.set_setting(burncloud_service_api::LOCAL_MEMORY_BUDGET_SETTING, &budget_mib.to_string()).unwrap();
    let key = token(&h).await;
    let ask = |model: &str, max_tokens: u32| {
        let (http, base, key) = (h.http.clone(), h.base.clone(), key.clone());
        let body = json!({"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]});
        async move {
            let response =
                http.post(format!("{base}/v1/chat/completions")).bearer_auth(&key).json(&body).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };

    let (status, _) = ask("first-F32", 1).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ask("second-F32", 1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.get(&format!("/console/api/instances/{a}")).await["state"], "stopped", "the idle one made room");
    assert_eq!(h.get(&format!("/console/api/instances/{b}")).await["state"], "ready");

    // The second is busy with a long answer: a call to the first waits for it, and never cuts it.
    let long = tokio::spawn(ask("second-F32", 3000));
    for _ in 0..200 {
        if h.get(&format!("/console/api/instances/{b}")).await["in_flight"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waiting = tokio::spawn(ask("first-F32", 1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = h.get(&format!("/console/api/instances/{b}")).await;
    assert!(!long.is_finished(), "3000 tokens take seconds: the check runs while the call is served");
    assert_eq!(busy["state"], "ready", "never unloaded under a call: {busy}");
    assert_eq!(h.get(&format!("/console/api/instances/{a}")).await["state"], "stopped", "it waits for room");
    let (status, answer) = long.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["usage"]["completion_tokens"], 3000, "the busy call ran to its end");
    let (status, answer) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(h.get(&format!("/console/api/instances/{a}")).await["state"], "ready");
    assert_eq!(h.get(&format!("/console/api/instances/{b}")).await["state"], "stopped", "unloaded once idle");

    // Pinned models are never unloaded: a start that does not fit beside them goes ahead anyway.
    h.patch(&format!("/console/api/instances/{a}"), json!({"pinned": true})).await;
    let (status, _) = ask("second-F32", 1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.get(&format!("/console/api/instances/{a}")).await["state"], "ready");
    assert_eq!(h.get(&format!("/console/api/instances/{b}")).await["state"], "ready");
    for id in [a, b] {
        h.post(&format!("/console/api/instances/{id}/stop"), json!({})).await;
    }
}

#[tokio::test]
async fn local_embeddings_and_rerank_are_served_logged_and_listed() {
    let Some((_server, model)) = prerequisites() else { return };
    let h = start().await;
    let embedder = import_as(&h, &sibling(&model, "embedding"), "tiny-embedding.gguf").await;
    let reranker = import_as(&h, &sibling(&model, "rerank"), "tiny-rerank.gguf").await;
    let models = h.get("/console/api/models/local").await;
    let mut kinds: Vec<&str> = models.as_array().unwrap().iter().map(|m| m["kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["embedding", "rerank"], "proposed from the GGUF metadata: {models}");
    for model_id in [embedder, reranker] {
        let created =
            h.post("/console/api/instances", json!({"model_id": model_id, "ctx_size": 512, "start": false})).await;
        assert_ne!(created["kind"], "chat", "{created}");
    }
    let key = token(&h).await;
    assert_eq!(model_ids(&h, &key).await, ["tiny-embedding", "tiny-rerank"]);

    let embedded: Value = h
        .http
        .post(format!("{}/v1/embeddings", h.base))
        .bearer_auth(&key)
        .json(&json!({"model": "tiny-embedding", "input": ["hello world", "the local model"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vectors = embedded["data"].as_array().unwrap();
    assert_eq!(vectors.len(), 2, "{embedded}");
    assert_eq!(vectors[0]["embedding"].as_array().unwrap().len(), 64, "the model's width");
    assert!(embedded["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let documents = ["hello world", "the model is local", "no", "say yes"];
    let ranked = h
        .http
        .post(format!("{}/v1/rerank", h.base))
        .bearer_auth(&key)
        .json(&json!({"model": "tiny-rerank", "query": "hello", "documents": documents, "top_n": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(ranked.status(), StatusCode::OK);
    let ranked: Value = ranked.json().await.unwrap();
    let results = ranked["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "top_n: {ranked}");
    let scores: Vec<f64> = results.iter().map(|r| r["relevance_score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|pair| pair[0] >= pair[1]), "most relevant first: {scores:?}");
    let indices: std::collections::HashSet<u64> = results.iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert!(indices.len() == 3 && indices.iter().all(|i| *i < 4), "{ranked}");

    let (status, error) = h
        .console(
            reqwest::Method::POST,
            "/console/api/instances",
            Some(json!({"model_id": reranker, "alias": "x",
            "kind": "rerank", "mmproj_path": "/nowhere/mmproj.gguf"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a projector goes with chat only: {error}");
    let wrong = h
        .http
        .post(format!("{}/v1/rerank", h.base))
        .bearer_auth(&key)
        .json(&json!({"model": "nothing-here", "query": "q", "documents": ["d"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
    let error: Value = wrong.json().await.unwrap();
    assert_eq!(error["error"]["code"], "model_not_found");

    h.state.gateway.log_sink().flush().await;
    let logs = h.get("/console/api/logs?limit=10").await["items"].as_array().unwrap().clone();
    let served: Vec<&Value> = logs.iter().filter(|row| row["status"] == 200).collect();
    assert_eq!(served.len(), 2, "{logs:?}");
    assert!(
        served.iter().any(|row| row["endpoint"] == "/v1/rerank" && row["prompt_tokens"].as_u64() > Some(0)),
        "{logs:?}"
    );
    for instance in h.get("/console/api/instances").await.as_array().unwrap() {
        h.post(&format!("/console/api/instances/{}/stop", instance["id"]), json!({})).await;
    }
}

#[tokio::test]
async fn a_slow_load_answers_503_with_retry_after_and_a_model_that_cannot_load_is_not_retried() {
    let Some((server, model)) = prerequisites() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The real llama-server, three seconds slow to start a model (as a big model on a slow disk is).
    let slow = dir.path().join("slow-llama-server");
    std::fs::write(
        &slow,
        format!("#!/bin/sh\ncase \"$*\" in *-m*) sleep 3;; esac\nexec '{}' \"$@\"\n", server.display()),
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let models = ModelHubConfig::from_env(dir.path());
    let mut inference = InferenceConfig::new(dir.path());
    inference.llama_server_env = Some(slow);
    let h = Harness::open_with(dir, RouterConfig::default(), models, inference).await;
    h.state.store.set_setting(burncloud_service_api::LOCAL_LOAD_TIMEOUT_SETTING, "1").unwrap();
    let model_id = import(&h, &model).await;
    let id = h.post("/console/api/instances", json!({"model_id": model_id, "ctx_size": 512, "start": false})).await
        ["id"]
        .as_i64()
        .unwrap();
    let key = token(&h).await;
    let body =
        json!({"model": "tiny-F32", "max_tokens": 3, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let early = chat(&h, &key, body.clone()).await;
    assert_eq!(early.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(early.headers()["retry-after"], "5");
    let error: Value = early.json().await.unwrap();
    assert_eq!(error["error"]["code"], "model_loading", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("still loading"), "{error}");
    wait_for(&h, id, &["ready"]).await;
    let stream = chat(&h, &key, body).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let text = stream.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(starts(&h, id), 1, "the waiting call left it loading; it was not started twice");
    h.post(&format!("/console/api/instances/{id}/stop"), json!({})).await;

    // A model llama-server cannot load: its own words, once, and no start per call.
    let broken = h.data_dir().join("broken-Q4_K_M.gguf");
    let mut bytes = b"GGUF\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    bytes.resize(4096, 0);
    std::fs::write(&broken, bytes).unwrap();
    h.state.store.set_setting(burncloud_service_api::LOCAL_LOAD_TIMEOUT_SETTING, "30").unwrap();
    let broken_id = h.post("/console/api/models/local/import", json!({"path": broken})).await["id"].as_i64().unwrap();
    let broken_instance =
        h.post("/console/api/instances", json!({"model_id": broken_id, "start": false})).await["id"].as_i64().unwrap();
    let call = json!({"model": "broken-Q4_K_M", "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..2 {
        let failed = chat(&h, &key, call.clone()).await;
        assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(failed.headers().get("retry-after").is_none(), "retrying will not help");
        let error: Value = failed.json().await.unwrap();
        assert_eq!(error["error"]["code"], "model_load_failed", "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("before it was ready") && message.to_lowercase().contains("model"), "{message}");
    }
    let log =
        std::fs::read_to_string(h.data_dir().join("logs").join(format!("instance-{broken_instance}.log"))).unwrap();
    assert_eq!(log.matches("load_model: loading model").count(), 1, "started once, not per call: {log}");
}

#[tokio::test]
async fn a_crash_mid_call_fails_that_call_clearly_and_the_next_call_restarts_the_model() {
    let Some((_server, model)) = prerequisites() else { return };
    let h = start().await;
    let model_id = import(&h, &model).await;
    let id = h
        .post("/console/api/instances", json!({"model_id": model_id, "ctx_size": 4096, "parallel": 1, "start": false}))
        .await["id"]
        .as_i64()
        .unwrap();
    let key = token(&h).await;
    let long = json!({"model": "tiny-F32", "max_tokens": 3000, "messages": [{"role": "user", "content": "hi"}]});

    for stream in [false, true] {
        let mut body = long.clone();
        body["stream"] = json!(stream);
        let call = tokio::spawn({
            let (http, base, key) = (h.http.clone(), h.base.clone(), key.clone());
            async move {
                let response = http
                    .post(format!("{base}/v1/chat/completions"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (response.status(), response.text().await.unwrap_or_default())
            }
        });
        let mut serving = Value::Null;
        for _ in 0..400 {
            serving = h.get(&format!("/console/api/instances/{id}")).await;
            if serving["in_flight"] == 1 && serving["state"] == "ready" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(serving["in_flight"], 1, "{serving}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pid = serving["pid"].as_u64().unwrap();
        kill_hard(pid);
        let (status, text) = call.await.unwrap();
        if stream {
            assert_eq!(status, StatusCode::OK, "the stream had started: {text}");
            assert!(text.contains("\"error\""), "the stream ends with an error event: {text}");
        } else {
            assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
            let error: Value = serde_json::from_str(&text).unwrap();
            assert!(error["error"]["message"].as_str().unwrap().contains("local: tiny-F32"), "{error}");
        }
        // Once the supervisor has seen the exit (within milliseconds) it restarts the model: the
        // next call waits for the restart and is served.
        for _ in 0..400 {
            if h.get(&format!("/console/api/instances/{id}")).await["pid"].as_u64() != Some(pid) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let next = chat(
            &h,
            &key,
            json!({"model": "tiny-F32", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(next.status(), StatusCode::OK, "the next call is served by the restarted model");
    }
    assert_eq!(h.get(&format!("/console/api/instances/{id}")).await["restarts"], 2);
    h.state.gateway.log_sink().flush().await;
    let logs = h.get("/console/api/logs?limit=10").await["items"].as_array().unwrap().clone();
    assert_eq!(logs.len(), 4, "every call logged once: {logs:?}");
    assert!(logs.iter().any(|row| row["end_reason"] == "upstream_cut"), "the broken stream: {logs:?}");
    assert!(logs.iter().any(|row| row["status"] == 502), "{logs:?}");
    h.post(&format!("/console/api/instances/{id}/stop"), json!({})).await;
}

#[tokio::test]
async fn a_port_taken_before_llama_server_binds_it_is_started_again_on_another() {
    let Some((server, model)) = prerequisites() else { return };
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    // The real llama-server, whose first model start finds its port taken by another program.
    let wrapper = dir.path().join("racing-llama-server");
    let marker = dir.path().join("raced");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$*\" in *-m*) if [ ! -e '{marker}' ]; then touch '{marker}'; exec '{server}' \"$@\" --port {busy_port}; fi;; esac\nexec '{server}' \"$@\"\n",
            marker = marker.display(),
            server = server.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let models = ModelHubConfig::from_env(dir.path());
    let mut inference = InferenceConfig::new(dir.path());
    inference.llama_server_env = Some(wrapper);
    let h = Harness::open_with(dir, RouterConfig::default(), models, inference).await;
    let model_id = import(&h, &model).await;
    let id =
        h.post("/console/api/instances", json!({"model_id": model_id, "ctx_size": 512})).await["id"].as_i64().unwrap();
    let ready = wait_for(&h, id, &["ready", "failed"]).await;
    assert_eq!(ready["state"], "ready", "{ready}");
    assert_ne!(ready["port"].as_u64(), Some(u64::from(busy_port)));
    assert_eq!(ready["restarts"], 0, "a taken port is not a crash");
    let log = std::fs::read_to_string(h.data_dir().join("logs").join(format!("instance-{id}.log"))).unwrap();
    assert_eq!(log.matches("couldn't bind HTTP server socket").count(), 1, "{log}");
    assert_eq!(starts(&h, id), 1);
    h.post(&format!("/console/api/instances/{id}/stop"), json!({})).await;
    drop(busy);
}

/// A 16×16 red PNG.
const RED_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAFklEQVR42mP4z8BAEmIY1TCqYfhqAACQ+f8B8u7oVwAAAABJRU5ErkJggg==";

#[tokio::test]
async fn a_vision_model_loads_with_its_projector_and_images_reach_it_from_both_protocols() {
    let Some((_server, model)) = prerequisites() else { return };
    let h = start().await;
    // A repo's model and its projector, side by side, as a download leaves them.
    let folder = h.data_dir().join("vision");
    std::fs::create_dir_all(&folder).unwrap();
    let weights = folder.join("tiny-vision-F32.gguf");
    std::fs::copy(&model, &weights).unwrap();
    std::fs::copy(sibling(&model, "mmproj"), folder.join("mmproj-tiny-F32.gguf")).unwrap();
    let local = h.post("/console/api/models/local/import", json!({"path": weights})).await;
    let projector = local["mmproj_path"].as_str().expect("the projector beside the model").to_string();
    assert!(projector.ends_with("mmproj-tiny-F32.gguf"), "{local}");
    let instance =
        h.post("/console/api/instances", json!({"model_id": local["id"], "ctx_size": 1024, "start": false})).await;
    assert_eq!(instance["mmproj_path"], projector.as_str());
    assert!(instance["estimated_bytes"].as_u64().unwrap() > local["size"].as_u64().unwrap(), "the projector counts");
    let key = token(&h).await;

    let ask = |content: Value| json!({"model": "tiny-vision-F32", "max_tokens": 2, "messages": [{"role": "user", "content": content}]});
    let text_only: Value = chat(&h, &key, ask(json!("what is this?"))).await.json().await.unwrap();
    let image = json!([{"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{RED_PNG}")}}]);
    let with_image = chat(&h, &key, ask(image)).await;
    assert_eq!(with_image.status(), StatusCode::OK);
    let with_image: Value = with_image.json().await.unwrap();
    let (text_tokens, image_tokens) =
        (text_only["usage"]["prompt_tokens"].as_u64().unwrap(), with_image["usage"]["prompt_tokens"].as_u64().unwrap());
    assert!(
        image_tokens >= text_tokens + 16,
        "the image became 16 tokens of the projector: {text_tokens} → {image_tokens}"
    );

    let claude = h
        .http
        .post(format!("{}/v1/messages", h.base))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "tiny-vision-F32", "max_tokens": 2, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": RED_PNG}},
            {"type": "text", "text": "what is this?"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(claude.status(), StatusCode::OK);
    let claude: Value = claude.json().await.unwrap();
    assert!(claude["usage"]["input_tokens"].as_u64().unwrap() >= 16, "{claude}");
    let id = instance["id"].as_i64().unwrap();
    let logs = h.get(&format!("/console/api/instances/{id}/logs?tail=500")).await;
    assert!(logs.to_string().contains("loaded multimodal model"), "{logs}");
    h.post(&format!("/console/api/instances/{id}/stop"), json!({})).await;
}
