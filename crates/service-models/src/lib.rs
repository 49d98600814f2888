//! The model hub and the local model store: search Hugging Face, hf-mirror and ModelScope for GGUF
//! models, download them resumably with verified checksums, and keep the models on disk.

pub mod fit;
mod gguf;
mod hub;
pub mod names;
mod transfer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use burncloud_database::repo::downloads::{self, DownloadFile, DownloadRow};
use burncloud_database::repo::local_models::{self, LocalModelRow};
use burncloud_database::{now_ms, Db};
use burncloud_service_api::{
    Download, DownloadFinisher, DownloadRequest, DownloadState, Fit, HubFileList, HubSearchPage, HubSearchQuery,
    HubSource, ImportRequest, InstanceKind, LocalModel, LocalModelService, MemoryBudget, MemoryProbe, ModelHubService,
    ModelOrigin, ModelUsage, RemoteFailure, ServiceError, ServiceFuture, ServiceResult, SettingsService,
    UrlDownloadRequest,
};
use sha2::Digest;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use gguf::{parse_shape, read_header, read_shape, GgufHeader, MetadataError, ModelShape};
pub use hub::{check_file_path, check_repo_name, Hub};
pub use transfer::{part_path, sidecar_path, Sidecar, TransferPolicy};

use transfer::{FileTransfer, TransferError};

/// Environment overrides for the hub endpoints and headless access tokens.
pub const HF_ENDPOINT_ENV: &str = "BURNCLOUD_HF_ENDPOINT";
pub const HF_MIRROR_ENDPOINT_ENV: &str = "BURNCLOUD_HF_MIRROR_ENDPOINT";
pub const MODELSCOPE_ENDPOINT_ENV: &str = "BURNCLOUD_MODELSCOPE_ENDPOINT";
pub const HF_TOKEN_ENV: &str = "BURNCLOUD_HF_TOKEN";
pub const MODELSCOPE_TOKEN_ENV: &str = "BURNCLOUD_MODELSCOPE_TOKEN";

/// Headroom kept free on the disk beyond the download itself.
const DISK_MARGIN: u64 = 64 << 20;
const PROGRESS_TICK: Duration = Duration::from_millis(250);
/// How long shutdown waits for download jobs to record where they stopped.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct ModelHubConfig {
    /// `DATA_DIR/models`: files land in `<source>/<owner>/<repo>/<path>` below it.
    pub models_dir: PathBuf,
    /// `DATA_DIR/runtimes/.downloads`: runtime archives land in `<label>/<name>` below it until
    /// they are unpacked.
    pub archives_dir: PathBuf,
    pub endpoints: HashMap<HubSource, String>,
    /// Tokens from the environment; a token in settings wins.
    pub env_tokens: HashMap<HubSource, String>,
    pub policy: TransferPolicy,
    /// Downloads that run at once; the rest wait as `queued`.
    pub parallel_downloads: usize,
}

impl ModelHubConfig {
    /// Endpoints and tokens from the environment, defaults for the rest.
    pub fn from_env(data_dir: &Path) -> ModelHubConfig {
        let read = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut endpoints = HashMap::new();
        for (source, variable) in [
            (HubSource::Huggingface, HF_ENDPOINT_ENV),
            (HubSource::HfMirror, HF_MIRROR_ENDPOINT_ENV),
            (HubSource::Modelscope, MODELSCOPE_ENDPOINT_ENV),
        ] {
            endpoints.insert(source, read(variable).unwrap_or_else(|| source.default_endpoint().to_string()));
        }
        let mut env_tokens = HashMap::new();
        if let Some(token) = read(HF_TOKEN_ENV) {
            env_tokens.insert(HubSource::Huggingface, token.clone());
            env_tokens.insert(HubSource::HfMirror, token);
        }
        if let Some(token) = read(MODELSCOPE_TOKEN_ENV) {
            env_tokens.insert(HubSource::Modelscope, token);
        }
        ModelHubConfig {
            models_dir: data_dir.join("models"),
            archives_dir: data_dir.join("runtimes").join(".downloads"),
            endpoints,
            env_tokens,
            policy: TransferPolicy::default(),
            parallel_downloads: 2,
        }
    }
}

/// A running download's live state, beside its row.
struct Job {
    stop: watch::Sender<bool>,
    bytes: Arc<AtomicU64>,
    meter: Mutex<SpeedMeter>,
}

#[derive(Default)]
struct SpeedMeter {
    last: Option<(Instant, u64)>,
    bytes_per_second: f64,
}

