//! Secrets at rest (channel API keys, hub tokens): sealed with AES-256-GCM under a data key kept in
//! the OS keyring (Windows Credential Manager, Secret Service on Linux), or in a 0600 file beside the
//! database where no keyring answers.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};

use crate::{DbError, DbResult};

/// What marks a stored value as sealed; values without it are legacy plaintext, sealed on open.
const SEALED_PREFIX: &str = "bc-enc:v1:";
const NONCE_BYTES: usize = 12;
const KEY_BYTES: usize = 32;
pub const KEY_FILE: &str = "secret.key";
const KEYRING_SERVICE: &str = "BurnCloud";
/// `off` keeps the data key in the file even where a keyring exists (tests, portable installs).
pub const KEYRING_ENV: &str = "BURNCLOUD_KEYRING";
/// The data key itself (64 hex digits), for instances that share one PostgreSQL store: each must
/// seal and unseal with the same key, and a secrets manager or a unit file hands it to all.
pub const KEY_ENV: &str = "BURNCLOUD_SECRET_KEY";

/// Where the data key lives, reported by `/health` and at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyStore {
    Keyring,
    File(PathBuf),
    /// `BURNCLOUD_SECRET_KEY`.
    Environment,
}

impl KeyStore {
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyStore::Keyring => "keyring",
            KeyStore::File(_) => "file",
            KeyStore::Environment => "environment",
        }
    }
}

pub struct Vault {
    cipher: Aes256Gcm,
    store: KeyStore,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("store", &self.store).finish_non_exhaustive()
    }
}

impl Vault {
    /// Finds the data key for `data_dir` (a key file already there wins, so sealed rows stay
    /// readable), else the keyring's, else creates one in the keyring or, failing that, the file.
    pub fn open(data_dir: &Path) -> DbResult<Vault> {
        let keyring_allowed = !std::env::var(KEYRING_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("off"));
        Vault::open_with(data_dir, keyring_allowed)
    }

    /// The key in `BURNCLOUD_SECRET_KEY` where it is set, else `open`'s.
    pub fn open_shared(data_dir: &Path) -> DbResult<Vault> {
        match std::env::var(KEY_ENV) {
            Ok(text) => decode_key(text.trim())
                .map(|key| Vault::with_key(&key, KeyStore::Environment))
                .ok_or_else(|| DbError::Secret(format!("{KEY_ENV} is not 64 hex digits (a 256-bit key)"))),
            Err(_) => Vault::open(data_dir),
        }
    }

    pub fn open_with(data_dir: &Path, keyring_allowed: bool) -> DbResult<Vault> {
        let file = data_dir.join(KEY_FILE);
        if file.exists() {
            let key = read_key_file(&file)?;
            return Ok(Vault::with_key(&key, KeyStore::File(file)));
        }
        if keyring_allowed {
            match keyring_key(data_dir) {
                Ok(key) => return Ok(Vault::with_key(&key, KeyStore::Keyring)),
                Err(reason) => tracing::warn!(
                    %reason,
                    file = %file.display(),
                    "no OS keyring answered; the key that encrypts stored API keys is kept in a file readable only by this user"
                ),
            }
        } else {
            tracing::info!(file = %file.display(), "{KEYRING_ENV}=off: the key that encrypts stored API keys is kept in a file");
        }
        let key = random_key()?;
        write_key_file(&file, &key)?;
        Ok(Vault::with_key(&key, KeyStore::File(file)))
    }

    fn with_key(key: &[u8; KEY_BYTES], store: KeyStore) -> Vault {
        Vault { cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)), store }
    }

    pub fn key_store(&self) -> &KeyStore {
        &self.store
    }

    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }

    /// `plaintext` encrypted under a fresh nonce; empty stays empty (nothing to hide).
    pub fn seal(&self, plaintext: &str) -> DbResult<String> {
        if plaintext.is_empty() {
            return Ok(String::new());
        }
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| DbError::Secret(format!("no randomness for a nonce: {e}")))?;
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .map_err(|_| DbError::Secret("encryption failed".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", hex::encode(bytes)))
    }

    /// The plaintext of a stored value (legacy plaintext passes through unchanged).
    pub fn unseal(&self, stored: &str) -> DbResult<String> {
        let Some(body) = stored.strip_prefix(SEALED_PREFIX) else { return Ok(stored.to_string()) };
        let bytes = hex::decode(body).map_err(|_| DbError::Secret("a sealed value is not hex".into()))?;
        if bytes.len() < NONCE_BYTES {
            return Err(DbError::Secret("a sealed value is truncated".into()));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), sealed).map_err(|_| {
            DbError::Secret(
                "a stored secret cannot be decrypted with this machine's data key (was the database copied \
                 without its secret.key, or the keyring entry removed?); enter the key again"
                    .into(),
            )
        })?;
        String::from_utf8(plain).map_err(|_| DbError::Secret("a sealed value is not text".into()))
    }
}

