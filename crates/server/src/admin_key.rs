//! The console admin key: from `BURNCLOUD_ADMIN_KEY`, else generated once into `admin.key` (0600).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use burncloud_service_api::{AdminKeyService, ServiceError, ServiceResult};

pub const ADMIN_KEY_ENV: &str = "BURNCLOUD_ADMIN_KEY";
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// The admin key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot read or create the admin key {path}: {source}")]
pub struct AdminKeyError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

pub fn load_or_create_admin_key(data_dir: &Path) -> Result<String, AdminKeyError> {
    if let Ok(key) = std::env::var(ADMIN_KEY_ENV) {
        let key = key.trim().to_string();
        if !key.is_empty() {
            return Ok(key);
        }
    }
    let path = data_dir.join(ADMIN_KEY_FILE);
    let error = |source| AdminKeyError { path: path.clone(), source };
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => return Ok(key.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    let key = generate_admin_key().map_err(error)?;
    write_admin_key(&path, &key).map_err(error)?;
    Ok(key)
}

fn generate_admin_key() -> std::io::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(format!("bc-admin-{}", hex::encode(bytes)))
}

/// Writes the key readable by its owner alone.
fn write_admin_key(path: &Path, key: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(key.as_bytes())?;
    file.write_all(b"\n")
}

/// The admin key of a running app, which the console checks and the window can rotate.
pub struct AdminKeys {
    current: RwLock<String>,
    path: PathBuf,
}

impl AdminKeys {
    pub fn open(data_dir: &Path) -> Result<AdminKeys, AdminKeyError> {
        let key = load_or_create_admin_key(data_dir)?;
        Ok(AdminKeys { current: RwLock::new(key), path: data_dir.join(ADMIN_KEY_FILE) })
    }
}

impl AdminKeyService for AdminKeys {
    fn admin_key(&self) -> String {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn rotate_admin_key(&self) -> ServiceResult<String> {
        if std::env::var(ADMIN_KEY_ENV).is_ok_and(|key| !key.trim().is_empty()) {
            return Err(ServiceError::Conflict(format!(
                "the admin key comes from {ADMIN_KEY_ENV}; change it there and restart"
            )));
        }
        let key = generate_admin_key().map_err(|e| ServiceError::Storage(e.to_string()))?;
        write_admin_key(&self.path, &key)
            .map_err(|e| ServiceError::Storage(format!("cannot write {}: {e}", self.path.display())))?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = key.clone();
        Ok(key)
    }
}
