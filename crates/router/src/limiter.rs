//! Per-token rate limits: a requests-per-minute and a tokens-per-minute bucket. Requests take one
//! request token; calls reserve their estimated tokens at admission and settle the real usage
//! after, so the tokens bucket follows what was actually used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::breaker::Clock;
pub use crate::shared_limits::Limits;
use crate::shared_limits::SharedLimits;

/// Which bucket said no, and when it will say yes.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimited {
    pub requests: bool,
    pub limit: i64,
    pub reset: Duration,
    pub headers: Vec<(&'static str, String)>,
}

/// Tokens held for an admitted call, settled by [`RateLimiter::settle`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reservation {
    pub token_id: i64,
    pub tokens: i64,
    /// Taken from the buckets in Redis rather than this instance's.
    pub shared: bool,
}

#[derive(Debug)]
struct Bucket {
    available: f64,
    updated: Instant,
}

impl Bucket {
    fn refill(&mut self, capacity: i64, now: Instant) {
        let rate_per_second = capacity as f64 / 60.0;
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.available = (self.available + elapsed * rate_per_second).min(capacity as f64);
        self.updated = now;
    }

    /// Time until `needed` is available.
    fn wait_for(&self, capacity: i64, needed: f64) -> Duration {
        let missing = (needed - self.available).max(0.0);
        Duration::from_secs_f64(missing * 60.0 / capacity.max(1) as f64)
    }
}

#[derive(Debug, Default)]
struct TokenBuckets {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

pub struct RateLimiter {
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<i64, TokenBuckets>>,
    shared: Arc<SharedLimits>,
}

/// OpenAI's rate-limit headers for what is left after this call.
fn limit_headers(limits: Limits, requests_left: f64, tokens_left: f64, reset: Duration) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    if let Some(rpm) = limits.rpm {
        headers.push(("x-ratelimit-limit-requests", rpm.to_string()));
        headers.push(("x-ratelimit-remaining-requests", (requests_left.floor() as i64).max(0).to_string()));
        headers.push(("x-ratelimit-reset-requests", reset_text(reset)));
    }
    if let Some(tpm) = limits.tpm {
        headers.push(("x-ratelimit-limit-tokens", tpm.to_string()));
        headers.push(("x-ratelimit-remaining-tokens", (tokens_left.floor() as i64).max(0).to_string()));
        headers.push(("x-ratelimit-reset-tokens", reset_text(reset)));
    }
    headers
}

/// OpenAI's duration format for reset headers: `1s`, `6m0s`, `250ms`.
fn reset_text(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{}s", ms.div_ceil(1000))
    } else {
        let seconds = ms.div_ceil(1000);
        format!("{}m{}s", seconds / 60, seconds % 60)
    }
}

impl RateLimiter {
    pub fn new(clock: Arc<dyn Clock>, shared: Arc<SharedLimits>) -> RateLimiter {
        RateLimiter { clock, buckets: Mutex::new(HashMap::new()), shared }
    }

