//! Turning form text into values, and the feedback line every form shows.

use std::collections::BTreeMap;

use crate::Refresh;
use dioxus::prelude::*;

/// Model names from a textarea: one per line or comma-separated.
pub fn parse_list(text: &str) -> Vec<String> {
    text.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// `requested=upstream` lines.
pub fn parse_mapping(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut mapping = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (from, to) = line.split_once('=').ok_or_else(|| format!("“{line}”: use requested=upstream"))?;
        mapping.insert(from.trim().to_string(), to.trim().to_string());
    }
    Ok(mapping)
}

pub fn mapping_text(mapping: &BTreeMap<String, String>) -> String {
    mapping.iter().map(|(from, to)| format!("{from}={to}")).collect::<Vec<_>>().join("\n")
}

/// An optional positive integer field: empty means none.
pub fn parse_optional_int(text: &str, what: &str) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| format!("{what}: “{text}” is not a whole number"))
}

/// The result of the last action, shown above a form or list.
#[derive(Clone, Debug, PartialEq)]
pub enum Feedback {
    Idle,
    Busy,
    Done(String),
    Failed(String),
}

#[component]
pub fn FeedbackLine(feedback: Feedback) -> Element {
    match feedback {
        Feedback::Done(message) => rsx! { div { class: "notice ok", role: "status", "{message}" } },
        Feedback::Failed(message) => rsx! { div { class: "notice bad", role: "alert", "{message}" } },
        Feedback::Idle | Feedback::Busy => rsx! {},
    }
}

/// Shows how an action went and, when it worked, reloads every view of what it changed; `done`
/// is the message for success (none keeps the line as it was).
pub fn settle<E: std::fmt::Display>(
    mut feedback: Signal<Feedback>,
    refresh: Refresh,
    outcome: Result<(), E>,
    done: Option<&str>,
) {
    match outcome {
        Ok(()) => {
            if let Some(message) = done {
                feedback.set(Feedback::Done(message.to_string()));
            }
            refresh.bump();
        }
        Err(error) => feedback.set(Feedback::Failed(error.to_string())),
    }
}

/// Ends a form's save: when it worked, closes the form (`draft` back to none), shows `done` (none
/// clears the line) and reloads every view of what changed; when it failed, keeps the form open
/// with the reason.
pub fn save_and_close<D: 'static, E: std::fmt::Display>(
    mut draft: Signal<Option<D>>,
    mut feedback: Signal<Feedback>,
    refresh: Refresh,
    outcome: Result<(), E>,
    done: Option<&str>,
) {
    if outcome.is_ok() {
        draft.set(None);
        if done.is_none() {
            feedback.set(Feedback::Idle);
        }
    }
    settle(feedback, refresh, outcome, done);
}

/// The first click on a row's delete button arms it; a second click on the same row confirms.
pub fn confirmed(mut armed: Signal<Option<i64>>, id: i64) -> bool {
    if armed() == Some(id) {
        armed.set(None);
        true
    } else {
        armed.set(Some(id));
        false
    }
}

/// `text` as a JavaScript string literal: quotes, backslashes, control and non-ASCII characters
/// escaped as UTF-16 `\uXXXX`, so any text survives.
pub fn js_string(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('"');
    for unit in text.encode_utf16() {
        match unit {
            0x22 => literal.push_str("\\\""),
            0x5c => literal.push_str("\\\\"),
            0x20..=0x7e => literal.push(char::from(unit as u8)),
            _ => literal.push_str(&format!("\\u{unit:04x}")),
        }
    }
    literal.push('"');
    literal
}

/// Copies `text` to the clipboard, in the window and in a browser. The asynchronous clipboard API
/// exists only on secure origins (localhost, https); a browser on another machine reaching
/// `serve` over plain http gets the older selection-and-copy path.
pub fn copy_to_clipboard(text: &str) {
    let literal = js_string(text);
    document::eval(&format!(
        r#"(function (text) {{
  function select_and_copy() {{
    const area = document.createElement("textarea");
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try {{ document.execCommand("copy"); }} finally {{ area.remove(); }}
  }}
  if (navigator.clipboard && window.isSecureContext) {{
    navigator.clipboard.writeText(text).catch(select_and_copy);
  }} else {{
    select_and_copy();
  }}
}})({literal});"#
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_form_text() {
        assert_eq!(parse_list("a, b\nc\n\n"), vec!["a", "b", "c"]);
        let mapping = parse_mapping("fast = gpt-4o-mini\n\nsmart=gpt-4o").unwrap();
        assert_eq!(mapping_text(&mapping), "fast=gpt-4o-mini\nsmart=gpt-4o");
        assert!(parse_mapping("nonsense").is_err());
        assert_eq!(parse_optional_int(" 60 ", "rpm"), Ok(Some(60)));
        assert_eq!(parse_optional_int("", "rpm"), Ok(None));
        assert!(parse_optional_int("many", "rpm").is_err());
    }

    #[test]
    fn any_text_becomes_a_javascript_string_literal() {
        assert_eq!(js_string("sk-bc-abc"), "\"sk-bc-abc\"");
        assert_eq!(js_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000ad\"");
        assert_eq!(js_string("模型😀"), "\"\\u6a21\\u578b\\ud83d\\ude00\"");
        assert_eq!(js_string("é\u{7f}"), "\"\\u00e9\\u007f\"");
    }
}
