//! Local inference: the llama-server binary, and the instances that serve local models.

use serde::{Deserialize, Serialize};

/// The settings key holding a llama-server path chosen by the user.
pub const LLAMA_SERVER_SETTING: &str = "llama_server_path";
/// The settings key holding the id of the active managed runtime.
pub const LLAMA_RUNTIME_SETTING: &str = "llama_runtime";
/// The settings key holding a prefix put before GitHub download URLs (a mirror); empty: GitHub.
pub const LLAMACPP_MIRROR_SETTING: &str = "llamacpp_download_prefix";
/// A mirror prefix offered to users for whom GitHub is slow or blocked.
pub const LLAMACPP_MIRROR_SUGGESTION: &str = "https://ghfast.top/";
/// The settings key holding the memory (MiB) local models may use together; absent or empty: the
/// detected free VRAM (RAM for CPU runs).
pub const LOCAL_MEMORY_BUDGET_SETTING: &str = "local_memory_budget_mb";
/// The settings key holding how long (seconds) a call waits for a stopped local model to load.
pub const LOCAL_LOAD_TIMEOUT_SETTING: &str = "local_load_timeout_s";
/// Settings about this machine's own local models (its llama-server, its installed runtimes, its
/// memory): on a team store they stay in each instance's own file, not in the shared database.
pub const MACHINE_SETTINGS: [&str; 5] = [
    LLAMA_SERVER_SETTING,
    LLAMA_RUNTIME_SETTING,
    LLAMACPP_MIRROR_SETTING,
    LOCAL_MEMORY_BUDGET_SETTING,
    LOCAL_LOAD_TIMEOUT_SETTING,
];

/// How long a call waits for a local model to load, unless the setting says otherwise.
pub const DEFAULT_LOAD_TIMEOUT_S: u64 = 120;
/// How long a deployment stays loaded without calls, unless it says otherwise.
pub const DEFAULT_IDLE_TTL_S: u32 = 600;

/// The llama-server found on this machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LlamaServerInfo {
    pub path: String,
    /// What `llama-server --version` printed, e.g. `version: 11434 (7e4c0a9)`.
    pub version: String,
    /// Where it was found: `settings`, `env`, `managed`, `bundled` or `path`.
    pub found_in: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// The process is starting and not yet listening.
    Starting,
    /// llama-server is loading the model (`/health` answers 503).
    Loading,
    Ready,
    Stopping,
    Stopped,
    Failed,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Starting => "starting",
            InstanceState::Loading => "loading",
            InstanceState::Ready => "ready",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Failed => "failed",
        }
    }

    /// A process exists (or is being started) for the instance.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            InstanceState::Starting | InstanceState::Loading | InstanceState::Ready | InstanceState::Stopping
        )
    }
}

/// What a local deployment serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceKind {
    /// Chat and completions (with `--mmproj`, images too).
    #[default]
    Chat,
    /// `/v1/embeddings` (`--embeddings`, pooling from the GGUF).
    Embedding,
    /// `/v1/rerank` (`--reranking`).
    Rerank,
}

impl InstanceKind {
    pub const ALL: [InstanceKind; 3] = [InstanceKind::Chat, InstanceKind::Embedding, InstanceKind::Rerank];

    pub fn as_str(self) -> &'static str {
        match self {
            InstanceKind::Chat => "chat",
            InstanceKind::Embedding => "embedding",
            InstanceKind::Rerank => "rerank",
        }
    }

    pub fn parse(text: &str) -> Option<InstanceKind> {
        InstanceKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// A llama-server serving one local model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Instance {
    pub id: i64,
    pub model_id: i64,
    /// The model name clients use.
    pub alias: String,
    pub model_path: String,
    pub port: Option<u16>,
    pub pid: Option<u32>,
    pub state: InstanceState,
    pub error: Option<String>,
    pub started_at_ms: Option<i64>,
    pub ctx_size: u32,
    /// -1: llama-server's `--fit` chooses.
    pub n_gpu_layers: i32,
    pub parallel: u32,
    /// Crash restarts since the last start.
    pub restarts: u32,
    /// The gateway channel routing to it while ready.
    pub channel_id: Option<i64>,
    pub kind: InstanceKind,
    /// A vision projector passed as `--mmproj`.
    pub mmproj_path: Option<String>,
    /// Unloaded after this many seconds without a call; 0: never.
    pub idle_ttl_s: u32,
    /// Never unloaded, neither when idle nor to make room.
    pub pinned: bool,
    /// When its last call ended (or it became ready), ms since 1970; absent if not run since the
    /// app started.
    pub last_used_at: Option<i64>,
    /// Calls it is serving now.
    pub in_flight: u32,
    /// What it needs in memory at its context size, from the model's metadata.
    pub estimated_bytes: Option<u64>,
}

