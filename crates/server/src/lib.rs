//! The HTTP application: `/health`, the console API (`/console/api/*`) over the services, and the
//! `/v1` data plane as the fallback; plus opening the data dir and serving with graceful shutdown.

mod admin_key;
mod browser_ui;
mod console;
mod console_inference;
mod console_models;
mod error;
mod monitor;
mod openapi;
mod playground;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use burncloud_database::Db;
use burncloud_router::{create_router_app, Gateway, LogWriterConfig, RouterConfig};
use burncloud_service_gateway::retention::LogRetention;
use burncloud_service_gateway::GatewayStore;
use burncloud_service_inference::Inference;
use burncloud_service_models::ModelHub;

pub use admin_key::{load_or_create_admin_key, AdminKeys, ADMIN_KEY_ENV, ADMIN_KEY_FILE};
pub use browser_ui::{browser_ui, UI_ICON_LINK, UI_PATH};
pub use burncloud_router::RouterConfig as GatewayLimits;

/// At most this many request headers.
pub const MAX_REQUEST_HEADERS: usize = 100;
/// At most this many bytes of request line and headers.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;
pub use burncloud_service_inference::InferenceConfig;
pub use burncloud_service_models::ModelHubConfig;
pub use error::ConsoleError;
pub use monitor::Monitor;
pub use playground::Playground;

pub const DATABASE_FILE: &str = "burncloud.db";
/// Days of call logs to keep (a setting; `BURNCLOUD_LOG_RETENTION_DAYS` where it is unset); 0 or
/// absent keeps them all. Usage totals are kept regardless.
pub use burncloud_service_api::LOG_RETENTION_SETTING;
pub use burncloud_service_gateway::retention::{log_retention_days, prune_expired_logs, LOG_RETENTION_ENV};

/// Errors while starting up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Database(#[from] burncloud_database::DbError),
    #[error(transparent)]
    Gateway(#[from] burncloud_router::StartError),
    #[error("cannot start the model hub: {0}")]
    Models(#[from] burncloud_service_api::ServiceError),
    #[error("cannot read or create the admin key {path}: {source}")]
    AdminKey { path: PathBuf, source: std::io::Error },
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
    /// Where the key that seals stored secrets lives: `keyring` or `file`.
    pub secrets_store: &'static str,
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
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StartError::AdminKey { path: data_dir.to_path_buf(), source })?;
        let admin_keys = Arc::new(AdminKeys::open(data_dir)?);
        let db = Arc::new(Db::open(data_dir.join(DATABASE_FILE))?);
        let secrets_store = db.vault().key_store().as_str();
        let gateway = Gateway::new(db.clone(), router, LogWriterConfig::default())?;
        let store = Arc::new(GatewayStore::new(db.clone()));
        let log_retention = Arc::new(LogRetention::start(db.clone(), store.clone()));
        let models = ModelHub::start(db.clone(), store.clone(), models)?;
        let inference = Inference::start(db, store.clone(), models.clone(), models.clone(), store.clone(), inference)?;
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
            log_retention,
        })
    }

    pub fn admin_key(&self) -> String {
        burncloud_service_api::AdminKeyService::admin_key(self.admin_keys.as_ref())
    }
}

/// The whole HTTP application.
pub fn create_app(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/health", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .merge(console::routes(state.clone()))
        .merge(create_router_app(state.gateway.clone()))
        .fallback(console::not_found)
}

