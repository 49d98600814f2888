//! Local inference: one supervised llama-server per deployed local model. An instance is ready
//! only when its `/health` answers 200; then a `local` channel routes the gateway to it, and that
//! channel is removed before the process is stopped. Crashes restart it with backoff; no process
//! outlives the app. Deployments load when a call names them and unload when idle (`residency`).
//! The llama-server comes from a managed llama.cpp runtime that BurnCloud installs for the
//! detected hardware, unless the user names one.

mod binary;
pub mod hardware;
mod process;
mod residency;
pub mod runtime;
mod unpack;

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use burncloud_database::repo::instances::{self, InstanceRow};
use burncloud_database::{now_ms, Db};
use burncloud_service_api::{
    ChannelInput, ChannelKind, ChannelService, Download, Hardware, HubSource, InferenceService, Instance,
    InstanceInput, InstanceKind, InstancePatch, InstanceState, LlamaServerInfo, LocalModel, LocalModelService,
    MemoryBudget, MemoryProbe, ModelHubService, ModelUsage, RemoteFailure, Runtime, RuntimeInstallRequest, Secret,
    ServiceError, ServiceFuture, ServiceResult, SettingsService, UrlDownloadRequest, DEFAULT_IDLE_TTL_S,
    LLAMACPP_MIRROR_SETTING,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

pub use binary::{candidates, locate, Choices, HOW_TO_GET_ONE, LLAMA_SERVER_ENV, LLAMA_SERVER_SETTING};
pub use process::stop_leftovers;
pub use runtime::{RuntimeFinisher, Runtimes, DEFAULT_RELEASES_URL, LLAMACPP_RELEASES_ENV};

const LOG_LINES_KEPT: usize = 1000;
/// The folder beside the executable where installers put llama.cpp archives.
pub const BUNDLED_RUNTIMES_DIR: &str = "llama-cpp";
/// `n_gpu_layers` that leaves the choice to llama-server's `--fit`.
pub const AUTO_GPU_LAYERS: i32 = -1;
/// How long a probed memory budget is reused.
const BUDGET_FRESH: Duration = Duration::from_secs(5);
/// How often `/health` is asked while a model loads: often at first, since a small model is ready
/// in tens of milliseconds and a caller may be waiting on it, then less.
const HEALTH_POLL_FIRST: Duration = Duration::from_millis(5);
const HEALTH_POLL: Duration = Duration::from_millis(100);
/// How long the first, frequent polling lasts.
const HEALTH_POLL_FIRST_FOR: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
pub struct InferenceConfig {
    /// Logs go to `<data_dir>/logs`, pid files to `<data_dir>/run`.
    pub data_dir: PathBuf,
    /// How long a start may take: this, plus `ready_wait_per_gb` for each GB of model.
    pub ready_wait: Duration,
    pub ready_wait_per_gb: Duration,
    /// Crash restarts while ready before the instance is marked failed.
    pub max_restarts: u32,
    /// The first restart's delay; each next one doubles it.
    pub restart_backoff: Duration,
    /// Where llama.cpp's release list is read (`BURNCLOUD_LLAMACPP_RELEASES`, else GitHub's API).
    pub releases_url: String,
    /// `BURNCLOUD_LLAMA_SERVER`: a llama-server that wins over the managed runtime.
    pub llama_server_env: Option<PathBuf>,
    /// Where an installer put llama.cpp archives to install as runtimes at first start:
    /// `llama-cpp` beside the executable.
    pub bundled_runtimes: Option<PathBuf>,
}

impl InferenceConfig {
    pub fn new(data_dir: &Path) -> InferenceConfig {
        InferenceConfig {
            data_dir: data_dir.to_path_buf(),
            ready_wait: Duration::from_secs(60),
            ready_wait_per_gb: Duration::from_secs(30),
            max_restarts: 3,
            restart_backoff: Duration::from_secs(1),
            releases_url: std::env::var(LLAMACPP_RELEASES_ENV)
                .ok()
                .map(|url| url.trim().to_string())
                .filter(|url| !url.is_empty())
                .unwrap_or_else(|| DEFAULT_RELEASES_URL.to_string()),
            llama_server_env: binary::from_env(),
            bundled_runtimes: std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|dir| dir.join(BUNDLED_RUNTIMES_DIR))),
        }
    }

    /// Installed llama.cpp builds live in `<data_dir>/runtimes/<id>`.
    pub fn runtimes_dir(&self) -> PathBuf {
        self.data_dir.join("runtimes")
    }

    fn run_dir(&self) -> PathBuf {
        self.data_dir.join("run")
    }

    fn log_file(&self, id: i64) -> PathBuf {
        self.data_dir.join("logs").join(format!("instance-{id}.log"))
    }
}

/// What is known about a supervised process right now.
#[derive(Clone, Debug)]
struct Status {
    state: InstanceState,
    port: Option<u16>,
    pid: Option<u32>,
    error: Option<String>,
    started_at_ms: Option<i64>,
    restarts: u32,
    channel_id: Option<i64>,
}

