//! App settings: language, theme, currency and balance, and how BurnCloud runs.

use burncloud_client::{money, use_i18n, use_refresh, use_services, ErrorNotice, Lang};
use burncloud_service_api::{AccountPatch, Currency, HubSource, Money, LLAMA_SERVER_SETTING, LOG_RETENTION_SETTING};
use dioxus::prelude::*;

use burncloud_client::forms::{copy_to_clipboard, Feedback, FeedbackLine};

/// How long call logs may be kept, in days, as offered in Settings (besides forever).
const RETENTION_CHOICES: [u32; 6] = [7, 30, 90, 180, 365, 730];

#[component]
pub fn Settings() -> Element {
    let i18n = use_i18n();
    let feedback = use_signal(|| Feedback::Idle);
    rsx! {
        div { class: "page-head",
            div {
                h1 { class: "page-title", {i18n.t("settings.title")} }
                div { class: "page-sub", {i18n.t("settings.subtitle")} }
            }
        }
        FeedbackLine { feedback: feedback() }
        div { class: "card",
            div { class: "form",
                Preferences { feedback }
                AccountFields { feedback }
            }
        }
        AppFacts { feedback }
        HubTokens {}
        LlamaServerPath {}
    }
}

/// Language, closing to the tray and how long call logs are kept (rows of the settings form).
#[component]
fn Preferences(feedback: Signal<Feedback>) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let lang_services = services.clone();
    let set_lang = move |code: String| {
        let lang = Lang::from_code(&code);
        let mut signal = i18n.lang;
        signal.set(lang);
        let _ = lang_services.settings.set_setting("language", lang.code());
    };
    let tray_services = services.clone();
    let close_to_tray = use_resource(move || {
        let services = tray_services.clone();
        refresh.track();
        async move { services.settings.get_setting("close_to_tray").ok().flatten().as_deref() != Some("false") }
    });
    let toggle_services = services.clone();
    let toggle_tray = move |on: bool| match toggle_services
        .settings
        .set_setting("close_to_tray", if on { "true" } else { "false" })
    {
        Ok(()) => refresh.bump(),
        Err(error) => feedback.set(Feedback::Failed(error.to_string())),
    };
    let retention_services = services.clone();
    let retention = use_resource(move || {
        let services = retention_services.clone();
        refresh.track();
        async move { services.settings.get_setting(LOG_RETENTION_SETTING).ok().flatten().unwrap_or_default() }
    });
    let set_retention_services = services.clone();
    let set_retention =
        move |days: String| match set_retention_services.settings.set_setting(LOG_RETENTION_SETTING, &days) {
            Ok(()) => {
                feedback.set(Feedback::Done(i18n.t("common.saved").to_string()));
                refresh.bump();
            }
            Err(error) => feedback.set(Feedback::Failed(error.to_string())),
        };
    rsx! {
        label { {i18n.t("settings.language")} }
        select { name: "language", onchange: move |e| set_lang(e.value()),
            option { value: "en", selected: i18n.current() == Lang::En, "English" }
            option { value: "zh-CN", selected: i18n.current() == Lang::Zh, "简体中文" }
        }
        label { {i18n.t("settings.close_to_tray")} }
        div {
            label {
                input { r#type: "checkbox", name: "close_to_tray", checked: close_to_tray().unwrap_or(true),
                    onchange: { let mut toggle_tray = toggle_tray.clone(); move |e: Event<FormData>| toggle_tray(e.checked()) } }
                " {i18n.t(\"settings.close_to_tray_hint\")}"
            }
        }
        label { {i18n.t("settings.log_retention")} }
        div {
            select { name: "log_retention_days", onchange: { let mut set_retention = set_retention.clone(); move |e: Event<FormData>| set_retention(e.value()) },
                option { value: "", selected: retention().unwrap_or_default().is_empty(), {i18n.t("settings.log_retention_forever")} }
                for days in RETENTION_CHOICES {
                    option { value: "{days}", selected: retention().unwrap_or_default() == days.to_string(),
                        "{days} {i18n.t(\"settings.log_retention_days\")}" }
                }
            }
            " {i18n.t(\"settings.log_retention_hint\")}"
        }
    }
}

