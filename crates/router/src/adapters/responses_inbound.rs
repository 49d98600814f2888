//! BurnCloud's OpenAI Responses endpoint (`/v1/responses`) in front of channels that speak chat:
//! Responses requests in, converted to chat requests; chat answers and chunks converted back into
//! a Responses object and its typed stream events (`response.created` … `response.completed`).

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::{now_seconds, text_of, Unconvertible};
use crate::usage::{usage_of_value, Usage};

/// Tools that OpenAI runs on its own side; a chat channel cannot run them.
const HOSTED_TOOLS: [&str; 11] = [
    "web_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "file_search",
    "computer_use_preview",
    "computer_use",
    "code_interpreter",
    "image_generation",
    "mcp",
    "local_shell",
    "shell",
];

/// What a function tool was called in the request, so that answers name it the same way.
#[derive(Clone, Debug, Default)]
pub struct ToolNames {
    /// Chat function name → the Responses namespace it came from.
    namespaces: HashMap<String, String>,
    /// Chat function names that stand for custom (free-form input) tools.
    custom: Vec<String>,
}

impl ToolNames {
    fn output_item(&self, id: &str, call_id: &str, name: &str, arguments: &str) -> Value {
        if self.custom.iter().any(|custom| custom == name) {
            let input = serde_json::from_str::<Value>(arguments)
                .ok()
                .and_then(|args| args.get("input").and_then(Value::as_str).map(String::from))
                .unwrap_or_else(|| arguments.to_string());
            return json!({"type": "custom_tool_call", "id": id, "call_id": call_id, "name": name,
                          "input": input, "status": "completed"});
        }
        let mut item = json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
                              "arguments": arguments, "status": "completed"});
        if let Some(namespace) = self.namespaces.get(name) {
            item["namespace"] = json!(namespace);
        }
        item
    }
}

/// A Responses request turned into a chat request, with what the answer needs to mirror it.
#[derive(Debug)]
pub struct Converted {
    pub chat: Map<String, Value>,
    pub tools: ToolNames,
}

/// The request's `input` as a list of items: a string is one user message; a list is borrowed.
pub fn input_items(request: &Map<String, Value>) -> Result<Cow<'_, [Value]>, Unconvertible> {
    match request.get("input") {
        None | Some(Value::Null) => Ok(Cow::Borrowed(&[])),
        Some(Value::String(text)) => Ok(Cow::Owned(vec![
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}),
        ])),
        Some(Value::Array(items)) => Ok(Cow::Borrowed(items)),
        Some(_) => Err(Unconvertible("input must be a string or a list of items".into())),
    }
}

/// The part of a response ID its items' IDs are made from (`resp_X` → `X`).
fn id_suffix(response_id: &str) -> &str {
    response_id.trim_start_matches("resp_")
}

/// A message's content as chat content: text parts and images.
fn chat_content(content: &Value) -> Result<Value, Unconvertible> {
    let Value::Array(parts) = content else {
        return Ok(json!(text_of(content)));
    };
    let mut out = Vec::new();
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => {
                out.push(json!({"type": "text", "text": part.get("text").cloned().unwrap_or(json!(""))}))
            }
            Some("refusal") => {
                out.push(json!({"type": "text", "text": part.get("refusal").cloned().unwrap_or(json!(""))}))
            }
            Some("input_image") => {
                let url = part.get("image_url").and_then(Value::as_str).ok_or_else(|| {
                    Unconvertible("an input_image needs an image_url (a URL or a data: URL); file_id is not supported through this channel".into())
                })?;
                let mut image = json!({"url": url});
                if let Some(detail) = part.get("detail").filter(|d| d.is_string()) {
                    image["detail"] = detail.clone();
                }
                out.push(json!({"type": "image_url", "image_url": image}));
            }
            Some(other) => {
                return Err(Unconvertible(format!(
                    "content parts of type {other:?} are not supported through this channel"
                )))
            }
            None => return Err(Unconvertible("a content part has no type".into())),
        }
    }
    Ok(Value::Array(out))
}

/// Adds a tool call to the assistant turn it belongs to: the last message if it is an assistant
/// turn (text then calls, or parallel calls), otherwise a new one.
fn push_tool_call(messages: &mut Vec<Value>, call: Value) {
    if let Some(last) = messages.last_mut().filter(|m| m["role"] == "assistant") {
        match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
            Some(calls) => calls.push(call),
            None => last["tool_calls"] = json!([call]),
        }
        return;
    }
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
}

fn tool_output_text(output: Option<&Value>) -> String {
    match output {
        Some(Value::String(text)) => text.clone(),
        Some(other @ Value::Array(_)) => text_of(other),
        Some(other) if !other.is_null() => other.to_string(),
        _ => String::new(),
    }
}

