//! The console API as an OpenAPI 3.1 document (`GET /console/api/openapi.json`), built from the
//! same types the handlers read and write, so the description cannot drift from the code; and the
//! data plane's routes from the router's own table (`DATA_ROUTES`), each with its protocol's
//! reference, its key and its error shape.

use burncloud_router::{DataRoute, ErrorShape, RequestBody, DATA_ROUTES};
use burncloud_service_api::{
    Account, AccountPatch, Channel, ChannelHealthReport, ChannelInput, ChannelPatch, ChannelTestReport, CreatedToken,
    Download, DownloadRequest, Group, GroupInput, GroupPatch, Hardware, HubFileList, HubSearchPage, HubSearchQuery,
    ImportRequest, Instance, InstanceInput, InstancePatch, LlamaServerInfo, LocalModel, LogPage, LogQuery, Price,
    PriceInput, Runtime, RuntimeInstallRequest, Token, TokenInput, TokenPatch, UsageQuery, UsageReport,
};
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::console::TopUp;
use crate::console_inference::LogsQuery;
use crate::console_models::FilesQuery;

/// What one operation takes and gives.
struct Operation {
    method: &'static str,
    path: &'static str,
    summary: String,
    query: Option<Value>,
    body: Option<Value>,
    status: u16,
    response: Value,
    /// It calls out (a hub, llama.cpp's releases, a llama-server), which may fail with 502.
    reaches_out: bool,
}

struct Builder {
    generator: SchemaGenerator,
    /// The same types inlined, for query strings (OpenAPI lists each query field as a parameter).
    inline: SchemaGenerator,
    operations: Vec<Operation>,
}

impl Builder {
    fn schema<T: JsonSchema>(&mut self) -> Value {
        self.generator.subschema_for::<T>().to_value()
    }

    fn query<T: JsonSchema>(&mut self) -> Option<Value> {
        Some(self.inline.root_schema_for::<T>().to_value())
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        method: &'static str,
        path: &'static str,
        summary: impl Into<String>,
        query: Option<Value>,
        body: Option<Value>,
        status: u16,
        response: Value,
    ) {
        let summary = summary.into();
        self.operations.push(Operation { method, path, summary, query, body, status, response, reaches_out: false });
    }

    /// Marks the operation added last as one that calls out and may answer 502.
    fn reaching_out(&mut self) {
        if let Some(operation) = self.operations.last_mut() {
            operation.reaches_out = true;
        }
    }

    /// The five routes of a collection: list, create, read, change, delete. `created` is what a
    /// create answers (the item itself unless it carries more, as a new token's key).
    fn collection<Item: JsonSchema, Input: JsonSchema, Patch: JsonSchema>(
        &mut self,
        paths: (&'static str, &'static str),
        noun: &str,
        created: Option<Value>,
    ) {
        let (list_path, item_path) = paths;
        let (item, items) = (self.schema::<Item>(), self.schema::<Vec<Item>>());
        let (input, patch) = (self.schema::<Input>(), self.schema::<Patch>());
        let created = created.unwrap_or_else(|| item.clone());
        self.add("get", list_path, format!("List {noun}s"), None, None, 200, items);
        self.add("post", list_path, format!("Create a {noun}"), None, Some(input), 201, created);
        self.add("get", item_path, format!("One {noun}"), None, None, 200, item.clone());
        self.add("put", item_path, format!("Change a {noun}"), None, Some(patch), 200, item);
        self.add("delete", item_path, format!("Delete a {noun}"), None, None, 200, deleted());
    }
}

fn object(properties: Value) -> Value {
    let required: Vec<&String> = properties.as_object().map(|p| p.keys().collect()).unwrap_or_default();
    json!({"type": "object", "properties": properties, "required": required})
}

fn deleted() -> Value {
    object(json!({"deleted": {"type": "integer", "format": "int64"}}))
}

