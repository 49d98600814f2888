//! The `prices` table: per-model prices per million tokens.

use burncloud_service_api::{Money, Price};
use rusqlite::{params, Connection};

use crate::DbResult;

pub fn list(connection: &Connection) -> DbResult<Vec<Price>> {
    let mut statement = connection
        .prepare_cached("SELECT model, input_nano_per_mtok, output_nano_per_mtok FROM prices ORDER BY model")?;
    let rows = statement.query_map([], |row| {
        Ok(Price { model: row.get(0)?, input_per_mtok: Money(row.get(1)?), output_per_mtok: Money(row.get(2)?) })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn upsert(connection: &Connection, price: &Price, now_ms: i64) -> DbResult<()> {
    connection.execute(
        "INSERT INTO prices (model, input_nano_per_mtok, output_nano_per_mtok, updated_at_ms) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (model) DO UPDATE SET input_nano_per_mtok = ?2, output_nano_per_mtok = ?3, updated_at_ms = ?4",
        params![price.model, price.input_per_mtok.0, price.output_per_mtok.0, now_ms],
    )?;
    Ok(())
}

pub fn delete(connection: &Connection, model: &str) -> DbResult<bool> {
    Ok(connection.execute("DELETE FROM prices WHERE model = ?1", [model])? > 0)
}
