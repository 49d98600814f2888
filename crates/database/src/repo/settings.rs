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
