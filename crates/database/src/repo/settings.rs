//! The `settings` table: text values by key.

use crate::engine::Engine;
use crate::values::args;
use crate::Conn;

use crate::vault::{Vault, KEY_ENV, KEY_FILE};
use crate::{DbError, DbResult};

/// The value of `key`; secret settings are unsealed on the way out.
pub fn get(connection: &Conn, vault: &Vault, key: &str) -> DbResult<Option<String>> {
    let stored: Option<String> =
        connection.engine().query_opt("SELECT value FROM settings WHERE key = ?1", args![key], |row| row.get(0))?;
    match stored {
        Some(value) if is_secret(key) => Ok(Some(vault.unseal(&value)?)),
        other => Ok(other),
    }
}

/// Stores `value` under `key`; secret settings are sealed first.
pub fn set(connection: &Conn, vault: &Vault, key: &str, value: &str) -> DbResult<()> {
    let stored = if is_secret(key) { vault.seal(value)? } else { value.to_string() };
    store(connection.engine(), key, &stored)
}

fn store(engine: &Engine, key: &str, value: &str) -> DbResult<()> {
    engine.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args![key, value],
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
    let select =
        format!("SELECT key, value FROM settings WHERE substr(key, 1, {}) = '{SECRET_PREFIX}'", SECRET_PREFIX.len());
    super::seal_plaintext(connection.engine(), vault, &select, "UPDATE settings SET value = ?2 WHERE key = ?1")
}

/// A value only the right key opens, stored by the first instance that used a shared database.
const KEY_CHECK: &str = "secret_key_check";
const KEY_CHECK_TEXT: &str = "BurnCloud secret key check";

/// Makes sure this instance seals with the same key as every other one on this database: the
/// first to start leaves a sealed check value, and each later one must open it. Without this, keys
/// one instance saved would be unreadable on the next, and fail calls far from their cause.
pub(crate) fn check_shared_key(connection: &Conn, vault: &Vault) -> DbResult<()> {
    let engine = connection.engine();
    engine.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        args![KEY_CHECK, vault.seal(KEY_CHECK_TEXT)?],
    )?;
    let stored: String =
        engine.query_one("SELECT value FROM settings WHERE key = ?1", args![KEY_CHECK], |r| r.get(0))?;
    match vault.unseal(&stored) {
        Ok(text) if text == KEY_CHECK_TEXT => Ok(()),
        _ => Err(DbError::Secret(format!(
            "this instance's secret key is not the one the shared database's secrets are sealed with; give every \
             instance the same key: copy {KEY_FILE} from the data dir of the instance that first used this database, \
             or set {KEY_ENV} to the same 64 hex digits on each"
        ))),
    }
}
