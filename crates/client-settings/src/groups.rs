//! Groups: which channels a token's calls may use, and the strategy that shares them.

use std::collections::BTreeMap;

use burncloud_client::{use_i18n, use_refresh, use_services, ErrorNotice};
use burncloud_service_api::{Channel, Group, GroupInput, GroupMember, GroupPatch, Strategy, DEFAULT_GROUP};
use dioxus::prelude::*;

use burncloud_client::forms::{save_and_close, settle, Feedback, FeedbackLine};

const STRATEGIES: [Strategy; 3] = [Strategy::Priority, Strategy::Weighted, Strategy::RoundRobin];

fn strategy_key(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::RoundRobin => "strategy.round_robin",
        Strategy::Weighted => "strategy.weighted",
        Strategy::Priority => "strategy.priority",
    }
}

/// The form: included channels with their weight and priority as typed.
#[derive(Clone, Debug, Default, PartialEq)]
struct Draft {
    editing: Option<i64>,
    name: String,
    strategy: Strategy,
    members: BTreeMap<i64, (String, String)>,
}

impl Draft {
    fn from_group(group: &Group) -> Draft {
        Draft {
            editing: Some(group.id),
            name: group.name.clone(),
            strategy: group.strategy,
            members: group
                .members
                .iter()
                .map(|m| (m.channel_id, (m.weight.to_string(), m.priority.to_string())))
                .collect(),
        }
    }

    fn members(&self) -> Result<Vec<GroupMember>, String> {
        self.members
            .iter()
            .map(|(channel_id, (weight, priority))| {
                let number =
                    |text: &str| text.trim().parse::<i64>().map_err(|_| format!("“{text}” is not a whole number"));
                Ok(GroupMember { channel_id: *channel_id, weight: number(weight)?, priority: number(priority)? })
            })
            .collect()
    }
}

#[component]
pub fn Groups() -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let mut draft = use_signal(|| None::<Draft>);
    let mut feedback = use_signal(|| Feedback::Idle);
    let list_services = services.clone();
    let data = use_resource(move || {
        let services = list_services.clone();
        refresh.track();
        async move {
            Ok::<_, burncloud_service_api::ServiceError>((
                services.groups.list_groups()?,
                services.channels.list_channels()?,
            ))
        }
    });
    let (groups, channels) = match &*data.read() {
        Some(Ok((groups, channels))) => (groups.clone(), channels.clone()),
        Some(Err(error)) => return rsx! { ErrorNotice { message: error.to_string() } },
        None => return rsx! { p { class: "muted", {i18n.t("common.loading")} } },
    };
    rsx! {
        div { class: "page-head",
            div {
                h1 { class: "page-title", {i18n.t("groups.title")} }
                div { class: "page-sub", {i18n.t("groups.subtitle")} }
            }
            button { class: "btn primary", id: "add-group", onclick: move |_| { feedback.set(Feedback::Idle); draft.set(Some(Draft::default())) },
                {i18n.t("groups.add")} }
        }
        FeedbackLine { feedback: feedback() }
        if draft().is_some() {
            GroupForm { draft, feedback, channels: channels.clone() }
        }
        GroupTable { draft, feedback, groups, channels }
    }
}

