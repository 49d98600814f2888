//! The boundary between BurnCloud's front ends (window, console API) and its services: plain data
//! types and the traits that serve them. No IO lives here.

mod calendar;
mod day_window;
mod error;
mod inference;
mod models;
mod money;
mod playground;
mod pricing;
mod secret;
mod types;

/// The setting that keeps call logs for this many days (empty or absent: forever).
pub const LOG_RETENTION_SETTING: &str = "log_retention_days";

/// The last millisecond of the year 9999: times in queries must lie between 1970 and this.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Checks that a query's time bounds are milliseconds between 1970 and the year 9999.
pub fn check_time_range(since_ms: Option<i64>, until_ms: Option<i64>) -> ServiceResult<()> {
    for (name, value) in [("since_ms", since_ms), ("until_ms", until_ms)] {
        if value.is_some_and(|ms| !(0..=MAX_TIME_MS).contains(&ms)) {
            return Err(ServiceError::invalid(format!(
                "{name} is milliseconds since 1970-01-01 UTC, from 0 to {MAX_TIME_MS}"
            )));
        }
    }
    Ok(())
}

pub use calendar::{civil_from_days, rfc3339_from_unix_ms, rfc3339_from_unix_seconds};
pub use day_window::DayWindow;
pub use error::{RemoteFailure, ServiceError};
pub use inference::*;
pub use models::*;
pub use money::{Money, MoneyParseError, NANOS_PER_UNIT};
pub use playground::*;
pub use secret::Secret;
pub use types::*;

/// Results of every service call.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// Provider channels: where requests go.
pub trait ChannelService: Send + Sync {
    fn list_channels(&self) -> ServiceResult<Vec<Channel>>;
    fn get_channel(&self, id: i64) -> ServiceResult<Channel>;
    fn create_channel(&self, input: ChannelInput) -> ServiceResult<Channel>;
    fn update_channel(&self, id: i64, patch: ChannelPatch) -> ServiceResult<Channel>;
    fn delete_channel(&self, id: i64) -> ServiceResult<()>;
}

/// Gateway tokens: who may call, with which limits.
pub trait TokenService: Send + Sync {
    fn list_tokens(&self) -> ServiceResult<Vec<Token>>;
    fn get_token(&self, id: i64) -> ServiceResult<Token>;
    /// The only call that ever returns the full key.
    fn create_token(&self, input: TokenInput) -> ServiceResult<CreatedToken>;
    fn update_token(&self, id: i64, patch: TokenPatch) -> ServiceResult<Token>;
    fn delete_token(&self, id: i64) -> ServiceResult<()>;
}

/// Model prices per million tokens.
pub trait PriceService: Send + Sync {
    fn list_prices(&self) -> ServiceResult<Vec<Price>>;
    fn set_price(&self, model: &str, input: PriceInput) -> ServiceResult<Price>;
    fn delete_price(&self, model: &str) -> ServiceResult<()>;
    /// The published prices BurnCloud ships, in every currency a provider publishes.
    fn price_presets(&self) -> ServiceResult<Vec<PricePreset>>;
    /// Sets each selected model's price to its published one in the account's currency: all of
    /// them, or none where one has no published price in that currency.
    fn apply_price_presets(&self, selection: PresetSelection) -> ServiceResult<Vec<Price>>;
}

/// The account: currency, balance and spend.
pub trait AccountService: Send + Sync {
    fn account(&self) -> ServiceResult<Account>;
    fn top_up(&self, amount: Money) -> ServiceResult<Account>;
    fn update_account(&self, patch: AccountPatch) -> ServiceResult<Account>;
}

/// Call logs and usage reports.
pub trait LogService: Send + Sync {
    fn query_logs(&self, query: &LogQuery) -> ServiceResult<LogPage>;
    fn usage(&self, query: &UsageQuery) -> ServiceResult<UsageReport>;
}

/// Small app settings (language, theme, close-to-tray), stored as text by key.
pub trait SettingsService: Send + Sync {
    fn get_setting(&self, key: &str) -> ServiceResult<Option<String>>;
    fn set_setting(&self, key: &str, value: &str) -> ServiceResult<()>;
}

/// Channel groups and their members.
pub trait GroupService: Send + Sync {
    fn list_groups(&self) -> ServiceResult<Vec<Group>>;
    fn get_group(&self, id: i64) -> ServiceResult<Group>;
    fn create_group(&self, input: GroupInput) -> ServiceResult<Group>;
    fn update_group(&self, id: i64, patch: GroupPatch) -> ServiceResult<Group>;
    fn delete_group(&self, id: i64) -> ServiceResult<()>;
}

/// A future a service returns for work that waits on the network.
pub type ServiceFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = ServiceResult<T>> + Send>>;

