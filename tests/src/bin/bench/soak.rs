//! `scripts/bench --soak`: a bounded soak — concurrency 256 for a minute, streaming and whole
//! answers mixed, a tenth of upstream calls failing — that checks BurnCloud adds no errors of its
//! own, logs every call exactly once and keeps its memory flat.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::{machine, rss_mb, set_up_gateway, start_serve, tempfile_dir, HttpClient, Options, Server};

const CONCURRENCY: usize = 256;
const FAILING_PERCENT: u32 = 10;
const CHANNELS: usize = 3;
/// Memory is compared from the end of this warm-up to the end of the run.
const WARM_UP: Duration = Duration::from_secs(10);

/// How each call ended, as the caller saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ending {
    Answered,
    Streamed,
    /// Every channel tried failed upstream, and the caller got the upstream's own error.
    UpstreamFailedEverywhere,
    /// Every channel serving the model was resting after failures (503 from the breakers).
    AllChannelsResting,
    /// Anything else: an error BurnCloud itself caused.
    CallError,
}

async fn one_call(client: &HttpClient, url: &str, key: &str, stream: bool) -> (Ending, String) {
    let body =
        json!({"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "Say hello"}]});
    let request = hyper::Request::post(url)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::from(body.to_string())));
    let response = match request {
        Ok(request) => client.request(request).await,
        Err(error) => return (Ending::CallError, error.to_string()),
    };
    let response = match response {
        Ok(response) => response,
        Err(error) => return (Ending::CallError, format!("connection: {error}")),
    };
    let status = response.status().as_u16();
    let bytes = match response.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return (Ending::CallError, format!("body: {error}")),
    };
    let text = String::from_utf8_lossy(&bytes);
    match status {
        200 if !stream && text.contains("\"chat.completion\"") => (Ending::Answered, String::new()),
        200 if stream && text.ends_with("data: [DONE]\n\n") && !text.contains("\"error\"") => {
            (Ending::Streamed, String::new())
        }
        500 if text.contains("The server had an error while processing your request") => {
            (Ending::UpstreamFailedEverywhere, String::new())
        }
        503 if text.contains("resting") => (Ending::AllChannelsResting, String::new()),
        _ => (Ending::CallError, format!("{status}: {}", text.chars().take(300).collect::<String>())),
    }
}