/// `POST /console/api/instances`
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceInput {
    pub model_id: i64,
    pub alias: Option<String>,
    /// Default: the largest context that fits where the model runs (at least 4096, at most the
    /// model's own and 32768).
    pub ctx_size: Option<u32>,
    /// Default: -1 (llama-server's `--fit` chooses) where the runtime has `--fit`, else what the
    /// estimate says fits.
    pub n_gpu_layers: Option<i32>,
    pub parallel: Option<u32>,
    /// Default: proposed from the model's metadata and file name.
    pub kind: Option<InstanceKind>,
    /// A vision projector (`mmproj` GGUF) on disk; default: one downloaded beside the model.
    pub mmproj_path: Option<String>,
    /// Default: 600 s; 0: never unloaded when idle.
    pub idle_ttl_s: Option<u32>,
    pub pinned: Option<bool>,
    /// Start it now (default) or only when a call names it.
    pub start: Option<bool>,
}

/// `GET /console/api/instances/{id}/logs` parameters: how many of the latest lines (200 when absent).
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceLogsQuery {
    pub tail: Option<usize>,
}

/// `PATCH /console/api/instances/{id}`: what may change while it runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstancePatch {
    pub idle_ttl_s: Option<u32>,
    pub pinned: Option<bool>,
}

/// Why a call to a local model could not be served.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WakeError {
    /// It did not become ready within the load limit; it keeps loading for later calls.
    #[error("the local model '{alias}' is still loading after {waited_s} s; try again shortly")]
    StillLoading { alias: String, waited_s: u64 },
    /// The memory budget is held by models serving calls, and none finished within the load limit.
    #[error("the local model '{alias}' is waiting for memory: {reason}; try again shortly")]
    NoRoom { alias: String, reason: String },
    /// It cannot start: llama-server's own last words, or why it was not run.
    #[error("the local model '{alias}' cannot run: {reason}")]
    Failed { alias: String, reason: String },
}

/// A hold on a ready local deployment: while it lives the deployment is not unloaded; dropping it
/// marks the deployment as used now.
pub struct LocalLease {
    /// Held for its `Drop`, which ends the hold.
    _guard: Box<dyn Send + Sync>,
}

impl LocalLease {
    pub fn new(guard: impl Send + Sync + 'static) -> LocalLease {
        LocalLease { _guard: Box::new(guard) }
    }
}

/// A future that wakes a local model.
pub type WakeFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<LocalLease, WakeError>> + Send>>;

/// The local deployments the gateway can wake by name (implemented by the inference service):
/// the router never starts processes itself.
pub trait LocalServing: Send + Sync {
    /// Every local deployment's name, running or not.
    fn local_models(&self) -> Vec<String>;
    /// Every local deployment as model lists describe it (Ollama's `/api/tags` and `/api/ps`).
    fn describe(&self) -> Vec<LocalModelFacts>;
    /// Holds the deployment named `alias` ready for one call, starting it (once, however many
    /// calls wait) and making room for it if needed; `None` when no local deployment has the name.
    fn acquire(&self, alias: &str) -> Option<WakeFuture>;
    /// How long the deployment named `alias` stays loaded after its calls end, until a later call
    /// says otherwise (Ollama's `keep_alive`; a call that does not say restores the deployment's own).
    fn keep_alive(&self, alias: &str, keep: KeepAlive);
}

/// How long a local model stays loaded once idle, as a call asks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeepAlive {
    /// The deployment's own idle TTL.
    #[default]
    AsSet,
    /// This long after the last call ends (zero: unload as soon as it is idle).
    For(std::time::Duration),
    /// Until a later call says otherwise.
    Forever,
}

