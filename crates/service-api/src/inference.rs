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
    Starting,
    Ready,
    Stopping,
    Stopped,
    Failed,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Starting => "starting",
            InstanceState::Ready => "ready",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Failed => "failed",
        }
    }

    /// A process exists (or is being started) for the instance.
    pub fn is_live(self) -> bool {
        matches!(self, InstanceState::Starting | InstanceState::Ready | InstanceState::Stopping)
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
