//! The `local_models` table: GGUF models on disk, downloaded or imported.

use burncloud_service_api::ModelOrigin;
use rusqlite::{params, OptionalExtension};

use super::{from_json, to_json};
use crate::{Conn, DbError, DbResult};

#[derive(Clone, Debug, PartialEq)]
pub struct LocalModelRow {
    pub id: i64,
    pub path: String,
    pub files: Vec<String>,
    pub size: u64,
    pub sha256: Option<String>,
    pub source: ModelOrigin,
    pub repo: Option<String>,
    pub quant: Option<String>,
    pub added_at_ms: i64,
}

const COLUMNS: &str = "id, path, files, size, sha256, source, repo, quant, added_at_ms";

type RawRow = (i64, String, String, i64, Option<String>, String, Option<String>, Option<String>, i64);

fn read_raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

fn decode(raw: RawRow) -> DbResult<LocalModelRow> {
    let (id, path, files, size, sha256, source, repo, quant, added_at_ms) = raw;
    let source =
        ModelOrigin::parse(&source).ok_or_else(|| DbError::Corrupt(format!("local_models.source {source:?}")))?;
    Ok(LocalModelRow {
        id,
        path,
        files: from_json("local_models.files", &files)?,
        size: size.max(0) as u64,
        sha256,
        source,
        repo,
        quant,
        added_at_ms,
    })
}

pub fn list(connection: &Conn) -> DbResult<Vec<LocalModelRow>> {
    let connection = connection.sqlite("the local models table")?;
    let raws: Vec<RawRow> = connection
        .prepare_cached(&format!("SELECT {COLUMNS} FROM local_models ORDER BY id DESC"))?
        .query_map([], read_raw)?
        .collect::<Result<_, _>>()?;
    raws.into_iter().map(decode).collect()
}

pub fn get(connection: &Conn, id: i64) -> DbResult<Option<LocalModelRow>> {
    let connection = connection.sqlite("the local models table")?;
    let raw = connection
        .prepare_cached(&format!("SELECT {COLUMNS} FROM local_models WHERE id = ?1"))?
        .query_row([id], read_raw)
        .optional()?;
    raw.map(decode).transpose()
}

pub fn id_by_path(connection: &Conn, path: &str) -> DbResult<Option<i64>> {
    let connection = connection.sqlite("the local models table")?;
    Ok(connection
        .prepare_cached("SELECT id FROM local_models WHERE path = ?1")?
        .query_row([path], |r| r.get(0))
        .optional()?)
}

/// Inserts the model, or refreshes the row already registered for the same path; returns its id.
pub fn upsert(conn: &Conn, row: &LocalModelRow) -> DbResult<i64> {
    let connection = conn.sqlite("the local models table")?;
    connection.execute(
        "INSERT INTO local_models (path, files, size, sha256, source, repo, quant, added_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (path) DO UPDATE SET files = ?2, size = ?3, \
         sha256 = ?4, source = ?5, repo = ?6, quant = ?7",
        params![
            row.path,
            to_json(&row.files),
            row.size as i64,
            row.sha256,
            row.source.as_str(),
            row.repo,
            row.quant,
            row.added_at_ms
        ],
    )?;
    let inserted = connection.last_insert_rowid();
    Ok(id_by_path(conn, &row.path)?.unwrap_or(inserted))
}

pub fn delete(connection: &Conn, id: i64) -> DbResult<bool> {
    let connection = connection.sqlite("the local models table")?;
    Ok(connection.execute("DELETE FROM local_models WHERE id = ?1", [id])? > 0)
}
