//! The `tokens` table: gateway keys are stored only as SHA-256 hashes.

use burncloud_service_api::{Money, Token};

use super::{from_json, to_json};
use crate::engine::Row;
use crate::values::args;
use crate::{Conn, DbResult};

/// A token with the hash of its key, for the router's lookup table.
#[derive(Clone, Debug)]
pub struct TokenRecord {
    pub token: Token,
    pub key_hash: String,
}

const COLUMNS: &str = "id, name, key_prefix, group_name, quota_limit_nano, used_quota_nano, rpm_limit, tpm_limit, \
                       expires_at_ms, models, enabled, created_at_ms, updated_at_ms, key_hash, keyless_local";

fn from_row(row: &Row<'_>) -> DbResult<TokenRecord> {
    let models: String = row.get(9)?;
    let models = from_json::<Vec<String>>("tokens.models", &models)?;
    Ok(TokenRecord {
        token: Token {
            id: row.get(0)?,
            name: row.get(1)?,
            key_prefix: row.get(2)?,
            group: row.get(3)?,
            quota_limit: row.get::<Option<i64>>(4)?.map(Money),
            used_quota: Money(row.get(5)?),
            rpm_limit: row.get(6)?,
            tpm_limit: row.get(7)?,
            expires_at_ms: row.get(8)?,
            models,
            enabled: row.get(10)?,
            created_at_ms: row.get(11)?,
            updated_at_ms: row.get(12)?,
            keyless_local: row.get(14)?,
        },
        key_hash: row.get(13)?,
    })
}

pub fn list(connection: &Conn) -> DbResult<Vec<TokenRecord>> {
    connection.engine().query(&format!("SELECT {COLUMNS} FROM tokens ORDER BY id"), args![], from_row)
}

pub fn get(connection: &Conn, id: i64) -> DbResult<Option<TokenRecord>> {
    connection.engine().query_opt(&format!("SELECT {COLUMNS} FROM tokens WHERE id = ?1"), args![id], from_row)
}

/// Inserts `record` (id, used quota and timestamps are ignored) and returns the new id.
pub fn insert(connection: &Conn, record: &TokenRecord, now_ms: i64) -> DbResult<i64> {
    let t = &record.token;
    connection.engine().query_one(
        "INSERT INTO tokens (name, key_hash, key_prefix, group_name, quota_limit_nano, rpm_limit, tpm_limit, \
         expires_at_ms, models, enabled, created_at_ms, updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11) RETURNING id",
        args![
            t.name,
            record.key_hash,
            t.key_prefix,
            t.group,
            t.quota_limit.map(Money::nanos),
            t.rpm_limit,
            t.tpm_limit,
            t.expires_at_ms,
            to_json(&t.models),
            t.enabled,
            now_ms
        ],
        |row| row.get(0),
    )
}

/// Saves the editable fields of `token`; the used quota belongs to the log writer alone. A token
/// made the keyless-local one takes that from any other.
pub fn update(connection: &Conn, token: &Token, now_ms: i64) -> DbResult<bool> {
    if token.keyless_local {
        connection
            .engine()
            .execute("UPDATE tokens SET keyless_local = 0 WHERE id != ?1 AND keyless_local = 1", args![token.id])?;
    }
    let changed = connection.engine().execute(
        "UPDATE tokens SET name = ?2, group_name = ?3, quota_limit_nano = ?4, rpm_limit = ?5, tpm_limit = ?6, \
         expires_at_ms = ?7, models = ?8, enabled = ?9, updated_at_ms = ?10, keyless_local = ?11 WHERE id = ?1",
        args![
            token.id,
            token.name,
            token.group,
            token.quota_limit.map(Money::nanos),
            token.rpm_limit,
            token.tpm_limit,
            token.expires_at_ms,
            to_json(&token.models),
            token.enabled,
            now_ms,
            token.keyless_local
        ],
    )?;
    Ok(changed > 0)
}

pub fn delete(connection: &Conn, id: i64) -> DbResult<bool> {
    Ok(connection.engine().execute("DELETE FROM tokens WHERE id = ?1", args![id])? > 0)
}

/// What each token has spent, as stored: instances sharing a store read each other's spending.
pub fn spend(connection: &Conn) -> DbResult<Vec<(i64, Money)>> {
    connection
        .engine()
        .query("SELECT id, used_quota_nano FROM tokens", args![], |row| Ok((row.get(0)?, Money(row.get(1)?))))
}