/// A local deployment as a model list describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalModelFacts {
    pub alias: String,
    pub kind: InstanceKind,
    /// The model's files on disk, in bytes.
    pub size_bytes: u64,
    /// From the file name (`Q4_K_M`, `F16` …), where it says.
    pub quantization: Option<String>,
    /// Its architecture, from its metadata.
    pub family: Option<String>,
    /// Its parameter count as its metadata labels it (`8B`).
    pub parameter_size: Option<String>,
    pub sha256: Option<String>,
    /// When the model arrived (downloaded or imported).
    pub added_at_ms: i64,
    /// Present while it is loaded.
    pub loaded: Option<LoadedFacts>,
}

/// A loaded local deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedFacts {
    /// What it was estimated to hold in memory when it started.
    pub memory_bytes: u64,
    /// When it unloads if no call comes; `None`: pinned or never idle-unloaded.
    pub unloads_at_ms: Option<i64>,
}

/// A build of llama.cpp: which backend it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeVariant {
    Cpu,
    Vulkan,
    Cuda,
}

impl RuntimeVariant {
    pub const ALL: [RuntimeVariant; 3] = [RuntimeVariant::Cpu, RuntimeVariant::Vulkan, RuntimeVariant::Cuda];

    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeVariant::Cpu => "cpu",
            RuntimeVariant::Vulkan => "vulkan",
            RuntimeVariant::Cuda => "cuda",
        }
    }

    pub fn parse(text: &str) -> Option<RuntimeVariant> {
        RuntimeVariant::ALL.into_iter().find(|variant| variant.as_str() == text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GpuVendor {
    Nvidia,
    Amd,
    Intel,
    Other,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CpuInfo {
    pub model: String,
    pub physical_cores: Option<u32>,
    pub logical_cores: u32,
    pub avx2: bool,
    pub avx512: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemoryInfo {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// One graphics adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuInfo {
    pub vendor: GpuVendor,
    pub name: String,
    pub total_vram_bytes: Option<u64>,
    pub free_vram_bytes: Option<u64>,
    /// The llama.cpp builds that can use it.
    pub backends: Vec<RuntimeVariant>,
    /// The newest CUDA version the driver supports (`12.4`), from NVML.
    pub cuda_driver: Option<String>,
    /// Which probe found it: `nvml` or `system`.
    pub found_by: String,
}

/// A device a llama-server build says it can use (`--list-devices`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RuntimeDevice {
    /// `Vulkan0`, `CUDA0`, ...
    pub name: String,
    pub description: String,
    pub total_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
}

/// A probe that could not answer, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProbeNote {
    pub probe: String,
    pub reason: String,
}

/// `GET /console/api/hardware`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Hardware {
    /// `linux` or `windows`.
    pub os: String,
    pub arch: String,
    pub cpu: CpuInfo,
    pub memory: MemoryInfo,
    pub gpus: Vec<GpuInfo>,
    /// The runtime build to install on this machine.
    pub recommended_variant: RuntimeVariant,
    /// Why, in a sentence.
    pub recommendation: String,
    /// What the active runtime's `--list-devices` printed; absent without a runtime.
    pub runtime_devices: Option<Vec<RuntimeDevice>>,
    /// Probes that failed; their part reads as unknown.
    pub unknown: Vec<ProbeNote>,
}

/// An installed llama.cpp build under `<data dir>/runtimes/<id>/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Runtime {
    /// `<tag>-<variant>`, e.g. `b7412-vulkan`.
    pub id: String,
    pub tag: String,
    pub variant: RuntimeVariant,
    /// What `llama-server --version` printed when it was installed.
    pub version: String,
    pub server_path: String,
    /// What `--list-devices` printed when it was installed.
    pub devices: Vec<RuntimeDevice>,
    /// Whether this build's llama-server offers `--fit`.
    pub supports_fit: bool,
    pub active: bool,
    pub installed_at_ms: i64,
}

/// `POST /console/api/runtimes/install`
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuntimeInstallRequest {
    /// Default: what the hardware probe recommends.
    pub variant: Option<RuntimeVariant>,
    /// A release tag such as `b7412`; default: the newest release with a build for this machine.
    pub tag: Option<String>,
}
