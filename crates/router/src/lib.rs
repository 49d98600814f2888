//! BurnCloud's data plane: the OpenAI-compatible `/v1` routes, routing over channels with
//! failover, quota checks, usage accounting and the async log sink. The only crate that knows
//! provider wire formats.

mod adapters;
mod balancer;
mod billing;
mod breaker;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod gemini;
mod limiter;
mod log_sink;
mod ollama;
mod proxy;
mod responses;
mod routes;
mod scrub;
mod shared_limits;
mod snapshot;
mod sse;
mod tokenizer;
mod upload;
mod upstream;
mod usage;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::routing::{get, post};
use burncloud_database::{repo, Change, Db, DbError};
use burncloud_service_api::{LocalServing, Money};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use breaker::{
    Admission, BreakerConfig, BreakerState, Breakers, ChannelHealth, Clock, SystemClock, Transition, Verdict,
};
pub use error::CallError;
pub use limiter::{Limits, RateLimiter};
pub use log_sink::{LogSink, LogWriterConfig, LogWriterStats};
pub use proxy::new_request_id;
pub use routes::{DataRoute, ErrorShape, RequestBody, DATA_ROUTES};
pub use scrub::scrub;
use snapshot::TokenEntry;
pub use snapshot::{ChannelEntry, Rotations, Snapshot, SpendLedger};
pub use usage::{count_tokens, warm_up as warm_up_tokenizer};

/// The header that carries a call's id, which is also its log row's `request_id`.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Limits and timeouts of the data plane.
#[derive(Clone, Debug)]
pub struct RouterConfig {
    pub max_body_bytes: usize,
    /// Largest multipart upload (`/v1/audio/transcriptions`, `/v1/images/edits`); it is spooled to
    /// a temporary file past 1 MiB, never held whole in memory.
    pub max_upload_bytes: usize,
    pub max_response_bytes: usize,
    pub connect_timeout: Duration,
    /// How long an upstream may take to send its response headers (and, for streams, a first chunk).
    pub first_byte_timeout: Duration,
    /// The longest silence allowed between two chunks of an upstream body.
    pub idle_read_timeout: Duration,
    /// The longest one upstream attempt may take in all, streams included: an upstream that
    /// trickles bytes just often enough to stay under the idle timeout still ends.
    pub total_timeout: Duration,
    /// How long to keep reading an upstream after its client left, to learn the usage to bill.
    pub cancel_drain_timeout: Duration,
    /// Channels tried per request, counting the first.
    pub max_attempts: usize,
    pub breaker: BreakerConfig,
    /// Where rate-limit buckets are shared between instances (`redis://host:port`).
    pub redis_url: Option<String>,
    /// Calls served at once; beyond it callers get 503 with `Retry-After` instead of a queue.
    pub max_concurrent_calls: usize,
    /// How long a client may take to send a request's headers, and an idle keep-alive connection
    /// may wait for its next request: a slow or silent client cannot hold a connection open.
    pub client_header_timeout: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            max_body_bytes: 32 * 1024 * 1024,
            max_upload_bytes: 256 * 1024 * 1024,
            max_response_bytes: 256 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(300),
            idle_read_timeout: Duration::from_secs(120),
            total_timeout: Duration::from_secs(900),
            cancel_drain_timeout: Duration::from_secs(60),
            max_attempts: 3,
            breaker: BreakerConfig::default(),
            redis_url: None,
            max_concurrent_calls: 1024,
            client_header_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("the HTTP client could not start: {0}")]
    HttpClient(String),
    #[error("the Redis URL is not valid: {0}")]
    RedisUrl(String),
}

/// Shared state of the data plane.
pub struct Gateway {
    db: Arc<Db>,
    snapshot: ArcSwap<Snapshot>,
    ledger: SpendLedger,
    http: upstream::UpstreamClient,
    logs: LogSink,
    config: RouterConfig,
    in_flight: AtomicUsize,
    breakers: Breakers,
    limiter: RateLimiter,
    rotations: Rotations,
    shared: Arc<shared_limits::SharedLimits>,
    call_slots: Arc<tokio::sync::Semaphore>,
    /// Wakes local models that calls name (the inference service), once the app wires it.
    local: OnceLock<Arc<dyn LocalServing>>,
    /// Its own background work (telling other instances about breakers, following theirs);
    /// `drain` stops it and waits.
    background: TaskTracker,
    stopping: CancellationToken,
    /// On a shared store: this instance among the others, and where its charges go out to them.
    instance: u64,
    spending: Option<tokio::sync::mpsc::UnboundedSender<(i64, i64)>>,
}

