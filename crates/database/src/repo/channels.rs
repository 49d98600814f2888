//! The `channels` table.

use burncloud_service_api::{Channel, ChannelKind, Secret};

use super::{from_json, to_json};
use crate::engine::Row;
use crate::values::args;
use crate::vault::Vault;
use crate::{Conn, DbError, DbResult};

/// A channel with its key, for the router and for updates.
#[derive(Clone, Debug)]
pub struct ChannelRecord {
    pub channel: Channel,
    pub api_key: Secret,
}

const COLUMNS: &str = "id, name, kind, base_url, api_key, models, model_mapping, priority, weight, enabled, \
                       created_at_ms, updated_at_ms, native_responses";

fn from_row(vault: &Vault, row: &Row<'_>) -> DbResult<ChannelRecord> {
    let kind_text: String = row.get(2)?;
    let stored_key: String = row.get(4)?;
    // A key that cannot be decrypted (database moved without its data key) leaves the channel
    // listed with no key, so the user can enter it again, instead of hiding every channel.
    let api_key = Secret::new(vault.unseal(&stored_key).unwrap_or_else(|error| {
        tracing::warn!(%error, "a channel's API key cannot be read");
        String::new()
    }));
    let models: String = row.get(5)?;
    let mapping: String = row.get(6)?;
    let kind =
        ChannelKind::parse(&kind_text).ok_or_else(|| DbError::Corrupt(format!("channels.kind {kind_text:?}")))?;
    Ok(ChannelRecord {
        channel: Channel {
            id: row.get(0)?,
            name: row.get(1)?,
            kind,
            base_url: row.get(3)?,
            key_hint: api_key.hint(),
            models: from_json("channels.models", &models)?,
            model_mapping: from_json("channels.model_mapping", &mapping)?,
            priority: row.get(7)?,
            weight: row.get(8)?,
            enabled: row.get(9)?,
            created_at_ms: row.get(10)?,
            updated_at_ms: row.get(11)?,
            native_responses: row.get(12)?,
        },
        api_key: api_key.clone(),
    })
}

pub fn list(connection: &Conn, vault: &Vault) -> DbResult<Vec<ChannelRecord>> {
    connection
        .engine()
        .query(&format!("SELECT {COLUMNS} FROM channels ORDER BY id"), args![], |row| from_row(vault, row))
}

pub fn get(connection: &Conn, vault: &Vault, id: i64) -> DbResult<Option<ChannelRecord>> {
    connection
        .engine()
        .query_opt(&format!("SELECT {COLUMNS} FROM channels WHERE id = ?1"), args![id], |row| from_row(vault, row))
}

/// Inserts `record` (its id and timestamps are ignored) and returns the new id.
pub fn insert(connection: &Conn, vault: &Vault, record: &ChannelRecord, now_ms: i64) -> DbResult<i64> {
    let c = &record.channel;
    let sealed_key = vault.seal(record.api_key.expose())?;
    connection.engine().query_one(
        "INSERT INTO channels (name, kind, base_url, api_key, models, model_mapping, priority, weight, enabled, \
         created_at_ms, updated_at_ms, native_responses) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11) \
         RETURNING id",
        args![
            c.name,
            c.kind.as_str(),
            c.base_url,
            sealed_key,
            to_json(&c.models),
            to_json(&c.model_mapping),
            c.priority,
            c.weight,
            c.enabled,
            now_ms,
            c.native_responses
        ],
        |row| row.get(0),
    )
}

/// Saves every field of `record`; returns false when the row does not exist.
pub fn update(connection: &Conn, vault: &Vault, record: &ChannelRecord, now_ms: i64) -> DbResult<bool> {
    let c = &record.channel;
    let sealed_key = vault.seal(record.api_key.expose())?;
    let changed = connection.engine().execute(
        "UPDATE channels SET name = ?2, kind = ?3, base_url = ?4, api_key = ?5, models = ?6, model_mapping = ?7, \
         priority = ?8, weight = ?9, enabled = ?10, updated_at_ms = ?11, native_responses = ?12 WHERE id = ?1",
        args![
            c.id,
            c.name,
            c.kind.as_str(),
            c.base_url,
            sealed_key,
            to_json(&c.models),
            to_json(&c.model_mapping),
            c.priority,
            c.weight,
            c.enabled,
            now_ms,
            c.native_responses
        ],
    )?;
    Ok(changed > 0)
}

pub fn delete(connection: &Conn, id: i64) -> DbResult<bool> {
    Ok(connection.engine().execute("DELETE FROM channels WHERE id = ?1", args![id])? > 0)
}

/// Seals keys stored before encryption at rest existed; returns how many rows changed.
pub fn seal_plaintext_keys(connection: &Conn, vault: &Vault) -> DbResult<usize> {
    super::seal_plaintext(
        connection.engine(),
        vault,
        "SELECT id, api_key FROM channels",
        "UPDATE channels SET api_key = ?2 WHERE id = ?1",
    )
}

/// Every channel's id, without reading (and decrypting) its key.
pub fn ids(connection: &Conn) -> DbResult<Vec<i64>> {
    connection.engine().query("SELECT id FROM channels ORDER BY id", args![], |row| row.get(0))
}
