//! A shard: one thread, one glommio executor, and everything it owns — its
//! connections' sessions, the rooms it owns with their bodies, its part of the
//! name directory and its counters. Other threads reach it only by message.

pub mod accounts;
pub mod directory;
pub mod edge;
pub mod effects;
pub mod history;
pub mod login;
pub mod mailbox;
pub mod msg;
pub mod placement;
pub mod router;
pub mod run;
pub mod session;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::password::Hasher;
use crate::auth::ratelimit::LoginLimiter;
use crate::auth::token::TokenSigner;
use crate::config::Config;
use crate::game::effect::Effects;
use crate::game::owner::{Owner, RoomItems};
use crate::metrics::stats::{Counters, ShardStats};
use crate::protocol::close;
use crate::store::{StoreHandle, StoreMetrics};
use crate::world::{RoomIdx, World};
use directory::Directory;
use msg::Msg;
use placement::Placement;
use router::Router;
use session::{Phase, Sessions};

pub use crate::protocol::addr::{SessionId, ShardAddr, SESSIONS_PER_SHARD_MAX};

/// An HTTP request waiting for every shard's figures.
struct StatsGather {
    remaining: u16,
    stats: Vec<ShardStats>,
    reply: futures_channel::oneshot::Sender<Vec<ShardStats>>,
}

/// A `who` waiting for every shard's list.
struct WhoGather {
    sid: SessionId,
    id: Option<crate::protocol::MsgId>,
    remaining: u16,
    names: Vec<Box<str>>,
    total: usize,
}

/// What a shard gets from its host besides the other shards: its handle to
/// the store thread, its way to the password hasher, and what all shards
/// share (token signer, login limiter, the store's saved floor items).
pub struct Services {
    pub store: StoreHandle,
    pub store_metrics: Arc<StoreMetrics>,
    pub hasher: Hasher,
    pub signer: Arc<TokenSigner>,
    pub limiter: Arc<LoginLimiter>,
    pub saved_items: Arc<RoomItems>,
}

/// All state of one shard. Lives in an `Rc<RefCell<_>>` on its thread; tasks
/// borrow it only between awaits.
pub struct Shard {
    /// This host's index in the cluster (0 when it runs alone).
    pub host: u16,
    pub id: u16,
    pub config: Arc<Config>,
    pub world: Arc<World>,
    pub placement: Arc<Placement>,
    pub router: Router,
    pub owner: Owner,
    /// What the game asked for while handling the current message; carried
    /// out and emptied right after (one buffer, reused).
    effects: Effects,
    pub sessions: Sessions,
    /// Per room: the slots of local sessions whose body is there.
    viewers: Vec<Vec<u32>>,
    directory: Directory,
    pub counters: Counters,
    /// simd-json's working buffers, reused for every client frame.
    json_buffers: simd_json::Buffers,
    who_gathers: HashMap<u64, WhoGather>,
    stats_gathers: HashMap<u64, StatsGather>,
    next_ask: u64,
    guest_counter: u64,
    players: u64,
    pub shutting_down: bool,
    epoch: Instant,
    /// The one store handle of this shard (the owner holds it too).
    pub store: Rc<StoreHandle>,
    pub store_metrics: Arc<StoreMetrics>,
    pub hasher: Hasher,
    pub signer: Arc<TokenSigner>,
    pub limiter: Arc<LoginLimiter>,
    /// Account logins and registrations in flight, by session.
    logins: HashMap<SessionId, login::Login>,
    /// Sessions taken over by a newer login: old → the new one waiting for
    /// the old body to be saved and gone.
    handoffs: HashMap<SessionId, SessionId>,
}

impl Shard {
    pub fn new(
        id: u16,
        config: Arc<Config>,
        world: Arc<World>,
        placement: Arc<Placement>,
        router: Router,
        services: Services,
    ) -> Shard {
        let store = Rc::new(services.store);
        let host = 0;
        let owner = Owner::new(
            ShardAddr::new(host, id),
            world.clone(),
            config.limits.clone(),
            config.game.clone(),
            services.saved_items,
        );
        Shard {
            host,
            id,
            viewers: vec![Vec::new(); world.rooms.len()],
            config,
            world,
            placement,
            router,
            owner,
            effects: Effects::new(),
            sessions: Sessions::new(),
            directory: Directory::default(),
            counters: Counters::new(id),
            json_buffers: simd_json::Buffers::default(),
            who_gathers: HashMap::new(),
            stats_gathers: HashMap::new(),
            next_ask: 0,
            guest_counter: 0,
            players: 0,
            shutting_down: false,
            epoch: Instant::now(),
            store,
            store_metrics: services.store_metrics,
            hasher: services.hasher,
            signer: services.signer,
            limiter: services.limiter,
            logins: HashMap::new(),
            handoffs: HashMap::new(),
        }
    }

