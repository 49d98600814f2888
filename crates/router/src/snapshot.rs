//! The in-memory configuration the hot path reads: tokens by key hash, channels, prices and the
//! account, swapped whole when the configuration changes. Spend counters outlive snapshots.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderName, HeaderValue};
use burncloud_database::{ChannelRecord, GatewayConfig};
use burncloud_service_api::{Channel, ChannelKind, Currency, Money, Price, Strategy, Token, DEFAULT_GROUP};

use crate::adapters::{Wire, ENDPOINTS};
use crate::balancer::{Keyed, Member, Rotation};
use crate::upstream::UpstreamUrl;

/// A token as the router sees it, with its live spend.
#[derive(Debug)]
pub struct TokenEntry {
    pub token: Token,
    pub spend: Arc<TokenSpend>,
}

impl TokenEntry {
    pub fn used(&self) -> Money {
        Money(self.spend.used.load(Ordering::Relaxed))
    }
}

/// What a token has spent, live, and the calls it has under way here.
#[derive(Debug)]
pub struct TokenSpend {
    used: AtomicI64,
    pace: Pace,
}

/// The calls under way here and what the calls charged here cost on average: a quota check counts
/// the calls under way at that average, so that many calls started at once cannot each find the
/// same last bit of quota and together spend far past it.
#[derive(Debug, Default)]
pub struct Pace {
    under_way: AtomicI64,
    charged_calls: AtomicI64,
    charged_nanos: AtomicI64,
}

/// The calls already under way when one more starts, and what they are expected to cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnderWay {
    pub calls: i64,
    pub expected: Money,
}

impl Pace {
    /// Counts one more call under way; one counter, so calls starting together each see the others.
    fn start(&self) -> UnderWay {
        let calls = self.under_way.fetch_add(1, Ordering::Relaxed).max(0);
        let charged_calls = self.charged_calls.load(Ordering::Relaxed);
        let average = if charged_calls > 0 { self.charged_nanos.load(Ordering::Relaxed) / charged_calls } else { 0 };
        UnderWay { calls, expected: Money(calls.saturating_mul(average)) }
    }

    /// A call under way ended and cost `cost`; calls that cost nothing (failed, unpriced) do not
    /// lower the average a paid call is expected to cost.
    fn finish(&self, cost: Money) {
        self.under_way.fetch_sub(1, Ordering::Relaxed);
        if cost.0 > 0 {
            self.charged_calls.fetch_add(1, Ordering::Relaxed);
            self.charged_nanos.fetch_add(cost.0, Ordering::Relaxed);
        }
    }
}

/// A routable channel: its wire format, parsed endpoint URLs and ready-made auth headers.
pub struct ChannelEntry {
    pub channel: Channel,
    pub wire: Wire,
    pub base_url: String,
    /// The URLs for chat completions, completions and embeddings, parsed once per snapshot
    /// (for OpenAI-format upstreams `{base_url}/chat/completions` and so on; Anthropic has one).
    pub(crate) urls: [UpstreamUrl; crate::adapters::ENDPOINTS],
    /// Where `/v1/responses` calls go as they are: an OpenAI channel's own Responses API, unless
    /// the channel turned that off. Without it they are converted to chat completions.
    pub(crate) responses_url: Option<UpstreamUrl>,
    pub auth_headers: Vec<(HeaderName, HeaderValue)>,
    pub api_key: String,
}

impl Keyed for ChannelEntry {
    fn key(&self) -> i64 {
        self.channel.id
    }
}

