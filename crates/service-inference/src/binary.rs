//! Finding llama-server: the path in settings, `BURNCLOUD_LLAMA_SERVER`, a copy bundled next to the
//! `burncloud` executable, then `PATH`; each candidate is checked by running `--version`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use burncloud_service_api::{LlamaServerInfo, ServiceError, ServiceResult};

pub const LLAMA_SERVER_ENV: &str = "BURNCLOUD_LLAMA_SERVER";
pub use burncloud_service_api::LLAMA_SERVER_SETTING;

const EXECUTABLE: &str = if cfg!(windows) { "llama-server.exe" } else { "llama-server" };

/// What to do when no llama-server is found.
pub const HOW_TO_GET_ONE: &str = "llama-server was not found. Download a llama.cpp release for your system from \
     https://github.com/ggml-org/llama.cpp/releases and put llama-server next to burncloud, choose its path in \
     Settings, or set BURNCLOUD_LLAMA_SERVER. Developers: ./scripts/test installs one.";

/// Candidates in the order they are tried.
pub fn candidates(setting: Option<String>) -> Vec<(PathBuf, &'static str)> {
    let mut found = Vec::new();
    if let Some(path) = setting.filter(|p| !p.trim().is_empty()) {
        found.push((PathBuf::from(path.trim()), "settings"));
    }
    if let Some(path) = std::env::var_os(LLAMA_SERVER_ENV).filter(|p| !p.is_empty()) {
        found.push((PathBuf::from(path), "env"));
    }
    if let Some(dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
        found.push((dir.join(EXECUTABLE), "bundled"));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            found.push((dir.join(EXECUTABLE), "path"));
        }
    }
    found
}

/// The first candidate that exists and answers `--version`. Blocks while it runs them.
pub fn locate(setting: Option<String>) -> ServiceResult<LlamaServerInfo> {
    let mut rejected = Vec::new();
    for (path, found_in) in candidates(setting) {
        if !path.is_file() {
            if found_in == "settings" || found_in == "env" {
                rejected.push(format!("{} ({found_in}) does not exist", path.display()));
            }
            continue;
        }
        match version(&path) {
            Ok(version) => {
                return Ok(LlamaServerInfo {
                    path: path.to_string_lossy().into_owned(),
                    version,
                    found_in: found_in.into(),
                })
            }
            Err(reason) => rejected.push(format!("{} ({found_in}): {reason}", path.display())),
        }
    }
    let tried = if rejected.is_empty() { String::new() } else { format!(" Tried: {}.", rejected.join("; ")) };
    Err(ServiceError::Remote { code: "llama_server_missing", message: format!("{HOW_TO_GET_ONE}{tried}") })
}

/// Runs `llama-server --version` (for at most 10 s) and returns its `version: …` line.
fn version(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let mut child = std::process::Command::new(path)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("--version did not answer within 10 s".into());
            }
            Err(error) => return Err(format!("cannot wait for it: {error}")),
        }
    };
    let mut text = String::new();
    for pipe in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read>),
    ]
    .into_iter()
    .flatten()
    {
        let mut part = String::new();
        let mut pipe = pipe;
        let _ = pipe.read_to_string(&mut part);
        text.push_str(&part);
    }
    let output_status = status;
    text.lines()
        .map(str::trim)
        .find(|line| line.starts_with("version:"))
        .map(str::to_string)
        .ok_or_else(|| format!("--version printed no version (exit {output_status}): {}", text.trim()))
}