    /// This shard's address: this host, this shard.
    pub fn addr(&self) -> ShardAddr {
        ShardAddr::new(self.host, self.id)
    }

    /// Milliseconds since the shard started: the clock of timeouts and rate limits.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Handles one message from another shard (or from itself), then every
    /// message it sent itself as a result.
    pub fn handle(&mut self, msg: Msg) {
        self.dispatch(msg);
        while let Some(local) = self.router.next_local() {
            self.dispatch(local);
        }
    }

    /// Runs what this shard sent itself outside `handle` (from a frame handler).
    pub fn drain_local(&mut self) {
        while let Some(local) = self.router.next_local() {
            self.dispatch(local);
        }
    }

    fn dispatch(&mut self, msg: Msg) {
        match msg {
            Msg::Arrive {
                body,
                room,
                how,
                id,
            } => self.play(|owner, fx| owner.arrive(fx, body, room, how, id)),
            Msg::Cmd { sid, id, cmd, sent } => {
                if sid.addr() != self.addr() {
                    self.counters.hop_latency(sent.elapsed().as_micros() as u64);
                }
                self.play(|owner, fx| owner.command(fx, sid, id, &cmd));
            }
            Msg::Depart { sid, notify } => self.play(|owner, fx| owner.depart(fx, sid, notify)),
            Msg::Entered { sid, room, owner } => self.on_entered(sid, room, owner),
            Msg::Left { sid, room } => self.on_left(sid, room),
            Msg::Frame { sid, frame, done } => {
                self.deliver(sid, frame);
                if done {
                    self.complete(sid);
                }
            }
            Msg::Welcomed { sid, room_json } => self.on_welcomed(sid, room_json),
            Msg::RoomEvent {
                room,
                frame,
                except,
            } => self.on_room_event(room, frame, except),
            Msg::Broadcast { frame, except } => self.on_broadcast(frame, except),
            Msg::QuitDone { sid, frame } => self.on_quit_done(sid, frame),
            Msg::Claim { key, sid, takeover } => {
                match self.directory.claim_or_take(key, sid, takeover) {
                    directory::Claim::Granted => self
                        .router
                        .post(sid.shard(), Msg::Claimed { sid, ok: true }),
                    directory::Claim::Taken => self
                        .router
                        .post(sid.shard(), Msg::Claimed { sid, ok: false }),
                    directory::Claim::TookOver { old } => self
                        .router
                        .post(old.shard(), Msg::TakenOver { old, new: sid }),
                }
            }
            Msg::Release { key, sid } => self.directory.release(&key, sid),
            Msg::Tell {
                from,
                from_name,
                id,
                to_key,
                text,
            } => self
                .directory
                .tell(&mut self.router, from, &from_name, id, &to_key, &text),
            Msg::Claimed { sid, ok } => self.on_claimed(sid, ok),
            Msg::TakenOver { old, new } => self.on_taken_over(old, new),
            Msg::Call(call) => call(self),
            Msg::WhoAsk { asker, ask } => {
                let (names, total) = self.local_names(self.config.limits.names_listed_max);
                self.router
                    .post(asker, Msg::WhoAnswer { ask, names, total });
            }
            Msg::WhoAnswer { ask, names, total } => self.on_who_answer(ask, names, total),
            Msg::StatsAsk { asker, ask } => {
                let stats = Box::new(self.snapshot());
                self.router.post(asker, Msg::StatsAnswer { ask, stats });
            }
            Msg::StatsAnswer { ask, stats } => self.on_stats_answer(ask, *stats),
            Msg::Shutdown => self.begin_shutdown(),
        }
    }

    /// This shard's figures right now.
    pub fn snapshot(&self) -> ShardStats {
        let mut stats = self.counters.snapshot();
        stats.connections = self.sessions.len() as u64;
        stats.players = self.players;
        stats.bodies = self.owner.bodies() as u64;
        stats.cross_shard_sent = self.router.sent_remote;
        stats.inbox_depth = self.router.inbox_depth(self.id) as u64;
        stats.inbox_parked = self.router.parked_len() as u64;
        stats.inbox_full_total = self.router.inbox_full_total;
        stats
    }

    /// Asks every shard for its figures; `reply` gets them all, in shard order.
    pub fn gather_stats(&mut self, reply: futures_channel::oneshot::Sender<Vec<ShardStats>>) {
        let ask = self.next_ask;
        self.next_ask += 1;
        let shards = self.router.shards();
        self.stats_gathers.insert(
            ask,
            StatsGather {
                remaining: shards,
                stats: Vec::with_capacity(shards as usize),
                reply,
            },
        );
        for shard in 0..shards {
            self.router.post(
                shard,
                Msg::StatsAsk {
                    asker: self.id,
                    ask,
                },
            );
        }
        self.drain_local();
    }