pub async fn soak(options: &Options, server_bin: &Path) -> anyhow::Result<()> {
    let seconds = options.soak_seconds;
    let upstream = Server::start(Command::new(options.bin_dir.join("mock-upstream")).env("MOCK_THREADS", "1"))?;
    let data_dir = tempfile_dir()?.join("soak");
    let gateway = start_serve(server_bin, &data_dir)?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(CONCURRENCY).build_http();
    let key = set_up_gateway(&client, &gateway, &upstream, CHANNELS, "soak").await?;
    let mode = hyper::Request::post(format!("{}/_mock/mode", upstream.base))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(json!({"mode": "flaky", "percent": FAILING_PERCENT}).to_string())))?;
    client.request(mode).await?.into_body().collect().await?;

    eprintln!("soak: {seconds} s at concurrency {CONCURRENCY}, {FAILING_PERCENT}% of upstream calls failing");
    let url = format!("{}/v1/chat/completions", gateway.base);
    let endings: Arc<Mutex<BTreeMap<Ending, u64>>> = Arc::default();
    let examples: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for worker in 0..CONCURRENCY {
        let (client, url, key) = (client.clone(), url.clone(), key.clone());
        let (endings, examples, stop, calls) = (endings.clone(), examples.clone(), stop.clone(), calls.clone());
        workers.push(tokio::spawn(async move {
            let mut n = worker;
            let mut mine: BTreeMap<Ending, u64> = BTreeMap::new();
            while !stop.load(Ordering::Relaxed) {
                let (ending, detail) = one_call(&client, &url, &key, n % 2 == 0).await;
                *mine.entry(ending).or_default() += 1;
                calls.fetch_add(1, Ordering::Relaxed);
                if ending == Ending::CallError {
                    let mut examples = examples.lock().unwrap();
                    if examples.len() < 5 {
                        examples.push(detail);
                    }
                }
                n += 1;
            }
            let mut endings = endings.lock().unwrap();
            for (ending, count) in mine {
                *endings.entry(ending).or_default() += count;
            }
        }));
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push((started.elapsed().as_secs_f64(), rss_mb(gateway.child.id())?, calls.load(Ordering::Relaxed)));
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let warm_rss = samples
        .iter()
        .find(|(at, _, _)| *at >= WARM_UP.as_secs_f64())
        .map(|sample| sample.1)
        .context("the soak is shorter than its warm-up")?;
    let end_rss = samples.last().map(|sample| sample.1).unwrap_or(warm_rss);
    let peak_rss = samples.iter().map(|sample| sample.1).fold(0.0, f64::max);

    // A graceful stop flushes the log writer; then every answered call must be in the log once.
    let pid = gateway.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status()?;
    let mut gateway = gateway;
    let exit = gateway.child.wait()?;
    let database = burncloud_database::Db::open(data_dir.join("burncloud.db"))?;
    let (logged, distinct) = database.read(burncloud_database::repo::logs::row_counts)?;
    drop(database);
    let _ = std::fs::remove_dir_all(data_dir.parent().unwrap_or(Path::new("/nonexistent")));

    let endings = endings.lock().unwrap().clone();
    let total: u64 = endings.values().sum();
    let count = |ending: Ending| endings.get(&ending).copied().unwrap_or(0);
    let gateway_errors = count(Ending::CallError);
    let growth = 100.0 * (end_rss - warm_rss) / warm_rss;
    let checks = [
        (gateway_errors == 0, format!("errors BurnCloud caused: {gateway_errors}")),
        (
            logged == total && distinct == total,
            format!("calls {total}, log rows {logged} ({distinct} distinct request ids)"),
        ),
        (growth <= 10.0, format!("RSS after warm-up {warm_rss:.1} MB, at the end {end_rss:.1} MB ({growth:+.1}%)")),
        (exit.success(), format!("graceful stop: {exit}")),
    ];
    let date = String::from_utf8(Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC").output()?.stdout)?;
    let verdict = |ok: bool| if ok { "pass" } else { "FAIL" };
    let report = format!(
        "# Soak\n\n\
         Measured by `./scripts/bench --soak` (server build, release) on {date}, {machine}: {seconds} s at \
         concurrency {CONCURRENCY} through BurnCloud, calls alternating streaming and whole answers, \
         {CHANNELS} channels on one local mock upstream that fails {FAILING_PERCENT}% of its calls at random \
         with a 500, so BurnCloud fails over and its breakers see real failures.\n\n\
         | how calls ended | calls |\n|---|---|\n\
         | answered whole | {answered} |\n| streamed to `[DONE]` | {streamed} |\n\
         | every channel tried failed upstream (the upstream's 500 passed on) | {everywhere} |\n\
         | every channel resting after failures (503 from the breakers) | {resting} |\n\
         | errors caused by BurnCloud | {gateway_errors} |\n\
         | total ({rate:.0} calls/s) | {total} |\n\n\
         | check | result |\n|---|---|\n{rows}\n\n\
         Peak RSS during the run: {peak_rss:.1} MB.{examples}\n",
        date = date.trim(),
        machine = machine(),
        answered = count(Ending::Answered),
        streamed = count(Ending::Streamed),
        everywhere = count(Ending::UpstreamFailedEverywhere),
        resting = count(Ending::AllChannelsResting),
        rate = total as f64 / elapsed,
        rows = checks.iter().map(|(ok, what)| format!("| {what} | {} |", verdict(*ok))).collect::<Vec<_>>().join("\n"),
        examples = {
            let examples = examples.lock().unwrap();
            if examples.is_empty() {
                String::new()
            } else {
                format!(
                    "\n\nFirst errors BurnCloud caused:\n\n{}",
                    examples.iter().map(|e| format!("- `{e}`")).collect::<Vec<_>>().join("\n")
                )
            }
        },
    );
    if let Some(parent) = options.soak_out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&options.soak_out, &report)?;
    println!("{report}");
    if checks.iter().any(|(ok, _)| !ok) {
        bail!("the soak failed a check (see {})", options.soak_out.display());
    }
    drop(upstream);
    Ok(())
}
