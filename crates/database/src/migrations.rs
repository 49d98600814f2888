//! Embedded schema migrations, applied in order at open and tracked in `PRAGMA user_version`.

use rusqlite::Connection;

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
];

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
        let version: i64 = db.read(|c| Ok(c.sql().pragma_query_value(None, "user_version", |r| r.get(0))?)).unwrap();
        assert_eq!(version, super::MIGRATIONS.len() as i64);
        let mode: String = db.read(|c| Ok(c.sql().pragma_query_value(None, "journal_mode", |r| r.get(0))?)).unwrap();
        assert_eq!(mode, "wal");
    }
}
