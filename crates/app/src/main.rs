//! The `burncloud` binary: command line, data dir, and the background runtime that serves the
//! gateway and the console.

// A double-clicked app opens no console window on Windows; `burncloud serve` from a terminal
// attaches to that terminal instead (see `attach_console`).
#![cfg_attr(windows, windows_subsystem = "windows")]

#[cfg(feature = "web-ui")]
use burncloud::web_ui;
#[cfg(feature = "desktop")]
use burncloud::{desktop, single_instance};

mod runtime_cli;
#[cfg(windows)]
mod windows_stop;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use burncloud_server::{load_or_create_admin_key, serve, shutdown_signal, AppState, RouterConfig};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "burncloud", version, about = "A local LLM gateway and model manager")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway and console API without a window.
    Serve(ServeArgs),
    /// Print the console admin key.
    AdminKey(DataDirArg),
    /// Manage the llama.cpp runtimes local models run on.
    #[command(subcommand)]
    Runtime(RuntimeCommand),
    /// Copy a desktop or single-server store (channels, tokens, prices, settings, the account and
    /// the call log) into an empty PostgreSQL database that a team's instances then share.
    Migrate(MigrateArgs),
}

#[derive(Args)]
struct MigrateArgs {
    /// The SQLite store to copy (`burncloud.db` in the old data dir); stop the app that uses it first.
    #[arg(long)]
    from_sqlite: PathBuf,
    /// The empty PostgreSQL database to copy into.
    #[arg(long, env = "BURNCLOUD_DATABASE_URL")]
    database_url: String,
    /// The data dir whose key (or `BURNCLOUD_SECRET_KEY`) seals the copied secrets: the same key
    /// every instance on the database uses.
    #[command(flatten)]
    data_dir: DataDirArg,
}

#[derive(Subcommand)]
enum RuntimeCommand {
    /// List installed runtimes (`*` marks the active one) and what this machine should run.
    List(DataDirArg),
    /// Download, verify, unpack and activate the llama.cpp build for this machine.
    Install {
        /// `cpu`, `vulkan` or `cuda` [default: what the hardware probe recommends]
        #[arg(long, value_parser = parse_variant)]
        variant: Option<burncloud_service_api::RuntimeVariant>,
        /// A llama.cpp release tag such as `b7412` [default: the newest with a build for this machine]
        #[arg(long)]
        tag: Option<String>,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
    /// Make an installed runtime the active one.
    Use {
        /// The runtime's id, as `runtime list` shows it (`b7412-vulkan`).
        id: String,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
}

fn parse_variant(text: &str) -> Result<burncloud_service_api::RuntimeVariant, String> {
    burncloud_service_api::RuntimeVariant::parse(text).ok_or_else(|| format!("'{text}' is not cpu, vulkan or cuda"))
}

#[derive(Args, Clone)]
struct DataDirArg {
    /// Where the database and keys live [default: the user's data dir/BurnCloud]
    #[arg(long, env = "BURNCLOUD_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BURNCLOUD_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Seconds an upstream may take to start answering.
    #[arg(long, env = "BURNCLOUD_UPSTREAM_TIMEOUT", default_value_t = 300)]
    upstream_timeout: u64,
    /// Seconds an upstream may fall silent in the middle of an answer.
    #[arg(long, env = "BURNCLOUD_UPSTREAM_IDLE_TIMEOUT", default_value_t = 120)]
    upstream_idle_timeout: u64,
    /// Seconds one upstream attempt may take in all, streams included.
    #[arg(long, env = "BURNCLOUD_REQUEST_TIMEOUT", default_value_t = 900)]
    request_timeout: u64,
    /// Largest whole (non-streamed) upstream answer in MiB; larger ones fail the attempt.
    #[arg(long, env = "BURNCLOUD_MAX_RESPONSE_MB", default_value_t = 256)]
    max_response_mb: usize,
    /// Seconds to let calls in progress finish at shutdown.
    #[arg(long, default_value_t = 10)]
    shutdown_grace: u64,
    /// Share rate limits with other instances through Redis (`redis://127.0.0.1:6379`).
    #[arg(long, env = "BURNCLOUD_REDIS_URL")]
    redis_url: Option<String>,
    /// Keep channels, tokens, prices, settings, the account and the call log in PostgreSQL
    /// (`postgres://user:password@host:5432/burncloud`), shared by every instance pointed at it.
    #[arg(long, env = "BURNCLOUD_DATABASE_URL")]
    database_url: Option<String>,
    /// Largest request body in MiB.
    #[arg(long, env = "BURNCLOUD_MAX_BODY_MB", default_value_t = 32)]
    max_body_mb: usize,
    /// Largest file upload (audio to transcribe, images to edit) in MiB; spooled to disk, not memory.
    #[arg(long, env = "BURNCLOUD_MAX_UPLOAD_MB", default_value_t = 256)]
    max_upload_mb: usize,
    /// Calls served at once; beyond it callers get 503 with Retry-After.
    #[arg(long, env = "BURNCLOUD_MAX_CONCURRENT_CALLS", default_value_t = 1024)]
    max_concurrent_calls: usize,
    /// Threads serving requests [default: half the CPU cores, at least 1].
    #[arg(long, env = "BURNCLOUD_WORKERS")]
    workers: Option<usize>,
}

/// Half the cores: the gateway shares the machine with its callers and with local models, and
/// on a loopback hop one busy thread beats two that hand each call back and forth.
fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get() / 2).unwrap_or(1).max(1)
}

