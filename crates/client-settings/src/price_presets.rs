//! Published prices: each provider's prices for its models, in the account's currency, with the
//! page they were read from and the day they were checked, used one model or one provider at a time.

use burncloud_client::forms::{Feedback, FeedbackLine};
use burncloud_client::{use_i18n, use_refresh, use_services, ErrorNotice, I18n};
use burncloud_service_api::{Channel, Currency, Money, PeakHours, PresetSelection, Price, PricePreset, PriceTier};
use dioxus::prelude::*;

#[component]
pub fn PublishedPrices() -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let mut provider = use_signal(|| "DeepSeek".to_string());
    let mut feedback = use_signal(|| Feedback::Idle);
    let read_services = services.clone();
    let catalog = use_resource(move || {
        let services = read_services.clone();
        refresh.track();
        async move {
            let currency = services.account.account()?.currency;
            Ok::<_, burncloud_service_api::ServiceError>((
                currency,
                services.prices.price_presets()?,
                services.prices.list_prices()?,
                services.channels.list_channels()?,
            ))
        }
    });
    let apply_services = services.clone();
    let apply = move |models: Vec<String>| {
        let count = models.len();
        match apply_services.prices.apply_price_presets(PresetSelection { models }) {
            Ok(_) => {
                feedback.set(Feedback::Done(format!("{} {count}", i18n.t("presets.applied"))));
                refresh.bump();
            }
            Err(error) => feedback.set(Feedback::Failed(error.to_string())),
        }
    };
    let read = catalog.read();
    let (currency, presets, prices, channels) = match &*read {
        None => return rsx! { div { class: "card", p { class: "muted", {i18n.t("common.loading")} } } },
        Some(Err(error)) => return rsx! { div { class: "card", ErrorNotice { message: error.to_string() } } },
        Some(Ok(loaded)) => loaded,
    };
    let mut providers: Vec<&str> = Vec::new();
    for preset in presets {
        if !providers.contains(&preset.provider.as_str()) {
            providers.push(&preset.provider);
        }
    }
    let chosen = provider();
    let shown: Vec<PricePreset> =
        presets.iter().filter(|p| p.provider == chosen && p.currency == *currency).cloned().collect();
    let elsewhere =
        presets.iter().find(|p| p.provider == chosen && p.currency != *currency).map(|p| p.currency.as_str());
    let all_shown: Vec<String> = shown.iter().map(|p| p.model.clone()).collect();
    // DeepSeek and Qwen publish no write price (writes cost input there): no empty column for them.
    let any_cache_write = shown.iter().any(|p| p.price.cache_write_per_mtok.is_some());
    let mut apply_all = apply.clone();
    let unpriced = served_without_price(channels, prices, presets, *currency);
    let unpriced_list = unpriced.join(", ");
    let mut apply_unpriced = apply.clone();
    rsx! {
        div { class: "card", id: "price-presets",
            div { class: "row",
                h2 { {i18n.t("presets.title")} }
                select { name: "preset-provider", onchange: move |e| provider.set(e.value()),
                    for name in providers.iter().map(|name| name.to_string()) {
                        option { value: "{name}", selected: name == provider(), "{name}" }
                    }
                }
                if !shown.is_empty() {
                    button { class: "btn", id: "use-all-presets", onclick: move |_| apply_all(all_shown.clone()),
                        "{i18n.t(\"presets.use_all\")} {provider}" }
                }
            }
            p { class: "muted", {i18n.t("presets.hint")} }
            FeedbackLine { feedback: feedback() }
            if !unpriced.is_empty() {
                div { class: "row", id: "served-unpriced",
                    p { "{i18n.t(\"presets.served\")} " span { class: "mono", "{unpriced_list}" } }
                    button { class: "btn primary", id: "use-served-presets", onclick: move |_| apply_unpriced(unpriced.clone()),
                        {i18n.t("presets.use_served")} }
                }
            }
            if shown.is_empty() {
                p { class: "muted", id: "presets-elsewhere",
                    "{i18n.t(\"presets.other_currency\")} {elsewhere.unwrap_or(\"—\")}" }
            } else {
                table { id: "preset-table",
                    thead { tr {
                        th { {i18n.t("prices.model")} }
                        th { class: "num", {i18n.t("prices.input")} }
                        th { class: "num", {i18n.t("prices.output")} }
                        th { class: "num", {i18n.t("prices.cache_read_column")} }
                        if any_cache_write {
                            th { class: "num", {i18n.t("prices.cache_write_column")} }
                        }
                        th { {i18n.t("prices.schedule")} }
                        th { {i18n.t("presets.checked")} }
                        th { {i18n.t("common.actions")} }
                    } }
                    tbody {
                        for preset in shown {
                            tr { key: "{preset.model}",
                                td { class: "mono", title: preset.note.clone().unwrap_or_default(), "{preset.model}" }
                                td { class: "num", "{preset.price.input_per_mtok}" }
                                td { class: "num", "{preset.price.output_per_mtok}" }
                                td { class: "num", {shown_or_dash(preset.price.cache_read_per_mtok)} }
                                if any_cache_write {
                                    td { class: "num", {shown_or_dash(preset.price.cache_write_per_mtok)} }
                                }
                                td { class: "schedule", {schedule_summary(&preset.price.tiers, preset.price.peak.as_ref(), &i18n)} }
                                td { class: "checked", a { href: "{preset.source}", target: "_blank", "{preset.checked}" } }
                                td { class: "actions",
                                    if in_use(&preset, prices) {
                                        span { class: "badge", {i18n.t("presets.in_use")} }
                                    } else {
                                        button { class: "btn small", onclick: { let mut apply = apply.clone(); let model = preset.model.clone(); move |_| apply(vec![model.clone()]) },
                                            {i18n.t("presets.use")} }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Models an enabled channel serves under their own name that have no price yet but a published
/// one in `currency`: the calls a new user would otherwise see logged as unpriced. A name mapped to
/// another upstream model is left out: the provider's price for that name would be the wrong one.
fn served_without_price(
    channels: &[Channel],
    prices: &[Price],
    presets: &[PricePreset],
    currency: Currency,
) -> Vec<String> {
    let mut models: Vec<String> = channels
        .iter()
        .filter(|channel| channel.enabled)
        .flat_map(|channel| channel.models.iter().filter(|model| !channel.model_mapping.contains_key(*model)))
        .filter(|model| !prices.iter().any(|price| &price.model == *model))
        .filter(|model| presets.iter().any(|preset| &preset.model == *model && preset.currency == currency))
        .cloned()
        .collect();
    models.sort();
    models.dedup();
    models
}

/// Whether the model's price is already exactly the published one.
fn in_use(preset: &PricePreset, prices: &[Price]) -> bool {
    prices.iter().any(|price| *price == preset.price.clone().priced(&preset.model))
}

fn shown_or_dash(price: Option<Money>) -> String {
    price.map_or_else(|| "—".to_string(), |price| price.to_string())
}

/// A price's tiers and peak hours in a line: `> 100000 prompt tokens: 0.5 / 2.5` or
/// `peak 01:00-04:00, 06:00-10:00 UTC Mon–Fri: 0.3 / 1.2`; empty for a flat price.
pub(crate) fn schedule_summary(tiers: &[PriceTier], peak: Option<&PeakHours>, i18n: &I18n) -> String {
    let tiers = tiers.iter().map(|tier| {
        format!(
            "> {} {}: {} / {}",
            tier.above_prompt_tokens,
            i18n.t("prices.prompt_tokens"),
            tier.rates.input_per_mtok,
            tier.rates.output_per_mtok
        )
    });
    let peak = peak.map(|peak| {
        let days = if peak.weekdays_only { i18n.t("prices.weekdays") } else { i18n.t("prices.every_day") };
        format!(
            "{} {} UTC {days}: {} / {}",
            i18n.t("prices.peak"),
            peak.windows_utc.iter().map(|window| window.to_string()).collect::<Vec<_>>().join(", "),
            peak.rates.input_per_mtok,
            peak.rates.output_per_mtok
        )
    });
    tiers.chain(peak).collect::<Vec<_>>().join(" · ")
}
