//! Tokens: the keys apps use — create (key shown once, with copy), limits, enable, delete.

use burncloud_client::{money, now_ms, timestamp, use_i18n, use_refresh, use_services, Empty, ErrorNotice};
use burncloud_service_api::{Currency, Money, TokenInput, TokenPatch};
use dioxus::prelude::*;

use burncloud_client::forms::{
    confirmed, copy_to_clipboard, parse_list, parse_optional_int, save_and_close, settle, Feedback, FeedbackLine,
};

#[derive(Clone, Debug, Default, PartialEq)]
struct Draft {
    name: String,
    group: String,
    quota: String,
    rpm: String,
    tpm: String,
    expires_days: String,
    models: String,
}

fn to_input(draft: &Draft) -> Result<TokenInput, String> {
    let quota = draft.quota.trim();
    let quota_limit = if quota.is_empty() { None } else { Some(Money::parse(quota).map_err(|e| e.to_string())?) };
    let days = parse_optional_int(&draft.expires_days, "expires")?;
    Ok(TokenInput {
        name: draft.name.clone(),
        group: Some(draft.group.trim().to_string()).filter(|g| !g.is_empty()).unwrap_or_else(|| "default".into()),
        quota_limit,
        rpm_limit: parse_optional_int(&draft.rpm, "rpm")?,
        tpm_limit: parse_optional_int(&draft.tpm, "tpm")?,
        expires_at_ms: days.map(|days| now_ms() + days * 86_400_000),
        models: parse_list(&draft.models),
        enabled: true,
    })
}

#[component]
pub fn Tokens() -> Element {
    let i18n = use_i18n();
    let mut draft = use_signal(|| None::<Draft>);
    let mut feedback = use_signal(|| Feedback::Idle);
    let mut new_key = use_signal(|| None::<String>);
    let mut copied = use_signal(|| false);
    rsx! {
        div { class: "page-head",
            div {
                h1 { class: "page-title", {i18n.t("tokens.title")} }
                div { class: "page-sub", {i18n.t("tokens.subtitle")} }
            }
            button { class: "btn primary", id: "add-token",
                onclick: move |_| { feedback.set(Feedback::Idle); draft.set(Some(Draft { group: "default".into(), ..Draft::default() })) },
                {i18n.t("tokens.add")} }
        }
        FeedbackLine { feedback: feedback() }
        if let Some(key) = new_key() {
            div { class: "card", id: "new-key",
                h3 { class: "card-title", {i18n.t("tokens.created")} }
                div { class: "row",
                    div { class: "key-box spacer", "{key}" }
                    button { class: "btn primary", onclick: move |_| { copy_to_clipboard(&key); copied.set(true) },
                        if copied() { {i18n.t("common.copied")} } else { {i18n.t("common.copy")} } }
                    button { class: "btn", onclick: move |_| new_key.set(None), {i18n.t("common.close")} }
                }
            }
        }
        if draft().is_some() {
            TokenForm { draft, feedback, new_key, copied }
        }
        TokenTable { feedback }
    }
}

