//! How a model fits this computer, as a badge: in GPU memory, partly, on the CPU, too big, or
//! unknown; and which of a repository's files to suggest.

use burncloud_client::use_i18n;
use burncloud_service_api::{Fit, HubFile};
use dioxus::prelude::*;

pub fn fit_key(fit: Fit) -> &'static str {
    match fit {
        Fit::Gpu => "fit.gpu",
        Fit::Partial => "fit.partial",
        Fit::Cpu => "fit.cpu",
        Fit::TooBig => "fit.too_big",
        Fit::Unknown => "fit.unknown",
    }
}

fn fit_class(fit: Fit) -> &'static str {
    match fit {
        Fit::Gpu => "badge ok",
        Fit::Partial | Fit::Cpu => "badge warn",
        Fit::TooBig => "badge bad",
        Fit::Unknown => "badge",
    }
}

#[component]
pub fn FitBadge(fit: Fit) -> Element {
    let i18n = use_i18n();
    rsx! { span { class: fit_class(fit), {i18n.t(fit_key(fit))} } }
}

/// The file to suggest: the largest that fits in GPU memory, else the largest that runs at all.
pub fn suggested(files: &[HubFile]) -> Option<String> {
    let largest = |wanted: &[Fit]| {
        files
            .iter()
            .filter(|f| wanted.contains(&f.fit) && !f.mmproj)
            .max_by_key(|f| f.estimated_bytes.unwrap_or(0))
            .map(|f| f.path.clone())
    };
    largest(&[Fit::Gpu]).or_else(|| largest(&[Fit::Partial, Fit::Cpu]))
}
