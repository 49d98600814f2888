//! BurnCloud's store: an SQLite file in WAL mode, or for a team the shared tables on PostgreSQL;
//! one writer connection and a small pool of readers, embedded migrations, and the repositories
//! for every table.

mod copy;
mod engine;
mod migrations;
mod postgres;
pub mod repo;
mod values;
pub mod vault;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use burncloud_service_api::ServiceError;
use engine::Engine;
use rusqlite::{Connection, OpenFlags};

pub use copy::{copy_shared_tables, CopyReport};
pub use repo::config::{ChannelRecord, GatewayConfig, TokenRecord};
pub use repo::logs::NewLogRow;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgresql: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("{0} is kept in this machine's own SQLite store, not in a shared PostgreSQL one")]
    LocalOnly(&'static str),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("cannot create data dir {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("secret store: {0}")]
    Secret(String),
}

impl From<DbError> for ServiceError {
    fn from(error: DbError) -> Self {
        if let DbError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) = &error {
            match failure.code {
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                    return ServiceError::Busy(format!(
                        "the database is held by another program; try again in a moment ({error})"
                    ));
                }
                rusqlite::ErrorCode::DiskFull => {
                    return ServiceError::InsufficientStorage(format!(
                        "the disk holding the database is full; free some space ({error})"
                    ));
                }
                _ => {}
            }
        }
        ServiceError::Storage(error.to_string())
    }
}

pub type DbResult<T> = Result<T, DbError>;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_IDLE_READERS: usize = 4;

/// A connection as the services see it: something to hand to a `repo::…` function, with no way to
/// run SQL of their own on it, so that every statement lives in this crate.
pub struct Conn(Engine);

impl Conn {
    /// The connection as the engine-neutral repositories use it.
    pub(crate) fn engine(&self) -> &Engine {
        &self.0
    }

    /// The SQLite connection, for what only SQLite holds: `what` names it in the error otherwise.
    pub(crate) fn sqlite(&self, what: &'static str) -> DbResult<&Connection> {
        match &self.0 {
            Engine::Sqlite(connection) => Ok(connection),
            Engine::Postgres(_) => Err(DbError::LocalOnly(what)),
        }
    }

    /// Whether this connection still reaches its store (a PostgreSQL server can go away).
    fn is_usable(&self) -> bool {
        match &self.0 {
            Engine::Sqlite(_) => true,
            Engine::Postgres(connection) => !connection.is_closed(),
        }
    }
}

/// What instances sharing a store tell one another about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Channels, tokens, groups, prices, settings or the account: reload the configuration.
    Config,
    /// Calls were charged: re-read what each token and the account has spent.
    Spend,
}

impl Change {
    fn channel(self) -> &'static str {
        match self {
            Change::Config => "burncloud_config",
            Change::Spend => "burncloud_spend",
        }
    }
}