/// The new token form; creating closes it and shows the key once, above.
#[component]
fn TokenForm(
    draft: Signal<Option<Draft>>,
    feedback: Signal<Feedback>,
    new_key: Signal<Option<String>>,
    copied: Signal<bool>,
) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let Some(form) = draft() else { return rsx! {} };
    let create_services = services.clone();
    let create = move |_| {
        let Some(form) = draft() else { return };
        let created =
            to_input(&form).and_then(|input| create_services.tokens.create_token(input).map_err(|e| e.to_string()));
        if let Ok(created) = &created {
            new_key.set(Some(created.key.clone()));
            copied.set(false);
        }
        save_and_close(draft, feedback, refresh, created.map(|_| ()), None);
    };
    rsx! {
        div { class: "card", id: "token-form",
            h3 { class: "card-title", {i18n.t("tokens.add")} }
            div { class: "form",
                label { {i18n.t("common.name")} }
                input { name: "name", value: "{form.name}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.name = e.value() } }
                label { {i18n.t("tokens.group")} }
                input { name: "group", value: "{form.group}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.group = e.value() } }
                label { {i18n.t("tokens.quota")} }
                div {
                    input { name: "quota", value: "{form.quota}", placeholder: "10", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.quota = e.value() } }
                    div { class: "hint", {i18n.t("tokens.limit_hint")} }
                }
                label { {i18n.t("tokens.rpm")} }
                input { name: "rpm", r#type: "number", value: "{form.rpm}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.rpm = e.value() } }
                label { {i18n.t("tokens.tpm")} }
                input { name: "tpm", r#type: "number", value: "{form.tpm}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.tpm = e.value() } }
                label { {i18n.t("tokens.expires_days")} }
                input { name: "expires_days", r#type: "number", value: "{form.expires_days}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.expires_days = e.value() } }
                label { {i18n.t("tokens.models_allowed")} }
                div {
                    textarea { name: "models", value: "{form.models}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.models = e.value() } }
                    div { class: "hint", {i18n.t("tokens.models_hint")} }
                }
                div { class: "full row",
                    button { class: "btn primary", id: "create-token", onclick: create, {i18n.t("tokens.add")} }
                    button { class: "btn", onclick: move |_| draft.set(None), {i18n.t("common.cancel")} }
                }
            }
        }
    }
}

/// Every token with its spend, limits and state, and its enable, keyless and delete buttons.
#[component]
fn TokenTable(feedback: Signal<Feedback>) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let confirm_delete = use_signal(|| None::<i64>);
    let list_services = services.clone();
    let tokens = use_resource(move || {
        let services = list_services.clone();
        refresh.track();
        async move {
            let currency = services.account.account().map(|a| a.currency).unwrap_or(Currency::Usd);
            services.tokens.list_tokens().map(|tokens| (tokens, currency))
        }
    });

    let toggle_services = services.clone();
    let toggle = move |(id, enabled): (i64, bool)| {
        let patch = TokenPatch { enabled: Some(!enabled), ..TokenPatch::default() };
        settle(feedback, refresh, toggle_services.tokens.update_token(id, patch).map(|_| ()), None);
    };
    let keyless_services = services.clone();
    let keyless = move |(id, on): (i64, bool)| {
        let patch = TokenPatch { keyless_local: Some(!on), ..TokenPatch::default() };
        settle(feedback, refresh, keyless_services.tokens.update_token(id, patch).map(|_| ()), None);
    };
    let delete_services = services.clone();
    let delete = move |id: i64| {
        if confirmed(confirm_delete, id) {
            settle(feedback, refresh, delete_services.tokens.delete_token(id), Some(i18n.t("common.deleted")));
        }
    };

    rsx! {
        div { class: "card",
            match &*tokens.read() {
                None => rsx! { p { class: "muted", {i18n.t("common.loading")} } },
                Some(Err(error)) => rsx! { ErrorNotice { message: error.to_string() } },
                Some(Ok((list, _))) if list.is_empty() => rsx! {
                    Empty { title: i18n.t("tokens.empty").to_string(), hint: i18n.t("tokens.empty_hint").to_string() }
                },
                Some(Ok((list, currency))) => {
                    let currency = *currency;
                    rsx! {
                        table { id: "token-table",
                            thead { tr {
                                th { {i18n.t("common.name")} }
                                th { {i18n.t("tokens.prefix")} }
                                th { {i18n.t("tokens.group")} }
                                th { class: "num", {i18n.t("tokens.used")} }
                                th { class: "num", {i18n.t("tokens.quota")} }
                                th { class: "num", {i18n.t("tokens.rpm")} }
                                th { {i18n.t("tokens.expires")} }
                                th { {i18n.t("common.models")} }
                                th { {i18n.t("logs.status")} }
                                th { {i18n.t("common.actions")} }
                            } }
                            tbody {
                                for token in list.iter().cloned() {
                                    tr { key: "{token.id}",
                                        td { "{token.name}" }
                                        td { class: "mono", "{token.key_prefix}…" }
                                        td { "{token.group}" }
                                        td { class: "num", {money(currency, token.used_quota)} }
                                        td { class: "num", {token.quota_limit.map(|q| money(currency, q)).unwrap_or_else(|| i18n.t("common.unlimited").to_string())} }
                                        td { class: "num", {token.rpm_limit.map(|r| r.to_string()).unwrap_or_else(|| "—".into())} }
                                        td { {token.expires_at_ms.map(timestamp).unwrap_or_else(|| i18n.t("common.never").to_string())} }
                                        td { class: "mono wrap", {if token.models.is_empty() { i18n.t("common.all").to_string() } else { token.models.join(", ") }} }
                                        td {
                                            if token.enabled { span { class: "badge ok", {i18n.t("common.enabled")} } }
                                            else { span { class: "badge", {i18n.t("common.disabled")} } }
                                            if token.keyless_local { " " span { class: "badge warn keyless", title: i18n.t("tokens.keyless_hint"), {i18n.t("tokens.keyless")} } }
                                        }
                                        td { class: "actions",
                                            button { class: "btn small", onclick: { let toggle = toggle.clone(); let state = (token.id, token.enabled); move |_| toggle(state) },
                                                if token.enabled { {i18n.t("common.disable")} } else { {i18n.t("common.enable")} } }
                                            button { class: "btn small keyless-toggle", title: i18n.t("tokens.keyless_hint"),
                                                onclick: { let keyless = keyless.clone(); let state = (token.id, token.keyless_local); move |_| keyless(state) },
                                                if token.keyless_local { {i18n.t("tokens.keyless_stop")} } else { {i18n.t("tokens.keyless_allow")} } }
                                            button { class: "btn small danger", onclick: { let id = token.id; let delete = delete.clone(); move |_| delete(id) },
                                                if confirm_delete() == Some(token.id) { {i18n.t("common.confirm_delete")} } else { {i18n.t("common.delete")} } }
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
}
