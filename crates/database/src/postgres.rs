//! The PostgreSQL side of the engine: one session per connection, statements prepared once and
//! kept, SQLite's `?1` parameters spelled as PostgreSQL's `$1`, and values converted to and from
//! whatever type each column has.
//!
//! The repositories are synchronous (they run on blocking threads, as SQLite's do), so each call
//! here waits for its answer. The sockets are driven by one small runtime of this crate's own, and
//! the waiting is a plain `block_on` of the client's future, which needs no runtime: a repository
//! may run on any thread, a Tokio worker included, without nesting one runtime inside another.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::OnceLock;

use futures_executor::block_on;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::values::{Arg, Column, ToArg};
use crate::{DbError, DbResult};

/// The thread that drives every PostgreSQL socket of this process.
fn sockets() -> DbResult<&'static tokio::runtime::Runtime> {
    static SOCKETS: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    SOCKETS
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("burncloud-postgres")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| DbError::Corrupt(format!("cannot start the PostgreSQL runtime: {e}")))
}

/// The longest a new session may take to open: an unreachable server fails a call, not hangs it.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A server that vanished without closing the socket (a network cut, a host powered off) is found
/// out by TCP keepalives within about 10 s, so writes fail and wait for it rather than hang.
const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(4);
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
const KEEPALIVE_RETRIES: u32 = 3;

fn config(url: &str) -> DbResult<Config> {
    let mut config: Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.keepalives(true).keepalives_idle(KEEPALIVE_IDLE).keepalives_interval(KEEPALIVE_INTERVAL);
    config.keepalives_retries(KEEPALIVE_RETRIES);
    Ok(config)
}

/// One session with the server. Statements are prepared on first use and kept by their text, as
/// SQLite's `prepare_cached` keeps them.
pub(crate) struct PgConnection {
    client: Client,
    prepared: RefCell<HashMap<String, Statement>>,
}

/// Opens a session whose socket lives on this crate's runtime, driven by `drive` (which ends, and
/// the session with it, when the client is dropped); the client can be awaited anywhere.
async fn open_session<D, F>(url: &str, drive: D) -> DbResult<Client>
where
    D: FnOnce(tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>) -> F
        + Send
        + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = sockets()?;
    let config = config(url)?;
    let connecting = runtime.spawn(async move {
        let (client, connection) = config.connect(NoTls).await?;
        #[expect(
            clippy::disallowed_methods,
            reason = "the session's socket task is owned by its client: it ends when the client is dropped"
        )]
        tokio::spawn(drive(connection));
        Ok::<_, tokio_postgres::Error>(client)
    });
    connecting.await.map_err(|e| DbError::Corrupt(format!("connecting to PostgreSQL: {e}")))?.map_err(DbError::from)
}

/// A session for async callers: the socket on this crate's runtime, the client awaited anywhere.
pub(crate) async fn connect_async(url: &str) -> DbResult<Client> {
    open_session(url, |connection| async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "a PostgreSQL session ended");
        }
    })
    .await
}

impl PgConnection {
    pub(crate) fn connect(url: &str) -> DbResult<PgConnection> {
        let client = block_on(connect_async(url))?;
        Ok(PgConnection { client, prepared: RefCell::new(HashMap::new()) })
    }

    fn statement(&self, sql: &str) -> DbResult<Statement> {
        if let Some(statement) = self.prepared.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = block_on(self.client.prepare(&numbered_parameters(sql)))?;
        self.prepared.borrow_mut().insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub(crate) fn execute(&self, sql: &str, args: &[&dyn ToArg]) -> DbResult<u64> {
        let statement = self.statement(sql)?;
        let values: Vec<Arg<'_>> = args.iter().map(|a| a.to_arg()).collect();
        Ok(block_on(self.client.execute(&statement, &bound(&values)))?)
    }

    pub(crate) fn query(&self, sql: &str, args: &[&dyn ToArg]) -> DbResult<Vec<tokio_postgres::Row>> {
        let statement = self.statement(sql)?;
        let values: Vec<Arg<'_>> = args.iter().map(|a| a.to_arg()).collect();
        Ok(block_on(self.client.query(&statement, &bound(&values)))?)
    }

    pub(crate) fn batch(&self, sql: &str) -> DbResult<()> {
        Ok(block_on(self.client.batch_execute(sql))?)
    }

    /// Streams `rows` into `table`'s `columns` with binary `COPY`: one round trip for a whole
    /// batch, and no SQL to parse per row. Each row's values come from `args_of`, in column order.
    pub(crate) fn copy_in<R, const N: usize>(
        &self,
        table: &str,
        columns: &str,
        rows: &[R],
        args_of: impl for<'r> Fn(&'r R) -> [Arg<'r>; N],
    ) -> DbResult<u64> {
        // The columns' types, as COPY's binary format needs them, from a statement kept like any.
        let described = self.statement(&format!("SELECT {columns} FROM {table} LIMIT 0"))?;
        let types: Vec<Type> = described.columns().iter().map(|column| column.type_().clone()).collect();
        block_on(async {
            let sink = self.client.copy_in(&format!("COPY {table} ({columns}) FROM STDIN BINARY")).await?;
            let mut writer = std::pin::pin!(tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, &types));
            for row in rows {
                writer.as_mut().write(&bound(&args_of(row))).await?;
            }
            Ok(writer.as_mut().finish().await?)
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// A session that only listens: each notification on `channel` (from any instance's `NOTIFY`)
/// arrives as its payload on the receiver, which ends when the session does. The client must be
/// kept: dropping it ends the session.
pub(crate) fn listen(url: &str, channel: &str) -> DbResult<(Client, tokio::sync::mpsc::UnboundedReceiver<String>)> {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let client = block_on(open_session(url, |mut connection| async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(notification))) => {
                    if sender.send(notification.payload().to_string()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::warn!(%error, "the PostgreSQL session that listens for changes ended");
                    return;
                }
                None => return,
            }
        }
    }))?;
    block_on(client.batch_execute(&format!("LISTEN {channel}")))?;
    Ok((client, receiver))
}

