//! The `downloads` table: what to fetch from which hub, its state and its last known progress.

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{from_json, to_json};
use crate::{Conn, DbError, DbResult};
use burncloud_service_api::{DownloadState, HubSource};

/// One file of a download, with what the hub said it must be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DownloadFile {
    pub path: String,
    pub size: u64,
    pub sha256: Option<String>,
    /// Where a file of a non-hub source (a runtime archive) is fetched from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DownloadRow {
    pub id: i64,
    pub source: HubSource,
    pub repo: String,
    pub path: String,
    pub files: Vec<DownloadFile>,
    /// The commit the download is pinned to once the hub named it.
    pub revision: Option<String>,
    pub state: DownloadState,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub error: Option<String>,
    pub local_model_id: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

const COLUMNS: &str = "id, source, repo, path, files, revision, state, bytes_done, bytes_total, error, \
                       local_model_id, created_at_ms, updated_at_ms";

type RawRow =
    (i64, String, String, String, String, Option<String>, String, i64, i64, Option<String>, Option<i64>, i64, i64);

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
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
        row.get(12)?,
    ))
}

fn decode(raw: RawRow) -> DbResult<DownloadRow> {
    let (id, source, repo, path, files, revision, state, done, total, error, local_model_id, created, updated) = raw;
    Ok(DownloadRow {
        id,
        source: HubSource::parse(&source).ok_or_else(|| DbError::Corrupt(format!("downloads.source {source:?}")))?,
        repo,
        path,
        files: from_json("downloads.files", &files)?,
        revision,
        state: DownloadState::parse(&state).ok_or_else(|| DbError::Corrupt(format!("downloads.state {state:?}")))?,
        bytes_done: done.max(0) as u64,
        bytes_total: total.max(0) as u64,
        error,
        local_model_id,
        created_at_ms: created,
        updated_at_ms: updated,
    })
}

pub fn list(connection: &Conn) -> DbResult<Vec<DownloadRow>> {
    let connection = connection.sqlite("the downloads table")?;
    let raws: Vec<RawRow> = connection
        .prepare_cached(&format!("SELECT {COLUMNS} FROM downloads ORDER BY id DESC"))?
        .query_map([], read_raw)?
        .collect::<Result<_, _>>()?;
    raws.into_iter().map(decode).collect()
}

pub fn get(connection: &Conn, id: i64) -> DbResult<Option<DownloadRow>> {
    let connection = connection.sqlite("the downloads table")?;
    let raw = connection
        .prepare_cached(&format!("SELECT {COLUMNS} FROM downloads WHERE id = ?1"))?
        .query_row([id], read_raw)
        .optional()?;
    raw.map(decode).transpose()
}

/// Inserts `row` (its id is ignored); returns the new id.
pub fn insert(connection: &Conn, row: &DownloadRow) -> DbResult<i64> {
    let connection = connection.sqlite("the downloads table")?;
    connection.execute(
        "INSERT INTO downloads (source, repo, path, files, revision, state, bytes_done, bytes_total, error, \
         local_model_id, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            row.source.as_str(),
            row.repo,
            row.path,
            to_json(&row.files),
            row.revision,
            row.state.as_str(),
            row.bytes_done as i64,
            row.bytes_total as i64,
            row.error,
            row.local_model_id,
            row.created_at_ms,
            row.updated_at_ms
        ],
    )?;
    Ok(connection.last_insert_rowid())
}

/// Saves every mutable field of `row`.
pub fn update(connection: &Conn, row: &DownloadRow) -> DbResult<()> {
    let connection = connection.sqlite("the downloads table")?;
    connection.execute(
        "UPDATE downloads SET files = ?2, revision = ?3, state = ?4, bytes_done = ?5, bytes_total = ?6, error = ?7, \
         local_model_id = ?8, updated_at_ms = ?9 WHERE id = ?1",
        params![
            row.id,
            to_json(&row.files),
            row.revision,
            row.state.as_str(),
            row.bytes_done as i64,
            row.bytes_total as i64,
            row.error,
            row.local_model_id,
            row.updated_at_ms
        ],
    )?;
    Ok(())
}

pub fn delete(connection: &Conn, id: i64) -> DbResult<bool> {
    let connection = connection.sqlite("the downloads table")?;
    Ok(connection.execute("DELETE FROM downloads WHERE id = ?1", [id])? > 0)
}

/// Forgets the downloads that produced a local model (when the model is deleted).
pub fn delete_for_local_model(connection: &Conn, local_model_id: i64) -> DbResult<usize> {
    let connection = connection.sqlite("the downloads table")?;
    Ok(connection.execute("DELETE FROM downloads WHERE local_model_id = ?1", [local_model_id])?)
}
