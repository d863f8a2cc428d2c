//! A session's life on its shard: opened at the upgrade, closed when its
//! connection ends (its body and name let go, now or once a message in
//! flight lands), swept once a second for deadlines and silence, and closed
//! by the shard's shutdown.

use std::time::Instant;

use super::msg::Msg;
use super::session::{reads, Out, Phase, Session};
use super::{SessionId, Shard, ShardAddr};
use crate::protocol::close;

/// The most frames a shard may have read and written in the second before
/// a sweep for that second to count as quiet (`Shard::tidy_heap`). 15,000
/// idle sessions are pinged once each per `idle_ping_ms` (30 s) and answer:
/// 500 frames a second each way. Written frames count: a shard that reads a
/// few hundred `say`s a second may be writing 100 times as many events.
const QUIET_FRAMES_MAX: u64 = 2_000;

impl Shard {
    /// A new upgraded connection, accepted at `accepted` (its login
    /// deadline runs from then). Returns its slot and generation.
    pub fn open_session(&mut self, peer_ip: std::net::IpAddr, accepted: Instant) -> (u32, u32) {
        let opened_ms = self.ms_at(accepted);
        let burst = self.config.limits.commands_burst;
        let hold = self.config.limits.history_bounds();
        self.counters.stats.accepted_total += 1;
        self.sessions
            .insert(|gen| Session::new(gen, opened_ms, burst, peer_ip, hold))
    }

    /// Whether this shard takes another session (DESIGN §7: else HTTP 503).
    pub fn has_room_for_session(&self) -> bool {
        !self.shutting_down
            && self.sessions.len()
                < self
                    .config
                    .limits
                    .connections_per_shard_max
                    .min(super::SESSIONS_PER_SHARD_MAX)
    }

    /// The connection of `slot` has ended. A playing session is kept,
    /// detached, when sessions are kept for resume; otherwise its body and
    /// name are let go now, or, when a message about them is still in
    /// flight, once it lands.
    pub fn close_session(&mut self, slot: u32, epoch: u32) {
        let now = self.now_ms();
        let keep = self.config.limits.resume_window_ms > 0 && !self.shutting_down;
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        if session.conn_epoch != epoch {
            // A resume gave the session a newer connection: not ours to close.
            return;
        }
        // Kept: a connection that went without a goodbye — cut, silent, or a
        // reader too slow. A client that closed, quit or broke the protocol
        // is gone for good.
        let dropped = matches!(
            session.close,
            None | Some(close::SLOW_READER) | Some(close::IDLE)
        );
        if keep && session.phase == Phase::Playing && dropped {
            // Still a viewer of its room: what happens there is held for it.
            session.detach(now);
            self.detached += 1;
            let sid = SessionId::new(ShardAddr::new(self.host, self.id), slot, session.gen);
            self.tell_link(sid, true);
            self.drain_local();
            return;
        }
        let sid = SessionId::new(ShardAddr::new(self.host, self.id), slot, session.gen);
        if let Some(room) = session.room.take() {
            self.unview(slot, room);
        }
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        session.out.clear();
        session.out_bytes = 0;
        session.waker = None;
        session.partial = Vec::new();
        session.unsent = Vec::new();
        session.fragments = None;
        match session.phase {
            Phase::Connected => {
                self.sessions.remove(slot);
            }
            Phase::LoggingIn | Phase::Zombie => session.phase = Phase::Zombie,
            Phase::Playing | Phase::Detached => {
                self.players = self.players.saturating_sub(1);
                let unsettled = session.busy_since.is_some() || !self.body_settled(sid);
                let Some(session) = self.sessions.by_slot(slot) else {
                    return;
                };
                if unsettled {
                    session.phase = Phase::Zombie;
                } else {
                    session.phase = Phase::Zombie;
                    self.bury(sid);
                }
            }
        }
        self.drain_local();
    }

    /// Lets go of a dead session's body and name, and frees its slot. A
    /// newer login of the same account waiting on it goes ahead once the
    /// body is saved and gone (at once when it has none).
    pub(super) fn bury(&mut self, sid: SessionId) {
        let Some(session) = self.sessions.remove(sid.slot()) else {
            return;
        };
        if !self.in_doubt.is_empty() {
            self.in_doubt.remove(&sid);
        }
        let notify = self.handoffs.remove(&sid);
        // `body_at` is set when the body first arrives and cleared by quit.
        if let Some(owner) = session.body_at {
            self.router.post_to(owner, Msg::Depart { sid, notify });
        } else if let Some(new) = notify {
            self.router
                .post_to(new.addr(), Msg::Claimed { sid: new, ok: true });
        }
        if !session.name_key.is_empty() {
            self.release(sid, session.name_key);
        }
    }