fn random_key() -> DbResult<[u8; KEY_BYTES]> {
    let mut key = [0u8; KEY_BYTES];
    getrandom::fill(&mut key).map_err(|e| DbError::Secret(format!("no randomness for the data key: {e}")))?;
    Ok(key)
}

fn read_key_file(path: &Path) -> DbResult<[u8; KEY_BYTES]> {
    let text =
        std::fs::read_to_string(path).map_err(|e| DbError::Secret(format!("cannot read {}: {e}", path.display())))?;
    decode_key(text.trim())
        .ok_or_else(|| DbError::Secret(format!("{} does not hold a 256-bit hex key", path.display())))
}

fn decode_key(text: &str) -> Option<[u8; KEY_BYTES]> {
    hex::decode(text).ok()?.try_into().ok()
}

fn write_key_file(path: &Path, key: &[u8; KEY_BYTES]) -> DbResult<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| DbError::Secret(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(hex::encode(key).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| DbError::Secret(format!("cannot write {}: {e}", path.display())))
}

/// The data key from the keyring entry for this data dir, created there on first use and read
/// back before it is trusted.
fn keyring_key(data_dir: &Path) -> Result<[u8; KEY_BYTES], String> {
    // Without a session bus libdbus would try to autolaunch one; a headless server has no keyring.
    #[cfg(target_os = "linux")]
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        return Err("no D-Bus session (headless), so no Secret Service".into());
    }
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let entry = keyring::Entry::new(KEYRING_SERVICE, &format!("data-key:{}", dir.display()))
        .map_err(|e| format!("keyring: {e}"))?;
    match entry.get_password() {
        Ok(text) => return decode_key(text.trim()).ok_or_else(|| "the keyring entry is not a 256-bit hex key".into()),
        Err(keyring::Error::NoEntry) => {}
        Err(error) => return Err(format!("keyring: {error}")),
    }
    let key = random_key().map_err(|e| e.to_string())?;
    entry.set_password(&hex::encode(key)).map_err(|e| format!("keyring: {e}"))?;
    let stored = entry.get_password().map_err(|e| format!("keyring: {e}"))?;
    if decode_key(stored.trim()) != Some(key) {
        return Err("the keyring did not keep the data key".into());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_vault(dir: &Path) -> Vault {
        Vault::open_with(dir, false).unwrap()
    }

    #[test]
    fn sealed_values_round_trip_and_hide_the_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let vault = file_vault(dir.path());
        let sealed = vault.seal("sk-live-1234567890").unwrap();
        assert!(Vault::is_sealed(&sealed));
        assert!(!sealed.contains("sk-live"));
        assert_ne!(sealed, vault.seal("sk-live-1234567890").unwrap(), "every seal uses a fresh nonce");
        assert_eq!(vault.unseal(&sealed).unwrap(), "sk-live-1234567890");
        assert_eq!(vault.unseal("legacy-plain").unwrap(), "legacy-plain");
        assert_eq!(vault.seal("").unwrap(), "");
    }

    #[test]
    fn the_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let sealed = file_vault(dir.path()).seal("hf_secret").unwrap();
        let reopened = file_vault(dir.path());
        assert_eq!(reopened.key_store(), &KeyStore::File(dir.path().join(KEY_FILE)));
        assert_eq!(reopened.unseal(&sealed).unwrap(), "hf_secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn another_key_or_a_flipped_byte_is_refused() {
        let one = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let sealed = file_vault(one.path()).seal("sk-abc").unwrap();
        let error = file_vault(other.path()).unseal(&sealed).unwrap_err();
        assert!(error.to_string().contains("cannot be decrypted"), "{error}");
        let mut tampered = sealed.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert!(file_vault(one.path()).unseal(&tampered).is_err());
    }
}