/// One instance's supervision: its status, its recent output, and the way to stop it.
struct Supervised {
    model_id: i64,
    /// What it holds in memory while live, from the model's estimate.
    estimated_bytes: u64,
    /// Told of every change of status, for calls waiting on one.
    changes: Arc<watch::Sender<u64>>,
    /// The llama-server it runs, once found.
    binary: Mutex<Option<PathBuf>>,
    status: Mutex<Status>,
    logs: Mutex<VecDeque<String>>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Supervised {
    fn update(&self, change: impl FnOnce(&mut Status)) {
        change(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
        self.changes.send_modify(|version| *version += 1);
    }

    fn status(&self) -> Status {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn last_lines(&self, count: usize) -> Vec<String> {
        let logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        logs.iter().skip(logs.len().saturating_sub(count)).cloned().collect()
    }
}

/// The inference service.
pub struct Inference {
    db: Arc<Db>,
    channels: Arc<dyn ChannelService>,
    models: Arc<dyn LocalModelService>,
    downloads: Arc<dyn ModelHubService>,
    settings: Arc<dyn SettingsService>,
    config: InferenceConfig,
    runtime: tokio::runtime::Handle,
    http: reqwest::Client,
    /// For the release list: no overall timeout, a user agent (GitHub's API requires one).
    releases_http: reqwest::Client,
    runtimes: Arc<Runtimes>,
    /// The last memory budget and when it was probed.
    budget: Mutex<Option<(std::time::Instant, MemoryBudget)>>,
    live: Mutex<HashMap<i64, Arc<Supervised>>>,
    /// Each deployment's calls in flight, last use, idle TTL and pin, across its runs.
    activity: Mutex<HashMap<i64, Arc<residency::Activity>>>,
    /// Deployments by the model name calls use.
    names: residency::Names,
    /// Bumped on every change of an instance's status and at the end of every local call.
    changes: Arc<watch::Sender<u64>>,
    /// Starts on demand, one at a time, so that two never count the same free memory.
    waking: tokio::sync::Mutex<()>,
    /// The task that unloads idle deployments.
    idle_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Every task the service starts (supervisions, their log readers, unloads); `shutdown`
    /// waits for them.
    tasks: TaskTracker,
    this: Weak<Inference>,
}

impl Inference {
    /// Starts the service in the current Tokio runtime: stops llama-servers a killed run left
    /// behind and removes their channels. Every instance starts out stopped.
    pub fn start(
        db: Arc<Db>,
        channels: Arc<dyn ChannelService>,
        models: Arc<dyn LocalModelService>,
        downloads: Arc<dyn ModelHubService>,
        settings: Arc<dyn SettingsService>,
        config: InferenceConfig,
    ) -> ServiceResult<Arc<Inference>> {
        let leftovers = process::stop_leftovers(&config.run_dir());
        if leftovers > 0 {
            tracing::warn!(leftovers, "stopped llama-server processes left by a previous run");
        }
        for channel in channels.list_channels()? {
            if channel.kind == ChannelKind::Local {
                channels.delete_channel(channel.id)?;
            }
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| ServiceError::Storage(format!("cannot build the HTTP client: {e}")))?;
        let releases_http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("burncloud/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ServiceError::Storage(format!("cannot build the HTTP client: {e}")))?;
        let runtimes = Arc::new(Runtimes::new(config.runtimes_dir(), settings.clone()));
        runtimes.remove_leftovers();
        if let Some(folder) = config.bundled_runtimes.clone().filter(|folder| folder.is_dir()) {
            // Unpacking takes a few seconds: the app starts meanwhile.
            let importer = runtimes.clone();
            tokio::task::spawn_blocking(move || {
                for outcome in importer.import_bundled(&folder) {
                    match outcome {
                        Ok(runtime) => {
                            tracing::info!(runtime = %runtime.id, active = runtime.active, "installed the bundled llama.cpp runtime")
                        }
                        Err(reason) => tracing::warn!(%reason, "a bundled llama.cpp runtime was not installed"),
                    }
                }
            });
        }
        let rows = db.read(instances::list)?;
        let service = Arc::new_cyclic(|this| Inference {
            db,
            channels,
            models,
            downloads,
            settings,
            config,
            runtime: tokio::runtime::Handle::current(),
            http,
            releases_http,
            runtimes,
            budget: Mutex::new(None),
            live: Mutex::new(HashMap::new()),
            activity: Mutex::new(HashMap::new()),
            names: residency::Names::default(),
            changes: Arc::new(watch::channel(0).0),
            waking: tokio::sync::Mutex::new(()),
            idle_task: Mutex::new(None),
            tasks: TaskTracker::new(),
            this: this.clone(),
        });
        for row in &rows {
            service.track(row);
        }
        let idle = service.tasks.spawn_on(Inference::unload_idle(Arc::downgrade(&service)), &service.runtime);
        *service.idle_task.lock().unwrap_or_else(|p| p.into_inner()) = Some(idle);
        Ok(service)
    }

    /// Stops every instance (channels first); used when the app exits.
    pub async fn shutdown(&self) {
        if let Some(idle) = self.idle_task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            idle.abort();
        }
        let ids: Vec<i64> = self.live.lock().unwrap_or_else(|p| p.into_inner()).keys().copied().collect();
        for id in ids {
            self.stop_and_wait(id).await;
        }
        // What is left ends with the processes: their log readers, and unloads in progress.
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(5), self.tasks.wait()).await.is_err() {
            tracing::warn!(tasks = self.tasks.len(), "inference tasks still running at shutdown");
        }
    }

    fn setting(&self) -> Option<String> {
        self.settings.get_setting(LLAMA_SERVER_SETTING).ok().flatten()
    }

    /// The installed runtimes; the model hub hands finished runtime downloads to them.
    pub fn runtimes(&self) -> Arc<Runtimes> {
        self.runtimes.clone()
    }

    fn choices(&self) -> Choices {
        Choices {
            setting: self.setting(),
            env: self.config.llama_server_env.clone(),
            managed: self.runtimes.active_server(),
        }
    }

    fn locate(&self) -> ServiceResult<LlamaServerInfo> {
        binary::locate(self.choices())
    }

    /// Picks the release asset for this machine and queues its verified download.
    async fn queue_runtime(&self, request: RuntimeInstallRequest) -> ServiceResult<Download> {
        let gpus_probe = tokio::task::spawn_blocking(|| hardware::probe(None));
        let hardware =
            gpus_probe.await.map_err(|e| ServiceError::Storage(format!("the hardware probe failed: {e}")))?;
        let variant = request.variant.unwrap_or(hardware.recommended_variant);
        let cuda_driver = hardware.gpus.iter().find_map(|gpu| gpu.cuda_driver.clone());
        let tag = request.tag.as_deref().map(str::trim).filter(|t| !t.is_empty());
        if let Some(tag) = tag {
            runtime::check_id(tag)?;
        }
        let releases = runtime::fetch_releases(&self.releases_http, &self.config.releases_url, tag).await?;
        let platform = runtime::Platform::current();
        let mut reasons = Vec::new();
        let chosen = releases.iter().filter(|r| !r.draft).find_map(|release| {
            match runtime::pick_assets(release, platform, variant, cuda_driver.as_deref()) {
                Ok(assets) => Some((release.tag_name.clone(), assets)),
                Err(reason) => {
                    reasons.push(reason);
                    None
                }
            }
        });
        let Some((tag, assets)) = chosen else {
            return Err(ServiceError::Remote {
                code: RemoteFailure::RuntimeNotFound,
                message: format!(
                    "no llama.cpp release offers a {} build for this machine: {}",
                    variant.as_str(),
                    reasons.first().cloned().unwrap_or_else(|| "the release list is empty".into())
                ),
            });
        };
        let prefix = self.settings.get_setting(LLAMACPP_MIRROR_SETTING).ok().flatten().unwrap_or_default();
        let files = runtime::url_files(&assets, &prefix)
            .map_err(|message| ServiceError::Remote { code: RemoteFailure::RuntimeUnverifiable, message })?;
        self.downloads.start_url_download(UrlDownloadRequest { source: HubSource::LlamaCpp, label: tag, files })
    }

    /// Whether a running instance uses a llama-server inside `folder`.
    fn runs_from(&self, folder: &Path) -> bool {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).values().any(|s| {
            s.status().state.is_live()
                && s.binary.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|b| b.starts_with(folder))
        })
    }

