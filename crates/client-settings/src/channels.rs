//! Channels: the upstreams calls go to — list, add with presets, edit, enable, delete.

use burncloud_client::{use_i18n, use_refresh, use_services, Empty, ErrorNotice};
use std::collections::HashMap;

use burncloud_service_api::{
    BreakerPosition, Channel, ChannelInput, ChannelKind, ChannelPatch, ChannelTestReport, Secret,
};
use dioxus::prelude::*;

use burncloud_client::forms::{
    confirmed, mapping_text, parse_list, parse_mapping, save_and_close, settle, Feedback, FeedbackLine,
};

/// What the form holds while someone types.
#[derive(Clone, Debug, PartialEq)]
struct Draft {
    editing: Option<i64>,
    kind: ChannelKind,
    name: String,
    base_url: String,
    api_key: String,
    models: String,
    mapping: String,
    priority: String,
    weight: String,
    native_responses: bool,
}

impl Draft {
    fn new(kind: ChannelKind) -> Draft {
        let (name, models) = match kind {
            ChannelKind::Openai | ChannelKind::Local => ("", ""),
            ChannelKind::Deepseek => ("DeepSeek", "deepseek-chat\ndeepseek-reasoner"),
            ChannelKind::Qwen => ("Qwen", "qwen-plus\nqwen-max\nqwen-turbo"),
            ChannelKind::Anthropic => ("Claude", "claude-sonnet-4-5\nclaude-haiku-4-5\nclaude-opus-4-1"),
            ChannelKind::Gemini => ("Gemini", "gemini-2.5-flash\ngemini-2.5-pro\ntext-embedding-004"),
        };
        Draft {
            editing: None,
            kind,
            name: name.into(),
            base_url: String::new(),
            api_key: String::new(),
            models: models.into(),
            mapping: String::new(),
            priority: "0".into(),
            weight: "1".into(),
            native_responses: true,
        }
    }

    fn from_channel(channel: &Channel) -> Draft {
        Draft {
            editing: Some(channel.id),
            kind: channel.kind,
            name: channel.name.clone(),
            base_url: channel.base_url.clone().unwrap_or_default(),
            api_key: String::new(),
            models: channel.models.join("\n"),
            mapping: mapping_text(&channel.model_mapping),
            priority: channel.priority.to_string(),
            weight: channel.weight.to_string(),
            native_responses: channel.native_responses,
        }
    }
}

fn kind_key(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Openai => "kind.openai",
        ChannelKind::Deepseek => "kind.deepseek",
        ChannelKind::Qwen => "kind.qwen",
        ChannelKind::Anthropic => "kind.anthropic",
        ChannelKind::Gemini => "kind.gemini",
        ChannelKind::Local => "kind.local",
    }
}

#[component]
pub fn Channels() -> Element {
    let i18n = use_i18n();
    let mut draft = use_signal(|| None::<Draft>);
    let mut feedback = use_signal(|| Feedback::Idle);

    rsx! {
        div { class: "page-head",
            div {
                h1 { class: "page-title", {i18n.t("channels.title")} }
                div { class: "page-sub", {i18n.t("channels.subtitle")} }
            }
            button { class: "btn primary", id: "add-channel", onclick: move |_| { feedback.set(Feedback::Idle); draft.set(Some(Draft::new(ChannelKind::Openai))) },
                {i18n.t("channels.add")} }
        }
        FeedbackLine { feedback: feedback() }
        if draft().is_some() {
            ChannelForm { draft, feedback }
        }
        ChannelList { draft, feedback }
    }
}