fn parameters(path: &str, query: Option<&Value>) -> Vec<Value> {
    let mut parameters = Vec::new();
    for segment in path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            // The examples name the first item of each kind, so example-based runs reach real ones.
            let (schema, example) = if name == "id" {
                (json!({"type": "integer", "format": "int64"}), json!(1))
            } else {
                (json!({"type": "string"}), json!("gpt-4o-mini"))
            };
            parameters
                .push(json!({"name": name, "in": "path", "required": true, "schema": schema, "example": example}));
        }
    }
    if let Some(query) = query {
        let required: Vec<&str> =
            query["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        for (name, schema) in query["properties"].as_object().into_iter().flatten() {
            parameters.push(json!({
                "name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": schema,
            }));
        }
    }
    parameters
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// A data-plane operation: the protocol's own request and answer, BurnCloud's key, and errors in
/// the protocol's shape.
fn data_operation(route: &DataRoute) -> Value {
    let error = match route.errors {
        ErrorShape::OpenAi => "OpenAiError",
        ErrorShape::Anthropic => "AnthropicError",
        ErrorShape::Gemini => "GeminiError",
        ErrorShape::Ollama => "OllamaError",
    };
    let answers: Map<String, Value> =
        route.answers.iter().map(|kind| (kind.to_string(), json!({"schema": {}}))).collect();
    let parameters: Vec<Value> = route
        .path
        .split(['/', ':'])
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let example = if name == "model" { "gpt-4o-mini" } else { "resp_0123" };
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}, "example": example})
        })
        .collect();
    let security = match (route.open, route.errors) {
        (true, _) => json!([]),
        (false, ErrorShape::Gemini) => json!([{"token": []}, {"googleApiKey": []}, {"keyQuery": []}]),
        (false, _) => json!([{"token": []}]),
    };
    let mut entry = json!({
        "summary": route.summary,
        "description": format!("The request and answer are the protocol's own ({}); errors come in its shape.", route.reference),
        "operationId": format!("{} {}", route.method, route.path),
        "tags": ["data plane"],
        "parameters": parameters,
        "security": security,
        "responses": {
            "200": {"description": "Success", "content": answers},
            "default": {
                "description": "An error in the protocol's own shape (the upstream's, where it answered one)",
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{error}")}}},
            },
        },
    });
    let body = match route.body {
        RequestBody::None => None,
        RequestBody::Json => Some(("application/json", json!({"type": "object"}))),
        RequestBody::Form => Some((
            "multipart/form-data",
            json!({"type": "object", "properties": {"model": {"type": "string"}}, "required": ["model"]}),
        )),
    };
    if let Some((kind, schema)) = body {
        entry["requestBody"] = json!({"required": true, "content": {kind: {"schema": schema}}});
    }
    entry
}

