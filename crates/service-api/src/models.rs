//! Model hub and local model store: hub sources, search results, repo files, downloads and the
//! GGUF models kept on disk.

use serde::{Deserialize, Serialize};

/// Where downloads come from: the three model hubs, and llama.cpp's releases (runtimes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HubSource {
    /// `https://huggingface.co`
    Huggingface,
    /// `https://hf-mirror.com`: the Hugging Face API, reachable from China.
    HfMirror,
    /// `https://www.modelscope.cn`: its own API.
    Modelscope,
    /// llama.cpp's GitHub releases: a runtime's archives, fetched by URL (not searchable).
    LlamaCpp,
}

impl HubSource {
    /// The model hubs, which can be searched and browsed.
    pub const ALL: [HubSource; 3] = [HubSource::Huggingface, HubSource::HfMirror, HubSource::Modelscope];

    pub fn as_str(self) -> &'static str {
        match self {
            HubSource::Huggingface => "huggingface",
            HubSource::HfMirror => "hf-mirror",
            HubSource::Modelscope => "modelscope",
            HubSource::LlamaCpp => "llama-cpp",
        }
    }

    pub fn parse(text: &str) -> Option<HubSource> {
        HubSource::ALL.into_iter().chain([HubSource::LlamaCpp]).find(|source| source.as_str() == text)
    }

    /// Searchable, with repositories and files: every source but llama.cpp's releases.
    pub fn is_model_hub(self) -> bool {
        match self {
            HubSource::Huggingface | HubSource::HfMirror | HubSource::Modelscope => true,
            HubSource::LlamaCpp => false,
        }
    }

    pub fn default_endpoint(self) -> &'static str {
        match self {
            HubSource::Huggingface => "https://huggingface.co",
            HubSource::HfMirror => "https://hf-mirror.com",
            HubSource::Modelscope => "https://www.modelscope.cn",
            HubSource::LlamaCpp => "https://api.github.com/repos/ggml-org/llama.cpp/releases",
        }
    }

    /// The settings key holding this source's optional access token.
    pub fn token_setting(self) -> String {
        format!("hub_token.{}", self.as_str())
    }
}

/// The order of a hub search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HubSort {
    #[default]
    Downloads,
    Likes,
    Trending,
    Updated,
}

impl HubSort {
    pub fn as_str(self) -> &'static str {
        match self {
            HubSort::Downloads => "downloads",
            HubSort::Likes => "likes",
            HubSort::Trending => "trending",
            HubSort::Updated => "updated",
        }
    }

    pub fn parse(text: &str) -> Option<HubSort> {
        [HubSort::Downloads, HubSort::Likes, HubSort::Trending, HubSort::Updated]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// `GET /console/api/hub/search` parameters.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HubSearchQuery {
    pub source: Option<HubSource>,
    #[serde(default)]
    pub q: String,
    /// Most downloaded first when absent.
    pub sort: Option<HubSort>,
    /// The `next_page` of a previous answer.
    pub page: Option<String>,
}

/// `GET /console/api/hub/files` parameters: a repo on a hub (Hugging Face when `source` is absent).
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HubFilesQuery {
    pub source: Option<HubSource>,
    pub repo: String,
}

/// One GGUF repository found on a hub.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HubRepo {
    pub repo: String,
    pub downloads: u64,
    pub likes: u64,
    pub updated_at: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HubSearchPage {
    pub source: HubSource,
    pub data: Vec<HubRepo>,
    /// Pass back as `page` for more; absent on the last page.
    pub next_page: Option<String>,
}

/// Which part of a split GGUF a file is (`-00001-of-00003`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// One file of a hub repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HubFile {
    pub path: String,
    pub size: u64,
    /// Known for LFS files; downloads are verified against it.
    pub sha256: Option<String>,
    /// The quantisation named in the file name: `Q4_K_M`, `Q8_0`, `F16`, ...
    pub quant: Option<String>,
    pub shard: Option<Shard>,
    /// Files of one split model share this: the first shard's path.
    pub group: String,
    /// A multimodal projector, deployed beside a model rather than on its own.
    pub mmproj: bool,
    /// Memory the model needs at its default context (4096, or less if it has less): weights, KV
    /// cache and compute buffer. Absent when its metadata could not be read.
    pub estimated_bytes: Option<u64>,
    /// Where it would run on this machine.
    pub fit: Fit,
}

/// Where a model would run on this machine, from its estimated memory and the free VRAM and RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Wholly in GPU memory.
    Gpu,
    /// Some layers on the GPU, the rest in RAM.
    Partial,
    /// In RAM, on the CPU (no GPU, or one too small to help).
    Cpu,
    /// More than GPU and RAM together.
    TooBig,
    /// Its metadata could not be read.
    Unknown,
}

