//! The `settings` table: text values by key.

use crate::Conn;
use rusqlite::{Connection, OptionalExtension};

use crate::vault::Vault;
use crate::DbResult;

/// The value of `key`; secret settings are unsealed on the way out.
pub fn get(connection: &Conn, vault: &Vault, key: &str) -> DbResult<Option<String>> {
    let connection = connection.sql();
    let stored: Option<String> = connection
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?;
    match stored {
        Some(value) if is_secret(key) => Ok(Some(vault.unseal(&value)?)),
        other => Ok(other),
    }
}

/// Stores `value` under `key`; secret settings are sealed first.
pub fn set(connection: &Conn, vault: &Vault, key: &str, value: &str) -> DbResult<()> {
    let connection = connection.sql();
    let stored = if is_secret(key) { vault.seal(value)? } else { value.to_string() };
    store(connection, key, &stored)
}

fn store(connection: &Connection, key: &str, value: &str) -> DbResult<()> {
    connection.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
        [key, value],
    )?;
    Ok(())
}

/// Settings under this prefix hold credentials (hub access tokens) and are sealed at rest.
const SECRET_PREFIX: &str = "hub_token.";
/// The playground's own gateway key, sealed like the hub tokens.
const PLAYGROUND_KEY: &str = "playground_token_key";

pub fn is_secret(key: &str) -> bool {
    key.starts_with(SECRET_PREFIX) || key == PLAYGROUND_KEY
}

/// Seals secret settings stored before encryption at rest existed; returns how many changed.
pub fn seal_plaintext_secrets(connection: &Conn, vault: &Vault) -> DbResult<usize> {
    let connection = connection.sql();
    let select =
        format!("SELECT key, value FROM settings WHERE substr(key, 1, {}) = '{SECRET_PREFIX}'", SECRET_PREFIX.len());
    super::seal_plaintext(connection, vault, &select, "UPDATE settings SET value = ?2 WHERE key = ?1")
}
