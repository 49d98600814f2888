//! Small pieces pages share: empty states, error notices, status badges.

use dioxus::prelude::*;

/// What to show when a list is empty: what it is and what to do next.
#[component]
pub fn Empty(title: String, hint: String, children: Element) -> Element {
    rsx! {
        div { class: "empty",
            div { class: "empty-title", "{title}" }
            div { "{hint}" }
            {children}
        }
    }
}

#[component]
pub fn ErrorNotice(message: String) -> Element {
    rsx! { div { class: "notice bad", role: "alert", "{message}" } }
}

/// An HTTP status as a coloured badge.
#[component]
pub fn StatusBadge(status: u16) -> Element {
    let class = match status {
        200..=299 => "badge ok",
        400..=499 => "badge warn",
        _ => "badge bad",
    };
    rsx! { span { class: "{class}", "{status}" } }
}