    fn row(&self, id: i64) -> ServiceResult<InstanceRow> {
        self.db.read(|c| instances::get(c, id))?.ok_or_else(|| ServiceError::NotFound(format!("no instance {id}")))
    }

    fn to_instance(&self, row: InstanceRow) -> Instance {
        let supervised = self.live.lock().unwrap_or_else(|p| p.into_inner()).get(&row.id).cloned();
        let status = supervised.map(|s| s.status()).unwrap_or(Status {
            state: InstanceState::Stopped,
            port: None,
            pid: None,
            error: None,
            started_at_ms: None,
            restarts: 0,
            channel_id: None,
        });
        let model = self.models.get_local_model(row.model_id).ok();
        let estimated_bytes = model.as_ref().map(|model| needed_bytes(&row, model));
        let model_path = model.map(|m| m.path).unwrap_or_default();
        let activity = self.activity(row.id);
        let kind = kind_of(&row);
        Instance {
            id: row.id,
            model_id: row.model_id,
            alias: row.alias,
            model_path,
            port: status.port,
            pid: status.pid,
            state: status.state,
            error: status.error,
            started_at_ms: status.started_at_ms,
            ctx_size: row.ctx_size,
            n_gpu_layers: row.n_gpu_layers,
            parallel: row.parallel,
            restarts: status.restarts,
            channel_id: status.channel_id,
            kind,
            mmproj_path: row.mmproj_path,
            idle_ttl_s: activity.as_ref().map_or(row.idle_ttl_s, |a| a.idle_ttl_s.load(Ordering::Relaxed)),
            pinned: activity.as_ref().map_or(row.pinned, |a| a.pinned.load(Ordering::Relaxed)),
            last_used_at: activity.as_ref().and_then(|a| a.last_used()),
            in_flight: activity.as_ref().map_or(0, |a| a.in_flight.load(Ordering::Relaxed)),
            estimated_bytes,
        }
    }

