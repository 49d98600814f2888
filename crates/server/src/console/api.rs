//! The console's route table. Each route is registered together with its description (summary,
//! query, body, answer), and the OpenAPI document is made from that table: a console route cannot
//! exist without its description, and the description cannot name a route that does not exist.

use axum::handler::Handler;
use axum::routing::{self, MethodRouter};
use schemars::generate::SchemaGenerator;
use schemars::JsonSchema;
use serde_json::Value;

use crate::state::AppState;

/// Writes one schema with the document's generator.
pub(crate) type SchemaFn = fn(&mut SchemaGenerator) -> Value;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    generator.subschema_for::<T>().to_value()
}

/// A query string's type, written whole (OpenAPI lists each of its fields as a parameter).
fn query_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    generator.root_schema_for::<T>().to_value()
}

/// An object whose properties are all required.
pub(crate) fn object(properties: Value) -> Value {
    let required: Vec<&String> = properties.as_object().map(|p| p.keys().collect()).unwrap_or_default();
    serde_json::json!({"type": "object", "properties": properties, "required": required})
}

pub(crate) fn deleted_id(_: &mut SchemaGenerator) -> Value {
    object(serde_json::json!({"deleted": {"type": "integer", "format": "int64"}}))
}

pub(crate) fn deleted_name(_: &mut SchemaGenerator) -> Value {
    object(serde_json::json!({"deleted": {"type": "string"}}))
}

/// What one route takes and answers, as the OpenAPI document describes it.
pub(crate) struct Doc {
    summary: &'static str,
    query: Option<SchemaFn>,
    body: Option<SchemaFn>,
    status: u16,
    response: SchemaFn,
    reaches_out: bool,
}

impl Doc {
    /// A route answering 200 with a `T`.
    pub(crate) fn answers<T: JsonSchema>(summary: &'static str) -> Doc {
        Doc::shaped(summary, schema_of::<T>)
    }

    /// A route answering 200 with a body that has no Rust type of its own (`{"deleted": id}`).
    pub(crate) fn shaped(summary: &'static str, response: SchemaFn) -> Doc {
        Doc { summary, query: None, body: None, status: 200, response, reaches_out: false }
    }

    pub(crate) fn status(self, status: u16) -> Doc {
        Doc { status, ..self }
    }

    /// It reads a JSON body of type `T`.
    pub(crate) fn body<T: JsonSchema>(self) -> Doc {
        Doc { body: Some(schema_of::<T>), ..self }
    }

    /// It reads its query string as a `T`.
    pub(crate) fn query<T: JsonSchema>(self) -> Doc {
        Doc { query: Some(query_of::<T>), ..self }
    }

    /// It calls out (a hub, llama.cpp's releases, a llama-server), which may fail with 502.
    pub(crate) fn reaching_out(self) -> Doc {
        Doc { reaches_out: true, ..self }
    }
}

/// One described operation of the console API.
pub(crate) struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub doc: Doc,
}

impl Operation {
    pub(crate) fn summary(&self) -> &'static str {
        self.doc.summary
    }

    pub(crate) fn query(&self, inline: &mut SchemaGenerator) -> Option<Value> {
        self.doc.query.map(|schema| schema(inline))
    }

    pub(crate) fn body(&self, generator: &mut SchemaGenerator) -> Option<Value> {
        self.doc.body.map(|schema| schema(generator))
    }

    pub(crate) fn has_body(&self) -> bool {
        self.doc.body.is_some()
    }

    pub(crate) fn status(&self) -> u16 {
        self.doc.status
    }

    pub(crate) fn response(&self, generator: &mut SchemaGenerator) -> Value {
        (self.doc.response)(generator)
    }

    pub(crate) fn reaches_out(&self) -> bool {
        self.doc.reaches_out
    }
}

/// The console's routes and their descriptions, built together.
#[derive(Default)]
pub(crate) struct ConsoleApi {
    router: axum::Router<AppState>,
    operations: Vec<Operation>,
}

impl ConsoleApi {
    pub(crate) fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, doc: Doc, handler: H) -> Self {
        self.add("get", path, doc, routing::get(handler))
    }

    pub(crate) fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, doc: Doc, handler: H) -> Self {
        self.add("post", path, doc, routing::post(handler))
    }

    pub(crate) fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, doc: Doc, handler: H) -> Self {
        self.add("put", path, doc, routing::put(handler))
    }

    pub(crate) fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, doc: Doc, handler: H) -> Self {
        self.add("patch", path, doc, routing::patch(handler))
    }

    pub(crate) fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, doc: Doc, handler: H) -> Self {
        self.add("delete", path, doc, routing::delete(handler))
    }

    /// axum merges the methods of routes registered on the same path.
    fn add(mut self, method: &'static str, path: &'static str, doc: Doc, route: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, route);
        self.operations.push(Operation { method, path, doc });
        self
    }

    pub(crate) fn operations(&self) -> &[Operation] {
        &self.operations
    }

    pub(crate) fn into_router(self) -> axum::Router<AppState> {
        self.router
    }
}
