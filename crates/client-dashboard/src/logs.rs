//! The call log: filters, paging, and the details of one call.

use burncloud_client::{
    call_cost, count, millis, money_exact, now_ms, timestamp, use_i18n, use_refresh, use_services, Empty, ErrorNotice,
    StatusBadge,
};
use burncloud_service_api::{Currency, EndReason, LogEntry, LogQuery, StatusFilter, UsageSource};
use dioxus::prelude::*;

const PAGE: u32 = 50;

fn end_reason_key(reason: EndReason) -> &'static str {
    match reason {
        EndReason::Completed => "end.completed",
        EndReason::ClientCancelled => "end.client_cancelled",
        EndReason::UpstreamError => "end.upstream_error",
        EndReason::UpstreamCut => "end.upstream_cut",
        EndReason::Rejected => "end.rejected",
    }
}

#[component]
pub fn Logs() -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let mut model = use_signal(String::new);
    let mut request_id = use_signal(String::new);
    let mut token_id = use_signal(|| None::<i64>);
    let mut channel_id = use_signal(|| None::<i64>);
    let mut status = use_signal(String::new);
    let mut range_hours = use_signal(|| 0i64);
    // Pages already seen: the `before_id` of each, so "Older" and "Newest" can move.
    let mut pages = use_signal(Vec::<i64>::new);
    let mut selected = use_signal(|| None::<LogEntry>);

    let lists_services = services.clone();
    let choices = use_resource(move || {
        let services = lists_services.clone();
        async move {
            let tokens = services.tokens.list_tokens().unwrap_or_default();
            let channels = services.channels.list_channels().unwrap_or_default();
            let currency = services.account.account().map(|a| a.currency).unwrap_or(Currency::Usd);
            (tokens, channels, currency)
        }
    });
    // What the filter row asks for, without paging; unset fields are `None`.
    let filters = move || LogQuery {
        model: Some(model()).filter(|m| !m.trim().is_empty()),
        token_id: token_id(),
        channel_id: channel_id(),
        status: StatusFilter::parse(&status()).ok(),
        since_ms: (range_hours() > 0).then(|| now_ms() - range_hours() * 3_600_000),
        request_id: Some(request_id().trim().to_string()).filter(|id| !id.is_empty()),
        ..LogQuery::default()
    };
    let page = use_resource(move || {
        let services = services.clone();
        let query = LogQuery { limit: Some(PAGE), before_id: pages.read().last().copied(), ..filters() };
        // Only the newest page follows new calls live; older pages hold still while you read.
        if pages.read().is_empty() {
            refresh.track();
        }
        async move { services.logs.query_logs(&query) }
    });
    let (tokens, channels, currency) = choices.read().clone().unwrap_or((Vec::new(), Vec::new(), Currency::Usd));

    rsx! {
        div { class: "page-head",
            div {
                h1 { class: "page-title", {i18n.t("logs.title")} }
                div { class: "page-sub", {i18n.t("logs.subtitle")} }
            }
        }
        div { class: "card",
            div { class: "row",
                input { placeholder: i18n.t("logs.filter_model"), value: "{model}", "aria-label": i18n.t("logs.model"),
                    oninput: move |e| { model.set(e.value()); pages.set(Vec::new()); } }
                input { placeholder: i18n.t("logs.request_id"), value: "{request_id}",
                    "aria-label": i18n.t("logs.request_id"),
                    oninput: move |e| { request_id.set(e.value()); pages.set(Vec::new()); } }
                select { "aria-label": i18n.t("logs.token"),
                    onchange: move |e| { token_id.set(e.value().parse().ok()); pages.set(Vec::new()); },
                    option { value: "", "{i18n.t(\"logs.token\")}: {i18n.t(\"common.all\")}" }
                    for token in tokens.iter() {
                        option { key: "{token.id}", value: "{token.id}", "{token.name}" }
                    }
                }
                select { "aria-label": i18n.t("logs.channel"),
                    onchange: move |e| { channel_id.set(e.value().parse().ok()); pages.set(Vec::new()); },
                    option { value: "", "{i18n.t(\"logs.channel\")}: {i18n.t(\"common.all\")}" }
                    for channel in channels.iter() {
                        option { key: "{channel.id}", value: "{channel.id}", "{channel.name}" }
                    }
                }
                select { "aria-label": i18n.t("logs.status"),
                    onchange: move |e| { status.set(e.value()); pages.set(Vec::new()); },
                    option { value: "", "{i18n.t(\"logs.status\")}: {i18n.t(\"common.all\")}" }
                    option { value: "ok", {i18n.t("logs.status_ok")} }
                    option { value: "error", {i18n.t("logs.status_error")} }
                }
                select { "aria-label": i18n.t("logs.range"),
                    onchange: move |e| { range_hours.set(e.value().parse().unwrap_or(0)); pages.set(Vec::new()); },
                    option { value: "0", {i18n.t("logs.range_all")} }
                    option { value: "1", {i18n.t("logs.range_1h")} }
                    option { value: "24", {i18n.t("logs.range_24h")} }
                    option { value: "168", {i18n.t("logs.range_7d")} }
                }
            }
        }
        if let Some(entry) = selected() {
            LogDetail { entry, currency, on_close: move |_| selected.set(None) }
        }
        div { class: "card",
            match &*page.read() {
                None => rsx! { p { class: "muted", {i18n.t("common.loading")} } },
                Some(Err(error)) => rsx! { ErrorNotice { message: error.to_string() } },
                Some(Ok(result)) if result.items.is_empty() => {
                    let (title, hint) = if filters() != LogQuery::default() {
                        ("logs.empty", "logs.empty_filtered_hint")
                    } else {
                        ("dash.no_calls", "dash.no_calls_hint")
                    };
                    rsx! { Empty { title: i18n.t(title).to_string(), hint: i18n.t(hint).to_string() } }
                }
                Some(Ok(result)) => {
                    let next = result.next_before_id;
                    rsx! {
                        table { id: "log-table",
                            thead { tr {
                                th { {i18n.t("logs.time")} }
                                th { {i18n.t("logs.model")} }
                                th { {i18n.t("logs.token")} }
                                th { {i18n.t("logs.channel")} }
                                th { {i18n.t("logs.status")} }
                                th { class: "num", {i18n.t("logs.tokens")} }
                                th { class: "num", {i18n.t("logs.cost")} }
                                th { class: "num", {i18n.t("logs.latency")} }
                            } }
                            tbody {
                                for entry in result.items.iter().cloned() {
                                    tr { key: "{entry.id}",
                                        class: if selected.read().as_ref().is_some_and(|s| s.id == entry.id) { "clickable selected" } else { "clickable" },
                                        onclick: { let entry = entry.clone(); move |_| selected.set(Some(entry.clone())) },
                                        td { class: "mono", {timestamp(entry.created_at_ms)} }
                                        td { "{entry.model}" }
                                        td { {entry.token_name.clone().unwrap_or_default()} }
                                        td { {entry.channel_name.clone().unwrap_or_default()} }
                                        td { StatusBadge { status: entry.status } }
                                        td { class: "num",
                                            "{count(entry.prompt_tokens)} / {count(entry.completion_tokens)}"
                                            if entry.cached_tokens > 0 {
                                                span { class: "muted", title: i18n.t("logs.cached"), " ({count(entry.cached_tokens)} ⚡)" }
                                            }
                                        }
                                        td { class: "num", {call_cost(currency, entry.cost)} }
                                        td { class: "num", {millis(entry.latency_ms)} }
                                    }
                                }
                            }
                        }
                        div { class: "row", style: "margin-top: 12px",
                            button { class: "btn", disabled: pages.read().is_empty(), onclick: move |_| pages.set(Vec::new()),
                                {i18n.t("logs.newest")} }
                            div { class: "spacer" }
                            button { class: "btn", disabled: next.is_none(),
                                onclick: move |_| if let Some(next) = next { pages.write().push(next) },
                                {i18n.t("logs.older")} }
                        }
                    }
                }
            }
        }
    }
}

