//! Growing into a team store: every shared table of an SQLite store copied into an empty
//! PostgreSQL one, ids kept (groups, logs and stored responses refer to them), secrets opened with
//! the source's key and sealed again with the target's.

use crate::engine::{Begin, Engine};
use crate::values::{arg_list, args, Cell};
use crate::vault::Vault;
use crate::{Db, DbError, DbResult};

/// The shared tables in an order their references allow, each with the column holding a row's
/// sealed secret where it has one.
const TABLES: &[(&str, Option<&str>)] = &[
    ("channels", Some("api_key")),
    ("channel_groups", None),
    ("group_members", None),
    ("tokens", None),
    ("prices", None),
    ("settings", Some("value")),
    ("account", None),
    ("responses", None),
    ("usage_hourly", None),
    ("logs", None),
];

/// Tables whose ids PostgreSQL hands out, so its counters must start past the copied rows.
const IDENTITY_TABLES: &[&str] = &["channels", "channel_groups", "tokens", "logs"];

/// Rows per INSERT while copying: PostgreSQL takes up to 65,535 parameters in one statement.
const ROWS_PER_INSERT: usize = 500;

/// What was copied, table by table.
#[derive(Debug, Default)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, u64)>,
}

/// Copies every shared table of `source` (an SQLite store) into `target` (a PostgreSQL one) in
/// one transaction: all of it lands, or none. The target must hold nothing yet but what its
/// migrations made, so nothing is copied twice.
pub fn copy_shared_tables(source: &Db, target: &Db) -> DbResult<CopyReport> {
    if source.is_postgres() || !target.is_postgres() {
        return Err(DbError::Corrupt("copy from an SQLite store into a PostgreSQL one".into()));
    }
    source.read(|from| {
        // One snapshot of the source, even if something writes to it meanwhile.
        from.engine().transaction(Begin::Read, |from| {
            target.write(|to| {
                to.engine().transaction(Begin::Write, |to| {
                    refuse_unless_empty(to)?;
                    // What the migrations made (the account row and the `default` group) is replaced
                    // by the source's own.
                    to.batch("DELETE FROM account; DELETE FROM channel_groups;")?;
                    let mut report = CopyReport::default();
                    for (table, secret) in TABLES {
                        let copied = copy_table(from, to, table, *secret, source.vault(), target.vault())?;
                        report.tables.push((table, copied));
                    }
                    for table in IDENTITY_TABLES {
                        to.query(
                            &format!(
                                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                             COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)::text"
                            ),
                            args![],
                            |_| Ok(()),
                        )?;
                    }
                    Ok(report)
                })
            })
        })
    })
}

fn refuse_unless_empty(target: &Engine) -> DbResult<()> {
    for table in ["channels", "tokens", "prices", "logs", "responses"] {
        let rows: i64 = target.query_one(&format!("SELECT COUNT(*) FROM {table}"), args![], |row| row.get(0))?;
        if rows > 0 {
            return Err(DbError::Corrupt(format!(
                "the target database already holds {rows} row(s) in `{table}`; copy into a new, empty database"
            )));
        }
    }
    Ok(())
}

/// Rows read from the source at a time.
const PAGE: usize = 10_000;

fn read_cells(row: &crate::engine::Row<'_>) -> DbResult<Vec<Cell>> {
    (0..row.len()).map(|index| row.get::<Cell>(index)).collect()
}

fn insert_rows(
    target: &Engine,
    table: &str,
    list: &str,
    rows: &[Vec<Cell>],
    secret_at: Option<usize>,
    opened_with: &Vault,
    sealed_with: &Vault,
) -> DbResult<()> {
    let mut values: Vec<Cell> = Vec::with_capacity(rows.len() * rows.first().map_or(0, Vec::len));
    let mut placeholders = Vec::with_capacity(rows.len());
    for row in rows {
        let first = values.len() + 1;
        let numbered: Vec<String> = (first..first + row.len()).map(|n| format!("?{n}")).collect();
        placeholders.push(format!("({})", numbered.join(", ")));
        for (index, cell) in row.iter().enumerate() {
            values.push(match (cell, secret_at) {
                (Cell::Text(stored), Some(at)) if at == index && Vault::is_sealed(stored) => {
                    Cell::Text(sealed_with.seal(&opened_with.unseal(stored)?)?)
                }
                _ => cell.clone(),
            });
        }
    }
    target.execute(&format!("INSERT INTO {table} ({list}) VALUES {}", placeholders.join(", ")), &arg_list(&values))?;
    Ok(())
}

/// The target's columns of `table`, which the source has too (both schemas are at the same
/// migration).
fn columns(target: &Engine, table: &str) -> DbResult<Vec<String>> {
    target.query(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() \
         AND table_name = ?1 ORDER BY ordinal_position",
        args![table],
        |row| row.get(0),
    )
}

fn copy_table(
    source: &Engine,
    target: &Engine,
    table: &str,
    secret: Option<&str>,
    opened_with: &Vault,
    sealed_with: &Vault,
) -> DbResult<u64> {
    let columns = columns(target, table)?;
    let list = columns.join(", ");
    let secret_at = secret.and_then(|name| columns.iter().position(|column| column == name));
    // The check value that proves a shared key belongs to the target alone.
    let skip_key_check = if table == "settings" { " WHERE key <> 'secret_key_check'" } else { "" };
    let mut copied = 0;
    // Tables with an `id` are read a page at a time in its order: a call log may hold millions.
    let paged = columns.iter().any(|column| column == "id");
    let mut after: Option<Cell> = None;
    loop {
        let rows: Vec<Vec<Cell>> = match (&after, paged) {
            (_, false) => source.query(&format!("SELECT {list} FROM {table}{skip_key_check}"), args![], read_cells)?,
            (None, true) => {
                source.query(&format!("SELECT {list} FROM {table} ORDER BY id LIMIT {PAGE}"), args![], read_cells)?
            }
            (Some(last), true) => source.query(
                &format!("SELECT {list} FROM {table} WHERE id > ?1 ORDER BY id LIMIT {PAGE}"),
                args![last],
                read_cells,
            )?,
        };
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            insert_rows(target, table, &list, chunk, secret_at, opened_with, sealed_with)?;
            copied += chunk.len() as u64;
        }
        let id_at = columns.iter().position(|column| column == "id");
        match (rows.last(), id_at) {
            (Some(last), Some(at)) if paged && rows.len() == PAGE => after = Some(last[at].clone()),
            _ => break,
        }
    }
    Ok(copied)
}
