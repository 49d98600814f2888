//! Repositories: plain functions over a connection, one module per table.

pub mod account;
pub mod channels;
pub mod config;
pub mod downloads;
pub mod groups;
pub mod instances;
pub mod local_models;
pub mod logs;
pub mod prices;
pub mod settings;
pub mod tokens;

use crate::{DbError, DbResult};

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Only lists and string maps are stored this way; they always serialize.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> DbResult<T> {
    serde_json::from_str(text).map_err(|e| DbError::Corrupt(format!("{column}: {e}")))
}
