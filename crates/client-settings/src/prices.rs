//! Prices: what a million input, output and prompt-cache tokens cost, per model, and what an
//! image, a second of audio and a million characters spoken cost where a model is billed by them.

use burncloud_client::{use_i18n, use_refresh, use_services, Empty, ErrorNotice};
use burncloud_service_api::{Money, PeakHours, PriceInput, PriceTier};
use dioxus::prelude::*;

use crate::price_presets::{schedule_summary, PublishedPrices};
use burncloud_client::forms::{settle, Feedback, FeedbackLine};

#[component]
pub fn Prices() -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let mut model = use_signal(String::new);
    let mut input = use_signal(String::new);
    let mut output = use_signal(String::new);
    let mut cache_read = use_signal(String::new);
    let mut cache_write = use_signal(String::new);
    let mut cache_write_1h = use_signal(String::new);
    let mut per_image = use_signal(String::new);
    let mut per_audio_second = use_signal(String::new);
    let mut per_million_characters = use_signal(String::new);
    // The tiers and peak hours of the price being edited: the form does not edit them, and
    // saving its rates keeps them.
    let mut schedule = use_signal(|| (Vec::<PriceTier>::new(), None::<PeakHours>));
    let mut feedback = use_signal(|| Feedback::Idle);
    let list_services = services.clone();
    let prices = use_resource(move || {
        let services = list_services.clone();
        refresh.track();
        async move { services.prices.list_prices() }
    });
    let save_services = services.clone();
    let save = move |_| {
        let optional = [cache_read, cache_write, cache_write_1h, per_image, per_audio_second, per_million_characters]
            .map(|field| field());
        let result = price_input(&input(), &output(), optional.each_ref().map(String::as_str))
            .map(|price| {
                let (tiers, peak) = schedule();
                PriceInput { tiers, peak, ..price }
            })
            .map_err(|e| e.to_string())
            .and_then(|price| save_services.prices.set_price(&model(), price).map_err(|e| e.to_string()));
        match result {
            Ok(_) => {
                feedback.set(Feedback::Done(i18n.t("common.saved").to_string()));
                model.set(String::new());
                schedule.set((Vec::new(), None));
                let fields = [
                    input,
                    output,
                    cache_read,
                    cache_write,
                    cache_write_1h,
                    per_image,
                    per_audio_second,
                    per_million_characters,
                ];
                for mut field in fields {
                    field.set(String::new());
                }
                refresh.bump();
            }
            Err(message) => feedback.set(Feedback::Failed(message)),
        }
    };
    let delete_services = services.clone();
    let kept_schedule = {
        let (tiers, peak) = &*schedule.read();
        schedule_summary(tiers, peak.as_ref(), &i18n)
    };
    rsx! {
        div { class: "page-head",
            div {
                h1 { class: "page-title", {i18n.t("prices.title")} }
                div { class: "page-sub", {i18n.t("prices.subtitle")} }
            }
        }
        FeedbackLine { feedback: feedback() }
        div { class: "card", id: "price-form",
            div { class: "row",
                input { name: "model", placeholder: i18n.t("prices.model"), value: "{model}", oninput: move |e| model.set(e.value()) }
                input { name: "input", placeholder: i18n.t("prices.input"), value: "{input}", oninput: move |e| input.set(e.value()) }
                input { name: "output", placeholder: i18n.t("prices.output"), value: "{output}", oninput: move |e| output.set(e.value()) }
                input { name: "cache_read", placeholder: i18n.t("prices.cache_read"), value: "{cache_read}", oninput: move |e| cache_read.set(e.value()) }
                input { name: "cache_write", placeholder: i18n.t("prices.cache_write"), value: "{cache_write}", oninput: move |e| cache_write.set(e.value()) }
                input { name: "cache_write_1h", placeholder: i18n.t("prices.cache_write_1h"), value: "{cache_write_1h}", oninput: move |e| cache_write_1h.set(e.value()) }
            }
            div { class: "row",
                input { name: "per_image", placeholder: i18n.t("prices.per_image"), value: "{per_image}", oninput: move |e| per_image.set(e.value()) }
                input { name: "per_audio_second", placeholder: i18n.t("prices.per_audio_second"), value: "{per_audio_second}", oninput: move |e| per_audio_second.set(e.value()) }
                input { name: "per_million_characters", placeholder: i18n.t("prices.per_million_characters"), value: "{per_million_characters}", oninput: move |e| per_million_characters.set(e.value()) }
                button { class: "btn primary", id: "save-price", onclick: save, {i18n.t("prices.set")} }
            }
            if !kept_schedule.is_empty() {
                p { class: "muted", id: "kept-schedule", "{i18n.t(\"prices.keeps_schedule\")} {kept_schedule}" }
            }
        }
        div { class: "card",
            match &*prices.read() {
                None => rsx! { p { class: "muted", {i18n.t("common.loading")} } },
                Some(Err(error)) => rsx! { ErrorNotice { message: error.to_string() } },
                Some(Ok(list)) if list.is_empty() => rsx! {
                    Empty { title: i18n.t("prices.empty").to_string(), hint: i18n.t("prices.empty_hint").to_string() }
                },
                Some(Ok(list)) => {
                    // Columns no price uses stay out, so the table fits beside the sidebar.
                    let any_units = list.iter().any(|p| p.per_image.is_some() || p.per_audio_second.is_some() || p.per_million_characters.is_some());
                    let any_schedule = list.iter().any(|p| !p.tiers.is_empty() || p.peak.is_some());
                    rsx! {
                        table { id: "price-table",
                            thead { tr {
                                th { {i18n.t("prices.model")} }
                                th { class: "num", {i18n.t("prices.input")} }
                                th { class: "num", {i18n.t("prices.output")} }
                                th { class: "num", {i18n.t("prices.cache_read_column")} }
                                th { class: "num", {i18n.t("prices.cache_write_column")} }
                                if any_units {
                                    th { {i18n.t("prices.units")} }
                                }
                                if any_schedule {
                                    th { {i18n.t("prices.schedule")} }
                                }
                                th { {i18n.t("common.actions")} }
                            } }
                            tbody {
                                for price in list.iter().cloned() {
                                    tr { key: "{price.model}",
                                        td { class: "mono", "{price.model}" }
                                        td { class: "num", "{price.input_per_mtok}" }
                                        td { class: "num", "{price.output_per_mtok}" }
                                        td { class: "num", {price_or(price.cache_read_per_mtok, i18n.t("prices.as_input"))} }
                                        td { class: "num", {price_or(price.cache_write_per_mtok, i18n.t("prices.as_input"))} }
                                        if any_units {
                                            td { class: "units", {unit_prices(&price, [i18n.t("prices.unit_image"), i18n.t("prices.unit_second"), i18n.t("prices.unit_mchars")])} }
                                        }
                                        if any_schedule {
                                            td { class: "schedule", {schedule_summary(&price.tiers, price.peak.as_ref(), &i18n)} }
                                        }
                                        td { class: "actions",
                                            button { class: "btn small", onclick: { let p = price.clone(); move |_| {
                                                model.set(p.model.clone()); input.set(p.input_per_mtok.to_string()); output.set(p.output_per_mtok.to_string());
                                                let shown = |price: Option<Money>| price.map(|m| m.to_string()).unwrap_or_default();
                                                cache_read.set(shown(p.cache_read_per_mtok));
                                                cache_write.set(shown(p.cache_write_per_mtok));
                                                cache_write_1h.set(shown(p.cache_write_1h_per_mtok));
                                                per_image.set(shown(p.per_image));
                                                per_audio_second.set(shown(p.per_audio_second));
                                                per_million_characters.set(shown(p.per_million_characters));
                                                schedule.set((p.tiers.clone(), p.peak.clone()));
                                            } }, {i18n.t("common.edit")} }
                                            button { class: "btn small danger", onclick: { let services = delete_services.clone(); let name = price.model.clone(); move |_| {
                                                settle(feedback, refresh, services.prices.delete_price(&name), None);
                                            } }, {i18n.t("common.delete")} }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        PublishedPrices {}
    }
}

/// The form's fields as a price: input and output are required; a blank cache or unit price
/// (cache read, write, 1-hour write, image, audio second, million characters) is unset.
fn price_input(
    input: &str,
    output: &str,
    optional: [&str; 6],
) -> Result<PriceInput, burncloud_service_api::MoneyParseError> {
    let parsed = |text: &str| if text.trim().is_empty() { Ok(None) } else { Money::parse(text).map(Some) };
    Ok(PriceInput {
        input_per_mtok: Money::parse(input)?,
        output_per_mtok: Money::parse(output)?,
        cache_read_per_mtok: parsed(optional[0])?,
        cache_write_per_mtok: parsed(optional[1])?,
        cache_write_1h_per_mtok: parsed(optional[2])?,
        per_image: parsed(optional[3])?,
        per_audio_second: parsed(optional[4])?,
        per_million_characters: parsed(optional[5])?,
        tiers: Vec::new(),
        peak: None,
    })
}

/// The unit prices that are set, as `0.04 / image · 0.0001 / s`; empty where none is.
fn unit_prices(price: &burncloud_service_api::Price, units: [&str; 3]) -> String {
    [price.per_image, price.per_audio_second, price.per_million_characters]
        .into_iter()
        .zip(units)
        .filter_map(|(rate, unit)| Some(format!("{} / {unit}", rate?)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// A cache price as shown in the list: the amount, or what an unset one means.
fn price_or(price: Option<Money>, unset: &str) -> String {
    price.map_or_else(|| unset.to_string(), |price| price.to_string())
}