impl SpeedMeter {
    fn sample(&mut self, now: Instant, bytes: u64) {
        if let Some((then, before)) = self.last {
            let seconds = now.duration_since(then).as_secs_f64();
            if seconds > 0.0 {
                let rate = bytes.saturating_sub(before) as f64 / seconds;
                // Smoothed so the ETA does not jump with every burst.
                self.bytes_per_second =
                    if self.bytes_per_second == 0.0 { rate } else { 0.5 * self.bytes_per_second + 0.5 * rate };
            }
        }
        self.last = Some((now, bytes));
    }
}

/// The model hub service and the local model store.
pub struct ModelHub {
    db: Arc<Db>,
    settings: Arc<dyn SettingsService>,
    config: ModelHubConfig,
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    jobs: Mutex<HashMap<i64, Arc<Job>>>,
    slots: Arc<Semaphore>,
    published: watch::Sender<Vec<Download>>,
    usage: RwLock<Option<Arc<dyn ModelUsage>>>,
    finishers: RwLock<HashMap<HubSource, Arc<dyn DownloadFinisher>>>,
    memory: RwLock<Option<Arc<dyn MemoryProbe>>>,
    shapes: fit::ShapeCache,
    /// Every task the hub starts (download jobs, the progress ticker, clean-ups); `shutdown`
    /// waits for them.
    tasks: TaskTracker,
    stopping: CancellationToken,
    this: Weak<ModelHub>,
}

impl ModelHub {
    /// Starts the service inside the current Tokio runtime and continues the downloads that were
    /// running when the app last stopped.
    pub fn start(
        db: Arc<Db>,
        settings: Arc<dyn SettingsService>,
        config: ModelHubConfig,
    ) -> Result<Arc<ModelHub>, ServiceError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("burncloud/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ServiceError::Storage(format!("cannot build the HTTP client: {e}")))?;
        let (published, _) = watch::channel(Vec::new());
        let hub = Arc::new_cyclic(|this| ModelHub {
            db,
            settings,
            slots: Arc::new(Semaphore::new(config.parallel_downloads.max(1))),
            config,
            client,
            runtime: tokio::runtime::Handle::current(),
            jobs: Mutex::new(HashMap::new()),
            published,
            usage: RwLock::new(None),
            finishers: RwLock::new(HashMap::new()),
            memory: RwLock::new(None),
            shapes: fit::ShapeCache::default(),
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
            this: this.clone(),
        });
        let unfinished: Vec<DownloadRow> =
            hub.db.read(downloads::list)?.into_iter().filter(|row| row.state.is_active()).collect();
        for mut row in unfinished {
            row.state = DownloadState::Queued;
            row.bytes_done = hub.bytes_on_disk(&row);
            row.updated_at_ms = now_ms();
            hub.db.write(|c| downloads::update(c, &row))?;
            hub.spawn_job(row.id, row.bytes_done);
        }
        let ticker = Arc::downgrade(&hub);
        let stopping = hub.stopping.clone();
        hub.tasks.spawn_on(
            async move {
                let mut interval = tokio::time::interval(PROGRESS_TICK);
                loop {
                    tokio::select! {
                        _ = interval.tick() => {}
                        () = stopping.cancelled() => break,
                    }
                    let Some(hub) = ticker.upgrade() else { break };
                    hub.tick();
                }
            },
            &hub.runtime,
        );
        hub.publish();
        Ok(hub)
    }

