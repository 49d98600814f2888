//! Plain data types shared by the services, the console API and the window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{DayWindow, Money, Secret};

/// What kind of upstream a channel is; decides its wire format and default base URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Any OpenAI-compatible server; `base_url` includes `/v1`.
    Openai,
    Deepseek,
    Qwen,
    /// Anthropic's Messages API, converted to and from OpenAI's format.
    Anthropic,
    /// Google's Gemini API, converted to and from OpenAI's format.
    Gemini,
    /// A llama-server this app runs; registered and removed by the inference supervisor.
    Local,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 6] = [
        ChannelKind::Openai,
        ChannelKind::Deepseek,
        ChannelKind::Qwen,
        ChannelKind::Anthropic,
        ChannelKind::Gemini,
        ChannelKind::Local,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Openai => "openai",
            ChannelKind::Deepseek => "deepseek",
            ChannelKind::Qwen => "qwen",
            ChannelKind::Anthropic => "anthropic",
            ChannelKind::Gemini => "gemini",
            ChannelKind::Local => "local",
        }
    }

    pub fn parse(text: &str) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The base URL used when a channel of this kind leaves `base_url` empty.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ChannelKind::Openai | ChannelKind::Local => None,
            ChannelKind::Deepseek => Some("https://api.deepseek.com"),
            ChannelKind::Qwen => Some("https://dashscope.aliyuncs.com/compatible-mode/v1"),
            ChannelKind::Anthropic => Some("https://api.anthropic.com"),
            ChannelKind::Gemini => Some("https://generativelanguage.googleapis.com"),
        }
    }
}

/// A provider channel as shown to people: the key appears only as a hint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub kind: ChannelKind,
    /// As configured; `None` means the kind's default.
    pub base_url: Option<String>,
    pub key_hint: String,
    pub models: Vec<String>,
    pub model_mapping: BTreeMap<String, String>,
    pub priority: i64,
    pub weight: i64,
    pub enabled: bool,
    /// For `openai` channels: `/v1/responses` calls go to the upstream's own Responses API. Off for
    /// OpenAI-compatible servers that lack it: those calls are converted to chat completions.
    #[serde(default = "default_true")]
    pub native_responses: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Channel {
    /// The base URL requests go to: the configured one or the kind's default.
    pub fn effective_base_url(&self) -> Option<&str> {
        self.base_url.as_deref().or(self.kind.default_base_url())
    }

    /// Whether this channel answers requests for `model` (listed or mapped).
    pub fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|m| m == model) || self.model_mapping.contains_key(model)
    }

    /// The name to send upstream for a requested model.
    pub fn upstream_model<'a>(&'a self, model: &'a str) -> &'a str {
        self.model_mapping.get(model).map(String::as_str).unwrap_or(model)
    }
}

fn default_true() -> bool {
    true
}

fn default_weight() -> i64 {
    1
}

/// A new channel.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
pub struct ChannelInput {
    pub name: String,
    pub kind: ChannelKind,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key: Secret,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub model_mapping: BTreeMap<String, String>,
    #[serde(default)]
    pub priority: i64,
    #[serde(default = "default_weight")]
    pub weight: i64,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// For `openai` channels: send `/v1/responses` calls to the upstream's Responses API (default)
    /// rather than converting them to chat completions.
    #[serde(default = "default_true")]
    pub native_responses: bool,
}

/// A change to a channel: absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub kind: Option<ChannelKind>,
    /// `Some(None)` (JSON null) resets to the kind's default.
    #[serde(default, deserialize_with = "double_option")]
    pub base_url: Option<Option<String>>,
    pub api_key: Option<Secret>,
    pub models: Option<Vec<String>>,
    pub model_mapping: Option<BTreeMap<String, String>>,
    pub priority: Option<i64>,
    pub weight: Option<i64>,
    pub enabled: Option<bool>,
    pub native_responses: Option<bool>,
}

/// A gateway token as shown to people: never the key itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Token {
    pub id: i64,
    pub name: String,
    pub key_prefix: String,
    pub group: String,
    pub quota_limit: Option<Money>,
    pub used_quota: Money,
    pub rpm_limit: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub expires_at_ms: Option<i64>,
    pub models: Vec<String>,
    pub enabled: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Calls from this machine to Ollama's routes that send no key are charged to this token (for
    /// Ollama clients that cannot send one). At most one token has it.
    #[serde(default)]
    pub keyless_local: bool,
}

fn default_group() -> String {
    "default".to_string()
}

