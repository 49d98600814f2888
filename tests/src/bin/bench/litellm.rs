//! The peer in the same run: LiteLLM's proxy (from PyPI, into its own venv by `scripts/bench`),
//! one worker, in front of the same mock upstream — added latency at concurrency 1 and
//! throughput at 32 and 256, beside BurnCloud's.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::{chat_request, latencies, micros, percentile, send, tempfile_dir, HttpClient};

/// LiteLLM's figures, and BurnCloud's from the same run for the ratios.
pub struct Comparison {
    pub version: String,
    pub added_p50_us: f64,
    pub added_p99_us: f64,
    pub rps_32: f64,
    pub errors_32: u64,
    pub rps_256: f64,
    pub errors_256: u64,
}

/// LiteLLM refuses to start without a master key; callers present it, as BurnCloud's present tokens.
const MASTER_KEY: &str = "sk-litellm-bench-7f3a9c2e5b8d4f1a6c0e9b2d";

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Requests per second and failed calls with `concurrency` callers for `seconds`; unlike
/// BurnCloud's run, failures are counted rather than fatal, since they are the peer's.
async fn throughput(client: &HttpClient, url: &str, concurrency: usize, seconds: u64) -> (f64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url) = (client.clone(), url.to_string());
        let (done, errors, stop) = (done.clone(), errors.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let call = tokio::time::timeout(
                    Duration::from_secs(30),
                    send(&client, &url, Some(MASTER_KEY), chat_request()),
                );
                match call.await {
                    Ok(Ok(_)) => done.fetch_add(1, Ordering::Relaxed),
                    _ => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (start_count, started) = (done.load(Ordering::Relaxed), Instant::now());
    let start_errors = errors.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (end_count, elapsed) = (done.load(Ordering::Relaxed), started.elapsed());
    let end_errors = errors.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    ((end_count - start_count) as f64 / elapsed.as_secs_f64(), end_errors - start_errors)
}

/// Runs the comparison, or says why it could not.
pub async fn compare(
    client: &HttpClient,
    litellm: &Path,
    upstream_base: &str,
    calls: usize,
    seconds: u64,
) -> anyhow::Result<Comparison> {
    if !litellm.exists() {
        bail!("{} is not installed (scripts/bench installs it)", litellm.display());
    }
    let version = Command::new(litellm.with_file_name("python"))
        .args(["-c", "import importlib.metadata as m; print(m.version('litellm'))"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    let dir = tempfile_dir()?.join("litellm");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n      model: openai/gpt-4o-mini\n      \
             api_base: {upstream_base}/v1\n      api_key: sk-bench\n\
             general_settings:\n  master_key: {MASTER_KEY}\n"
        ),
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let _proxy = Proxy(
        Command::new(litellm)
            .args(["--config"])
            .arg(&config)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--num_workers", "1"])
            .env("LITELLM_LOG", "ERROR")
            .env("LITELLM_TELEMETRY", "False")
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the LiteLLM proxy")?,
    );
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let started = Instant::now();
    loop {
        if send(client, &url, Some(MASTER_KEY), chat_request()).await.is_ok() {
            break;
        }
        if started.elapsed() > Duration::from_secs(180) {
            bail!("the LiteLLM proxy did not answer within 180 s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Interleaved with direct calls only, as BurnCloud's own figures are: a fast target between
    // 11 ms calls would only measure how cold a core gets while it waits.
    let direct_url = format!("{upstream_base}/v1/chat/completions");
    let targets = [(direct_url, None), (url.clone(), Some(MASTER_KEY.to_string()))];
    let lists = latencies(client, &targets, calls).await?;
    let added = |list: &[Duration], p: f64| micros(percentile(list, p)) - micros(percentile(&lists[0], p));
    let (rps_32, errors_32) = throughput(client, &url, 32, seconds).await;
    let (rps_256, errors_256) = throughput(client, &url, 256, seconds).await;
    let _ = std::fs::remove_dir_all(dir.parent().unwrap_or(Path::new("/nonexistent")));
    Ok(Comparison {
        version,
        added_p50_us: added(&lists[1], 0.5),
        added_p99_us: added(&lists[1], 0.99),
        rps_32,
        errors_32,
        rps_256,
        errors_256,
    })
}
