//! The HTTP application: `/health`, the console API (`/console/api/*`) over the services, and the
//! `/v1` data plane as the fallback; plus opening the data dir and serving with graceful shutdown.

mod admin_key;
mod app;
mod auth;
mod browser_ui;
mod console;
mod error;
mod monitor;
mod playground;
mod serving;
mod state;

pub use admin_key::{load_or_create_admin_key, AdminKeyError, AdminKeys, ADMIN_KEY_ENV, ADMIN_KEY_FILE};
pub use app::{create_app, MAX_REQUEST_HEADERS, MAX_REQUEST_HEAD_BYTES};
pub use browser_ui::{browser_ui, UI_ICON_LINK, UI_PATH};
pub use burncloud_router::RouterConfig;
pub use burncloud_service_inference::InferenceConfig;
pub use burncloud_service_models::ModelHubConfig;
pub use error::ConsoleError;
pub use monitor::Monitor;
pub use playground::Playground;
pub use serving::{serve, shutdown_signal};
pub use state::{migrate_to_postgres, AppState, StartError, DATABASE_FILE};

/// Days of call logs to keep (a setting; `BURNCLOUD_LOG_RETENTION_DAYS` where it is unset); 0 or
/// absent keeps them all. Usage totals are kept regardless.
pub use burncloud_service_api::LOG_RETENTION_SETTING;
pub use burncloud_service_gateway::retention::{log_retention_days, prune_expired_logs, LOG_RETENTION_ENV};
