//! Local inference: the llama-server binary, and the instances that serve local models.

use serde::{Deserialize, Serialize};

/// The settings key holding a llama-server path chosen by the user.
pub const LLAMA_SERVER_SETTING: &str = "llama_server_path";

/// The llama-server found on this machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LlamaServerInfo {
    pub path: String,
    /// What `llama-server --version` printed, e.g. `version: 11434 (7e4c0a9)`.
    pub version: String,
    /// Where it was found: `settings`, `env`, `bundled` or `path`.
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
    pub ctx_size: Option<u32>,
    pub n_gpu_layers: Option<i32>,
    pub parallel: Option<u32>,
}