/// A new token.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
pub struct TokenInput {
    pub name: String,
    #[serde(default = "default_group")]
    pub group: String,
    #[serde(default)]
    pub quota_limit: Option<Money>,
    #[serde(default)]
    pub rpm_limit: Option<i64>,
    #[serde(default)]
    pub tpm_limit: Option<i64>,
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

/// A change to a token: absent fields stay; JSON null clears the nullable ones.
#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
pub struct TokenPatch {
    pub name: Option<String>,
    pub group: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub quota_limit: Option<Option<Money>>,
    #[serde(default, deserialize_with = "double_option")]
    pub rpm_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub tpm_limit: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    pub expires_at_ms: Option<Option<i64>>,
    pub models: Option<Vec<String>>,
    pub enabled: Option<bool>,
    /// `true` makes this the token keyless local calls are charged to (and no other).
    pub keyless_local: Option<bool>,
}

/// The answer to creating a token: the only time the full key is shown.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: Token,
    pub key: String,
}

/// A model's price per million tokens. The prompt-cache prices are optional: where one is not set,
/// those tokens are charged as input (a 1-hour cache write, where that is not set, as a 5-minute one).
/// The unit prices (per image, per second of audio, per million characters) are charged on top of
/// the tokens, where set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Price {
    pub model: String,
    pub input_per_mtok: Money,
    pub output_per_mtok: Money,
    #[serde(default)]
    pub cache_read_per_mtok: Option<Money>,
    #[serde(default)]
    pub cache_write_per_mtok: Option<Money>,
    #[serde(default)]
    pub cache_write_1h_per_mtok: Option<Money>,
    #[serde(default)]
    pub per_image: Option<Money>,
    #[serde(default)]
    pub per_audio_second: Option<Money>,
    #[serde(default)]
    pub per_million_characters: Option<Money>,
    /// Rates for calls with a long prompt, lowest threshold first; empty where the price is flat.
    #[serde(default)]
    pub tiers: Vec<PriceTier>,
    /// Rates for calls made in the provider's peak hours; the price's own rates are the off-peak ones.
    #[serde(default)]
    pub peak: Option<PeakHours>,
}

/// The token rates a tier or peak hours charge instead of a price's own. A cache price that is
/// not set is charged as input (a 1-hour cache write as another cache write), as on the price.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Rates {
    pub input_per_mtok: Money,
    pub output_per_mtok: Money,
    #[serde(default)]
    pub cache_read_per_mtok: Option<Money>,
    #[serde(default)]
    pub cache_write_per_mtok: Option<Money>,
    #[serde(default)]
    pub cache_write_1h_per_mtok: Option<Money>,
}

/// A prompt-length tier: a call whose prompt (input, cache reads and cache writes together) is
/// longer than `above_prompt_tokens` pays these rates on every token, output included — as
/// Anthropic, OpenAI and Qwen bill long prompts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PriceTier {
    pub above_prompt_tokens: u64,
    #[serde(flatten)]
    pub rates: Rates,
}

/// Peak hours, as DeepSeek bills: a call that starts inside one of the windows pays these rates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PeakHours {
    /// Windows in UTC as `HH:MM-HH:MM`, the end excluded, e.g. `["01:00-04:00", "06:00-10:00"]`.
    pub windows_utc: Vec<DayWindow>,
    /// Only Monday to Friday (UTC); otherwise every day.
    #[serde(default = "weekdays_only")]
    pub weekdays_only: bool,
    #[serde(flatten)]
    pub rates: Rates,
}

