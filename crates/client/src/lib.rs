//! The UI shell every page lives in: service context, i18n, theme, layout and navigation, and the
//! small building blocks pages share. Pages come from the `client-*` crates and are registered by
//! the app, so this crate depends on none of them.

mod format;
pub mod forms;
mod i18n;
mod services;
mod shell;
mod widgets;

#[cfg(feature = "testing")]
pub mod testing;

pub use format::*;
pub use i18n::{use_i18n, I18n, Lang, STRINGS};
pub use services::{use_refresh, use_services, use_ticker, AppInfo, Refresh, Services};
pub use shell::{Page, Shell, ShellProps};
pub use widgets::{Empty, ErrorNotice, StatusBadge};

/// The stylesheet: design tokens, light and dark themes, components.
pub const STYLESHEET: &str = include_str!("../../../assets/app.css");
