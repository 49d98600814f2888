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

use crate::vault::Vault;
use crate::{DbError, DbResult};

/// Seals every value that `select` (row key, stored text) finds still in plain text, writing it back
/// with `update` (?1 the row key, ?2 the sealed text); returns how many were sealed.
pub(crate) fn seal_plaintext(
    connection: &rusqlite::Connection,
    vault: &Vault,
    select: &str,
    update: &str,
) -> DbResult<usize> {
    let plain: Vec<(rusqlite::types::Value, String)> = connection
        .prepare(select)?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter(|(_, text): &(rusqlite::types::Value, String)| !text.is_empty() && !Vault::is_sealed(text))
        .collect();
    for (key, text) in &plain {
        connection.execute(update, rusqlite::params![key, vault.seal(text)?])?;
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