/// Chat messages for a list of Responses input items.
fn chat_messages(items: &[Value], messages: &mut Vec<Value>) -> Result<(), Unconvertible> {
    for item in items {
        let kind =
            item.get("type").and_then(Value::as_str).unwrap_or(if item.get("role").is_some() { "message" } else { "" });
        match kind {
            "message" => {
                let role = match item.get("role").and_then(Value::as_str) {
                    Some("user") => "user",
                    Some("assistant") => "assistant",
                    // Not every chat server knows `developer`; `system` means the same to all.
                    Some("system" | "developer") => "system",
                    other => {
                        return Err(Unconvertible(format!(
                            "input message role {other:?} is not user, assistant, system or developer"
                        )))
                    }
                };
                let content = chat_content(item.get("content").unwrap_or(&Value::Null))?;
                let content = match (role, content) {
                    // Chat wants plain text from system and assistant turns.
                    ("system" | "assistant", content @ Value::Array(_)) => json!(text_of(&content)),
                    (_, content) => content,
                };
                messages.push(json!({"role": role, "content": content}));
            }
            "function_call" | "custom_tool_call" => {
                let call_id = item.get("call_id").and_then(Value::as_str).unwrap_or_default();
                let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                let arguments = match kind {
                    "function_call" => item.get("arguments").and_then(Value::as_str).unwrap_or("{}").to_string(),
                    _ => json!({"input": item.get("input").and_then(Value::as_str).unwrap_or_default()}).to_string(),
                };
                push_tool_call(
                    messages,
                    json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}),
                );
            }
            "function_call_output" | "custom_tool_call_output" => messages.push(json!({"role": "tool",
                "tool_call_id": item.get("call_id").cloned().unwrap_or(json!("")),
                "content": tool_output_text(item.get("output"))})),
            // Reasoning belongs to the model that wrote it; chat servers take none back.
            "reasoning" => {}
            "compaction" => {
                let summary = compaction_summary(item)?;
                messages.push(
                    json!({"role": "assistant", "content": format!("Summary of our conversation so far:\n{summary}")}),
                );
            }
            "item_reference" => {
                return Err(Unconvertible("item_reference items are not supported; send the items themselves".into()))
            }
            "" => return Err(Unconvertible("an input item has no type".into())),
            other => {
                return Err(Unconvertible(format!(
                    "input items of type {other:?} are not supported through this channel"
                )))
            }
        }
    }
    Ok(())
}

fn chat_function(tool: &Value) -> Value {
    let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
    let mut function = json!({"name": name,
        "parameters": tool.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}}))});
    if let Some(description) = tool.get("description").filter(|d| d.is_string()) {
        function["description"] = description.clone();
    }
    if let Some(strict) = tool.get("strict").filter(|s| s.is_boolean()) {
        function["strict"] = strict.clone();
    }
    json!({"type": "function", "function": function})
}

/// Function, custom and namespaced tools as chat functions; a hosted tool is refused.
fn chat_tools(tools: &[Value], names: &mut ToolNames) -> Result<Vec<Value>, Unconvertible> {
    let mut out = Vec::new();
    for tool in tools {
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => out.push(chat_function(tool)),
            Some("namespace") => {
                let namespace = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                let inner = chat_tools(tool.get("tools").and_then(Value::as_array).map_or(&[], Vec::as_slice), names)?;
                for function in &inner {
                    if let Some(name) = function.pointer("/function/name").and_then(Value::as_str) {
                        names.namespaces.insert(name.to_string(), namespace.to_string());
                    }
                }
                out.extend(inner);
            }
            Some("custom") => {
                let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                names.custom.push(name.to_string());
                let description = tool.get("description").and_then(Value::as_str).unwrap_or_default();
                out.push(json!({"type": "function", "function": {"name": name, "description": description,
                    "parameters": {"type": "object", "properties": {"input": {"type": "string",
                        "description": "The tool's whole input, as free-form text."}}, "required": ["input"]}}}));
            }
            Some(hosted) if HOSTED_TOOLS.contains(&hosted) || hosted.starts_with("web_search") => {
                return Err(Unconvertible(format!(
                    "the hosted tool {hosted:?} runs only on OpenAI's own servers, and this model's channel speaks chat completions; remove it from tools (Codex: web_search = \"disabled\")"
                )))
            }
            other => return Err(Unconvertible(format!("tools of type {other:?} are not supported"))),
        }
    }
    Ok(out)
}

