//! Which local models are loaded: a call that names a stopped deployment starts it (once, however
//! many calls wait), an idle one unloads after its TTL, and a start that would not fit the memory
//! budget first unloads the least recently used idle deployment. A deployment serving a call is
//! never unloaded under it, and a pinned one never at all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burncloud_database::now_ms;
use burncloud_service_api::{
    InferenceService, InstanceState, KeepAlive, LoadedFacts, LocalLease, LocalModelFacts, LocalServing, MemoryProbe,
    WakeError, WakeFuture, DEFAULT_LOAD_TIMEOUT_S, FIT_MARGIN_BYTES, LOCAL_LOAD_TIMEOUT_SETTING,
    LOCAL_MEMORY_BUDGET_SETTING,
};
use tokio::sync::watch;

use crate::Inference;

/// How often idle deployments are looked for.
pub(crate) const IDLE_CHECK: Duration = Duration::from_millis(250);

/// A deployment's use, kept across its runs.
#[derive(Debug)]
pub(crate) struct Activity {
    pub in_flight: AtomicU32,
    /// When its last call ended or it became ready; 0: not since the app started.
    pub last_used_ms: AtomicI64,
    pub idle_ttl_s: AtomicU32,
    pub pinned: AtomicBool,
    /// What the last call asked for (Ollama's `keep_alive`): `KEEP_AS_SET`, `KEEP_FOREVER`, or
    /// milliseconds after the last call.
    keep_ms: AtomicI64,
}

const KEEP_AS_SET: i64 = i64::MIN;
const KEEP_FOREVER: i64 = -1;

impl Activity {
    pub fn new(idle_ttl_s: u32, pinned: bool) -> Activity {
        Activity {
            in_flight: AtomicU32::new(0),
            last_used_ms: AtomicI64::new(0),
            idle_ttl_s: AtomicU32::new(idle_ttl_s),
            pinned: AtomicBool::new(pinned),
            keep_ms: AtomicI64::new(KEEP_AS_SET),
        }
    }

    pub fn keep(&self, keep: KeepAlive) {
        let ms = match keep {
            KeepAlive::AsSet => KEEP_AS_SET,
            KeepAlive::Forever => KEEP_FOREVER,
            KeepAlive::For(duration) => i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
        };
        self.keep_ms.store(ms, Ordering::Relaxed);
    }

    pub fn touch(&self) {
        self.last_used_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn last_used(&self) -> Option<i64> {
        Some(self.last_used_ms.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
    }

    /// How long it stays loaded after its last call; `None`: until told otherwise.
    fn keeps_for_ms(&self) -> Option<i64> {
        if self.pinned.load(Ordering::Relaxed) {
            return None;
        }
        match self.keep_ms.load(Ordering::Relaxed) {
            KEEP_AS_SET => match self.idle_ttl_s.load(Ordering::Relaxed) {
                0 => None,
                ttl => Some(i64::from(ttl) * 1000),
            },
            KEEP_FOREVER => None,
            ms => Some(ms),
        }
    }

    /// When it unloads if no call comes.
    pub fn unloads_at_ms(&self) -> Option<i64> {
        let last = self.last_used().unwrap_or_else(now_ms);
        self.keeps_for_ms().map(|keep| last.saturating_add(keep))
    }

    fn is_idle_past_ttl(&self, now: i64) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && self.unloads_at_ms().is_some_and(|at| now >= at)
    }
}

/// One call's hold on a ready deployment.
struct Hold {
    activity: Arc<Activity>,
    changes: Arc<watch::Sender<u64>>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.activity.touch();
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.changes.send_modify(|version| *version += 1);
    }
}

/// The deployments by the name calls use.
#[derive(Default)]
pub(crate) struct Names(Mutex<HashMap<String, i64>>);

impl Names {
    pub fn get(&self, alias: &str) -> Option<i64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(alias).copied()
    }

    pub fn insert(&self, alias: String, id: i64) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(alias, id);
    }

    pub fn remove_id(&self, id: i64) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, known| *known != id);
    }

    pub fn all(&self) -> Vec<String> {
        let mut all: Vec<String> = self.0.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        all.sort();
        all
    }
}

/// What a start must make room for, and what stands in its way.
struct Room {
    /// Bytes the live deployments other than the one starting hold.
    used: u64,
    /// Idle, unpinned, ready deployments: (last used, id), the least recently used first.
    idle: Vec<(i64, i64)>,
    /// Bytes held by unpinned deployments that are busy or still starting: room once they idle.
    busy: u64,
}