/// Serves `state` on `listener` until `shutdown` resolves; then stops accepting, lets calls in
/// progress finish (up to `grace`), and stores every queued log row before returning. `extra`
/// holds routes the caller adds, such as the browser UI.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    extra: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let gateway = state.gateway.clone();
    let models = state.models.clone();
    let inference = state.inference.clone();
    let log_retention = state.log_retention.clone();
    let header_timeout = state.gateway.client_header_timeout();
    let app = extra.merge(create_app(state));
    let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(accept_connections(listener, app, header_timeout, stopped));
    shutdown.await;
    tracing::info!("shutting down: no new connections; finishing calls in progress");
    let _ = stop_accepting.send(());
    let started = tokio::time::Instant::now();
    match tokio::time::timeout(grace, server).await {
        Ok(Ok(())) => {}
        Ok(Err(join_error)) => tracing::error!(%join_error, "the server task failed"),
        Err(_) => tracing::warn!("connections still open after {grace:?}; closing them"),
    }
    models.shutdown();
    log_retention.stop().await;
    inference.shutdown().await;
    gateway.drain(grace.saturating_sub(started.elapsed()).max(Duration::from_secs(1))).await;
    tracing::info!(
        written = gateway.log_sink().stats().written.load(std::sync::atomic::Ordering::Relaxed),
        "log rows stored; bye"
    );
    Ok(())
}

/// Serves HTTP/1.1 connections until `stopped`, then lets each finish its request in progress.
/// Unlike `axum::serve`, every connection has a header-read deadline (slowloris: a client that
/// trickles its headers, or idles between requests, is cut off instead of pinning the server).
/// Connections may be upgraded to WebSockets (the browser UI); an upgraded one is no longer
/// waited for at shutdown.
async fn accept_connections(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    header_timeout: Duration,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    // Each connection holds a receiver; `closed()` resolves once every one of them is gone.
    let (shutting_down, shutdown_watch) = tokio::sync::watch::channel(false);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    // Out of descriptors or a connection reset while queued: wait, don't spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        // Stream chunks are small writes: without TCP_NODELAY, Nagle's algorithm holds each one
        // until the caller's delayed ACK, about 40 ms later.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY could not be set on a connection");
        }
        // Beside each request, who sent it: Ollama's routes let keyless callers on this machine in
        // when the user allowed it.
        let peer = axum::extract::ConnectInfo(remote);
        let service = hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(peer);
                request
            },
        ));
        let mut builder = hyper::server::conn::http1::Builder::new();
        // Header limits: 100 headers, 64 KiB of request line and headers; beyond them hyper answers
        // 431 and closes, so no caller can make a connection hold more.
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_headers(MAX_REQUEST_HEADERS)
            .max_buf_size(MAX_REQUEST_HEAD_BYTES);
        let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).with_upgrades();
        let mut shutdown = shutdown_watch.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                _ = shutdown.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = outcome {
                tracing::trace!(%error, "connection ended with an error");
            }
            drop(shutdown);
        });
    }
    drop(listener);
    drop(shutdown_watch);
    let _ = shutting_down.send(true);
    shutting_down.closed().await;
}

/// Resolves on SIGINT or SIGTERM (on Windows: Ctrl-C, Ctrl-Break, the console closed, logoff or shutdown). Call it inside the runtime, before the
/// port is announced.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    // Registered now, not on first poll: a SIGTERM that arrives as soon as the port is announced
    // must already find its handler, or the default action kills the process with logs unstored.
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok())
    };
    #[cfg(unix)]
    return async move {
        let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(interrupt) => {},
            _ = wait(terminate) => {},
        }
    };
    #[cfg(windows)]
    {
        // Ctrl-C and Ctrl-Break in the terminal, the terminal window closed, and the user logging off
        // or the machine shutting down (Windows waits a few seconds for these, enough to store logs).
        use tokio::signal::windows;
        let interrupt = windows::ctrl_c().ok();
        let brk = windows::ctrl_break().ok();
        let close = windows::ctrl_close().ok();
        let logoff = windows::ctrl_logoff().ok();
        let shutdown = windows::ctrl_shutdown().ok();
        async move {
            macro_rules! wait {
                ($signal:expr) => {
                    async {
                        match $signal {
                            Some(mut signal) => {
                                signal.recv().await;
                            }
                            None => std::future::pending::<()>().await,
                        }
                    }
                };
            }
            tokio::select! {
                _ = wait!(interrupt) => {},
                _ = wait!(brk) => {},
                _ = wait!(close) => {},
                _ = wait!(logoff) => {},
                _ = wait!(shutdown) => {},
            }
        }
    }
}