    /// `disabled`, `ok` or `down`: where the buckets live.
    pub fn redis_status(&self) -> &'static str {
        self.shared.status()
    }

    /// Takes one request and `estimated_tokens` from the token's buckets, or says when to retry.
    /// With Redis the buckets are shared by every instance; if Redis fails, this instance's own
    /// buckets stand in until it is back.
    pub async fn admit(
        &self,
        token_id: i64,
        limits: Limits,
        estimated_tokens: i64,
    ) -> Result<Reservation, RateLimited> {
        if !limits.is_limited() {
            return Ok(Reservation { token_id, tokens: 0, shared: false });
        }
        if self.shared.enabled() {
            if let Ok(decision) = self.shared.admit(token_id, limits, estimated_tokens.max(0)).await {
                let headers = limit_headers(
                    limits,
                    decision.requests_available - f64::from(u8::from(decision.admitted)),
                    decision.tokens_available,
                    decision.reset,
                );
                if decision.admitted {
                    let tokens = if limits.tpm.is_some() { estimated_tokens.max(0) } else { 0 };
                    return Ok(Reservation { token_id, tokens, shared: true });
                }
                let requests = decision.refused_by == "requests";
                let limit = if requests { limits.rpm } else { limits.tpm }.unwrap_or(0);
                return Err(RateLimited { requests, limit, reset: decision.reset, headers });
            }
        }
        self.admit_local(token_id, limits, estimated_tokens)
    }

    fn admit_local(&self, token_id: i64, limits: Limits, estimated_tokens: i64) -> Result<Reservation, RateLimited> {
        let now = self.clock.now();
        let mut all = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let buckets = all.entry(token_id).or_default();
        let fresh = |capacity: i64| Bucket { available: capacity as f64, updated: now };
        let requests = limits.rpm.map(|rpm| {
            let bucket = buckets.requests.get_or_insert_with(|| fresh(rpm));
            bucket.refill(rpm, now);
            (rpm, bucket)
        });
        let request_ok = requests.as_ref().is_none_or(|(_, bucket)| bucket.available >= 1.0);
        let mut headers = Vec::new();
        let mut refusal: Option<(bool, i64, Duration)> = None;
        if let Some((rpm, bucket)) = &requests {
            let reset = bucket.wait_for(*rpm, 1.0);
            headers.push(("x-ratelimit-limit-requests", rpm.to_string()));
            headers.push(("x-ratelimit-remaining-requests", (bucket.available.floor() as i64 - 1).max(0).to_string()));
            headers.push(("x-ratelimit-reset-requests", reset_text(reset)));
            if !request_ok {
                refusal = Some((true, *rpm, reset));
            }
        }
        let needed = limits.tpm.map(|tpm| estimated_tokens.clamp(1, tpm));
        let tokens = limits.tpm.map(|tpm| {
            let bucket = buckets.tokens.get_or_insert_with(|| fresh(tpm));
            bucket.refill(tpm, now);
            (tpm, bucket)
        });
        if let (Some((tpm, bucket)), Some(needed)) = (&tokens, needed) {
            let reset = bucket.wait_for(*tpm, needed as f64);
            headers.push(("x-ratelimit-limit-tokens", tpm.to_string()));
            headers.push(("x-ratelimit-remaining-tokens", (bucket.available.floor() as i64).max(0).to_string()));
            headers.push(("x-ratelimit-reset-tokens", reset_text(reset)));
            if bucket.available < needed as f64 && refusal.is_none() {
                refusal = Some((false, *tpm, reset));
            }
        }
        if let Some((requests, limit, reset)) = refusal {
            return Err(RateLimited { requests, limit, reset, headers });
        }
        if let Some((_, bucket)) = requests {
            bucket.available -= 1.0;
        }
        let reserved = estimated_tokens.max(0);
        if let Some((_, bucket)) = tokens {
            bucket.available -= reserved as f64;
        }
        Ok(Reservation { token_id, tokens: if limits.tpm.is_some() { reserved } else { 0 }, shared: false })
    }

    /// Replaces the reserved estimate with the tokens the call really used.
    pub async fn settle(&self, reservation: Reservation, used_tokens: i64) {
        if reservation.tokens == 0 && used_tokens == 0 {
            return;
        }
        if reservation.shared {
            // If Redis failed meanwhile, the estimate stands: the bucket errs on the safe side.
            let _ = self.shared.settle(reservation.token_id, reservation.tokens - used_tokens).await;
            return;
        }
        let mut all = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = all.get_mut(&reservation.token_id).and_then(|b| b.tokens.as_mut()) {
            bucket.available += (reservation.tokens - used_tokens) as f64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::SystemClock;

    struct Frozen(Instant);

    impl Clock for Frozen {
        fn now(&self) -> Instant {
            self.0
        }
    }

    fn local(clock: Arc<dyn Clock>) -> RateLimiter {
        RateLimiter::new(clock, Arc::new(SharedLimits::new(None).unwrap()))
    }

    #[tokio::test]
    async fn admits_exactly_the_requests_per_minute() {
        let limiter = local(Arc::new(Frozen(Instant::now())));
        let limits = Limits { rpm: Some(100), tpm: None };
        let mut admitted = 0;
        for _ in 0..250 {
            admitted += usize::from(limiter.admit(7, limits, 0).await.is_ok());
        }
        assert_eq!(admitted, 100);
        let refused = limiter.admit(7, limits, 0).await.unwrap_err();
        assert!(refused.requests);
        assert_eq!(refused.reset, Duration::from_millis(600), "one request frees up every 600 ms");
        assert!(refused.headers.contains(&("x-ratelimit-remaining-requests", "0".to_string())));
        assert!(limiter.admit(8, limits, 0).await.is_ok(), "each token has its own bucket");
    }

    #[tokio::test]
    async fn tokens_are_reserved_then_settled_to_the_real_usage() {
        let limiter = local(Arc::new(Frozen(Instant::now())));
        let limits = Limits { rpm: None, tpm: Some(1000) };
        let first = limiter.admit(1, limits, 600).await.unwrap();
        assert!(limiter.admit(1, limits, 600).await.is_err(), "400 left is not enough for 600 more");
        limiter.settle(first, 100).await;
        assert!(limiter.admit(1, limits, 600).await.is_ok(), "the call used 100, so 900 were free");
    }

    #[tokio::test]
    async fn the_reset_header_reads_like_openais() {
        assert_eq!(reset_text(Duration::from_millis(250)), "250ms");
        assert_eq!(reset_text(Duration::from_millis(1500)), "2s");
        assert_eq!(reset_text(Duration::from_secs(360)), "6m0s");
        let limiter = local(Arc::new(SystemClock));
        assert!(limiter.admit(1, Limits::default(), 10).await.is_ok());
    }
}