    /// Starts supervising `row` (after any earlier supervision of it has ended).
    fn launch(&self, row: InstanceRow) -> ServiceResult<()> {
        let model = self.models.get_local_model(row.model_id)?;
        let (stop, stopped) = watch::channel(false);
        let supervised = Arc::new(Supervised {
            model_id: row.model_id,
            estimated_bytes: needed_bytes(&row, &model),
            changes: self.changes.clone(),
            binary: Mutex::new(None),
            status: Mutex::new(Status {
                state: InstanceState::Starting,
                port: None,
                pid: None,
                error: None,
                started_at_ms: Some(now_ms()),
                restarts: 0,
                channel_id: None,
            }),
            logs: Mutex::new(VecDeque::new()),
            stop,
            task: Mutex::new(None),
        });
        self.live.lock().unwrap_or_else(|p| p.into_inner()).insert(row.id, supervised.clone());
        self.announce();
        let Some(service) = self.this.upgrade() else { return Ok(()) };
        let supervision = {
            let supervised = supervised.clone();
            async move { service.supervise(row, model, supervised, stopped).await }
        };
        let task = self.tasks.spawn_on(supervision, &self.runtime);
        *supervised.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(())
    }

    /// Asks the instance's supervision to stop and waits until the process is gone.
    async fn stop_and_wait(&self, id: i64) {
        let supervised = self.live.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned();
        let Some(supervised) = supervised else { return };
        let _ = supervised.stop.send(true);
        let task = supervised.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    async fn supervise(
        self: Arc<Self>,
        row: InstanceRow,
        model: LocalModel,
        supervised: Arc<Supervised>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let choices = self.choices();
        let located = tokio::task::spawn_blocking(move || binary::locate(choices))
            .await
            .unwrap_or_else(|e| Err(ServiceError::Storage(format!("looking for llama-server failed: {e}"))));
        let binary = match located {
            Ok(info) => {
                let path = PathBuf::from(info.path);
                *supervised.binary.lock().unwrap_or_else(|p| p.into_inner()) = Some(path.clone());
                path
            }
            Err(error) => {
                supervised.update(|s| {
                    s.state = InstanceState::Failed;
                    s.error = Some(error.to_string());
                });
                return;
            }
        };
        let ready_wait =
            self.config.ready_wait + self.config.ready_wait_per_gb.mul_f64(model.size as f64 / 1_000_000_000.0);
        let mut crashes = 0u32;
        let mut port_tries = 0u32;
        loop {
            let outcome = self.run_once(&row, &model, &binary, &supervised, &mut stopped, ready_wait).await;
            match outcome {
                RunOutcome::PortTaken(message) => {
                    port_tries += 1;
                    if port_tries >= PORT_TRIES {
                        supervised.update(|s| {
                            s.state = InstanceState::Failed;
                            s.error = Some(format!("no free port after {PORT_TRIES} tries: {message}"));
                            s.pid = None;
                        });
                        return;
                    }
                    tracing::warn!(instance = row.id, %message, "the port was taken; starting again on another");
                }
                RunOutcome::Stopped => {
                    supervised.update(|s| {
                        s.state = InstanceState::Stopped;
                        s.pid = None;
                        s.port = None;
                    });
                    return;
                }
                RunOutcome::Failed(message) => {
                    supervised.update(|s| {
                        s.state = InstanceState::Failed;
                        s.error = Some(message);
                        s.pid = None;
                    });
                    return;
                }
                RunOutcome::Crashed(message) => {
                    crashes += 1;
                    if crashes > self.config.max_restarts {
                        supervised.update(|s| {
                            s.state = InstanceState::Failed;
                            s.error = Some(format!("crashed {crashes} times; giving up. Last: {message}"));
                            s.pid = None;
                        });
                        return;
                    }
                    let delay = self.config.restart_backoff * 2u32.saturating_pow(crashes - 1);
                    tracing::warn!(instance = row.id, %message, ?delay, "llama-server crashed; restarting");
                    supervised.update(|s| {
                        s.state = InstanceState::Starting;
                        s.error = Some(format!("restarting after a crash: {message}"));
                        s.restarts = crashes;
                        s.pid = None;
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {},
                        _ = stopped.changed() => {
                            supervised.update(|s| { s.state = InstanceState::Stopped; s.port = None; });
                            return;
                        }
                    }
                }
            }
        }
    }

    /// One life of the process: start, wait for health, serve until it exits or is stopped.
    async fn run_once(
        &self,
        row: &InstanceRow,
        model: &LocalModel,
        binary: &Path,
        supervised: &Arc<Supervised>,
        stopped: &mut watch::Receiver<bool>,
        ready_wait: Duration,
    ) -> RunOutcome {
        if *stopped.borrow() {
            return RunOutcome::Stopped;
        }
        let port = match free_port() {
            Ok(port) => port,
            Err(error) => return RunOutcome::Failed(format!("no free local port: {error}")),
        };
        let key = random_key();
        let mut command = tokio::process::Command::new(binary);
        command
            .arg("-m")
            .arg(&model.path)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", &row.ctx_size.to_string()])
            .args(["-np", &row.parallel.to_string(), "--alias", &row.alias, "--api-key", &key, "--metrics"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if row.n_gpu_layers != AUTO_GPU_LAYERS {
            command.args(["-ngl", &row.n_gpu_layers.to_string()]);
        }
        command.args(kind_args(row));
        process::isolate(&mut command);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => return RunOutcome::Failed(format!("cannot start {}: {error}", binary.display())),
        };
        let _guard = match process::guard(&child) {
            Ok(guard) => guard,
            Err(error) => {
                process::terminate(&mut child).await;
                return RunOutcome::Failed(format!("cannot tie llama-server to the app: {error}"));
            }
        };
        let pid = child.id();
        if let Some(pid) = pid {
            process::write_pid_file(&self.config.run_dir(), row.id, pid);
        }
        self.pump_output(row.id, &mut child, supervised);
        supervised.update(|s| {
            s.state = InstanceState::Starting;
            s.port = Some(port);
            s.pid = pid;
            s.started_at_ms = Some(now_ms());
            s.channel_id = None;
        });
        let pid_file = process::pid_file(&self.config.run_dir(), row.id);

        let health = format!("http://127.0.0.1:{port}/health");
        let ready = tokio::select! {
            status = child.wait() => {
                let _ = std::fs::remove_file(&pid_file);
                // Give the output pumps a moment to take in the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let code = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                let last_words = supervised.last_lines(6).join(" | ");
                let message = format!("llama-server exited ({code}) before it was ready: {last_words}");
                // Another program took the port between our pick and llama-server's bind.
                if last_words.contains(PORT_TAKEN) {
                    return RunOutcome::PortTaken(message);
                }
                return RunOutcome::Failed(message);
            }
            ready = self.wait_healthy(&health, ready_wait, supervised) => ready,
            _ = stopped.changed() => false,
        };
        if !ready {
            let stop_requested = *stopped.borrow();
            supervised.update(|s| s.state = InstanceState::Stopping);
            process::terminate(&mut child).await;
            let _ = std::fs::remove_file(&pid_file);
            return if stop_requested {
                RunOutcome::Stopped
            } else {
                RunOutcome::Failed(format!("llama-server was not ready after {} s", ready_wait.as_secs()))
            };
        }

        let channel = self.channels.create_channel(ChannelInput {
            name: format!("local: {}", row.alias),
            kind: ChannelKind::Local,
            base_url: Some(format!("http://127.0.0.1:{port}/v1")),
            api_key: Secret::new(key),
            models: vec![row.alias.clone()],
            model_mapping: Default::default(),
            priority: 0,
            weight: 1,
            enabled: true,
            native_responses: false,
        });
        let channel_id = match channel {
            Ok(channel) => channel.id,
            Err(error) => {
                process::terminate(&mut child).await;
                let _ = std::fs::remove_file(&pid_file);
                return RunOutcome::Failed(format!("cannot register the instance with the gateway: {error}"));
            }
        };
        if let Some(activity) = self.activity(row.id) {
            activity.touch();
        }
        supervised.update(|s| {
            s.state = InstanceState::Ready;
            s.channel_id = Some(channel_id);
            s.error = None;
        });
        tracing::info!(instance = row.id, alias = %row.alias, port, "local model ready");

        let exit = tokio::select! {
            status = child.wait() => Some(status),
            _ = stopped.changed() => None,
        };
        // No longer ready before the route goes, so that no call is handed a model without a
        // route: a call arriving now waits for the restart (after a crash) or for the stop.
        let leaving = if exit.is_some() { InstanceState::Starting } else { InstanceState::Stopping };
        supervised.update(|s| s.state = leaving);
        // The route goes before the process, so no call is sent to a server that is going away.
        if let Err(error) = self.channels.delete_channel(channel_id) {
            tracing::error!(%error, channel_id, "cannot remove the local channel");
        }
        supervised.update(|s| s.channel_id = None);
        match exit {
            None => {
                supervised.update(|s| s.state = InstanceState::Stopping);
                process::terminate(&mut child).await;
                let _ = std::fs::remove_file(&pid_file);
                RunOutcome::Stopped
            }
            Some(status) => {
                let _ = std::fs::remove_file(&pid_file);
                tokio::time::sleep(Duration::from_millis(100)).await;
                let code = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                RunOutcome::Crashed(format!("exited ({code}): {}", supervised.last_lines(3).join(" | ")))
            }
        }
    }

    /// True once `/health` answers 200 within `limit`; `loading` while it answers 503.
    async fn wait_healthy(&self, url: &str, limit: Duration, supervised: &Supervised) -> bool {
        let started = tokio::time::Instant::now();
        let deadline = started + limit;
        while tokio::time::Instant::now() < deadline {
            if let Ok(response) = self.http.get(url).send().await {
                match response.status() {
                    reqwest::StatusCode::OK => return true,
                    reqwest::StatusCode::SERVICE_UNAVAILABLE
                        if supervised.status().state == InstanceState::Starting =>
                    {
                        supervised.update(|s| s.state = InstanceState::Loading)
                    }
                    _ => {}
                }
            }
            let pause = if started.elapsed() < HEALTH_POLL_FIRST_FOR { HEALTH_POLL_FIRST } else { HEALTH_POLL };
            tokio::time::sleep(pause).await;
        }
        false
    }

    /// Copies the child's stdout and stderr, line by line, into the ring buffer and the log file.
    fn pump_output(&self, id: i64, child: &mut tokio::process::Child, supervised: &Arc<Supervised>) {
        let log_path = self.config.log_file(id);
        let file = log_path
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| std::fs::OpenOptions::new().create(true).append(true).open(&log_path));
        let file = match file {
            Ok(file) => Some(Arc::new(Mutex::new(file))),
            Err(error) => {
                tracing::warn!(%error, path = %log_path.display(), "cannot open the instance log file");
                None
            }
        };
        let stdout = child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
        let stderr = child.stderr.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
        for stream in [stdout, stderr].into_iter().flatten() {
            let supervised = supervised.clone();
            let file = file.clone();
            let reading = async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(file) = &file {
                        let _ = writeln!(file.lock().unwrap_or_else(|p| p.into_inner()), "{line}");
                    }
                    let mut logs = supervised.logs.lock().unwrap_or_else(|p| p.into_inner());
                    if logs.len() >= LOG_LINES_KEPT {
                        logs.pop_front();
                    }
                    logs.push_back(line);
                }
            };
            self.tasks.spawn_on(reading, &self.runtime);
        }
    }

