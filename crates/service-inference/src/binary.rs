//! Finding llama-server: the path in settings, `BURNCLOUD_LLAMA_SERVER`, a copy bundled next to the
//! `burncloud` executable, then `PATH`; each candidate is checked by running `--version`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use burncloud_service_api::{LlamaServerInfo, ServiceError, ServiceResult};

pub const LLAMA_SERVER_ENV: &str = "BURNCLOUD_LLAMA_SERVER";
/// The settings key holding a path chosen by the user.
pub const LLAMA_SERVER_SETTING: &str = "llama_server_path";

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

/// The first candidate that exists and answers `--version`.
pub async fn locate(setting: Option<String>) -> ServiceResult<LlamaServerInfo> {
    let mut rejected = Vec::new();
    for (path, found_in) in candidates(setting) {
        if !path.is_file() {
            if found_in == "settings" || found_in == "env" {
                rejected.push(format!("{} ({found_in}) does not exist", path.display()));
            }
            continue;
        }
        match version(&path).await {
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

/// Runs `llama-server --version` and returns its `version: …` line.
async fn version(path: &Path) -> Result<String, String> {
    let mut command = tokio::process::Command::new(path);
    command.arg("--version").stdin(std::process::Stdio::null()).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(10), command.output())
        .await
        .map_err(|_| "--version did not answer within 10 s".to_string())?
        .map_err(|e| format!("cannot run it: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    text.lines()
        .map(str::trim)
        .find(|line| line.starts_with("version:"))
        .map(str::to_string)
        .ok_or_else(|| format!("--version printed no version (exit {}): {}", output.status, text.trim()))
}