impl ChannelEntry {
    /// A routable entry for `record`, or None when its base URL does not parse.
    pub fn from_record(record: ChannelRecord) -> Option<ChannelEntry> {
        let base_url = record.channel.effective_base_url()?.trim_end_matches('/').to_string();
        let wire = Wire::of(record.channel.kind);
        let url = |path: &str| reqwest::Url::parse(&format!("{base_url}/{path}"));
        let paths = wire.endpoint_paths();
        let parsed: Result<Vec<UpstreamUrl>, _> = paths.iter().map(|path| url(path).map(UpstreamUrl::new)).collect();
        let Some(urls) = parsed.ok().and_then(|urls| <[UpstreamUrl; ENDPOINTS]>::try_from(urls).ok()) else {
            tracing::warn!(channel = %record.channel.name, %base_url, "skipping a channel whose base URL does not parse");
            return None;
        };
        let responses_url = (record.channel.kind == ChannelKind::Openai && record.channel.native_responses)
            .then(|| url("responses").ok().map(UpstreamUrl::new))
            .flatten();
        let key = record.api_key.expose();
        let auth_headers = wire.auth_headers(key);
        Some(ChannelEntry {
            channel: record.channel,
            wire,
            base_url,
            urls,
            responses_url,
            auth_headers,
            api_key: key.to_string(),
        })
    }
}

/// A group ready for routing: its strategy, its enabled members, and its rotation state.
#[derive(Debug)]
pub struct GroupEntry {
    pub strategy: Strategy,
    /// The default group without listed members: every channel, local deployments included,
    /// even those not loaded now.
    pub all_channels: bool,
    pub members: Vec<Member<ChannelEntry>>,
    pub rotation: Arc<Rotation>,
}

/// Rotation state per group, kept across snapshots so weighted shares stay exact through edits.
#[derive(Default)]
pub struct Rotations(Mutex<HashMap<String, Arc<Rotation>>>);

impl Rotations {
    fn for_group(&self, name: &str) -> Arc<Rotation> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).entry(name.to_string()).or_default().clone()
    }
}

impl std::fmt::Debug for ChannelEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelEntry").field("channel", &self.channel).field("base_url", &self.base_url).finish()
    }
}

/// Live spend per token and for the account. It is charged as calls finish, ahead of the log
/// writer, so that quota checks see spending the database has not stored yet.
pub struct SpendLedger {
    tokens: Mutex<HashMap<i64, Arc<TokenSpend>>>,
    account: AtomicI64,
    account_pace: Pace,
}

impl SpendLedger {
    /// Starts from what the database says the account has spent.
    pub fn new(account_used: Money) -> SpendLedger {
        SpendLedger { tokens: Mutex::default(), account: AtomicI64::new(account_used.0), account_pace: Pace::default() }
    }

    fn token_spend(&self, token: &Token) -> Arc<TokenSpend> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let spend = || Arc::new(TokenSpend { used: AtomicI64::new(token.used_quota.0), pace: Pace::default() });
        tokens.entry(token.id).or_insert_with(spend).clone()
    }

    /// Counts a call under way for its token and the account until `finish_call`; returns the
    /// calls each already had under way.
    pub fn start_call(&self, token: &TokenEntry) -> (UnderWay, UnderWay) {
        (token.spend.pace.start(), self.account_pace.start())
    }

    /// Ends a call `start_call` counted, which cost `cost` (charged with `charge`).
    pub fn finish_call(&self, token: &TokenEntry, cost: Money) {
        token.spend.pace.finish(cost);
        self.account_pace.finish(cost);
    }

    pub fn account_used(&self) -> Money {
        Money(self.account.load(Ordering::Relaxed))
    }

    /// What the shared store says `token_id` has spent, with other instances' calls in it: the
    /// live count never falls below it (and keeps this instance's charges not yet written).
    pub fn observe(&self, token_id: i64, stored: Money) {
        if let Some(spend) = self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(&token_id) {
            spend.used.fetch_max(stored.0, Ordering::Relaxed);
        }
    }

    /// A charge another instance made: counted here at once, ahead of the stored total.
    pub fn add(&self, token_id: i64, cost: Money) {
        if let Some(spend) = self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(&token_id) {
            spend.used.fetch_add(cost.0, Ordering::Relaxed);
        }
        self.account.fetch_add(cost.0, Ordering::Relaxed);
    }

    pub fn observe_account(&self, stored: Money) {
        self.account.fetch_max(stored.0, Ordering::Relaxed);
    }

    pub fn charge(&self, token: &TokenEntry, cost: Money) {
        if cost.0 != 0 {
            token.spend.used.fetch_add(cost.0, Ordering::Relaxed);
            self.account.fetch_add(cost.0, Ordering::Relaxed);
        }
    }
}

