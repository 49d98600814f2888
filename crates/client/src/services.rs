//! The service context: every page reaches the services through these hooks, never over HTTP.

use std::sync::Arc;

use burncloud_service_api::{
    AccountService, AdminKeyService, ChannelMonitor, ChannelService, GroupService, InferenceService, LocalModelService,
    LogService, ModelHubService, PlaygroundService, PriceService, SettingsService, TokenService,
};
use dioxus::prelude::*;

/// Facts about the running app for the settings page.
#[derive(Clone, Debug, PartialEq)]
pub struct AppInfo {
    pub version: String,
    pub listen: String,
    pub data_dir: String,
}

/// The services the window calls. Cloning shares them.
#[derive(Clone)]
pub struct Services {
    pub channels: Arc<dyn ChannelService>,
    pub tokens: Arc<dyn TokenService>,
    pub prices: Arc<dyn PriceService>,
    pub account: Arc<dyn AccountService>,
    pub logs: Arc<dyn LogService>,
    pub settings: Arc<dyn SettingsService>,
    pub groups: Arc<dyn GroupService>,
    pub monitor: Arc<dyn ChannelMonitor>,
    pub admin: Arc<dyn AdminKeyService>,
    pub hub: Arc<dyn ModelHubService>,
    pub local_models: Arc<dyn LocalModelService>,
    pub inference: Arc<dyn InferenceService>,
    pub playground: Arc<dyn PlaygroundService>,
    pub info: AppInfo,
}

impl Services {
    /// The configuration services from one object that implements them all (the gateway store),
    /// the running gateway's monitor, the model hub with its local store, the inference
    /// supervisor and the playground.
    pub fn from_store<S, M>(
        store: Arc<S>,
        monitor: Arc<dyn ChannelMonitor>,
        admin: Arc<dyn AdminKeyService>,
        models: Arc<M>,
        inference: Arc<dyn InferenceService>,
        playground: Arc<dyn PlaygroundService>,
        info: AppInfo,
    ) -> Services
    where
        M: ModelHubService + LocalModelService + 'static,
        S: ChannelService
            + TokenService
            + PriceService
            + AccountService
            + LogService
            + SettingsService
            + GroupService
            + 'static,
    {
        Services {
            channels: store.clone(),
            tokens: store.clone(),
            prices: store.clone(),
            account: store.clone(),
            logs: store.clone(),
            settings: store.clone(),
            groups: store,
            monitor,
            admin,
            hub: models.clone(),
            local_models: models,
            inference,
            playground,
            info,
        }
    }
}

pub fn use_services() -> Services {
    use_context::<Services>()
}

/// A counter that pages read in their resources and bump after a change, so every view of the
/// changed data reloads. It also ticks every few seconds so live data (logs, spend) stays fresh.
#[derive(Clone, Copy, PartialEq)]
pub struct Refresh(pub Signal<u64>);

impl Refresh {
    /// Reads the counter, subscribing the current resource or component to changes.
    pub fn track(self) -> u64 {
        (self.0)()
    }

    pub fn bump(mut self) {
        *self.0.write() += 1;
    }
}

pub fn use_refresh() -> Refresh {
    use_context::<Refresh>()
}

/// A counter that goes up every `period` while the component lives: read it in a resource to
/// re-run that resource on that beat (live states, progress).
pub fn use_ticker(period: std::time::Duration) -> Signal<u64> {
    let mut tick = use_signal(|| 0u64);
    use_future(move || async move {
        loop {
            tokio::time::sleep(period).await;
            tick += 1;
        }
    });
    tick
}
