//! BurnCloud's SQLite store: one file in WAL mode, one writer connection and a small pool of
//! readers, embedded migrations, and the repositories for every table.

mod migrations;
pub mod repo;
pub mod vault;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use burncloud_service_api::ServiceError;
use rusqlite::{Connection, OpenFlags};

pub use repo::config::{ChannelRecord, GatewayConfig, TokenRecord};
pub use repo::logs::NewLogRow;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
pub struct Conn(Connection);

impl Conn {
    pub(crate) fn sql(&self) -> &Connection {
        &self.0
    }

    pub(crate) fn sql_mut(&mut self) -> &mut Connection {
        &mut self.0
    }
}

/// The database: every write goes through one connection, reads through a pool.
pub struct Db {
    path: PathBuf,
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
        let writer = Conn(writer);
        let sealed = repo::channels::seal_plaintext_keys(&writer, &vault)?
            + repo::settings::seal_plaintext_secrets(&writer, &vault)?;
        if sealed > 0 {
            tracing::info!(sealed, "encrypted secrets that were stored in plain text");
        }
        Ok(Db { path, writer: Mutex::new(writer), readers: Mutex::new(Vec::new()), vault })
    }

    /// Seals and unseals the secrets stored in this database.
    pub fn vault(&self) -> &vault::Vault {
        &self.vault
    }

    /// Runs `work` on the writer connection, serialised with every other write.
    pub fn write<T>(&self, work: impl FnOnce(&mut Conn) -> DbResult<T>) -> DbResult<T> {
        let mut connection = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut connection)
    }

    /// For quiet moments: drops the page caches of the connections nobody is using and hands the
    /// freed heap back to the operating system, so an idle app does not hold on to what a burst of
    /// calls or a dashboard report needed.
    pub fn release_idle_memory(&self) {
        if let Ok(writer) = self.writer.try_lock() {
            let _ = writer.0.release_memory();
        }
        for reader in self.readers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = reader.0.release_memory();
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
    pub fn read<T>(&self, work: impl FnOnce(&Conn) -> DbResult<T>) -> DbResult<T> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => {
                let connection = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
                )?;
                configure(&connection)?;
                Conn(connection)
            }
        };
        let result = work(&connection);
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if readers.len() < MAX_IDLE_READERS {
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
