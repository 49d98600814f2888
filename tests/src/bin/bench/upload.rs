//! A large transcription upload through BurnCloud: a multipart form with a WAV of `mib` MiB,
//! written to the socket piece by piece, while `serve`'s resident memory is sampled every 5 ms.
//! The upload is spooled to a temporary file, so memory should stay flat whatever its size.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{console, rss_mb, start_serve, tempfile_dir, HttpClient, Options, Server};

/// What one upload came to.
pub(crate) struct UploadFigures {
    pub mib: usize,
    pub seconds: f64,
    pub rss_before_mb: f64,
    pub rss_peak_mb: f64,
}

impl UploadFigures {
    pub(crate) fn row(&self) -> String {
        format!(
            "| `burncloud serve` resident memory growth during a {} MiB transcription upload \
             (`/v1/audio/transcriptions`, {:.1} → {:.1} MB peak, {:.0} MiB/s end to end) | {:.1} MB | < 10 MB |",
            self.mib,
            self.rss_before_mb,
            self.rss_peak_mb,
            self.mib as f64 / self.seconds,
            self.rss_peak_mb - self.rss_before_mb
        )
    }
}

const BOUNDARY: &str = "bench-upload-boundary";

/// Sends a transcription upload of `mib` MiB of WAV to `base` and checks the upstream heard it all.
async fn upload(base: &str, key: &str, mib: usize) -> anyhow::Result<()> {
    let data_len = mib * 1024 * 1024;
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"long.wav\"\r\n\
         Content-Type: audio/wav\r\n\r\n"
    );
    let mut wav = Vec::with_capacity(44);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&((36 + data_len) as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&[1, 0, 1, 0]);
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&32_000u32.to_le_bytes());
    wav.extend_from_slice(&[2, 0, 16, 0]);
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data_len as u32).to_le_bytes());
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let length = head.len() + wav.len() + data_len + tail.len();
    let address = base.strip_prefix("http://").context("a plain-HTTP base")?;
    let mut socket = tokio::net::TcpStream::connect(address).await?;
    let request = format!(
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await?;
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(&wav).await?;
    let piece: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let mut left = data_len;
    while left > 0 {
        let n = left.min(piece.len());
        socket.write_all(&piece[..n]).await?;
        left -= n;
    }
    socket.write_all(tail.as_bytes()).await?;
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await?;
    let expected = format!("transcribed {} bytes of long.wav with whisper-1", wav.len() + data_len);
    if !answer.starts_with("HTTP/1.1 200") || !answer.contains(&expected) {
        bail!("the upload was not heard whole: {}", answer.chars().take(400).collect::<String>());
    }
    Ok(())
}

/// Uploads `mib` MiB through a fresh `serve` (after a 1 MiB warm-up), sampling its memory.
pub(crate) async fn upload_memory(options: &Options, server_bin: &Path, mib: usize) -> anyhow::Result<UploadFigures> {
    let upstream = Server::start(&mut Command::new(options.bin_dir.join("mock-upstream")))?;
    let data_dir = tempfile_dir()?.join("upload");
    let gateway = start_serve(server_bin, &data_dir)?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let channel = json!({"name": "whisper", "kind": "openai", "base_url": format!("{}/v1", upstream.base), "models": ["whisper-1"]});
    console(&client, "POST", &gateway.base, "/console/api/channels", channel).await?;
    let token = console(&client, "POST", &gateway.base, "/console/api/tokens", json!({"name": "upload"})).await?;
    let key = token["key"].as_str().context("no token key")?.to_string();
    // The first upload brings in the spool's code and the blocking threads; memory is then settled.
    upload(&gateway.base, &key, 2).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = gateway.child.id();
    let rss_before_mb = rss_mb(pid)?;
    let peak_kb = Arc::new(AtomicU64::new((rss_before_mb * 1024.0) as u64));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak_kb, done) = (peak_kb.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Ok(rss) = rss_mb(pid) {
                    peak_kb.fetch_max((rss * 1024.0) as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let started = Instant::now();
    let result = upload(&gateway.base, &key, mib).await;
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.await?;
    result?;
    drop(gateway);
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(UploadFigures { mib, seconds, rss_before_mb, rss_peak_mb: peak_kb.load(Ordering::Relaxed) as f64 / 1024.0 })
}
