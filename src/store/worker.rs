//! The store thread: owns the connection, group-commits registrations,
//! coalesces write-behind changes and flushes them once per interval.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rusqlite::Connection;

use super::db::{self, NewAccount};
use super::error::{RegisterError, StoreError};
use super::metrics::StoreMetrics;
use super::request::{AccountRecord, PlayerState, Reply, Request};
use super::StoreConfig;
use crate::protocol::names::name_key;

/// Most requests taken from the channel in one turn before the thread commits
/// the turn's registrations and looks at the flush deadline: a flood of saves
/// cannot delay a registration's answer or a flush by more than one turn.
const TURN_REQUESTS_MAX: usize = 512;

/// Tries at the last flush on shutdown before giving up (and saying so).
const SHUTDOWN_FLUSH_ATTEMPTS_MAX: u32 = 3;

/// A registration waiting for the turn's group commit.
struct Registration {
    name: String,
    name_key: String,
    password_hash: String,
    start_room: String,
    reply: Reply<Result<AccountRecord, RegisterError>>,
}

pub(crate) struct Worker {
    conn: Connection,
    rx: Receiver<Request>,
    flush_interval: Duration,
    metrics: Arc<StoreMetrics>,
    /// Latest state per player (name key) and per room since the last flush.
    players: HashMap<String, PlayerState>,
    rooms: HashMap<String, Vec<String>>,
    /// The newest save time accepted per player since start. Saves of one
    /// player come from whichever shard owns their room; when the queue backs
    /// up, an older shard's parked save can arrive after a newer shard's, and
    /// must not overwrite it. One entry per player saved since start.
    saved_at: HashMap<String, u64>,
    /// When the oldest pending write must be committed; `None` when idle, so
    /// an idle store thread sleeps in `recv` and uses no CPU.
    flush_due: Option<Instant>,
    registrations: Vec<Registration>,
    flush_failures_in_row: u64,
}

impl Worker {
    pub(crate) fn new(
        conn: Connection,
        rx: Receiver<Request>,
        cfg: &StoreConfig,
        metrics: Arc<StoreMetrics>,
    ) -> Worker {
        Worker {
            conn,
            rx,
            flush_interval: Duration::from_millis(cfg.flush_interval_ms),
            metrics,
            players: HashMap::new(),
            saved_at: HashMap::new(),
            rooms: HashMap::new(),
            flush_due: None,
            registrations: Vec::new(),
            flush_failures_in_row: 0,
        }
    }

    /// The thread's body: serve requests until `Shutdown`, then flush all.
    pub(crate) fn run(mut self) -> Result<(), StoreError> {
        loop {
            let received = match self.flush_due {
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(due) => self.rx.recv_deadline(due),
            };
            let stop = match received {
                Ok(request) => self.turn(request),
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => true,
            };
            if stop {
                break;
            }
            if self.flush_due.is_some_and(|due| Instant::now() >= due) {
                // A failure is logged and counted inside; the writes stay pending.
                let _ = self.flush();
            }
            self.metrics
                .queue_depth
                .store(self.rx.len() as u64, Relaxed);
        }
        self.finish()
    }

    /// Handles `first` and whatever else is queued (up to a bound), then
    /// commits the registrations among them. True when asked to stop.
    fn turn(&mut self, first: Request) -> bool {
        let mut next = Some(first);
        let mut handled = 0;
        let mut stop = false;
        while let Some(request) = next {
            handled += 1;
            if self.handle(request) {
                stop = true;
                break;
            }
            next = if handled < TURN_REQUESTS_MAX {
                self.rx.try_recv().ok()
            } else {
                None
            };
        }
        self.commit_registrations();
        stop
    }

    /// True for `Shutdown`.
    fn handle(&mut self, request: Request) -> bool {
        match request {
            Request::Register {
                name,
                password_hash,
                start_room,
                reply,
            } => {
                let name_key = name_key(&name);
                self.registrations.push(Registration {
                    name,
                    name_key,
                    password_hash,
                    start_room,
                    reply,
                });
            }
            Request::LoadAccount { name, reply } => {
                // Registrations queued before this load must be visible to it.
                self.commit_registrations();
                let loaded = self.load_account(&name);
                deliver(&self.metrics, reply, loaded);
            }
            Request::SavePlayer { name_key, state } => {
                if self
                    .saved_at
                    .get(&name_key)
                    .is_some_and(|&newest| state.at_ns < newest)
                {
                    self.metrics.stale_saves_total.fetch_add(1, Relaxed);
                    return false;
                }
                self.saved_at.insert(name_key.clone(), state.at_ns);
                self.players.insert(name_key, state);
                self.arm_flush();
            }
            Request::SaveRoomItems { room, items } => {
                self.rooms.insert(room, items);
                self.arm_flush();
            }
            Request::Flush { reply } => {
                self.commit_registrations();
                let flushed = self.flush();
                deliver(&self.metrics, reply, flushed);
            }
            Request::Shutdown => return true,
        }
        false
    }

    fn arm_flush(&mut self) {
        if self.flush_due.is_none() {
            self.flush_due = Some(Instant::now() + self.flush_interval);
        }
        let pending = self.players.len() + self.rooms.len();
        self.metrics.pending_writes.store(pending as u64, Relaxed);
    }

