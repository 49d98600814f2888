//! The app's front ends as a library, for the `burncloud` binary and its window tests: the native
//! window, the browser UI, and the pages both show.

#[cfg(feature = "desktop")]
pub mod desktop;
#[cfg(feature = "desktop")]
mod icon;
#[cfg(feature = "web-ui")]
pub mod pages;
#[cfg(feature = "desktop")]
pub mod single_instance;
#[cfg(feature = "web-ui")]
pub mod web_ui;