#[derive(Debug, Default)]
pub struct Snapshot {
    /// By the SHA-256 of their key (`token_key_digest`), the stored hex hash decoded once here.
    tokens_by_digest: HashMap<[u8; 32], Arc<TokenEntry>>,
    /// Each group with its enabled member channels.
    groups: HashMap<String, GroupEntry>,
    prices: HashMap<String, Price>,
    pub account_credit: Option<Money>,
    pub account_currency: Currency,
    /// The token keyless calls from this machine to Ollama's routes are charged to, if one is.
    pub keyless_local: Option<Arc<TokenEntry>>,
}

impl Snapshot {
    pub fn build(config: GatewayConfig, ledger: &SpendLedger, rotations: &Rotations) -> Snapshot {
        let tokens_by_digest: HashMap<[u8; 32], Arc<TokenEntry>> = config
            .tokens
            .into_iter()
            .filter_map(|record| {
                let mut digest = [0u8; 32];
                if hex::decode_to_slice(&record.key_hash, &mut digest).is_err() {
                    tracing::warn!(token = %record.token.name, "skipping a token whose stored key hash is not SHA-256 hex");
                    return None;
                }
                let spend = ledger.token_spend(&record.token);
                Some((digest, Arc::new(TokenEntry { token: record.token, spend })))
            })
            .collect();
        let mut channels: Vec<Arc<ChannelEntry>> = config
            .channels
            .into_iter()
            .filter(|record| record.channel.enabled)
            .filter_map(ChannelEntry::from_record)
            .map(Arc::new)
            .collect();
        channels.sort_by_key(|entry| std::cmp::Reverse(entry.channel.priority));
        let prices = config.prices.into_iter().map(|price| (price.model.clone(), price)).collect();
        let groups = config
            .groups
            .into_iter()
            .map(|group| {
                let all_channels = group.members.is_empty() && group.name == DEFAULT_GROUP;
                let members: Vec<Member<ChannelEntry>> = if all_channels {
                    channels
                        .iter()
                        .map(|c| Member { channel: c.clone(), weight: c.channel.weight, priority: c.channel.priority })
                        .collect()
                } else {
                    group
                        .members
                        .iter()
                        .filter_map(|m| {
                            let channel = channels.iter().find(|c| c.channel.id == m.channel_id)?;
                            Some(Member { channel: channel.clone(), weight: m.weight, priority: m.priority })
                        })
                        .collect()
                };
                let entry = GroupEntry {
                    strategy: group.strategy,
                    all_channels,
                    members,
                    rotation: rotations.for_group(&group.name),
                };
                (group.name, entry)
            })
            .collect();
        let keyless_local = tokens_by_digest.values().find(|entry| entry.token.keyless_local).cloned();
        Snapshot {
            keyless_local,
            tokens_by_digest,
            groups,
            prices,
            account_credit: config.account.credit,
            account_currency: config.account.currency,
        }
    }

    /// The token whose key has this SHA-256 (`burncloud_database::token_key_digest`).
    pub fn token_by_digest(&self, digest: &[u8; 32]) -> Option<&Arc<TokenEntry>> {
        self.tokens_by_digest.get(digest)
    }

    pub fn group(&self, name: &str) -> Option<&GroupEntry> {
        self.groups.get(name)
    }

    pub fn price(&self, model: &str) -> Option<&Price> {
        self.prices.get(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_under_way_are_expected_to_cost_what_paid_calls_cost_on_average() {
        let pace = Pace::default();
        assert_eq!(pace.start(), UnderWay { calls: 0, expected: Money::ZERO });
        // Nothing paid yet: the call under way is expected to cost nothing.
        assert_eq!(pace.start(), UnderWay { calls: 1, expected: Money::ZERO });
        pace.finish(Money(30));
        // A failed call costs nothing and leaves the average that of paid calls.
        pace.finish(Money::ZERO);
        assert_eq!(pace.start(), UnderWay { calls: 0, expected: Money::ZERO });
        assert_eq!(pace.start(), UnderWay { calls: 1, expected: Money(30) });
        pace.finish(Money(10));
        assert_eq!(pace.start(), UnderWay { calls: 1, expected: Money(20) });
    }
}
