//! Fetching one file: into `<file>.part` beside a JSON sidecar, resumed with `Range` after drops,
//! stalls and restarts, hashed with SHA-256 while it streams, and renamed into place only when the
//! size and hash match what the hub promised.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use burncloud_database::repo::downloads::DownloadFile;
use burncloud_service_api::{HubSource, RemoteFailure, ServiceError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::hub::Hub;

/// How patient a transfer is.
#[derive(Clone, Debug)]
pub struct TransferPolicy {
    /// No bytes for this long counts as a stall, and the connection is retried.
    pub stall_timeout: Duration,
    pub retries: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for TransferPolicy {
    fn default() -> Self {
        TransferPolicy {
            stall_timeout: Duration::from_secs(30),
            retries: 10,
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Why a transfer stopped before the file was complete.
#[derive(Debug)]
pub enum TransferError {
    /// Pause or cancel was asked for.
    Stopped,
    /// Retrying will not help: a refusal, a checksum mismatch, a full disk.
    Fatal(ServiceError),
}

/// What the sidecar beside a `.part` file records, so a resume knows the bytes belong to this file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    pub source: HubSource,
    pub url: String,
    pub commit: Option<String>,
    pub size: u64,
    pub sha256: Option<String>,
}

pub fn part_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

pub fn sidecar_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".part.json");
    PathBuf::from(name)
}

/// Removes the partial file and its sidecar, if any.
pub fn remove_partial(target: &Path) {
    let _ = std::fs::remove_file(part_path(target));
    let _ = std::fs::remove_file(sidecar_path(target));
}

/// One file to fetch and the job-wide counter its bytes are added to.
pub struct FileTransfer<'a> {
    pub hub: &'a Hub,
    pub client: &'a reqwest::Client,
    pub repo: &'a str,
    pub file: &'a DownloadFile,
    pub target: PathBuf,
    /// Pinned by the first answer that names the commit.
    pub revision: String,
    pub policy: &'a TransferPolicy,
    /// Bytes of this job already on disk before this file, plus this file's bytes as they land.
    pub job_bytes_before: u64,
    pub job_bytes: &'a Arc<AtomicU64>,
}

impl FileTransfer<'_> {
    /// Fetches until the file is complete and verified, retrying what can be retried. Returns the
    /// file's SHA-256 and the commit it came from.
    pub async fn run(&mut self, mut stop: watch::Receiver<bool>) -> Result<(String, Option<String>), TransferError> {
        let part = part_path(&self.target);
        if let Some(parent) = self.target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fatal_io("create the model folder", e))?;
        }
        self.discard_partial_of_another_file(&part);
        let mut commit: Option<String> = read_sidecar(&self.target).and_then(|s| s.commit);
        if let Some(pinned) = &commit {
            self.revision = pinned.clone();
        }
        let mut failures = 0u32;
        let mut backoff = self.policy.first_backoff;
        loop {
            if *stop.borrow() {
                return Err(TransferError::Stopped);
            }
            let already = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
            let already = if self.file.size > 0 && already > self.file.size { 0 } else { already };
            self.job_bytes.store(self.job_bytes_before + already, Ordering::Relaxed);
            let outcome = tokio::select! {
                outcome = self.attempt(&part, already, &mut commit) => outcome,
                _ = stop.changed() => return Err(TransferError::Stopped),
            };
            match outcome {
                Ok(sha256) => return Ok((sha256, commit)),
                Err(AttemptError::Fatal(error)) => return Err(TransferError::Fatal(error)),
                Err(AttemptError::Retry { reason, progressed }) => {
                    if progressed {
                        failures = 0;
                        backoff = self.policy.first_backoff;
                    }
                    failures += 1;
                    if failures > self.policy.retries {
                        return Err(TransferError::Fatal(ServiceError::Remote {
                            code: RemoteFailure::DownloadFailed,
                            message: format!("gave up after {} tries: {reason}", self.policy.retries),
                        }));
                    }
                    tracing::warn!(file = %self.file.path, %reason, retry_in = ?backoff, "download interrupted; will resume");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {},
                        _ = stop.changed() => return Err(TransferError::Stopped),
                    }
                    backoff = (backoff * 2).min(self.policy.max_backoff);
                }
            }
        }
    }

    /// A `.part` left by a different file (another commit or hash) is not ours to resume.
    fn discard_partial_of_another_file(&self, part: &Path) {
        if let Some(sidecar) = read_sidecar(&self.target) {
            let same = sidecar.size == self.file.size && sidecar.sha256 == self.file.sha256;
            if !same {
                remove_partial(&self.target);
            }
        } else if part.exists() {
            let _ = std::fs::remove_file(part);
        }
    }

    async fn attempt(
        &mut self,
        part: &Path,
        already: u64,
        commit: &mut Option<String>,
    ) -> Result<String, AttemptError> {
        let opened = match &self.file.url {
            Some(url) => self.hub.open_url(self.client, url, already).await,
            None => self.hub.open(self.client, self.repo, &self.revision, &self.file.path, already).await,
        };
        let resolved = opened.map_err(|error| match error {
            ServiceError::Remote { code, .. } if code.is_transient() => {
                AttemptError::Retry { reason: error.to_string(), progressed: false }
            }
            other => AttemptError::Fatal(other),
        })?;
        if commit.is_none() {
            if let Some(found) = &resolved.commit {
                *commit = Some(found.clone());
                self.revision = found.clone();
            }
        }
        write_sidecar(
            &self.target,
            &Sidecar {
                source: self.hub.source,
                url: resolved.response.url().to_string(),
                commit: commit.clone(),
                size: self.file.size,
                sha256: self.file.sha256.clone(),
            },
        );
        // Anything but a body that starts where we asked restarts the file from byte 0.
        let resume_from = if already > 0 && resolved.body_starts_at == already { already } else { 0 };
        if resolved.body_starts_at != resume_from {
            return Err(AttemptError::Retry {
                reason: format!("the server sent bytes from {} instead of {resume_from}", resolved.body_starts_at),
                progressed: false,
            });
        }
        let expected_size = if self.file.size > 0 { self.file.size } else { resolved.total_size.unwrap_or(0) };

        let (batches, receiver) = tokio::sync::mpsc::channel::<Vec<bytes::Bytes>>(8);
        let writer =
            spawn_writer(part.to_path_buf(), resume_from, self.job_bytes.clone(), self.job_bytes_before, receiver);
        let mut response = resolved.response;
        let mut received = 0u64;
        // Chunks travel to the writer in batches: one wake-up per megabyte instead of one per
        // network read, which on a busy machine is the difference between keeping up and not.
        let mut batch = Vec::new();
        let mut batch_bytes = 0usize;
        let mut batch_started = tokio::time::Instant::now();
        let transfer_error = loop {
            let next = tokio::time::timeout(self.policy.stall_timeout, response.chunk()).await;
            let (outcome, ended) = match next {
                Err(_) => (Some(format!("no data for {:?}", self.policy.stall_timeout)), true),
                Ok(Err(error)) => (Some(format!("connection lost: {error}")), true),
                Ok(Ok(None)) => (None, true),
                Ok(Ok(Some(chunk))) => {
                    received += chunk.len() as u64;
                    batch_bytes += chunk.len();
                    batch.push(chunk);
                    (None, false)
                }
            };
            let due = batch_bytes >= BATCH_BYTES || batch_started.elapsed() >= BATCH_AGE;
            if !batch.is_empty() && (ended || due) {
                if batches.send(std::mem::take(&mut batch)).await.is_err() {
                    break outcome;
                }
                batch_bytes = 0;
                batch_started = tokio::time::Instant::now();
            }
            if ended {
                break outcome;
            }
        };
        drop(batches);
        let written = writer
            .await
            .map_err(|e| AttemptError::Fatal(ServiceError::Storage(format!("the writer stopped: {e}"))))?
            .map_err(|e| AttemptError::Fatal(disk_error(e)))?;
        if let Some(reason) = transfer_error {
            return Err(AttemptError::Retry { reason, progressed: received > 0 });
        }
        if expected_size > 0 && written.length < expected_size {
            return Err(AttemptError::Retry {
                reason: format!("the connection closed at byte {} of {expected_size}", written.length),
                progressed: received > 0,
            });
        }
        if expected_size > 0 && written.length > expected_size {
            remove_partial(&self.target);
            return Err(AttemptError::Fatal(ServiceError::Remote {
                code: RemoteFailure::DownloadFailed,
                message: format!("the server sent {} bytes for a {expected_size}-byte file", written.length),
            }));
        }
        if let Some(expected) = &self.file.sha256 {
            if !expected.eq_ignore_ascii_case(&written.sha256) {
                remove_partial(&self.target);
                return Err(AttemptError::Fatal(ServiceError::Remote {
                    code: RemoteFailure::ChecksumMismatch,
                    message: format!(
                        "{} failed its checksum (expected sha256 {expected}, got {}); the file was removed, download it again",
                        self.file.path, written.sha256
                    ),
                }));
            }
        }
        std::fs::rename(part, &self.target)
            .map_err(|e| AttemptError::Fatal(fatal_io_error("move the finished file", e)))?;
        let _ = std::fs::remove_file(sidecar_path(&self.target));
        Ok(written.sha256)
    }
}

