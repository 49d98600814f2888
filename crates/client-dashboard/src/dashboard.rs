//! The dashboard: balance and spend; requests, tokens and cost for today, 7 and 30 days; usage by
//! day and by model; recent calls — refreshed live.

use burncloud_client::{
    call_cost, count, day, money, now_ms, timestamp, use_i18n, use_refresh, use_services, Empty, ErrorNotice, Services,
    StatusBadge,
};
use burncloud_service_api::{
    Account, LogEntry, LogQuery, ServiceResult, UsageGroupBy, UsageQuery, UsageRow, UsageTotals,
};
use dioxus::prelude::*;

use crate::chart::{Bar, BarChart, RankBars};

const DAY_MS: i64 = 86_400_000;
const CHART_DAYS: i64 = 30;

/// Everything the dashboard shows, read in one go.
#[derive(Clone, PartialEq)]
struct Overview {
    account: Account,
    today: UsageTotals,
    week: UsageTotals,
    month: UsageTotals,
    by_day: Vec<UsageRow>,
    by_model: Vec<UsageRow>,
    recent: Vec<LogEntry>,
    now_ms: i64,
}

fn load(services: &Services) -> ServiceResult<Overview> {
    let now_ms = now_ms();
    let midnight = now_ms - now_ms.rem_euclid(DAY_MS);
    let totals = |since_ms: i64| {
        services
            .logs
            .usage(&UsageQuery { since_ms: Some(since_ms), until_ms: None, group_by: UsageGroupBy::Model })
            .map(|r| r.totals)
    };
    let month_start = midnight - (CHART_DAYS - 1) * DAY_MS;
    let by = |group_by| services.logs.usage(&UsageQuery { since_ms: Some(month_start), until_ms: None, group_by });
    Ok(Overview {
        account: services.account.account()?,
        today: totals(midnight)?,
        week: totals(midnight - 6 * DAY_MS)?,
        month: totals(month_start)?,
        by_day: by(UsageGroupBy::Day)?.rows,
        by_model: by(UsageGroupBy::Model)?.rows,
        recent: services.logs.query_logs(&LogQuery { limit: Some(10), ..LogQuery::default() })?.items,
        now_ms,
    })
}

#[component]
pub fn Dashboard() -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let overview = use_resource(move || {
        let services = services.clone();
        refresh.track();
        async move { load(&services) }
    });
    let body = match &*overview.read() {
        None => rsx! { p { class: "muted", {i18n.t("common.loading")} } },
        Some(Err(error)) => rsx! { ErrorNotice { message: error.to_string() } },
        Some(Ok(data)) => rsx! { OverviewView { data: data.clone() } },
    };
    rsx! {
        div { class: "page-head",
            div {
                h1 { class: "page-title", {i18n.t("dash.title")} }
                div { class: "page-sub", {i18n.t("dash.subtitle")} }
            }
        }
        {body}
    }
}

#[component]
fn OverviewView(data: Overview) -> Element {
    let i18n = use_i18n();
    let currency = data.account.currency;
    let balance = match data.account.balance {
        Some(balance) => money(currency, balance),
        None => i18n.t("common.unlimited").to_string(),
    };
    let period = |title: &'static str, totals: &UsageTotals| {
        let tokens = totals.prompt_tokens + totals.completion_tokens;
        rsx! {
            div { class: "card",
                h3 { class: "card-title", {i18n.t(title)} }
                div { class: "stat", {money(currency, totals.cost)} }
                div { class: "stat-sub", "{count(totals.requests)} {i18n.t(\"dash.requests\")} · {count(tokens)} {i18n.t(\"dash.tokens\")}" }
                if totals.prompt_tokens > 0 {
                    div { class: "stat-sub cache-rate", "{cache_hit_rate(totals)} {i18n.t(\"dash.cache_hits\")}" }
                }
            }
        }
    };
    let bars: Vec<Bar> = (0..CHART_DAYS)
        .rev()
        .map(|back| {
            let key = day(data.now_ms - back * DAY_MS);
            let requests = data.by_day.iter().find(|r| r.key == key).map_or(0, |r| r.totals.requests);
            Bar { label: key[5..].to_string(), value: requests as f64, tooltip: format!("{key}: {requests}") }
        })
        .collect();
    let mut models: Vec<(String, f64, String)> =
        data.by_model.iter().map(|r| (r.key.clone(), r.totals.cost.0 as f64, money(currency, r.totals.cost))).collect();
    models.sort_by(|a, b| b.1.total_cmp(&a.1));
    models.truncate(8);
    rsx! {
        div { class: "grid grid-4",
            div { class: "card",
                h3 { class: "card-title", {i18n.t("dash.balance")} }
                div { class: "stat", id: "balance", "{balance}" }
                div { class: "stat-sub", "{i18n.t(\"dash.spent\")}: {money(currency, data.account.used)}" }
            }
            {period("dash.today", &data.today)}
            {period("dash.7d", &data.week)}
            {period("dash.30d", &data.month)}
        }
        div { class: "grid grid-2", style: "margin-top: 16px",
            div { class: "card",
                h3 { class: "card-title", {i18n.t("dash.by_day")} }
                BarChart { bars, label: i18n.t("dash.by_day").to_string() }
            }
            div { class: "card",
                h3 { class: "card-title", {i18n.t("dash.by_model")} }
                RankBars { rows: models }
            }
        }
        div { class: "card",
            h3 { class: "card-title", {i18n.t("dash.recent")} }
            if data.recent.is_empty() {
                Empty { title: i18n.t("dash.no_calls").to_string(), hint: i18n.t("dash.no_calls_hint").to_string() }
            } else {
                RecentCalls { calls: data.recent.clone(), currency }
            }
        }
    }
}

#[component]
fn RecentCalls(calls: Vec<LogEntry>, currency: burncloud_service_api::Currency) -> Element {
    let i18n = use_i18n();
    rsx! {
        table { id: "recent-calls",
            thead { tr {
                th { {i18n.t("logs.time")} }
                th { {i18n.t("logs.model")} }
                th { {i18n.t("logs.token")} }
                th { {i18n.t("logs.status")} }
                th { class: "num", {i18n.t("logs.tokens")} }
                th { class: "num", {i18n.t("logs.cost")} }
            } }
            tbody {
                for call in calls {
                    tr { key: "{call.id}",
                        td { class: "mono", {timestamp(call.created_at_ms)} }
                        td { "{call.model}" }
                        td { {call.token_name.clone().unwrap_or_default()} }
                        td { StatusBadge { status: call.status } }
                        td { class: "num", "{count(call.prompt_tokens)} / {count(call.completion_tokens)}" }
                        td { class: "num", {call_cost(currency, call.cost)} }
                    }
                }
            }
        }
    }
}

/// The share of prompt tokens served from a provider's prompt cache, as a whole percent.
fn cache_hit_rate(totals: &UsageTotals) -> String {
    let rate = totals.cached_tokens as f64 * 100.0 / totals.prompt_tokens.max(1) as f64;
    format!("{rate:.0}%")
}
