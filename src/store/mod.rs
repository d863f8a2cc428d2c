//! Durable state of one host: a single SQLite file owned by a dedicated store
//! thread (DESIGN.md §6).
//!
//! Shards never touch SQLite. Each shard holds a [`StoreHandle`] and sends it
//! requests over one bounded crossbeam channel; answers come back through a
//! [`Reply`] closure that the shard supplies (typically: post to its own inbox
//! and ring its doorbell). The store thread:
//!
//! * commits registrations before it answers them (group commit: every
//!   registration waiting in the queue shares one transaction and one fsync);
//! * coalesces player and room writes in memory (latest state per key wins) and
//!   commits them as one transaction per `flush_interval_ms` (write-behind);
//! * answers `load_account` from the file overlaid with the pending writes, so
//!   a reader always sees the newest state that reached the thread;
//! * on an I/O error logs it, counts it, keeps the pending writes and retries
//!   on the next interval: it never panics and never drops a write.
//!
//! Layout: [`schema`] (versioned migrations), `db` (every SQL statement),
//! `worker` (the thread's loop), `handle` (the shard side, with its overflow
//! list), `request` (the messages), [`metrics`], `error`.

pub mod backup;
mod db;
mod error;
mod filter;
mod handle;
pub mod metrics;
mod request;
pub mod schema;
mod worker;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use crate::config::StoreSettings;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

pub use error::{RegisterError, StoreError};
pub use filter::AccountFilter;
pub use handle::{monotonic_ns, StoreHandle};
pub use metrics::StoreMetrics;
pub use request::{AccountRecord, Reply};

use request::Request;

/// Length of the per-file random secret that signs session tokens.
pub const TOKEN_SECRET_BYTES: usize = 32;

/// Where the store keeps its file and how it batches; one per host.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The SQLite file (`<data_dir>/mudshard.db`); parent folders are created.
    pub path: PathBuf,
    /// Write-behind interval: a player or room change reaches the file within
    /// this many milliseconds, and a `kill -9` loses at most this much.
    pub flush_interval_ms: u64,
    /// Bound of the request channel shared by all handles. When it is full a
    /// handle parks requests in its own overflow list instead of blocking.
    pub queue_max: usize,
}

impl StoreConfig {
    /// Default write-behind interval (the configuration's).
    pub const FLUSH_INTERVAL_MS_DEFAULT: u64 = StoreSettings::FLUSH_INTERVAL_MS_DEFAULT;
    /// Default channel bound (the configuration's).
    pub const QUEUE_MAX_DEFAULT: usize = StoreSettings::QUEUE_MAX_DEFAULT;

    /// A config for `path` with the default interval and queue bound.
    pub fn new(path: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            path: path.into(),
            flush_interval_ms: Self::FLUSH_INTERVAL_MS_DEFAULT,
            queue_max: Self::QUEUE_MAX_DEFAULT,
        }
    }
}

/// What the file holds that the world files must be overridden with at start,
/// plus the host's token secret.
pub struct Snapshot {
    /// Items on the floor of every room that changed since the world files:
    /// room id → items. Rooms absent here keep the items of their zone file.
    pub room_items: HashMap<String, Vec<String>>,
    /// Random secret generated when the file was created; it signs session
    /// tokens (`auth::token`), so tokens survive restarts of the same file.
    pub token_secret: [u8; TOKEN_SECRET_BYTES],
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("room_items", &self.room_items.len())
            .field("token_secret", &"<redacted>")
            .finish()
    }
}

/// The store of one host: owns the store thread. Shards get [`StoreHandle`]s
/// from it; `/metrics` reads [`StoreMetrics`]; shutdown flushes and joins.
pub struct Store {
    tx: Sender<Request>,
    thread: Option<JoinHandle<Result<(), StoreError>>>,
    metrics: Arc<StoreMetrics>,
    filter: Arc<AccountFilter>,
}

impl Store {
    /// Opens (creating or migrating) the file, reads the start-up snapshot and
    /// starts the store thread. Blocks the caller: call it before the shards
    /// start. Refuses a file written by a newer mudshard.
    pub fn open(cfg: StoreConfig) -> Result<(Store, Snapshot), StoreError> {
        assert!(cfg.queue_max > 0, "store: queue_max must be at least 1");
        assert!(
            cfg.flush_interval_ms > 0,
            "store: flush_interval_ms must be at least 1"
        );
        let mut conn = db::open(&cfg.path)?;
        schema::migrate(&mut conn, &cfg.path)?;
        let snapshot = db::read_snapshot(&mut conn)?;
        let filter = Arc::new(db::account_filter(&conn)?);
        let metrics = Arc::new(StoreMetrics::new());
        metrics
            .filter_bytes
            .store(filter.bytes() as u64, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = crossbeam_channel::bounded(cfg.queue_max);
        let worker = worker::Worker::new(conn, rx, &cfg, metrics.clone());
        let thread = std::thread::Builder::new()
            .name("mudshard-store".into())
            .spawn(move || worker.run())
            .map_err(StoreError::Thread)?;
        tracing::info!(path = %cfg.path.display(), rooms = snapshot.room_items.len(), "store: opened");
        let store = Store {
            tx,
            thread: Some(thread),
            metrics,
            filter,
        };
        Ok((store, snapshot))
    }

    /// A new handle for one shard (each handle has its own overflow list).
    pub fn handle(&self) -> StoreHandle {
        StoreHandle::new(self.tx.clone(), self.metrics.clone(), self.filter.clone())
    }

    /// The counters and histograms that `/metrics` renders.
    pub fn metrics(&self) -> Arc<StoreMetrics> {
        self.metrics.clone()
    }

    /// Flushes everything the thread holds and joins it. Call it after every
    /// shard has stopped and dropped its handle (a dropped handle hands its
    /// overflow list to the thread first), so nothing is left behind.
    pub fn shutdown(mut self) -> Result<(), StoreError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), StoreError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // A blocking send is right here: shutdown may wait for the queue to
        // drain, and the thread is alive until it reads this message.
        if self.tx.send(Request::Shutdown).is_err() {
            tracing::error!("store: thread gone before shutdown");
        }
        match thread.join() {
            Ok(result) => result,
            Err(_) => Err(StoreError::ThreadPanicked),
        }
    }
}

impl Drop for Store {
    /// Dropping the store without `shutdown` still flushes and joins.
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(error = %e, "store: final flush failed");
        }
    }
}
