//! The playground page: pick any model the gateway serves (a cloud channel or a local model,
//! loaded or not), set a system prompt, temperature and length, and talk to it. Answers stream in
//! as Markdown and can be stopped; under each one: time to first token, tokens per second, tokens
//! and cost. "Copy as curl" and "Copy as Python" give the exact call. The conversation lives in
//! memory only.

mod markdown;

use burncloud_client::forms::{copy_to_clipboard, Feedback, FeedbackLine};
use burncloud_client::{millis, money_exact, use_i18n, use_services, ErrorNotice};
use burncloud_service_api::{ChatTurn, PlaygroundEvent, PlaygroundRequest, PlaygroundStats};
use dioxus::core::Task;
use dioxus::prelude::*;

pub use markdown::to_html as markdown_to_html;

/// One exchange's answer, as it streams in.
#[derive(Clone, Debug, Default, PartialEq)]
struct Answer {
    text: String,
    stats: Option<PlaygroundStats>,
    error: Option<String>,
    streaming: bool,
    stopped: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Entry {
    User(String),
    Assistant(Answer),
}

/// The settings a call is sent with, as typed.
#[derive(Clone, Debug, Default, PartialEq)]
struct Settings {
    model: String,
    system: String,
    temperature: String,
    max_tokens: String,
}

fn request_of(settings: &Settings, conversation: &[Entry], next: &str) -> Result<PlaygroundRequest, String> {
    if settings.model.is_empty() {
        return Err("choose a model".into());
    }
    let temperature = match settings.temperature.trim() {
        "" => None,
        text => Some(
            text.parse::<f64>()
                .ok()
                .filter(|t| (0.0..=2.0).contains(t))
                .ok_or_else(|| format!("temperature: '{text}' is not a number from 0 to 2"))?,
        ),
    };
    let max_tokens = match settings.max_tokens.trim() {
        "" => None,
        text => Some(
            text.parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("max tokens: '{text}' is not a whole number above 0"))?,
        ),
    };
    let mut turns: Vec<ChatTurn> = conversation
        .iter()
        .filter_map(|entry| match entry {
            Entry::User(text) => Some(ChatTurn { role: "user".into(), content: text.clone() }),
            Entry::Assistant(answer) if answer.error.is_none() && !answer.text.is_empty() => {
                Some(ChatTurn { role: "assistant".into(), content: answer.text.clone() })
            }
            Entry::Assistant(_) => None,
        })
        .collect();
    turns.push(ChatTurn { role: "user".into(), content: next.to_string() });
    Ok(PlaygroundRequest {
        model: settings.model.clone(),
        system: Some(settings.system.clone()).filter(|s| !s.trim().is_empty()),
        temperature,
        max_tokens,
        turns,
    })
}

fn update_last(mut conversation: Signal<Vec<Entry>>, change: impl FnOnce(&mut Answer)) {
    if let Some(Entry::Assistant(answer)) = conversation.write().last_mut() {
        change(answer);
    }
}

