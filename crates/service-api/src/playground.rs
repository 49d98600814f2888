//! The playground: talk to any model the gateway serves, cloud or local, and see what each answer
//! took. Its calls go through the gateway under a built-in token, so they are routed, limited,
//! logged and priced like every other call.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{Money, ServiceFuture};

/// The settings key holding the built-in playground token's key (sealed at rest).
pub const PLAYGROUND_TOKEN_SETTING: &str = "playground_token_key";
/// The name of the built-in token the playground calls with.
pub const PLAYGROUND_TOKEN_NAME: &str = "Playground";

/// A model the playground can call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlaygroundModel {
    pub id: String,
    /// The kind of channel serving it: `openai`, `anthropic`, `local`, ...
    pub owned_by: String,
}

/// One turn of the conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatTurn {
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
}

/// A playground call: the conversation so far and the settings it is sent with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlaygroundRequest {
    pub model: String,
    pub system: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub turns: Vec<ChatTurn>,
}

impl PlaygroundRequest {
    /// The `/v1/chat/completions` body the playground sends: streamed, with usage.
    pub fn body(&self) -> Value {
        let mut messages = Vec::new();
        if let Some(system) = self.system.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.extend(self.turns.iter().map(|turn| json!({"role": turn.role, "content": turn.content})));
        let mut body = json!({"model": self.model, "messages": messages, "stream": true,
            "stream_options": {"include_usage": true}});
        if let Some(temperature) = self.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(max_tokens) = self.max_tokens {
            body["max_tokens"] = json!(max_tokens);
        }
        body
    }

    /// The same call as a shell command, for the gateway at `listen`, with the caller's own token.
    pub fn as_curl(&self, listen: &str) -> String {
        let body = serde_json::to_string_pretty(&self.body()).unwrap_or_default().replace('\'', r"'\''");
        format!(
            "curl http://{listen}/v1/chat/completions \\\n  -H \"Authorization: Bearer $BURNCLOUD_TOKEN\" \\\n  -H \"Content-Type: application/json\" \\\n  -d '{body}'"
        )
    }

    /// The same call with the official `openai` Python package.
    pub fn as_python(&self, listen: &str) -> String {
        let body = self.body();
        let messages = serde_json::to_string_pretty(&body["messages"]).unwrap_or_default();
        let mut options = String::new();
        if let Some(temperature) = self.temperature {
            options.push_str(&format!("    temperature={temperature},\n"));
        }
        if let Some(max_tokens) = self.max_tokens {
            options.push_str(&format!("    max_tokens={max_tokens},\n"));
        }
        format!(
            "import os\nfrom openai import OpenAI\n\nclient = OpenAI(base_url=\"http://{listen}/v1\", api_key=os.environ[\"BURNCLOUD_TOKEN\"])\nstream = client.chat.completions.create(\n    model={model},\n    messages={messages},\n{options}    stream=True,\n)\nfor chunk in stream:\n    if chunk.choices and chunk.choices[0].delta.content:\n        print(chunk.choices[0].delta.content, end=\"\", flush=True)\nprint()\n",
            model = serde_json::to_string(&self.model).unwrap_or_default(),
            messages = messages.replace("\n", "\n    "),
        )
    }
}

/// What one answer took.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlaygroundStats {
    pub request_id: String,
    pub first_token_ms: Option<u64>,
    pub total_ms: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// What the call was charged, from its log row; absent when the model has no price.
    pub cost: Option<Money>,
}

impl PlaygroundStats {
    /// Completion tokens per second after the first one arrived.
    pub fn tokens_per_second(&self) -> Option<f64> {
        let first = self.first_token_ms?;
        let generating = self.total_ms.saturating_sub(first);
        (generating > 0 && self.completion_tokens > 1)
            .then(|| (self.completion_tokens - 1) as f64 * 1000.0 / generating as f64)
    }
}

/// What arrives while an answer streams in.
#[derive(Clone, Debug, PartialEq)]
pub enum PlaygroundEvent {
    /// The next piece of the answer.
    Text(String),
    /// The answer is complete.
    Finished(PlaygroundStats),
    /// The call failed: the gateway's (or the upstream's) message.
    Failed(String),
}

/// The playground's way into the gateway.
pub trait PlaygroundService: Send + Sync {
    /// Every model the gateway serves (local deployments included, loaded or not).
    fn models(&self) -> ServiceFuture<Vec<PlaygroundModel>>;
    /// Sends the call and streams the answer; dropping the receiver stops it (the call is then
    /// logged as cancelled by the client).
    fn chat(&self, request: PlaygroundRequest) -> tokio::sync::mpsc::Receiver<PlaygroundEvent>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> PlaygroundRequest {
        PlaygroundRequest {
            model: "deepseek-chat".into(),
            system: Some("Be brief.".into()),
            temperature: Some(0.2),
            max_tokens: Some(64),
            turns: vec![ChatTurn { role: "user".into(), content: "It's 2 o'clock".into() }],
        }
    }

    #[test]
    fn the_body_and_both_snippets_are_the_same_call() {
        let body = request().body();
        assert_eq!(body["messages"][0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(body["messages"][1]["content"], "It's 2 o'clock");
        assert_eq!((body["stream"].clone(), body["max_tokens"].clone()), (json!(true), json!(64)));
        let curl = request().as_curl("127.0.0.1:3000");
        assert!(curl.starts_with("curl http://127.0.0.1:3000/v1/chat/completions"), "{curl}");
        assert!(curl.contains(r"It'\''s 2 o'\''clock"), "single quotes survive the shell: {curl}");
        let python = request().as_python("127.0.0.1:3000");
        assert!(python.contains("model=\"deepseek-chat\"") && python.contains("temperature=0.2"), "{python}");
        assert!(python.contains("max_tokens=64") && python.contains("\"It's 2 o'clock\""), "{python}");
    }

    #[test]
    fn speed_counts_tokens_after_the_first() {
        let stats =
            PlaygroundStats { first_token_ms: Some(200), total_ms: 1200, completion_tokens: 51, ..Default::default() };
        assert_eq!(stats.tokens_per_second(), Some(50.0));
        assert_eq!(PlaygroundStats::default().tokens_per_second(), None);
    }
}
