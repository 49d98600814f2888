//! The async log writer: calls queue their rows on a bounded channel and one writer thread stores
//! them in batches, each batch with its charges in a single transaction.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use burncloud_database::repo::logs;
use burncloud_database::{Db, NewLogRow};
use tokio::sync::{mpsc, oneshot, Notify};

/// How long the log has to be quiet before the writer hands idle memory back to the system.
const RELEASE_MEMORY_WHEN_IDLE_FOR: Duration = Duration::from_secs(2);

enum LogMessage {
    Row(Box<NewLogRow>),
    /// Answered once every row queued before it is stored.
    Flush(oneshot::Sender<()>),
}

/// Counters for health reports and benchmarks.
#[derive(Debug, Default)]
pub struct LogWriterStats {
    pub queued: AtomicU64,
    pub written: AtomicU64,
    pub batches: AtomicU64,
    pub write_errors: AtomicU64,
    /// Whether the latest attempt to store a batch failed (a locked database, a full disk).
    pub failing: AtomicBool,
}

#[derive(Clone, Copy, Debug)]
pub struct LogWriterConfig {
    /// How many rows may wait in memory before callers wait for the writer.
    pub queue_capacity: usize,
    /// The most rows stored in one transaction.
    pub max_batch_rows: usize,
    /// The longest a row waits for others to share its transaction.
    pub max_batch_delay: Duration,
}

impl Default for LogWriterConfig {
    fn default() -> Self {
        // A quarter second keeps the log live to a person watching it. Shorter batches cost more than
        // their rows: every commit rewrites the same index edges and the hourly rollup, and the WAL
        // grows to a checkpoint (an fsync) sooner; at 50 ms a stream's added time to first token
        // was about 50 µs worse at p99 on a 2-core machine.
        LogWriterConfig { queue_capacity: 65_536, max_batch_rows: 2_048, max_batch_delay: Duration::from_millis(250) }
    }
}

/// The sending side, cheap to clone into every request.
#[derive(Clone)]
pub struct LogSink {
    sender: mpsc::Sender<LogMessage>,
    stats: Arc<LogWriterStats>,
    /// Cuts a waiting batch short when a flush is queued, so the writer never has to poll for one.
    flush_wanted: Arc<Notify>,
}

impl LogSink {
    /// Starts the writer thread over `db`.
    pub fn start(db: Arc<Db>, config: LogWriterConfig) -> LogSink {
        let (sender, receiver) = mpsc::channel(config.queue_capacity);
        let stats = Arc::new(LogWriterStats::default());
        let flush_wanted = Arc::new(Notify::new());
        let (writer_stats, writer_flush_wanted) = (stats.clone(), flush_wanted.clone());
        std::thread::Builder::new()
            .name("burncloud-log-writer".into())
            .spawn(move || run_writer(db, receiver, writer_stats, writer_flush_wanted, config))
            .expect("spawning the log writer thread");
        LogSink { sender, stats, flush_wanted }
    }

    /// Queues one row; waits only when the queue is full, so nothing is ever dropped.
    pub async fn record(&self, row: NewLogRow) {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if self.sender.send(LogMessage::Row(Box::new(row))).await.is_err() {
            tracing::error!("log writer is gone; a log row could not be queued");
        }
    }

    /// Waits until every row queued so far is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(LogMessage::Flush(done)).await.is_ok() {
            self.flush_wanted.notify_one();
            let _ = wait.await;
        }
    }

    pub fn stats(&self) -> &LogWriterStats {
        &self.stats
    }
}

/// Collects rows into a batch until it holds `max_batch_rows` rows, `max_batch_delay` has passed
/// since its first row, or someone asks for a flush; then stores it in one transaction. One
/// transaction per batch instead of per row is what lets the writer keep up under load and stay
/// off the request path's cores when idle.
fn run_writer(
    db: Arc<Db>,
    mut receiver: mpsc::Receiver<LogMessage>,
    stats: Arc<LogWriterStats>,
    flush_wanted: Arc<Notify>,
    config: LogWriterConfig,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "the log writer could not start its timer; logs are not stored");
            return;
        }
    };
    let mut batch: Vec<NewLogRow> = Vec::with_capacity(config.max_batch_rows);
    let mut waiting_flushes: Vec<oneshot::Sender<()>> = Vec::new();
    runtime.block_on(async {
        loop {
            let first = match tokio::time::timeout(RELEASE_MEMORY_WHEN_IDLE_FOR, receiver.recv()).await {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(_idle) => {
                    db.release_idle_memory();
                    match receiver.recv().await {
                        Some(message) => message,
                        None => break,
                    }
                }
            };
            let deadline = tokio::time::Instant::now() + config.max_batch_delay;
            let mut next = Some(first);
            loop {
                while let Some(message) = next.take() {
                    match message {
                        LogMessage::Row(row) => batch.push(*row),
                        LogMessage::Flush(done) => waiting_flushes.push(done),
                    }
                    if batch.len() < config.max_batch_rows {
                        next = receiver.try_recv().ok();
                    }
                }
                let full = batch.len() >= config.max_batch_rows;
                if full || !waiting_flushes.is_empty() || tokio::time::Instant::now() >= deadline {
                    break;
                }
                // Sleep instead of waiting on the queue: one wake-up per batch, not one per row. A
                // flush left over from an earlier batch only costs one extra look at the queue.
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {}
                    _ = flush_wanted.notified() => {}
                }
                next = receiver.try_recv().ok();
            }
            if !batch.is_empty() {
                store_batch(&db, &batch, &stats);
                batch.clear();
            }
            for done in waiting_flushes.drain(..) {
                let _ = done.send(());
            }
        }
    });
}

/// Retries until the batch is stored: a locked or full disk delays logging, it never loses rows.
fn store_batch(db: &Db, batch: &[NewLogRow], stats: &LogWriterStats) {
    let mut delay = Duration::from_millis(50);
    loop {
        match db.write(|connection| logs::insert_batch(connection, batch)) {
            Ok(()) => {
                stats.failing.store(false, Ordering::Relaxed);
                stats.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                stats.batches.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(error) => {
                stats.write_errors.fetch_add(1, Ordering::Relaxed);
                stats.failing.store(true, Ordering::Relaxed);
                tracing::warn!(%error, rows = batch.len(), "storing log rows failed; retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
