//! The shard side of the store: sends requests without ever blocking the
//! shard's event loop, and never drops one.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};

use super::error::{RegisterError, StoreError};
use super::filter::AccountFilter;
use super::metrics::StoreMetrics;
use super::request::{AccountRecord, PlayerState, Reply, Request};
use crate::protocol::names::name_key;

/// One shard's connection to the store thread. `Send`, so it can be moved to
/// the shard's thread, but not `Sync`: it is used from that thread alone.
/// `clone` makes a new handle for another shard.
///
/// Backpressure: the channel is bounded (`StoreConfig::queue_max`). When it is
/// full, the request goes to this handle's overflow list instead of blocking
/// the event loop or being dropped; a warning is logged once per episode and
/// `/metrics` shows `overflow_total` and `overflow_depth`. Every later call
/// and every [`StoreHandle::pump`] (call it on the shard's tick) moves the
/// list into the channel first, oldest first, so this handle's requests keep
/// their order. Saves for the same player or room replace each other in the
/// list (latest state wins, as in the store), so the list is bounded by the
/// players and rooms the shard owns plus its in-flight logins and sign-ups.
///
/// Read-your-writes holds for the requests of one handle. A write still in
/// *another* shard's overflow list is not visible to a load until that shard
/// pumps it. A name whose account does not exist is answered at once, from
/// the account filter (`filter.rs`), which every handle's registrations
/// enter as they are asked, overflow list or not.
pub struct StoreHandle {
    tx: Sender<Request>,
    metrics: Arc<StoreMetrics>,
    filter: Arc<AccountFilter>,
    overflow: RefCell<VecDeque<Request>>,
}

impl Clone for StoreHandle {
    fn clone(&self) -> StoreHandle {
        StoreHandle::new(self.tx.clone(), self.metrics.clone(), self.filter.clone())
    }
}

impl StoreHandle {
    pub(crate) fn new(
        tx: Sender<Request>,
        metrics: Arc<StoreMetrics>,
        filter: Arc<AccountFilter>,
    ) -> StoreHandle {
        StoreHandle {
            tx,
            metrics,
            filter,
            overflow: RefCell::new(VecDeque::new()),
        }
    }

    /// Creates an account with `start_room` and an empty inventory. `reply`
    /// runs after the account is committed (fsynced), or with `NameTaken` if
    /// the name exists in any letter case. Validate `name` first
    /// (`protocol::names::validate_name`): the store enforces uniqueness only.
    pub fn register(
        &self,
        name: &str,
        password_hash: String,
        start_room: &str,
        reply: Reply<Result<AccountRecord, RegisterError>>,
    ) {
        // In the filter before the store thread can commit it (`filter.rs`).
        self.filter.insert(&name_key(name));
        self.submit(Request::Register {
            name: name.to_owned(),
            password_hash,
            start_room: start_room.to_owned(),
            reply,
        });
    }

    /// Looks an account up by name, case-insensitively, with the newest room
    /// and inventory the store thread holds (pending writes included). A name
    /// the account filter rules out is answered `None` at once, on this
    /// thread, without the store thread.
    pub fn load_account(
        &self,
        name: &str,
        reply: Reply<Result<Option<AccountRecord>, StoreError>>,
    ) {
        if !self.may_have_account(name) {
            return reply(Ok(None));
        }
        self.submit(Request::LoadAccount {
            name: name.to_owned(),
            reply,
        });
    }

    /// False when no account has `name` (any letter case), known from the
    /// account filter without the store thread; true when one may.
    pub fn may_have_account(&self, name: &str) -> bool {
        let may = self.filter.may_contain(&name_key(name));
        if !may {
            self.metrics.lookups_ruled_out_total.fetch_add(1, Relaxed);
        }
        may
    }

    /// Records a registered player's room and inventory (write-behind: on disk
    /// within one flush interval; a later save of the same player replaces it).
    pub fn save_player(&self, name_key: &str, room: &str, inventory: &[String]) {
        self.save_player_at(name_key, room, inventory, monotonic_ns());
    }

    /// `save_player` with the save's time given (tests order saves with it).
    pub(crate) fn save_player_at(
        &self,
        name_key: &str,
        room: &str,
        inventory: &[String],
        at_ns: u64,
    ) {
        let state = PlayerState {
            room: room.to_owned(),
            inventory: inventory.to_vec(),
            at_ns,
        };
        self.submit(Request::SavePlayer {
            name_key: name_key.to_owned(),
            state,
        });
    }

    /// Records the items on a room's floor (write-behind, coalesced per room).
    pub fn save_room_items(&self, room: &str, items: &[String]) {
        self.save_room_items_owned(room.to_owned(), items.to_vec());
    }

