//! The harness integration tests share: a real BurnCloud server on 127.0.0.1:0 over a real SQLite
//! file in a temp dir, and a console client that speaks its JSON API with the admin key.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use burncloud_server::{serve, AppState, InferenceConfig, RouterConfig};
use burncloud_service_models::ModelHubConfig;
use reqwest::StatusCode;
use serde_json::Value;

pub struct Harness {
    pub dir: Option<tempfile::TempDir>,
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

pub const ADMIN: &str = "test-admin-key";

impl Harness {
    pub async fn start() -> Harness {
        Self::with_limits(RouterConfig {
            first_byte_timeout: Duration::from_millis(800),
            idle_read_timeout: Duration::from_secs(2),
            cancel_drain_timeout: Duration::from_secs(5),
            max_body_bytes: 64 * 1024,
            ..RouterConfig::default()
        })
        .await
    }

    pub async fn with_limits(limits: RouterConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let models = ModelHubConfig::from_env(dir.path());
        Self::open(dir, limits, models).await
    }

    /// Serves the data dir `dir` (a restart reuses it) with the given model hub settings.
    pub async fn open(dir: tempfile::TempDir, limits: RouterConfig, models: ModelHubConfig) -> Harness {
        let inference = InferenceConfig::new(dir.path());
        Self::open_with(dir, limits, models, inference).await
    }

    pub async fn open_with(
        dir: tempfile::TempDir,
        limits: RouterConfig,
        models: ModelHubConfig,
        inference: InferenceConfig,
    ) -> Harness {
        std::env::set_var(burncloud_server::ADMIN_KEY_ENV, ADMIN);
        let state = AppState::open_with_services(dir.path(), limits, models, inference).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            serve(listener, serving, axum::Router::new(), shutdown, Duration::from_secs(5)).await.unwrap();
        });
        Harness { dir: Some(dir), base, state, http: reqwest::Client::new(), stop: Some(stop) }
    }

    pub async fn console(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}")))
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.console(reqwest::Method::POST, path, Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.console(reqwest::Method::PUT, path, Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    pub async fn patch(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.console(reqwest::Method::PATCH, path, Some(body)).await;
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, value) = self.console(reqwest::Method::GET, path, None).await;
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    pub async fn delete(&self, path: &str) -> Value {
        let (status, value) = self.console(reqwest::Method::DELETE, path, None).await;
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.as_ref().expect("the data dir").path()
    }

    /// Stops serving and hands back the data dir, as a process exit would leave it.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.state.models.shutdown().await;
        self.dir.take().expect("the data dir")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The real llama-server and tiny model, or a printed reason why these tests cannot run here.
pub fn prerequisites() -> Option<(PathBuf, PathBuf)> {
    let server = std::env::var_os("BURNCLOUD_LLAMA_SERVER").map(PathBuf::from).filter(|p| p.is_file());
    let model = std::env::var_os("BURNCLOUD_TEST_GGUF").map(PathBuf::from).filter(|p| p.is_file());
    match (server, model) {
        (Some(server), Some(model)) => Some((server, model)),
        _ if std::env::var_os("BURNCLOUD_REQUIRE_LLAMA").is_some() => {
            panic!("BURNCLOUD_REQUIRE_LLAMA is set, but BURNCLOUD_LLAMA_SERVER and BURNCLOUD_TEST_GGUF are not")
        }
        _ => {
            eprintln!(
                "SKIPPED: set BURNCLOUD_LLAMA_SERVER and BURNCLOUD_TEST_GGUF (./scripts/test installs llama-server \
                 and writes the tiny model) to run the local inference tests"
            );
            None
        }
    }
}

/// Polls an instance until it is in one of `states`.
pub async fn wait_for(h: &Harness, id: i64, states: &[&str]) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        last = h.get(&format!("/console/api/instances/{id}")).await;
        if states.contains(&last["state"].as_str().unwrap_or("")) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("instance {id} never reached {states:?}: {last}");
}
