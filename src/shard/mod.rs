//! A shard: one thread, one glommio executor, and everything it owns — its
//! connections' sessions, the rooms it owns with their bodies, its part of the
//! name directory and its counters. Other threads reach it only by message.

pub mod accounts;
pub mod cluster;
pub mod commands;
pub mod delivery;
pub mod directory;
pub mod edge;
pub mod effects;
pub mod gather;
pub mod handoff;
pub mod history;
pub mod home;
pub mod lifecycle;
pub mod login;
pub mod mailbox;
pub mod mirror;
pub mod msg;
pub mod placement;
pub mod remote;
pub mod resume;
pub mod router;
pub mod run;
pub mod session;
pub mod viewers;
pub mod welcome;

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

use crate::store::{StoreHandle, StoreMetrics};
use crate::world::World;
use directory::Directory;
use gather::{Gathers, StatsGather, WhoGather};
use msg::Msg;
use placement::Placement;
use router::Router;
use session::Sessions;

pub use crate::protocol::addr::{SessionId, ShardAddr, SESSIONS_PER_SHARD_MAX};

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
    host: u16,
    pub id: u16,
    pub config: Arc<Config>,
    pub world: Arc<World>,
    placement: Arc<Placement>,
    router: Router,
    owner: Owner,
    /// What the game asked for while handling the current message; carried
    /// out and emptied right after (one buffer, reused).
    effects: Effects,
    pub sessions: Sessions,
    /// Per room: the slots of local sessions whose body is there.
    viewers: Vec<Vec<u32>>,
    /// Views of rooms other shards of this host own, kept to answer `look`
    /// here without a crossing (`mirror.rs`).
    mirrors: mirror::Mirrors,
    directory: Directory,
    pub counters: Counters,
    /// simd-json's working buffers, reused for every client frame.
    json_buffers: simd_json::Buffers,
    who_gathers: Gathers<WhoGather>,
    stats_gathers: Gathers<StatsGather>,
    guest_counter: u64,
    players: u64,
    shutting_down: bool,
    epoch: Instant,
    /// The one store handle of this shard (the owner holds it too).
    pub store: Rc<StoreHandle>,
    pub store_metrics: Arc<StoreMetrics>,
    pub hasher: Hasher,
    signer: Arc<TokenSigner>,
    pub limiter: Arc<LoginLimiter>,
    /// Account logins and registrations in flight, by session.
    logins: HashMap<SessionId, login::Login>,
    /// Sessions kept without a connection, waiting for a resume.
    detached: u64,
    /// How the network layer serves a connection handed over for a resume.
    attacher: Option<resume::Attacher>,
    /// Sessions taken over by a newer login: old → the new one waiting for
    /// the old body to be saved and gone.
    handoffs: HashMap<SessionId, SessionId>,
    /// Connections (slot, epoch) whose session a resume moved to another
    /// connection while they were live: their task closes them with
    /// `close::RESUMED_ELSEWHERE` as it ends.
    pub superseded: std::collections::HashSet<(u32, u32)>,
    /// After how long without a read the sweep parks a session's reads
    /// (`session::reads`); 0, never. Set by the network layer, which does
    /// the parking, from `[runtime] park_reads_after_ms`.
    pub park_reads_after_ms: u64,
    /// `frames_in` + `frames_out` at the last sweep: how many frames the
    /// shard read and wrote in the second before it (`tidy_heap`).
    frames_at_sweep: u64,
    /// The other hosts of the cluster, as the bridge last saw them.
    peers: Arc<Vec<crate::bridge::PeerHost>>,
    /// Commands that went to another host and their deadline: answered
    /// `unreachable` by the sweep if no answer came by then.
    remote_waits: HashMap<SessionId, cluster::RemoteWait>,
    /// The last ticket given to a command sent to another host.
    tickets: u32,
    /// Sessions whose body command was answered `unreachable` before its
    /// answer came: where their body stands is not known until it does.
    in_doubt: HashMap<SessionId, cluster::Doubt>,
    /// Bodies handed to another host, frozen until it acknowledges them.
    transfers: HashMap<SessionId, handoff::Transfer>,
    /// Account questions asked of other hosts, waiting for their answers.
    asks: home::Asks,
    /// A system line for a login to see right after its welcome.
    welcome_notes: HashMap<SessionId, &'static str>,
    /// Logins whose body was sent to a room in another host's land and is
    /// not yet welcomed there: if that host dies first, the body wakes at
    /// this host's start instead (`login::LoginArrival`).
    login_arrivals: HashMap<SessionId, login::LoginArrival>,
    /// Whether this shard's players standing in other hosts' land were told
    /// that the bridge is down (and are to be told when it is back).
    link_down_told: bool,
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
        let host = config.host_index();
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
            park_reads_after_ms: 0,
            frames_at_sweep: 0,
            viewers: vec![Vec::new(); world.rooms.len()],
            mirrors: mirror::Mirrors::default(),
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
            who_gathers: Gathers::new(),
            stats_gathers: Gathers::new(),
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
            superseded: std::collections::HashSet::new(),
            attacher: None,
            detached: 0,
            peers: Arc::new(Vec::new()),
            remote_waits: HashMap::new(),
            tickets: 0,
            in_doubt: HashMap::new(),
            transfers: HashMap::new(),
            asks: home::Asks::default(),
            welcome_notes: HashMap::new(),
            login_arrivals: HashMap::new(),
            link_down_told: false,
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

    /// `at` on the shard's clock (0 for an instant before the shard started).
    pub fn ms_at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
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
                ack_to,
                ticket,
            } => {
                self.router.owe_answer(body.sid, ticket);
                self.on_arrive(body, room, how, id, ack_to)
            }
            Msg::ArriveAck { sid, ok } => self.on_arrive_ack(sid, ok),
            Msg::Cmd {
                sid,
                id,
                cmd,
                sent,
                ticket,
            } => {
                self.router.owe_answer(sid, ticket);
                if sid.addr() != self.addr() {
                    self.counters.hop_latency(sent.elapsed().as_micros() as u64);
                }
                if self.answer_in_transit(sid, id) || self.refuse_unreachable_walk(sid, id, &cmd) {
                    return;
                }
                self.play(|owner, fx| owner.command(fx, sid, id, &cmd));
            }
            Msg::Depart { sid, notify } => self.play(|owner, fx| owner.depart(fx, sid, notify)),
            Msg::Entered { sid, room, owner } => self.on_entered(sid, room, owner),
            Msg::Left { sid, room } => self.on_left(sid, room),
            Msg::Looked {
                sid,
                id,
                room,
                room_json,
                look_text,
            } => self.on_looked(sid, id, room, room_json, look_text),
            Msg::ViewChanged { room } => self.mirrors.forget(room),
            Msg::Frame { sid, frame, done } => {
                self.deliver(sid, frame);
                if done {
                    self.complete(sid);
                }
            }
            Msg::Answer { sid, frame, ticket } => self.on_answer(sid, frame, ticket),
            Msg::Welcomed { sid, room_json } => self.on_welcomed(sid, room_json),
            Msg::RoomEvent {
                room,
                frame,
                except,
            } => self.on_room_event(room, frame, except),
            Msg::Broadcast { frame, except } => self.on_broadcast(frame, except),
            Msg::QuitDone { sid, frame } => self.on_quit_done(sid, frame),
            Msg::Claim {
                key,
                sid,
                takeover,
                run,
                name,
            } => {
                match self.directory.claim_or_take(key, sid, takeover, run, &name) {
                    directory::Claim::Granted => self
                        .router
                        .post_to(sid.addr(), Msg::Claimed { sid, ok: true }),
                    directory::Claim::Taken => self
                        .router
                        .post_to(sid.addr(), Msg::Claimed { sid, ok: false }),
                    directory::Claim::TookOver { old } => self
                        .router
                        .post_to(old.addr(), Msg::TakenOver { old, new: sid }),
                };
            }
            Msg::Spell { key, sid, name } => self.directory.spell(&key, sid, &name),
            Msg::Release { key, sid } => self.directory.release(&key, sid),
            Msg::Tell {
                from,
                from_name,
                id,
                to,
                text,
                ticket,
            } => {
                self.router.owe_answer(from, ticket);
                self.directory
                    .tell(&mut self.router, from, &from_name, id, &to, &text)
            }
            Msg::Claimed { sid, ok } => self.on_claimed(sid, ok),
            Msg::TakenOver { old, new } => self.on_taken_over(old, new),
            Msg::Call(call) => call(self),
            Msg::WhoAsk { asker, ask } => {
                let (names, total) = self.local_names(self.config.limits.names_listed_max);
                let from = self.id;
                self.router.post(
                    asker,
                    Msg::WhoAnswer {
                        ask,
                        from,
                        names,
                        total,
                    },
                );
            }
            Msg::WhoAnswer {
                ask,
                from,
                names,
                total,
            } => self.on_who_answer(ask, from, names, total),
            Msg::StatsAsk { asker, ask } => {
                let stats = Box::new(self.snapshot());
                self.router.post(asker, Msg::StatsAnswer { ask, stats });
            }
            Msg::StatsAnswer { ask, stats } => self.on_stats_answer(ask, *stats),
            Msg::ResumeLookup { key, asker } => {
                let holder = self.directory.holder(&key);
                self.router
                    .post_to(asker.addr(), Msg::ResumeTarget { asker, holder });
            }
            Msg::ResumeTarget { asker, holder } => self.on_resume_target(asker, holder),
            Msg::Handover(handover) => self.on_handover(*handover),
            Msg::LinkDead { sid, dead } => self.play(|owner, fx| owner.link_dead(fx, sid, dead)),
            Msg::Peers { live, turned } => self.on_peers(live, turned),
            Msg::AccountAsk { ask, from, key, op } => self.on_account_ask(ask, from, &key, op),
            Msg::AccountReply { ask, result } => self.on_account_reply(ask, result),
            Msg::SavePlayer {
                key,
                room,
                inventory,
            } => self
                .store
                .save_player_owned(key.into(), room.into(), inventory),
            Msg::Shutdown => self.begin_shutdown(),
        }
    }

    /// This shard's figures right now.
    pub fn snapshot(&self) -> ShardStats {
        let mut stats = self.counters.snapshot();
        stats.connections = self.sessions.len() as u64 - self.detached;
        stats.detached = self.detached;
        stats.players = self.players;
        stats.bodies = self.owner.bodies() as u64;
        stats.cross_shard_sent = self.router.sent_remote;
        stats.inbox_depth = self.router.inbox_depth(self.id) as u64;
        stats.inbox_parked = self.router.parked_len() as u64;
        stats.inbox_full_total = self.router.inbox_full_total;
        stats
    }
}
