//! `burncloud runtime list|install|use`: managing llama.cpp runtimes without a window, on the same
//! data dir the app uses.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use burncloud_server::{AppState, RouterConfig};
use burncloud_service_api::{
    DownloadState, InferenceService, ModelHubService, Runtime, RuntimeInstallRequest, RuntimeVariant,
};

pub enum RuntimeAction {
    List,
    Install { variant: Option<RuntimeVariant>, tag: Option<String> },
    Use { id: String },
}

pub fn run(dir: &Path, action: RuntimeAction) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let state =
            AppState::open(dir, RouterConfig::default()).with_context(|| format!("opening {}", dir.display()))?;
        let outcome = act(&state, action).await;
        state.models.shutdown().await;
        state.inference.shutdown().await;
        outcome
    })
}

async fn act(state: &AppState, action: RuntimeAction) -> anyhow::Result<()> {
    match action {
        RuntimeAction::List => {
            let runtimes = state.inference.list_runtimes()?;
            if runtimes.is_empty() {
                println!("no llama.cpp runtime installed; `burncloud runtime install` installs one");
            }
            for runtime in &runtimes {
                print_runtime(runtime);
            }
            let hardware = state.inference.hardware().await?;
            println!("recommended here: {}", hardware.recommendation);
            Ok(())
        }
        RuntimeAction::Install { variant, tag } => {
            let download = state.inference.install_runtime(RuntimeInstallRequest { variant, tag }).await?;
            eprintln!("downloading {} ({} MB)", download.path, download.bytes_total >> 20);
            let mut last_percent = u64::MAX;
            loop {
                let now = state.models.get_download(download.id)?;
                match now.state {
                    DownloadState::Done => break,
                    DownloadState::Failed => anyhow::bail!(
                        "installing the runtime failed: {}",
                        now.error.unwrap_or_else(|| "no reason given".into())
                    ),
                    DownloadState::Paused => anyhow::bail!("the download was paused"),
                    _ => {}
                }
                let percent = now.bytes_done * 100 / now.bytes_total.max(1);
                if percent != last_percent && percent % 10 == 0 {
                    eprintln!("  {percent}% ({})", now.state.as_str());
                    last_percent = percent;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let active = state.inference.list_runtimes()?.into_iter().find(|r| r.active);
            let active = active.context("the download finished but no runtime is active")?;
            print_runtime(&active);
            Ok(())
        }
        RuntimeAction::Use { id } => {
            let runtime = state.inference.activate_runtime(&id)?;
            print_runtime(&runtime);
            Ok(())
        }
    }
}

fn print_runtime(runtime: &Runtime) {
    let devices: Vec<String> = runtime.devices.iter().map(|d| format!("{} {}", d.name, d.description)).collect();
    println!(
        "{} {}  {}  {}  devices: {}",
        if runtime.active { "*" } else { " " },
        runtime.id,
        runtime.version,
        runtime.server_path,
        if devices.is_empty() { "CPU only".to_string() } else { devices.join(", ") }
    );
}
