//! One way for repositories to speak to either store: statements written once (with `?1`-style
//! parameters), arguments and columns as a handful of plain values, and transactions, run on
//! SQLite or PostgreSQL alike.

use rusqlite::types::ValueRef;

use crate::postgres::PgConnection;
use crate::values::{Column, FromColumn, ToArg};
use crate::{DbError, DbResult};

/// A result row of either store.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a tokio_postgres::Row),
}

impl Row<'_> {
    /// How many columns the row has.
    pub(crate) fn len(&self) -> usize {
        match self {
            Row::Sqlite(row) => row.as_ref().column_count(),
            Row::Postgres(row) => row.len(),
        }
    }

    /// Column `index` (0-based) as `T`; a column of another kind is a corrupt row, named.
    pub(crate) fn get<T: FromColumn>(&self, index: usize) -> DbResult<T> {
        let read = |column: Column<'_>| {
            T::from_column(column).map_err(|problem| DbError::Corrupt(format!("column {index}: {problem}")))
        };
        match self {
            Row::Sqlite(row) => read(match row.get_ref(index)? {
                ValueRef::Null => Column::Null,
                ValueRef::Integer(value) => Column::Int(value),
                ValueRef::Real(value) => Column::Real(value),
                ValueRef::Text(text) => Column::Text(
                    std::str::from_utf8(text).map_err(|e| DbError::Corrupt(format!("column {index}: {e}")))?,
                ),
                ValueRef::Blob(bytes) => Column::Blob(bytes),
            }),
            Row::Postgres(row) => crate::postgres::with_column(row, index, read),
        }
    }
}

/// Which store a connection speaks to.
pub(crate) enum Engine {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgConnection>),
}

/// How a transaction begins: a writer's claims the write lock at once (SQLite would otherwise
/// fail a transaction that read first and wrote second when another writer came between); a
/// reader's sees one snapshot of every table.
#[derive(Clone, Copy)]
pub(crate) enum Begin {
    Write,
    Read,
}

impl Engine {
    /// Runs a statement that returns no rows; answers how many rows it changed.
    pub(crate) fn execute(&self, sql: &str, args: &[&dyn ToArg]) -> DbResult<u64> {
        match self {
            Engine::Sqlite(connection) => {
                let mut statement = connection.prepare_cached(sql)?;
                let changed = statement.execute(rusqlite::params_from_iter(args.iter().map(|a| a.to_arg())))?;
                Ok(changed as u64)
            }
            Engine::Postgres(connection) => connection.execute(sql, args),
        }
    }

    /// Every row `sql` answers, each read by `read`.
    pub(crate) fn query<T>(
        &self,
        sql: &str,
        args: &[&dyn ToArg],
        mut read: impl FnMut(&Row<'_>) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        match self {
            Engine::Sqlite(connection) => {
                let mut statement = connection.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(args.iter().map(|a| a.to_arg())))?;
                let mut found = Vec::new();
                while let Some(row) = rows.next()? {
                    found.push(read(&Row::Sqlite(row))?);
                }
                Ok(found)
            }
            Engine::Postgres(connection) => {
                connection.query(sql, args)?.iter().map(|row| read(&Row::Postgres(row))).collect()
            }
        }
    }

    /// The first row `sql` answers, if any.
    pub(crate) fn query_opt<T>(
        &self,
        sql: &str,
        args: &[&dyn ToArg],
        read: impl FnMut(&Row<'_>) -> DbResult<T>,
    ) -> DbResult<Option<T>> {
        Ok(self.query(sql, args, read)?.into_iter().next())
    }

    /// The one row `sql` must answer.
    pub(crate) fn query_one<T>(
        &self,
        sql: &str,
        args: &[&dyn ToArg],
        read: impl FnMut(&Row<'_>) -> DbResult<T>,
    ) -> DbResult<T> {
        self.query_opt(sql, args, read)?.ok_or_else(|| DbError::Corrupt(format!("no row for: {sql}")))
    }

    /// Runs `work` in one transaction: committed when it succeeds, rolled back when it fails.
    pub(crate) fn transaction<T>(&self, begin: Begin, work: impl FnOnce(&Engine) -> DbResult<T>) -> DbResult<T> {
        let start = match (self, begin) {
            (Engine::Sqlite(_), Begin::Write) => "BEGIN IMMEDIATE",
            (Engine::Sqlite(_), Begin::Read) => "BEGIN DEFERRED",
            (Engine::Postgres(_), Begin::Write) => "BEGIN",
            (Engine::Postgres(_), Begin::Read) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        self.batch(start)?;
        match work(self) {
            Ok(value) => {
                self.batch("COMMIT")?;
                Ok(value)
            }
            Err(error) => {
                if let Err(rollback) = self.batch("ROLLBACK") {
                    tracing::warn!(%rollback, "a failed transaction could not be rolled back");
                }
                Err(error)
            }
        }
    }

    /// Runs statements without parameters, as one batch.
    pub(crate) fn batch(&self, sql: &str) -> DbResult<()> {
        match self {
            Engine::Sqlite(connection) => Ok(connection.execute_batch(sql)?),
            Engine::Postgres(connection) => connection.batch(sql),
        }
    }
}
