//! `scripts/bench`: measures what BurnCloud adds in front of a local OpenAI-format upstream —
//! latency at concurrency 1, throughput at concurrency 32 — and the log writer's rows per second,
//! then writes `docs/performance.md`; with `--soak`, the soak in `soak.rs` instead.

mod instructions;
mod litellm;
mod local;
mod profile;
mod soak;
mod team;
mod upload;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

struct Options {
    bin_dir: PathBuf,
    /// The server build of `burncloud` (no window, no webview linked), which measures `serve`.
    server_bin: Option<PathBuf>,
    out: PathBuf,
    latency_requests: usize,
    throughput_seconds: u64,
    log_rows: usize,
    download_mib: usize,
    /// Measure only the model download (prints its figures, leaves the report alone).
    download_only: bool,
    startup_rows: usize,
    /// Run the soak (and nothing else) for this many seconds.
    soak: bool,
    soak_seconds: u64,
    soak_out: PathBuf,
    /// The LiteLLM proxy to compare against (`scripts/bench` installs it into its own venv).
    litellm: Option<PathBuf>,
    /// Profile the hot path with perf (and nothing else).
    profile: bool,
    profile_out: PathBuf,
    /// Measure only the streaming overheads (prints their table, leaves the report alone).
    streams_only: bool,
    /// Measure only the log writer and the dashboard over `startup_rows` (prints, leaves the report).
    logs_only: bool,
    /// Measure only the added latency at concurrency 1 (prints its table, leaves the report alone).
    latency_only: bool,
    /// Count only the instructions per call under callgrind (prints them, leaves the report alone).
    instructions_only: bool,
    /// Measure only local models against llama-server by hand (prints, leaves the report alone).
    local_only: bool,
    /// Measure only a large upload's memory (prints its row, leaves the report alone).
    upload_only: bool,
    /// Measure only the team store on PostgreSQL (prints its section, leaves the report alone).
    team_only: bool,
    upload_mib: usize,
}

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        bin_dir: std::env::current_exe()?.parent().context("bench binary has no dir")?.to_path_buf(),
        server_bin: None,
        out: PathBuf::from("docs/performance.md"),
        latency_requests: 5_000,
        throughput_seconds: 10,
        log_rows: 200_000,
        download_mib: 512,
        download_only: false,
        startup_rows: 1_000_000,
        soak: false,
        soak_seconds: 60,
        soak_out: PathBuf::from("docs/soak.md"),
        litellm: None,
        profile: false,
        profile_out: PathBuf::from("docs/profile.md"),
        streams_only: false,
        logs_only: false,
        latency_only: false,
        instructions_only: false,
        local_only: false,
        upload_only: false,
        team_only: false,
        upload_mib: 100,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--bin-dir" => options.bin_dir = PathBuf::from(value()?),
            "--server-bin" => options.server_bin = Some(PathBuf::from(value()?)),
            "--out" => options.out = PathBuf::from(value()?),
            "--latency-requests" => options.latency_requests = value()?.parse()?,
            "--throughput-seconds" => options.throughput_seconds = value()?.parse()?,
            "--log-rows" => options.log_rows = value()?.parse()?,
            "--download-mib" => options.download_mib = value()?.parse()?,
            "--download-only" => options.download_only = true,
            "--startup-rows" => options.startup_rows = value()?.parse()?,
            "--soak" => options.soak = true,
            "--soak-seconds" => options.soak_seconds = value()?.parse()?,
            "--soak-out" => options.soak_out = PathBuf::from(value()?),
            "--litellm" => options.litellm = Some(PathBuf::from(value()?)),
            "--profile" => options.profile = true,
            "--profile-out" => options.profile_out = PathBuf::from(value()?),
            "--streams-only" => options.streams_only = true,
            "--logs-only" => options.logs_only = true,
            "--latency-only" => options.latency_only = true,
            "--instructions-only" => options.instructions_only = true,
            "--local-only" => options.local_only = true,
            "--upload-only" => options.upload_only = true,
            "--team-only" => options.team_only = true,
            "--upload-mib" => options.upload_mib = value()?.parse()?,
            other => bail!("unknown option {other}"),
        }
    }
    Ok(options)
}

/// A child process that prints `listening on http://ADDR` and is killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(command: &mut Command) -> anyhow::Result<Server> {
        use std::io::BufRead;
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().context("starting server")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let base = line.trim().strip_prefix("listening on ").context("server did not report its address")?.to_string();
        Ok(Server { child, base })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chat_request() -> Bytes {
    Bytes::from(json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}).to_string())
}

