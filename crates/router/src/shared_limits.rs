//! Rate-limit buckets in Redis, so several BurnCloud instances enforce one limit together. Each
//! admission is one atomic Lua script that refills, checks and takes from both buckets, using
//! Redis's clock so instances with drifting clocks still agree.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

/// A token's limits per minute: requests and tokens (none: unlimited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
}

impl Limits {
    pub fn is_limited(self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }
}

const ADMIT: &str = r#"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local reserve = tonumber(ARGV[3])
local function level(key, capacity)
  local stored = redis.call('HMGET', key, 'a', 't')
  local available = tonumber(stored[1])
  local updated = tonumber(stored[2])
  if available == nil or updated == nil then return capacity end
  return math.min(capacity, available + math.max(0, now - updated) * capacity / 60000)
end
local requests = 0
local tokens = 0
if rpm > 0 then requests = level(KEYS[1], rpm) end
if tpm > 0 then tokens = level(KEYS[2], tpm) end
if rpm > 0 and requests < 1 then
  return {0, 'requests', tostring(requests), tostring(tokens), tostring(math.ceil((1 - requests) * 60000 / rpm))}
end
local need = math.max(1, math.min(reserve, tpm))
if tpm > 0 and tokens < need then
  return {0, 'tokens', tostring(requests), tostring(tokens), tostring(math.ceil((need - tokens) * 60000 / tpm))}
end
if rpm > 0 then
  redis.call('HSET', KEYS[1], 'a', tostring(requests - 1), 't', now)
  redis.call('PEXPIRE', KEYS[1], 120000)
end
if tpm > 0 then
  redis.call('HSET', KEYS[2], 'a', tostring(tokens - reserve), 't', now)
  redis.call('PEXPIRE', KEYS[2], 120000)
end
return {1, '', tostring(requests), tostring(tokens), '0'}
"#;

const BREAKERS_KEY: &str = "burncloud:breakers";

const PUBLISH_OPEN: &str = r#"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"#;

const PUBLISH_CLOSED: &str = r#"
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"#;

const SETTLE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBYFLOAT', KEYS[1], 'a', ARGV[1]) end
return 1
"#;

/// What the shared buckets said.
pub struct SharedDecision {
    pub admitted: bool,
    /// `requests` or `tokens` when refused.
    pub refused_by: String,
    pub requests_available: f64,
    pub tokens_available: f64,
    pub reset: Duration,
}

const DISABLED: u8 = 0;
const OK: u8 = 1;
const DOWN: u8 = 2;
/// How long to serve from local buckets after Redis failed before trying it again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

pub struct SharedLimits {
    client: Option<redis::Client>,
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
    status: AtomicU8,
    retry_at: Mutex<Option<Instant>>,
    admit: redis::Script,
    settle: redis::Script,
    publish_open: redis::Script,
    publish_closed: redis::Script,
    read_breakers: redis::Script,
}

/// Returns `[id, until_ms, …]` pairs for breakers still open on Redis's clock, dropping stale ones.
const READ_BREAKERS: &str = r#"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local open = {}
for i = 1, #all, 2 do
  local until_ms = tonumber(all[i + 1])
  if until_ms ~= nil and until_ms > now then
    table.insert(open, {tonumber(all[i]), until_ms})
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return open
"#;

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis is resting after a failure")]
    Resting,
    #[error("redis answered something unexpected")]
    Malformed,
}

impl SharedLimits {
    /// Without a URL the limits stay local (`disabled`); a bad URL is an error at start.
    pub fn new(url: Option<&str>) -> Result<SharedLimits, redis::RedisError> {
        let client = url.map(redis::Client::open).transpose()?;
        let status = if client.is_some() { OK } else { DISABLED };
        Ok(SharedLimits {
            client,
            connection: tokio::sync::Mutex::new(None),
            status: AtomicU8::new(status),
            retry_at: Mutex::new(None),
            admit: redis::Script::new(ADMIT),
            settle: redis::Script::new(SETTLE),
            publish_open: redis::Script::new(PUBLISH_OPEN),
            publish_closed: redis::Script::new(PUBLISH_CLOSED),
            read_breakers: redis::Script::new(READ_BREAKERS),
        })
    }

    pub fn enabled(&self) -> bool {
        self.client.is_some()
    }