/// What the running gateway knows about its channels: breaker states, and live tests.
pub trait ChannelMonitor: Send + Sync {
    fn channel_health(&self) -> ServiceResult<Vec<ChannelHealthReport>>;
    /// Sends a minimal real request through the channel and records the outcome in its breaker.
    fn test_channel(&self, id: i64) -> ServiceFuture<ChannelTestReport>;
}

/// The console admin key: read it, or replace it with a new one.
pub trait AdminKeyService: Send + Sync {
    fn admin_key(&self) -> String;
    /// Generates and stores a new key; the old one stops working at once.
    fn rotate_admin_key(&self) -> ServiceResult<String>;
}

/// The model hub: search, repository files and downloads, from Hugging Face, hf-mirror or ModelScope.
pub trait ModelHubService: Send + Sync {
    fn search(&self, query: HubSearchQuery) -> ServiceFuture<HubSearchPage>;
    fn files(&self, source: HubSource, repo: String) -> ServiceFuture<HubFileList>;
    /// Queues the file (every shard, for a split model) and answers at once.
    fn start_download(&self, request: DownloadRequest) -> ServiceFuture<Download>;
    fn list_downloads(&self) -> ServiceResult<Vec<Download>>;
    fn get_download(&self, id: i64) -> ServiceResult<Download>;
    fn pause_download(&self, id: i64) -> ServiceResult<Download>;
    fn resume_download(&self, id: i64) -> ServiceResult<Download>;
    /// Stops the download and removes its partial files.
    fn cancel_download(&self, id: i64) -> ServiceResult<()>;
    /// Every download, republished whenever progress or a state changes (at most a few times a second).
    fn watch_downloads(&self) -> tokio::sync::watch::Receiver<Vec<Download>>;
    /// Queues files fetched by URL (each verified against its sha256) as one download of a
    /// non-hub source; the source's finisher turns them into what they are for.
    fn start_url_download(&self, request: UrlDownloadRequest) -> ServiceResult<Download>;
}

/// GGUF models on disk.
pub trait LocalModelService: Send + Sync {
    fn list_local_models(&self) -> ServiceResult<Vec<LocalModel>>;
    fn get_local_model(&self, id: i64) -> ServiceResult<LocalModel>;
    /// Registers a GGUF already on disk, checked by its header; the file stays where it is.
    fn import_local_model(&self, request: ImportRequest) -> ServiceFuture<LocalModel>;
    /// Removes the model and its files; refused while a running instance uses it.
    fn delete_local_model(&self, id: i64) -> ServiceResult<()>;
}

/// Tells the model store which models running instances use (the inference supervisor answers).
pub trait ModelUsage: Send + Sync {
    fn model_in_use(&self, model_id: i64) -> bool;
}

/// Local inference: deploy local models with llama-server and supervise the processes.
pub trait InferenceService: Send + Sync {
    /// The llama-server that deployments use, or an error saying how to get one.
    fn llama_server(&self) -> ServiceResult<LlamaServerInfo>;
    fn list_instances(&self) -> ServiceResult<Vec<Instance>>;
    /// A counter that moves whenever an instance is added, changes state, is used or goes away:
    /// what `list_instances` answers may have changed. Pages follow it instead of polling.
    fn watch_instances(&self) -> tokio::sync::watch::Receiver<u64>;
    fn get_instance(&self, id: i64) -> ServiceResult<Instance>;
    /// Creates the deployment and (unless `start` is false) starts it; answers at once.
    fn create_instance(&self, input: InstanceInput) -> ServiceResult<Instance>;
    /// Changes its idle TTL or pin; takes effect while it runs.
    fn update_instance(&self, id: i64, patch: InstancePatch) -> ServiceResult<Instance>;
    /// Removes its channel, then stops the process; resolves once it is gone.
    fn stop_instance(&self, id: i64) -> ServiceFuture<Instance>;
    /// Stops it if running, then starts it again.
    fn restart_instance(&self, id: i64) -> ServiceFuture<Instance>;
    /// Stops it if running and forgets it.
    fn delete_instance(&self, id: i64) -> ServiceFuture<()>;
    /// The last `tail` lines the process printed.
    fn instance_logs(&self, id: i64, tail: usize) -> ServiceResult<Vec<String>>;
    /// CPU, memory and GPUs, and what the active runtime can use; a probe that fails says why.
    fn hardware(&self) -> ServiceFuture<Hardware>;
    /// The llama.cpp runtimes installed under the data dir.
    fn list_runtimes(&self) -> ServiceResult<Vec<Runtime>>;
    /// Picks the release asset for this machine and queues its download; once verified it is
    /// unpacked, checked and made active. Answers with the download.
    fn install_runtime(&self, request: RuntimeInstallRequest) -> ServiceFuture<Download>;
    /// Makes an installed runtime the one new deployments use (after checking it still runs).
    fn activate_runtime(&self, id: &str) -> ServiceResult<Runtime>;
    /// Removes an installed runtime; refused for the active one and while an instance runs on it.
    fn delete_runtime(&self, id: &str) -> ServiceResult<()>;
}