/// A Responses request as a chat request (a stored conversation it continues is already among its
/// input items).
pub fn to_chat(request: &Map<String, Value>) -> Result<Converted, Unconvertible> {
    if request.get("background") == Some(&Value::Bool(true)) {
        return Err(Unconvertible("background responses are not supported through this channel".into()));
    }
    let mut messages = Vec::new();
    if let Some(instructions) = request.get("instructions").and_then(Value::as_str).filter(|i| !i.is_empty()) {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    chat_messages(&input_items(request)?, &mut messages)?;
    let mut chat = Map::new();
    chat.insert("model".into(), request.get("model").cloned().unwrap_or(Value::Null));
    chat.insert("messages".into(), Value::Array(messages));
    let mut names = ToolNames::default();
    if let Some(tools) = request.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty()) {
        let tools = chat_tools(tools, &mut names)?;
        if !tools.is_empty() {
            chat.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(choice) = request.get("tool_choice") {
        let converted = match choice {
            Value::String(mode) if ["auto", "none", "required"].contains(&mode.as_str()) => Some(choice.clone()),
            Value::Object(object) => match object.get("type").and_then(Value::as_str) {
                Some("function" | "custom") => {
                    object.get("name").map(|name| json!({"type": "function", "function": {"name": name}}))
                }
                Some("allowed_tools") => object.get("mode").cloned(),
                other => {
                    return Err(Unconvertible(format!(
                        "tool_choice of type {other:?} names a hosted tool this channel cannot run"
                    )))
                }
            },
            _ => None,
        };
        if let Some(converted) = converted.filter(|_| chat.contains_key("tools")) {
            chat.insert("tool_choice".into(), converted);
        }
    }
    if let Some(parallel) = request.get("parallel_tool_calls").filter(|p| p.is_boolean()) {
        if chat.contains_key("tools") {
            chat.insert("parallel_tool_calls".into(), parallel.clone());
        }
    }
    if let Some(max) = request.get("max_output_tokens").filter(|m| m.is_u64()) {
        chat.insert("max_tokens".into(), max.clone());
    }
    for key in ["temperature", "top_p", "user"] {
        if let Some(value) = request.get(key).filter(|v| !v.is_null()) {
            chat.insert(key.into(), value.clone());
        }
    }
    if let Some(format) = request.get("text").and_then(|t| t.get("format")) {
        match format.get("type").and_then(Value::as_str) {
            Some("json_schema") => {
                let mut schema = json!({"name": format.get("name").cloned().unwrap_or(json!("response")),
                    "schema": format.get("schema").cloned().unwrap_or(json!({}))});
                for key in ["strict", "description"] {
                    if let Some(value) = format.get(key).filter(|v| !v.is_null()) {
                        schema[key] = value.clone();
                    }
                }
                chat.insert("response_format".into(), json!({"type": "json_schema", "json_schema": schema}));
            }
            Some("json_object") => {
                chat.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("text") | None => {}
            Some(other) => return Err(Unconvertible(format!("text.format of type {other:?} is not supported"))),
        }
    }
    if request.get("stream") == Some(&Value::Bool(true)) {
        chat.insert("stream".into(), json!(true));
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Converted { chat, tools: names })
}

/// A new response ID, `resp_` then 32 hex digits that sort by time (the call's request ID digits).
pub fn response_id(request_id: &str) -> String {
    format!("resp_{}", request_id.strip_prefix("req-").unwrap_or(request_id))
}

/// The response object before any output: what the request asked for, echoed as OpenAI does.
pub fn skeleton(request: &Map<String, Value>, id: &str, model: &str) -> Value {
    let field = |key: &str, default: Value| request.get(key).cloned().filter(|v| !v.is_null()).unwrap_or(default);
    json!({
        "id": id, "object": "response", "created_at": now_seconds(), "status": "in_progress",
        "background": false, "error": null, "incomplete_details": null,
        "instructions": field("instructions", Value::Null),
        "max_output_tokens": field("max_output_tokens", Value::Null),
        "model": model, "output": [],
        "parallel_tool_calls": field("parallel_tool_calls", json!(true)),
        "previous_response_id": field("previous_response_id", Value::Null),
        "reasoning": field("reasoning", json!({"effort": null, "summary": null})),
        "store": field("store", json!(true)),
        "temperature": field("temperature", json!(1.0)),
        "text": field("text", json!({"format": {"type": "text"}})),
        "tool_choice": field("tool_choice", json!("auto")),
        "tools": field("tools", json!([])),
        "top_p": field("top_p", json!(1.0)),
        "truncation": field("truncation", json!("disabled")),
        "usage": null, "user": field("user", Value::Null), "metadata": field("metadata", json!({})),
    })
}

/// The Responses API's `usage` object.
pub fn responses_usage(usage: &Usage) -> Value {
    json!({"input_tokens": usage.prompt_tokens, "input_tokens_details": {"cached_tokens": usage.cached_tokens},
           "output_tokens": usage.completion_tokens,
           "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
           "total_tokens": usage.prompt_tokens + usage.completion_tokens})
}

/// Sets the status a chat finish reason stands for: `length` and `content_filter` leave the
/// response incomplete.
fn finish(response: &mut Value, finish_reason: Option<&str>) {
    let reason = match finish_reason {
        Some("length") => Some("max_output_tokens"),
        Some("content_filter") => Some("content_filter"),
        _ => None,
    };
    match reason {
        Some(reason) => {
            response["status"] = json!("incomplete");
            response["incomplete_details"] = json!({"reason": reason});
        }
        None => response["status"] = json!("completed"),
    }
}

fn reasoning_item(id: &str, text: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": [{"type": "summary_text", "text": text}]})
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
}

/// A chat completion as a Responses object, completing `skeleton`.
pub fn from_chat_response(body: &[u8], mut response: Value, tools: &ToolNames) -> Result<Value, Unconvertible> {
    let completion: Value =
        serde_json::from_slice(body).map_err(|e| Unconvertible(format!("the answer is not JSON: {e}")))?;
    let id = id_suffix(response["id"].as_str().unwrap_or("resp")).to_string();
    let choice = completion.pointer("/choices/0").cloned().unwrap_or(Value::Null);
    let message = &choice["message"];
    let mut output = Vec::new();
    if let Some(reasoning) = message.get("reasoning_content").and_then(Value::as_str).filter(|r| !r.is_empty()) {
        output.push(reasoning_item(&format!("rs_{id}"), reasoning));
    }
    if let Some(text) = message.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        output.push(message_item(&format!("msg_{id}"), text, "completed"));
    }
    for (index, call) in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let call_id = call.get("id").and_then(Value::as_str).filter(|c| !c.is_empty());
        let call_id = call_id.map_or_else(|| format!("call_{id}_{index}"), String::from);
        let name = call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default();
        let arguments = call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("{}");
        output.push(tools.output_item(&format!("fc_{id}_{index}"), &call_id, name, arguments));
    }
    response["output"] = Value::Array(output);
    finish(&mut response, choice.get("finish_reason").and_then(Value::as_str).or(Some("stop")));
    let usage = completion.get("usage").and_then(usage_of_value).unwrap_or_default();
    response["usage"] = responses_usage(&usage);
    Ok(response)
}

/// The output item the stream is writing now.
#[derive(Debug)]
enum Open {
    None,
    Reasoning { index: usize, item_id: String, text: String },
    Message { index: usize, item_id: String, text: String },
}

#[derive(Debug)]
struct ToolCall {
    output_index: usize,
    item_id: String,
    call_id: String,
    name: String,
    arguments: String,
}

/// Turns chat completion chunks into the Responses API's stream events as they arrive, and keeps
/// the finished response for `response.completed` (and for storing).
#[derive(Debug)]
pub struct ResponsesStreamWriter {
    response: Value,
    tools: ToolNames,
    id: String,
    sequence: u64,
    started: bool,
    open: Open,
    /// Chat tool call index → its output item.
    calls: Vec<(u64, ToolCall)>,
    /// Finished output items with their output index.
    output: Vec<(usize, Value)>,
    next_output: usize,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    done: bool,
}

impl ResponsesStreamWriter {
    pub fn new(skeleton: Value, tools: ToolNames) -> ResponsesStreamWriter {
        let id = id_suffix(skeleton["id"].as_str().unwrap_or("resp")).to_string();
        ResponsesStreamWriter {
            response: skeleton,
            tools,
            id,
            sequence: 0,
            started: false,
            open: Open::None,
            calls: Vec::new(),
            output: Vec::new(),
            next_output: 0,
            finish_reason: None,
            usage: None,
            done: false,
        }
    }

    fn event(&mut self, mut data: Value) -> Bytes {
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        let name = data["type"].as_str().unwrap_or("message").to_string();
        Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
    }

    fn start(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        // The response object is written out once for both events: it echoes the whole request's
        // settings (tools included), so it is the largest part of a stream's start.
        let response = self.response.to_string();
        for kind in ["response.created", "response.in_progress"] {
            let sequence = self.sequence;
            self.sequence += 1;
            out.push(Bytes::from(format!(
                "event: {kind}\ndata: {{\"type\":\"{kind}\",\"response\":{response},\"sequence_number\":{sequence}}}\n\n"
            )));
        }
    }

    /// A text delta event, written out directly: these are most of a stream's events.
    fn delta_event(&mut self, kind: &str, fields: &str, delta: &str, extra: &str) -> Bytes {
        let sequence = self.sequence;
        self.sequence += 1;
        let delta = Value::String(delta.to_string());
        Bytes::from(format!(
            "event: {kind}\ndata: {{\"type\":\"{kind}\",{fields},\"delta\":{delta}{extra},\"sequence_number\":{sequence}}}\n\n"
        ))
    }

    fn next_index(&mut self) -> usize {
        self.next_output += 1;
        self.next_output - 1
    }

    fn close(&mut self, out: &mut Vec<Bytes>) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Reasoning { index, item_id, text } => {
                let part = json!({"type": "summary_text", "text": text});
                out.push(self.event(json!({"type": "response.reasoning_summary_text.done", "item_id": item_id,
                    "output_index": index, "summary_index": 0, "text": text})));
                out.push(self.event(json!({"type": "response.reasoning_summary_part.done", "item_id": item_id,
                    "output_index": index, "summary_index": 0, "part": part})));
                let item = reasoning_item(&item_id, &text);
                out.push(self.event(json!({"type": "response.output_item.done", "output_index": index, "item": item})));
                self.output.push((index, item));
            }
            Open::Message { index, item_id, text } => {
                let part = json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
                out.push(self.event(json!({"type": "response.output_text.done", "item_id": item_id,
                    "output_index": index, "content_index": 0, "text": text, "logprobs": []})));
                out.push(self.event(json!({"type": "response.content_part.done", "item_id": item_id,
                    "output_index": index, "content_index": 0, "part": part})));
                let item = message_item(&item_id, &text, "completed");
                out.push(self.event(json!({"type": "response.output_item.done", "output_index": index, "item": item})));
                self.output.push((index, item));
            }
        }
    }

    fn close_calls(&mut self, out: &mut Vec<Bytes>) {
        for (_, call) in std::mem::take(&mut self.calls) {
            let item = self.tools.output_item(&call.item_id, &call.call_id, &call.name, &call.arguments);
            if item["type"] == "function_call" {
                out.push(self.event(json!({"type": "response.function_call_arguments.done", "item_id": call.item_id,
                    "output_index": call.output_index, "name": call.name, "arguments": call.arguments})));
            } else {
                out.push(self.event(json!({"type": "response.custom_tool_call_input.done", "item_id": call.item_id,
                    "output_index": call.output_index, "input": item["input"]})));
            }
            out.push(
                self.event(
                    json!({"type": "response.output_item.done", "output_index": call.output_index, "item": item}),
                ),
            );
            self.output.push((call.output_index, item));
        }
    }

    fn reasoning_delta(&mut self, delta: &str, out: &mut Vec<Bytes>) {
        if !matches!(self.open, Open::Reasoning { .. }) {
            self.close(out);
            self.close_calls(out);
            let index = self.next_index();
            let item_id = format!("rs_{}_{index}", self.id);
            out.push(self.event(json!({"type": "response.output_item.added", "output_index": index,
                "item": {"type": "reasoning", "id": item_id, "summary": []}})));
            out.push(self.event(json!({"type": "response.reasoning_summary_part.added", "item_id": item_id,
                "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}})));
            self.open = Open::Reasoning { index, item_id, text: String::new() };
        }
        if let Open::Reasoning { index, item_id, text } = &mut self.open {
            text.push_str(delta);
            let fields = format!("\"item_id\":\"{item_id}\",\"output_index\":{index},\"summary_index\":0");
            out.push(self.delta_event("response.reasoning_summary_text.delta", &fields, delta, ""));
        }
    }

    fn text_delta(&mut self, delta: &str, out: &mut Vec<Bytes>) {
        if !matches!(self.open, Open::Message { .. }) {
            self.close(out);
            self.close_calls(out);
            let index = self.next_index();
            let item_id = format!("msg_{}_{index}", self.id);
            out.push(self.event(json!({"type": "response.output_item.added", "output_index": index,
                "item": {"type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": []}})));
            out.push(self.event(json!({"type": "response.content_part.added", "item_id": item_id,
                "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})));
            self.open = Open::Message { index, item_id, text: String::new() };
        }
        if let Open::Message { index, item_id, text } = &mut self.open {
            text.push_str(delta);
            let fields = format!("\"item_id\":\"{item_id}\",\"output_index\":{index},\"content_index\":0");
            out.push(self.delta_event("response.output_text.delta", &fields, delta, ",\"logprobs\":[]"));
        }
    }

    fn tool_call_delta(&mut self, call: &Value, out: &mut Vec<Bytes>) {
        let chat_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        if !self.calls.iter().any(|(i, _)| *i == chat_index) {
            self.close(out);
            let output_index = self.next_index();
            let call_id = call.get("id").and_then(Value::as_str).filter(|c| !c.is_empty());
            let call_id = call_id.map_or_else(|| format!("call_{}_{output_index}", self.id), String::from);
            let name = call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default().to_string();
            let item_id = format!("fc_{}_{output_index}", self.id);
            let mut item = self.tools.output_item(&item_id, &call_id, &name, "");
            item["status"] = json!("in_progress");
            if item["type"] == "custom_tool_call" {
                item["input"] = json!("");
            }
            out.push(
                self.event(json!({"type": "response.output_item.added", "output_index": output_index, "item": item})),
            );
            self.calls.push((chat_index, ToolCall { output_index, item_id, call_id, name, arguments: String::new() }));
        }
        let Some(arguments) = call.pointer("/function/arguments").and_then(Value::as_str).filter(|a| !a.is_empty())
        else {
            return;
        };
        let Some((_, open)) = self.calls.iter_mut().find(|(i, _)| *i == chat_index) else { return };
        open.arguments.push_str(arguments);
        let (item_id, output_index) = (open.item_id.clone(), open.output_index);
        // A custom tool's input is the `input` field of the arguments: it is sent whole when done.
        if !self.tools.custom.contains(&open.name) {
            out.push(self.event(json!({"type": "response.function_call_arguments.delta", "item_id": item_id,
                "output_index": output_index, "delta": arguments})));
        }
    }

    /// Responses events for one chat chunk's `data` (`[DONE]` ends the response).
    pub fn on_chunk(&mut self, data: &[u8]) -> Vec<Bytes> {
        if data == b"[DONE]" {
            return self.end();
        }
        let mut out = Vec::new();
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else { return out };
        if let Some(error) = chunk.get("error") {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("upstream error");
            return self.fail(message);
        }
        self.start(&mut out);
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = usage_of_value(usage);
        }
        let Some(choice) = chunk.pointer("/choices/0") else { return out };
        let delta = &choice["delta"];
        if let Some(reasoning) = delta.get("reasoning_content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            self.reasoning_delta(reasoning, &mut out);
        }
        if let Some(text) = delta.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            self.text_delta(text, &mut out);
        }
        for call in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            self.tool_call_delta(call, &mut out);
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        out
    }

    /// Closes every open item, then `response.completed` (or `response.incomplete`) with the
    /// whole response and its usage.
    pub fn end(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        self.start(&mut out);
        self.done = true;
        self.close(&mut out);
        self.close_calls(&mut out);
        self.output.sort_by_key(|(index, _)| *index);
        self.response["output"] = self.output.iter().map(|(_, item)| item.clone()).collect();
        finish(&mut self.response, self.finish_reason.as_deref().or(Some("stop")));
        self.response["usage"] = responses_usage(&self.usage.unwrap_or_default());
        let kind = if self.response["status"] == "incomplete" { "response.incomplete" } else { "response.completed" };
        let response = self.response.clone();
        out.push(self.event(json!({"type": kind, "response": response})));
        out
    }

    /// Ends the stream with an error: an `error` event, then `response.failed`.
    pub fn fail(&mut self, message: &str) -> Vec<Bytes> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        self.start(&mut out);
        self.done = true;
        out.push(self.event(json!({"type": "error", "code": "server_error", "message": message, "param": null})));
        self.response["status"] = json!("failed");
        self.response["error"] = json!({"code": "server_error", "message": message});
        let response = self.response.clone();
        out.push(self.event(json!({"type": "response.failed", "response": response})));
        out
    }

    /// The finished response, once `end` has run.
    pub fn response(&self) -> Option<&Value> {
        (self.done && self.response["status"] != "failed").then_some(&self.response)
    }
}

/// What marks a compaction item's `encrypted_content` as BurnCloud's own: the summary a chat model
/// wrote, hex-encoded. OpenAI's own compaction items are encrypted for OpenAI's models alone.
const COMPACTION_PREFIX: &str = "bc-compaction:v1:";

/// What BurnCloud asks a chat model for when a caller compacts a conversation.
const COMPACTION_PROMPT: &str = "Summarize the conversation so far for your own later use, in place of it: \
    the goal, what was done and found (files, commands, results), the decisions made, and what remains \
    to do. Keep every detail needed to continue; leave out pleasantries.";

fn compaction_summary(item: &Value) -> Result<String, Unconvertible> {
    let content = item.get("encrypted_content").and_then(Value::as_str).unwrap_or_default();
    let unreadable = || {
        Unconvertible("this compaction item was made by another provider's model and only it can read it; compact again through this channel".into())
    };
    let hex_text = content.strip_prefix(COMPACTION_PREFIX).ok_or_else(unreadable)?;
    let bytes = hex::decode(hex_text).map_err(|_| unreadable())?;
    String::from_utf8(bytes).map_err(|_| unreadable())
}

/// The request that asks a chat model to summarize a `/v1/responses/compact` call's conversation:
/// its input, then the request to summarize, with no tools to call.
pub fn compaction_request(request: &Map<String, Value>) -> Result<Map<String, Value>, Unconvertible> {
    let mut input = input_items(request)?.into_owned();
    input.push(
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": COMPACTION_PROMPT}]}),
    );
    let mut summarize = Map::new();
    for key in ["model", "instructions", "previous_response_id"] {
        if let Some(value) = request.get(key) {
            summarize.insert(key.into(), value.clone());
        }
    }
    summarize.insert("input".into(), Value::Array(input));
    Ok(summarize)
}

/// The compacted conversation (`response.compaction`): the caller's own user messages, then one
/// compaction item holding the chat model's summary of everything else.
pub fn compaction_from_chat(body: &[u8], id: &str, input: &[Value]) -> Result<Value, Unconvertible> {
    let completion: Value =
        serde_json::from_slice(body).map_err(|e| Unconvertible(format!("the answer is not JSON: {e}")))?;
    let summary = completion.pointer("/choices/0/message/content").and_then(Value::as_str).unwrap_or_default();
    let mut output: Vec<Value> = input
        .iter()
        .filter(|item| item.get("role").and_then(Value::as_str) == Some("user"))
        .map(|item| {
            let content = match &item["content"] {
                Value::String(text) => json!([{"type": "input_text", "text": text}]),
                other => other.clone(),
            };
            json!({"type": "message", "role": "user", "content": content})
        })
        .collect();
    let encrypted = format!("{COMPACTION_PREFIX}{}", hex::encode(summary.as_bytes()));
    let item_id = format!("cmp_{}", id_suffix(id));
    output.push(json!({"type": "compaction", "id": item_id, "encrypted_content": encrypted}));
    let usage = completion.get("usage").and_then(usage_of_value).unwrap_or_default();
    Ok(json!({"id": id, "object": "response.compaction", "created_at": now_seconds(), "output": output,
              "usage": responses_usage(&usage)}))
}

/// One turn of a conversation as input items: its input, then its output.
pub fn turn_items(input: &[Value], output: &Value) -> Vec<Value> {
    input.iter().chain(output.as_array().into_iter().flatten()).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> Map<String, Value> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn items_become_chat_messages_with_tool_calls_paired() {
        let converted = to_chat(
            &request(json!({"model": "m", "instructions": "Be brief.", "max_output_tokens": 50,
                "input": [
                    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Rules"}]},
                    {"role": "user", "content": [{"type": "input_text", "text": "Hi"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAA"}]},
                    {"type": "reasoning", "id": "rs_1", "summary": []},
                    {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}"},
                    {"type": "function_call", "call_id": "c2", "name": "exec_command", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c1", "output": "a.txt"},
                    {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "b"}]},
                    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done"}]},
                ],
                "tools": [{"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
                          {"type": "namespace", "name": "agents", "tools": [{"type": "function", "name": "spawn"}]}],
                "tool_choice": "auto", "parallel_tool_calls": false,
                "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}},
                "store": false, "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k"})),
        )
        .unwrap();
        let messages = converted.chat["messages"].as_array().unwrap();
        assert_eq!(messages[0], json!({"role": "system", "content": "Be brief."}));
        assert_eq!(messages[1], json!({"role": "system", "content": "Rules"}));
        assert_eq!(messages[2]["content"][1]["image_url"]["url"], "data:image/png;base64,AAA");
        assert_eq!(messages[3]["tool_calls"].as_array().unwrap().len(), 2, "parallel calls share one turn");
        assert_eq!(messages[4], json!({"role": "tool", "tool_call_id": "c1", "content": "a.txt"}));
        assert_eq!(messages[5]["content"], "b");
        assert_eq!(messages[6], json!({"role": "assistant", "content": "Done"}));
        assert_eq!(converted.chat["max_tokens"], 50);
        assert_eq!(converted.chat["parallel_tool_calls"], false);
        assert_eq!(converted.chat["tools"][1]["function"]["name"], "spawn");
        assert_eq!(converted.chat["response_format"]["json_schema"]["name"], "out");
        assert!(!converted.chat.contains_key("store"));
        let item = converted.tools.output_item("fc_1", "c9", "spawn", "{}");
        assert_eq!(item["namespace"], "agents");
    }

    #[test]
    fn what_a_chat_channel_cannot_do_is_refused_with_a_reason() {
        let refuse = |value: Value| to_chat(&request(value)).unwrap_err().0;
        assert!(refuse(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]})).contains("web_search"));
        assert!(refuse(json!({"model": "m", "input": "x", "tools": [{"type": "file_search"}]})).contains("hosted"));
        assert!(
            refuse(json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]})).contains("item_reference")
        );
        assert!(refuse(json!({"model": "m", "input": [{"type": "mystery"}]})).contains("mystery"));
        assert!(refuse(json!({"model": "m", "input": 5})).contains("string or a list"));
        assert!(refuse(json!({"model": "m", "input": "x", "background": true})).contains("background"));
    }

    #[test]
    fn a_chat_answer_becomes_a_response_with_items_and_usage() {
        let skeleton = skeleton(&request(json!({"model": "m", "input": "x"})), "resp_abc", "m");
        let body = json!({"id": "chatcmpl-1", "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": "Let me look.", "reasoning_content": "thinking",
                "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}}});
        let response = from_chat_response(body.to_string().as_bytes(), skeleton, &ToolNames::default()).unwrap();
        assert_eq!(response["status"], "completed");
        let kinds: Vec<&str> =
            response["output"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["reasoning", "message", "function_call"]);
        assert_eq!(response["output"][2]["call_id"], "call_9");
        assert_eq!(response["usage"]["input_tokens_details"]["cached_tokens"], 4);
        assert_eq!(response["usage"]["total_tokens"], 15);
    }

    #[test]
    fn chunks_become_typed_events_in_order() {
        let skeleton = skeleton(&request(json!({"model": "m", "input": "x", "stream": true})), "resp_abc", "m");
        let mut writer = ResponsesStreamWriter::new(skeleton, ToolNames::default());
        let chunks = [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c0","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#,
            "[DONE]",
        ];
        let events: Vec<Value> = chunks
            .iter()
            .flat_map(|c| writer.on_chunk(c.as_bytes()))
            .map(|b| {
                let text = String::from_utf8(b.to_vec()).unwrap();
                let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap().to_string();
                serde_json::from_str(&data).unwrap()
            })
            .collect();
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let sequence: Vec<u64> = events.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
        assert_eq!(sequence, (0..events.len() as u64).collect::<Vec<_>>());
        let completed = &events.last().unwrap()["response"];
        assert_eq!(completed["output"][1]["content"][0]["text"], "Hello");
        assert_eq!(completed["output"][2]["arguments"], "{\"a\":1}");
        assert_eq!(completed["output"][2]["id"], events[15]["item"]["id"]);
        assert_eq!(completed["usage"]["output_tokens"], 7);
        assert_eq!(events[16]["output_index"], 2);
    }

    #[test]
    fn a_compacted_conversation_keeps_the_user_turns_and_reads_back_as_a_summary() {
        let input = vec![
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix the bug"}]}),
            json!({"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"}),
            json!({"type": "function_call_output", "call_id": "c1", "output": "ok"}),
        ];
        let ask =
            compaction_request(&request(json!({"model": "m", "input": input, "tools": [{"type": "web_search"}]})))
                .unwrap();
        assert!(!ask.contains_key("tools"), "the summary needs no tools");
        assert!(to_chat(&ask).unwrap().chat["messages"].as_array().unwrap().last().unwrap()["content"]
            .to_string()
            .contains("Summarize"));
        let answer = json!({"choices": [{"message": {"content": "Bug fixed in a.rs"}}], "usage": {"prompt_tokens": 9, "completion_tokens": 4}});
        let compacted = compaction_from_chat(answer.to_string().as_bytes(), "resp_1", &input).unwrap();
        assert_eq!(compacted["object"], "response.compaction");
        let output = compacted["output"].as_array().unwrap();
        assert_eq!(
            (output.len(), output[0]["role"].as_str(), output[1]["type"].as_str()),
            (2, Some("user"), Some("compaction"))
        );
        let next = to_chat(&request(json!({"model": "m", "input": [output[0].clone(), output[1].clone(),
            {"role": "user", "content": "Go on"}]})))
        .unwrap();
        assert_eq!(next.chat["messages"][1]["content"], "Summary of our conversation so far:\nBug fixed in a.rs");
        let foreign = json!({"model": "m", "input": [{"type": "compaction", "encrypted_content": "gAAAA-openai"}]});
        assert!(to_chat(&request(foreign)).unwrap_err().0.contains("another provider"));
    }

    #[test]
    fn a_cut_length_answer_is_incomplete() {
        let skeleton = skeleton(&request(json!({"model": "m", "input": "x"})), "resp_abc", "m");
        let body = json!({"choices": [{"index": 0, "finish_reason": "length", "message": {"content": "Hel"}}]});
        let response = from_chat_response(body.to_string().as_bytes(), skeleton, &ToolNames::default()).unwrap();
        assert_eq!(response["status"], "incomplete");
        assert_eq!(response["incomplete_details"]["reason"], "max_output_tokens");
    }
}