/// What the memory estimate of a model is made of (from its GGUF metadata and file size).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelEstimate {
    pub weights_bytes: u64,
    pub block_count: u64,
    /// The context the model was trained for.
    pub context_length: u64,
    /// K and V per token of context, all layers, f16.
    pub kv_bytes_per_token: u64,
    /// llama.cpp's compute buffer (batch of 512).
    pub compute_bytes: u64,
}

/// The memory local models may use here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemoryBudget {
    /// Free memory on the largest GPU a runtime can use; absent without one.
    pub gpu_free_bytes: Option<u64>,
    pub ram_bytes: u64,
}

/// Room llama-server keeps free on each device (its `--fit-target` default, 1024 MiB).
pub const FIT_MARGIN_BYTES: u64 = 1 << 30;
/// The context a deployment gets unless the model has less or more fits.
pub const DEFAULT_CONTEXT: u64 = 4096;

impl ModelEstimate {
    /// Bytes at a context size.
    pub fn bytes_at(&self, context: u64) -> u64 {
        self.weights_bytes + self.kv_bytes_per_token * context + self.compute_bytes
    }

    /// The context a deployment starts with: 4096, or the model's own if smaller.
    pub fn default_context(&self) -> u64 {
        if self.context_length == 0 {
            DEFAULT_CONTEXT
        } else {
            self.context_length.min(DEFAULT_CONTEXT)
        }
    }

    /// Where it runs at `context` within `budget`.
    pub fn fit(&self, context: u64, budget: &MemoryBudget) -> Fit {
        let needed = self.bytes_at(context) + FIT_MARGIN_BYTES;
        let gpu = budget.gpu_free_bytes.unwrap_or(0);
        if gpu >= needed {
            Fit::Gpu
        } else if needed > gpu.saturating_add(budget.ram_bytes) {
            Fit::TooBig
        } else if gpu >= FIT_MARGIN_BYTES + self.bytes_at(context) / 8 {
            // At least an eighth of the model on the GPU is worth the split.
            Fit::Partial
        } else {
            Fit::Cpu
        }
    }

    /// A context and GPU layer count that fit `budget`: on a GPU that holds the whole model, the
    /// largest power-of-two context up to the model's own (at most 32768) that still fits there;
    /// elsewhere the default, since a longer context only slows a split or CPU run. All layers on
    /// the GPU when they fit, the share that fits when partly, none on the CPU.
    pub fn proposal(&self, budget: &MemoryBudget) -> (u64, u64) {
        let floor = self.default_context();
        let ceiling = if self.context_length == 0 { floor } else { self.context_length.min(32768) };
        let mut context = floor;
        let where_it_runs = self.fit(floor, budget);
        while where_it_runs == Fit::Gpu && context * 2 <= ceiling && self.fit(context * 2, budget) == Fit::Gpu {
            context *= 2;
        }
        let layers = match where_it_runs {
            Fit::Gpu => self.block_count + 1,
            Fit::Partial => {
                let room = budget.gpu_free_bytes.unwrap_or(0).saturating_sub(FIT_MARGIN_BYTES + self.compute_bytes);
                let per_layer = (self.bytes_at(context) - self.compute_bytes) / self.block_count.max(1);
                (room / per_layer.max(1)).min(self.block_count)
            }
            Fit::Cpu | Fit::TooBig | Fit::Unknown => 0,
        };
        (context, layers)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HubFileList {
    pub source: HubSource,
    pub repo: String,
    pub files: Vec<HubFile>,
}

/// One file fetched from a plain URL rather than a hub repository (a llama.cpp release asset).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UrlFile {
    pub name: String,
    pub url: String,
    pub size: u64,
    /// Required: nothing fetched by URL is used before its checksum matches.
    pub sha256: String,
}

/// A download of URL files, shown among the downloads; `label` stands where a repository would.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UrlDownloadRequest {
    pub source: HubSource,
    pub label: String,
    pub files: Vec<UrlFile>,
}

/// Says how much memory local models may use on this machine (the inference service answers).
pub trait MemoryProbe: Send + Sync {
    fn memory_budget(&self) -> MemoryBudget;
}

/// What a finished download of a source becomes (a runtime unpacked, say). Runs on a blocking
/// thread once every file is verified; an error fails the download and its files are removed.
pub trait DownloadFinisher: Send + Sync {
    fn finish(&self, download: &Download, files: &[std::path::PathBuf]) -> crate::ServiceResult<()>;
}

/// `POST /console/api/downloads`: one file, or every shard of a split model when `path` is a shard.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DownloadRequest {
    pub source: HubSource,
    pub repo: String,
    pub path: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DownloadState {
    Queued,
    Running,
    Paused,
    Verifying,
    Done,
    Failed,
}