#[component]
fn LogDetail(entry: LogEntry, currency: Currency, on_close: EventHandler<()>) -> Element {
    let i18n = use_i18n();
    let yes_no = |value: bool| if value { i18n.t("logs.yes") } else { i18n.t("logs.no") };
    let usage_from = match entry.usage_source {
        UsageSource::Upstream => i18n.t("logs.usage_upstream"),
        UsageSource::Estimated => i18n.t("logs.usage_estimated"),
    };
    rsx! {
        div { class: "card", id: "log-detail",
            div { class: "row",
                h3 { class: "card-title", {i18n.t("logs.detail")} }
                div { class: "spacer" }
                button { class: "btn small", onclick: move |_| on_close.call(()), {i18n.t("common.close")} }
            }
            dl { class: "detail",
                dt { {i18n.t("logs.request_id")} } dd { class: "mono", "{entry.request_id}" }
                dt { {i18n.t("logs.time")} } dd { {timestamp(entry.created_at_ms)} }
                dt { {i18n.t("logs.endpoint")} } dd { class: "mono", "{entry.endpoint}" }
                dt { {i18n.t("logs.model")} } dd { "{entry.model}" }
                dt { {i18n.t("logs.upstream_model")} } dd { {entry.upstream_model.clone().unwrap_or_default()} }
                dt { {i18n.t("logs.token")} } dd { {entry.token_name.clone().unwrap_or_default()} }
                dt { {i18n.t("logs.channel")} } dd { {entry.channel_name.clone().unwrap_or_default()} }
                dt { {i18n.t("logs.status")} } dd { StatusBadge { status: entry.status } }
                dt { {i18n.t("logs.end_reason")} } dd { {i18n.t(end_reason_key(entry.end_reason))} }
                dt { {i18n.t("logs.stream")} } dd { {yes_no(entry.is_stream)} }
                dt { {i18n.t("logs.tokens")} } dd { "{count(entry.prompt_tokens)} / {count(entry.completion_tokens)}" }
                dt { {i18n.t("logs.cached")} } dd { "{count(entry.cached_tokens)} / {count(entry.cache_write_tokens)}" }
                if entry.reasoning_tokens > 0 {
                    dt { {i18n.t("logs.reasoning")} } dd { "{count(entry.reasoning_tokens)}" }
                }
                if entry.images > 0 {
                    dt { {i18n.t("logs.images")} } dd { "{count(entry.images)}" }
                }
                if entry.audio_ms > 0 {
                    dt { {i18n.t("logs.audio")} } dd { {millis(entry.audio_ms)} }
                }
                if entry.characters > 0 {
                    dt { {i18n.t("logs.characters")} } dd { "{count(entry.characters)}" }
                }
                dt { {i18n.t("logs.usage_source")} } dd { "{usage_from}" }
                dt { {i18n.t("logs.cost")} } dd {
                    {money_exact(currency, entry.cost)}
                    if !entry.priced { span { class: "muted", " — {i18n.t(\"logs.unpriced\")}" } }
                }
                dt { {i18n.t("logs.latency")} } dd { {millis(entry.latency_ms)} }
                dt { {i18n.t("logs.first_token")} } dd { {entry.first_token_ms.map(millis).unwrap_or_else(|| "—".into())} }
                dt { {i18n.t("logs.attempts")} } dd { "{entry.attempts}" }
                if let Some(error) = entry.error.clone() {
                    dt { {i18n.t("logs.error")} } dd { class: "mono", "{error}" }
                }
            }
        }
    }
}
