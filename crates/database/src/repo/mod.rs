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
pub mod responses;
pub mod settings;
pub mod tokens;

use crate::engine::Engine;
use crate::values::{args, Key};
use crate::vault::Vault;
use crate::{DbError, DbResult};

/// Seals every value that `select` (row key, stored text) finds still in plain text, writing it back
/// with `update` (?1 the row key, ?2 the sealed text); returns how many were sealed.
pub(crate) fn seal_plaintext(engine: &Engine, vault: &Vault, select: &str, update: &str) -> DbResult<usize> {
    let plain: Vec<(Key, String)> = engine
        .query(select, args![], |row| Ok((row.get(0)?, row.get(1)?)))?
        .into_iter()
        .filter(|(_, text): &(Key, String)| !text.is_empty() && !Vault::is_sealed(text))
        .collect();
    for (key, text) in &plain {
        engine.execute(update, args![key, vault.seal(text)?])?;
    }
    Ok(plain.len())
}

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Only lists and string maps are stored this way; they always serialize.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> DbResult<T> {
    serde_json::from_str(text).map_err(|e| DbError::Corrupt(format!("{column}: {e}")))
}
