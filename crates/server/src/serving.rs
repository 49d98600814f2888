//! Serving the application: HTTP/1.1 connections with header deadlines, and a graceful shutdown
//! that lets calls finish and stores every queued log row.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{create_app, MAX_REQUEST_HEADERS, MAX_REQUEST_HEAD_BYTES};
use crate::state::AppState;

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
    let playground = state.playground.clone();
    let header_timeout = state.gateway.client_header_timeout();
    let app = extra.merge(create_app(state));
    let connections = TaskTracker::new();
    let stopping = CancellationToken::new();
    let signalled = async {
        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing calls in progress");
        stopping.cancel();
    };
    tokio::join!(accept_connections(listener, app, header_timeout, &connections, &stopping), signalled);
    let started = tokio::time::Instant::now();
    connections.close();
    if tokio::time::timeout(grace, connections.wait()).await.is_err() {
        tracing::warn!("connections still open after {grace:?}; closing them");
    }
    playground.stop(grace.saturating_sub(started.elapsed())).await;
    models.shutdown().await;
    log_retention.stop().await;
    inference.shutdown().await;
    gateway.drain(grace.saturating_sub(started.elapsed()).max(Duration::from_secs(1))).await;
    tracing::info!(
        written = gateway.log_sink().stats().written.load(std::sync::atomic::Ordering::Relaxed),
        "log rows stored; bye"
    );
    Ok(())
}

/// Serves HTTP/1.1 connections, each a task in `connections`, until `stopping`; then tells each to
/// finish its request in progress and close.
/// Unlike `axum::serve`, every connection has a header-read deadline (slowloris: a client that
/// trickles its headers, or idles between requests, is cut off instead of pinning the server).
/// Connections may be upgraded to WebSockets (the browser UI); an upgraded one is no longer
/// waited for at shutdown.
async fn accept_connections(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    header_timeout: Duration,
    connections: &TaskTracker,
    stopping: &CancellationToken,
) {
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
            () = stopping.cancelled() => break,
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
        let stopping = stopping.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                () = stopping.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = outcome {
                tracing::trace!(%error, "connection ended with an error");
            }
        });
    }
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
