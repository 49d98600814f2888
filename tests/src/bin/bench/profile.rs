//! `scripts/bench --profile`: where a call's CPU goes inside BurnCloud — `perf record` on the
//! running server build while one caller sends non-streaming chat calls back to back — written
//! to `docs/profile.md`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::{chat_request, machine, send, set_up_gateway, start_serve, tempfile_dir, HttpClient, Options, Server};

const SECONDS: u64 = 10;

/// One line of `perf report`: share of samples, the library (or `[kernel.kallsyms]`), the symbol.
struct Sample {
    percent: f64,
    dso: String,
    symbol: String,
}

fn perf_report(data: &Path, sort: &str, percent_limit: &str) -> anyhow::Result<Vec<Sample>> {
    let output = Command::new("perf")
        .args(["report", "--stdio", "--no-children", "-g", "none", "--sort", sort, "--percent-limit", percent_limit])
        .arg("-i")
        .arg(data)
        .output()
        .context("running perf report")?;
    if !output.status.success() {
        bail!("perf report failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let percent = fields.next()?.strip_suffix('%')?.parse().ok()?;
            let dso = fields.next()?.to_string();
            // `[k] symbol` or `[.] symbol`: drop the marker, and perf's empty trailing columns.
            let symbol = fields
                .skip_while(|word| word.starts_with('[') && word.len() == 3)
                .filter(|word| *word != "-")
                .collect::<Vec<_>>()
                .join(" ");
            Some(Sample { percent, dso, symbol })
        })
        .collect())
}

/// The part of the work a symbol belongs to — by crate for Rust code — so the report reads as a
/// budget.
fn area(sample: &Sample) -> String {
    let symbol = sample.symbol.trim_start_matches('<').trim_start_matches("&mut ").trim_start_matches('&');
    if sample.dso.contains("kernel") {
        return "kernel (TCP, wake-ups, context switches, syscalls)".into();
    }
    if sample.dso.starts_with("libc") || sample.dso.starts_with("libm") || sample.dso.contains("vdso") {
        return "libc (malloc/free, memcpy, clock)".into();
    }
    // The only C code linked into the binary itself is SQLite's.
    if symbol.starts_with("sqlite3")
        || (sample.dso == "burncloud" && !symbol.contains("::") && !symbol.starts_with("0x"))
    {
        return "SQLite (the log writer)".into();
    }
    match symbol.split("::").next() {
        Some(krate) if krate.starts_with("burncloud") => format!("BurnCloud: `{krate}`"),
        Some(
            "hyper" | "hyper_util" | "http" | "http_body" | "http_body_util" | "httparse" | "reqwest" | "axum" | "h2",
        ) => "HTTP stack (hyper, reqwest, axum)".into(),
        Some("tokio" | "mio") => "async runtime (tokio)".into(),
        Some("serde_json" | "serde") => "JSON (serde_json)".into(),
        Some("core" | "alloc" | "std") => "Rust standard library".into(),
        Some(krate) if !krate.contains(' ') && !krate.starts_with("0x") => format!("other crates (`{krate}` …)"),
        _ => "unresolved".into(),
    }
}

pub async fn profile(options: &Options, server_bin: &Path) -> anyhow::Result<()> {
    let upstream = Server::start(Command::new(options.bin_dir.join("mock-upstream")).env("MOCK_THREADS", "1"))?;
    let data_dir = tempfile_dir()?.join("profile");
    let gateway = start_serve(server_bin, &data_dir)?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let key = set_up_gateway(&client, &gateway, &upstream, 1, "profile").await?;
    let url = format!("{}/v1/chat/completions", gateway.base);
    for _ in 0..2000 {
        send(&client, &url, Some(&key), chat_request()).await?;
    }
    let data = data_dir.parent().context("no temp dir")?.join("perf.data");
    let mut perf = Command::new("perf")
        .args(["record", "-F", "4999", "-o"])
        .arg(&data)
        .args(["-p", &gateway.child.id().to_string(), "--", "sleep", &SECONDS.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting perf record (is perf installed?)")?;
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < Duration::from_secs(SECONDS) {
        send(&client, &url, Some(&key), chat_request()).await?;
        calls += 1;
    }
    if !perf.wait()?.success() {
        bail!("perf record failed");
    }
    let every_symbol = perf_report(&data, "dso,symbol", "0")?;
    let mut areas: BTreeMap<String, f64> = BTreeMap::new();
    for sample in &every_symbol {
        *areas.entry(area(sample)).or_default() += sample.percent;
    }
    let mut areas: Vec<(String, f64)> = areas.into_iter().filter(|(_, percent)| *percent >= 0.1).collect();
    areas.sort_by(|a, b| b.1.total_cmp(&a.1));
    let date = String::from_utf8(Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC").output()?.stdout)?;
    let report = format!(
        "# Where a call's CPU goes\n\n\
         Measured by `./scripts/bench --profile` on {date}, {machine}: `perf record -F 4999` on the running \
         server build while one caller sends non-streaming chat calls back to back ({calls} calls in \
         {SECONDS} s) through it to the local mock upstream. Shares are of the BurnCloud process's CPU \
         samples (areas under 0.1% are left out).\n\n\
         ## By area\n\n| area | share of samples |\n|---|---|\n{area_rows}\n\n\
         ## Hottest symbols\n\n| share | library | symbol |\n|---|---|---|\n{symbol_rows}\n",
        date = date.trim(),
        machine = machine(),
        area_rows =
            areas.iter().map(|(area, percent)| format!("| {area} | {percent:.1}% |")).collect::<Vec<_>>().join("\n"),
        symbol_rows = every_symbol
            .iter()
            .take(30)
            .map(|s| format!(
                "| {:.1}% | {} | `{}` |",
                s.percent,
                s.dso,
                s.symbol.chars().take(110).collect::<String>().replace('|', "\\|")
            ))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    if let Some(parent) = options.profile_out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&options.profile_out, &report)?;
    println!("{report}");
    drop(gateway);
    drop(upstream);
    let _ = std::fs::remove_dir_all(data_dir.parent().unwrap_or(Path::new("/nonexistent")));
    Ok(())
}