    /// `disabled`, `ok` or `down`, for the health report.
    pub fn status(&self) -> &'static str {
        match self.status.load(Ordering::Relaxed) {
            DISABLED => "disabled",
            OK => "ok",
            _ => "down",
        }
    }

    fn resting(&self) -> bool {
        let retry_at = self.retry_at.lock().unwrap_or_else(|p| p.into_inner());
        retry_at.is_some_and(|at| Instant::now() < at)
    }

    fn failed(&self, error: &SharedError) {
        if self.status.swap(DOWN, Ordering::Relaxed) != DOWN {
            tracing::warn!(%error, "redis is unreachable; rate limits fall back to this instance alone");
        }
        *self.retry_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + RETRY_AFTER_FAILURE);
    }

    fn recovered(&self) {
        if self.status.swap(OK, Ordering::Relaxed) == DOWN {
            tracing::info!("redis is back; rate limits are shared again");
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, SharedError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let client = self.client.as_ref().ok_or(SharedError::Resting)?;
        let connection = tokio::time::timeout(CALL_TIMEOUT, client.get_connection_manager())
            .await
            .map_err(|_| SharedError::Timeout(CALL_TIMEOUT))??;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    async fn run<T: redis::FromRedisValue>(&self, invocation: redis::ScriptInvocation<'_>) -> Result<T, SharedError> {
        if self.resting() {
            return Err(SharedError::Resting);
        }
        let outcome = async {
            let mut connection = self.connection().await?;
            tokio::time::timeout(CALL_TIMEOUT, invocation.invoke_async::<T>(&mut connection))
                .await
                .map_err(|_| SharedError::Timeout(CALL_TIMEOUT))?
                .map_err(SharedError::from)
        }
        .await;
        match &outcome {
            Ok(_) => self.recovered(),
            Err(SharedError::Resting) => {}
            Err(error) => self.failed(error),
        }
        outcome
    }

    pub async fn admit(&self, token_id: i64, limits: Limits, reserve: i64) -> Result<SharedDecision, SharedError> {
        let mut invocation = self.admit.prepare_invoke();
        invocation
            .key(format!("burncloud:ratelimit:{token_id}:requests"))
            .key(format!("burncloud:ratelimit:{token_id}:tokens"))
            .arg(limits.rpm.unwrap_or(0))
            .arg(limits.tpm.unwrap_or(0))
            .arg(reserve);
        let (admitted, refused_by, requests, tokens, reset_ms): (i64, String, String, String, String) =
            self.run(invocation).await?;
        let number = |text: &str| text.parse::<f64>().map_err(|_| SharedError::Malformed);
        Ok(SharedDecision {
            admitted: admitted == 1,
            refused_by,
            requests_available: number(&requests)?,
            tokens_available: number(&tokens)?,
            reset: Duration::from_millis(number(&reset_ms)?.max(0.0) as u64),
        })
    }

    /// Tells other instances `channel_id`'s breaker is open until `until_ms` (epoch ms).
    pub async fn publish_open(&self, channel_id: i64, until_ms: i64) -> Result<(), SharedError> {
        let mut invocation = self.publish_open.prepare_invoke();
        invocation.key(BREAKERS_KEY).arg(channel_id).arg(until_ms);
        self.run::<i64>(invocation).await.map(|_| ())
    }

    pub async fn publish_closed(&self, channel_id: i64) -> Result<(), SharedError> {
        let mut invocation = self.publish_closed.prepare_invoke();
        invocation.key(BREAKERS_KEY).arg(channel_id);
        self.run::<i64>(invocation).await.map(|_| ())
    }

    /// Breakers other instances opened: channel id → open until (epoch ms).
    pub async fn opened_breakers(&self) -> Result<Vec<(i64, i64)>, SharedError> {
        let mut invocation = self.read_breakers.prepare_invoke();
        invocation.key(BREAKERS_KEY);
        self.run::<Vec<(i64, i64)>>(invocation).await
    }

    pub async fn settle(&self, token_id: i64, give_back: i64) -> Result<(), SharedError> {
        let mut invocation = self.settle.prepare_invoke();
        invocation.key(format!("burncloud:ratelimit:{token_id}:tokens")).arg(give_back);
        self.run::<i64>(invocation).await.map(|_| ())
    }
}