enum AttemptError {
    Retry { reason: String, progressed: bool },
    Fatal(ServiceError),
}

struct Written {
    length: u64,
    sha256: String,
}

const WRITEBACK_EVERY: u64 = 32 << 20;
const BATCH_BYTES: usize = 1 << 20;
const BATCH_AGE: Duration = Duration::from_millis(100);

/// Starts writing a range to disk without waiting, so the final sync has little left to do.
#[cfg(target_os = "linux")]
#[expect(unsafe_code, reason = "sync_file_range has no safe wrapper in std")]
fn start_writeback(file: &std::fs::File, offset: u64, length: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: an advisory syscall on an open descriptor we own; failure only loses the head start.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            length as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &std::fs::File, _offset: u64, _length: u64) {}

/// Writes on a blocking thread so the network side never waits on the disk, and hashes on another
/// so hashing and writing (each most of a core at full speed) overlap instead of adding up.
fn spawn_writer(
    part: PathBuf,
    resume_from: u64,
    job_bytes: Arc<AtomicU64>,
    job_bytes_before: u64,
    mut batches: tokio::sync::mpsc::Receiver<Vec<bytes::Bytes>>,
) -> tokio::task::JoinHandle<std::io::Result<Written>> {
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&part)?;
        // Its own open file (not a clone sharing the offset), so reading the prefix and appending the
        // rest proceed side by side.
        let prefix = if resume_from > 0 { Some(std::fs::File::open(&part)?) } else { None };
        let (to_hasher, hasher_batches) = std::sync::mpsc::sync_channel::<Vec<bytes::Bytes>>(8);
        let hasher = std::thread::Builder::new()
            .name("download-hash".into())
            .spawn(move || hash_stream(prefix, resume_from, hasher_batches))?;
        file.set_len(resume_from)?;
        file.seek(SeekFrom::Start(resume_from))?;
        let mut length = resume_from;
        let mut written_back = resume_from;
        let mut write_result = Ok(());
        while let Some(batch) = batches.blocking_recv() {
            if to_hasher.send(batch.clone()).is_err() {
                break;
            }
            // Each batch goes to the OS at once (what reached it survives the app being killed, so
            // a restart resumes from it), in one gathering write instead of a copy into a buffer.
            write_result = write_batch(&mut file, &batch);
            if write_result.is_err() {
                break;
            }
            length += batch.iter().map(|chunk| chunk.len() as u64).sum::<u64>();
            if length - written_back >= WRITEBACK_EVERY {
                start_writeback(&file, written_back, length - written_back);
                written_back = length;
            }
            job_bytes.store(job_bytes_before + length, Ordering::Relaxed);
        }
        drop(to_hasher);
        let sha256 = hasher.join().map_err(|_| std::io::Error::other("the hashing thread panicked"))??;
        write_result?;
        // The finished file is renamed into place and trusted, so it must be on disk first.
        file.sync_data()?;
        Ok(Written { length, sha256 })
    })
}

