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

/// `GET /console/api/hub/search` parameters.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HubSearchQuery {
    pub source: Option<HubSource>,
    #[serde(default)]
    pub q: String,
    /// `downloads` (default), `likes`, `trending` or `updated`.
    pub sort: Option<String>,
    /// The `next_page` of a previous answer.
    pub page: Option<String>,
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
    /// A hub source, or `imported`.
    pub source: String,
    pub repo: Option<String>,
    pub quant: Option<String>,
    pub added_at_ms: i64,
    /// A running instance serves it; it cannot be deleted now.
    pub in_use: bool,
}

/// `POST /console/api/models/local/import`
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImportRequest {
    pub path: String,
}