/// The account's currency, balance and top-up (rows of the settings form).
#[component]
fn AccountFields(feedback: Signal<Feedback>) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let mut amount = use_signal(String::new);
    let account_services = services.clone();
    let account = use_resource(move || {
        let services = account_services.clone();
        refresh.track();
        async move { services.account.account() }
    });
    let currency_services = services.clone();
    let mut set_currency = move |code: String| {
        let patch = AccountPatch { currency: Currency::parse(&code), balance: None };
        match currency_services.account.update_account(patch) {
            Ok(_) => refresh.bump(),
            Err(error) => feedback.set(Feedback::Failed(error.to_string())),
        }
    };
    let top_up_services = services.clone();
    let top_up = move |_| {
        let result = Money::parse(&amount())
            .map_err(|e| e.to_string())
            .and_then(|value| top_up_services.account.top_up(value).map_err(|e| e.to_string()));
        match result {
            Ok(_) => {
                amount.set(String::new());
                feedback.set(Feedback::Done(i18n.t("common.saved").to_string()));
                refresh.bump();
            }
            Err(message) => feedback.set(Feedback::Failed(message)),
        }
    };
    let unlimited_services = services.clone();
    let make_unlimited = move |_| match unlimited_services
        .account
        .update_account(AccountPatch { currency: None, balance: Some(None) })
    {
        Ok(_) => {
            feedback.set(Feedback::Done(i18n.t("common.saved").to_string()));
            refresh.bump();
        }
        Err(error) => feedback.set(Feedback::Failed(error.to_string())),
    };
    rsx! {
        match &*account.read() {
            Some(Ok(account)) => {
                let currency = account.currency;
                rsx! {
                    label { {i18n.t("settings.currency")} }
                    select { name: "currency", onchange: move |e| set_currency(e.value()),
                        option { value: "USD", selected: currency == Currency::Usd, "USD ($)" }
                        option { value: "CNY", selected: currency == Currency::Cny, "CNY (¥)" }
                    }
                    label { {i18n.t("settings.balance")} }
                    div { class: "row",
                        strong { id: "settings-balance",
                            {account.balance.map(|b| money(currency, b)).unwrap_or_else(|| i18n.t("common.unlimited").to_string())}
                        }
                        if account.balance.is_some() {
                            button { class: "btn small", onclick: make_unlimited, {i18n.t("settings.make_unlimited")} }
                        }
                    }
                    label { {i18n.t("settings.top_up")} }
                    div {
                        div { class: "row",
                            input { name: "amount", placeholder: i18n.t("settings.amount"), value: "{amount}", oninput: move |e| amount.set(e.value()) }
                            button { class: "btn primary", id: "top-up", onclick: top_up, {i18n.t("settings.top_up")} }
                        }
                        div { class: "hint", {i18n.t("settings.top_up_hint")} }
                    }
                }
            }
            Some(Err(error)) => rsx! { div { class: "full", ErrorNotice { message: error.to_string() } } },
            None => rsx! {},
        }
    }
}

/// Where the app listens and keeps its data, the admin key (reveal, copy, rotate) and the version.
#[component]
fn AppFacts(feedback: Signal<Feedback>) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let mut reveal = use_signal(|| false);
    let info = services.info.clone();
    let key_services = services.clone();
    let mut admin_key = use_signal(move || key_services.admin.admin_key());
    let mut confirm_rotate = use_signal(|| false);
    let rotate_services = services.clone();
    let rotate = move |_| {
        if !confirm_rotate() {
            confirm_rotate.set(true);
            return;
        }
        confirm_rotate.set(false);
        match rotate_services.admin.rotate_admin_key() {
            Ok(key) => {
                admin_key.set(key);
                reveal.set(true);
                feedback.set(Feedback::Done(i18n.t("settings.rotated").to_string()));
            }
            Err(error) => feedback.set(Feedback::Failed(error.to_string())),
        }
    };
    rsx! {
        div { class: "card",
            div { class: "form",
                label { {i18n.t("settings.endpoint")} }
                div {
                    div { class: "mono", "http://{info.listen}/v1" }
                    div { class: "hint", {i18n.t("settings.restart_hint")} }
                }
                label { {i18n.t("settings.data_dir")} }
                div { class: "mono", "{info.data_dir}" }
                label { {i18n.t("settings.admin_key")} }
                div { class: "row",
                    span { class: "key-box", id: "admin-key",
                        if reveal() { "{admin_key}" } else { "••••••••••••••••" }
                    }
                    button { class: "btn small", onclick: move |_| reveal.set(!reveal()),
                        if reveal() { {i18n.t("settings.hide")} } else { {i18n.t("settings.reveal")} } }
                    button { class: "btn small", onclick: move |_| copy_to_clipboard(&admin_key()), {i18n.t("common.copy")} }
                    button { class: "btn small danger", id: "rotate-admin-key", onclick: rotate,
                        if confirm_rotate() { {i18n.t("settings.rotate_confirm")} } else { {i18n.t("settings.rotate")} } }
                }
                label { {i18n.t("settings.version")} }
                div { class: "mono", "{info.version}" }
            }
        }
    }
}