    fn check_input(&self, input: &InstanceInput) -> ServiceResult<(LocalModel, InstanceRow)> {
        let model = self.models.get_local_model(input.model_id)?;
        let alias = match input.alias.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            Some(alias) => alias.to_string(),
            None => default_alias(&model.path),
        };
        if alias.len() > 128 || alias.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ServiceError::invalid("alias: up to 128 characters, no spaces"));
        }
        // Unset sizes come from the model's estimate and this machine's memory; GPU layers are
        // left to llama-server's own `--fit` where the runtime has it.
        let budget = self.memory_budget();
        let proposal = model.estimate.as_ref().map(|estimate| estimate.proposal(&budget));
        let ctx_size = input.ctx_size.unwrap_or_else(|| proposal.map_or(4096, |(context, _)| context as u32));
        if !(128..=1_048_576).contains(&ctx_size) {
            return Err(ServiceError::invalid("ctx_size must be between 128 and 1048576"));
        }
        let n_gpu_layers = match input.n_gpu_layers {
            Some(layers) => layers,
            None if self.locate().is_ok_and(|found| binary::supports_fit(Path::new(&found.path))) => AUTO_GPU_LAYERS,
            None => proposal.map_or(999, |(_, layers)| layers.min(999) as i32),
        };
        if !(AUTO_GPU_LAYERS..=999).contains(&n_gpu_layers) {
            return Err(ServiceError::invalid(
                "n_gpu_layers must be between 0 and 999, or -1 to let llama-server fit them",
            ));
        }
        let parallel = input.parallel.unwrap_or(2);
        if !(1..=64).contains(&parallel) {
            return Err(ServiceError::invalid("parallel must be between 1 and 64"));
        }
        if self.db.read(|c| instances::id_by_alias(c, &alias))?.is_some() {
            return Err(ServiceError::Conflict(format!("an instance named '{alias}' exists already")));
        }
        let kind = input.kind.unwrap_or(model.kind);
        let mmproj_path = match input.mmproj_path.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(path) if kind != InstanceKind::Chat => {
                return Err(ServiceError::invalid(format!(
                    "mmproj_path: a vision projector goes with a chat deployment, not {} ({path})",
                    kind.as_str()
                )))
            }
            Some(path) if !Path::new(path).is_file() => {
                return Err(ServiceError::invalid(format!("mmproj_path: no file at {path}")))
            }
            Some(path) => Some(path.to_string()),
            None if kind == InstanceKind::Chat => model.mmproj_path.clone(),
            None => None,
        };
        let idle_ttl_s = input.idle_ttl_s.unwrap_or(DEFAULT_IDLE_TTL_S);
        check_idle_ttl(idle_ttl_s)?;
        let row = InstanceRow {
            id: 0,
            model_id: model.id,
            alias,
            ctx_size,
            n_gpu_layers,
            parallel,
            created_at_ms: now_ms(),
            kind: kind.as_str().to_string(),
            mmproj_path,
            idle_ttl_s,
            pinned: input.pinned.unwrap_or(false),
        };
        Ok((model, row))
    }
}