    /// Stops every transfer where it is, leaving states as they are: the next start continues them.
    pub async fn shutdown(&self) {
        for job in self.jobs.lock().unwrap_or_else(|p| p.into_inner()).values() {
            let _ = job.stop.send(true);
        }
        self.stopping.cancel();
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_WAIT, self.tasks.wait()).await.is_err() {
            tracing::warn!(tasks = self.tasks.len(), "model hub tasks still running at shutdown");
        }
    }

    /// Lets the store ask which models running instances use.
    pub fn set_usage(&self, usage: Arc<dyn ModelUsage>) {
        *self.usage.write().unwrap_or_else(|p| p.into_inner()) = Some(usage);
    }

    /// Lets the store ask how much memory models may use here, to say where each would run.
    pub fn set_memory(&self, memory: Arc<dyn MemoryProbe>) {
        *self.memory.write().unwrap_or_else(|p| p.into_inner()) = Some(memory);
    }

    fn budget(&self) -> Option<MemoryBudget> {
        self.memory.read().unwrap_or_else(|p| p.into_inner()).as_ref().map(|m| m.memory_budget())
    }

    /// Marks each GGUF of a listing with its estimate and fit, from the shape of one of them (the
    /// quantisations of a repository share it) read with a ranged request.
    async fn annotate(&self, hub: &Hub, mut listing: HubFileList) -> HubFileList {
        let Some(budget) = self.budget() else { return listing };
        let sample = listing
            .files
            .iter()
            .filter(|f| names::is_gguf(&f.path) && !f.mmproj && f.shard.is_none_or(|s| s.index == 1))
            .min_by_key(|f| f.size)
            .map(|f| f.path.clone());
        let Some(sample) = sample else { return listing };
        let shape = match hub.read_shape(&self.client, &listing.repo, &sample).await {
            Ok(shape) => shape,
            Err(reason) => {
                tracing::debug!(%reason, repo = %listing.repo, "cannot read the model's metadata; its fit stays unknown");
                return listing;
            }
        };
        let group_sizes: HashMap<String, u64> = listing.files.iter().fold(HashMap::new(), |mut sizes, f| {
            *sizes.entry(f.group.clone()).or_default() += f.size;
            sizes
        });
        for file in listing.files.iter_mut().filter(|f| names::is_gguf(&f.path) && !f.mmproj) {
            let weights = group_sizes.get(&file.group).copied().unwrap_or(file.size);
            let estimate = fit::estimate(&shape, weights);
            let context = estimate.default_context();
            file.estimated_bytes = Some(estimate.bytes_at(context));
            file.fit = estimate.fit(context, &budget);
        }
        listing
    }

    /// Says what a finished download of `source` becomes. Set before downloads of it can finish:
    /// one that finishes without its finisher fails and can be resumed.
    pub fn set_finisher(&self, source: HubSource, finisher: Arc<dyn DownloadFinisher>) {
        self.finishers.write().unwrap_or_else(|p| p.into_inner()).insert(source, finisher);
    }

    pub fn models_dir(&self) -> &Path {
        &self.config.models_dir
    }

    fn hub(&self, source: HubSource) -> Hub {
        let token = self
            .settings
            .get_setting(&source.token_setting())
            .ok()
            .flatten()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .or_else(|| self.config.env_tokens.get(&source).cloned());
        let endpoint =
            self.config.endpoints.get(&source).cloned().unwrap_or_else(|| source.default_endpoint().to_string());
        Hub { source, endpoint, token }
    }

    /// Where a hub file lands: `models/<source>/<owner>/<repo>/<path>`; a runtime archive:
    /// `runtimes/.downloads/<label>/<name>`.
    pub fn model_path(&self, source: HubSource, repo: &str, path: &str) -> PathBuf {
        let mut target = match source.is_model_hub() {
            true => self.config.models_dir.join(source.as_str()),
            false => self.config.archives_dir.clone(),
        };
        for part in repo.split('/').chain(path.split('/')) {
            target.push(part);
        }
        target
    }

    fn in_use(&self, model_id: i64) -> bool {
        self.usage.read().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|u| u.model_in_use(model_id))
    }

    fn to_download(&self, row: DownloadRow) -> Download {
        let job = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).get(&row.id).cloned();
        let (mut bytes_done, mut speed) = (row.bytes_done, 0.0);
        if let Some(job) = job.filter(|_| row.state == DownloadState::Running) {
            bytes_done = job.bytes.load(Ordering::Relaxed);
            speed = job.meter.lock().unwrap_or_else(|p| p.into_inner()).bytes_per_second;
        }
        let remaining = row.bytes_total.saturating_sub(bytes_done);
        let eta_s =
            (speed >= 1.0 && row.state == DownloadState::Running).then(|| (remaining as f64 / speed).ceil() as u64);
        Download {
            id: row.id,
            source: row.source,
            repo: row.repo,
            path: row.path,
            files: row.files.into_iter().map(|f| f.path).collect(),
            state: row.state,
            bytes_done,
            bytes_total: row.bytes_total,
            speed_bps: speed as u64,
            eta_s,
            error: row.error,
            local_model_id: row.local_model_id,
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
        }
    }

    fn row(&self, id: i64) -> ServiceResult<DownloadRow> {
        self.db.read(|c| downloads::get(c, id))?.ok_or_else(|| ServiceError::NotFound(format!("no download {id}")))
    }

    fn all_downloads(&self) -> ServiceResult<Vec<Download>> {
        let rows = self.db.read(downloads::list)?;
        Ok(rows.into_iter().map(|row| self.to_download(row)).collect())
    }

    fn publish(&self) {
        match self.all_downloads() {
            Ok(list) => {
                self.published.send_if_modified(|current| {
                    let changed = *current != list;
                    if changed {
                        *current = list;
                    }
                    changed
                });
            }
            Err(error) => tracing::warn!(%error, "cannot read downloads to publish progress"),
        }
    }

    fn tick(&self) {
        let jobs: Vec<Arc<Job>> = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        if jobs.is_empty() {
            return;
        }
        let now = Instant::now();
        for job in jobs {
            let bytes = job.bytes.load(Ordering::Relaxed);
            job.meter.lock().unwrap_or_else(|p| p.into_inner()).sample(now, bytes);
        }
        self.publish();
    }

    /// Changes a download's row unless a pause or cancel has taken the job over; returns whether it did.
    fn settle(&self, id: i64, job: &Job, change: impl FnOnce(&mut DownloadRow)) -> bool {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if *job.stop.borrow() {
            return false;
        }
        let saved = (|| -> ServiceResult<bool> {
            let Some(mut row) = self.db.read(|c| downloads::get(c, id))? else { return Ok(false) };
            change(&mut row);
            row.updated_at_ms = now_ms();
            self.db.write(|c| downloads::update(c, &row))?;
            Ok(true)
        })();
        drop(jobs);
        match saved {
            Ok(saved) => saved,
            Err(error) => {
                tracing::error!(%error, download = id, "cannot save the download's state");
                false
            }
        }
    }

    /// Starts (or restarts) the job for download `id`, whose files already hold `bytes_on_disk`.
    fn spawn_job(&self, id: i64, bytes_on_disk: u64) {
        let (stop, stopped) = watch::channel(false);
        let job = Arc::new(Job {
            stop,
            bytes: Arc::new(AtomicU64::new(bytes_on_disk)),
            meter: Mutex::new(SpeedMeter::default()),
        });
        let previous = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).insert(id, job.clone());
        if let Some(previous) = previous {
            let _ = previous.stop.send(true);
        }
        let Some(hub) = self.this.upgrade() else { return };
        self.tasks.spawn_on(
            async move {
                hub.run_job(id, job.clone(), stopped).await;
                let mut jobs = hub.jobs.lock().unwrap_or_else(|p| p.into_inner());
                if jobs.get(&id).is_some_and(|current| Arc::ptr_eq(current, &job)) {
                    jobs.remove(&id);
                }
                drop(jobs);
                hub.publish();
            },
            &self.runtime,
        );
    }

    async fn run_job(&self, id: i64, job: Arc<Job>, mut stopped: watch::Receiver<bool>) {
        let permit = tokio::select! {
            permit = self.slots.clone().acquire_owned() => permit,
            _ = stopped.changed() => return,
        };
        let Ok(_permit) = permit else { return };
        if !self.settle(id, &job, |row| {
            row.state = DownloadState::Running;
            row.error = None;
        }) {
            return;
        }
        self.publish();
        match self.fetch_all(id, &job, stopped.clone()).await {
            // A pause keeps the partial files; a cancel removes them once this job has let go.
            Ok(()) | Err(TransferError::Stopped) => {}
            Err(TransferError::Fatal(error)) => {
                let bytes = job.bytes.load(Ordering::Relaxed);
                self.settle(id, &job, |row| {
                    row.state = DownloadState::Failed;
                    row.error = Some(error.to_string());
                    row.bytes_done = bytes;
                });
            }
        }
    }

    fn remove_partials(&self, row: &DownloadRow) {
        for file in &row.files {
            transfer::remove_partial(&self.model_path(row.source, &row.repo, &file.path));
        }
    }

    async fn fetch_all(&self, id: i64, job: &Job, stopped: watch::Receiver<bool>) -> Result<(), TransferError> {
        let row = self.row(id).map_err(TransferError::Fatal)?;
        let hub = self.hub(row.source);
        let targets: Vec<PathBuf> = row.files.iter().map(|f| self.model_path(row.source, &row.repo, &f.path)).collect();
        self.check_disk_space(&row).map_err(TransferError::Fatal)?;
        let mut revision = row.revision.clone().unwrap_or_else(|| match row.source {
            HubSource::Modelscope => "master".to_string(),
            _ => "main".to_string(),
        });
        let mut bytes_before = 0u64;
        let mut hashes = Vec::with_capacity(row.files.len());
        for (file, target) in row.files.iter().zip(&targets) {
            let complete = std::fs::metadata(target).is_ok_and(|m| m.len() == file.size && file.size > 0);
            if complete {
                hashes.push(None);
            } else {
                let mut transfer = FileTransfer {
                    hub: &hub,
                    client: &self.client,
                    repo: &row.repo,
                    file,
                    target: target.clone(),
                    revision: revision.clone(),
                    policy: &self.config.policy,
                    job_bytes_before: bytes_before,
                    job_bytes: &job.bytes,
                };
                let (sha256, commit) = transfer.run(stopped.clone()).await?;
                hashes.push(Some(sha256));
                if let Some(commit) = commit.filter(|c| Some(c) != row.revision.as_ref()) {
                    revision = commit.clone();
                    self.settle(id, job, |row| row.revision = Some(commit));
                }
            }
            bytes_before += std::fs::metadata(target).map(|m| m.len()).unwrap_or(file.size);
            job.bytes.store(bytes_before, Ordering::Relaxed);
        }
        self.settle(id, job, |row| {
            row.state = DownloadState::Verifying;
            row.bytes_done = bytes_before;
        });
        self.publish();
        let local_model_id = match row.source.is_model_hub() {
            true => self
                .register_download(&row, &targets, hashes.first().cloned().flatten())
                .map_err(TransferError::Fatal)?,
            false => {
                self.finish_with_finisher(&row, &targets).await.map_err(TransferError::Fatal)?;
                None
            }
        };
        self.settle(id, job, |row| {
            row.state = DownloadState::Done;
            row.bytes_done = bytes_before;
            row.bytes_total = bytes_before;
            row.local_model_id = local_model_id;
        });
        Ok(())
    }

    /// Hands a non-hub download's verified files to its source's finisher; they are removed
    /// afterwards whatever it answers, since what they became (or failed to) is all that is kept.
    async fn finish_with_finisher(&self, row: &DownloadRow, targets: &[PathBuf]) -> ServiceResult<()> {
        let finisher = self.finishers.read().unwrap_or_else(|p| p.into_inner()).get(&row.source).cloned();
        let Some(finisher) = finisher else {
            return Err(ServiceError::Storage(format!(
                "nothing can unpack {} downloads yet; resume later",
                row.source.as_str()
            )));
        };
        let download = self.to_download(row.clone());
        let files = targets.to_vec();
        let outcome = tokio::task::spawn_blocking(move || finisher.finish(&download, &files))
            .await
            .unwrap_or_else(|e| Err(ServiceError::Storage(format!("unpacking stopped: {e}"))));
        for target in targets {
            let _ = std::fs::remove_file(target);
        }
        if let Some(folder) = targets.first().and_then(|t| t.parent()) {
            let _ = std::fs::remove_dir(folder);
        }
        outcome
    }

    fn check_disk_space(&self, row: &DownloadRow) -> ServiceResult<()> {
        let needed = row.bytes_total.saturating_sub(self.bytes_on_disk(row));
        let folder = if row.source.is_model_hub() { &self.config.models_dir } else { &self.config.archives_dir };
        std::fs::create_dir_all(folder)
            .map_err(|e| ServiceError::Storage(format!("cannot create {}: {e}", folder.display())))?;
        match fs4::available_space(folder) {
            Ok(available) if available < needed + DISK_MARGIN => Err(ServiceError::InsufficientStorage(format!(
                "not enough disk space in {}: {} needed, {} free",
                folder.display(),
                human_bytes(needed + DISK_MARGIN),
                human_bytes(available)
            ))),
            _ => Ok(()),
        }
    }

    /// A finished GGUF download becomes a local model (checked by its header).
    fn register_download(
        &self,
        row: &DownloadRow,
        targets: &[PathBuf],
        sha256: Option<String>,
    ) -> ServiceResult<Option<i64>> {
        let Some(first) = targets.first() else { return Ok(None) };
        if !names::is_gguf(&row.path) {
            return Ok(None);
        }
        gguf::read_header(first).map_err(|message| ServiceError::Remote {
            code: RemoteFailure::NotGguf,
            message: format!("the downloaded file is not a usable model: {message}"),
        })?;
        // The weights alone: a projector downloaded with the model is counted apart when deployed.
        let size = targets
            .iter()
            .filter(|t| !names::is_mmproj(&t.to_string_lossy()))
            .map(|t| std::fs::metadata(t).map(|m| m.len()).unwrap_or(0))
            .sum();
        let model = LocalModelRow {
            id: 0,
            path: first.to_string_lossy().into_owned(),
            files: targets.iter().map(|t| t.to_string_lossy().into_owned()).collect(),
            size,
            sha256: sha256.or_else(|| row.files.first().and_then(|f| f.sha256.clone())),
            source: ModelOrigin::Hub(row.source),
            repo: Some(row.repo.clone()),
            quant: names::quant(&row.path),
            added_at_ms: now_ms(),
        };
        Ok(Some(self.db.write(|c| local_models::upsert(c, &model))?))
    }

    fn to_local_model(&self, row: LocalModelRow) -> LocalModel {
        let shape = self.shapes.shape(&row.path);
        let file_name = Path::new(&row.path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let kind = shape.as_ref().map_or_else(|| names::kind(&file_name), |shape| shape.kind(&file_name));
        let mmproj_path = if kind == InstanceKind::Chat { names::projector_beside(Path::new(&row.path)) } else { None };
        let family = shape.as_ref().map(|shape| shape.architecture.clone());
        let parameter_size = shape.as_ref().and_then(|shape| shape.size_label.clone());
        let estimate = shape.map(|shape| fit::estimate(&shape, row.size));
        let fit = match (&estimate, self.budget()) {
            (Some(estimate), Some(budget)) => estimate.fit(estimate.default_context(), &budget),
            _ => Fit::Unknown,
        };
        LocalModel {
            estimate,
            fit,
            family,
            parameter_size,
            kind,
            mmproj_path,
            in_use: self.in_use(row.id),
            id: row.id,
            path: row.path,
            files: row.files,
            size: row.size,
            sha256: row.sha256,
            source: row.source,
            repo: row.repo,
            quant: row.quant,
            added_at_ms: row.added_at_ms,
        }
    }

    async fn queue_download(&self, request: DownloadRequest) -> ServiceResult<Download> {
        model_hub_only(request.source)?;
        check_repo_name(&request.repo)?;
        check_file_path(&request.path)?;
        let listing = self.hub(request.source).files(&self.client, &request.repo).await?;
        let wanted = listing
            .files
            .iter()
            .find(|f| f.path == request.path)
            .ok_or_else(|| ServiceError::NotFound(format!("{} has no file {}", request.repo, request.path)))?;
        let files: Vec<DownloadFile> = match wanted.shard {
            Some(shard) => (1..=shard.count)
                .map(|index| {
                    let path = names::shard_path(&wanted.path, shard, index);
                    listing
                        .files
                        .iter()
                        .find(|f| f.path == path)
                        .map(|f| DownloadFile {
                            path: f.path.clone(),
                            size: f.size,
                            sha256: f.sha256.clone(),
                            url: None,
                        })
                        .ok_or_else(|| ServiceError::NotFound(format!("{} lacks shard {path}", request.repo)))
                })
                .collect::<ServiceResult<_>>()?,
            None => vec![DownloadFile {
                path: wanted.path.clone(),
                size: wanted.size,
                sha256: wanted.sha256.clone(),
                url: None,
            }],
        };
        let mut files = files;
        // A vision model's projector comes with it, so that it can be deployed to read images.
        let model_quant = names::quant(&wanted.path);
        let projector = listing
            .files
            .iter()
            .filter(|f| f.mmproj && names::is_gguf(&f.path) && !wanted.mmproj)
            .min_by_key(|f| (names::projector_rank(model_quant.as_deref(), &f.path), f.path.clone()));
        if let Some(projector) = projector {
            if !self.model_path(request.source, &request.repo, &projector.path).exists() {
                files.push(DownloadFile {
                    path: projector.path.clone(),
                    size: projector.size,
                    sha256: projector.sha256.clone(),
                    url: None,
                });
            }
        }
        let path = files[0].path.clone();
        let target = self.model_path(request.source, &request.repo, &path);
        if let Some(existing) = self.db.read(|c| local_models::id_by_path(c, &target.to_string_lossy()))? {
            if target.exists() {
                return Err(ServiceError::Conflict(format!("{path} is already downloaded (local model {existing})")));
            }
        }
        self.enqueue(request.source, request.repo, files)
    }

    /// Queues `files` as one download, or answers the unfinished download of the same file (resumed
    /// if it had stopped).
    fn enqueue(&self, source: HubSource, repo: String, files: Vec<DownloadFile>) -> ServiceResult<Download> {
        let path = files[0].path.clone();
        let same = self.db.read(downloads::list)?.into_iter().find(|row| {
            row.source == source && row.repo == repo && row.path == path && row.state != DownloadState::Done
        });
        if let Some(existing) = same {
            if matches!(existing.state, DownloadState::Failed | DownloadState::Paused) {
                return self.resume_download(existing.id);
            }
            return Ok(self.to_download(existing));
        }
        let now = now_ms();
        let mut row = DownloadRow {
            id: 0,
            source,
            repo,
            path,
            bytes_total: files.iter().map(|f| f.size).sum(),
            files,
            revision: None,
            state: DownloadState::Queued,
            bytes_done: 0,
            error: None,
            local_model_id: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        row.bytes_done = self.bytes_on_disk(&row);
        row.id = self.db.write(|c| downloads::insert(c, &row))?;
        self.spawn_job(row.id, row.bytes_done);
        self.publish();
        Ok(self.to_download(row))
    }

    fn queue_url_download(&self, request: UrlDownloadRequest) -> ServiceResult<Download> {
        if request.source.is_model_hub() {
            return Err(ServiceError::invalid("hub files are downloaded by repository and path"));
        }
        check_label(&request.label)?;
        if request.files.is_empty() {
            return Err(ServiceError::invalid("a download needs at least one file"));
        }
        for file in &request.files {
            check_label(&file.name)?;
            if !(file.url.starts_with("https://") || file.url.starts_with("http://")) {
                return Err(ServiceError::invalid(format!("{} has no http(s) URL", file.name)));
            }
            if file.sha256.len() != 64 || !file.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ServiceError::invalid(format!("{} has no sha256 to verify it by", file.name)));
            }
        }
        let files: Vec<DownloadFile> = request
            .files
            .into_iter()
            .map(|f| DownloadFile {
                path: f.name,
                size: f.size,
                sha256: Some(f.sha256.to_ascii_lowercase()),
                url: Some(f.url),
            })
            .collect();
        self.enqueue(request.source, request.label, files)
    }

    fn bytes_on_disk(&self, row: &DownloadRow) -> u64 {
        row.files
            .iter()
            .map(|file| {
                let target = self.model_path(row.source, &row.repo, &file.path);
                std::fs::metadata(&target)
                    .or_else(|_| std::fs::metadata(part_path(&target)))
                    .map(|m| m.len())
                    .unwrap_or(0)
            })
            .sum()
    }

    async fn import(&self, request: ImportRequest) -> ServiceResult<LocalModel> {
        let given = PathBuf::from(request.path.trim());
        if !given.is_absolute() {
            return Err(ServiceError::invalid(format!("'{}' is not an absolute path", given.display())));
        }
        let path = std::fs::canonicalize(&given)
            .map_err(|e| ServiceError::invalid(format!("cannot open {}: {e}", given.display())))?;
        if !path.is_file() {
            return Err(ServiceError::invalid(format!("{} is not a file", path.display())));
        }
        let text = path.to_string_lossy().into_owned();
        let mut files = vec![path.clone()];
        if let Some(shard) = names::shard(&text) {
            if shard.index != 1 {
                return Err(ServiceError::invalid(format!(
                    "{} is shard {} of {}: import the first shard (-00001-of-{:05})",
                    path.display(),
                    shard.index,
                    shard.count,
                    shard.count
                )));
            }
            for index in 2..=shard.count {
                let next = PathBuf::from(names::shard_path(&text, shard, index));
                if !next.is_file() {
                    return Err(ServiceError::invalid(format!("shard {} is missing", next.display())));
                }
                files.push(next);
            }
        }
        gguf::read_header(&path).map_err(ServiceError::Invalid)?;
        let hashed = path.clone();
        let sha256 = tokio::task::spawn_blocking(move || sha256_file(&hashed))
            .await
            .map_err(|e| ServiceError::Storage(format!("hashing stopped: {e}")))?
            .map_err(|e| ServiceError::Storage(format!("cannot read {}: {e}", path.display())))?;
        let model = LocalModelRow {
            id: 0,
            path: text.clone(),
            files: files.iter().map(|f| f.to_string_lossy().into_owned()).collect(),
            size: files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum(),
            sha256: Some(sha256),
            source: ModelOrigin::Imported,
            repo: None,
            quant: names::quant(&text),
            added_at_ms: now_ms(),
        };
        let id = self.db.write(|c| local_models::upsert(c, &model))?;
        self.get_local_model(id)
    }
}

