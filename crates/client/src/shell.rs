//! The window's frame: sidebar navigation, language and theme, and the page being shown.

use dioxus::prelude::*;

use crate::{use_services, I18n, Lang, Refresh, STYLESHEET};

/// A page the app registers with the shell.
#[derive(Clone, Copy)]
pub struct Page {
    pub id: &'static str,
    /// An i18n key.
    pub title: &'static str,
    pub icon: &'static str,
    pub render: fn() -> Element,
}

/// Pages are the same page when their ids are (function addresses are not stable to compare).
impl PartialEq for Page {
    fn eq(&self, other: &Page) -> bool {
        self.id == other.id
    }
}

const LIVE_REFRESH: std::time::Duration = std::time::Duration::from_secs(3);

/// The root of the UI. Provide [`crate::Services`] as context above it.
#[component]
pub fn Shell(pages: Vec<Page>, initial_page: Option<String>) -> Element {
    let services = use_services();
    let settings = services.settings.clone();
    let lang = use_signal(|| {
        // BURNCLOUD_LANG overrides the saved choice for one run (screenshots, support).
        let stored = std::env::var("BURNCLOUD_LANG").ok().or_else(|| settings.get_setting("language").ok().flatten());
        Lang::from_code(stored.as_deref().unwrap_or("en"))
    });
    let i18n = use_context_provider(|| I18n { lang });
    let refresh = use_context_provider(|| Refresh(Signal::new(0)));
    let settings = services.settings.clone();
    let mut dark = use_signal(move || settings.get_setting("theme").ok().flatten().as_deref() == Some("dark"));
    let first = initial_page.unwrap_or_else(|| pages.first().map(|p| p.id.to_string()).unwrap_or_default());
    let mut current = use_signal(move || first);
    use_future(move || async move {
        loop {
            tokio::time::sleep(LIVE_REFRESH).await;
            refresh.bump();
        }
    });

    let page = pages.iter().find(|p| p.id == current()).or(pages.first()).copied();
    let settings = services.settings.clone();
    let set_lang = move |new: Lang| {
        let mut lang = i18n.lang;
        lang.set(new);
        let _ = settings.set_setting("language", new.code());
    };
    let settings = services.settings.clone();
    let toggle_theme = move |_| {
        let next = !dark();
        dark.set(next);
        let _ = settings.set_setting("theme", if next { "dark" } else { "light" });
    };
    let set_en = set_lang.clone();
    let set_zh = set_lang;
    rsx! {
        style { {STYLESHEET} }
        div { class: if dark() { "app theme-dark" } else { "app" }, lang: i18n.current().code(),
            nav { class: "sidebar",
                div { class: "brand",
                    span { class: "brand-mark", "B" }
                    div {
                        div { "BurnCloud" }
                        div { class: "hint", {i18n.t("app.tagline")} }
                    }
                }
                for entry in pages.iter().copied() {
                    button {
                        key: "{entry.id}",
                        class: if Some(entry.id) == page.map(|p| p.id) { "nav-item active" } else { "nav-item" },
                        "data-page": entry.id,
                        onclick: move |_| current.set(entry.id.to_string()),
                        span { class: "nav-icon", {entry.icon} }
                        span { {i18n.t(entry.title)} }
                    }
                }
                div { class: "sidebar-foot",
                    div { class: "hint", {i18n.t("shell.endpoint")} }
                    div { class: "endpoint", "http://{services.info.listen}/v1" }
                    div { class: "tabs",
                        button { class: if i18n.current() == Lang::En { "tab active" } else { "tab" },
                            onclick: move |_| set_en(Lang::En), "English" }
                        button { class: if i18n.current() == Lang::Zh { "tab active" } else { "tab" },
                            onclick: move |_| set_zh(Lang::Zh), "简体中文" }
                    }
                    button { class: "btn small", onclick: toggle_theme,
                        if dark() { {i18n.t("shell.theme_light")} } else { {i18n.t("shell.theme_dark")} }
                    }
                }
            }
            main { class: "main",
                if let Some(page) = page {
                    PageHost { key: "{page.id}", page }
                }
            }
        }
    }
}

/// Hosts one page; keyed by page id so each page gets fresh hooks when it is opened.
#[component]
fn PageHost(page: Page) -> Element {
    (page.render)()
}