    fn on_stats_answer(&mut self, ask: u64, stats: ShardStats) {
        let Some(gather) = self.stats_gathers.get_mut(&ask) else {
            return;
        };
        gather.stats.push(stats);
        gather.remaining -= 1;
        if gather.remaining == 0 {
            if let Some(mut gather) = self.stats_gathers.remove(&ask) {
                gather.stats.sort_by_key(|s| s.shard);
                // The asker may have gone (client hung up): nothing to do then.
                let _ = gather.reply.send(gather.stats);
            }
        }
    }

    fn local_names(&mut self, names_max: usize) -> (Vec<Box<str>>, usize) {
        let mut names = Vec::new();
        let mut total = 0;
        for (_, session) in self.sessions.iter_mut() {
            if session.phase == Phase::Playing {
                total += 1;
                if names.len() < names_max {
                    names.push(session.name.clone());
                }
            }
        }
        (names, total)
    }

    fn on_entered(&mut self, sid: SessionId, room: RoomIdx, owner: ShardAddr) {
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        session.body_at = Some(owner);
        if session.phase == Phase::Zombie {
            return;
        }
        if let Some(old) = session.room.take() {
            // A Left from the old room's owner is still on its way; act now.
            remove_viewer(&mut self.viewers, &mut self.sessions, sid.slot(), old);
        }
        let Some(list) = self.viewers.get_mut(room as usize) else {
            return;
        };
        list.push(sid.slot());
        let pos = (list.len() - 1) as u32;
        if let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) {
            session.room = Some(room);
            session.viewer_pos = pos;
        }
    }

    fn on_left(&mut self, sid: SessionId, room: RoomIdx) {
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        if session.room == Some(room) {
            session.room = None;
            remove_viewer(&mut self.viewers, &mut self.sessions, sid.slot(), room);
        }
    }

    fn on_room_event(&mut self, room: RoomIdx, frame: bytes::Bytes, except: Option<SessionId>) {
        let Some(list) = self.viewers.get(room as usize) else {
            return;
        };
        let bytes_max = self.config.limits.outbound_bytes_max;
        let except_slot = except.filter(|s| s.shard() == self.id).map(SessionId::slot);
        let mut drops = 0;
        for &slot in list {
            if Some(slot) == except_slot {
                continue;
            }
            if let Some(session) = self.sessions.by_slot(slot) {
                if !session.push_seq(frame.clone(), bytes_max) {
                    session.cut_off(close::SLOW_READER);
                    drops += 1;
                }
            }
        }
        self.counters.stats.outbound_drops += drops;
    }

    fn on_broadcast(&mut self, frame: bytes::Bytes, except: Option<SessionId>) {
        let bytes_max = self.config.limits.outbound_bytes_max;
        let mut drops = 0;
        let me = self.addr();
        for (slot, session) in self.sessions.iter_mut() {
            if session.phase != Phase::Playing
                || Some(SessionId::new(me, slot, session.gen)) == except
            {
                continue;
            }
            if !session.push_seq(frame.clone(), bytes_max) {
                session.cut_off(close::SLOW_READER);
                drops += 1;
            }
        }
        self.counters.stats.outbound_drops += drops;
    }

    /// Closes every session with "going away" and stops taking new ones, and
    /// saves every registered body it owns (the store flushes them when the
    /// host stops it, after every shard has stopped).
    pub fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        for (_, session) in self.sessions.iter_mut() {
            session.request_close(close::SHUTTING_DOWN);
        }
        self.play(|owner, fx| owner.save_all(fx));
        self.store.pump();
    }
}

/// Removes `slot` from the viewers of `room` in O(1), fixing the moved entry.
fn remove_viewer(viewers: &mut [Vec<u32>], sessions: &mut Sessions, slot: u32, room: RoomIdx) {
    let Some(list) = viewers.get_mut(room as usize) else {
        return;
    };
    let Some(session) = sessions.by_slot(slot) else {
        return;
    };
    let pos = session.viewer_pos as usize;
    session.viewer_pos = u32::MAX;
    // The position is kept in step with the list; fall back to a scan if not.
    let pos = if list.get(pos) == Some(&slot) {
        pos
    } else {
        match list.iter().position(|s| *s == slot) {
            Some(p) => p,
            None => return,
        }
    };
    list.swap_remove(pos);
    if let Some(&moved) = list.get(pos) {
        if let Some(other) = sessions.by_slot(moved) {
            other.viewer_pos = pos as u32;
        }
    }
}
