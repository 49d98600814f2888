//! A circuit breaker per channel: closed → open after consecutive failures → half-open after a
//! cooldown, where one probe decides → closed on success, open again on failure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the breakers read the time: the real clock, or a hand-moved one in tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[derive(Clone, Copy, Debug)]
pub struct BreakerConfig {
    /// Consecutive failures that open a closed breaker.
    pub failure_threshold: u32,
    pub cooldown: Duration,
    /// How long a rejected key (401/402/403) keeps the channel out.
    pub auth_cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
            auth_cooldown: Duration::from_secs(600),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

impl BreakerState {
    /// Where it stands, for the health report.
    pub fn position(self) -> burncloud_service_api::BreakerPosition {
        use burncloud_service_api::BreakerPosition;
        match self {
            BreakerState::Closed => BreakerPosition::Closed,
            BreakerState::Open { .. } => BreakerPosition::Open,
            BreakerState::HalfOpen { .. } => BreakerPosition::HalfOpen,
        }
    }
}

/// What a breaker says to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Allowed as the half-open probe; its outcome decides the state.
    Probe,
    Rejected {
        retry_at: Instant,
    },
}

/// How an attempt went, as far as the channel's health is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Healthy {
        latency_ms: u64,
    },
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
    /// The upstream refused the key or the account: out for the long cooldown at once.
    Refused {
        error: String,
    },
}

#[derive(Clone, Debug)]
pub struct ChannelHealth {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<u64>,
}

impl ChannelHealth {
    fn new() -> ChannelHealth {
        ChannelHealth { state: BreakerState::Closed, consecutive_failures: 0, last_error: None, last_latency_ms: None }
    }
}

/// A change another instance should hear about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Opened { until: Instant },
    Closed,
}

pub struct Breakers {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    channels: Mutex<HashMap<i64, ChannelHealth>>,
    /// Channels other instances have opened, and until when.
    opened_elsewhere: Mutex<HashMap<i64, Instant>>,
}

impl Breakers {
    pub fn new(config: BreakerConfig, clock: Arc<dyn Clock>) -> Breakers {
        Breakers { config, clock, channels: Mutex::new(HashMap::new()), opened_elsewhere: Mutex::new(HashMap::new()) }
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Replaces what other instances report as open (from the shared store).
    pub fn set_opened_elsewhere(&self, opened: HashMap<i64, Instant>) {
        *self.opened_elsewhere.lock().unwrap_or_else(|p| p.into_inner()) = opened;
    }

    pub fn admit(&self, channel_id: i64) -> Admission {
        let now = self.clock.now();
        let elsewhere = self.opened_elsewhere.lock().unwrap_or_else(|p| p.into_inner()).get(&channel_id).copied();
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let health = channels.entry(channel_id).or_insert_with(ChannelHealth::new);
        if let Some(until) = elsewhere.filter(|until| now < *until) {
            if health.state == BreakerState::Closed {
                // Another instance saw this channel fail: rest it here too, and probe after.
                health.state = BreakerState::Open { until };
            }
        }
        match health.state {
            BreakerState::Closed => Admission::Allowed,
            BreakerState::Open { until } if now < until => Admission::Rejected { retry_at: until },
            BreakerState::Open { .. } | BreakerState::HalfOpen { probing: false } => {
                health.state = BreakerState::HalfOpen { probing: true };
                Admission::Probe
            }
            BreakerState::HalfOpen { probing: true } => Admission::Rejected { retry_at: now + Duration::from_secs(1) },
        }
    }

    /// Records how an attempt went; returns the transition, if the state changed in a way other
    /// instances should know.
    pub fn record(&self, channel_id: i64, verdict: Verdict) -> Option<Transition> {
        let now = self.clock.now();
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let health = channels.entry(channel_id).or_insert_with(ChannelHealth::new);
        let before = health.state;
        match verdict {
            Verdict::Healthy { latency_ms } => {
                health.state = BreakerState::Closed;
                health.consecutive_failures = 0;
                health.last_latency_ms = Some(latency_ms);
            }
            Verdict::Failed { error, retry_after } => {
                health.consecutive_failures += 1;
                health.last_error = Some(error);
                let probe_failed = matches!(health.state, BreakerState::HalfOpen { .. });
                if probe_failed || health.consecutive_failures >= self.config.failure_threshold {
                    let cooldown = retry_after.map_or(self.config.cooldown, |r| r.max(self.config.cooldown));
                    health.state = BreakerState::Open { until: now + cooldown };
                }
            }
            Verdict::Refused { error } => {
                health.consecutive_failures += 1;
                health.last_error = Some(error);
                health.state = BreakerState::Open { until: now + self.config.auth_cooldown };
            }
        }
        match (before, health.state) {
            (_, BreakerState::Open { until }) if before != health.state => Some(Transition::Opened { until }),
            (BreakerState::Closed, BreakerState::Closed) => None,
            (_, BreakerState::Closed) => Some(Transition::Closed),
            _ => None,
        }
    }

    /// A request that was admitted as the probe ended without a verdict (the caller left):
    /// let the next request probe instead.
    pub fn release_probe(&self, channel_id: i64) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(health) = channels.get_mut(&channel_id) {
            if health.state == (BreakerState::HalfOpen { probing: true }) {
                health.state = BreakerState::HalfOpen { probing: false };
            }
        }
    }

