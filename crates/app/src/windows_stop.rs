//! Windows: a hidden top-level window through which Windows asks a headless BurnCloud to stop.
//!
//! A GUI-subsystem program with no console hears neither Ctrl-C nor the console's logoff and
//! shutdown events. What reaches it are window messages: `taskkill /pid N` (without `/f`) posts
//! `WM_CLOSE` to the process's top-level windows, and logoff or shutdown sends `WM_ENDSESSION`,
//! after which Windows ends the process as soon as the handler returns. So `serve` keeps one
//! invisible window, turns these messages into the same clean stop as Ctrl-C, and holds
//! `WM_ENDSESSION` until the gateway has stored its logs.
#![expect(unsafe_code, reason = "a Win32 window and its procedure are raw OS calls")]

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, WPARAM};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DefWindowProcW, DispatchMessageW, GetMessageW, RegisterClassW, TranslateMessage, MSG, WM_CLOSE,
    WM_ENDSESSION, WM_QUERYENDSESSION, WNDCLASSW, WS_OVERLAPPED,
};

static STOP_REQUESTED: tokio::sync::Notify = tokio::sync::Notify::const_new();
static STOPPED: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());
/// Windows allows a few seconds after logoff or shutdown; the log writer needs well under one.
const END_SESSION_WAIT: Duration = Duration::from_secs(4);

/// Starts the hidden window on its own thread. Resolves when Windows asks the process to stop.
/// Without a window (creation failed) it never resolves, and Ctrl-C remains the way to stop.
pub fn stop_requested() -> impl std::future::Future<Output = ()> + Send + 'static {
    let _ = std::thread::Builder::new().name("burncloud-stop-window".into()).spawn(run_window);
    STOP_REQUESTED.notified()
}

/// Tells a waiting `WM_ENDSESSION` that the gateway has stopped and stored what it had.
pub fn stopped() {
    let (lock, signal) = &STOPPED;
    *lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
    signal.notify_all();
}

fn wide(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(std::iter::once(0)).collect()
}

fn run_window() {
    let class = wide("BurnCloudServe");
    let title = wide("BurnCloud");
    // SAFETY: plain Win32 calls on this thread; the class and title buffers outlive the window's
    // creation, and the window procedure only touches statics.
    unsafe {
        let instance = GetModuleHandleW(std::ptr::null());
        let mut window_class: WNDCLASSW = std::mem::zeroed();
        window_class.lpfnWndProc = Some(window_procedure);
        window_class.hInstance = instance;
        window_class.lpszClassName = class.as_ptr();
        if RegisterClassW(&window_class) == 0 {
            tracing::debug!("no stop window: RegisterClassW failed");
            return;
        }
        let window = CreateWindowExW(
            0,
            class.as_ptr(),
            title.as_ptr(),
            WS_OVERLAPPED,
            0,
            0,
            0,
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            instance,
            std::ptr::null(),
        );
        if window.is_null() {
            tracing::debug!("no stop window: CreateWindowExW failed");
            return;
        }
        let mut message: MSG = std::mem::zeroed();
        while GetMessageW(&mut message, std::ptr::null_mut(), 0, 0) > 0 {
            TranslateMessage(&message);
            DispatchMessageW(&message);
        }
    }
}

unsafe extern "system" fn window_procedure(window: HWND, message: u32, wparam: WPARAM, lparam: LPARAM) -> LRESULT {
    match message {
        WM_CLOSE => {
            tracing::info!("asked to stop (WM_CLOSE)");
            STOP_REQUESTED.notify_one();
            0
        }
        WM_QUERYENDSESSION => 1,
        WM_ENDSESSION if wparam != 0 => {
            tracing::info!("the session is ending: storing logs before Windows ends the process");
            STOP_REQUESTED.notify_one();
            let (lock, signal) = &STOPPED;
            let done = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let _ = signal.wait_timeout_while(done, END_SESSION_WAIT, |stopped| !*stopped);
            0
        }
        // SAFETY: the default handling for every other message, with the arguments as received.
        _ => unsafe { DefWindowProcW(window, message, wparam, lparam) },
    }
}