/// Values as the client binds them.
fn bound<'v>(values: &'v [Arg<'_>]) -> Vec<&'v (dyn ToSql + Sync)> {
    values.iter().map(|value| value as &(dyn ToSql + Sync)).collect()
}

/// `?1`, `?2` … as `$1`, `$2` …, leaving quoted text alone: the repositories write each statement
/// once, in the form SQLite reads.
pub(crate) fn numbered_parameters(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

impl ToSql for Arg<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match *self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(value) => match *ty {
                Type::INT8 => value.to_sql(ty, out),
                Type::INT4 => i32::try_from(value)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(value)?.to_sql(ty, out),
                Type::BOOL => (value != 0).to_sql(ty, out),
                Type::FLOAT8 => (value as f64).to_sql(ty, out),
                _ => Err(format!("an integer cannot be stored as {ty}").into()),
            },
            Arg::Real(value) => match *ty {
                Type::FLOAT8 => value.to_sql(ty, out),
                Type::FLOAT4 => (value as f32).to_sql(ty, out),
                _ => Err(format!("a real number cannot be stored as {ty}").into()),
            },
            Arg::Text(text) => text.to_sql(ty, out),
            Arg::Blob(bytes) => bytes.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`, which knows the value's own kind.
        true
    }

    to_sql_checked!();
}

/// Column `index` of `row` as the engine's plain value, handed to `read`.
pub(crate) fn with_column<T>(
    row: &tokio_postgres::Row,
    index: usize,
    read: impl FnOnce(Column<'_>) -> DbResult<T>,
) -> DbResult<T> {
    let Some(column) = row.columns().get(index) else {
        return Err(DbError::Corrupt(format!("column {index} is not in the row")));
    };
    let ty = column.type_().clone();
    let value = match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map_or(Column::Null, Column::Int),
        Type::INT4 => row.try_get::<_, Option<i32>>(index)?.map_or(Column::Null, |v| Column::Int(v.into())),
        Type::INT2 => row.try_get::<_, Option<i16>>(index)?.map_or(Column::Null, |v| Column::Int(v.into())),
        Type::BOOL => row.try_get::<_, Option<bool>>(index)?.map_or(Column::Null, |v| Column::Int(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(index)?.map_or(Column::Null, Column::Real),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(index)?.map_or(Column::Null, |v| Column::Real(v.into())),
        Type::BYTEA => return read(row.try_get::<_, Option<&[u8]>>(index)?.map_or(Column::Null, Column::Blob)),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            return read(row.try_get::<_, Option<&str>>(index)?.map_or(Column::Null, Column::Text))
        }
        other => {
            return Err(DbError::Corrupt(format!(
                "column {index} ({}) has type {other}, which the repositories do not read (cast it)",
                column.name()
            )))
        }
    };
    read(value)
}

#[cfg(test)]
mod tests {
    use super::numbered_parameters;

    #[test]
    fn numbers_parameters_outside_quoted_text() {
        assert_eq!(
            numbered_parameters("SELECT ?1, ?12 WHERE a = '?3' AND b = ?2"),
            "SELECT $1, $12 WHERE a = '?3' AND b = $2"
        );
        assert_eq!(numbered_parameters("SELECT '?' || ?1"), "SELECT '?' || $1");
    }
}
