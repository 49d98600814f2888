//! The `instances` table: how each local model deployment is configured.

use crate::Conn;
use rusqlite::{params, OptionalExtension};

use crate::DbResult;

#[derive(Clone, Debug, PartialEq)]
pub struct InstanceRow {
    pub id: i64,
    pub model_id: i64,
    pub alias: String,
    pub ctx_size: u32,
    pub n_gpu_layers: i32,
    pub parallel: u32,
    pub created_at_ms: i64,
    /// `chat`, `embedding` or `rerank`.
    pub kind: String,
    pub mmproj_path: Option<String>,
    pub idle_ttl_s: u32,
    pub pinned: bool,
}

const COLUMNS: &str =
    "id, model_id, alias, ctx_size, n_gpu_layers, parallel, created_at_ms, kind, mmproj_path, idle_ttl_s, pinned";

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<InstanceRow> {
    Ok(InstanceRow {
        id: row.get(0)?,
        model_id: row.get(1)?,
        alias: row.get(2)?,
        ctx_size: row.get(3)?,
        n_gpu_layers: row.get(4)?,
        parallel: row.get(5)?,
        created_at_ms: row.get(6)?,
        kind: row.get(7)?,
        mmproj_path: row.get(8)?,
        idle_ttl_s: row.get(9)?,
        pinned: row.get(10)?,
    })
}

pub fn list(connection: &Conn) -> DbResult<Vec<InstanceRow>> {
    let connection = connection.sqlite("the instances table")?;
    let rows = connection
        .prepare_cached(&format!("SELECT {COLUMNS} FROM instances ORDER BY id"))?
        .query_map([], read_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn get(connection: &Conn, id: i64) -> DbResult<Option<InstanceRow>> {
    let connection = connection.sqlite("the instances table")?;
    Ok(connection
        .prepare_cached(&format!("SELECT {COLUMNS} FROM instances WHERE id = ?1"))?
        .query_row([id], read_row)
        .optional()?)
}

pub fn id_by_alias(connection: &Conn, alias: &str) -> DbResult<Option<i64>> {
    let connection = connection.sqlite("the instances table")?;
    Ok(connection
        .prepare_cached("SELECT id FROM instances WHERE alias = ?1")?
        .query_row([alias], |r| r.get(0))
        .optional()?)
}

/// Inserts `row` (its id is ignored); returns the new id.
pub fn insert(connection: &Conn, row: &InstanceRow) -> DbResult<i64> {
    let connection = connection.sqlite("the instances table")?;
    connection.execute(
        "INSERT INTO instances (model_id, alias, ctx_size, n_gpu_layers, parallel, created_at_ms, kind, \
         mmproj_path, idle_ttl_s, pinned) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            row.model_id,
            row.alias,
            row.ctx_size,
            row.n_gpu_layers,
            row.parallel,
            row.created_at_ms,
            row.kind,
            row.mmproj_path,
            row.idle_ttl_s,
            row.pinned
        ],
    )?;
    Ok(connection.last_insert_rowid())
}

/// Sets how long it may idle and whether it is pinned; false when there is no such row.
pub fn set_residency(connection: &Conn, id: i64, idle_ttl_s: u32, pinned: bool) -> DbResult<bool> {
    let connection = connection.sqlite("the instances table")?;
    Ok(connection
        .execute("UPDATE instances SET idle_ttl_s = ?2, pinned = ?3 WHERE id = ?1", params![id, idle_ttl_s, pinned])?
        > 0)
}

pub fn delete(connection: &Conn, id: i64) -> DbResult<bool> {
    let connection = connection.sqlite("the instances table")?;
    Ok(connection.execute("DELETE FROM instances WHERE id = ?1", [id])? > 0)
}