fn data_dir(arg: &DataDirArg) -> anyhow::Result<PathBuf> {
    match &arg.data_dir {
        Some(dir) => Ok(dir.clone()),
        None => Ok(dirs::data_dir().context("this system has no user data dir; pass --data-dir")?.join("BurnCloud")),
    }
}

/// A GUI-subsystem program has no console; when started from a terminal with arguments
/// (`serve`, `admin-key`, `--version`), it writes to that terminal.
#[cfg(windows)]
#[expect(unsafe_code, reason = "Win32 console calls have no safe wrapper")]
fn attach_console() {
    use windows_sys::Win32::System::Console::{AttachConsole, SetConsoleCtrlHandler, ATTACH_PARENT_PROCESS};
    if std::env::args_os().len() > 1 {
        // SAFETY: plain Win32 calls. Failure to attach (no parent console) leaves output where it
        // was. A process can inherit "ignore Ctrl-C" from whatever started it (`start /b`, a
        // launcher, a new process group); serving must stop cleanly on Ctrl-C all the same.
        unsafe {
            AttachConsole(ATTACH_PARENT_PROCESS);
            SetConsoleCtrlHandler(None, 0);
        }
    }
}

#[cfg(not(windows))]
fn attach_console() {}

fn main() -> anyhow::Result<()> {
    attach_console();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BURNCLOUD_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::AdminKey(arg)) => {
            let dir = data_dir(&arg)?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            println!("{}", load_or_create_admin_key(&dir)?);
            Ok(())
        }
        Some(Command::Serve(args)) => run_serve(args),
        Some(Command::Migrate(args)) => {
            let dir = data_dir(&args.data_dir)?;
            let shown = redact_password(&args.database_url);
            let report = burncloud_server::migrate_to_postgres(&args.from_sqlite, &args.database_url, &dir)
                .with_context(|| format!("copying {} into {shown}", args.from_sqlite.display()))?;
            for (table, rows) in &report.tables {
                println!("{table:>16}  {rows} row(s)");
            }
            println!("copied {} into {shown}", args.from_sqlite.display());
            println!("start every instance with --database-url and the same secret key (see the user guide)");
            Ok(())
        }
        Some(Command::Runtime(command)) => {
            let (dir, action) = match command {
                RuntimeCommand::List(arg) => (data_dir(&arg)?, runtime_cli::RuntimeAction::List),
                RuntimeCommand::Install { variant, tag, data_dir: arg } => {
                    (data_dir(&arg)?, runtime_cli::RuntimeAction::Install { variant, tag })
                }
                RuntimeCommand::Use { id, data_dir: arg } => (data_dir(&arg)?, runtime_cli::RuntimeAction::Use { id }),
            };
            runtime_cli::run(&dir, action)
        }
        None => run_app(cli.serve),
    }
}

/// The gateway, opened and bound but not yet serving.
struct Started {
    runtime: tokio::runtime::Runtime,
    state: AppState,
    listener: tokio::net::TcpListener,
    /// SIGINT or SIGTERM, with its handlers in place before the port is announced.
    shutdown: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    #[cfg_attr(not(feature = "web-ui"), allow(dead_code))]
    dir: PathBuf,
}

impl Started {
    /// What the settings page shows about this run.
    #[cfg(feature = "web-ui")]
    fn info(&self) -> anyhow::Result<burncloud_client::AppInfo> {
        Ok(burncloud_client::AppInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            listen: self.listener.local_addr()?.to_string(),
            data_dir: self.dir.display().to_string(),
        })
    }

    /// Routes served beside the gateway and the console: the browser UI where it is built in.
    #[cfg(feature = "web-ui")]
    fn extra_routes(&self) -> anyhow::Result<axum::Router> {
        Ok(web_ui::routes(&self.state, self.info()?))
    }

    #[cfg(not(feature = "web-ui"))]
    fn extra_routes(&self) -> anyhow::Result<axum::Router> {
        Ok(axum::Router::new())
    }
}