    /// `save_room_items` with values the caller hands over (no copy).
    pub fn save_room_items_owned(&self, room: String, items: Vec<String>) {
        self.submit(Request::SaveRoomItems { room, items });
    }

    /// `save_player` with values the caller hands over (no copy).
    pub fn save_player_owned(&self, name_key: String, room: String, inventory: Vec<String>) {
        let state = PlayerState {
            room,
            inventory,
            at_ns: monotonic_ns(),
        };
        self.submit(Request::SavePlayer { name_key, state });
    }

    /// Commits every pending write now and replies after the commit, e.g.
    /// before handing a player over to another host.
    pub fn flush(&self, reply: Reply<Result<(), StoreError>>) {
        self.submit(Request::Flush { reply });
    }

    /// Moves as much of the overflow list into the channel as fits. Call it on
    /// the shard's tick. Returns how many requests are still parked.
    pub fn pump(&self) -> usize {
        let mut closed = Vec::new();
        let parked = {
            let mut overflow = self.overflow.borrow_mut();
            self.drain_overflow(&mut overflow, &mut closed);
            overflow.len()
        };
        self.fail_closed(closed);
        parked
    }

    /// Requests parked in this handle's overflow list.
    pub fn overflow_len(&self) -> usize {
        self.overflow.borrow().len()
    }

    fn submit(&self, request: Request) {
        let mut closed = Vec::new();
        {
            let mut overflow = self.overflow.borrow_mut();
            self.drain_overflow(&mut overflow, &mut closed);
            if overflow.is_empty() {
                match self.tx.try_send(request) {
                    Ok(()) => {}
                    Err(TrySendError::Full(request)) => self.park(&mut overflow, request),
                    Err(TrySendError::Disconnected(request)) => closed.push(request),
                }
            } else {
                self.park(&mut overflow, request);
            }
        }
        // Reply closures run outside the borrow: they may call this handle.
        self.fail_closed(closed);
    }

    fn drain_overflow(&self, overflow: &mut VecDeque<Request>, closed: &mut Vec<Request>) {
        let before = overflow.len();
        while let Some(request) = overflow.pop_front() {
            match self.tx.try_send(request) {
                Ok(()) => {}
                Err(TrySendError::Full(request)) => {
                    overflow.push_front(request);
                    break;
                }
                Err(TrySendError::Disconnected(request)) => closed.push(request),
            }
        }
        let moved = before - overflow.len();
        if moved > 0 {
            self.metrics.overflow_depth.fetch_sub(moved as u64, Relaxed);
            if overflow.is_empty() {
                tracing::info!("store: overflow list drained");
            }
        }
    }

    fn park(&self, overflow: &mut VecDeque<Request>, request: Request) {
        if overflow.is_empty() {
            tracing::warn!("store: queue full; parking writes in this shard's overflow list");
        }
        self.metrics.overflow_total.fetch_add(1, Relaxed);
        // The store thread samples the depth between turns; while it is stuck
        // (slow disk, lock) only the handles see how full the channel is.
        self.metrics
            .queue_depth
            .store(self.tx.len() as u64, Relaxed);
        let same_key = request.coalesce_key().and_then(|key| {
            overflow
                .iter()
                .position(|parked| parked.coalesce_key() == Some(key))
        });
        if let Some(index) = same_key {
            overflow[index] = request;
            return;
        }
        overflow.push_back(request);
        self.metrics.overflow_depth.fetch_add(1, Relaxed);
    }

    fn fail_closed(&self, closed: Vec<Request>) {
        if closed.is_empty() {
            return;
        }
        tracing::error!(
            requests = closed.len(),
            "store: thread stopped; requests not carried out"
        );
        for request in closed {
            self.metrics.record_error();
            request.fail_closed();
        }
    }
}

impl Drop for StoreHandle {
    /// Hands the overflow list to the store thread, waiting for room in the
    /// channel: a shard that stops must not take writes with it. Reply
    /// closures must therefore never block on the dropping shard for good:
    /// `Mailbox::send` may wait for room, but a shard drops its inbox (in
    /// `run`) before its store handle, which ends that wait.
    fn drop(&mut self) {
        let overflow = std::mem::take(self.overflow.get_mut());
        let parked = overflow.len();
        let mut closed = Vec::new();
        for request in overflow {
            if let Err(e) = self.tx.send(request) {
                closed.push(e.into_inner());
            }
        }
        self.metrics
            .overflow_depth
            .fetch_sub(parked as u64, Relaxed);
        self.fail_closed(closed);
    }
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every thread of the host.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}
