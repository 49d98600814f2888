//! The browser UI at `/ui`: the window's pages rendered in this process and driven over a
//! WebSocket (dioxus-liveview), for `burncloud serve` on a machine without a display. The sign-in
//! gate in front of it is the server's (`burncloud_server::browser_ui`).

use std::sync::{Arc, OnceLock};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Html;
use axum::routing::get;
use burncloud_client::{AppInfo, Services, Shell};
use burncloud_server::AppState;
use dioxus::prelude::*;
use dioxus_liveview::{interpreter_glue, LiveViewError, LiveViewPool, LiveViewSocket};
use futures_util::{SinkExt, StreamExt};

use crate::pages::{pages, services};

const SOCKET_PATH: &str = "/ui/ws";

/// `/ui` and its socket, behind the sign-in gate.
pub fn routes(state: &AppState, info: AppInfo) -> axum::Router {
    let services = services(state, info);
    // The pool's threads start with the first browser, so `serve` without one stays small.
    let pool: Arc<OnceLock<LiveViewPool>> = Arc::default();
    let page: Arc<str> = index_page().into();
    let pages = axum::Router::new()
        .route(burncloud_server::UI_PATH, get(move || std::future::ready(Html(page.to_string()))))
        .route(
            SOCKET_PATH,
            get(move |socket: WebSocketUpgrade| {
                let pool = pool.clone();
                let services = services.clone();
                std::future::ready(socket.on_upgrade(move |socket| async move {
                    let pool = pool.get_or_init(LiveViewPool::new).clone();
                    let launched = pool.launch_virtualdom(liveview_socket(socket), move || root_with(services)).await;
                    if let Err(error) = launched {
                        tracing::debug!(%error, "a browser UI session ended");
                    }
                }))
            }),
        );
    burncloud_server::browser_ui(state.clone(), pages)
}

/// The WebSocket as the byte sink and stream LiveView speaks: the page sends text frames (events,
/// pings), the server sends binary frames (edits). Our own few lines instead of dioxus-liveview's
/// `axum` feature, which would switch on axum's default features (per-request tracing, matched
/// path and original URI extensions) for the gateway's every call too.
fn liveview_socket(socket: WebSocket) -> impl LiveViewSocket {
    socket
        .filter_map(|message| {
            std::future::ready(match message {
                Ok(Message::Text(text)) => Some(Ok(text.as_bytes().to_vec())),
                Ok(Message::Binary(bytes)) => Some(Ok(bytes.to_vec())),
                Ok(Message::Ping(_) | Message::Pong(_)) => None,
                Ok(Message::Close(_)) | Err(_) => Some(Err(LiveViewError::SendingFailed)),
            })
        })
        .with(|edits: Vec<u8>| std::future::ready(Ok::<_, axum::Error>(Message::Binary(edits.into()))))
        .sink_map_err(|_| LiveViewError::SendingFailed)
}

fn root_with(services: Services) -> VirtualDom {
    VirtualDom::new(root).with_root_context(services)
}

fn root() -> Element {
    rsx! { Shell { pages: pages(), initial_page: None } }
}

/// The page the browser loads: an empty root the socket fills, and a notice for when the socket
/// drops (the server stopped or restarted), since a dead page would otherwise look alive.
fn index_page() -> String {
    let glue = interpreter_glue(SOCKET_PATH);
    let icon = burncloud_server::UI_ICON_LINK;
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>BurnCloud</title>{icon}
<style>
body {{ margin: 0; }}
#bc-offline {{ position: fixed; left: 50%; bottom: 24px; transform: translateX(-50%); z-index: 100;
  padding: 10px 16px; border-radius: 8px; background: #1d2330; color: #fff; font: 14px system-ui, sans-serif; }}
#bc-offline a {{ color: #ffb37a; margin-left: 8px; }}
#bc-sign-out {{ position: fixed; right: 16px; bottom: 12px; z-index: 100; margin: 0; }}
#bc-sign-out button {{ border: 0; background: none; color: #8a93a3; font: 12px system-ui, sans-serif; cursor: pointer; }}
#bc-sign-out button:hover {{ text-decoration: underline; }}
</style></head>
<body><div id="main"></div>
<form id="bc-sign-out" method="post" action="/ui/logout"><button type="submit">Sign out · 退出登录</button></form>
<div id="bc-offline" role="alert" hidden>Connection to BurnCloud lost · 与 BurnCloud 的连接已断开 <a href="/ui">Reload · 重新加载</a></div>
{glue}
<script>
window.ipc && window.ipc.ws.addEventListener("close", function () {{
  document.getElementById("bc-offline").hidden = false;
}});
</script>
</body></html>"#
    )
}