    /// Once a second: store overflow, login deadlines, idle pings, and closing the silent.
    pub fn sweep(&mut self) {
        // Writes parked while the store's queue was full go on now.
        self.store.pump();
        self.watch_bridge();
        self.expire_account_asks();
        self.expire_doubts();
        self.forget_login_arrivals();
        // Tickets of commands whose answer went another way (see
        // `Router::owe_answer`): long past any wait for them.
        let owed_ms = self.config.cluster.remote_timeout_ms.saturating_mul(4);
        self.router
            .forget_owed(std::time::Duration::from_millis(owed_ms));
        let now = self.now_ms();
        let limits = &self.config.limits;
        let (login_ms, idle_ms, missed_max, bytes_max, grace_ms) = (
            limits.login_timeout_ms,
            limits.idle_ping_ms,
            limits.pings_missed_max,
            limits.outbound_bytes_max,
            limits.close_grace_ms,
        );
        let window_ms = limits.resume_window_ms;
        let park_ms = self.park_reads_after_ms;
        let mut expired = Vec::new();
        for (slot, session) in self.sessions.iter_mut() {
            if session.phase == Phase::Detached {
                // A detached session whose queue overflowed cannot be resumed
                // whole; one past its window is not waited for any more.
                if session.close.is_some() || now.saturating_sub(session.detached_ms) > window_ms {
                    expired.push(slot);
                }
                continue;
            }
            if session.close.is_some() {
                // A peer that will not take its last bytes is not waited for long.
                if session.close_seen_ms == 0 {
                    session.close_seen_ms = now.max(1);
                } else if now.saturating_sub(session.close_seen_ms) > grace_ms {
                    session.abort = true;
                    session.wake();
                }
                continue;
            }
            if session.phase == Phase::Zombie {
                continue;
            }
            if session.phase != Phase::Playing {
                if now.saturating_sub(session.opened_ms) > login_ms {
                    session.request_close(close::LOGIN_TIMEOUT);
                }
                continue;
            }
            if session.reads & reads::ENDED != 0 && now.saturating_sub(session.heard_ms) > grace_ms
            {
                // Its stream ended and its answers did not come in time.
                session.abort = true;
                session.wake();
                continue;
            }
            let receiving = session.queued_since_sweep;
            if let Some(ping) = session.sweep_history(now) {
                session.push(ping, bytes_max);
            }
            let silent_ms = now.saturating_sub(session.heard_ms);
            // Only a session that neither spoke nor was sent anything parks:
            // one still being sent frames (a chat player listening) would be
            // woken from its park by the pong of every ack asked of it, and
            // the thousands of a chat shard would park in one sweep, holding
            // up the deliveries behind them (README, "Parked reads").
            if park_ms > 0
                && silent_ms >= park_ms
                && !receiving
                && session.reads & (reads::PARK_DUE | reads::PARKED) == 0
                && session.resuming.is_none()
            {
                session.reads |= reads::PARK_DUE;
                session.wake();
            }
            if silent_ms < idle_ms || now.saturating_sub(session.pinged_ms) < idle_ms {
                continue;
            }
            if session.pings_missed >= missed_max {
                session.request_close(close::IDLE);
                continue;
            }
            session.pings_missed += 1;
            session.pinged_ms = now;
            let seq = session.seq;
            session.push(Out::Ping(seq), bytes_max);
        }
        for slot in expired {
            self.expire_detached(slot);
        }
        self.tidy_heap();
    }

    /// After a quiet second, has the allocator look over this thread's pages
    /// and give back those now empty. mimalloc frees a block another thread
    /// let go of (an event built here and written by another shard, a reply
    /// held for a resume) only when its own thread next allocates from that
    /// block's page; a shard gone quiet after a burst of logins allocates
    /// little, and pages emptied that way stayed resident: a sixth of an
    /// idle session's memory at 15,000 sessions (README, "Idle memory"). Busy
    /// shards are left alone: they recycle their pages by allocating, and a
    /// collection that purges costs up to a few milliseconds.
    fn tidy_heap(&mut self) {
        let frames = self.counters.stats.frames_in + self.counters.stats.frames_out;
        let moved = frames.saturating_sub(std::mem::replace(&mut self.frames_at_sweep, frames));
        if moved > QUIET_FRAMES_MAX {
            return;
        }
        // SAFETY: `mi_collect` takes no pointers; it works on the calling
        // thread's own heap, which exists (or is made) for any thread.
        unsafe { libmimalloc_sys::mi_collect(false) };
        self.counters.stats.heap_collects += 1;
    }

    /// A detached session's window is over: it leaves the world as a closed
    /// connection does.
    pub(super) fn expire_detached(&mut self, slot: u32) {
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        assert_eq!(
            session.phase,
            Phase::Detached,
            "expiring a session that is not detached"
        );
        // It stops being detached here, as a resume stops it in `resume.rs`:
        // the gauge (and `connections`, which is sessions minus detached)
        // would otherwise keep counting it once its slot is freed.
        self.detached -= 1;
        session.out.clear();
        session.out_bytes = 0;
        session.history.forget();
        let sid = SessionId::new(ShardAddr::new(self.host, self.id), slot, session.gen);
        if let Some(room) = session.room.take() {
            self.unview(slot, room);
        }
        self.players = self.players.saturating_sub(1);
        let busy = self
            .sessions
            .by_slot(slot)
            .is_some_and(|s| s.busy_since.is_some())
            || !self.body_settled(sid);
        if let Some(session) = self.sessions.by_slot(slot) {
            session.phase = Phase::Zombie;
        }
        if !busy {
            self.bury(sid);
        }
        self.drain_local();
    }

    /// Closes every session with "going away" and stops taking new ones, and
    /// saves every registered body it owns (the store flushes them when the
    /// host stops it, after every shard has stopped).
    pub fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        let mut detached = Vec::new();
        for (slot, session) in self.sessions.iter_mut() {
            if session.phase == Phase::Detached {
                detached.push(slot);
            }
            session.request_close(close::SHUTTING_DOWN);
        }
        // No connection will close them: they leave now.
        for slot in detached {
            self.expire_detached(slot);
        }
        self.play(|owner, fx| owner.save_all(fx));
        self.store.pump();
    }
}
