//! The console admin key: from `BURNCLOUD_ADMIN_KEY`, else generated once into `admin.key` (0600).

use std::io::Write;
use std::path::Path;

use crate::StartError;

pub const ADMIN_KEY_ENV: &str = "BURNCLOUD_ADMIN_KEY";
pub const ADMIN_KEY_FILE: &str = "admin.key";

pub fn load_or_create_admin_key(data_dir: &Path) -> Result<String, StartError> {
    if let Ok(key) = std::env::var(ADMIN_KEY_ENV) {
        let key = key.trim().to_string();
        if !key.is_empty() {
            return Ok(key);
        }
    }
    let path = data_dir.join(ADMIN_KEY_FILE);
    let error = |source| StartError::AdminKey { path: path.clone(), source };
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => return Ok(key.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| error(std::io::Error::other(e.to_string())))?;
    let key = format!("bc-admin-{}", hex::encode(bytes));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(error)?;
    file.write_all(key.as_bytes()).map_err(error)?;
    file.write_all(b"\n").map_err(error)?;
    Ok(key)
}
