//! How the local upstreams answer in `Mode::Agent`, as a coding agent's model would: asked to
//! "run the probe", call the agent's own shell tool; once the tool's result comes back, answer
//! with what it printed; otherwise answer plainly. The probe prints `burncloud-42` from a command
//! that does not contain it, so an answer holding it proves the agent really ran the tool.

use serde_json::{json, Value};

use crate::mock_state::REPLY;

/// What the user says to make the model call a tool.
pub const PROBE_PROMPT: &str = "run the probe";
/// What the probe prints: only a shell that ran `echo burncloud-$((6*7))` prints it.
pub const PROBE_OUTPUT: &str = "burncloud-42";
const PROBE_COMMAND: &str = "echo burncloud-$((6*7))";

/// The model's next move.
#[derive(Debug, PartialEq)]
pub enum AgentStep {
    Call { name: String, arguments: String },
    Answer(String),
}

/// A mock model's reply: its text and its tool calls (id, name, JSON arguments).
pub type Reply = (String, Vec<(String, String, String)>);

impl AgentStep {
    /// The step as a reply; a tool call gets `call_id`.
    pub fn into_reply(self, call_id: &str) -> Reply {
        match self {
            AgentStep::Call { name, arguments } => ("Running it.".into(), vec![(call_id.into(), name, arguments)]),
            AgentStep::Answer(text) => (text, Vec::new()),
        }
    }
}

/// The shell tools of the agents we drive (Codex: `exec_command` or `shell`; Claude Code: `Bash`;
/// Gemini CLI: `run_shell_command`) and the arguments each takes.
fn shell_call(tools: &[String]) -> Option<AgentStep> {
    let calls = [
        ("exec_command", json!({"cmd": PROBE_COMMAND})),
        ("shell", json!({"command": ["bash", "-lc", PROBE_COMMAND]})),
        ("Bash", json!({"command": PROBE_COMMAND, "description": "Print the probe marker"})),
        // Gemini CLI refuses `$(…)` in a command, arithmetic included: the marker is printed apart.
        (
            "run_shell_command",
            json!({"command": "printf 'burncloud-%d\\n' 42", "description": "Print the probe marker"}),
        ),
    ];
    calls
        .into_iter()
        .find(|(name, _)| tools.iter().any(|tool| tool == name))
        .map(|(name, arguments)| AgentStep::Call { name: name.to_string(), arguments: arguments.to_string() })
}

/// Decides from the conversation's end: the last tool result, if the last turn is one, the last
/// user text, and the names of the tools offered.
pub fn next_step(last_tool_output: Option<&str>, last_user_text: &str, tools: &[String]) -> AgentStep {
    if let Some(output) = last_tool_output {
        return AgentStep::Answer(format!("The probe printed: {}", output.trim()));
    }
    if last_user_text.contains(PROBE_PROMPT) {
        if let Some(call) = shell_call(tools) {
            return call;
        }
    }
    AgentStep::Answer(REPLY.to_string())
}

/// The text of a content value: a string, or the `text` of its parts (nested tool results too).
pub fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .map(|part| match part.get("text") {
                Some(Value::String(text)) => text.clone(),
                _ => part.get("content").map(text_of).unwrap_or_default(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The names of the tools a request offers, each at `name_at` (a JSON pointer) in its tool.
fn tool_names(request: &Value, name_at: &str) -> Vec<String> {
    let tools = request.get("tools").and_then(Value::as_array).into_iter().flatten();
    tools.filter_map(|tool| tool.pointer(name_at).and_then(Value::as_str).map(String::from)).collect()
}

/// The agent step for an OpenAI chat request.
pub fn for_chat(request: &Value) -> AgentStep {
    let messages = request.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let tool_output = (last["role"] == "tool").then(|| text_of(&last["content"]));
    let user = messages.iter().rev().find(|m| m["role"] == "user").map(|m| text_of(&m["content"])).unwrap_or_default();
    next_step(tool_output.as_deref(), &user, &tool_names(request, "/function/name"))
}

/// The agent step for an Anthropic Messages request.
pub fn for_anthropic(request: &Value) -> AgentStep {
    let messages = request.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let blocks = last["content"].as_array().cloned().unwrap_or_default();
    let tool_output = blocks
        .iter()
        .find(|b| b["type"] == "tool_result")
        .map(|b| text_of(&b["content"]))
        .filter(|_| last["role"] == "user");
    let user = messages
        .iter()
        .rev()
        .filter(|m| m["role"] == "user")
        .map(|m| text_of(&m["content"]))
        .find(|text| !text.trim().is_empty())
        .unwrap_or_default();
    next_step(tool_output.as_deref(), &user, &tool_names(request, "/name"))
}

/// A value that fits a JSON schema, for answers asked for in a structured format.
pub fn sample_of(schema: &Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => Value::Object(
            schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(name, property)| (name.clone(), sample_of(property)))
                .collect(),
        ),
        Some("array") => json!([sample_of(schema.get("items").unwrap_or(&Value::Null))]),
        Some("string") => json!("Paris"),
        Some("integer" | "number") => json!(1),
        Some("boolean") => json!(true),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_called_once_then_answered() {
        let tools = vec!["write_stdin".to_string(), "exec_command".to_string()];
        let step = next_step(None, "please run the probe", &tools);
        assert!(
            matches!(&step, AgentStep::Call { name, arguments } if name == "exec_command" && arguments.contains("6*7"))
        );
        assert_eq!(
            next_step(Some("burncloud-42\n"), "please run the probe", &tools),
            AgentStep::Answer("The probe printed: burncloud-42".into())
        );
        assert_eq!(next_step(None, "hello", &tools), AgentStep::Answer(REPLY.into()));
        assert_eq!(next_step(None, "run the probe", &["Read".to_string()]), AgentStep::Answer(REPLY.into()));
    }
}