impl Inference {
    /// Starts keeping a deployment's name and use (at start-up, and when one is created).
    pub(crate) fn track(&self, row: &burncloud_database::repo::instances::InstanceRow) {
        self.names.insert(row.alias.clone(), row.id);
        let activity = Arc::new(Activity::new(row.idle_ttl_s, row.pinned));
        self.activity.lock().unwrap_or_else(|p| p.into_inner()).insert(row.id, activity);
    }

    pub(crate) fn activity(&self, id: i64) -> Option<Arc<Activity>> {
        self.activity.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    pub(crate) fn announce(&self) {
        self.changes.send_modify(|version| *version += 1);
    }

    /// A hold on the deployment if it is ready now.
    fn try_hold(&self, id: i64) -> Option<LocalLease> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let ready = live.get(&id).is_some_and(|s| s.status().state == InstanceState::Ready);
        let activity = self.activity(id).filter(|_| ready)?;
        // Counted while `live` is locked: the idle check holds it too, so it never unloads a
        // deployment between this check and the count.
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Some(LocalLease::new(Hold { activity, changes: self.changes.clone() }))
    }

    fn state_of(&self, id: i64) -> (InstanceState, Option<String>) {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.get(&id).map(|s| s.status()).map_or((InstanceState::Stopped, None), |s| (s.state, s.error))
    }

    fn load_timeout(&self) -> Duration {
        let seconds = self
            .settings
            .get_setting(LOCAL_LOAD_TIMEOUT_SETTING)
            .ok()
            .flatten()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .filter(|seconds| *seconds > 0)
            .unwrap_or(DEFAULT_LOAD_TIMEOUT_S);
        Duration::from_secs(seconds)
    }

    /// Waits until the deployment is ready and holds it, starting it if it is stopped.
    async fn wake(self: Arc<Self>, id: i64, alias: String) -> Result<LocalLease, WakeError> {
        let limit = self.load_timeout();
        let deadline = tokio::time::Instant::now() + limit;
        let mut changes = self.changes.subscribe();
        loop {
            if let Some(lease) = self.try_hold(id) {
                return Ok(lease);
            }
            match self.state_of(id) {
                (InstanceState::Stopped, _) => self.start_on_demand(id, &alias, deadline).await?,
                (InstanceState::Failed, error) => {
                    let reason = error.unwrap_or_else(|| "it failed to start".into());
                    return Err(WakeError::Failed {
                        alias,
                        reason: format!("{reason} (start it again on the Deployments page once this is fixed)"),
                    });
                }
                (InstanceState::Starting | InstanceState::Loading | InstanceState::Stopping, _) => {}
                (InstanceState::Ready, _) => continue,
            }
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                return Err(WakeError::StillLoading { alias, waited_s: limit.as_secs() });
            }
        }
    }

    /// Starts a stopped deployment once room is made for it; starts are taken one at a time.
    async fn start_on_demand(&self, id: i64, alias: &str, deadline: tokio::time::Instant) -> Result<(), WakeError> {
        let failed = |reason: String| WakeError::Failed { alias: alias.to_string(), reason };
        let _turn = self.waking.lock().await;
        if self.state_of(id).0 != InstanceState::Stopped {
            return Ok(());
        }
        let row = self.row(id).map_err(|e| failed(e.to_string()))?;
        let model = self.models.get_local_model(row.model_id).map_err(|e| failed(e.to_string()))?;
        let needed = crate::needed_bytes(&row, &model);
        self.make_room(id, needed, alias, deadline).await?;
        tracing::info!(instance = id, %alias, "a call names a stopped local model; starting it");
        self.launch(row).map_err(|e| failed(e.to_string()))
    }

    /// The memory local models may use together: the setting, else free VRAM (with what running
    /// deployments already hold) on a machine with a GPU, else RAM.
    fn memory_limit(&self, held: u64) -> u64 {
        let set = self.settings.get_setting(LOCAL_MEMORY_BUDGET_SETTING).ok().flatten();
        if let Some(mib) = set.and_then(|text| text.trim().parse::<u64>().ok()) {
            return mib << 20;
        }
        let budget = self.memory_budget();
        match budget.gpu_free_bytes {
            Some(free) => (free + held).saturating_sub(FIT_MARGIN_BYTES),
            None => budget.ram_bytes.saturating_sub(FIT_MARGIN_BYTES),
        }
    }

    fn room(&self, starting: i64) -> Room {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let mut room = Room { used: 0, idle: Vec::new(), busy: 0 };
        for (id, supervised) in live.iter().filter(|(id, _)| **id != starting) {
            let state = supervised.status().state;
            if !state.is_live() {
                continue;
            }
            room.used += supervised.estimated_bytes;
            let Some(activity) = self.activity(*id) else { continue };
            if activity.pinned.load(Ordering::Relaxed) {
                continue;
            }
            if state == InstanceState::Ready && activity.in_flight.load(Ordering::Relaxed) == 0 {
                room.idle.push((activity.last_used_ms.load(Ordering::Relaxed), *id));
            } else if state != InstanceState::Stopping {
                room.busy += supervised.estimated_bytes;
            }
        }
        room.idle.sort();
        room
    }

    /// Unloads idle deployments, the least recently used first, until `needed` bytes fit; waits
    /// for busy ones to finish their calls when only they stand in the way. Pinned deployments
    /// are never unloaded: if they alone leave too little room the start goes ahead, and
    /// llama-server fits what it can.
    async fn make_room(
        &self,
        starting: i64,
        needed: u64,
        alias: &str,
        deadline: tokio::time::Instant,
    ) -> Result<(), WakeError> {
        let mut changes = self.changes.subscribe();
        loop {
            let room = self.room(starting);
            let limit = self.memory_limit(room.used);
            if room.used + needed <= limit || room.used == 0 {
                return Ok(());
            }
            if let Some(&(_, lru)) = room.idle.first() {
                if self.begin_unload(lru, "to make room for another model") {
                    self.stop_and_wait(lru).await;
                }
                continue;
            }
            if room.busy == 0 {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                return Err(WakeError::NoRoom {
                    alias: alias.to_string(),
                    reason: format!(
                        "it needs {} MiB and the models serving calls hold {} MiB of the {} MiB budget",
                        needed >> 20,
                        room.used >> 20,
                        limit >> 20
                    ),
                });
            }
        }
    }

    /// Marks a ready, idle, unpinned deployment as stopping and tells its supervision to stop;
    /// false if a call took it meanwhile.
    pub(crate) fn begin_unload(&self, id: i64, why: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let Some(supervised) = live.get(&id) else { return false };
        let Some(activity) = self.activity(id) else { return false };
        let idle = activity.in_flight.load(Ordering::Relaxed) == 0 && !activity.pinned.load(Ordering::Relaxed);
        if supervised.status().state != InstanceState::Ready || !idle {
            return false;
        }
        tracing::info!(instance = id, why, "unloading a local model");
        supervised.update(|s| s.state = InstanceState::Stopping);
        let _ = supervised.stop.send(true);
        true
    }

    /// Unloads every deployment idle past its TTL, for as long as the service lives.
    pub(crate) async fn unload_idle(service: std::sync::Weak<Inference>) {
        loop {
            tokio::time::sleep(IDLE_CHECK).await;
            let Some(service) = service.upgrade() else { return };
            let now = now_ms();
            let ids: Vec<i64> = service.live.lock().unwrap_or_else(|p| p.into_inner()).keys().copied().collect();
            for id in ids {
                let expired = service.activity(id).is_some_and(|a| a.is_idle_past_ttl(now));
                if expired && service.begin_unload(id, "idle past its TTL") {
                    let stopper = service.clone();
                    service.tasks.spawn_on(async move { stopper.stop_and_wait(id).await }, &service.runtime);
                }
            }
        }
    }
}

