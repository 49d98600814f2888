//! Local models through BurnCloud against llama-server run by hand: a cold start to the first
//! token (BurnCloud starts the stopped model for the call; by hand, start the server, wait for
//! `/health`, then call), and the latency a call to a running model gains through the gateway.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;

use crate::{console, micros, percentile, start_serve, tempfile_dir, HttpClient};

/// Sends a one-token chat call (streamed or not) and answers its response.
async fn one_token(
    client: &HttpClient,
    url: &str,
    key: &str,
    model: &str,
    stream: bool,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
    let body = json!({"model": model, "max_tokens": 1, "stream": stream,
        "messages": [{"role": "user", "content": "hello"}]});
    let request = hyper::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::from(body.to_string())))?;
    Ok(client.request(request).await?)
}

/// Sends a streamed chat call for one token and returns when its first content chunk arrives.
async fn first_token(client: &HttpClient, url: &str, key: &str, model: &str) -> anyhow::Result<()> {
    let response = one_token(client, url, key, model, true).await?;
    if !response.status().is_success() {
        bail!("{url}: {}", response.status());
    }
    let mut body = response.into_body();
    let mut seen = String::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
            if seen.contains("\"content\"") {
                return Ok(());
            }
        }
    }
    bail!("{url}: the stream ended without content: {seen}")
}

/// A whole one-token call.
async fn call(client: &HttpClient, url: &str, key: &str, model: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let response = one_token(client, url, key, model, false).await?;
    let status = response.status();
    response.into_body().collect().await?;
    if !status.is_success() {
        bail!("{url}: {status}");
    }
    Ok(started.elapsed())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// llama-server started by hand with the flags BurnCloud passes; killed when dropped.
struct ByHand {
    child: std::process::Child,
    base: String,
}

impl ByHand {
    fn start(llama_server: &Path, model: &Path) -> anyhow::Result<ByHand> {
        let port = free_port()?;
        let child = Command::new(llama_server)
            .arg("-m")
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-c", "512", "-np", "1"])
            .args(["--alias", "tiny", "--api-key", "bench-local", "--metrics"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting llama-server")?;
        Ok(ByHand { child, base: format!("http://127.0.0.1:{port}") })
    }

    /// Polls `/health` as often as it answers, until it is 200.
    async fn ready(&self, client: &HttpClient) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let request = hyper::Request::get(format!("{}/health", self.base)).body(Full::new(Bytes::new()))?;
            if let Ok(response) = client.request(request).await {
                if response.status() == hyper::StatusCode::OK {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        bail!("llama-server was not ready within 60 s")
    }
}

impl Drop for ByHand {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The report's table: cold start to first token and a warm call's latency, by hand and through
/// BurnCloud, medians of `runs` (warm: p50 and p99 of `runs * 20`).
pub async fn local_figures(
    client: &HttpClient,
    server_bin: &Path,
    llama_server: &Path,
    model: &Path,
    runs: usize,
) -> anyhow::Result<String> {
    let mut by_hand = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let server = ByHand::start(llama_server, model)?;
        server.ready(client).await?;
        first_token(client, &format!("{}/v1/chat/completions", server.base), "bench-local", "tiny").await?;
        by_hand.push(started.elapsed());
    }
    let server = ByHand::start(llama_server, model)?;
    server.ready(client).await?;
    let direct_url = format!("{}/v1/chat/completions", server.base);

    let data_dir = tempfile_dir()?.join("local");
    std::fs::create_dir_all(&data_dir)?;
    let copy = data_dir.join("tiny.gguf");
    std::fs::copy(model, &copy)?;
    let gateway = start_serve(server_bin, &data_dir.join("data"))?;
    let imported =
        console(client, "POST", &gateway.base, "/console/api/models/local/import", json!({"path": copy})).await?;
    let instance = console(
        client,
        "POST",
        &gateway.base,
        "/console/api/instances",
        json!({"model_id": imported["id"], "alias": "tiny", "ctx_size": 512, "parallel": 1, "start": false}),
    )
    .await?;
    let id = instance["id"].as_i64().context("no instance id")?;
    let token = console(client, "POST", &gateway.base, "/console/api/tokens", json!({"name": "bench-local"})).await?;
    let key = token["key"].as_str().context("no token key")?.to_string();
    let gateway_url = format!("{}/v1/chat/completions", gateway.base);
    let mut through = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        first_token(client, &gateway_url, &key, "tiny").await?;
        through.push(started.elapsed());
        console(client, "POST", &gateway.base, &format!("/console/api/instances/{id}/stop"), json!({})).await?;
    }
    // Warm: the deployment stays loaded; both servers get the same calls in turn.
    first_token(client, &gateway_url, &key, "tiny").await?;
    let (mut direct, mut gateway_warm) = (Vec::new(), Vec::new());
    for _ in 0..runs * 20 {
        direct.push(call(client, &direct_url, "bench-local", "tiny").await?);
        gateway_warm.push(call(client, &gateway_url, &key, "tiny").await?);
    }
    for list in [&mut by_hand, &mut through, &mut direct, &mut gateway_warm] {
        list.sort_unstable();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let cold_added = ms(percentile(&through, 0.5)) - ms(percentile(&by_hand, 0.5));
    Ok(format!(
        "| cold start to first token (tiny model, median of {runs}) | {:.1} ms | {:.1} ms | {cold_added:+.1} ms |\n\
         | call to a running model, p50 ({} calls) | {:.0} µs | {:.0} µs | {:+.0} µs |\n\
         | call to a running model, p99 | {:.0} µs | {:.0} µs | {:+.0} µs |\n",
        ms(percentile(&by_hand, 0.5)),
        ms(percentile(&through, 0.5)),
        runs * 20,
        micros(percentile(&direct, 0.5)),
        micros(percentile(&gateway_warm, 0.5)),
        micros(percentile(&gateway_warm, 0.5)) - micros(percentile(&direct, 0.5)),
        micros(percentile(&direct, 0.99)),
        micros(percentile(&gateway_warm, 0.99)),
        micros(percentile(&gateway_warm, 0.99)) - micros(percentile(&direct, 0.99)),
    ))
}