    pub fn health(&self, channel_id: i64) -> ChannelHealth {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.get(&channel_id).cloned().unwrap_or_else(ChannelHealth::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock that moves only when told.
    struct ManualClock(Mutex<Instant>);

    impl ManualClock {
        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    fn breakers() -> (Arc<ManualClock>, Breakers) {
        let clock = Arc::new(ManualClock(Mutex::new(Instant::now())));
        let config = BreakerConfig {
            failure_threshold: 3,
            cooldown: Duration::from_secs(30),
            auth_cooldown: Duration::from_secs(600),
        };
        (clock.clone(), Breakers::new(config, clock))
    }

    fn fail(breakers: &Breakers, retry_after: Option<Duration>) {
        breakers.record(1, Verdict::Failed { error: "503".into(), retry_after });
    }

    #[test]
    fn opens_after_consecutive_failures_and_probes_after_the_cooldown() {
        let (clock, breakers) = breakers();
        fail(&breakers, None);
        breakers.record(1, Verdict::Healthy { latency_ms: 5 });
        fail(&breakers, None);
        fail(&breakers, None);
        assert_eq!(breakers.admit(1), Admission::Allowed, "a success in between resets the count");
        fail(&breakers, None);
        assert!(matches!(breakers.admit(1), Admission::Rejected { .. }));
        assert_eq!(breakers.health(1).state.position(), burncloud_service_api::BreakerPosition::Open);
        clock.advance(Duration::from_secs(29));
        assert!(matches!(breakers.admit(1), Admission::Rejected { .. }));
        clock.advance(Duration::from_secs(1));
        assert_eq!(breakers.admit(1), Admission::Probe);
        assert!(matches!(breakers.admit(1), Admission::Rejected { .. }), "only one probe at a time");
        breakers.record(1, Verdict::Healthy { latency_ms: 7 });
        assert_eq!(breakers.admit(1), Admission::Allowed);
        assert_eq!(breakers.health(1).last_latency_ms, Some(7));
    }

    #[test]
    fn a_failed_probe_opens_again_and_retry_after_can_lengthen_the_cooldown() {
        let (clock, breakers) = breakers();
        for _ in 0..3 {
            fail(&breakers, None);
        }
        clock.advance(Duration::from_secs(30));
        assert_eq!(breakers.admit(1), Admission::Probe);
        fail(&breakers, Some(Duration::from_secs(120)));
        clock.advance(Duration::from_secs(119));
        assert!(matches!(breakers.admit(1), Admission::Rejected { .. }), "Retry-After 120 s beats the 30 s cooldown");
        clock.advance(Duration::from_secs(1));
        assert_eq!(breakers.admit(1), Admission::Probe);
        breakers.release_probe(1);
        assert_eq!(breakers.admit(1), Admission::Probe, "an abandoned probe is handed on");
    }

    #[test]
    fn a_refused_key_opens_at_once_for_the_long_cooldown() {
        let (clock, breakers) = breakers();
        breakers.record(1, Verdict::Refused { error: "401 invalid key".into() });
        clock.advance(Duration::from_secs(599));
        assert!(matches!(breakers.admit(1), Admission::Rejected { .. }));
        clock.advance(Duration::from_secs(1));
        assert_eq!(breakers.admit(1), Admission::Probe);
        assert_eq!(breakers.health(1).last_error.as_deref(), Some("401 invalid key"));
    }

    #[test]
    fn transitions_are_reported_and_breakers_opened_elsewhere_are_respected() {
        let (clock, breakers) = breakers();
        assert_eq!(breakers.record(1, Verdict::Healthy { latency_ms: 1 }), None);
        fail(&breakers, None);
        fail(&breakers, None);
        let opened = breakers.record(1, Verdict::Failed { error: "x".into(), retry_after: None });
        assert!(matches!(opened, Some(Transition::Opened { .. })));
        clock.advance(Duration::from_secs(30));
        assert_eq!(breakers.admit(1), Admission::Probe);
        assert_eq!(breakers.record(1, Verdict::Healthy { latency_ms: 1 }), Some(Transition::Closed));

        breakers.set_opened_elsewhere([(2, clock.now() + Duration::from_secs(10))].into());
        assert!(matches!(breakers.admit(2), Admission::Rejected { .. }), "another instance opened it");
        clock.advance(Duration::from_secs(10));
        assert_eq!(breakers.admit(2), Admission::Probe, "and after its cooldown this instance probes");
    }
}
