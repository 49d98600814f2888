//! Embedded schema migrations, applied in order at open: SQLite's tracked in `PRAGMA
//! user_version`, PostgreSQL's (the shared tables only) in a `schema_migrations` table.

use rusqlite::Connection;

use crate::engine::{Begin, Engine};
use crate::values::args;
use crate::DbResult;

/// Every migration in `migrations/`, in order. Append only: never edit one that has shipped.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../../../migrations/0001_init.sql")),
    ("0002_settings", include_str!("../../../migrations/0002_settings.sql")),
    ("0003_groups", include_str!("../../../migrations/0003_groups.sql")),
    ("0004_models", include_str!("../../../migrations/0004_models.sql")),
    ("0005_instances", include_str!("../../../migrations/0005_instances.sql")),
    ("0006_usage_hourly", include_str!("../../../migrations/0006_usage_hourly.sql")),
    ("0007_cache_usage", include_str!("../../../migrations/0007_cache_usage.sql")),
    ("0008_responses", include_str!("../../../migrations/0008_responses.sql")),
    ("0009_on_demand", include_str!("../../../migrations/0009_on_demand.sql")),
    ("0010_keyless_local", include_str!("../../../migrations/0010_keyless_local.sql")),
    ("0011_media_units", include_str!("../../../migrations/0011_media_units.sql")),
    ("0012_price_schedules", include_str!("../../../migrations/0012_price_schedules.sql")),
];

/// The team store's migrations, in order. Append only, in step with the SQLite list above.
const POSTGRES_MIGRATIONS: &[(&str, &str)] = &[
    ("0001_shared", include_str!("../../../migrations/postgres/0001_shared.sql")),
    ("0002_price_schedules", include_str!("../../../migrations/postgres/0002_price_schedules.sql")),
];

/// An arbitrary constant that names BurnCloud's migration lock among PostgreSQL's advisory locks:
/// instances starting together take turns, and the second finds the work done.
const MIGRATION_LOCK: i64 = 0x4275_726e_436c_6f75;

pub(crate) fn apply_postgres(engine: &Engine) -> DbResult<()> {
    engine.transaction(Begin::Write, |engine| {
        // The lock comes first: even `CREATE TABLE IF NOT EXISTS` collides when two run at once.
        engine.query("SELECT 1 FROM pg_advisory_xact_lock(?1)", args![MIGRATION_LOCK], |_| Ok(()))?;
        engine.batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
             applied_at_ms BIGINT NOT NULL)",
        )?;
        let applied: i64 =
            engine.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", args![], |row| row.get(0))?;
        for (index, (name, sql)) in POSTGRES_MIGRATIONS.iter().enumerate().skip(applied as usize) {
            engine.batch(sql)?;
            engine.execute(
                "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?1, ?2, ?3)",
                args![index + 1, *name, crate::now_ms()],
            )?;
        }
        Ok(())
    })
}

pub(crate) fn apply(connection: &mut Connection) -> DbResult<()> {
    let applied: usize = connection.pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))? as usize;
    for (index, (_name, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", (index + 1) as i64)?;
        transaction.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Db;

    #[test]
    fn applies_once_and_reopens_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("burncloud.db");
        drop(Db::open(&path).unwrap());
        let db = Db::open(&path).unwrap();
        let version: i64 =
            db.read(|c| Ok(c.sqlite("")?.pragma_query_value(None, "user_version", |r| r.get(0))?)).unwrap();
        assert_eq!(version, super::MIGRATIONS.len() as i64);
        let mode: String =
            db.read(|c| Ok(c.sqlite("")?.pragma_query_value(None, "journal_mode", |r| r.get(0))?)).unwrap();
        assert_eq!(mode, "wal");
    }
}
