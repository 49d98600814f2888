//! The `prices` table: per-model prices per million tokens, prompt-cache prices included, and the
//! prices per image, audio second and million characters.

use crate::values::args;
use crate::Conn;
use burncloud_service_api::{Money, Price};

use crate::DbResult;

pub fn list(connection: &Conn) -> DbResult<Vec<Price>> {
    connection.engine().query(
        "SELECT model, input_nano_per_mtok, output_nano_per_mtok, cache_read_nano_per_mtok, \
         cache_write_nano_per_mtok, cache_write_1h_nano_per_mtok, image_nano, audio_second_nano, million_chars_nano \
         FROM prices ORDER BY model",
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
            })
        },
    )
}

pub fn upsert(connection: &Conn, price: &Price, now_ms: i64) -> DbResult<()> {
    let nanos = |money: Option<Money>| money.map(|m| m.0);
    connection.engine().execute(
        "INSERT INTO prices (model, input_nano_per_mtok, output_nano_per_mtok, cache_read_nano_per_mtok, \
         cache_write_nano_per_mtok, cache_write_1h_nano_per_mtok, updated_at_ms, image_nano, audio_second_nano, \
         million_chars_nano) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (model) DO UPDATE SET input_nano_per_mtok = ?2, output_nano_per_mtok = ?3, \
         cache_read_nano_per_mtok = ?4, cache_write_nano_per_mtok = ?5, cache_write_1h_nano_per_mtok = ?6, \
         updated_at_ms = ?7, image_nano = ?8, audio_second_nano = ?9, million_chars_nano = ?10",
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
            nanos(price.per_million_characters)
        ],
    )?;
    Ok(())
}

pub fn delete(connection: &Conn, model: &str) -> DbResult<bool> {
    Ok(connection.engine().execute("DELETE FROM prices WHERE model = ?1", args![model])? > 0)
}