/// Searching and browsing are for the model hubs; llama.cpp's releases are reached through runtimes.
fn model_hub_only(source: HubSource) -> ServiceResult<()> {
    match source.is_model_hub() {
        true => Ok(()),
        false => Err(ServiceError::invalid(format!(
            "{} is not a model hub: install runtimes under /console/api/runtimes",
            source.as_str()
        ))),
    }
}

/// A label or file name of a URL download: one path segment of plain characters.
fn check_label(text: &str) -> ServiceResult<()> {
    let plain = text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b));
    if text.is_empty() || text.len() > 200 || !plain || text.starts_with('.') {
        return Err(ServiceError::invalid(format!("'{text}' is not a plain file name")));
    }
    Ok(())
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

impl ModelHub {
    /// Runs `work` on the service's own runtime, so callers on any executor (the window's, a
    /// test's) get the same network stack.
    fn on_runtime<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = ServiceResult<T>> + Send + 'static,
    ) -> ServiceFuture<T> {
        let task = self.tasks.spawn_on(work, &self.runtime);
        Box::pin(
            async move { task.await.map_err(|e| ServiceError::Storage(format!("the model hub task failed: {e}")))? },
        )
    }
}

impl ModelHubService for ModelHub {
    fn search(&self, query: HubSearchQuery) -> ServiceFuture<HubSearchPage> {
        let source = query.source.unwrap_or(HubSource::Huggingface);
        if let Err(error) = model_hub_only(source) {
            return Box::pin(async move { Err(error) });
        }
        let hub = self.hub(source);
        let client = self.client.clone();
        self.on_runtime(async move {
            hub.search(&client, query.q.trim(), query.sort.unwrap_or_default(), query.page.as_deref()).await
        })
    }

