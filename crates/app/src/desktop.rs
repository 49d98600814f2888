//! The native window: the same services the console API serves, shown through the client pages,
//! while the gateway runs on a background runtime in the same process.

use std::sync::mpsc;
use std::time::Duration;

use std::sync::Arc;

use burncloud_client::{use_services, AppInfo, Shell};
use burncloud_server::AppState;
use dioxus::desktop::trayicon::menu::{Menu, MenuItem};
use dioxus::desktop::trayicon::{Icon as TrayIconImage, TrayIcon, TrayIconBuilder};
use dioxus::desktop::{
    tao, use_tray_menu_event_handler, window, Config, LogicalSize, WindowBuilder, WindowCloseBehaviour,
};
use dioxus::prelude::*;

/// The page to open first: `BURNCLOUD_PAGE` (used by screenshot scripts), else the dashboard.
#[derive(Clone)]
struct FirstPage(Option<String>);

/// A component mounted beside the pages that drives the window from inside (window tests).
#[derive(Clone, Copy)]
struct Driver(Option<fn() -> Element>);

/// Requests from elsewhere in the process to bring the window to the front.
#[derive(Clone)]
struct ShowRequests(Arc<tokio::sync::Notify>);

const ICON_SIZE: u32 = 64;

fn show() {
    let window = window();
    window.set_visible(true);
    window.set_minimized(false);
    window.set_focus();
}

/// The tray icon with Show / Hide / Quit, when the desktop has a tray; None (logged) otherwise.
fn build_tray() -> Option<TrayIcon> {
    let menu = Menu::new();
    let items = [
        MenuItem::with_id("show", "Show BurnCloud", true, None),
        MenuItem::with_id("hide", "Hide", true, None),
        MenuItem::with_id("quit", "Quit", true, None),
    ];
    for item in &items {
        menu.append(item).ok()?;
    }
    let icon = TrayIconImage::from_rgba(crate::icon::icon_rgba(ICON_SIZE), ICON_SIZE, ICON_SIZE).ok();
    let mut builder = TrayIconBuilder::new().with_menu(Box::new(menu)).with_tooltip("BurnCloud");
    if let Some(icon) = icon {
        builder = builder.with_icon(icon);
    }
    match builder.build() {
        Ok(tray) => Some(tray),
        Err(error) => {
            tracing::warn!(%error, "no tray icon on this desktop; closing the window quits");
            None
        }
    }
}

fn root() -> Element {
    let first = use_context::<FirstPage>();
    let driver = use_context::<Driver>().0;
    let requests = use_context::<ShowRequests>();
    let services = use_services();
    let tray = use_hook(|| std::rc::Rc::new(build_tray()));
    let has_tray = tray.is_some();
    use_tray_menu_event_handler(move |event| match event.id.0.as_str() {
        "show" => show(),
        "hide" => window().set_visible(false),
        "quit" => {
            window().set_close_behavior(WindowCloseBehaviour::WindowCloses);
            window().close();
        }
        _ => {}
    });
    use_future(move || {
        let requests = requests.0.clone();
        async move {
            loop {
                requests.notified().await;
                show();
            }
        }
    });
    // Closing hides to the tray when the setting is on and there is a tray to come back from.
    let settings = services.settings.clone();
    use_future(move || {
        let settings = settings.clone();
        async move {
            loop {
                let hide = has_tray && settings.get_setting("close_to_tray").ok().flatten().as_deref() != Some("false");
                let behaviour =
                    if hide { WindowCloseBehaviour::WindowHides } else { WindowCloseBehaviour::WindowCloses };
                window().set_close_behavior(behaviour);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    });
    rsx! {
        Shell { pages: crate::pages::pages(), initial_page: first.0 }
        if let Some(driver) = driver {
            {driver()}
        }
    }
}

/// Runs the window on this thread until it closes; `stop_runtime` is called once, as the event
/// loop ends, and waits for the gateway to finish its calls and store its logs. `driver`, when
/// given, is mounted beside the pages (window tests drive the window from inside with it).
pub fn run_window(
    state: &AppState,
    info: AppInfo,
    stop_runtime: impl FnOnce() + 'static,
    driver: Option<fn() -> Element>,
) {
    let services = crate::pages::services(state, info);
    let mut stop = Some(stop_runtime);
    let icon = tao::window::Icon::from_rgba(crate::icon::icon_rgba(ICON_SIZE), ICON_SIZE, ICON_SIZE).ok();
    let window = WindowBuilder::new()
        .with_window_icon(icon)
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
        .with_context(ShowRequests(state.show_window.clone()))
        .with_context(Driver(driver))
        .launch(root);
}

/// Settles how the webview draws, before any thread starts (it sets environment variables).
/// The pages are plain documents with no animation, so WebKitGTK's GPU compositing buys nothing
/// visible here, and it costs about 100 MB: a GL context and its buffers in the web process. A user
/// who sets `WEBKIT_DISABLE_COMPOSITING_MODE` themselves keeps their choice.
pub fn prepare_webview_environment() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
}

/// Starts the GTK toolkit the window runs on. GTK now and then refuses to start for a moment (seen
/// right after another GTK program left the display), so it gets a few tries before this launch
/// gives up on a window.
#[cfg(target_os = "linux")]
pub fn toolkit_ready() -> Result<(), String> {
    let mut last_error = String::new();
    for attempt in 1..=5u64 {
        match gtk::init() {
            Ok(()) => return Ok(()),
            Err(error) => last_error = error.to_string(),
        }
        tracing::warn!(attempt, error = %last_error, "GTK did not start; trying again");
        std::thread::sleep(Duration::from_millis(200 * attempt));
    }
    Err(last_error)
}

#[cfg(not(target_os = "linux"))]
pub fn toolkit_ready() -> Result<(), String> {
    Ok(())
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