#[component]
pub fn Playground() -> Element {
    let services = use_services();
    let i18n = use_i18n();
    let mut settings = use_signal(Settings::default);
    let mut input = use_signal(String::new);
    let mut conversation = use_signal(Vec::<Entry>::new);
    let mut running = use_signal(|| None::<Task>);
    let mut last_request = use_signal(|| None::<PlaygroundRequest>);
    let mut feedback = use_signal(|| Feedback::Idle);

    let model_services = services.clone();
    let models = use_resource(move || {
        let services = model_services.clone();
        async move { services.playground.models().await }
    });
    // The first model is chosen until the user picks one.
    use_effect(move || {
        if let Some(Ok(list)) = &*models.read() {
            if settings.peek().model.is_empty() {
                if let Some(first) = list.first() {
                    settings.write().model = first.id.clone();
                }
            }
        }
    });

    let chat_services = services.clone();
    let send = move || {
        let text = input().trim().to_string();
        if text.is_empty() || running().is_some() {
            return;
        }
        let request = match request_of(&settings(), &conversation(), &text) {
            Ok(request) => request,
            Err(message) => {
                feedback.set(Feedback::Failed(message));
                return;
            }
        };
        feedback.set(Feedback::Idle);
        input.set(String::new());
        last_request.set(Some(request.clone()));
        conversation.write().push(Entry::User(text));
        conversation.write().push(Entry::Assistant(Answer { streaming: true, ..Answer::default() }));
        let mut events = chat_services.playground.chat(request);
        let task = spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    PlaygroundEvent::Text(piece) => update_last(conversation, |a| a.text.push_str(&piece)),
                    PlaygroundEvent::Finished(stats) => update_last(conversation, |a| a.stats = Some(stats)),
                    PlaygroundEvent::Failed(message) => update_last(conversation, |a| a.error = Some(message)),
                }
            }
            update_last(conversation, |a| a.streaming = false);
            running.set(None);
        });
        running.set(Some(task));
    };
    let stop = move |_| {
        if let Some(task) = running.take() {
            // Dropping the stream ends the call; the gateway logs it as cancelled by the client.
            task.cancel();
            update_last(conversation, |a| {
                a.streaming = false;
                a.stopped = true;
            });
        }
    };
    let listen = services.info.listen.clone();
    let curl_listen = listen.clone();

    rsx! {
        div { class: "page-head",
            div {
                h1 { class: "page-title", {i18n.t("play.title")} }
                div { class: "page-sub", {i18n.t("play.subtitle")} }
            }
        }
        FeedbackLine { feedback: feedback() }
        div { class: "card", id: "playground-settings",
            div { class: "form",
                label { {i18n.t("play.model")} }
                match &*models.read() {
                    None => rsx! { span { class: "muted", {i18n.t("common.loading")} } },
                    Some(Err(error)) => rsx! { ErrorNotice { message: error.to_string() } },
                    Some(Ok(list)) if list.is_empty() => rsx! { span { class: "hint", id: "playground-no-models", {i18n.t("play.no_models")} } },
                    Some(Ok(list)) => rsx! {
                        select { name: "model", id: "playground-model", onchange: move |e| settings.write().model = e.value(),
                            for model in list.iter() {
                                option { key: "{model.id}", value: "{model.id}", selected: settings().model == model.id,
                                    {format!("{} ({})", model.id, model.owned_by)} }
                            }
                        }
                    },
                }
                label { {i18n.t("play.system")} }
                textarea { name: "system", id: "playground-system", placeholder: i18n.t("play.system_hint"), value: "{settings().system}",
                    oninput: move |e| settings.write().system = e.value() }
                label { {i18n.t("play.temperature")} }
                input { name: "temperature", r#type: "number", step: "0.1", placeholder: i18n.t("play.default"),
                    value: "{settings().temperature}", oninput: move |e| settings.write().temperature = e.value() }
                label { {i18n.t("play.max_tokens")} }
                input { name: "max_tokens", r#type: "number", placeholder: i18n.t("play.default"),
                    value: "{settings().max_tokens}", oninput: move |e| settings.write().max_tokens = e.value() }
            }
        }
        div { class: "card", id: "playground-conversation",
            if conversation().is_empty() {
                p { class: "hint", {i18n.t("play.empty")} }
            }
            for (index, entry) in conversation().into_iter().enumerate() {
                match entry {
                    Entry::User(text) => rsx! {
                        div { key: "{index}", class: "turn user", div { class: "turn-role", {i18n.t("play.you")} } div { class: "turn-text", "{text}" } }
                    },
                    Entry::Assistant(answer) => rsx! {
                        AnswerView { key: "{index}", answer }
                    },
                }
            }
            div { class: "composer",
                textarea { name: "message", id: "playground-input", placeholder: i18n.t("play.placeholder"), value: "{input}",
                    oninput: move |e| input.set(e.value()),
                    onkeydown: {
                        let mut send = send.clone();
                        move |e: KeyboardEvent| {
                            if e.key() == Key::Enter && e.modifiers().ctrl() {
                                send();
                            }
                        }
                    }
                }
                div { class: "row",
                    if running().is_some() {
                        button { class: "btn danger", id: "playground-stop", onclick: stop, {i18n.t("play.stop")} }
                    } else {
                        button { class: "btn primary", id: "playground-send", onclick: {
                                let mut send = send.clone();
                                move |_| send()
                            }, {i18n.t("play.send")} }
                    }
                    button { class: "btn", id: "playground-clear", disabled: running().is_some(),
                        onclick: move |_| { conversation.write().clear(); last_request.set(None); }, {i18n.t("play.clear")} }
                    span { class: "spacer" }
                    if let Some(request) = last_request() {
                        button { class: "btn small", id: "playground-copy-curl", onclick: {
                                let (request, listen) = (request.clone(), curl_listen.clone());
                                move |_| { copy_to_clipboard(&request.as_curl(&listen)); feedback.set(Feedback::Done(i18n.t("play.copied").to_string())); }
                            }, {i18n.t("play.copy_curl")} }
                        button { class: "btn small", id: "playground-copy-python", onclick: {
                                let listen = listen.clone();
                                move |_| { copy_to_clipboard(&request.as_python(&listen)); feedback.set(Feedback::Done(i18n.t("play.copied").to_string())); }
                            }, {i18n.t("play.copy_python")} }
                    }
                }
                div { class: "hint", {i18n.t("play.logged")} }
            }
        }
    }
}

