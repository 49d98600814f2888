//! Deployments: run a local model on llama-server (what it serves, context size, GPU layers,
//! alias, idle unload, pin), watch its state, memory, use and log live, stop, start or restart it,
//! and copy what a client needs to call it. A deployment loads on the first call that names it.

use burncloud_client::forms::{confirmed, copy_to_clipboard, save_and_close, Feedback, FeedbackLine};
use burncloud_client::{timestamp, use_i18n, use_refresh, use_services, Empty, ErrorNotice};
use burncloud_service_api::{
    Instance, InstanceInput, InstanceKind, InstancePatch, InstanceState, LocalModel, DEFAULT_LOAD_TIMEOUT_S,
    LOCAL_LOAD_TIMEOUT_SETTING, LOCAL_MEMORY_BUDGET_SETTING,
};
use dioxus::prelude::*;

/// The models llama-server can serve on their own: not the vision projectors that go with them.
fn deployable(models: &[LocalModel]) -> impl Iterator<Item = &LocalModel> {
    models.iter().filter(|model| !model.path.to_ascii_lowercase().contains("mmproj"))
}

const LIVE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Clone, Debug, Default, PartialEq)]
struct Draft {
    model_id: String,
    alias: String,
    ctx_size: String,
    n_gpu_layers: String,
    /// Empty: what the model's metadata says.
    kind: String,
    idle_ttl_s: String,
    pinned: bool,
    start_now: bool,
}

fn parse_number<T: std::str::FromStr>(text: &str, what: &str) -> Result<Option<T>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| format!("{what}: '{text}' is not a whole number"))
}

fn to_input(draft: &Draft) -> Result<InstanceInput, String> {
    let model_id = draft.model_id.parse().map_err(|_| "choose a local model".to_string())?;
    Ok(InstanceInput {
        model_id,
        alias: Some(draft.alias.trim().to_string()).filter(|a| !a.is_empty()),
        ctx_size: parse_number(&draft.ctx_size, "context size")?,
        n_gpu_layers: parse_number(&draft.n_gpu_layers, "GPU layers")?,
        parallel: None,
        kind: InstanceKind::parse(&draft.kind),
        mmproj_path: None,
        idle_ttl_s: parse_number(&draft.idle_ttl_s, "idle time")?,
        pinned: Some(draft.pinned),
        start: Some(draft.start_now),
    })
}

fn kind_key(kind: InstanceKind) -> &'static str {
    match kind {
        InstanceKind::Chat => "deploy.kind_chat",
        InstanceKind::Embedding => "deploy.kind_embedding",
        InstanceKind::Rerank => "deploy.kind_rerank",
    }
}

fn state_class(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Ready => "badge ok",
        InstanceState::Failed => "badge bad",
        InstanceState::Starting | InstanceState::Loading | InstanceState::Stopping => "badge warn",
        InstanceState::Stopped => "badge",
    }
}

fn state_key(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Starting => "deploy.state_starting",
        InstanceState::Loading => "deploy.state_loading",
        InstanceState::Ready => "deploy.state_ready",
        InstanceState::Stopping => "deploy.state_stopping",
        InstanceState::Stopped => "deploy.state_stopped",
        InstanceState::Failed => "deploy.state_failed",
    }
}

