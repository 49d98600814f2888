//! The call log's retention: how many days of calls to keep, the pruning of older ones in small
//! batches, and the background task that prunes once an hour — owned by the app and stopped at
//! shutdown, never left running unwatched.

use std::sync::Arc;
use std::time::Duration;

use burncloud_database::Db;
use burncloud_service_api::{SettingsService, LOG_RETENTION_SETTING};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Read where the setting is unset.
pub const LOG_RETENTION_ENV: &str = "BURNCLOUD_LOG_RETENTION_DAYS";

/// How many days of call logs to keep, if any limit is set (0 or absent: keep them all).
pub fn log_retention_days(settings: &dyn SettingsService) -> Option<u32> {
    let configured = settings.get_setting(LOG_RETENTION_SETTING).ok().flatten();
    let text = configured.or_else(|| std::env::var(LOG_RETENTION_ENV).ok())?;
    text.trim().parse::<u32>().ok().filter(|days| *days > 0)
}

/// Removes calls (and stored Responses API answers) older than the retention, in small batches
/// with pauses between them so logging goes on unhindered; returns how many rows went.
pub async fn prune_expired_logs(db: &Arc<Db>, days: u32, now_ms: i64) -> usize {
    const BATCH: usize = 5_000;
    let cutoff = now_ms - i64::from(days) * 86_400_000;
    let mut pruned = 0;
    loop {
        let batch_db = db.clone();
        let removed = tokio::task::spawn_blocking(move || {
            batch_db.write(|c| {
                // Stored Responses API answers follow the call log's retention.
                let responses = burncloud_database::repo::responses::prune_before(c, cutoff, BATCH)?;
                Ok(responses + burncloud_database::repo::logs::prune_before(c, cutoff, BATCH)?)
            })
        })
        .await;
        match removed {
            Ok(Ok(0)) => break,
            Ok(Ok(removed)) => pruned += removed,
            Ok(Err(error)) => {
                tracing::warn!(%error, "pruning old call logs failed; will try again later");
                break;
            }
            Err(error) => {
                tracing::warn!(%error, "the log pruning task failed");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pruned
}

/// The hourly pruning task; `stop` ends it and waits for it.
pub struct LogRetention {
    stopping: CancellationToken,
    task: TaskTracker,
}

impl LogRetention {
    /// Starts pruning `db` by the retention `settings` name: first a minute after start-up, once
    /// the app has settled, then every hour.
    pub fn start(db: Arc<Db>, settings: Arc<dyn SettingsService>) -> LogRetention {
        let stopping = CancellationToken::new();
        let stopped = stopping.clone();
        let task = TaskTracker::new();
        task.spawn(async move {
            let mut wait = Duration::from_secs(60);
            loop {
                tokio::select! {
                    () = stopped.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                if let Some(days) = log_retention_days(settings.as_ref()) {
                    let pruned = prune_expired_logs(&db, days, burncloud_database::now_ms()).await;
                    if pruned > 0 {
                        tracing::info!(pruned, days, "removed call logs older than the retention");
                    }
                }
                wait = Duration::from_secs(3600);
            }
        });
        task.close();
        LogRetention { stopping, task }
    }

    /// Ends the task (a pass in progress finishes its batch first) and waits for it.
    pub async fn stop(&self) {
        self.stopping.cancel();
        self.task.wait().await;
    }
}