fn weekdays_only() -> bool {
    true
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PriceInput {
    pub input_per_mtok: Money,
    pub output_per_mtok: Money,
    /// Input tokens read from a prompt cache; null or absent: charged as input.
    #[serde(default)]
    pub cache_read_per_mtok: Option<Money>,
    /// Input tokens written to a prompt cache (Anthropic's 5-minute writes); null or absent: charged as input.
    #[serde(default)]
    pub cache_write_per_mtok: Option<Money>,
    /// Anthropic's 1-hour cache writes; null or absent: charged as other cache writes.
    #[serde(default)]
    pub cache_write_1h_per_mtok: Option<Money>,
    /// Each image an image model returns (`/v1/images/*`); null or absent: not charged.
    #[serde(default)]
    pub per_image: Option<Money>,
    /// Each second of audio transcribed or translated (`/v1/audio/transcriptions|translations`).
    #[serde(default)]
    pub per_audio_second: Option<Money>,
    /// A million characters of text spoken (`/v1/audio/speech`).
    #[serde(default)]
    pub per_million_characters: Option<Money>,
    /// Prompt-length tiers, each with a distinct `above_prompt_tokens`; absent: none.
    #[serde(default)]
    pub tiers: Vec<PriceTier>,
    /// Peak hours and their rates; absent or null: the same rates all day. Not with `tiers`.
    #[serde(default)]
    pub peak: Option<PeakHours>,
}

/// A provider's published price for one model, shipped with BurnCloud: the page it was read from
/// and the day it was last checked there. Providers change prices often; the page is the truth.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PricePreset {
    /// Who publishes it: `Anthropic`, `DeepSeek`, `OpenAI` or `Qwen`.
    pub provider: String,
    pub model: String,
    /// The currency the provider publishes this price in; it applies to an account in that currency.
    pub currency: Currency,
    #[serde(flatten)]
    pub price: PriceInput,
    /// The provider's page the price was read from.
    pub source: String,
    /// The day (`YYYY-MM-DD`) the price was last checked against `source`.
    pub checked: String,
    /// What the price cannot express, or where a figure came from, where that needs saying.
    #[serde(default)]
    pub note: Option<String>,
}

/// Models whose published prices to use, in the account's currency.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PresetSelection {
    pub models: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Currency {
    #[default]
    #[serde(rename = "USD")]
    Usd,
    #[serde(rename = "CNY")]
    Cny,
}

impl Currency {
    pub fn as_str(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Cny => "CNY",
        }
    }

    pub fn parse(text: &str) -> Option<Currency> {
        match text {
            "USD" => Some(Currency::Usd),
            "CNY" => Some(Currency::Cny),
            _ => None,
        }
    }
}

/// The account's money.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Account {
    pub currency: Currency,
    /// What is left to spend; `None` is unlimited.
    pub balance: Option<Money>,
    pub used: Money,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
pub struct AccountPatch {
    pub currency: Option<Currency>,
    /// JSON null makes the balance unlimited; a value sets what is left to spend.
    #[serde(default, deserialize_with = "double_option")]
    pub balance: Option<Option<Money>>,
}

/// Why a call ended the way it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Completed,
    ClientCancelled,
    UpstreamError,
    UpstreamCut,
    Rejected,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::ClientCancelled => "client_cancelled",
            EndReason::UpstreamError => "upstream_error",
            EndReason::UpstreamCut => "upstream_cut",
            EndReason::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<EndReason> {
        [
            EndReason::Completed,
            EndReason::ClientCancelled,
            EndReason::UpstreamError,
            EndReason::UpstreamCut,
            EndReason::Rejected,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == text)
    }
}

/// Where a log row's token counts came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    Upstream,
    Estimated,
}

impl UsageSource {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageSource::Upstream => "upstream",
            UsageSource::Estimated => "estimated",
        }
    }
}

/// One call through the gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogEntry {
    pub id: i64,
    pub request_id: String,
    pub created_at_ms: i64,
    pub token_id: Option<i64>,
    pub token_name: Option<String>,
    pub channel_id: Option<i64>,
    pub channel_name: Option<String>,
    pub endpoint: String,
    pub model: String,
    pub upstream_model: Option<String>,
    pub is_stream: bool,
    pub status: u16,
    pub error: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Of the prompt tokens, those read from the provider's prompt cache.
    pub cached_tokens: u64,
    /// Of the prompt tokens, those written to the prompt cache (1-hour writes included).
    pub cache_write_tokens: u64,
    pub cache_write_1h_tokens: u64,
    /// Of the completion tokens, those spent reasoning.
    pub reasoning_tokens: u64,
    /// Images returned (`/v1/images/*`).
    #[serde(default)]
    pub images: u64,
    /// Milliseconds of audio transcribed or translated.
    #[serde(default)]
    pub audio_ms: u64,
    /// Characters of text spoken (`/v1/audio/speech`).
    #[serde(default)]
    pub characters: u64,
    pub usage_source: UsageSource,
    pub cost: Money,
    pub priced: bool,
    pub latency_ms: u64,
    pub first_token_ms: Option<u64>,
    pub end_reason: EndReason,
    pub attempts: u32,
}

/// Which calls the log list shows by their status: written `ok` (or `success`), `error`, or a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum StatusFilter {
    /// 2xx.
    Ok,
    /// Everything but 2xx.
    Error,
    Code(u16),
}