    /// The committed account overlaid with its pending write (read-your-writes).
    fn load_account(&mut self, name: &str) -> Result<Option<AccountRecord>, StoreError> {
        let key = name_key(name);
        let mut record = db::load_account(&self.conn, &key).inspect_err(|e| {
            tracing::error!(error = %e, name = key, "store: load_account failed");
            self.metrics.record_error();
        })?;
        if let (Some(record), Some(pending)) = (record.as_mut(), self.players.get(&key)) {
            record.room.clone_from(&pending.room);
            record.inventory.clone_from(&pending.inventory);
        }
        Ok(record)
    }

    /// Commits every waiting registration in one transaction, then answers
    /// them. If the group fails, each is retried alone so each gets its own
    /// answer (and one bad entry cannot fail the others).
    fn commit_registrations(&mut self) {
        if self.registrations.is_empty() {
            return;
        }
        let group = std::mem::take(&mut self.registrations);
        let committed = db::register_all(&mut self.conn, &new_accounts(&group));
        match committed {
            Ok(created) => {
                self.metrics.commits_total.fetch_add(1, Relaxed);
                for (registration, record) in group.into_iter().zip(created) {
                    self.answer_registration(registration.reply, record);
                }
            }
            Err(e) if group.len() == 1 => {
                tracing::error!(error = %e, "store: registration failed");
                self.metrics.record_error();
                if let Some(registration) = group.into_iter().next() {
                    deliver(
                        &self.metrics,
                        registration.reply,
                        Err(RegisterError::Store(e)),
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, accounts = group.len(), "store: group registration failed; retrying one by one");
                for registration in group {
                    self.registrations.push(registration);
                    self.commit_registrations();
                }
            }
        }
    }

    fn answer_registration(
        &self,
        reply: Reply<Result<AccountRecord, RegisterError>>,
        record: Option<AccountRecord>,
    ) {
        let answer = match record {
            Some(record) => {
                self.metrics.registrations_total.fetch_add(1, Relaxed);
                Ok(record)
            }
            None => Err(RegisterError::NameTaken),
        };
        deliver(&self.metrics, reply, answer);
    }

    /// Commits all pending writes in one transaction. On failure they stay
    /// pending and the next try is one interval later.
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.players.is_empty() && self.rooms.is_empty() {
            self.flush_due = None;
            return Ok(());
        }
        let started = Instant::now();
        let written = db::write_batch(&mut self.conn, &self.players, &self.rooms);
        match written {
            Ok(unknown_players) => {
                let writes = (self.players.len() + self.rooms.len()) as u64;
                self.metrics
                    .record_batch(writes, started.elapsed().as_micros() as u64);
                if unknown_players > 0 {
                    tracing::warn!(
                        unknown_players,
                        "store: player writes for names without an account were ignored"
                    );
                }
                if self.flush_failures_in_row > 0 {
                    tracing::info!(
                        failures = self.flush_failures_in_row,
                        "store: flush recovered"
                    );
                }
                self.players.clear();
                self.rooms.clear();
                self.flush_due = None;
                self.flush_failures_in_row = 0;
                self.metrics.pending_writes.store(0, Relaxed);
                Ok(())
            }
            Err(e) => {
                self.flush_failures_in_row += 1;
                self.metrics.record_error();
                // Log the 1st, 2nd, 4th, 8th… failure in a row: a dead disk
                // must not flood the log ten times a second.
                if self.flush_failures_in_row.is_power_of_two() {
                    tracing::error!(error = %e, failures = self.flush_failures_in_row, pending = self.players.len() + self.rooms.len(), "store: flush failed; writes kept for the next interval");
                }
                self.flush_due = Some(Instant::now() + self.flush_interval);
                Err(e)
            }
        }
    }

    /// Shutdown: serve what is still queued, then flush, retrying a little.
    fn finish(mut self) -> Result<(), StoreError> {
        while let Ok(request) = self.rx.try_recv() {
            // A second `Shutdown` (from `Drop` after `shutdown`) needs nothing.
            let _ = self.handle(request);
        }
        self.commit_registrations();
        let mut attempt = 1;
        loop {
            match self.flush() {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= SHUTDOWN_FLUSH_ATTEMPTS_MAX => {
                    tracing::error!(error = %e, lost = self.players.len() + self.rooms.len(), "store: final flush failed; pending writes lost");
                    return Err(e);
                }
                Err(_) => {
                    attempt += 1;
                    std::thread::sleep(self.flush_interval);
                }
            }
        }
    }
}

fn new_accounts(group: &[Registration]) -> Vec<NewAccount<'_>> {
    group
        .iter()
        .map(|r| NewAccount {
            name: &r.name,
            name_key: &r.name_key,
            password_hash: &r.password_hash,
            start_room: &r.start_room,
        })
        .collect()
}

/// Runs a shard's reply closure; a panic in it is the shard's bug and must
/// not take the store thread (and every pending write) down with it.
fn deliver<T>(metrics: &StoreMetrics, reply: Reply<T>, value: T) {
    if catch_unwind(AssertUnwindSafe(move || reply(value))).is_err() {
        tracing::error!("store: a reply closure panicked");
        metrics.record_error();
    }
}
