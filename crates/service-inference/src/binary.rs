//! Finding llama-server: the path in settings, `BURNCLOUD_LLAMA_SERVER`, the active managed runtime,
//! a copy bundled next to the `burncloud` executable, then `PATH`; each candidate is checked by
//! running `--version`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use burncloud_service_api::{LlamaServerInfo, RemoteFailure, ServiceError, ServiceResult};

pub const LLAMA_SERVER_ENV: &str = "BURNCLOUD_LLAMA_SERVER";
pub use burncloud_service_api::LLAMA_SERVER_SETTING;

pub const EXECUTABLE: &str = if cfg!(windows) { "llama-server.exe" } else { "llama-server" };

/// What to do when no llama-server is found.
pub const HOW_TO_GET_ONE: &str = "llama-server was not found. Install llama.cpp on the Deployments page (one \
     button; `burncloud runtime install` without a window), choose a llama-server in Settings, or set \
     BURNCLOUD_LLAMA_SERVER.";

/// Where to look, in the order tried: the user's choice in settings, `BURNCLOUD_LLAMA_SERVER`
/// (read once at start), the active managed runtime.
#[derive(Clone, Debug, Default)]
pub struct Choices {
    pub setting: Option<String>,
    pub env: Option<PathBuf>,
    pub managed: Option<PathBuf>,
}

/// `BURNCLOUD_LLAMA_SERVER`, if set.
pub fn from_env() -> Option<PathBuf> {
    std::env::var_os(LLAMA_SERVER_ENV).filter(|p| !p.is_empty()).map(PathBuf::from)
}

/// Candidates in the order they are tried.
pub fn candidates(choices: Choices) -> Vec<(PathBuf, &'static str)> {
    let Choices { setting, env, managed } = choices;
    let mut found = Vec::new();
    if let Some(path) = setting.filter(|p| !p.trim().is_empty()) {
        found.push((PathBuf::from(path.trim()), "settings"));
    }
    if let Some(path) = env {
        found.push((path, "env"));
    }
    if let Some(path) = managed {
        found.push((path, "managed"));
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
pub fn locate(choices: Choices) -> ServiceResult<LlamaServerInfo> {
    let mut rejected = Vec::new();
    for (path, found_in) in candidates(choices) {
        if !path.is_file() {
            if matches!(found_in, "settings" | "env" | "managed") {
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
    Err(ServiceError::Remote { code: RemoteFailure::LlamaServerMissing, message: format!("{HOW_TO_GET_ONE}{tried}") })
}

/// Runs `llama-server --version` and returns its `version: …` line.
pub fn version(path: &Path) -> Result<String, String> {
    let (status, text) = run(path, &["--version"], Duration::from_secs(10))?;
    text.lines()
        .map(str::trim)
        .find(|line| line.starts_with("version:"))
        .map(str::to_string)
        .ok_or_else(|| format!("--version printed no version (exit {status}): {}", text.trim()))
}

/// Runs `path args…` for at most `limit`, with no input; returns how it exited and what it printed
/// on stdout and stderr together.
pub fn run(path: &Path, args: &[&str], limit: Duration) -> Result<(String, String), String> {
    use std::io::Read;
    let mut child = std::process::Command::new(path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    // The pipes are drained while it runs: a long `--help` would otherwise fill one and hang.
    let readers: Vec<std::thread::JoinHandle<String>> = [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut pipe| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    })
    .collect();
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} did not answer within {} s", args.join(" "), limit.as_secs()));
            }
            Err(error) => return Err(format!("cannot wait for it: {error}")),
        }
    };
    let text: String = readers.into_iter().filter_map(|reader| reader.join().ok()).collect();
    Ok((status.to_string(), text))
}

/// Whether this llama-server offers `--fit` (fitting unset sizes to device memory).
pub fn supports_fit(path: &Path) -> bool {
    run(path, &["--help"], Duration::from_secs(20)).is_ok_and(|(_, help)| help.contains("--fit"))
}