async fn send(client: &HttpClient, url: &str, key: Option<&str>, body: Bytes) -> anyhow::Result<Bytes> {
    let mut request = hyper::Request::post(url).header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = client.request(request.body(Full::new(body))?).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("{url}: {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(bytes)
}

async fn console(client: &HttpClient, method: &str, base: &str, path: &str, body: Value) -> anyhow::Result<Value> {
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer bench-admin")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let response = client.request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("{method} {path}: {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// One way to call a streaming endpoint: URL, headers and body.
#[derive(Clone)]
struct StreamCall {
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

/// Time from sending a streaming request to its first body bytes, and the largest gap between two
/// body frames after that.
async fn first_token(client: &HttpClient, call: &StreamCall) -> anyhow::Result<(Duration, Duration)> {
    let mut request = hyper::Request::post(&call.url).header("content-type", "application/json");
    for (name, value) in &call.headers {
        request = request.header(*name, value);
    }
    let started = Instant::now();
    let response = client.request(request.body(Full::new(call.body.clone()))?).await?;
    if !response.status().is_success() {
        bail!("{}: {}", call.url, response.status());
    }
    let mut body = response.into_body();
    let mut first = None;
    let mut last = Instant::now();
    let mut widest = Duration::ZERO;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if frame.data_ref().is_some_and(|d| !d.is_empty()) {
            let now = Instant::now();
            match first {
                None => first = Some(now - started),
                Some(_) => widest = widest.max(now - last),
            }
            last = now;
        }
    }
    Ok((first.context("the stream sent no data")?, widest))
}

/// Time-to-first-token of `calls` (each measured `count` times, interleaved), sorted per call.
async fn first_tokens(
    client: &HttpClient,
    calls: &[StreamCall],
    count: usize,
) -> anyhow::Result<Vec<(Vec<Duration>, Vec<Duration>)>> {
    let mut results = vec![(Vec::with_capacity(count), Vec::with_capacity(count)); calls.len()];
    for round in 0..count + count / 10 {
        for (index, call) in calls.iter().enumerate() {
            let (ttft, gap) = first_token(client, call).await?;
            if round >= count / 10 {
                results[index].0.push(ttft);
                results[index].1.push(gap);
            }
        }
    }
    for (ttft, gap) in &mut results {
        ttft.sort_unstable();
        gap.sort_unstable();
    }
    Ok(results)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Latencies of `count` sequential calls, each target in turn so both see the same conditions.
async fn latencies(
    client: &HttpClient,
    targets: &[(String, Option<String>)],
    count: usize,
) -> anyhow::Result<Vec<Vec<Duration>>> {
    let body = chat_request();
    let mut results = vec![Vec::with_capacity(count); targets.len()];
    for _ in 0..count / 10 {
        for (url, key) in targets {
            send(client, url, key.as_deref(), body.clone()).await?;
        }
    }
    for _ in 0..count {
        for (index, (url, key)) in targets.iter().enumerate() {
            let started = Instant::now();
            send(client, url, key.as_deref(), body.clone()).await?;
            results[index].push(started.elapsed());
        }
    }
    for list in &mut results {
        list.sort_unstable();
    }
    Ok(results)
}

/// Round trips of one byte over loopback TCP between two threads, each blocked until the other
/// writes: the machine's cost of two wake-ups. A proxy hop puts two more wake-ups on a call's path
/// (the proxy's, on the request and on the answer), so this is about the least any proxy adds here.
/// With `one_core`, both threads are pinned to the same core, so neither wake-up has to rouse an
/// idle core: the difference is what rousing one costs on this machine.
fn tcp_round_trips(count: usize, one_core: bool) -> anyhow::Result<Vec<Duration>> {
    // Its own threads, so that pinning never touches the runtime's workers.
    let measuring = std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
        use std::io::{Read, Write};
        let core = if one_core { Some(pin_to_current_core()?) } else { None };
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let echo = std::thread::spawn(move || -> anyhow::Result<()> {
            if let Some(core) = core {
                pin_to_core(core)?;
            }
            let (mut stream, _) = listener.accept()?;
            stream.set_nodelay(true)?;
            let mut byte = [0u8; 1];
            while stream.read(&mut byte)? == 1 {
                stream.write_all(&byte)?;
            }
            Ok(())
        });
        let mut stream = std::net::TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        let mut byte = [0u8; 1];
        let warm_up = count / 10;
        let mut times = Vec::with_capacity(count);
        for index in 0..warm_up + count {
            let started = Instant::now();
            stream.write_all(b"x")?;
            stream.read_exact(&mut byte)?;
            if index >= warm_up {
                times.push(started.elapsed());
            }
        }
        drop(stream);
        echo.join().map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
        times.sort_unstable();
        Ok(times)
    });
    measuring.join().map_err(|_| anyhow::anyhow!("the round-trip thread panicked"))?
}

/// Pins the calling thread to the core it is running on and returns that core.
#[cfg(target_os = "linux")]
#[expect(unsafe_code, reason = "sched_getcpu has no safe wrapper")]
fn pin_to_current_core() -> anyhow::Result<usize> {
    // SAFETY: sched_getcpu takes no arguments and only reads the calling thread's state.
    let core = unsafe { libc::sched_getcpu() };
    if core < 0 {
        bail!("sched_getcpu failed: {}", std::io::Error::last_os_error());
    }
    pin_to_core(core as usize)?;
    Ok(core as usize)
}

#[cfg(target_os = "linux")]
#[expect(unsafe_code, reason = "sched_setaffinity has no safe wrapper")]
fn pin_to_core(core: usize) -> anyhow::Result<()> {
    // SAFETY: the set is a plain bit mask owned by this frame; pid 0 is the calling thread.
    let result = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if result != 0 {
        bail!("pinning to core {core} failed: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn pin_to_current_core() -> anyhow::Result<usize> {
    bail!("pinning threads is measured on Linux only")
}

#[cfg(not(target_os = "linux"))]
fn pin_to_core(_core: usize) -> anyhow::Result<()> {
    bail!("pinning threads is measured on Linux only")
}

/// Requests per second with `concurrency` callers for `seconds`, and the total calls made.
async fn throughput(
    client: &HttpClient,
    url: &str,
    key: Option<&str>,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<(f64, u64)> {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let body = chat_request();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, key, body) = (client.clone(), url.to_string(), key.map(String::from), body.clone());
        let (done, errors, stop) = (done.clone(), errors.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match send(&client, &url, key.as_deref(), body.clone()).await {
                    Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (start_count, started) = (done.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (end_count, elapsed) = (done.load(Ordering::Relaxed), started.elapsed());
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    let failed = errors.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} calls to {url} failed during the throughput run");
    }
    Ok(((end_count - start_count) as f64 / elapsed.as_secs_f64(), done.load(Ordering::Relaxed)))
}

/// CPU time (user + system) a process has used so far, from /proc.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_name = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / clock_ticks_per_second())
}

/// A `Name:   123 kB` field of a /proc file, in MB.
fn proc_kb_field_mb(path: &str, field: &str) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(path)?;
    let kb: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .with_context(|| format!("no {field} in {path}"))?
        .parse()?;
    Ok(kb / 1024.0)
}

/// Resident memory of a process in MB, from /proc.
fn rss_mb(pid: u32) -> anyhow::Result<f64> {
    proc_kb_field_mb(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// A process's proportional set size in MB: its private pages plus its share of pages it maps
/// together with other processes (the GTK and WebKit libraries the app and its webview processes
/// all map count once in total, not once per process).
fn pss_mb(pid: u32) -> anyhow::Result<f64> {
    proc_kb_field_mb(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

/// Memory of a process and all its descendants (the desktop app's webview processes), MB:
/// resident pages summed per process, and proportional set sizes summed.
fn tree_memory_mb(root: u32) -> TreeMemory {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut tree = vec![root];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        index += 1;
    }
    TreeMemory {
        rss: tree.iter().filter_map(|pid| rss_mb(*pid).ok()).sum(),
        pss: tree.iter().filter_map(|pid| pss_mb(*pid).ok()).sum(),
        processes: tree.len(),
    }
}

#[derive(Clone, Copy, Default)]
struct TreeMemory {
    rss: f64,
    pss: f64,
    processes: usize,
}

/// Seconds from starting `burncloud serve` to `/health` answering 200, over a data dir whose log
/// already holds `rows` calls; median of three starts.
/// The dashboard's and the log page's queries, each timed through the console API (median of 5).
const DASHBOARD_QUERIES: &[(&str, &str)] = &[
    ("usage today, by model", "/console/api/usage?group_by=model&since_ms={today}"),
    ("usage 7 days, by model", "/console/api/usage?group_by=model&since_ms={week}"),
    ("usage 30 days, by day", "/console/api/usage?group_by=day&since_ms={month}"),
    ("usage 30 days, by model", "/console/api/usage?group_by=model&since_ms={month}"),
    ("usage 30 days, by token", "/console/api/usage?group_by=token&since_ms={month}"),
    ("log page, newest 50", "/console/api/logs?limit=50"),
    ("log page, one model, 7 days", "/console/api/logs?limit=50&model=deepseek-chat&since_ms={week}"),
    ("log page, one token", "/console/api/logs?limit=50&token_id=7"),
    ("log page, errors only", "/console/api/logs?limit=50&status=error"),
];

/// `burncloud serve` from `binary` on `data_dir`, with the bench's admin key, quiet.
fn start_serve(binary: &Path, data_dir: &Path) -> anyhow::Result<Server> {
    Server::start(serve_command(&mut Command::new(binary), data_dir))
}

/// `command` with `serve` on a free loopback port over `data_dir`, with the bench's admin key.
fn serve_command<'a>(command: &'a mut Command, data_dir: &Path) -> &'a mut Command {
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("BURNCLOUD_ADMIN_KEY", "bench-admin")
        .env("BURNCLOUD_LOG", "warn")
}

/// The usual setup on a started gateway: `channels` channels on the mock upstream serving
/// gpt-4o-mini, its price, and a token named `token_name`, whose key is returned.
async fn set_up_gateway(
    client: &HttpClient,
    gateway: &Server,
    upstream: &Server,
    channels: usize,
    token_name: &str,
) -> anyhow::Result<String> {
    for n in 0..channels {
        let channel = json!({"name": format!("mock {n}"), "kind": "openai", "base_url": format!("{}/v1", upstream.base), "models": ["gpt-4o-mini"]});
        console(client, "POST", &gateway.base, "/console/api/channels", channel).await?;
    }
    let price = json!({"input_per_mtok": "0.15", "output_per_mtok": "0.6"});
    console(client, "PUT", &gateway.base, "/console/api/prices/gpt-4o-mini", price).await?;
    let token = console(client, "POST", &gateway.base, "/console/api/tokens", json!({"name": token_name})).await?;
    Ok(token["key"].as_str().context("no token key")?.to_string())
}

/// Resident memory of `serve` from this binary, a second after `/health` answers, on an empty data dir.
async fn idle_serve_rss(binary: &Path) -> anyhow::Result<f64> {
    let data_dir = tempfile_dir()?.join("idle");
    let server = start_serve(binary, &data_dir)?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = rss_mb(server.child.id());
    drop(server);
    let _ = std::fs::remove_dir_all(&data_dir);
    rss
}

/// Fills a data dir with `rows` logged calls spread over 30 days through the log writer (timed:
/// its rate as the log grows to `rows`), then measures (a) `serve` start to `/health` 200 (median
/// of 3) and (b) every dashboard query in ms.
async fn startup_with_rows(
    client: &HttpClient,
    server_bin: &Path,
    rows: usize,
) -> anyhow::Result<(f64, Vec<(String, f64)>, f64)> {
    let data_dir = tempfile_dir()?.join("startup");
    std::fs::create_dir_all(&data_dir)?;
    let now = burncloud_database::now_ms();
    let fill_rate;
    {
        let db = Arc::new(burncloud_database::Db::open(data_dir.join("burncloud.db"))?);
        let sink = burncloud_router::LogSink::start(db.clone(), burncloud_router::LogWriterConfig::default());
        let filling = Instant::now();
        for n in 0..rows {
            sink.record(spread_log_row(n, rows, now)).await;
        }
        sink.flush().await;
        fill_rate = rows as f64 / filling.elapsed().as_secs_f64();
    }
    let mut times = Vec::new();
    let mut queries = Vec::new();
    for run in 0..3 {
        let started = Instant::now();
        let gateway = start_serve(server_bin, &data_dir)?;
        loop {
            let request = hyper::Request::get(format!("{}/health", gateway.base)).body(Full::new(Bytes::new()))?;
            if let Ok(response) = client.request(request).await {
                if response.status() == 200 {
                    break;
                }
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("serve did not answer /health within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(started.elapsed().as_secs_f64());
        if run == 0 {
            queries = dashboard_times(client, &gateway, now).await?;
        }
        drop(gateway);
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    times.sort_by(f64::total_cmp);
    Ok((times[1], queries, fill_rate))
}

/// Call `n` of `rows` as the dashboard figures log them: spread over the 30 days before `now`,
/// across six models, twenty tokens and five channels, one in fifty failed.
fn spread_log_row(n: usize, rows: usize, now: i64) -> burncloud_database::NewLogRow {
    let models = ["gpt-4o-mini", "gpt-4o", "deepseek-chat", "qwen-plus", "claude-sonnet-4", "gemini-2.5-flash"];
    let span_ms = 30 * 86_400_000i64;
    let mut row = sample_log_row();
    row.created_at_ms = now - span_ms + (n as i64 * span_ms) / rows.max(1) as i64;
    row.model = models[n % models.len()].into();
    row.token_id = Some((n % 20) as i64 + 1);
    row.token_name = Some(format!("token-{}", n % 20 + 1));
    row.channel_id = Some((n % 5) as i64 + 1);
    if n.is_multiple_of(50) {
        row.status = 502;
        row.error = Some("upstream refused".into());
    }
    row
}

/// Each dashboard query's median time of five against `gateway`, in ms, its ranges ending `now`.
async fn dashboard_times(client: &HttpClient, gateway: &Server, now: i64) -> anyhow::Result<Vec<(String, f64)>> {
    let today = now - now % 86_400_000;
    let mut times = Vec::new();
    for (name, template) in DASHBOARD_QUERIES {
        let path = template
            .replace("{today}", &today.to_string())
            .replace("{week}", &(now - 7 * 86_400_000).to_string())
            .replace("{month}", &(now - 30 * 86_400_000).to_string());
        let mut runs = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            console(client, "GET", &gateway.base, &path, Value::Null).await?;
            runs.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        runs.sort_by(f64::total_cmp);
        times.push((format!("{name} (`GET {}`)", template.split('?').next().unwrap_or(template)), runs[2]));
    }
    Ok(times)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// One logged call, as the gateway writes them.
fn sample_log_row() -> burncloud_database::NewLogRow {
    burncloud_database::NewLogRow {
        request_id: burncloud_router::new_request_id(),
        created_at_ms: burncloud_database::now_ms(),
        token_id: Some(1),
        token_name: Some("bench".into()),
        channel_id: Some(1),
        channel_name: Some("mock".into()),
        endpoint: "/v1/chat/completions".into(),
        model: "gpt-4o-mini".into(),
        upstream_model: Some("gpt-4o-mini".into()),
        is_stream: false,
        status: 200,
        error: None,
        prompt_tokens: 21,
        completion_tokens: 9,
        cached_tokens: 0,
        cache_write_tokens: 0,
        cache_write_1h_tokens: 0,
        reasoning_tokens: 0,
        images: 0,
        audio_ms: 0,
        characters: 0,
        usage_source: burncloud_service_api::UsageSource::Upstream,
        cost: burncloud_service_api::Money(1234),
        priced: true,
        latency_ms: 3,
        first_token_ms: Some(3),
        end_reason: burncloud_service_api::EndReason::Completed,
        attempts: 1,
    }
}

/// Rows per second the log writer stores: queue `rows` rows, wait until all are in SQLite.
async fn log_writer_rate(rows: usize) -> anyhow::Result<f64> {
    let dir = tempfile_dir()?;
    let db = Arc::new(burncloud_database::Db::open(dir.join("bench.db"))?);
    let sink = burncloud_router::LogSink::start(db.clone(), burncloud_router::LogWriterConfig::default());
    let started = Instant::now();
    for _ in 0..rows {
        sink.record(sample_log_row()).await;
    }
    sink.flush().await;
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    let (stored, _) = db.read(burncloud_database::repo::logs::row_counts)?;
    if stored as usize != rows {
        bail!("log writer stored {stored} of {rows} rows");
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rate)
}

/// Seconds to fetch one file from a local hub: with curl (following the CDN redirect, writing to
/// disk), and as a BurnCloud download (resolve, write, SHA-256 while streaming, verify, register).
/// Returns the median of five runs each: (curl, curl then fsync, BurnCloud).
async fn download_times(client: &HttpClient, bin_dir: &Path, mib: usize) -> anyhow::Result<(f64, f64, f64)> {
    use std::io::{BufRead, Write};
    let dir = tempfile_dir()?.join("download");
    std::fs::create_dir_all(&dir)?;
    let source = dir.join("source.gguf");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&source)?);
        file.write_all(b"GGUF\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0")?;
        let mut block = vec![0u8; 1 << 20];
        let mut state = 0x9e37_79b9u32;
        for _ in 0..mib {
            for byte in block.iter_mut() {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                *byte = state as u8;
            }
            file.write_all(&block)?;
        }
    }
    let mut hub = Command::new(bin_dir.join("mock-hub"))
        .arg("--file")
        .arg(format!("bench/Big-GGUF:big-Q4_K_M.gguf={}", source.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting mock-hub")?;
    let mut line = String::new();
    std::io::BufReader::new(hub.stdout.take().context("no stdout")?).read_line(&mut line)?;
    let endpoint = line.split_whitespace().nth(1).context("mock-hub did not report its address")?.to_string();
    let url = format!("{endpoint}/bench/Big-GGUF/resolve/main/big-Q4_K_M.gguf");

    // Runs alternate between curl and BurnCloud, so the machine's background writeback weighs on both.
    let mut curl_runs = Vec::new();
    let mut curl_synced_runs = Vec::new();
    let mut ours = Vec::new();
    // Each run starts on a settled disk: otherwise one client's leftover writeback (curl leaves its
    // whole file dirty) is paid by whichever runs next.
    let settle_disk = || Command::new("sync").status();
    for run in 0..5 {
        settle_disk()?;
        let out = dir.join(format!("curl-{run}.gguf"));
        let started = Instant::now();
        let status = Command::new("curl").args(["-sS", "-L", "--fail", "-o"]).arg(&out).arg(&url).status()?;
        curl_runs.push(started.elapsed().as_secs_f64());
        if !status.success() {
            bail!("curl failed: {status}");
        }
        // BurnCloud puts a finished model on disk (fsync) before trusting it; curl does not, so the
        // like-for-like figure adds that sync to curl's time.
        std::fs::File::open(&out)?.sync_all()?;
        curl_synced_runs.push(started.elapsed().as_secs_f64());
        std::fs::remove_file(&out)?;
        settle_disk()?;

        let data_dir = dir.join(format!("data-{run}"));
        let gateway = Server::start(
            Command::new(bin_dir.join("burncloud"))
                .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(&data_dir)
                .env("BURNCLOUD_ADMIN_KEY", "bench-admin")
                .env("BURNCLOUD_LOG", "warn")
                .env("BURNCLOUD_HF_ENDPOINT", &endpoint),
        )?;
        let started = Instant::now();
        let created = console(
            client,
            "POST",
            &gateway.base,
            "/console/api/downloads",
            json!({"source": "huggingface", "repo": "bench/Big-GGUF", "path": "big-Q4_K_M.gguf"}),
        )
        .await?;
        let id = created["id"].as_i64().context("no download id")?;
        loop {
            let current =
                console(client, "GET", &gateway.base, &format!("/console/api/downloads/{id}"), Value::Null).await?;
            match current["state"].as_str() {
                Some("done") => break,
                Some("failed") => bail!("the download failed: {current}"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        ours.push(started.elapsed().as_secs_f64());
        drop(gateway);
        std::fs::remove_dir_all(&data_dir)?;
    }
    let _ = hub.kill();
    let _ = hub.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let median = |mut runs: Vec<f64>| {
        runs.sort_by(f64::total_cmp);
        runs[runs.len() / 2]
    };
    Ok((median(curl_runs), median(curl_synced_runs), median(ours)))
}

/// Launch times in seconds, the first launch's idle memory, and launches with no window.
type WindowStarts = (Vec<f64>, TreeMemory, usize);

/// Seconds from starting the desktop app to its window being visible, over `runs` launches in a
/// virtual display; the reason instead where Xvfb or xdotool is missing.
fn window_start_times(bin_dir: &Path, runs: usize) -> anyhow::Result<Result<WindowStarts, String>> {
    use std::io::BufRead;
    for tool in ["Xvfb", "xdotool"] {
        if Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output()?.stdout.is_empty() {
            return Ok(Err(format!("{tool} is not installed")));
        }
    }
    let mut xvfb = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting Xvfb")?;
    let mut number = String::new();
    std::io::BufReader::new(xvfb.stdout.take().context("no stdout")?).read_line(&mut number)?;
    let display = format!(":{}", number.trim());
    let mut times = Vec::with_capacity(runs);
    let mut idle_memory = TreeMemory::default();
    let mut missed = 0;
    for run in 0..runs {
        let data_dir = tempfile_dir()?.join(format!("window-{run}"));
        let started = Instant::now();
        let mut app = Command::new(bin_dir.join("burncloud"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .env("DISPLAY", &display)
            .env_remove("WAYLAND_DISPLAY")
            .env("BURNCLOUD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the desktop app")?;
        let shown = loop {
            let found = Command::new("xdotool")
                .args(["search", "--onlyvisible", "--name", "^BurnCloud$"])
                .env("DISPLAY", &display)
                .output()?;
            if found.status.success() && !found.stdout.is_empty() {
                break Some(started.elapsed().as_secs_f64());
            }
            if started.elapsed() > Duration::from_secs(30) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if run == 0 && shown.is_some() {
            // Idle: the window drawn, nothing happening, the webview's processes included.
            std::thread::sleep(Duration::from_secs(3));
            idle_memory = tree_memory_mb(app.id());
        }
        let _ = Command::new("kill").arg(app.id().to_string()).status();
        let _ = app.wait();
        let _ = std::fs::remove_dir_all(&data_dir);
        match shown {
            Some(seconds) => times.push(seconds),
            None => missed += 1,
        }
    }
    let _ = xvfb.kill();
    let _ = xvfb.wait();
    if times.is_empty() {
        return Ok(Err(format!("the window did not appear within 30 s in any of {runs} launches")));
    }
    Ok(Ok((times, idle_memory, missed)))
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("burncloud-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cores} cores, {cpu}")
}

fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(run(options))
}

/// Adds the Anthropic and Gemini channels (and a chat-only OpenAI-compatible one for Responses API
/// callers) to `gateway` and measures what it adds to a stream's
/// time to first token and widest chunk gap, each format against the mock called directly; the
/// bare proxy's row is the floor one HTTP hop sets on this machine. Returns the report's table rows.
async fn stream_overheads(
    client: &HttpClient,
    gateway: &Server,
    upstream: &Server,
    bare: &Server,
    key: &str,
    count: usize,
) -> anyhow::Result<String> {
    for (kind, model) in [("anthropic", "claude-bench"), ("gemini", "gemini-bench")] {
        console(
            client,
            "POST",
            &gateway.base,
            "/console/api/channels",
            json!({"name": kind, "kind": kind, "base_url": upstream.base, "models": [model]}),
        )
        .await?;
    }
    console(
        client,
        "POST",
        &gateway.base,
        "/console/api/channels",
        json!({"name": "chat only", "kind": "openai", "base_url": format!("{}/v1", upstream.base),
               "models": ["responses-bench"], "native_responses": false}),
    )
    .await?;
    let chat_stream = |model: &str| {
        Bytes::from(
            json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "Say hello"}]}).to_string(),
        )
    };
    let gateway_url = format!("{}/v1/chat/completions", gateway.base);
    let via_gateway = |model: &str| StreamCall {
        url: gateway_url.clone(),
        headers: vec![("authorization", format!("Bearer {key}"))],
        body: chat_stream(model),
    };
    let anthropic_direct = StreamCall {
        url: format!("{}/v1/messages", upstream.base),
        headers: vec![("anthropic-version", "2023-06-01".into())],
        body: Bytes::from(
            json!({"model": "claude-bench", "max_tokens": 64, "stream": true,
            "messages": [{"role": "user", "content": "Say hello"}]})
            .to_string(),
        ),
    };
    let gemini_direct = StreamCall {
        url: format!("{}/v1beta/models/gemini-bench:streamGenerateContent?alt=sse", upstream.base),
        headers: Vec::new(),
        body: Bytes::from(json!({"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]}).to_string()),
    };
    let openai_direct = StreamCall {
        url: format!("{}/v1/chat/completions", upstream.base),
        headers: Vec::new(),
        body: chat_stream("gpt-4o-mini"),
    };
    let bare_hop = StreamCall { url: format!("{}/v1/chat/completions", bare.base), ..openai_direct.clone() };
    let responses_body = |model: &str| {
        Bytes::from(json!({"model": model, "stream": true, "store": false, "input": "Say hello"}).to_string())
    };
    let responses_direct = StreamCall {
        url: format!("{}/v1/responses", upstream.base),
        headers: Vec::new(),
        body: responses_body("gpt-4o-mini"),
    };
    let via_responses = |model: &str| StreamCall {
        url: format!("{}/v1/responses", gateway.base),
        headers: vec![("authorization", format!("Bearer {key}"))],
        body: responses_body(model),
    };
    let via_ollama = StreamCall {
        url: format!("{}/api/chat", gateway.base),
        headers: vec![("authorization", format!("Bearer {key}"))],
        body: Bytes::from(
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}).to_string(),
        ),
    };
    let via_gemini = StreamCall {
        url: format!("{}/v1beta/models/gpt-4o-mini:streamGenerateContent?alt=sse", gateway.base),
        headers: vec![("x-goog-api-key", key.to_string())],
        body: Bytes::from(json!({"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]}).to_string()),
    };
    let stream_calls = [
        openai_direct,
        via_gateway("gpt-4o-mini"),
        anthropic_direct,
        via_gateway("claude-bench"),
        gemini_direct,
        via_gateway("gemini-bench"),
        bare_hop,
        responses_direct,
        via_responses("gpt-4o-mini"),
        via_responses("responses-bench"),
        via_ollama,
        via_gemini,
    ];
    let streams = first_tokens(client, &stream_calls, count).await?;
    let stream_row = |name: &str, direct: usize, through: usize| {
        let (direct_ttft, direct_gap) = &streams[direct];
        let (ttft, gap) = &streams[through];
        let added = |p: f64| micros(percentile(ttft, p)) - micros(percentile(direct_ttft, p));
        let added_gap = |p: f64| micros(percentile(gap, p)) - micros(percentile(direct_gap, p));
        format!("| {name} | {:.0} | {:.0} | {:.0} | {:.0} |", added(0.5), added(0.99), added_gap(0.5), added_gap(0.99))
    };
    Ok([
        stream_row("OpenAI format, passed through", 0, 1),
        stream_row("Anthropic upstream, converted to OpenAI chunks", 2, 3),
        stream_row("Gemini upstream, converted to OpenAI chunks", 4, 5),
        stream_row("Responses API, passed through to an upstream's own", 7, 8),
        stream_row("Responses API caller, chat upstream, converted to Responses events", 0, 9),
        stream_row("Ollama `/api/chat` caller, OpenAI upstream, converted to NDJSON lines", 0, 10),
        stream_row("Gemini `:streamGenerateContent` caller, OpenAI upstream, converted to Gemini events", 0, 11),
        stream_row("for scale: the bare proxy, OpenAI format (one HTTP hop, no logic)", 0, 6),
    ]
    .join("\n"))
}

/// What the load sections measure: the mock upstream, BurnCloud in front of it with one token
/// (`key`), the bare proxy in front of it too, and the client that calls them all.
struct Rig {
    upstream: Server,
    gateway: Server,
    bare: Server,
    client: HttpClient,
    key: String,
    data_dir: PathBuf,
}

impl Rig {
    async fn start(options: &Options, server_bin: &Path) -> anyhow::Result<Rig> {
        let upstream = Server::start(Command::new(options.bin_dir.join("mock-upstream")).env("MOCK_THREADS", "1"))?;
        let data_dir = tempfile_dir()?.join("data");
        let gateway = start_serve(server_bin, &data_dir)?;
        let bare =
            Server::start(Command::new(options.bin_dir.join("bare-proxy")).arg("--upstream").arg(&upstream.base))?;
        let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(256).build_http();
        let key = set_up_gateway(&client, &gateway, &upstream, 1, "bench").await?;
        Ok(Rig { upstream, gateway, bare, client, key, data_dir })
    }
}

/// The concurrency-1 comparison alone, with the CPU each proxy spent per call, for quick A/B runs.
async fn latency_comparison(options: &Options, server_bin: &Path) -> anyhow::Result<()> {
    let rig = Rig::start(options, server_bin).await?;
    let direct_url = format!("{}/v1/chat/completions", rig.upstream.base);
    let targets = [
        (direct_url, None),
        (format!("{}/v1/chat/completions", rig.bare.base), None),
        (format!("{}/v1/chat/completions", rig.gateway.base), Some(rig.key.clone())),
    ];
    let pids = [rig.upstream.child.id(), rig.bare.child.id(), rig.gateway.child.id()];
    let cpu_of_all = || pids.iter().map(|&pid| cpu_seconds(pid)).collect::<anyhow::Result<Vec<f64>>>();
    let cpu_before = cpu_of_all()?;
    let lists = latencies(&rig.client, &targets, options.latency_requests).await?;
    let cpu_after = cpu_of_all()?;
    let calls = (options.latency_requests + options.latency_requests / 10) as f64;
    println!("| path | p50 µs | p99 µs | added p50 µs | added p99 µs | process CPU per call µs |");
    println!("|---|---|---|---|---|---|");
    for (one_core, name) in [(false, "two threads"), (true, "two threads pinned to one core")] {
        let round_trips = tcp_round_trips(options.latency_requests, one_core)?;
        println!(
            "| for scale: one TCP round trip between {name}, 1 byte each way | {:.0} | {:.0} | | | |",
            micros(percentile(&round_trips, 0.5)),
            micros(percentile(&round_trips, 0.99))
        );
    }
    let (direct_p50, direct_p99) = (micros(percentile(&lists[0], 0.5)), micros(percentile(&lists[0], 0.99)));
    for (index, name) in ["direct", "bare proxy", "BurnCloud"].iter().enumerate() {
        let (p50, p99) = (micros(percentile(&lists[index], 0.5)), micros(percentile(&lists[index], 0.99)));
        // The mock answers every path's calls; the proxies only their own.
        let cpu_calls = if index == 0 { calls * 3.0 } else { calls };
        let cpu = (cpu_after[index] - cpu_before[index]) * 1e6 / cpu_calls;
        println!("| {name} | {p50:.0} | {p99:.0} | {:.0} | {:.0} | {cpu:.1} |", p50 - direct_p50, p99 - direct_p99);
    }
    Ok(())
}

async fn run(options: Options) -> anyhow::Result<()> {
    let server_bin = options.server_bin.clone().unwrap_or_else(|| options.bin_dir.join("burncloud"));
    if options.soak {
        return soak::soak(&options, &server_bin).await;
    }
    if options.profile {
        return profile::profile(&options, &server_bin).await;
    }
    if options.local_only {
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let llama_server = std::env::var_os("BURNCLOUD_LLAMA_SERVER").context("set BURNCLOUD_LLAMA_SERVER")?;
        let model = std::env::var_os("BURNCLOUD_TEST_GGUF").context("set BURNCLOUD_TEST_GGUF")?;
        let table = local::local_figures(&client, &server_bin, Path::new(&llama_server), Path::new(&model), 20).await?;
        println!("{}", local_section(&table));
        return Ok(());
    }
    if options.team_only {
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let figures = team::team_figures(&client, &options, &server_bin).await?;
        println!("{}", team::team_section(&figures, &options));
        return Ok(());
    }
    if options.logs_only {
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let (startup, queries, fill_rate) = startup_with_rows(&client, &server_bin, options.startup_rows).await?;
        println!(
            "filling {} rows: {fill_rate:.0} rows/s; serve ready in {:.0} ms",
            options.startup_rows,
            startup * 1000.0
        );
        for (name, ms) in queries {
            println!("{ms:>8.1} ms  {name}");
        }
        println!("{} rows into an empty log: {:.0} rows/s", options.log_rows, log_writer_rate(options.log_rows).await?);
        return Ok(());
    }
    if options.streams_only {
        let rig = Rig::start(&options, &server_bin).await?;
        let count = options.latency_requests.max(50);
        println!("{}", stream_overheads(&rig.client, &rig.gateway, &rig.upstream, &rig.bare, &rig.key, count).await?);
        return Ok(());
    }
    if options.latency_only {
        return latency_comparison(&options, &server_bin).await;
    }
    if options.upload_only {
        println!("{}", upload::upload_memory(&options, &server_bin, options.upload_mib).await?.row());
        return Ok(());
    }
    if options.instructions_only {
        match instructions::per_call(&options, &server_bin).await? {
            Ok(counts) => println!(
                "instructions per call: BurnCloud {:.0}, bare proxy {:.0}",
                counts.burncloud, counts.bare_proxy
            ),
            Err(reason) => println!("instructions not counted: {reason}"),
        }
        return Ok(());
    }
    // Downloads go first, on a quiet machine with no other server of ours running: run after the
    // load sections they measured ~40% slower than alone, from the state those leave behind.
    eprintln!("model download: {} MiB, five runs each", options.download_mib);
    let (curl_seconds, curl_synced_seconds, download_seconds) = {
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        download_times(&client, &options.bin_dir, options.download_mib).await?
    };
    if options.download_only {
        let (curl, curl_synced, ours) = (curl_seconds, curl_synced_seconds, download_seconds);
        println!(
            "curl {curl:.2} s, curl+fsync {curl_synced:.2} s, BurnCloud {ours:.2} s: {:.0}% of curl",
            100.0 * curl / ours
        );
        return Ok(());
    }
    // The downloads leave gigabytes of dirty pages, whose writeback could still be taking a core
    // when the latency section starts: write them out before timing anything else.
    Command::new("sync").status().context("running sync")?;
    let desktop_build = options.bin_dir.join("burncloud");
    let desktop_build_serve_rss = idle_serve_rss(&desktop_build).await?;
    let Rig { upstream, gateway, bare, client, key, data_dir } = Rig::start(&options, &server_bin).await?;
    let limited = console(
        &client,
        "POST",
        &gateway.base,
        "/console/api/tokens",
        json!({"name": "bench-limited", "rpm_limit": 1_000_000_000i64, "tpm_limit": 1_000_000_000_000i64}),
    )
    .await?;
    let limited_key = limited["key"].as_str().context("no token key")?.to_string();
    let direct_url = format!("{}/v1/chat/completions", upstream.base);
    let gateway_url = format!("{}/v1/chat/completions", gateway.base);
    let bare_url = format!("{}/v1/chat/completions", bare.base);

    eprintln!("latency at concurrency 1: {} calls each", options.latency_requests);
    let lists = latencies(
        &client,
        &[
            (direct_url.clone(), None),
            (bare_url.clone(), None),
            (gateway_url.clone(), Some(key.clone())),
            (gateway_url.clone(), Some(limited_key.clone())),
        ],
        options.latency_requests,
    )
    .await?;
    let (direct, bare_hop, through, limited_through) = (&lists[0], &lists[1], &lists[2], &lists[3]);
    let row = |name: &str, list: &[Duration]| {
        format!("| {name} | {:.0} | {:.0} |", micros(percentile(list, 0.5)), micros(percentile(list, 0.99)))
    };
    let added_p50 = micros(percentile(through, 0.5)) - micros(percentile(direct, 0.5));
    let added_p99 = micros(percentile(through, 0.99)) - micros(percentile(direct, 0.99));
    let limiter_p50 = micros(percentile(limited_through, 0.5)) - micros(percentile(through, 0.5));
    let bare_p50 = micros(percentile(bare_hop, 0.5)) - micros(percentile(direct, 0.5));
    let bare_p99 = micros(percentile(bare_hop, 0.99)) - micros(percentile(direct, 0.99));
    let round_trips = tcp_round_trips(options.latency_requests, false)?;
    let (round_trip_p50, round_trip_p99) =
        (micros(percentile(&round_trips, 0.5)), micros(percentile(&round_trips, 0.99)));
    let one_core_round_trip_p50 = micros(percentile(&tcp_round_trips(options.latency_requests, true)?, 0.5));

    let stream_count = options.latency_requests.max(50);
    eprintln!("streaming time to first token: {stream_count} streams each");
    let stream_table = stream_overheads(&client, &gateway, &upstream, &bare, &key, stream_count).await?;

    // Right after the calls the process still holds what they needed; idle is when they have
    // stopped for a while (the log writer hands caches back after 2 quiet seconds).
    let busy_rss = rss_mb(gateway.child.id())?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = rss_mb(gateway.child.id())?;

    eprintln!("throughput at concurrency 32: {} s each", options.throughput_seconds);
    let (direct_rps, _) = throughput(&client, &direct_url, None, 32, options.throughput_seconds).await?;
    let (bare_rps, _) = throughput(&client, &bare_url, None, 32, options.throughput_seconds).await?;
    let cpu_before = (cpu_seconds(gateway.child.id())?, cpu_seconds(upstream.child.id())?);
    let (gateway_rps, calls) = throughput(&client, &gateway_url, Some(&key), 32, options.throughput_seconds).await?;
    let cpu_after = (cpu_seconds(gateway.child.id())?, cpu_seconds(upstream.child.id())?);
    let gateway_cpu_us = (cpu_after.0 - cpu_before.0) * 1e6 / calls as f64;
    let upstream_cpu_us = (cpu_after.1 - cpu_before.1) * 1e6 / calls as f64;

    eprintln!("concurrency 256 through BurnCloud: {} s, sampling memory", options.throughput_seconds);
    let sampled_pid = gateway.child.id();
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                if let Ok(mb) = rss_mb(sampled_pid) {
                    peak.fetch_max((mb * 1024.0) as u64, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let (rps_256, _) = throughput(&client, &gateway_url, Some(&key), 256, options.throughput_seconds).await?;
    let (direct_256, _) = throughput(&client, &direct_url, None, 256, options.throughput_seconds).await?;
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    let peak_rss = peak.load(Ordering::Relaxed) as f64 / 1024.0;

    eprintln!("against LiteLLM: latency and throughput through its proxy");
    let litellm_section = match &options.litellm {
        None => "Not measured: no `--litellm` given (`./scripts/bench` installs LiteLLM and passes it).".to_string(),
        Some(path) => {
            let calls = (options.latency_requests / 5).max(200);
            match litellm::compare(&client, path, &upstream.base, calls, options.throughput_seconds).await {
                Err(error) => format!("Not measured: {error:#}."),
                Ok(peer) => format!(
                    "LiteLLM {version} (`litellm[proxy]` from PyPI, its own venv) runs as `litellm --config … \
                     --num_workers 1` in front of the same mock upstream, with a master key (it refuses to \
                     start without one) and no database — its lightest setup; BurnCloud authenticates a \
                     token, prices and logs every call. \
                     Each proxy's added latency is measured the same way, interleaved with direct calls \
                     to the mock: LiteLLM's here ({calls} calls), BurnCloud's in the first section; \
                     throughput: {seconds} s each.\n\n\
                     | measure | BurnCloud | LiteLLM | BurnCloud's advantage |\n|---|---|---|---|\n\
                     | added latency p50, concurrency 1 | {bp50:.0} µs | {lp50:.0} µs | {r50:.0}× less |\n\
                     | added latency p99, concurrency 1 | {bp99:.0} µs | {lp99:.0} µs | {r99:.0}× less |\n\
                     | throughput, concurrency 32 | {b32:.0}/s | {l32:.0}/s ({e32} failed) | {t32:.0}× |\n\
                     | throughput, concurrency 256 | {b256:.0}/s | {l256:.0}/s ({e256} failed) | {t256:.0}× |\n\n\
                     Targets: at least 100× LiteLLM's throughput at concurrency 32, at most 1/50 of its added p50.",
                    version = peer.version,
                    seconds = options.throughput_seconds,
                    bp50 = added_p50,
                    bp99 = added_p99,
                    lp50 = peer.added_p50_us,
                    lp99 = peer.added_p99_us,
                    r50 = peer.added_p50_us / added_p50.max(1.0),
                    r99 = peer.added_p99_us / added_p99.max(1.0),
                    b32 = gateway_rps,
                    l32 = peer.rps_32,
                    e32 = peer.errors_32,
                    t32 = gateway_rps / peer.rps_32.max(0.001),
                    b256 = rps_256,
                    l256 = peer.rps_256,
                    e256 = peer.errors_256,
                    t256 = rps_256 / peer.rps_256.max(0.001),
                ),
            }
        }
    };

    eprintln!("start-up with {} logged calls", options.startup_rows);
    let (startup_seconds, dashboard_queries, fill_rate) =
        startup_with_rows(&client, &server_bin, options.startup_rows).await?;

    eprintln!("log writer: {} rows", options.log_rows);
    let rows_per_second = log_writer_rate(options.log_rows).await?;

    eprintln!("a {} MiB transcription upload", options.upload_mib);
    let upload_row = upload::upload_memory(&options, &server_bin, options.upload_mib).await?.row();

    eprintln!("desktop window start: five launches");
    let (window_section, desktop_memory) = match window_start_times(&options.bin_dir, 5)? {
        Ok((mut times, idle_memory, missed)) => {
            let first = times[0];
            times.sort_by(f64::total_cmp);
            let text = format!(
                "From starting `burncloud` (the desktop app, release build, in Xvfb) to its window being \
                 visible (`xdotool search --onlyvisible`), five launches on fresh data dirs: \
                 **median {:.2} s**, slowest {:.2} s, first (coldest) {first:.2} s (target: ≤ 1.5 s).{}",
                times[times.len() / 2],
                times[times.len() - 1],
                if missed > 0 {
                    format!(" In {missed} launches the window did not appear within 30 s.")
                } else {
                    String::new()
                }
            );
            (text, Some(idle_memory))
        }
        Err(reason) => (format!("Not measured on this run: {reason}."), None),
    };

    let mib = options.download_mib as f64;
    drop(gateway);
    drop(bare);
    drop(upstream);
    let _ = std::fs::remove_dir_all(data_dir.parent().unwrap_or(Path::new("/nonexistent")));

    eprintln!("instructions per call under callgrind");
    let instructions_text = match instructions::per_call(&options, &server_bin).await? {
        Ok(counts) => format!(
            "Counted instead of timed (valgrind's callgrind; the difference between a short and a long \
             series of sequential calls, so start-up is left out): BurnCloud runs **{:.0} instructions \
             per call**, its log writer included, and the bare proxy {:.0}. Unlike the times above, \
             these counts repeat from run to run, so they show what a change to the code did.",
            counts.burncloud, counts.bare_proxy
        ),
        Err(reason) => format!("Instructions per call were not counted on this run: {reason}."),
    };

    let date = String::from_utf8(Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC").output()?.stdout)?;
    let report = format!(
        "# Performance\n\n\
         Measured by `./scripts/bench` (release build) on {date_trimmed}, {machine}. The load generator, \
         the mock upstream and BurnCloud share the machine's cores, so absolute numbers are modest; the \
         differences are what BurnCloud adds. Each call is a non-streaming chat completion with a \
         ~400-byte answer and usage, priced and logged.\n\n\
         ## Added latency, concurrency 1 ({calls} calls each, interleaved)\n\n\
         | path | p50 µs | p99 µs |\n|---|---|---|\n{direct_row}\n{bare_row}\n{gateway_row}\n{limited_row}\n\n\
         Added by BurnCloud: **p50 {added_p50:.0} µs**, **p99 {added_p99:.0} µs** (targets: ≤ 100 µs and ≤ 1 ms). \
         For scale, the bare proxy — one more HTTP hop and nothing else — adds p50 {bare_p50:.0} µs, \
         p99 {bare_p99:.0} µs on this machine. A hop puts two more wake-ups on every call's path (the \
         proxy's, for the request and for the answer), the same as one TCP round trip between two \
         threads that wait for each other: with 1 byte each way that takes p50 {round_trip_p50:.0} µs, \
         p99 {round_trip_p99:.0} µs here, and p50 {one_core_round_trip_p50:.0} µs with both threads pinned \
         to one core, where neither wake-up has to rouse an idle core. Every call passes the circuit breaker; the last row's \
         token also has RPM and TPM limits, so each call takes from both buckets and counts its prompt \
         with the tokenizer: it costs {limiter_p50:+.0} µs at p50 against the unlimited token.\n\n\
         {instructions_text}\n\n\
         ## Streaming, concurrency 1\n\n\
         What BurnCloud adds to a stream's time to first token and to the widest gap between two \
         chunks, against the same mock upstream called directly in its own format. Each conversion \
         forwards a chunk as soon as its source event is complete. Target: ≤ 200 µs added TTFT \
         p99. A Responses API caller in front of a chat upstream is measured against that chat stream \
         called directly. The last row is the floor: the bare proxy adds one HTTP hop and nothing else. \
         All ten kinds of stream take turns, {stream_count} of each; even so, a p99 moves by about 100 µs \
         between runs on this shared machine.\n\n\
         | stream | added TTFT p50 µs | added TTFT p99 µs | added gap p50 µs | added gap p99 µs |\n|---|---|---|---|---|\n\
         {stream_table}\n\n\
         ## Throughput, concurrency 32 ({seconds} s each)\n\n\
         | path | requests/s |\n|---|---|\n| direct to the mock upstream | {direct_rps:.0} |\n| through a bare proxy (axum + hyper, no logic) | {bare_rps:.0} |\n| through BurnCloud | {gateway_rps:.0} |\n\n\
         BurnCloud keeps **{share:.0}%** of the direct throughput (target: ≥ 30%). At concurrency 256: \
         {rps_256:.0} requests/s through BurnCloud against {direct_256:.0} direct.\n\n\
         CPU per call during the run through BurnCloud: the mock upstream (one plain HTTP server hop) \
         used **{upstream_cpu_us:.0} µs**, BurnCloud (a server hop and a client hop, plus routing, \
         pricing and logging) **{gateway_cpu_us:.0} µs**. On this virtual machine most of either is \
         kernel time in socket syscalls and context switches, which is why one extra hop costs about \
         as much as the upstream's whole answer.\n\n\
         ## Against LiteLLM\n\n{litellm_section}\n\n\
         ## Memory and start-up\n\n\
         | measure | value | target |\n|---|---|---|\n\
         | `burncloud serve` resident memory, idle (3 s after the latency and stream runs above) | {idle_rss:.1} MB | ≤ 30 MB |\n\
         | the same, right after those runs | {busy_rss:.1} MB | |\n\
         | `burncloud serve` peak resident memory under concurrency 256 | {peak_rss:.1} MB | ≤ 100 MB |\n\
         | `burncloud serve` from the desktop build, idle (for comparison) | {desktop_build_serve_rss:.1} MB | |\n\
         | desktop app idle, with its webview processes (proportional set size, summed) | {desktop_pss_text} | ≤ 250 MB |\n\
         | the same, resident pages summed per process (shared libraries counted in each) | {desktop_rss_text} | |\n\
         | `burncloud serve` start to `/health` 200, {startup_rows} logged calls in the database (median of 3) | {startup_ms:.0} ms | ≤ 150 ms |\n\
         {upload_row}\n\n\
         The gateway in every section above is {server_build}; the desktop build maps the GTK and \
         WebKit libraries into every process it starts, `serve` included, which is the difference \
         between the first and third rows.\n\n\
         ## Dashboard queries over {startup_rows} logged calls\n\n\
         Calls spread over 30 days (6 models, 20 tokens, 2% errors); each query through the console API \
         on the started server, median of 5 (target: ≤ 50 ms each). Usage totals read the hourly \
         rollup kept by the log writer plus the partial hours at the edges; log pages use the indexes.\n\n\
         | query | ms |\n|---|---|\n\
         {dashboard_rows}\n\n\
         ## Log writer\n\n\
         Rows queued and stored in batched transactions, each with its own request ID as the gateway \
         makes them (target: ≥ 100,000 rows/s): {log_rows} rows into an empty log, \
         **{rows_per_second:.0} rows/s**; the {startup_rows} rows of the start-up section, as the log \
         grows from empty to full, **{fill_rate:.0} rows/s**.\n\n\
         ## Desktop window start\n\n\
         {window_section}\n\n\
         ## Model download, loopback\n\n\
         One {mib:.0} MiB GGUF from the local hub (Hugging Face API shape, 302 to a CDN host), median of \
         five runs each, alternating, each on a settled disk (`sync` first), measured first in the run \
         (alone: `target/release/burncloud-bench --download-only`):\n\n\
         | client | seconds | MiB/s |\n|---|---|---|\n\
         | `curl -L -o FILE` | {curl_seconds:.2} | {curl_rate:.0} |\n\
         | `curl -L -o FILE`, then fsync of FILE | {curl_synced_seconds:.2} | {curl_synced_rate:.0} |\n\
         | BurnCloud download (SHA-256 while streaming, verified, registered) | {download_seconds:.2} | {download_rate:.0} |\n\n\
         BurnCloud reaches **{download_share:.0}%** of curl's rate with hashing on (target: ≥ 90%), and \
         **{download_synced_share:.0}%** of curl's when curl's file is also made durable as BurnCloud's is. \
         This disk's writeback speed varies a lot from run to run, which moves both figures.\n",
        server_build = if options.server_bin.is_some() {
            "the server build (`cargo build --release -p burncloud --no-default-features --features web-ui`, shipped as \
             `burncloud-server-<version>-amd64-linux.tar.gz`): the same code without the window"
        } else {
            "the desktop build (no `--server-bin` was given)"
        },
        date_trimmed = date.trim(),
        machine = machine(),
        calls = options.latency_requests,
        direct_row = row("direct to the mock upstream", direct),
        gateway_row = row("through BurnCloud", through),
        limited_row = row("through BurnCloud, token with RPM and TPM limits", limited_through),
        bare_row = row("through a bare proxy (axum + hyper, no logic)", bare_hop),
        seconds = options.throughput_seconds,
        share = 100.0 * gateway_rps / direct_rps,
        log_rows = options.log_rows,
        startup_rows = options.startup_rows,
        startup_ms = startup_seconds * 1000.0,
        dashboard_rows = dashboard_queries
            .iter()
            .map(|(name, ms)| format!("| {name} | {ms:.1} |"))
            .collect::<Vec<_>>()
            .join("\n"),
        desktop_pss_text = desktop_memory
            .map(|m| format!("{:.0} MB in {} processes", m.pss, m.processes))
            .unwrap_or_else(|| "not measured".into()),
        desktop_rss_text = desktop_memory.map(|m| format!("{:.0} MB", m.rss)).unwrap_or_else(|| "not measured".into()),
        curl_rate = mib / curl_seconds,
        download_rate = mib / download_seconds,
        download_share = 100.0 * curl_seconds / download_seconds,
        curl_synced_rate = mib / curl_synced_seconds,
        download_synced_share = 100.0 * curl_synced_seconds / download_seconds,
    );
    let local = match (std::env::var_os("BURNCLOUD_LLAMA_SERVER"), std::env::var_os("BURNCLOUD_TEST_GGUF")) {
        (Some(llama_server), Some(model)) => {
            let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
            let table =
                local::local_figures(&client, &server_bin, Path::new(&llama_server), Path::new(&model), 20).await?;
            local_section(&table)
        }
        _ => "Not measured: set `BURNCLOUD_LLAMA_SERVER` and `BURNCLOUD_TEST_GGUF` (`./scripts/bench` does).\n".into(),
    };
    let team = {
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        team::team_section(&team::team_figures(&client, &options, &server_bin).await?, &options)
    };
    let report = format!("{report}\n## Local models\n\n{local}\n{team}");
    if let Some(parent) = options.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&options.out, &report)?;
    println!("{report}");
    Ok(())
}

/// The report's local-model section around its table.
fn local_section(table: &str) -> String {
    format!(
        "The tiny test model on the real llama-server, CPU only. Cold start: by hand, start llama-server with the \
         flags BurnCloud passes, poll `/health` every millisecond, then stream a one-token call; through \
         BurnCloud, stream the same call to the stopped deployment, which BurnCloud starts for it (and stops \
         again after each run). Warm: one-token calls, alternating between the two servers (alone: \
         `target/release/burncloud-bench --local-only`). Targets: cold start ≤ 50 ms added; a warm call as \
         for cloud calls.\n\n\
         | local model | llama-server by hand | through BurnCloud | added |\n|---|---|---|---|\n{table}"
    )
}