enum RunOutcome {
    Stopped,
    Failed(String),
    Crashed(String),
    /// It could not listen on the port it was given: worth another try on another port.
    PortTaken(String),
}

/// What llama-server prints when its port is taken.
const PORT_TAKEN: &str = "couldn't bind HTTP server socket";
/// Starts tried on fresh ports before a taken port counts as a failure.
const PORT_TRIES: u32 = 3;

/// A week: longer idle TTLs are what pinning is for.
const MAX_IDLE_TTL_S: u32 = 7 * 24 * 3600;

fn check_idle_ttl(seconds: u32) -> ServiceResult<()> {
    if seconds > MAX_IDLE_TTL_S {
        return Err(ServiceError::invalid(format!(
            "idle_ttl_s must be between 0 (never unload) and {MAX_IDLE_TTL_S}; pin the deployment to keep it loaded"
        )));
    }
    Ok(())
}

fn kind_of(row: &InstanceRow) -> InstanceKind {
    InstanceKind::parse(&row.kind).unwrap_or_default()
}

/// The flags a deployment's kind adds: embeddings and reranking need the whole input in one
/// batch, so their batch is the context.
fn kind_args(row: &InstanceRow) -> Vec<String> {
    let whole_input = |flag: &str| {
        let size = row.ctx_size.to_string();
        vec![flag.to_string(), "-b".into(), size.clone(), "-ub".into(), size]
    };
    match kind_of(row) {
        InstanceKind::Chat => match &row.mmproj_path {
            Some(projector) => vec!["--mmproj".into(), projector.clone()],
            None => Vec::new(),
        },
        InstanceKind::Embedding => whole_input("--embeddings"),
        InstanceKind::Rerank => whole_input("--reranking"),
    }
}

