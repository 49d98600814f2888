//! The `prices` table: per-model prices per million tokens, prompt-cache prices included, and the
//! prices per image, audio second and million characters.

use crate::engine::{Begin, Engine};
use crate::values::args;
use crate::Conn;
use burncloud_service_api::{Money, Price};

use crate::{DbError, DbResult};

pub fn list(connection: &Conn) -> DbResult<Vec<Price>> {
    connection.engine().query(
        "SELECT model, input_nano_per_mtok, output_nano_per_mtok, cache_read_nano_per_mtok, \
         cache_write_nano_per_mtok, cache_write_1h_nano_per_mtok, image_nano, audio_second_nano, million_chars_nano, \
         tiers_json, peak_json FROM prices ORDER BY model",
        args![],
        |row| {
            let money = |index: usize| row.get::<Option<i64>>(index).map(|nanos| nanos.map(Money));
            Ok(Price {
                model: row.get(0)?,
                input_per_mtok: Money(row.get(1)?),
                output_per_mtok: Money(row.get(2)?),
                cache_read_per_mtok: money(3)?,
                cache_write_per_mtok: money(4)?,
                cache_write_1h_per_mtok: money(5)?,
                per_image: money(6)?,
                per_audio_second: money(7)?,
                per_million_characters: money(8)?,
                tiers: json_column(row.get(9)?, "tiers_json")?.unwrap_or_default(),
                peak: json_column(row.get(10)?, "peak_json")?,
            })
        },
    )
}

pub fn upsert(connection: &Conn, price: &Price, now_ms: i64) -> DbResult<()> {
    upsert_on(connection.engine(), price, now_ms)
}

/// Sets several prices in one transaction: all of them, or none.
pub fn upsert_all(connection: &Conn, prices: &[Price], now_ms: i64) -> DbResult<()> {
    connection
        .engine()
        .transaction(Begin::Write, |engine| prices.iter().try_for_each(|price| upsert_on(engine, price, now_ms)))
}

fn upsert_on(engine: &Engine, price: &Price, now_ms: i64) -> DbResult<()> {
    let nanos = |money: Option<Money>| money.map(|m| m.0);
    engine.execute(
        "INSERT INTO prices (model, input_nano_per_mtok, output_nano_per_mtok, cache_read_nano_per_mtok, \
         cache_write_nano_per_mtok, cache_write_1h_nano_per_mtok, updated_at_ms, image_nano, audio_second_nano, \
         million_chars_nano, tiers_json, peak_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
         ON CONFLICT (model) DO UPDATE SET input_nano_per_mtok = ?2, output_nano_per_mtok = ?3, \
         cache_read_nano_per_mtok = ?4, cache_write_nano_per_mtok = ?5, cache_write_1h_nano_per_mtok = ?6, \
         updated_at_ms = ?7, image_nano = ?8, audio_second_nano = ?9, million_chars_nano = ?10, tiers_json = ?11, \
         peak_json = ?12",
        args![
            price.model,
            price.input_per_mtok.0,
            price.output_per_mtok.0,
            nanos(price.cache_read_per_mtok),
            nanos(price.cache_write_per_mtok),
            nanos(price.cache_write_1h_per_mtok),
            now_ms,
            nanos(price.per_image),
            nanos(price.per_audio_second),
            nanos(price.per_million_characters),
            (!price.tiers.is_empty()).then(|| json_text(&price.tiers)),
            price.peak.as_ref().map(json_text)
        ],
    )?;
    Ok(())
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("tiers and peak hours are plain data")
}

/// A stored tiers or peak-hours document; one that no longer parses is a corrupt row, named.
fn json_column<T: serde::de::DeserializeOwned>(text: Option<String>, column: &str) -> DbResult<Option<T>> {
    text.map(|text| serde_json::from_str(&text).map_err(|error| DbError::Corrupt(format!("prices.{column}: {error}"))))
        .transpose()
}

pub fn delete(connection: &Conn, model: &str) -> DbResult<bool> {
    Ok(connection.engine().execute("DELETE FROM prices WHERE model = ?1", args![model])? > 0)
}