    fn files(&self, source: HubSource, repo: String) -> ServiceFuture<HubFileList> {
        if let Err(error) = model_hub_only(source) {
            return Box::pin(async move { Err(error) });
        }
        let hub = self.hub(source);
        let client = self.client.clone();
        let Some(service) = self.this.upgrade() else {
            return Box::pin(async { Err(ServiceError::Storage("the model hub is shutting down".into())) });
        };
        self.on_runtime(async move {
            let listing = hub.files(&client, repo.trim()).await?;
            Ok(service.annotate(&hub, listing).await)
        })
    }

    fn start_download(&self, request: DownloadRequest) -> ServiceFuture<Download> {
        let Some(hub) = self.this.upgrade() else {
            return Box::pin(async { Err(ServiceError::Storage("the model hub is shutting down".into())) });
        };
        self.on_runtime(async move { hub.queue_download(request).await })
    }

    fn list_downloads(&self) -> ServiceResult<Vec<Download>> {
        self.all_downloads()
    }

    fn get_download(&self, id: i64) -> ServiceResult<Download> {
        Ok(self.to_download(self.row(id)?))
    }

    fn pause_download(&self, id: i64) -> ServiceResult<Download> {
        let mut row = self.row(id)?;
        if !row.state.is_active() {
            return Err(ServiceError::Conflict(format!("download {id} is {}, not running", row.state.as_str())));
        }
        {
            let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(job) = jobs.get(&id) {
                let _ = job.stop.send(true);
                row.bytes_done = job.bytes.load(Ordering::Relaxed).max(row.bytes_done);
            }
            row.state = DownloadState::Paused;
            row.updated_at_ms = now_ms();
            self.db.write(|c| downloads::update(c, &row))?;
        }
        self.publish();
        Ok(self.to_download(row))
    }