/// The add or edit form of one channel; saving closes it.
#[component]
fn ChannelForm(draft: Signal<Option<Draft>>, feedback: Signal<Feedback>) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let Some(form) = draft() else { return rsx! {} };
    let save_services = services.clone();
    let save = move |_| {
        let Some(form) = draft() else { return };
        feedback.set(Feedback::Busy);
        let result = (|| -> Result<(), String> {
            let mapping = parse_mapping(&form.mapping)?;
            let priority: i64 = form
                .priority
                .trim()
                .parse()
                .map_err(|_| format!("{}: {}", i18n.t("channels.priority"), form.priority))?;
            let weight: i64 =
                form.weight.trim().parse().map_err(|_| format!("{}: {}", i18n.t("channels.weight"), form.weight))?;
            let base_url = Some(form.base_url.trim().to_string()).filter(|u| !u.is_empty());
            let channels = &save_services.channels;
            match form.editing {
                Some(id) => channels
                    .update_channel(
                        id,
                        ChannelPatch {
                            name: Some(form.name.clone()),
                            kind: Some(form.kind),
                            base_url: Some(base_url),
                            api_key: Some(Secret::new(form.api_key.trim())).filter(|k| !k.is_empty()),
                            models: Some(parse_list(&form.models)),
                            model_mapping: Some(mapping),
                            priority: Some(priority),
                            weight: Some(weight),
                            enabled: None,
                            native_responses: Some(form.native_responses),
                        },
                    )
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => channels
                    .create_channel(ChannelInput {
                        name: form.name.clone(),
                        kind: form.kind,
                        base_url,
                        api_key: Secret::new(form.api_key.trim()),
                        models: parse_list(&form.models),
                        model_mapping: mapping,
                        priority,
                        weight,
                        enabled: true,
                        native_responses: form.native_responses,
                    })
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            }
        })();
        save_and_close(draft, feedback, refresh, result, Some(i18n.t("common.saved")));
    };

    rsx! {
        div { class: "card", id: "channel-form",
            h3 { class: "card-title",
                if form.editing.is_some() { {i18n.t("channels.edit")} } else { {i18n.t("channels.add")} }
            }
            div { class: "form",
                label { {i18n.t("channels.kind")} }
                select { name: "kind",
                    onchange: move |e| {
                        let kind = ChannelKind::parse(&e.value()).unwrap_or(ChannelKind::Openai);
                        let editing = draft().and_then(|d| d.editing);
                        match editing {
                            // Editing keeps what was typed; only the kind changes.
                            Some(_) => { if let Some(d) = draft.write().as_mut() { d.kind = kind; } }
                            None => draft.set(Some(Draft::new(kind))),
                        }
                    },
                    for kind in ChannelKind::ALL.into_iter().filter(|k| *k != ChannelKind::Local) {
                        option { key: "{kind.as_str()}", value: kind.as_str(), selected: kind == form.kind, {i18n.t(kind_key(kind))} }
                    }
                }
                label { {i18n.t("common.name")} }
                input { name: "name", value: "{form.name}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.name = e.value() } }
                label { {i18n.t("channels.base_url")} }
                div {
                    input { name: "base_url", style: "width: 100%", value: "{form.base_url}",
                        placeholder: form.kind.default_base_url().unwrap_or("http://127.0.0.1:8080/v1"),
                        oninput: move |e| if let Some(d) = draft.write().as_mut() { d.base_url = e.value() } }
                    div { class: "hint",
                        if form.kind.default_base_url().is_some() { {i18n.t("channels.base_url_hint")} } else { {i18n.t("channels.base_url_openai_hint")} }
                    }
                }
                label { {i18n.t("channels.api_key")} }
                div {
                    input { name: "api_key", r#type: "password", style: "width: 100%", value: "{form.api_key}",
                        oninput: move |e| if let Some(d) = draft.write().as_mut() { d.api_key = e.value() } }
                    if form.editing.is_some() { div { class: "hint", {i18n.t("channels.api_key_keep")} } }
                }
                label { {i18n.t("common.models")} }
                div {
                    textarea { name: "models", value: "{form.models}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.models = e.value() } }
                    div { class: "hint", {i18n.t("channels.models_hint")} }
                }
                label { {i18n.t("channels.mapping")} }
                div {
                    textarea { name: "mapping", value: "{form.mapping}", placeholder: "gpt-4o=deepseek-chat",
                        oninput: move |e| if let Some(d) = draft.write().as_mut() { d.mapping = e.value() } }
                    div { class: "hint", {i18n.t("channels.mapping_hint")} }
                }
                label { {i18n.t("channels.priority")} }
                input { name: "priority", r#type: "number", value: "{form.priority}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.priority = e.value() } }
                label { {i18n.t("channels.weight")} }
                input { name: "weight", r#type: "number", min: "0", value: "{form.weight}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.weight = e.value() } }
                if form.kind == ChannelKind::Openai {
                    label { class: "full",
                        input { r#type: "checkbox", name: "native_responses", checked: form.native_responses,
                            onchange: move |e| if let Some(d) = draft.write().as_mut() { d.native_responses = e.checked() } }
                        " {i18n.t(\"channels.native_responses\")}"
                    }
                }
                div { class: "full row",
                    button { class: "btn primary", id: "save-channel", disabled: feedback() == Feedback::Busy, onclick: save,
                        if feedback() == Feedback::Busy { {i18n.t("common.saving")} } else { {i18n.t("common.save")} } }
                    button { class: "btn", onclick: move |_| draft.set(None), {i18n.t("common.cancel")} }
                }
            }
        }
    }
}

/// Every channel with its health, its last test and its buttons (test, edit, enable, delete).
#[component]
fn ChannelList(draft: Signal<Option<Draft>>, feedback: Signal<Feedback>) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let confirm_delete = use_signal(|| None::<i64>);
    let list_services = services.clone();
    let channels = use_resource(move || {
        let services = list_services.clone();
        refresh.track();
        async move {
            let channels = services.channels.list_channels()?;
            let health: HashMap<i64, BreakerPosition> =
                services.monitor.channel_health()?.into_iter().map(|h| (h.id, h.breaker)).collect();
            Ok::<_, burncloud_service_api::ServiceError>((channels, health))
        }
    });
    let mut tests = use_signal(HashMap::<i64, Option<ChannelTestReport>>::new);
    let test_services = services.clone();
    let run_test = move |id: i64| {
        let services = test_services.clone();
        tests.write().insert(id, None);
        spawn(async move {
            let report = services.monitor.test_channel(id).await.unwrap_or_else(|error| ChannelTestReport {
                ok: false,
                model: None,
                status: None,
                latency_ms: 0,
                error: Some(error.to_string()),
            });
            tests.write().insert(id, Some(report));
            refresh.bump();
        });
    };

    let row_services = services.clone();
    let toggle = move |channel: Channel| {
        let patch = ChannelPatch { enabled: Some(!channel.enabled), ..ChannelPatch::default() };
        settle(feedback, refresh, row_services.channels.update_channel(channel.id, patch).map(|_| ()), None);
    };
    let delete_services = services.clone();
    let delete = move |id: i64| {
        if confirmed(confirm_delete, id) {
            settle(feedback, refresh, delete_services.channels.delete_channel(id), Some(i18n.t("common.deleted")));
        }
    };

    rsx! {
        div { class: "card",
            match &*channels.read() {
                None => rsx! { p { class: "muted", {i18n.t("common.loading")} } },
                Some(Err(error)) => rsx! { ErrorNotice { message: error.to_string() } },
                Some(Ok((list, _))) if list.is_empty() => rsx! {
                    Empty { title: i18n.t("channels.empty").to_string(), hint: i18n.t("channels.empty_hint").to_string() }
                },
                Some(Ok((list, health))) => rsx! {
                    table { id: "channel-table",
                        thead { tr {
                            th { {i18n.t("common.name")} }
                            th { {i18n.t("channels.kind")} }
                            th { {i18n.t("common.models")} }
                            th { class: "num", {i18n.t("channels.priority")} }
                            th { class: "num", {i18n.t("channels.weight")} }
                            th { {i18n.t("channels.key")} }
                            th { {i18n.t("logs.status")} }
                            th { {i18n.t("channels.health")} }
                            th { {i18n.t("common.actions")} }
                        } }
                        tbody {
                            for channel in list.iter().cloned() {
                                tr { key: "{channel.id}",
                                    td { "{channel.name}" }
                                    td { {i18n.t(kind_key(channel.kind))} }
                                    td { class: "mono wrap", {channel.models.iter().chain(channel.model_mapping.keys()).cloned().collect::<Vec<_>>().join(", ")} }
                                    td { class: "num", "{channel.priority}" }
                                    td { class: "num", "{channel.weight}" }
                                    td { class: "mono", "{channel.key_hint}" }
                                    td {
                                        if channel.enabled { span { class: "badge ok", {i18n.t("common.enabled")} } }
                                        else { span { class: "badge", {i18n.t("common.disabled")} } }
                                    }
                                    td {
                                        {
                                            let breaker = health.get(&channel.id).copied().unwrap_or(BreakerPosition::Closed);
                                            let (class, key) = match breaker {
                                                BreakerPosition::Open => ("badge bad", "breaker.open"),
                                                BreakerPosition::HalfOpen => ("badge warn", "breaker.half_open"),
                                                BreakerPosition::Closed => ("badge ok", "breaker.closed"),
                                            };
                                            rsx! { span { class: "{class}", {i18n.t(key)} } }
                                        }
                                        match tests.read().get(&channel.id) {
                                            Some(None) => rsx! { div { class: "hint", {i18n.t("channels.testing")} } },
                                            Some(Some(report)) if report.ok => rsx! {
                                                div { class: "hint", "{i18n.t(\"channels.test_ok\")} {report.latency_ms} ms" }
                                            },
                                            Some(Some(report)) => rsx! {
                                                div { class: "hint", style: "color: var(--bad)", {report.error.clone().unwrap_or_default()} }
                                            },
                                            None => rsx! {},
                                        }
                                    }
                                    td { class: "actions",
                                        button { class: "btn small", onclick: { let id = channel.id; let mut run_test = run_test.clone(); move |_| run_test(id) },
                                            {i18n.t("channels.test")} }
                                        button { class: "btn small", onclick: { let c = channel.clone(); move |_| { feedback.set(Feedback::Idle); draft.set(Some(Draft::from_channel(&c))) } },
                                            {i18n.t("common.edit")} }
                                        button { class: "btn small", onclick: { let c = channel.clone(); let toggle = toggle.clone(); move |_| toggle(c.clone()) },
                                            if channel.enabled { {i18n.t("common.disable")} } else { {i18n.t("common.enable")} } }
                                        button { class: "btn small danger", onclick: { let id = channel.id; let delete = delete.clone(); move |_| delete(id) },
                                            if confirm_delete() == Some(channel.id) { {i18n.t("common.confirm_delete")} } else { {i18n.t("common.delete")} } }
                                    }
                                }
                            }
                        }
                    }
                },
            }
        }
    }
}
