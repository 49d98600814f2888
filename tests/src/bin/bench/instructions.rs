//! Instructions per call, counted by valgrind's callgrind: a figure that does not move with this
//! shared machine's noise, for BurnCloud and for the bare proxy in front of the same mock upstream.
//! Each is run twice under callgrind, with a short and a long series of sequential calls; the
//! difference divided by the extra calls leaves out start-up, set-up and warm-up.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::{chat_request, send, serve_command, set_up_gateway, tempfile_dir, HttpClient, Options, Server};

/// Calls in the short and the long series.
const SHORT_SERIES: usize = 200;
const LONG_SERIES: usize = 1_200;
/// Calls made before either series, so that valgrind has translated the hot path.
const WARM_UP_CALLS: usize = 100;

pub struct InstructionCounts {
    /// Everything the BurnCloud process runs per call, its log writer included.
    pub burncloud: f64,
    pub bare_proxy: f64,
}

/// Instructions per call for BurnCloud and the bare proxy, or why they could not be counted.
pub async fn per_call(options: &Options, server_bin: &Path) -> anyhow::Result<Result<InstructionCounts, String>> {
    if Command::new("valgrind").arg("--version").output().is_err() {
        return Ok(Err("valgrind is not installed".into()));
    }
    let burncloud = difference(options, Target::BurnCloud(server_bin.to_path_buf())).await?;
    let bare_proxy = difference(options, Target::BareProxy).await?;
    Ok(Ok(InstructionCounts { burncloud, bare_proxy }))
}

enum Target {
    BurnCloud(PathBuf),
    BareProxy,
}

async fn difference(options: &Options, target: Target) -> anyhow::Result<f64> {
    let short = count(options, &target, SHORT_SERIES).await?;
    let long = count(options, &target, LONG_SERIES).await?;
    Ok((long as f64 - short as f64) / (LONG_SERIES - SHORT_SERIES) as f64)
}

/// Total instructions the target ran, from start to a clean exit, having served `calls` calls
/// after the warm-up.
async fn count(options: &Options, target: &Target, calls: usize) -> anyhow::Result<u64> {
    let scratch = tempfile_dir()?;
    let out_file = scratch.join("callgrind.out");
    let upstream = Server::start(Command::new(options.bin_dir.join("mock-upstream")).env("MOCK_THREADS", "1"))?;
    let mut valgrind = Command::new("valgrind");
    valgrind.arg("--tool=callgrind").arg(format!("--callgrind-out-file={}", out_file.display()));
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let (mut server, url, key) = match target {
        Target::BurnCloud(binary) => {
            let command = serve_command(valgrind.arg(binary), &scratch.join("data"));
            let server = Server::start(command)?;
            let key = set_up_gateway(&client, &server, &upstream, 1, "instructions").await?;
            let url = format!("{}/v1/chat/completions", server.base);
            (server, url, Some(key))
        }
        Target::BareProxy => {
            let command = valgrind.arg(options.bin_dir.join("bare-proxy")).arg("--upstream").arg(&upstream.base);
            let server = Server::start(command)?;
            let url = format!("{}/v1/chat/completions", server.base);
            (server, url, None)
        }
    };
    let body = chat_request();
    for _ in 0..WARM_UP_CALLS + calls {
        send(&client, &url, key.as_deref(), body.clone()).await?;
    }
    drop(client);
    stop(&mut server)?;
    let total = callgrind_total(&out_file)?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(total)
}

/// SIGTERM, so that the target exits as it would (BurnCloud stores its log) and callgrind writes
/// its counts; a SIGKILL would leave no file.
fn stop(server: &mut Server) -> anyhow::Result<()> {
    let status = Command::new("kill").arg("-TERM").arg(server.child.id().to_string()).status()?;
    if !status.success() {
        bail!("could not signal the process under callgrind");
    }
    server.child.wait()?;
    Ok(())
}

/// The `summary:` (or `totals:`) line of a callgrind output file: instructions executed.
fn callgrind_total(file: &Path) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    text.lines()
        .find_map(|line| line.strip_prefix("summary:").or_else(|| line.strip_prefix("totals:")))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("{} has no instruction total", file.display()))
}