    fn resume_download(&self, id: i64) -> ServiceResult<Download> {
        let mut row = self.row(id)?;
        if !matches!(row.state, DownloadState::Paused | DownloadState::Failed) {
            return Err(ServiceError::Conflict(format!("download {id} is {}, nothing to resume", row.state.as_str())));
        }
        row.state = DownloadState::Queued;
        row.error = None;
        row.bytes_done = self.bytes_on_disk(&row);
        row.updated_at_ms = now_ms();
        self.db.write(|c| downloads::update(c, &row))?;
        self.spawn_job(id, row.bytes_done);
        self.publish();
        Ok(self.to_download(row))
    }

    fn cancel_download(&self, id: i64) -> ServiceResult<()> {
        let row = self.row(id)?;
        let running = {
            let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            self.db.write(|c| downloads::delete(c, id))?;
            jobs.get(&id).map(|job| job.stop.send(true)).is_some()
        };
        if row.state != DownloadState::Done {
            if running {
                // The job may still hold the file open; it is removed once the job has let go.
                let hub = self.this.upgrade();
                self.tasks.spawn_on(
                    async move {
                        let Some(hub) = hub else { return };
                        for _ in 0..100 {
                            if !hub.jobs.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&id) {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        hub.remove_partials(&row);
                    },
                    &self.runtime,
                );
            } else {
                self.remove_partials(&row);
            }
        }
        self.publish();
        Ok(())
    }

    fn watch_downloads(&self) -> watch::Receiver<Vec<Download>> {
        self.published.subscribe()
    }

    fn start_url_download(&self, request: UrlDownloadRequest) -> ServiceResult<Download> {
        self.queue_url_download(request)
    }
}

impl LocalModelService for ModelHub {
    fn list_local_models(&self) -> ServiceResult<Vec<LocalModel>> {
        Ok(self.db.read(local_models::list)?.into_iter().map(|row| self.to_local_model(row)).collect())
    }

