//! The console API as an OpenAPI 3.1 document (`GET /console/api/openapi.json`), written from the
//! console's route table, where every route is registered with the types its handler reads and
//! answers; and the data plane's routes from the router's own table (`DATA_ROUTES`), each with its
//! protocol's reference, its key and its error shape.

use burncloud_router::{DataRoute, ErrorShape, RequestBody, DATA_ROUTES};
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use super::api::{object, Operation};

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
pub(crate) fn document(operations: &[Operation]) -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    });
    let mut inline = settings.clone().with(|s| s.inline_subschemas = true).into_generator();
    let mut generator = settings.into_generator();
    let mut paths = Map::new();
    for operation in operations {
        let mut responses = Map::new();
        responses.insert(
            operation.status().to_string(),
            json!({"description": "Success", "content": {"application/json": {"schema": operation.response(&mut generator)}}}),
        );
        responses.insert("400".into(), error_response("The request is not valid"));
        responses.insert("401".into(), error_response("Missing or wrong admin key"));
        // An item named in the path or body, or one the hub or runtime release list it asks has not.
        if operation.path.contains('{') || operation.has_body() || operation.reaches_out() {
            responses.insert(
                "404".into(),
                error_response("No such item here, or where it reaches out to (the body, query or path names it)"),
            );
        }
        if operation.reaches_out() {
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
            "summary": operation.summary(),
            "operationId": format!("{} {}", operation.method, operation.path),
            "parameters": parameters(operation.path, operation.query(&mut inline).as_ref()),
            "responses": responses,
        });
        if let Some(body) = operation.body(&mut generator) {
            entry["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": body}}});
        }
        let path = paths.entry(operation.path).or_insert_with(|| json!({}));
        path[operation.method] = entry;
    }
    for route in DATA_ROUTES {
        let path = paths.entry(route.path).or_insert_with(|| json!({}));
        path[route.method] = data_operation(route);
    }
    let mut schemas = generator.take_definitions(true);
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
        let document = document(super::super::api().operations());
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let text = document.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(schemas.contains_key(name), "{name} is referenced but not defined");
        }
        let paths = document["paths"].as_object().unwrap();
        assert_eq!(paths.values().map(|p| p.as_object().unwrap().len()).sum::<usize>(), 56 + DATA_ROUTES.len());
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