fn start(args: &ServeArgs) -> anyhow::Result<Started> {
    let dir = data_dir(&args.data_dir)?;
    let limits = RouterConfig {
        first_byte_timeout: Duration::from_secs(args.upstream_timeout),
        idle_read_timeout: Duration::from_secs(args.upstream_idle_timeout.max(1)),
        total_timeout: Duration::from_secs(args.request_timeout.max(1)),
        max_response_bytes: args.max_response_mb.max(1) * 1024 * 1024,
        redis_url: args.redis_url.clone(),
        max_body_bytes: args.max_body_mb.max(1) * 1024 * 1024,
        max_upload_bytes: args.max_upload_mb.max(1) * 1024 * 1024,
        max_concurrent_calls: args.max_concurrent_calls.max(1),
        ..RouterConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.unwrap_or_else(default_workers).max(1))
        .enable_all()
        .thread_name("burncloud")
        .build()?;
    let (state, listener) = runtime.block_on(async {
        let state = AppState::open_on(
            &dir,
            args.database_url.as_deref(),
            limits,
            burncloud_server::ModelHubConfig::from_env(&dir),
            burncloud_server::InferenceConfig::new(&dir),
        )
        .with_context(|| match &args.database_url {
            Some(url) => format!("opening {} with the database at {}", dir.display(), redact_password(url)),
            None => format!("opening {}", dir.display()),
        })?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {} (is another BurnCloud running?)", args.listen))?;
        anyhow::Ok((state, listener))
    })?;
    let address = listener.local_addr()?;
    if !address.ip().is_loopback() {
        tracing::warn!(%address, "listening beyond this machine: anyone who can reach it may try keys");
    }
    let shutdown = {
        let _inside = runtime.enter();
        Box::pin(shutdown_signal())
    };
    tracing::info!(data_dir = %dir.display(), "BurnCloud is serving");
    // The line tests and scripts read to find the port.
    println!("listening on http://{address}");
    if cfg!(feature = "web-ui") {
        tracing::info!("browser UI at http://{address}/ui; sign in with the key `burncloud admin-key` prints");
    }
    Ok(Started { runtime, state, listener, shutdown, dir })
}

/// A database URL as it may be shown: without its password.
fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Double-click: the window where there is a display, headless serving where there is none.
#[cfg(feature = "desktop")]
fn run_app(args: ServeArgs) -> anyhow::Result<()> {
    if !desktop::display_available() {
        tracing::info!("no display: serving headless");
        return run_serve(args);
    }
    desktop::prepare_webview_environment();
    if let Err(error) = desktop::toolkit_ready() {
        tracing::error!(%error, "cannot open a window on this display; serving headless instead");
        return run_serve(args);
    }
    let dir = data_dir(&args.data_dir)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if single_instance::hand_over_to_running(args.listen, &load_or_create_admin_key(&dir)?) {
        println!("BurnCloud is already running on {}; its window is coming to the front.", args.listen);
        return Ok(());
    }
    let started = start(&args)?;
    let info = started.info()?;
    let extra = started.extra_routes()?;
    let Started { runtime, state, listener, shutdown: signalled, .. } = started;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (finished, done) = std::sync::mpsc::channel::<()>();
    let serving = state.clone();
    let grace = Duration::from_secs(args.shutdown_grace);
    std::thread::Builder::new().name("burncloud-runtime".into()).spawn(move || {
        let window_closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let closed = window_closed.clone();
        let shutdown = async move {
            tokio::select! {
                _ = stopped => closed.store(true, std::sync::atomic::Ordering::SeqCst),
                _ = signalled => {},
            }
        };
        if let Err(error) = runtime.block_on(serve(listener, serving, extra, shutdown, grace)) {
            tracing::error!(%error, "the gateway stopped with an error");
        }
        let _ = finished.send(());
        if !window_closed.load(std::sync::atomic::Ordering::SeqCst) {
            // SIGTERM or Ctrl-C: the gateway has stored its logs; take the window down with it.
            std::process::exit(0);
        }
    })?;
    desktop::run_window(&state, info, desktop::stopper(stop, done), None);
    Ok(())
}

#[cfg(not(feature = "desktop"))]
fn run_app(args: ServeArgs) -> anyhow::Result<()> {
    run_serve(args)
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let started = start(&args)?;
    let extra = started.extra_routes()?;
    let Started { runtime, state, listener, shutdown, .. } = started;
    #[cfg(windows)]
    let shutdown = {
        let asked = windows_stop::stop_requested();
        async move {
            tokio::select! {
                _ = shutdown => {},
                _ = asked => {},
            }
        }
    };
    let grace = Duration::from_secs(args.shutdown_grace);
    let served = runtime.block_on(serve(listener, state, extra, shutdown, grace));
    #[cfg(windows)]
    windows_stop::stopped();
    served?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn database_urls_are_shown_without_their_password() {
        assert_eq!(redact_password("postgres://bc:s3cr@t@db:5432/burncloud"), "postgres://bc:***@db:5432/burncloud");
        assert_eq!(redact_password("postgres://bc@db/burncloud"), "postgres://bc@db/burncloud");
        assert_eq!(redact_password("postgres://db/burncloud"), "postgres://db/burncloud");
    }
}