impl DownloadState {
    pub fn as_str(self) -> &'static str {
        match self {
            DownloadState::Queued => "queued",
            DownloadState::Running => "running",
            DownloadState::Paused => "paused",
            DownloadState::Verifying => "verifying",
            DownloadState::Done => "done",
            DownloadState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DownloadState> {
        [
            DownloadState::Queued,
            DownloadState::Running,
            DownloadState::Paused,
            DownloadState::Verifying,
            DownloadState::Done,
            DownloadState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }

    /// Still to finish: the download continues after a restart of the app.
    pub fn is_active(self) -> bool {
        matches!(self, DownloadState::Queued | DownloadState::Running | DownloadState::Verifying)
    }
}

/// Where a local model came from: downloaded from a hub, or a file the user imported. Written as
/// the hub's name or `imported`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ModelOrigin {
    Hub(HubSource),
    Imported,
}

impl ModelOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelOrigin::Hub(source) => source.as_str(),
            ModelOrigin::Imported => "imported",
        }
    }

    pub fn parse(text: &str) -> Option<ModelOrigin> {
        match text {
            "imported" => Some(ModelOrigin::Imported),
            hub => HubSource::parse(hub).map(ModelOrigin::Hub),
        }
    }
}

impl std::fmt::Display for ModelOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for ModelOrigin {
    type Error = String;

    fn try_from(text: String) -> Result<ModelOrigin, String> {
        ModelOrigin::parse(&text).ok_or_else(|| format!("unknown model origin {text:?}"))
    }
}

impl From<ModelOrigin> for String {
    fn from(origin: ModelOrigin) -> String {
        origin.as_str().to_string()
    }
}

/// A download and its progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Download {
    pub id: i64,
    pub source: HubSource,
    pub repo: String,
    pub path: String,
    /// Every file this download fetches (several for a split model).
    pub files: Vec<String>,
    pub state: DownloadState,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub speed_bps: u64,
    pub eta_s: Option<u64>,
    pub error: Option<String>,
    /// The local model it became, once done.
    pub local_model_id: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A GGUF model on disk, downloaded or imported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LocalModel {
    pub id: i64,
    /// The file to load (the first shard of a split model).
    pub path: String,
    pub files: Vec<String>,
    pub size: u64,
    pub sha256: Option<String>,
    /// A hub source (`huggingface` …), or `imported`.
    #[schemars(with = "String")]
    pub source: ModelOrigin,
    pub repo: Option<String>,
    pub quant: Option<String>,
    pub added_at_ms: i64,
    /// A running instance serves it; it cannot be deleted now.
    pub in_use: bool,
    /// What its memory needs are made of, from its metadata; absent if unreadable.
    pub estimate: Option<ModelEstimate>,
    /// Where it runs here at its default context.
    pub fit: Fit,
    /// What a deployment of it serves, from its metadata and file name.
    pub kind: crate::InstanceKind,
    /// A vision projector (`mmproj*.gguf`) in the same folder, loaded with it for images.
    pub mmproj_path: Option<String>,
    /// Its architecture (`llama`, `qwen3`), from its metadata.
    #[serde(default)]
    pub family: Option<String>,
    /// Its parameter count as its metadata labels it (`8B`), where it does.
    #[serde(default)]
    pub parameter_size: Option<String>,
}

/// `POST /console/api/models/local/import`
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImportRequest {
    pub path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_and_write_the_strings_the_wire_and_database_carry() {
        for origin in
            [ModelOrigin::Imported, ModelOrigin::Hub(HubSource::HfMirror), ModelOrigin::Hub(HubSource::Modelscope)]
        {
            assert_eq!(ModelOrigin::parse(origin.as_str()), Some(origin));
            assert_eq!(serde_json::to_value(origin).unwrap(), serde_json::json!(origin.as_str()));
        }
        assert!(serde_json::from_value::<ModelOrigin>(serde_json::json!("ftp")).is_err());
        for sort in [HubSort::Downloads, HubSort::Likes, HubSort::Trending, HubSort::Updated] {
            assert_eq!(HubSort::parse(sort.as_str()), Some(sort));
            assert_eq!(serde_json::to_value(sort).unwrap(), serde_json::json!(sort.as_str()));
        }
        let status = |text: &str| crate::StatusFilter::parse(text);
        assert_eq!((status("ok"), status("success")), (Ok(crate::StatusFilter::Ok), Ok(crate::StatusFilter::Ok)));
        assert_eq!(status("404"), Ok(crate::StatusFilter::Code(404)));
        assert!(status("often").unwrap_err().contains("use an HTTP code, ok or error"));
        assert_eq!(String::from(crate::StatusFilter::Error), "error");
        assert_eq!(crate::RemoteFailure::HubGated.as_str(), "hub_gated");
        assert!(crate::RemoteFailure::HubUnreachable.is_transient() && !crate::RemoteFailure::HubGated.is_transient());
    }
}