impl LocalServing for Inference {
    fn local_models(&self) -> Vec<String> {
        self.names.all()
    }

    fn describe(&self) -> Vec<LocalModelFacts> {
        let Ok(instances) = self.list_instances() else {
            return Vec::new();
        };
        instances
            .into_iter()
            .map(|instance| {
                let model = self.models.get_local_model(instance.model_id).ok();
                let loaded = (instance.state == InstanceState::Ready).then(|| LoadedFacts {
                    memory_bytes: instance.estimated_bytes.unwrap_or(0),
                    unloads_at_ms: self.activity(instance.id).and_then(|activity| activity.unloads_at_ms()),
                });
                LocalModelFacts {
                    alias: instance.alias,
                    kind: instance.kind,
                    size_bytes: model.as_ref().map_or(0, |model| model.size),
                    quantization: model.as_ref().and_then(|model| model.quant.clone()),
                    family: model.as_ref().and_then(|model| model.family.clone()),
                    parameter_size: model.as_ref().and_then(|model| model.parameter_size.clone()),
                    sha256: model.as_ref().and_then(|model| model.sha256.clone()),
                    added_at_ms: model.as_ref().map_or(0, |model| model.added_at_ms),
                    loaded,
                }
            })
            .collect()
    }

    fn keep_alive(&self, alias: &str, keep: KeepAlive) {
        if let Some(activity) = self.names.get(alias).and_then(|id| self.activity(id)) {
            activity.keep(keep);
        }
    }

    fn acquire(&self, alias: &str) -> Option<WakeFuture> {
        let id = self.names.get(alias)?;
        if let Some(lease) = self.try_hold(id) {
            return Some(Box::pin(std::future::ready(Ok(lease))));
        }
        let service = self.this.upgrade()?;
        Some(Box::pin(service.wake(id, alias.to_string())))
    }
}