/// Writes every chunk of `batch` with as few `writev` calls as the OS allows.
fn write_batch(output: &mut impl Write, batch: &[bytes::Bytes]) -> std::io::Result<()> {
    const MAX_SLICES: usize = 1024;
    let mut index = 0;
    let mut offset = 0;
    loop {
        while index < batch.len() && offset == batch[index].len() {
            index += 1;
            offset = 0;
        }
        if index == batch.len() {
            return Ok(());
        }
        let slices: Vec<std::io::IoSlice<'_>> = std::iter::once(&batch[index][offset..])
            .chain(batch[index + 1..].iter().map(|chunk| &chunk[..]))
            .take(MAX_SLICES)
            .map(std::io::IoSlice::new)
            .collect();
        let mut written = match output.write_vectored(&slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(written) => written,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        while written > 0 {
            let left = batch[index].len() - offset;
            if written >= left {
                written -= left;
                index += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
    }
}

/// SHA-256 of the prefix already on disk (on resume) followed by every batch received.
fn hash_stream(
    prefix: Option<std::fs::File>,
    resume_from: u64,
    batches: std::sync::mpsc::Receiver<Vec<bytes::Bytes>>,
) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    if let Some(file) = prefix {
        // The prefix on disk is re-hashed, so the final hash covers every byte of the file.
        let mut prefix = file.take(resume_from);
        let mut buffer = vec![0u8; 1 << 20];
        let mut hashed = 0u64;
        loop {
            let read = prefix.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            hashed += read as u64;
        }
        if hashed != resume_from {
            return Err(std::io::Error::other("the partial file shrank while resuming"));
        }
    }
    for batch in batches {
        for chunk in &batch {
            hasher.update(chunk);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

fn read_sidecar(target: &Path) -> Option<Sidecar> {
    std::fs::read(sidecar_path(target)).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

fn write_sidecar(target: &Path, sidecar: &Sidecar) {
    if let Ok(bytes) = serde_json::to_vec_pretty(sidecar) {
        if let Err(error) = std::fs::write(sidecar_path(target), bytes) {
            tracing::warn!(%error, "cannot write the download's sidecar; a restart will start this file over");
        }
    }
}

fn disk_error(error: std::io::Error) -> ServiceError {
    if error.raw_os_error() == Some(28) || error.kind() == std::io::ErrorKind::StorageFull {
        ServiceError::InsufficientStorage(format!("the disk is full: {error}. Free some space, then resume."))
    } else {
        ServiceError::Storage(format!("cannot write the model file: {error}"))
    }
}

fn fatal_io_error(what: &str, error: std::io::Error) -> ServiceError {
    ServiceError::Storage(format!("cannot {what}: {error}"))
}

fn fatal_io(what: &str, error: std::io::Error) -> TransferError {
    TransferError::Fatal(fatal_io_error(what, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts at most `limit` bytes per call, as a short write from the OS does.
    struct ShortWrites {
        written: Vec<u8>,
        limit: usize,
    }

    impl Write for ShortWrites {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.limit);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_batch_is_written_whole_through_short_writes_and_empty_chunks() {
        let batch: Vec<bytes::Bytes> =
            ["abc", "", "defgh", "", "", "i", "jklmnopq"].iter().map(|s| bytes::Bytes::from(s.to_string())).collect();
        for limit in [1, 2, 3, 7, 100] {
            let mut output = ShortWrites { written: Vec::new(), limit };
            write_batch(&mut output, &batch).unwrap();
            assert_eq!(output.written, b"abcdefghijklmnopq", "limit {limit}");
        }
        let mut output = ShortWrites { written: Vec::new(), limit: 4 };
        write_batch(&mut output, &[]).unwrap();
        assert!(output.written.is_empty());
    }
}
