//! The application's state: the services, the data plane and the admin key, opened together
//! from a data dir and wired to one another.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burncloud_database::Db;
use burncloud_router::{Gateway, LogWriterConfig, RouterConfig};
use burncloud_service_gateway::retention::LogRetention;
use burncloud_service_gateway::GatewayStore;
use burncloud_service_inference::{Inference, InferenceConfig};
use burncloud_service_models::{ModelHub, ModelHubConfig};

use crate::admin_key::{AdminKeyError, AdminKeys};
use crate::monitor::Monitor;
use crate::playground::Playground;

/// The SQLite file in the data dir.
pub const DATABASE_FILE: &str = "burncloud.db";

/// Errors while starting up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Database(#[from] burncloud_database::DbError),
    #[error(transparent)]
    Gateway(#[from] burncloud_router::StartError),
    #[error("cannot start the model hub: {0}")]
    Models(#[from] burncloud_service_api::ServiceError),
    #[error(transparent)]
    AdminKey(#[from] AdminKeyError),
    #[error("cannot create the data dir {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("{0} does not exist")]
    NoSuchStore(PathBuf),
}

/// `burncloud migrate`: copies the SQLite store at `from_sqlite` into the empty PostgreSQL
/// database at `database_url`, its secrets sealed again with the key every instance on that
/// database uses (`BURNCLOUD_SECRET_KEY`, else `data_dir`'s).
pub fn migrate_to_postgres(
    from_sqlite: &Path,
    database_url: &str,
    data_dir: &Path,
) -> Result<burncloud_database::CopyReport, StartError> {
    if !from_sqlite.is_file() {
        return Err(StartError::NoSuchStore(from_sqlite.to_path_buf()));
    }
    let source = Db::open(from_sqlite)?;
    std::fs::create_dir_all(data_dir).map_err(|source| StartError::DataDir { path: data_dir.to_path_buf(), source })?;
    let target = Db::open_postgres(database_url, data_dir)?;
    Ok(burncloud_database::copy_shared_tables(&source, &target)?)
}

/// Everything the HTTP app serves from: the services, the data plane, and the admin key.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<GatewayStore>,
    pub gateway: Arc<Gateway>,
    pub monitor: Arc<Monitor>,
    /// Asks the window, if this process has one, to come to the front (a second launch does).
    pub show_window: Arc<tokio::sync::Notify>,
    pub admin_keys: Arc<AdminKeys>,
    /// The model hub and local model store.
    pub models: Arc<ModelHub>,
    /// The llama-server supervisor.
    pub inference: Arc<Inference>,
    /// The playground's way into the gateway.
    pub playground: Arc<Playground>,
    /// Where the key that seals stored secrets lives: `keyring`, `file` or `environment`.
    pub secrets_store: &'static str,
    /// Where channels, tokens, prices, settings and the call log live: `sqlite` (the data dir's
    /// file) or `postgresql` (a store several instances share).
    pub database: &'static str,
    /// Prunes calls past the retention, hourly; `serve` stops it at shutdown.
    pub log_retention: Arc<LogRetention>,
}

impl AppState {
    /// Opens `data_dir/burncloud.db` (creating the dir), applies migrations, starts the log writer
    /// and the model hub (whose endpoints and tokens may come from the environment). Call it inside
    /// a Tokio runtime: unfinished downloads continue at once.
    pub fn open(data_dir: &Path, router: RouterConfig) -> Result<AppState, StartError> {
        AppState::open_with_models(data_dir, router, ModelHubConfig::from_env(data_dir))
    }

    pub fn open_with_models(
        data_dir: &Path,
        router: RouterConfig,
        models: ModelHubConfig,
    ) -> Result<AppState, StartError> {
        AppState::open_with_services(data_dir, router, models, InferenceConfig::new(data_dir))
    }

    pub fn open_with_services(
        data_dir: &Path,
        router: RouterConfig,
        models: ModelHubConfig,
        inference: InferenceConfig,
    ) -> Result<AppState, StartError> {
        AppState::open_on(data_dir, None, router, models, inference)
    }

    /// As `open`, with channels, tokens, prices, settings, the account and the call log in the
    /// PostgreSQL database at `database_url` where one is given, shared with every other instance
    /// pointed at it; downloads, local models and deployments stay in this machine's own file.
    pub fn open_on(
        data_dir: &Path,
        database_url: Option<&str>,
        router: RouterConfig,
        models: ModelHubConfig,
        inference: InferenceConfig,
    ) -> Result<AppState, StartError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StartError::DataDir { path: data_dir.to_path_buf(), source })?;
        let admin_keys = Arc::new(AdminKeys::open(data_dir)?);
        let local = Arc::new(Db::open(data_dir.join(DATABASE_FILE))?);
        let db = match database_url {
            Some(url) => Arc::new(Db::open_postgres(url, data_dir)?),
            None => local.clone(),
        };
        let database = if db.is_postgres() { "postgresql" } else { "sqlite" };
        let secrets_store = db.vault().key_store().as_str();
        let gateway = Gateway::new(db.clone(), router, LogWriterConfig::default())?;
        let store = Arc::new(GatewayStore::with_local(db.clone(), local.clone()));
        let log_retention = Arc::new(LogRetention::start(db.clone(), store.clone()));
        let models = ModelHub::start(local.clone(), store.clone(), models)?;
        let inference =
            Inference::start(local, store.clone(), models.clone(), models.clone(), store.clone(), inference)?;
        models.set_usage(inference.clone());
        gateway.set_local(inference.clone());
        models.set_memory(inference.clone());
        models.set_finisher(
            burncloud_service_api::HubSource::LlamaCpp,
            Arc::new(burncloud_service_inference::RuntimeFinisher(inference.runtimes())),
        );
        let reload_target = gateway.clone();
        store.on_change(Box::new(move || {
            if let Err(error) = reload_target.reload() {
                tracing::error!(%error, "reloading the gateway configuration failed; serving the previous one");
            }
        }));
        if db.is_postgres() {
            // The other instances on the shared store reload too (see `Gateway`'s follower).
            let announcer = db.clone();
            store.on_change(Box::new(move || {
                if let Err(error) = announcer.announce(burncloud_database::Change::Config) {
                    tracing::warn!(%error, "could not tell the other instances about a change; they re-read within seconds");
                }
            }));
        }
        let monitor = Arc::new(Monitor { store: store.clone(), gateway: gateway.clone() });
        let show_window = Arc::new(tokio::sync::Notify::new());
        let playground = Arc::new(Playground::new(gateway.clone(), store.clone()));
        Ok(AppState {
            store,
            gateway,
            monitor,
            show_window,
            admin_keys,
            models,
            inference,
            playground,
            secrets_store,
            database,
            log_retention,
        })
    }

    pub fn admin_key(&self) -> String {
        burncloud_service_api::AdminKeyService::admin_key(self.admin_keys.as_ref())
    }
}