/// Where llama-server is: a path chosen here wins over the environment, a bundled copy and PATH.
#[component]
fn LlamaServerPath() -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let mut feedback = use_signal(|| Feedback::Idle);
    let read_services = services.clone();
    let mut path =
        use_signal(move || read_services.settings.get_setting(LLAMA_SERVER_SETTING).ok().flatten().unwrap_or_default());
    let mut checked = use_signal(|| 0u64);
    let check_services = services.clone();
    let found = use_resource(move || {
        let services = check_services.clone();
        checked.read();
        async move { services.inference.llama_server() }
    });
    let save_services = services.clone();
    let save = move |_| match save_services.settings.set_setting(LLAMA_SERVER_SETTING, path().trim()) {
        Ok(()) => {
            feedback.set(Feedback::Done(i18n.t("settings.llama_saved").to_string()));
            checked += 1;
        }
        Err(error) => feedback.set(Feedback::Failed(error.to_string())),
    };
    rsx! {
        div { class: "card", id: "llama-server-setting",
            h3 { class: "card-title", {i18n.t("settings.llama_title")} }
            FeedbackLine { feedback: feedback() }
            div { class: "form",
                label { {i18n.t("settings.llama_path")} }
                div { class: "row",
                    input { class: "spacer", name: "llama_server_path", value: "{path}", placeholder: i18n.t("settings.llama_auto"),
                        oninput: move |e| path.set(e.value()) }
                    button { class: "btn", onclick: save, {i18n.t("common.save")} }
                }
                label { {i18n.t("settings.llama_found")} }
                match &*found.read() {
                    None => rsx! { div { class: "muted", {i18n.t("common.loading")} } },
                    Some(Ok(info)) => rsx! { div { class: "mono", {format!("{} · {} ({})", info.version, info.path, info.found_in)} } },
                    Some(Err(error)) => rsx! { div { ErrorNotice { message: error.to_string() } } },
                }
            }
        }
    }
}

/// Access tokens for the model hubs: sent to the hub's own host only, needed for gated or private
/// repositories. The Hugging Face token serves hf-mirror too.
#[component]
fn HubTokens() -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let mut feedback = use_signal(|| Feedback::Idle);
    let mut drafts = use_signal(|| (String::new(), String::new()));
    let read_services = services.clone();
    let mut saved = use_signal(move || {
        let has = |source: HubSource| {
            read_services.settings.get_setting(&source.token_setting()).ok().flatten().is_some_and(|t| !t.is_empty())
        };
        (has(HubSource::Huggingface), has(HubSource::Modelscope))
    });
    let save_services = services.clone();
    let save = move |sources: &'static [HubSource]| {
        let (hugging_face, modelscope) = drafts();
        let value = if sources.contains(&HubSource::Modelscope) { modelscope } else { hugging_face };
        let value = value.trim().to_string();
        let outcome =
            sources.iter().try_for_each(|source| save_services.settings.set_setting(&source.token_setting(), &value));
        match outcome {
            Ok(()) => {
                let mut current = saved();
                if sources.contains(&HubSource::Modelscope) {
                    current.1 = !value.is_empty()
                } else {
                    current.0 = !value.is_empty()
                }
                saved.set(current);
                drafts.set((String::new(), String::new()));
                feedback.set(Feedback::Done(i18n.t("settings.hub_token_saved").to_string()));
            }
            Err(error) => feedback.set(Feedback::Failed(error.to_string())),
        }
    };
    let status =
        move |set: bool| if set { i18n.t("settings.hub_token_set") } else { i18n.t("settings.hub_token_unset") };
    rsx! {
        div { class: "card", id: "hub-tokens",
            h3 { class: "card-title", {i18n.t("settings.hub_title")} }
            FeedbackLine { feedback: feedback() }
            div { class: "form",
                label { "Hugging Face / hf-mirror" }
                div {
                    div { class: "row",
                        input { r#type: "password", name: "hf_token", placeholder: "hf_…", value: "{drafts().0}",
                            oninput: move |e| drafts.write().0 = e.value() }
                        button { class: "btn", onclick: { let mut save = save.clone(); move |_| save(&[HubSource::Huggingface, HubSource::HfMirror]) },
                            {i18n.t("common.save")} }
                        span { class: if saved().0 { "badge ok" } else { "badge" }, {status(saved().0)} }
                    }
                }
                label { "ModelScope" }
                div { class: "row",
                    input { r#type: "password", name: "modelscope_token", value: "{drafts().1}",
                        oninput: move |e| drafts.write().1 = e.value() }
                    button { class: "btn", onclick: { let mut save = save.clone(); move |_| save(&[HubSource::Modelscope]) },
                        {i18n.t("common.save")} }
                    span { class: if saved().1 { "badge ok" } else { "badge" }, {status(saved().1)} }
                }
                div { class: "full hint", {i18n.t("settings.hub_token_hint")} }
            }
        }
    }
}
