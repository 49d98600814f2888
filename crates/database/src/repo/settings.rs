//! The `settings` table: text values by key.

use rusqlite::{Connection, OptionalExtension};

use crate::DbResult;

pub fn get(connection: &Connection, key: &str) -> DbResult<Option<String>> {
    Ok(connection
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?)
}

pub fn set(connection: &Connection, key: &str, value: &str) -> DbResult<()> {
    connection.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
        [key, value],
    )?;
    Ok(())
}

/// Settings that hold credentials (hub access tokens) and are sealed at rest.
pub fn is_secret(key: &str) -> bool {
    key.starts_with("hub_token.")
}

/// Seals secret settings stored before encryption at rest existed; returns how many changed.
pub fn seal_plaintext_secrets(connection: &Connection, vault: &crate::vault::Vault) -> DbResult<usize> {
    let plain: Vec<(String, String)> = connection
        .prepare("SELECT key, value FROM settings")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter(|(key, value): &(String, String)| {
            is_secret(key) && !value.is_empty() && !crate::vault::Vault::is_sealed(value)
        })
        .collect();
    for (key, value) in &plain {
        set(connection, key, &vault.seal(value)?)?;
    }
    Ok(plain.len())
}