/// The error bodies of the four protocols, as loose as the upstreams whose errors pass through.
fn data_error_schemas() -> [(&'static str, Value); 4] {
    let message = json!({"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]});
    let nested = json!({"type": "object", "properties": {"error": message}, "required": ["error"]});
    [
        ("OpenAiError", nested.clone()),
        ("AnthropicError", nested.clone()),
        ("GeminiError", nested),
        ("OllamaError", object(json!({"error": {"type": "string"}}))),
    ]
}

/// The whole document.
pub fn document() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    let inline = settings.clone().with(|s| s.inline_subschemas = true).into_generator();
    let mut b = Builder { generator: settings.into_generator(), inline, operations: Vec::new() };

    b.collection::<Channel, ChannelInput, ChannelPatch>(
        ("/console/api/channels", "/console/api/channels/{id}"),
        "channel",
        None,
    );
    let report = b.schema::<ChannelTestReport>();
    b.add("post", "/console/api/channels/{id}/test", "Send a test call through a channel", None, None, 200, report);

    let created = b.schema::<CreatedToken>();
    b.collection::<Token, TokenInput, TokenPatch>(
        ("/console/api/tokens", "/console/api/tokens/{id}"),
        "token",
        Some(created),
    );

    let (prices, price, price_input) = (b.schema::<Vec<Price>>(), b.schema::<Price>(), b.schema::<PriceInput>());
    b.add("get", "/console/api/prices", "List model prices", None, None, 200, prices);
    b.add("put", "/console/api/prices/{model}", "Set a model's price", None, Some(price_input), 200, price);
    let removed = object(json!({"deleted": {"type": "string"}}));
    b.add("delete", "/console/api/prices/{model}", "Remove a model's price", None, None, 200, removed);

    let (account, account_patch, top_up) = (b.schema::<Account>(), b.schema::<AccountPatch>(), b.schema::<TopUp>());
    b.add("get", "/console/api/account", "Balance and spend", None, None, 200, account.clone());
    b.add("put", "/console/api/account", "Change currency or credit", None, Some(account_patch), 200, account.clone());
    b.add("post", "/console/api/account/topup", "Add credit", None, Some(top_up), 200, account);

    let (log_query, log_page) = (b.query::<LogQuery>(), b.schema::<LogPage>());
    b.add("get", "/console/api/logs", "Logged calls, newest first", log_query, None, 200, log_page);
    let (usage_query, usage) = (b.query::<UsageQuery>(), b.schema::<UsageReport>());
    b.add("get", "/console/api/usage", "Requests, tokens and cost over a time range", usage_query, None, 200, usage);

    b.collection::<Group, GroupInput, GroupPatch>(("/console/api/groups", "/console/api/groups/{id}"), "group", None);

    let rotated = object(json!({"admin_key": {"type": "string"}}));
    b.add("post", "/console/api/admin-key/rotate", "Replace the admin key", None, None, 200, rotated);
    let health = b.schema::<Vec<ChannelHealthReport>>();
    let health = json!({"type": "object", "properties": {
        "status": {"type": "string"}, "channels": health, "log_writer": {"type": "object"},
        "redis": {"type": "string"}, "secrets": {"type": "string"}}});
    b.add("get", "/console/internal/health", "Breakers, log writer, Redis, secret store", None, None, 200, health);
    let shown = object(json!({"requested": {"type": "boolean"}}));
    b.add("post", "/console/internal/show", "Ask the running app to show its window", None, None, 202, shown);

    let (search_query, search) = (b.query::<HubSearchQuery>(), b.schema::<HubSearchPage>());
    b.add("get", "/console/api/hub/search", "Search a model hub for GGUF repos", search_query, None, 200, search);
    let (files_query, files) = (b.query::<FilesQuery>(), b.schema::<HubFileList>());
    b.add("get", "/console/api/hub/files", "A repo's files, with quant and shards", files_query, None, 200, files);
    let (download, downloads, download_request) =
        (b.schema::<Download>(), b.schema::<Vec<Download>>(), b.schema::<DownloadRequest>());
    b.add("get", "/console/api/downloads", "List downloads", None, None, 200, downloads);
    b.add("post", "/console/api/downloads", "Start a download", None, Some(download_request), 201, download.clone());
    b.add("get", "/console/api/downloads/{id}", "One download's progress", None, None, 200, download.clone());
    b.add("delete", "/console/api/downloads/{id}", "Cancel a download", None, None, 200, deleted());
    b.add("post", "/console/api/downloads/{id}/pause", "Pause a download", None, None, 200, download.clone());
    b.add("post", "/console/api/downloads/{id}/resume", "Resume a download", None, None, 200, download);
    let (model, models, import) =
        (b.schema::<LocalModel>(), b.schema::<Vec<LocalModel>>(), b.schema::<ImportRequest>());
    b.add("get", "/console/api/models/local", "Local models", None, None, 200, models);
    b.add(
        "post",
        "/console/api/models/local/import",
        "Register a GGUF on disk",
        None,
        Some(import),
        201,
        model.clone(),
    );
    b.add("get", "/console/api/models/local/{id}", "One local model", None, None, 200, model);
    b.add("delete", "/console/api/models/local/{id}", "Delete a local model and its files", None, None, 200, deleted());

    let llama = b.schema::<LlamaServerInfo>();
    b.add("get", "/console/api/llama-server", "The llama-server in use and its version", None, None, 200, llama);
    let (instance, instances, instance_input) =
        (b.schema::<Instance>(), b.schema::<Vec<Instance>>(), b.schema::<InstanceInput>());
    b.add("get", "/console/api/instances", "Deployments, loaded or not", None, None, 200, instances);
    b.add("post", "/console/api/instances", "Deploy a local model", None, Some(instance_input), 201, instance.clone());
    b.add("get", "/console/api/instances/{id}", "One instance", None, None, 200, instance.clone());
    let instance_patch = b.schema::<InstancePatch>();
    b.add(
        "patch",
        "/console/api/instances/{id}",
        "Change an instance's idle TTL or pin",
        None,
        Some(instance_patch),
        200,
        instance.clone(),
    );
    b.add("delete", "/console/api/instances/{id}", "Stop and remove an instance", None, None, 200, deleted());
    b.add("post", "/console/api/instances/{id}/stop", "Stop an instance", None, None, 200, instance.clone());
    b.add("post", "/console/api/instances/{id}/restart", "Restart an instance", None, None, 200, instance);
    let (logs_query, lines) =
        (b.query::<LogsQuery>(), object(json!({"lines": {"type": "array", "items": {"type": "string"}}})));
    b.add("get", "/console/api/instances/{id}/logs", "An instance's latest log lines", logs_query, None, 200, lines);

    let hardware = b.schema::<Hardware>();
    b.add("get", "/console/api/hardware", "CPU, memory, GPUs and what the runtime can use", None, None, 200, hardware);
    let (runtime, runtimes, install) =
        (b.schema::<Runtime>(), b.schema::<Vec<Runtime>>(), b.schema::<RuntimeInstallRequest>());
    let download = b.schema::<Download>();
    b.add("get", "/console/api/runtimes", "Installed llama.cpp runtimes", None, None, 200, runtimes);
    b.add(
        "post",
        "/console/api/runtimes/install",
        "Download, verify, unpack and activate the llama.cpp build for this machine",
        None,
        Some(install),
        202,
        download,
    );
    b.reaching_out();
    b.add("post", "/console/api/runtimes/{id}/activate", "Make a runtime the active one", None, None, 200, runtime);
    b.reaching_out();
    let removed = object(json!({"deleted": {"type": "string"}}));
    b.add("delete", "/console/api/runtimes/{id}", "Remove an inactive runtime", None, None, 200, removed);

    let mut paths = Map::new();
    for operation in &b.operations {
        let mut responses = Map::new();
        responses.insert(
            operation.status.to_string(),
            json!({"description": "Success", "content": {"application/json": {"schema": operation.response}}}),
        );
        responses.insert("400".into(), error_response("The request is not valid"));
        responses.insert("401".into(), error_response("Missing or wrong admin key"));
        if operation.path.contains('{') || operation.body.is_some() {
            responses.insert("404".into(), error_response("No such item, or the body names one that does not exist"));
        }
        if operation.reaches_out {
            responses.insert(
                "502".into(),
                error_response("What it calls out to failed or refused (the reason is in the message)"),
            );
        }
        if operation.method != "get" {
            responses.insert(
                "409".into(),
                error_response("Conflicts with the current state (a taken name, an item in use)"),
            );
        }
        let mut entry = json!({
            "summary": operation.summary,
            "operationId": format!("{} {}", operation.method, operation.path),
            "parameters": parameters(operation.path, operation.query.as_ref()),
            "responses": responses,
        });
        if let Some(body) = &operation.body {
            entry["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": body}}});
        }
        let path = paths.entry(operation.path).or_insert_with(|| json!({}));
        path[operation.method] = entry;
    }
    for route in DATA_ROUTES {
        let path = paths.entry(route.path).or_insert_with(|| json!({}));
        path[route.method] = data_operation(route);
    }
    let mut schemas = b.generator.take_definitions(true);
    schemas.insert(
        "Error".into(),
        object(json!({"error": object(json!({"message": {"type": "string"}, "code": {"type": "string"}}))})),
    );
    for (name, schema) in data_error_schemas() {
        schemas.insert(name.into(), schema);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "BurnCloud API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The console API manages channels, tokens, groups, prices, logs, downloads and local models; each of its routes needs `Authorization: Bearer <admin key>` (`burncloud admin-key`). The data plane (tag `data plane`) answers OpenAI's, Anthropic's, Gemini's and Ollama's APIs with a BurnCloud token (`sk-bc-…`) as the key, in front of every channel.",
        },
        "servers": [{"url": "/"}],
        "security": [{"adminKey": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "adminKey": {"type": "http", "scheme": "bearer"},
                "token": {"type": "http", "scheme": "bearer", "description": "A BurnCloud token, `sk-bc-…` (also taken as `x-api-key`)"},
                "googleApiKey": {"type": "apiKey", "in": "header", "name": "x-goog-api-key"},
                "keyQuery": {"type": "apiKey", "in": "query", "name": "key"},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves_and_every_route_is_described() {
        let document = document();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let text = document.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(schemas.contains_key(name), "{name} is referenced but not defined");
        }
        let paths = document["paths"].as_object().unwrap();
        assert_eq!(paths.values().map(|p| p.as_object().unwrap().len()).sum::<usize>(), 53 + DATA_ROUTES.len());
        assert_eq!(DATA_ROUTES.len(), 40);
        let transcribe = &paths["/v1/audio/transcriptions"]["post"];
        assert!(transcribe["requestBody"]["content"]["multipart/form-data"].is_object());
        assert_eq!(transcribe["security"], json!([{"token": []}]));
        assert_eq!(
            paths["/v1beta/models/{model}:generateContent"]["post"]["responses"]["default"]["content"]
                ["application/json"]["schema"]["$ref"],
            "#/components/schemas/GeminiError"
        );
        assert_eq!(paths["/api/version"]["get"]["security"], json!([]));
        let token_input = &schemas["TokenInput"];
        assert_eq!(token_input["properties"]["quota_limit"]["anyOf"][0]["$ref"], "#/components/schemas/Money");
        let logs = &paths["/console/api/logs"]["get"]["parameters"];
        assert!(logs.as_array().unwrap().iter().any(|p| p["name"] == "model" && p["in"] == "query"));
    }
}
