//! The gateway monitor the window and the console share: breaker states and channel tests.

use std::sync::Arc;

use burncloud_router::{BreakerState, ChannelEntry, Gateway};
use burncloud_service_api::{
    ChannelHealthReport, ChannelMonitor, ChannelService, ChannelTestReport, ServiceError, ServiceFuture, ServiceResult,
};
use burncloud_service_gateway::GatewayStore;

pub struct Monitor {
    pub store: Arc<GatewayStore>,
    pub gateway: Arc<Gateway>,
}

impl ChannelMonitor for Monitor {
    fn channel_health(&self) -> ServiceResult<Vec<ChannelHealthReport>> {
        let breakers = self.gateway.breakers();
        let now = breakers.now();
        let now_ms = burncloud_database::now_ms();
        Ok(self
            .store
            .list_channels()?
            .into_iter()
            .map(|channel| {
                let health = breakers.health(channel.id);
                let retry_at_ms = match health.state {
                    BreakerState::Open { until } => {
                        Some(now_ms + until.saturating_duration_since(now).as_millis() as i64)
                    }
                    _ => None,
                };
                ChannelHealthReport {
                    id: channel.id,
                    name: channel.name,
                    kind: channel.kind,
                    breaker: health.state.position(),
                    consecutive_failures: health.consecutive_failures,
                    last_error: health.last_error,
                    last_latency_ms: health.last_latency_ms,
                    retry_at_ms,
                }
            })
            .collect())
    }

    fn test_channel(&self, id: i64) -> ServiceFuture<ChannelTestReport> {
        let (store, gateway) = (self.store.clone(), self.gateway.clone());
        Box::pin(async move {
            let record = tokio::task::spawn_blocking(move || store.channel_record(id))
                .await
                .map_err(|e| ServiceError::Storage(format!("service task failed: {e}")))??;
            let entry = ChannelEntry::from_record(record)
                .ok_or_else(|| ServiceError::invalid("the channel's base URL does not parse"))?;
            Ok(gateway.test_channel(entry).await)
        })
    }
}