/// What a deployment holds in memory: the model's estimate at its context (its file size when the
/// metadata is unreadable), and its vision projector.
pub(crate) fn needed_bytes(row: &InstanceRow, model: &LocalModel) -> u64 {
    let weights = match &model.estimate {
        Some(estimate) => estimate.bytes_at(u64::from(row.ctx_size)),
        None => model.size,
    };
    let projector = row.mmproj_path.as_ref().and_then(|path| std::fs::metadata(path).ok()).map_or(0, |m| m.len());
    weights + projector
}

/// The model name clients use by default: the file name without `.gguf` and shard suffix.
pub fn default_alias(path: &str) -> String {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let stem = name.strip_suffix(".gguf").or_else(|| name.strip_suffix(".GGUF")).unwrap_or(name);
    let stem = match stem.rsplit_once("-of-") {
        Some((rest, count)) if count.len() == 5 && count.bytes().all(|b| b.is_ascii_digit()) => {
            rest.rsplit_once('-').map(|(base, _)| base).unwrap_or(rest)
        }
        _ => stem,
    };
    stem.to_string()
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn random_key() -> String {
    let mut bytes = [0u8; 24];
    if getrandom::fill(&mut bytes).is_err() {
        // A fallback that is still unique per process and start; the port is loopback-only.
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    format!("bc-local-{}", hex::encode(bytes))
}

impl MemoryProbe for Inference {
    /// Free memory of the largest GPU a build can use, and the machine's RAM; probed at most every
    /// few seconds.
    fn memory_budget(&self) -> MemoryBudget {
        let mut cached = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((when, budget)) = *cached {
            if when.elapsed() < BUDGET_FRESH {
                return budget;
            }
        }
        let hardware = hardware::probe(None);
        let gpu_free_bytes = hardware
            .gpus
            .iter()
            .filter(|gpu| !gpu.backends.is_empty())
            .filter_map(|gpu| gpu.free_vram_bytes.or(gpu.total_vram_bytes))
            .max();
        let budget = MemoryBudget { gpu_free_bytes, ram_bytes: hardware.memory.total_bytes };
        *cached = Some((std::time::Instant::now(), budget));
        budget
    }
}

impl ModelUsage for Inference {
    fn model_in_use(&self, model_id: i64) -> bool {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .any(|s| s.model_id == model_id && s.status().state.is_live())
    }
}

impl InferenceService for Inference {
    fn llama_server(&self) -> ServiceResult<LlamaServerInfo> {
        self.locate()
    }

    fn list_instances(&self) -> ServiceResult<Vec<Instance>> {
        Ok(self.db.read(instances::list)?.into_iter().map(|row| self.to_instance(row)).collect())
    }

    fn watch_instances(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn get_instance(&self, id: i64) -> ServiceResult<Instance> {
        Ok(self.to_instance(self.row(id)?))
    }

    fn create_instance(&self, input: InstanceInput) -> ServiceResult<Instance> {
        let (_model, mut row) = self.check_input(&input)?;
        row.id = self.db.write(|c| instances::insert(c, &row))?;
        self.track(&row);
        if input.start != Some(false) {
            self.launch(row.clone())?;
        } else {
            self.announce();
        }
        Ok(self.to_instance(row))
    }

    fn update_instance(&self, id: i64, patch: InstancePatch) -> ServiceResult<Instance> {
        let row = self.row(id)?;
        let idle_ttl_s = patch.idle_ttl_s.unwrap_or(row.idle_ttl_s);
        check_idle_ttl(idle_ttl_s)?;
        let pinned = patch.pinned.unwrap_or(row.pinned);
        self.db.write(|c| instances::set_residency(c, id, idle_ttl_s, pinned))?;
        if let Some(activity) = self.activity(id) {
            activity.idle_ttl_s.store(idle_ttl_s, Ordering::Relaxed);
            activity.pinned.store(pinned, Ordering::Relaxed);
        }
        self.announce();
        self.get_instance(id)
    }

    fn stop_instance(&self, id: i64) -> ServiceFuture<Instance> {
        let Some(service) = self.this.upgrade() else {
            return Box::pin(async { Err(ServiceError::Storage("shutting down".into())) });
        };
        let work = async move {
            let row = service.row(id)?;
            service.stop_and_wait(id).await;
            Ok(service.to_instance(row))
        };
        Box::pin(work)
    }

    fn restart_instance(&self, id: i64) -> ServiceFuture<Instance> {
        let Some(service) = self.this.upgrade() else {
            return Box::pin(async { Err(ServiceError::Storage("shutting down".into())) });
        };
        let task = self.tasks.clone();
        let runtime = self.runtime.clone();
        let work = async move {
            let row = service.row(id)?;
            service.stop_and_wait(id).await;
            service.launch(row.clone())?;
            Ok(service.to_instance(row))
        };
        Box::pin(async move { task.spawn_on(work, &runtime).await.map_err(|e| ServiceError::Storage(e.to_string()))? })
    }

    fn delete_instance(&self, id: i64) -> ServiceFuture<()> {
        let Some(service) = self.this.upgrade() else {
            return Box::pin(async { Err(ServiceError::Storage("shutting down".into())) });
        };
        let work = async move {
            service.row(id)?;
            service.stop_and_wait(id).await;
            service.live.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            service.names.remove_id(id);
            service.activity.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            service.db.write(|c| instances::delete(c, id))?;
            service.announce();
            let _ = std::fs::remove_file(service.config.log_file(id));
            Ok(())
        };
        Box::pin(work)
    }

    fn instance_logs(&self, id: i64, tail: usize) -> ServiceResult<Vec<String>> {
        self.row(id)?;
        let supervised = self.live.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned();
        match supervised {
            Some(supervised) => Ok(supervised.last_lines(tail.clamp(1, LOG_LINES_KEPT))),
            None => {
                // Not run since the app started: the log file of an earlier run, if any.
                let text = std::fs::read_to_string(self.config.log_file(id)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                Ok(lines[lines.len().saturating_sub(tail.clamp(1, LOG_LINES_KEPT))..]
                    .iter()
                    .map(|l| l.to_string())
                    .collect())
            }
        }
    }

    fn hardware(&self) -> ServiceFuture<Hardware> {
        let server = self.locate().ok().map(|info| PathBuf::from(info.path));
        let probe = self.runtime.spawn_blocking(move || hardware::probe(server.as_deref()));
        Box::pin(
            async move { probe.await.map_err(|e| ServiceError::Storage(format!("the hardware probe failed: {e}"))) },
        )
    }

    fn list_runtimes(&self) -> ServiceResult<Vec<Runtime>> {
        Ok(self.runtimes.list())
    }

    fn install_runtime(&self, request: RuntimeInstallRequest) -> ServiceFuture<Download> {
        let Some(service) = self.this.upgrade() else {
            return Box::pin(async { Err(ServiceError::Storage("shutting down".into())) });
        };
        let task = self.tasks.spawn_on(async move { service.queue_runtime(request).await }, &self.runtime);
        Box::pin(async move { task.await.map_err(|e| ServiceError::Storage(format!("the install task failed: {e}")))? })
    }

    fn activate_runtime(&self, id: &str) -> ServiceResult<Runtime> {
        self.runtimes.activate(id)
    }

    fn delete_runtime(&self, id: &str) -> ServiceResult<()> {
        self.runtimes.delete(id, |folder| self.runs_from(folder))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_come_from_file_names() {
        assert_eq!(
            default_alias("/m/huggingface/o/r/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf"),
            "Qwen2.5-0.5B-Instruct-Q4_K_M"
        );
        assert_eq!(default_alias("C:\\models\\big-Q8_0-00001-of-00003.gguf"), "big-Q8_0");
        assert_eq!(default_alias("tiny.gguf"), "tiny");
        assert!(random_key().starts_with("bc-local-") && random_key() != random_key());
    }
}