#[component]
fn AnswerView(answer: Answer) -> Element {
    let i18n = use_i18n();
    let services = use_services();
    let currency = services.account.account().map(|a| a.currency).ok();
    let html = markdown::to_html(&answer.text);
    rsx! {
        div { class: "turn assistant", "data-streaming": "{answer.streaming}",
            div { class: "turn-role", {i18n.t("play.assistant")} }
            div { class: "turn-text markdown", dangerous_inner_html: "{html}" }
            if answer.streaming && answer.text.is_empty() {
                div { class: "hint", {i18n.t("play.waiting")} }
            }
            if let Some(error) = answer.error.clone() {
                div { class: "notice bad", "{error}" }
            }
            if answer.stopped {
                div { class: "hint", {i18n.t("play.stopped")} }
            }
            if let Some(stats) = answer.stats.clone() {
                div { class: "turn-stats",
                    if let Some(first) = stats.first_token_ms {
                        span { {format!("{} {}", i18n.t("play.first_token"), millis(first))} }
                    }
                    if let Some(speed) = stats.tokens_per_second() {
                        span { {format!("{speed:.1} {}", i18n.t("play.tokens_per_s"))} }
                    }
                    span { {format!("{} → {} {}", stats.prompt_tokens, stats.completion_tokens, i18n.t("play.tokens"))} }
                    match (stats.cost, currency) {
                        (Some(cost), Some(currency)) => rsx! { span { {format!("{} {}", i18n.t("play.cost"), money_exact(currency, cost))} } },
                        _ => rsx! { span { class: "muted", {i18n.t("play.unpriced")} } },
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_the_conversation_and_checks_the_settings() {
        let settings =
            Settings { model: "m".into(), system: " ".into(), temperature: "0.5".into(), max_tokens: "".into() };
        let conversation = vec![
            Entry::User("hi".into()),
            Entry::Assistant(Answer { text: "hello".into(), ..Answer::default() }),
            Entry::User("again".into()),
            Entry::Assistant(Answer { error: Some("503".into()), ..Answer::default() }),
        ];
        let request = request_of(&settings, &conversation, "third").unwrap();
        let roles: Vec<&str> = request.turns.iter().map(|t| t.role.as_str()).collect();
        assert_eq!(roles, ["user", "assistant", "user", "user"], "failed answers are left out");
        assert_eq!((request.system, request.temperature, request.max_tokens), (None, Some(0.5), None));
        let bad = Settings { temperature: "hot".into(), ..settings.clone() };
        assert!(request_of(&bad, &[], "x").unwrap_err().contains("temperature"));
        let bad = Settings { max_tokens: "0".into(), ..settings };
        assert!(request_of(&bad, &[], "x").unwrap_err().contains("max tokens"));
        assert!(request_of(&Settings::default(), &[], "x").is_err(), "a model is needed");
    }
}