impl StatusFilter {
    pub fn parse(text: &str) -> Result<StatusFilter, String> {
        match text {
            "ok" | "success" => Ok(StatusFilter::Ok),
            "error" => Ok(StatusFilter::Error),
            code => code
                .parse()
                .map(StatusFilter::Code)
                .map_err(|_| format!("status {code:?}: use an HTTP code, ok or error")),
        }
    }
}

impl TryFrom<String> for StatusFilter {
    type Error = String;

    fn try_from(text: String) -> Result<StatusFilter, String> {
        StatusFilter::parse(&text)
    }
}

impl From<StatusFilter> for String {
    fn from(filter: StatusFilter) -> String {
        match filter {
            StatusFilter::Ok => "ok".into(),
            StatusFilter::Error => "error".into(),
            StatusFilter::Code(code) => code.to_string(),
        }
    }
}

/// `POST /console/api/account/topup`: credit to add to the balance.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TopUp {
    pub amount: Money,
}

/// Filters for the log list; newest first, paged by `before_id`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
pub struct LogQuery {
    pub limit: Option<u32>,
    pub before_id: Option<i64>,
    pub model: Option<String>,
    pub token_id: Option<i64>,
    pub channel_id: Option<i64>,
    /// An HTTP status (`200`) or a class: `ok` (2xx) / `error` (everything else).
    #[schemars(with = "Option<String>")]
    pub status: Option<StatusFilter>,
    #[schemars(range(min = 0, max = crate::MAX_TIME_MS))]
    pub since_ms: Option<i64>,
    #[schemars(range(min = 0, max = crate::MAX_TIME_MS))]
    pub until_ms: Option<i64>,
    /// One call by its `x-request-id` (the `request_id` of its log row).
    pub request_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogPage {
    pub items: Vec<LogEntry>,
    pub next_before_id: Option<i64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsageGroupBy {
    #[default]
    Day,
    Model,
    Token,
    Channel,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
pub struct UsageQuery {
    #[schemars(range(min = 0, max = crate::MAX_TIME_MS))]
    pub since_ms: Option<i64>,
    #[schemars(range(min = 0, max = crate::MAX_TIME_MS))]
    pub until_ms: Option<i64>,
    #[serde(default)]
    pub group_by: UsageGroupBy,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UsageTotals {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Of the prompt tokens, those read from a prompt cache: `cached_tokens / prompt_tokens` is the hit rate.
    #[serde(default)]
    pub cached_tokens: u64,
    pub cost: Money,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UsageRow {
    /// The day (`YYYY-MM-DD`, UTC), model, token or channel name.
    pub key: String,
    #[serde(flatten)]
    pub totals: UsageTotals,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UsageReport {
    pub totals: UsageTotals,
    pub rows: Vec<UsageRow>,
}

/// Distinguishes a field that is absent (`None`) from one set to null (`Some(None)`).
fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// How a group picks among its channels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Each channel in turn.
    RoundRobin,
    /// In exact proportion to the members' weights (smooth weighted round-robin).
    Weighted,
    /// The highest priority tier first, rotating by weight within it; lower tiers only on failure.
    #[default]
    Priority,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::Weighted => "weighted",
            Strategy::Priority => "priority",
        }
    }

    pub fn parse(text: &str) -> Option<Strategy> {
        [Strategy::RoundRobin, Strategy::Weighted, Strategy::Priority].into_iter().find(|s| s.as_str() == text)
    }
}

/// A channel's place in a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroupMember {
    pub channel_id: i64,
    #[serde(default = "default_weight")]
    pub weight: i64,
    #[serde(default)]
    pub priority: i64,
}

/// A named set of channels that tokens route within.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Group {
    pub id: i64,
    pub name: String,
    pub strategy: Strategy,
    pub members: Vec<GroupMember>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

pub const DEFAULT_GROUP: &str = "default";

#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
pub struct GroupInput {
    pub name: String,
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default)]
    pub members: Vec<GroupMember>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
pub struct GroupPatch {
    pub name: Option<String>,
    pub strategy: Option<Strategy>,
    pub members: Option<Vec<GroupMember>>,
}

/// Where a channel's circuit breaker stands: `closed` (calls go through), `open` (resting after
/// failures), `half_open` (one probe call decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerPosition {
    Closed,
    Open,
    HalfOpen,
}

/// A channel's health as its circuit breaker sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChannelHealthReport {
    pub id: i64,
    pub name: String,
    pub kind: ChannelKind,
    pub breaker: BreakerPosition,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<u64>,
    pub retry_at_ms: Option<i64>,
}

/// The result of testing a channel with a minimal real request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChannelTestReport {
    pub ok: bool,
    pub model: Option<String>,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}