impl Gateway {
    /// Builds the gateway over `db`: loads the first snapshot and starts the log writer.
    pub fn new(db: Arc<Db>, config: RouterConfig, log_config: LogWriterConfig) -> Result<Arc<Gateway>, StartError> {
        let config_now = db.read(|c| repo::config::load(c, db.vault()))?;
        let ledger = SpendLedger::new(config_now.account.used);
        let rotations = Rotations::default();
        let snapshot = Snapshot::build(config_now, &ledger, &rotations);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let shared = Arc::new(
            shared_limits::SharedLimits::new(config.redis_url.as_deref())
                .map_err(|e| StartError::RedisUrl(e.to_string()))?,
        );
        let http = upstream::UpstreamClient::new(config.connect_timeout, Duration::from_secs(90))
            .map_err(StartError::HttpClient)?;
        let logs = LogSink::start(db.clone(), log_config);
        usage::warm_up();
        let (spending, charges) = if db.is_postgres() {
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        let gateway = Arc::new(Gateway {
            db,
            snapshot: ArcSwap::from_pointee(snapshot),
            ledger,
            http,
            logs,
            breakers: Breakers::new(config.breaker, clock.clone()),
            limiter: RateLimiter::new(clock, shared.clone()),
            shared,
            rotations,
            call_slots: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_calls.max(1))),
            config,
            in_flight: AtomicUsize::new(0),
            local: OnceLock::new(),
            background: TaskTracker::new(),
            stopping: CancellationToken::new(),
            instance: fastrand::u64(..),
            spending,
        });
        if gateway.shared.enabled() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let following = follow_shared_breakers(Arc::downgrade(&gateway), gateway.stopping.clone());
                gateway.background.spawn_on(following, &runtime);
            }
        }
        if gateway.db.is_postgres() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                for change in [Change::Config, Change::Spend] {
                    let following = follow_other_instances(Arc::downgrade(&gateway), change, gateway.stopping.clone());
                    gateway.background.spawn_on(following, &runtime);
                }
                if let Some(charges) = charges {
                    let publishing =
                        publish_spending(gateway.db.clone(), gateway.instance, charges, gateway.stopping.clone());
                    gateway.background.spawn_on(publishing, &runtime);
                }
            }
        }
        Ok(gateway)
    }

    /// Records an attempt's verdict in the channel's breaker and tells other instances when the
    /// breaker opens or closes.
    pub fn judge(&self, channel_id: i64, verdict: Verdict) {
        let Some(transition) = self.breakers.record(channel_id, verdict) else { return };
        if !self.shared.enabled() {
            return;
        }
        let shared = self.shared.clone();
        let until_ms = match transition {
            Transition::Opened { until } => Some(
                burncloud_database::now_ms() + until.saturating_duration_since(self.breakers.now()).as_millis() as i64,
            ),
            Transition::Closed => None,
        };
        self.background.spawn(async move {
            let _ = match until_ms {
                Some(until_ms) => shared.publish_open(channel_id, until_ms).await,
                None => shared.publish_closed(channel_id).await,
            };
        });
    }

    /// Rebuilds the snapshot from the database; called after every configuration change.
    pub fn reload(&self) -> Result<(), DbError> {
        let config = self.db.read(|c| repo::config::load(c, self.db.vault()))?;
        self.snapshot.store(Arc::new(Snapshot::build(config, &self.ledger, &self.rotations)));
        Ok(())
    }

    /// Re-reads what every token and the account has spent, so that quota checks here count what
    /// other instances on a shared store charged.
    pub fn refresh_spend(&self) -> Result<(), DbError> {
        let (tokens, account) = self.db.read(|c| Ok((repo::tokens::spend(c)?, repo::account::get(c)?.used)))?;
        for (token_id, used) in tokens {
            self.ledger.observe(token_id, used);
        }
        self.ledger.observe_account(account);
        Ok(())
    }

    /// Counts the charges another instance reported (see `publish_spending`); false where the
    /// payload carries none, which asks for a re-read instead.
    fn apply_spending(&self, payload: &str) -> bool {
        match parse_spending(payload, self.instance) {
            Some(charges) => {
                for (token_id, nanos) in charges {
                    self.ledger.add(token_id, Money(nanos));
                }
                true
            }
            None => false,
        }
    }

    /// Charges a finished call to its token and the account here, and tells the other instances
    /// on a shared store.
    pub(crate) fn charge(&self, token: &TokenEntry, cost: Money) {
        self.ledger.charge(token, cost);
        if let Some(spending) = &self.spending {
            if cost.0 != 0 {
                let _ = spending.send((token.token.id, cost.0));
            }
        }
    }

    /// Brings this instance up to date with what `change` names.
    fn catch_up(&self, change: Change) -> Result<(), DbError> {
        if change == Change::Config {
            self.reload()?;
        }
        self.refresh_spend()
    }

    /// Lets calls that name a local deployment start it (and hold it while they run).
    pub fn set_local(&self, local: Arc<dyn LocalServing>) {
        if self.local.set(local).is_err() {
            tracing::warn!("the local model service was set twice; keeping the first");
        }
    }

    pub fn log_sink(&self) -> &LogSink {
        &self.logs
    }

    pub fn breakers(&self) -> &Breakers {
        &self.breakers
    }

    /// `disabled`, `ok` or `down`.
    pub fn redis_status(&self) -> &'static str {
        self.limiter.redis_status()
    }

    pub fn client_header_timeout(&self) -> Duration {
        self.config.client_header_timeout
    }

    /// Calls still being served or still being accounted for.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Waits (up to `limit`) for calls in progress to finish, then stores every queued log row.
    pub async fn drain(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.in_flight() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if self.in_flight() > 0 {
            tracing::warn!(calls = self.in_flight(), "shutting down with calls still in progress");
        }
        self.stopping.cancel();
        self.background.close();
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
        if tokio::time::timeout(left, self.background.wait()).await.is_err() {
            tracing::warn!(tasks = self.background.len(), "breaker messages to other instances still pending");
        }
        self.logs.flush().await;
    }
}

