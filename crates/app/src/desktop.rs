//! The native window: the same services the console API serves, shown through the client pages,
//! while the gateway runs on a background runtime in the same process.

use std::sync::mpsc;
use std::time::Duration;

use burncloud_client::{AppInfo, Page, Services, Shell};
use burncloud_server::AppState;
use dioxus::desktop::{tao, Config, LogicalSize, WindowBuilder};
use dioxus::prelude::*;

/// Every page of the window, in navigation order.
pub fn pages() -> Vec<Page> {
    vec![
        Page { id: "dashboard", title: "nav.dashboard", icon: "◎", render: burncloud_client_dashboard::Dashboard },
        Page { id: "logs", title: "nav.logs", icon: "≡", render: burncloud_client_dashboard::Logs },
        Page { id: "channels", title: "nav.channels", icon: "⇄", render: burncloud_client_settings::Channels },
        Page { id: "groups", title: "nav.groups", icon: "⊞", render: burncloud_client_settings::Groups },
        Page { id: "tokens", title: "nav.tokens", icon: "✦", render: burncloud_client_settings::Tokens },
        Page { id: "prices", title: "nav.prices", icon: "¤", render: burncloud_client_settings::Prices },
        Page { id: "settings", title: "nav.settings", icon: "⚙", render: burncloud_client_settings::Settings },
    ]
}

/// The page to open first: `BURNCLOUD_PAGE` (used by screenshot scripts), else the dashboard.
#[derive(Clone)]
struct FirstPage(Option<String>);

fn root() -> Element {
    let first = use_context::<FirstPage>();
    rsx! { Shell { pages: pages(), initial_page: first.0 } }
}

/// Runs the window on this thread until it closes; `stop_runtime` is called once, as the event
/// loop ends, and waits for the gateway to finish its calls and store its logs.
pub fn run_window(state: &AppState, info: AppInfo, stop_runtime: impl FnOnce() + 'static) {
    let services = Services::from_store(state.store.clone(), state.monitor.clone(), info);
    let mut stop = Some(stop_runtime);
    let window = WindowBuilder::new()
        .with_title("BurnCloud")
        .with_inner_size(LogicalSize::new(1280.0, 800.0))
        .with_min_inner_size(LogicalSize::new(900.0, 600.0));
    let config = Config::new().with_window(window).with_menu(None).with_custom_event_handler(move |event, _| {
        if let tao::event::Event::LoopDestroyed = event {
            if let Some(stop) = stop.take() {
                stop();
            }
        }
    });
    dioxus::LaunchBuilder::desktop()
        .with_cfg(config)
        .with_context(services)
        .with_context(FirstPage(std::env::var("BURNCLOUD_PAGE").ok()))
        .launch(root);
}

/// Whether a window can be shown here: always on Windows and macOS, with X11 or Wayland on Linux.
pub fn display_available() -> bool {
    if cfg!(any(target_os = "windows", target_os = "macos")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Signals the background runtime to stop and waits (bounded) for it to finish.
pub fn stopper(stop: tokio::sync::oneshot::Sender<()>, finished: mpsc::Receiver<()>) -> impl FnOnce() {
    move || {
        let _ = stop.send(());
        let _ = finished.recv_timeout(Duration::from_secs(15));
    }
}