/// What a client needs: the gateway's base URL, the model name, and a ready-to-run curl line for
/// what the deployment serves.
fn snippet(listen: &str, alias: &str, kind: InstanceKind) -> String {
    let (path, body) = match kind {
        InstanceKind::Chat => (
            "chat/completions",
            format!(r#"{{"model": "{alias}", "messages": [{{"role": "user", "content": "Hello"}}]}}"#),
        ),
        InstanceKind::Embedding => ("embeddings", format!(r#"{{"model": "{alias}", "input": ["Hello"]}}"#)),
        InstanceKind::Rerank => {
            ("rerank", format!(r#"{{"model": "{alias}", "query": "Hello", "documents": ["Hello there", "Goodbye"]}}"#))
        }
    };
    format!(
        "curl http://{listen}/v1/{path} \\\n  -H \"Authorization: Bearer $BURNCLOUD_TOKEN\" \\\n  -H \"Content-Type: application/json\" \\\n  -d '{body}'"
    )
}

/// What an instance card's buttons ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InstanceAction {
    Stop,
    Restart,
    Pin,
    Unpin,
    Delete,
}

#[component]
pub fn Deployments() -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let mut feedback = use_signal(|| Feedback::Idle);
    let mut draft = use_signal(|| None::<Draft>);
    let model_services = services.clone();
    let local_models = use_resource(move || {
        let services = model_services.clone();
        refresh.track();
        async move { services.local_models.list_local_models() }
    });

    rsx! {
        div { class: "page-head",
            div {
                h1 { class: "page-title", {i18n.t("deploy.title")} }
                div { class: "page-sub", {i18n.t("deploy.subtitle")} }
            }
            button { class: "btn primary", id: "new-deployment",
                onclick: move |_| {
                    feedback.set(Feedback::Idle);
                    // The model most likely meant is the one downloaded or imported last.
                    let newest = match &*local_models.read() {
                        Some(Ok(models)) => deployable(models).map(|m| m.id).max(),
                        _ => None,
                    };
                    draft.set(Some(Draft { model_id: newest.map(|id| id.to_string()).unwrap_or_default(), start_now: true, ..Draft::default() }))
                },
                {i18n.t("deploy.new")} }
        }
        FeedbackLine { feedback: feedback() }
        crate::RuntimeCard {}
        LocalLimits {}
        if draft().is_some() {
            DeployForm { draft, feedback, models: match &*local_models.read() { Some(Ok(models)) => models.clone(), _ => Vec::new() } }
        }
        InstanceList { feedback }
    }
}

/// The new deployment form: model, kind, alias, context, GPU layers, residency; deploying closes it.
#[component]
fn DeployForm(draft: Signal<Option<Draft>>, feedback: Signal<Feedback>, models: Vec<LocalModel>) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let Some(form) = draft() else { return rsx! {} };
    let deploy_services = services.clone();
    let deploy = move |_| {
        let Some(form) = draft() else { return };
        let created = to_input(&form)
            .and_then(|input| deploy_services.inference.create_instance(input).map_err(|e| e.to_string()));
        let started = created.as_ref().ok().map(|instance| format!("{} {}", i18n.t("deploy.started"), instance.alias));
        save_and_close(draft, feedback, refresh, created.map(|_| ()), started.as_deref());
    };
    rsx! {
        div { class: "card", id: "deploy-form",
            h3 { class: "card-title", {i18n.t("deploy.new")} }
            div { class: "form",
                label { {i18n.t("deploy.model")} }
                select { name: "model_id", onchange: move |e| if let Some(d) = draft.write().as_mut() { d.model_id = e.value() },
                    option { value: "", selected: form.model_id.is_empty(), {i18n.t("deploy.choose_model")} }
                    for model in deployable(&models) {
                        option { key: "{model.id}", value: "{model.id}", selected: form.model_id == model.id.to_string(),
                            {model.path.rsplit(['/', '\\']).next().unwrap_or(&model.path).to_string()} }
                    }
                }
                if let Some(model) = models.iter().find(|m| m.id.to_string() == form.model_id) {
                    if let Some(estimate) = &model.estimate {
                        div { class: "full hint", id: "deploy-estimate",
                            {format!("{} ≈ {} ({} {}) ", i18n.t("fit.needs"), burncloud_client::bytes(estimate.bytes_at(estimate.default_context())), estimate.default_context(), i18n.t("fit.tokens"))}
                            crate::fit::FitBadge { fit: model.fit }
                        }
                    }
                }
                label { {i18n.t("deploy.kind")} }
                select { name: "kind", onchange: move |e| if let Some(d) = draft.write().as_mut() { d.kind = e.value() },
                    option { value: "", selected: form.kind.is_empty(), {i18n.t("deploy.kind_auto")} }
                    for kind in InstanceKind::ALL {
                        option { key: "{kind.as_str()}", value: kind.as_str(), selected: form.kind == kind.as_str(), {i18n.t(kind_key(kind))} }
                    }
                }
                label { {i18n.t("deploy.alias")} }
                div {
                    input { name: "alias", value: "{form.alias}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.alias = e.value() } }
                    div { class: "hint", {i18n.t("deploy.alias_hint")} }
                }
                label { {i18n.t("deploy.ctx_size")} }
                input { name: "ctx_size", r#type: "number", placeholder: i18n.t("fit.auto"), value: "{form.ctx_size}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.ctx_size = e.value() } }
                label { {i18n.t("deploy.gpu_layers")} }
                div {
                    input { name: "n_gpu_layers", r#type: "number", placeholder: i18n.t("fit.auto"), value: "{form.n_gpu_layers}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.n_gpu_layers = e.value() } }
                    div { class: "hint", {i18n.t("deploy.gpu_hint")} }
                }
                label { {i18n.t("deploy.idle_ttl")} }
                div {
                    input { name: "idle_ttl_s", r#type: "number", placeholder: "600", value: "{form.idle_ttl_s}", oninput: move |e| if let Some(d) = draft.write().as_mut() { d.idle_ttl_s = e.value() } }
                    div { class: "hint", {i18n.t("deploy.idle_ttl_hint")} }
                }
                label { class: "full",
                    input { r#type: "checkbox", name: "pinned", checked: form.pinned, onchange: move |e| if let Some(d) = draft.write().as_mut() { d.pinned = e.checked() } }
                    {i18n.t("deploy.pinned")}
                }
                label { class: "full",
                    input { r#type: "checkbox", name: "start_now", checked: form.start_now, onchange: move |e| if let Some(d) = draft.write().as_mut() { d.start_now = e.checked() } }
                    {i18n.t("deploy.start_now")}
                }
                div { class: "full row",
                    button { class: "btn primary", id: "deploy", onclick: deploy, {i18n.t("deploy.deploy")} }
                    button { class: "btn", onclick: move |_| draft.set(None), {i18n.t("common.cancel")} }
                }
            }
        }
    }
}

/// Every deployment as a card, following the service's changes, and the log of the one opened.
#[component]
fn InstanceList(feedback: Signal<Feedback>) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let tick = burncloud_client::use_ticker(LIVE_TICK);
    let mut open_logs = use_signal(|| None::<i64>);
    let confirm_delete = use_signal(|| None::<i64>);
    // The list follows the service's change counter; only an open log view is polled.
    let watch_services = services.clone();
    let mut changed = use_signal(|| 0u64);
    use_future(move || {
        let services = watch_services.clone();
        async move {
            let mut changes = services.inference.watch_instances();
            while changes.changed().await.is_ok() {
                changed += 1;
                // A busy model changes with every call: at most four reloads a second.
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
    });
    let list_services = services.clone();
    let instances = use_resource(move || {
        let services = list_services.clone();
        refresh.track();
        changed.read();
        async move { services.inference.list_instances() }
    });
    let log_services = services.clone();
    let log_lines = use_resource(move || {
        let services = log_services.clone();
        tick.read();
        let shown = open_logs();
        async move { shown.map(|id| services.inference.instance_logs(id, 200).unwrap_or_default()) }
    });

    let action_services = services.clone();
    let act = move |(id, action): (i64, InstanceAction)| {
        if action == InstanceAction::Delete && !confirmed(confirm_delete, id) {
            return;
        }
        let inference = action_services.inference.clone();
        feedback.set(Feedback::Busy);
        spawn(async move {
            let outcome = match action {
                InstanceAction::Stop => inference.stop_instance(id).await.map(|_| ()),
                InstanceAction::Restart => inference.restart_instance(id).await.map(|_| ()),
                InstanceAction::Pin | InstanceAction::Unpin => inference
                    .update_instance(
                        id,
                        InstancePatch { pinned: Some(action == InstanceAction::Pin), idle_ttl_s: None },
                    )
                    .map(|_| ()),
                InstanceAction::Delete => inference.delete_instance(id).await,
            };
            match outcome {
                Ok(()) => feedback.set(Feedback::Idle),
                Err(error) => feedback.set(Feedback::Failed(error.to_string())),
            }
            refresh.bump();
        });
    };
    let listen = services.info.listen.clone();
    rsx! {
        match &*instances.read() {
            None => rsx! { div { class: "card", p { class: "muted", {i18n.t("common.loading")} } } },
            Some(Err(error)) => rsx! { div { class: "card", ErrorNotice { message: error.to_string() } } },
            Some(Ok(list)) if list.is_empty() => rsx! {
                div { class: "card",
                    Empty { title: i18n.t("deploy.empty").to_string(), hint: i18n.t("deploy.empty_hint").to_string() }
                }
            },
            Some(Ok(list)) => rsx! {
                div { class: "grid grid-2", id: "instances",
                    for instance in list.iter().cloned() {
                        InstanceCard { key: "{instance.id}", instance: instance.clone(), listen: listen.clone(),
                            logs_open: open_logs() == Some(instance.id),
                            confirm_delete: confirm_delete() == Some(instance.id),
                            on_action: act.clone(),
                            on_logs: move |id: i64| open_logs.set(if open_logs() == Some(id) { None } else { Some(id) }) }
                    }
                }
            },
        }
        if let (Some(id), Some(Some(lines))) = (open_logs(), log_lines.read().clone()) {
            div { class: "card", id: "instance-log",
                div { class: "row",
                    h3 { class: "card-title spacer", {format!("{} #{id}", i18n.t("deploy.log"))} }
                    button { class: "btn small", onclick: move |_| open_logs.set(None), {i18n.t("common.close")} }
                }
                pre { class: "log-view", {lines.join("\n")} }
            }
        }
    }
}

#[component]
fn InstanceCard(
    instance: Instance,
    listen: String,
    logs_open: bool,
    confirm_delete: bool,
    on_action: EventHandler<(i64, InstanceAction)>,
    on_logs: EventHandler<i64>,
) -> Element {
    let i18n = use_i18n();
    let id = instance.id;
    let code = snippet(&listen, &instance.alias, instance.kind);
    let copy_code = code.clone();
    rsx! {
        div { class: "card instance", "data-state": instance.state.as_str(),
            div { class: "row",
                h3 { class: "spacer instance-name", "{instance.alias}" }
                span { class: "badge instance-kind", {i18n.t(kind_key(instance.kind))} }
                if instance.mmproj_path.is_some() { span { class: "badge", {i18n.t("deploy.vision")} } }
                if instance.pinned { span { class: "badge instance-pinned", {i18n.t("deploy.pinned")} } }
                span { class: state_class(instance.state), {i18n.t(state_key(instance.state))} }
            }
            dl { class: "detail",
                dt { {i18n.t("deploy.model")} }
                dd { class: "mono", "{instance.model_path}" }
                dt { {i18n.t("deploy.port")} }
                dd { class: "mono", {instance.port.map(|p| p.to_string()).unwrap_or_else(|| "—".into())} }
                dt { {i18n.t("deploy.ctx_size")} }
                dd { "{instance.ctx_size}" }
                dt { {i18n.t("deploy.gpu_layers")} }
                dd { if instance.n_gpu_layers < 0 { {i18n.t("fit.auto")} } else { "{instance.n_gpu_layers}" } }
                if let Some(started) = instance.started_at_ms.filter(|_| instance.state.is_live()) {
                    dt { {i18n.t("deploy.started_at")} }
                    dd { {timestamp(started)} }
                }
                if instance.restarts > 0 {
                    dt { {i18n.t("deploy.restarts")} }
                    dd { "{instance.restarts}" }
                }
                if let Some(bytes) = instance.estimated_bytes {
                    dt { {i18n.t("deploy.memory")} }
                    dd { {burncloud_client::bytes(bytes)} }
                }
                dt { {i18n.t("deploy.idle_ttl")} }
                dd { class: "instance-ttl",
                    if instance.pinned || instance.idle_ttl_s == 0 { {i18n.t("deploy.never")} }
                    else { {format!("{} {}", instance.idle_ttl_s, i18n.t("deploy.seconds"))} }
                }
                if let Some(used) = instance.last_used_at {
                    dt { {i18n.t("deploy.last_used")} }
                    dd { {timestamp(used)} }
                }
                if instance.in_flight > 0 {
                    dt { {i18n.t("deploy.in_flight")} }
                    dd { class: "instance-in-flight", "{instance.in_flight}" }
                }
            }
            if instance.state == InstanceState::Stopped && instance.error.is_none() {
                div { class: "hint", {i18n.t("deploy.loads_on_call")} }
            }
            if let Some(error) = instance.error.clone() { div { class: "notice bad", "{error}" } }
            if instance.state != InstanceState::Failed {
                div { class: "hint", {i18n.t("deploy.snippet_hint")} }
                pre { class: "log-view snippet", "{code}" }
            }
            div { class: "row",
                if instance.state != InstanceState::Failed {
                    button { class: "btn small", onclick: move |_| copy_to_clipboard(&copy_code), {i18n.t("common.copy")} }
                }
                span { class: "spacer" }
                button { class: "btn small instance-pin", onclick: move |_| on_action.call((id, if instance.pinned { InstanceAction::Unpin } else { InstanceAction::Pin })),
                    if instance.pinned { {i18n.t("deploy.unpin")} } else { {i18n.t("deploy.pin")} } }
                button { class: "btn small", onclick: move |_| on_logs.call(id),
                    if logs_open { {i18n.t("deploy.hide_log")} } else { {i18n.t("deploy.log")} } }
                if instance.state.is_live() {
                    button { class: "btn small", onclick: move |_| on_action.call((id, InstanceAction::Stop)), {i18n.t("deploy.stop")} }
                }
                button { class: "btn small", onclick: move |_| on_action.call((id, InstanceAction::Restart)),
                    if instance.state.is_live() { {i18n.t("deploy.restart")} } else { {i18n.t("deploy.start")} } }
                button { class: "btn small danger", onclick: move |_| on_action.call((id, InstanceAction::Delete)),
                    if confirm_delete { {i18n.t("common.confirm_delete")} } else { {i18n.t("common.delete")} } }
            }
        }
    }
}

/// The memory all local models may use together, and how long a call waits for one to load.
#[component]
fn LocalLimits() -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let mut budget = use_signal(String::new);
    let mut timeout = use_signal(String::new);
    let mut feedback = use_signal(|| Feedback::Idle);
    let read_services = services.clone();
    use_effect(move || {
        let read = |key| read_services.settings.get_setting(key).ok().flatten().unwrap_or_default();
        budget.set(read(LOCAL_MEMORY_BUDGET_SETTING));
        timeout.set(read(LOCAL_LOAD_TIMEOUT_SETTING));
    });
    let save = move |_| {
        let checked = [("memory", budget()), ("load timeout", timeout())]
            .into_iter()
            .try_for_each(|(what, text)| parse_number::<u64>(&text, what).map(|_| ()));
        let outcome = checked.and_then(|()| {
            services
                .settings
                .set_setting(LOCAL_MEMORY_BUDGET_SETTING, budget().trim())
                .and_then(|()| services.settings.set_setting(LOCAL_LOAD_TIMEOUT_SETTING, timeout().trim()))
                .map_err(|e| e.to_string())
        });
        match outcome {
            Ok(()) => feedback.set(Feedback::Done(i18n.t("deploy.limits_saved").to_string())),
            Err(message) => feedback.set(Feedback::Failed(message)),
        }
    };
    rsx! {
        details { class: "card hint", id: "local-limits",
            summary { {i18n.t("deploy.limits")} }
            div { class: "form",
                label { {i18n.t("deploy.memory_budget")} }
                div {
                    input { name: "local_memory_budget_mb", r#type: "number", placeholder: i18n.t("deploy.detected"),
                        value: "{budget}", oninput: move |e| budget.set(e.value()) }
                    div { class: "hint", {i18n.t("deploy.memory_budget_hint")} }
                }
                label { {i18n.t("deploy.load_timeout")} }
                input { name: "local_load_timeout_s", r#type: "number", placeholder: "{DEFAULT_LOAD_TIMEOUT_S}",
                    value: "{timeout}", oninput: move |e| timeout.set(e.value()) }
                div { class: "full row",
                    button { class: "btn small", id: "save-local-limits", onclick: save, {i18n.t("common.save")} }
                }
            }
            FeedbackLine { feedback: feedback() }
        }
    }
}