/// How often an instance reads the breakers other instances opened.
const SHARED_BREAKER_POLL: Duration = Duration::from_millis(500);

/// How often an instance on a shared store re-reads what changed even without being told: the
/// safety net under `LISTEN`/`NOTIFY`, for a notification lost while its session was down.
const OTHER_INSTANCES_REREAD: Duration = Duration::from_secs(5);

/// Keeps this instance current with what other instances on the shared store change (`Config`)
/// or charge (`Spend`): it listens for their notifications, applies each call's charge as it is
/// told, re-reads the store when a log batch lands, and re-reads every few seconds anyway. A lost
/// session is opened again; until then the periodic re-read serves.
async fn follow_other_instances(gateway: std::sync::Weak<Gateway>, change: Change, stopping: CancellationToken) {
    let catch_up = |gateway: &std::sync::Weak<Gateway>| {
        let gateway = gateway.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(Err(error)) = gateway.upgrade().map(|g| g.catch_up(change)) {
                tracing::warn!(%error, ?change, "re-reading the shared store failed; will retry");
            }
        })
    };
    loop {
        let Some(db) = gateway.upgrade().map(|g| g.db.clone()) else { return };
        let mut feed = match tokio::task::spawn_blocking(move || db.listen(change)).await {
            Ok(Ok(feed)) => feed,
            Ok(Err(error)) => {
                tracing::warn!(%error, ?change, "cannot listen for other instances' changes; re-reading periodically");
                None
            }
            Err(_) => None,
        };
        // What changed while this instance was not listening.
        let _ = catch_up(&gateway).await;
        loop {
            let next = async {
                match feed.as_mut() {
                    Some(feed) => feed.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stopping.cancelled() => return,
                told = next => {
                    let Some(payloads) = told else { break };
                    let Some(gateway) = gateway.upgrade() else { return };
                    // Charges come with their amounts; anything else (a batch of calls stored, a
                    // configuration change) means re-reading.
                    let reread = payloads
                        .iter()
                        .filter(|payload| change != Change::Spend || !gateway.apply_spending(payload))
                        .count();
                    if reread == 0 {
                        continue;
                    }
                }
                () = tokio::time::sleep(OTHER_INSTANCES_REREAD) => {
                    if feed.is_none() {
                        break;
                    }
                }
            }
            let _ = catch_up(&gateway).await;
        }
    }
}

/// Most charges in one notification: PostgreSQL takes payloads under 8000 bytes, and each
/// `token:nanos` pair is at most 40.
const CHARGES_PER_NOTIFICATION: usize = 150;

/// Tells the other instances on the shared store what each call here charged, as calls finish:
/// whatever queued while one notification was being sent goes in the next, so under load they
/// carry many charges each. Their quota checks count these at once, long before the log writer
/// stores the rows.
async fn publish_spending(
    db: Arc<Db>,
    instance: u64,
    mut charges: tokio::sync::mpsc::UnboundedReceiver<(i64, i64)>,
    stopping: CancellationToken,
) {
    let mut announcer = match db.announcer() {
        Ok(Some(announcer)) => announcer,
        Ok(None) | Err(_) => return,
    };
    loop {
        let first = tokio::select! {
            () = stopping.cancelled() => return,
            charge = charges.recv() => match charge {
                Some(charge) => charge,
                None => return,
            },
        };
        let mut by_token: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
        *by_token.entry(first.0).or_default() += first.1;
        while let Ok((token_id, nanos)) = charges.try_recv() {
            *by_token.entry(token_id).or_default() += nanos;
        }
        for payload in spending_payloads(instance, &by_token) {
            if let Err(error) = announcer.announce(Change::Spend, &payload).await {
                tracing::debug!(%error, "could not tell the other instances about charges; they re-read soon");
                break;
            }
        }
    }
}