    fn get_local_model(&self, id: i64) -> ServiceResult<LocalModel> {
        let row = self
            .db
            .read(|c| local_models::get(c, id))?
            .ok_or_else(|| ServiceError::NotFound(format!("no local model {id}")))?;
        Ok(self.to_local_model(row))
    }

    fn import_local_model(&self, request: ImportRequest) -> ServiceFuture<LocalModel> {
        let Some(hub) = self.this.upgrade() else {
            return Box::pin(async { Err(ServiceError::Storage("the model hub is shutting down".into())) });
        };
        self.on_runtime(async move { hub.import(request).await })
    }

    fn delete_local_model(&self, id: i64) -> ServiceResult<()> {
        let model = self.get_local_model(id)?;
        if model.in_use {
            return Err(ServiceError::Conflict(format!(
                "local model {id} is in use by a running instance: stop the instance first"
            )));
        }
        self.db.write(|c| {
            local_models::delete(c, id)?;
            downloads::delete_for_local_model(c, id)?;
            Ok(())
        })?;
        for file in &model.files {
            if let Err(error) = std::fs::remove_file(file) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(%error, file, "cannot remove a model file");
                }
            }
        }
        // Empty folders left under models/ go too; folders outside it (imports) are the user's.
        if let Some(mut folder) = Path::new(&model.path).parent().map(Path::to_path_buf) {
            while folder.starts_with(&self.config.models_dir) && folder != self.config.models_dir {
                if std::fs::remove_dir(&folder).is_err() {
                    break;
                }
                if !folder.pop() {
                    break;
                }
            }
        }
        self.publish();
        Ok(())
    }
}