/// Notifications from the other instances on a shared store; see `Db::listen`.
pub struct ChangeFeed {
    _session: tokio_postgres::Client,
    changes: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl ChangeFeed {
    /// Waits for the next change and answers the payloads of every notification that has come
    /// since. `None`: the session ended (the server went away) and a new feed is needed.
    pub async fn next(&mut self) -> Option<Vec<String>> {
        let mut payloads = vec![self.changes.recv().await?];
        while let Ok(payload) = self.changes.try_recv() {
            payloads.push(payload);
        }
        Some(payloads)
    }
}

/// Sends notifications to the other instances on its own session, opened on first use and again
/// after the server went away. Async: a call's charge goes out from the runtime it finished on,
/// with no thread between.
pub struct Announcer {
    url: String,
    session: Option<tokio_postgres::Client>,
}

impl Announcer {
    /// Tells every instance that `kind` changed, with `payload` (PostgreSQL keeps it under 8000
    /// bytes).
    pub async fn announce(&mut self, kind: Change, payload: &str) -> DbResult<()> {
        if self.session.as_ref().is_some_and(tokio_postgres::Client::is_closed) {
            self.session = None;
        }
        let session = match &mut self.session {
            Some(session) => session,
            None => self.session.insert(postgres::connect_async(&self.url).await?),
        };
        session.execute("SELECT pg_notify($1, $2)::text", &[&kind.channel(), &payload]).await?;
        Ok(())
    }
}

fn announce_on(engine: &Engine, kind: Change, payload: &str) -> DbResult<()> {
    engine.query("SELECT pg_notify(?1, ?2)::text", values::args![kind.channel(), payload], |_| Ok(()))?;
    Ok(())
}

/// Where the database lives.
enum Location {
    SqliteFile(PathBuf),
    Postgres(String),
}

/// The database: every write goes through one connection, reads through a pool.
pub struct Db {
    location: Location,
    writer: Mutex<Conn>,
    readers: Mutex<Vec<Conn>>,
    vault: vault::Vault,
}

impl Db {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub fn open(path: impl AsRef<Path>) -> DbResult<Db> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| DbError::CreateDir { path: parent.to_path_buf(), source })?;
        }
        let mut writer = Connection::open(&path)?;
        configure(&writer)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        migrations::apply(&mut writer)?;
        let data_dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let vault = vault::Vault::open(data_dir)?;
        Db::finish_open(Location::SqliteFile(path), Conn(Engine::Sqlite(writer)), vault)
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user@host:port/name`) and applies
    /// its pending migrations. Secrets are sealed with the key in `BURNCLOUD_SECRET_KEY`, else the
    /// one in `data_dir`; every instance sharing the database must have the same one, and one
    /// that does not is refused here.
    pub fn open_postgres(url: &str, data_dir: impl AsRef<Path>) -> DbResult<Db> {
        let writer = Engine::Postgres(Box::new(postgres::PgConnection::connect(url)?));
        migrations::apply_postgres(&writer)?;
        let data_dir = data_dir.as_ref();
        std::fs::create_dir_all(data_dir)
            .map_err(|source| DbError::CreateDir { path: data_dir.to_path_buf(), source })?;
        let vault = vault::Vault::open_shared(data_dir)?;
        let writer = Conn(writer);
        repo::settings::check_shared_key(&writer, &vault)?;
        Db::finish_open(Location::Postgres(url.to_string()), writer, vault)
    }

    fn finish_open(location: Location, writer: Conn, vault: vault::Vault) -> DbResult<Db> {
        let sealed = repo::channels::seal_plaintext_keys(&writer, &vault)?
            + repo::settings::seal_plaintext_secrets(&writer, &vault)?;
        if sealed > 0 {
            tracing::info!(sealed, "encrypted secrets that were stored in plain text");
        }
        Ok(Db { location, writer: Mutex::new(writer), readers: Mutex::new(Vec::new()), vault })
    }

    /// For a shared store: a feed that yields whenever any instance changed what `kind` names.
    /// `None` on SQLite, which only this process writes.
    pub fn listen(&self, kind: Change) -> DbResult<Option<ChangeFeed>> {
        match &self.location {
            Location::SqliteFile(_) => Ok(None),
            Location::Postgres(url) => {
                let (session, changes) = postgres::listen(url, kind.channel())?;
                Ok(Some(ChangeFeed { _session: session, changes }))
            }
        }
    }

    /// Tells every instance on a shared store that `kind` changed (nothing to tell on SQLite).
    pub fn announce(&self, kind: Change) -> DbResult<()> {
        if self.is_postgres() {
            self.write(|c| announce_on(c.engine(), kind, ""))?;
        }
        Ok(())
    }

    /// For a shared store: a session of its own for frequent announcements (each call's charge),
    /// so they never wait behind the log writer. `None` on SQLite.
    pub fn announcer(&self) -> DbResult<Option<Announcer>> {
        match &self.location {
            Location::SqliteFile(_) => Ok(None),
            Location::Postgres(url) => Ok(Some(Announcer { url: url.clone(), session: None })),
        }
    }

    /// Whether this is a shared PostgreSQL store rather than an SQLite file.
    pub fn is_postgres(&self) -> bool {
        matches!(self.location, Location::Postgres(_))
    }

    fn connect(&self, read_only: bool) -> DbResult<Conn> {
        match &self.location {
            Location::SqliteFile(path) => {
                let connection = if read_only {
                    Connection::open_with_flags(
                        path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
                    )?
                } else {
                    Connection::open(path)?
                };
                configure(&connection)?;
                Ok(Conn(Engine::Sqlite(connection)))
            }
            Location::Postgres(url) => Ok(Conn(Engine::Postgres(Box::new(postgres::PgConnection::connect(url)?)))),
        }
    }

    /// Seals and unseals the secrets stored in this database.
    pub fn vault(&self) -> &vault::Vault {
        &self.vault
    }

    /// Runs `work` on the writer connection, serialised with every other write.
    pub fn write<T>(&self, work: impl FnOnce(&mut Conn) -> DbResult<T>) -> DbResult<T> {
        let mut connection = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !connection.is_usable() {
            // The server restarted or the network dropped: the next write gets a fresh session.
            *connection = self.connect(false)?;
        }
        work(&mut connection)
    }

    /// For quiet moments: drops the page caches of the connections nobody is using and hands the
    /// freed heap back to the operating system, so an idle app does not hold on to what a burst of
    /// calls or a dashboard report needed.
    pub fn release_idle_memory(&self) {
        let release = |connection: &Conn| {
            if let Engine::Sqlite(connection) = &connection.0 {
                let _ = connection.release_memory();
            }
        };
        if let Ok(writer) = self.writer.try_lock() {
            release(&writer);
        }
        for reader in self.readers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            release(reader);
        }
        // glibc keeps freed memory in each thread's arena; this returns what it can.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        #[expect(unsafe_code, reason = "glibc's malloc_trim has no safe wrapper")]
        // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
        unsafe {
            libc::malloc_trim(0);
        }
    }

    /// Runs `work` on a pooled read-only connection.
    pub fn read<T>(&self, work: impl Fn(&Conn) -> DbResult<T>) -> DbResult<T> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let connection = match pooled.filter(Conn::is_usable) {
            Some(connection) => connection,
            None => self.connect(true)?,
        };
        let mut result = work(&connection);
        let connection = if result.is_err() && !connection.is_usable() {
            // A pooled session the server dropped (it restarted): a read is safe to run again.
            let fresh = self.connect(true)?;
            result = work(&fresh);
            fresh
        } else {
            connection
        };
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if readers.len() < MAX_IDLE_READERS && connection.is_usable() {
            readers.push(connection);
        }
        result
    }
}

fn configure(connection: &Connection) -> DbResult<()> {
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The stored form of a gateway token key: hex SHA-256. Keys themselves are never stored.
pub fn token_key_hash(key: &str) -> String {
    hex::encode(token_key_digest(key))
}

/// The SHA-256 of a gateway token key as bytes, which the request path looks tokens up by: it
/// skips spelling out hex for every call.
pub fn token_key_digest(key: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).into()
}