/// `instance token:nanos token:nanos …`, in as many notifications as it takes.
fn spending_payloads(instance: u64, by_token: &std::collections::BTreeMap<i64, i64>) -> Vec<String> {
    let charges: Vec<(&i64, &i64)> = by_token.iter().collect();
    charges
        .chunks(CHARGES_PER_NOTIFICATION)
        .map(|chunk| {
            let mut payload = format!("{instance:x}");
            for (token_id, nanos) in chunk {
                payload.push_str(&format!(" {token_id}:{nanos}"));
            }
            payload
        })
        .collect()
}

/// The charges in another instance's spending notification; `None` for one that is not (an empty
/// one says a batch of calls was stored) or came from `instance` itself.
fn parse_spending(payload: &str, instance: u64) -> Option<Vec<(i64, i64)>> {
    let mut parts = payload.split(' ');
    let sender = u64::from_str_radix(parts.next()?, 16).ok()?;
    if sender == instance {
        return Some(Vec::new());
    }
    parts
        .map(|pair| {
            let (token_id, nanos) = pair.split_once(':')?;
            Some((token_id.parse().ok()?, nanos.parse().ok()?))
        })
        .collect()
}

/// Keeps this instance's view of breakers opened elsewhere current, for as long as it runs.
async fn follow_shared_breakers(gateway: std::sync::Weak<Gateway>, stopping: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(SHARED_BREAKER_POLL) => {}
            () = stopping.cancelled() => return,
        }
        let Some(gateway) = gateway.upgrade() else { return };
        if let Ok(opened) = gateway.shared.opened_breakers().await {
            let (now, now_ms) = (gateway.breakers.now(), burncloud_database::now_ms());
            let opened = opened
                .into_iter()
                .map(|(id, until_ms)| (id, now + Duration::from_millis((until_ms - now_ms).max(0) as u64)))
                .collect();
            gateway.breakers.set_opened_elsewhere(opened);
        }
    }
}

/// The data plane's routes (`/v1`, Gemini's `/v1beta`, Ollama's `/api`); `DATA_ROUTES` describes
/// each.
pub fn create_router_app(gateway: Arc<Gateway>) -> axum::Router {
    axum::Router::new()
        .route("/v1/chat/completions", post(proxy::chat_completions))
        .route("/v1/completions", post(proxy::completions))
        .route("/v1/embeddings", post(proxy::embeddings))
        .route("/v1/rerank", post(proxy::rerank))
        .route("/v1/moderations", post(proxy::moderations))
        .route("/v1/images/generations", post(proxy::image_generations))
        .route("/v1/images/edits", post(proxy::image_edits))
        .route("/v1/audio/speech", post(proxy::audio_speech))
        .route("/v1/audio/transcriptions", post(proxy::audio_transcriptions))
        .route("/v1/audio/translations", post(proxy::audio_translations))
        .route("/v1/models", get(proxy::list_models))
        .route("/v1/responses", post(proxy::responses))
        .route("/v1/responses/compact", post(proxy::responses_compact))
        .route("/v1/responses/{id}", get(responses::get_response).delete(responses::delete_response))
        .route("/v1/messages", post(proxy::messages))
        .route("/v1/messages/count_tokens", post(proxy::messages_count_tokens))
        .route("/v1/key", get(billing::key))
        .route("/v1/dashboard/billing/subscription", get(billing::subscription))
        .route("/v1/dashboard/billing/usage", get(billing::usage))
        .route("/v1beta/models", get(gemini::list))
        .route("/v1beta/models/{*target}", get(gemini::get).post(gemini::call))
        .route("/api/version", get(ollama::version))
        .route("/api/tags", get(ollama::tags))
        .route("/api/ps", get(ollama::running))
        .route("/api/show", post(ollama::show))
        .route("/api/chat", post(proxy::ollama_chat))
        .route("/api/generate", post(proxy::ollama_generate))
        .route("/api/embed", post(proxy::ollama_embed))
        .route("/api/embeddings", post(proxy::ollama_embeddings))
        .route("/api/pull", post(ollama::managed_elsewhere))
        .route("/api/push", post(ollama::managed_elsewhere))
        .route("/api/create", post(ollama::managed_elsewhere))
        .route("/api/copy", post(ollama::managed_elsewhere))
        .route("/api/delete", axum::routing::delete(ollama::managed_elsewhere))
        .with_state(gateway)
}