/// The add or edit form of one group: its name, strategy, and each channel's weight and priority.
#[component]
fn GroupForm(draft: Signal<Option<Draft>>, feedback: Signal<Feedback>, channels: Vec<Channel>) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let Some(form) = draft() else { return rsx! {} };
    let save_services = services.clone();
    let save = move |_| {
        let Some(form) = draft() else { return };
        let result = form.members().and_then(|members| {
            let groups = &save_services.groups;
            match form.editing {
                Some(id) => groups
                    .update_group(
                        id,
                        GroupPatch {
                            name: Some(form.name.clone()),
                            strategy: Some(form.strategy),
                            members: Some(members),
                        },
                    )
                    .map(|_| ()),
                None => groups
                    .create_group(GroupInput { name: form.name.clone(), strategy: form.strategy, members })
                    .map(|_| ()),
            }
            .map_err(|e| e.to_string())
        });
        save_and_close(draft, feedback, refresh, result, Some(i18n.t("common.saved")));
    };
    rsx! {
        div { class: "card", id: "group-form",
            h3 { class: "card-title", if form.editing.is_some() { {i18n.t("groups.edit")} } else { {i18n.t("groups.add")} } }
            div { class: "form",
                label { {i18n.t("common.name")} }
                input { name: "name", value: "{form.name}", disabled: form.name == DEFAULT_GROUP && form.editing.is_some(),
                    oninput: move |e| if let Some(d) = draft.write().as_mut() { d.name = e.value() } }
                label { {i18n.t("groups.strategy")} }
                select { name: "strategy",
                    onchange: move |e| if let Some(d) = draft.write().as_mut() { d.strategy = Strategy::parse(&e.value()).unwrap_or_default() },
                    for strategy in STRATEGIES {
                        option { key: "{strategy.as_str()}", value: strategy.as_str(), selected: strategy == form.strategy, {i18n.t(strategy_key(strategy))} }
                    }
                }
                label { {i18n.t("groups.members")} }
                div {
                    div { class: "hint", {i18n.t("groups.empty_hint")} }
                    table {
                        thead { tr {
                            th { {i18n.t("groups.member")} }
                            th { {i18n.t("channels.weight")} }
                            th { {i18n.t("channels.priority")} }
                        } }
                        tbody {
                            for channel in channels.iter().cloned() {
                                {
                                    let member = form.members.get(&channel.id).cloned();
                                    let id = channel.id;
                                    rsx! {
                                        tr { key: "{id}",
                                            td {
                                                label {
                                                    input { r#type: "checkbox", checked: member.is_some(),
                                                        onchange: move |e| if let Some(d) = draft.write().as_mut() {
                                                            if e.checked() { d.members.insert(id, ("1".into(), "0".into())); } else { d.members.remove(&id); }
                                                        } }
                                                    " {channel.name}"
                                                }
                                            }
                                            td { input { r#type: "number", min: "0", style: "width: 80px", disabled: member.is_none(),
                                                value: member.as_ref().map(|m| m.0.clone()).unwrap_or_default(),
                                                oninput: move |e| if let Some(m) = draft.write().as_mut().and_then(|d| d.members.get_mut(&id)) { m.0 = e.value() } } }
                                            td { input { r#type: "number", style: "width: 80px", disabled: member.is_none(),
                                                value: member.as_ref().map(|m| m.1.clone()).unwrap_or_default(),
                                                oninput: move |e| if let Some(m) = draft.write().as_mut().and_then(|d| d.members.get_mut(&id)) { m.1 = e.value() } } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                div { class: "full row",
                    button { class: "btn primary", id: "save-group", onclick: save, {i18n.t("common.save")} }
                    button { class: "btn", onclick: move |_| draft.set(None), {i18n.t("common.cancel")} }
                }
            }
        }
    }
}

/// Every group with its strategy and members, and its edit and delete buttons.
#[component]
fn GroupTable(
    draft: Signal<Option<Draft>>,
    feedback: Signal<Feedback>,
    groups: Vec<Group>,
    channels: Vec<Channel>,
) -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let refresh = use_refresh();
    let delete_services = services.clone();
    let channel_name =
        |id: i64| channels.iter().find(|c| c.id == id).map(|c| c.name.clone()).unwrap_or_else(|| format!("#{id}"));
    rsx! {
        div { class: "card",
            table { id: "group-table",
                thead { tr {
                    th { {i18n.t("common.name")} }
                    th { {i18n.t("groups.strategy")} }
                    th { {i18n.t("groups.members")} }
                    th { {i18n.t("common.actions")} }
                } }
                tbody {
                    for group in groups.iter().cloned() {
                        tr { key: "{group.id}",
                            td { "{group.name}" }
                            td { {i18n.t(strategy_key(group.strategy))} }
                            td {
                                if group.members.is_empty() && group.name == DEFAULT_GROUP {
                                    span { class: "muted", {i18n.t("groups.all_channels")} }
                                } else {
                                    {group.members.iter().map(|m| format!("{} (w{} p{})", channel_name(m.channel_id), m.weight, m.priority)).collect::<Vec<_>>().join(", ")}
                                }
                            }
                            td { class: "actions",
                                button { class: "btn small", onclick: { let g = group.clone(); move |_| { feedback.set(Feedback::Idle); draft.set(Some(Draft::from_group(&g))) } },
                                    {i18n.t("common.edit")} }
                                if group.name != DEFAULT_GROUP {
                                    button { class: "btn small danger", onclick: { let services = delete_services.clone(); let id = group.id; move |_| {
                                        settle(feedback, refresh, services.groups.delete_group(id), Some(i18n.t("common.deleted")));
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
