//! The messages shards send each other. Each names who owns what it touches:
//! a room's owner changes bodies and rooms, a connection's shard changes
//! sessions and writes frames, a name's shard keeps the directory entry.

use bytes::Bytes;
use std::time::Instant;

use super::{SessionId, ShardAddr};
use crate::game::command::BodyCommand;
use crate::protocol::MsgId;
use crate::world::RoomIdx;

pub use crate::game::body::{Arrival, Body};

/// Work for a shard, sent from another thread: it runs on the shard with
/// the shard's state, so the sender never touches that state itself.
pub type ShardCall = Box<dyn FnOnce(&mut super::Shard) + Send>;

/// A cross-shard message. Frame bodies are `Bytes`: serialized once, shared.
pub enum Msg {
    // --- to the owner of a room ---
    /// A body enters `room` (a login, or a hand-off from another owner).
    /// A hand-off from another host names its source (`ack_to`), which
    /// waits for `ArriveAck`.
    Arrive {
        body: Body,
        room: RoomIdx,
        how: Arrival,
        id: Option<MsgId>,
        ack_to: Option<ShardAddr>,
        /// The ticket of the cross-host command that moved the body, which
        /// its answer carries back (0 for none; see `Cmd::ticket`).
        ticket: u32,
    },
    /// The owner on another host took the body of `sid` in (`ok`), or
    /// refused it: the source forgets its frozen copy, or puts it back.
    ArriveAck {
        sid: SessionId,
        ok: bool,
    },
    /// A command for the body of `sid`, which this shard holds, parsed
    /// where it was read. `ticket`: not 0 for a command from another host,
    /// whose answer carries it back (`Msg::Answer`), so that an answer come
    /// after its command was answered `unreachable` is known as late.
    Cmd {
        sid: SessionId,
        id: Option<MsgId>,
        cmd: BodyCommand,
        sent: Instant,
        ticket: u32,
    },
    /// The session of `sid` ended: remove its body. With `notify`, a new
    /// session of the same account is waiting (a takeover): once the body's
    /// state is committed, it gets `Claimed { ok: true }`.
    Depart {
        sid: SessionId,
        notify: Option<SessionId>,
    },

    // --- to the shard of a connection ---
    /// The body of `sid` is now in `room`, owned by `owner`.
    Entered {
        sid: SessionId,
        room: RoomIdx,
        owner: ShardAddr,
    },
    /// The body of `sid` has left `room`: it stops seeing that room's events.
    Left {
        sid: SessionId,
        room: RoomIdx,
    },
    /// `look`'s answer, as the view itself: reply, and keep the view to
    /// answer the next `look`s in `room` here (`shard/mirror.rs`).
    Looked {
        sid: SessionId,
        id: Option<MsgId>,
        room: RoomIdx,
        room_json: Bytes,
        look_text: Bytes,
    },
    /// The view of `room` kept here is no longer true.
    ViewChanged {
        room: RoomIdx,
    },
    /// A reply or an event for one session. `done` completes its command.
    Frame {
        sid: SessionId,
        frame: Bytes,
        done: bool,
    },
    /// The reply that completes the cross-host command of `sid` numbered
    /// `ticket`: if that command was answered `unreachable` already, it is
    /// shown but completes nothing (`Shard::on_answer`).
    Answer {
        sid: SessionId,
        frame: Bytes,
        ticket: u32,
    },
    /// Logged in: the first frame (`welcome`) carries this room object.
    Welcomed {
        sid: SessionId,
        room_json: Bytes,
    },
    /// An event for every local viewer of `room` but `except`.
    RoomEvent {
        room: RoomIdx,
        frame: Bytes,
        except: Option<SessionId>,
    },
    /// An event for every local session but `except` (shouts, notices).
    Broadcast {
        frame: Bytes,
        except: Option<SessionId>,
    },
    /// The body of `sid` was removed for `quit`: reply, then close.
    QuitDone {
        sid: SessionId,
        frame: Bytes,
    },

    // --- to the shard that keeps a name in the directory ---
    /// Claims a name. With `takeover` (a verified account login) a holder is
    /// replaced: it gets `TakenOver`, and the claimant's `Claimed` comes from
    /// the holder's side once the old body is saved and gone.
    Claim {
        key: Box<str>,
        sid: SessionId,
        takeover: bool,
        /// The boot epoch of the claimant's host when the claim came from
        /// another host (set on arrival); 0 from this one.
        run: u64,
        /// How the claimant writes the name (`key` when it does not know yet).
        name: Box<str>,
    },
    /// How the holder of `key` writes it, once a token login has read it.
    Spell {
        key: Box<str>,
        sid: SessionId,
        name: Box<str>,
    },
    Release {
        key: Box<str>,
        sid: SessionId,
    },
    Tell {
        from: SessionId,
        from_name: Box<str>,
        id: Option<MsgId>,
        /// The target's name as the teller typed it.
        to: Box<str>,
        text: Box<str>,
        /// As for `Cmd`.
        ticket: u32,
    },
    // --- back to the shard of a connection ---
    Claimed {
        sid: SessionId,
        ok: bool,
    },
    /// Another login took the account of `old` over: close it, depart its
    /// body, then let `new` go ahead.
    TakenOver {
        old: SessionId,
        new: SessionId,
    },

    // --- from the store and hasher threads ---
    /// An answer from a thread beside the shards, run on the shard it was
    /// addressed to (see `shard::call`).
    Call(ShardCall),

    // --- gathers: one question to every shard, answers back to the asker ---
    WhoAsk {
        asker: u16,
        ask: u64,
    },
    WhoAnswer {
        ask: u64,
        /// The answering shard: each answers a gather exactly once.
        from: u16,
        names: Vec<Box<str>>,
        total: usize,
    },
    StatsAsk {
        asker: u16,
        ask: u64,
    },
    StatsAnswer {
        ask: u64,
        stats: Box<crate::metrics::stats::ShardStats>,
    },

    // --- resume ---
    /// To the directory shard of `key`: whose session holds the account a
    /// resume on `asker`'s connection presented a token for.
    ResumeLookup {
        key: Box<str>,
        asker: SessionId,
    },
    /// The directory's answer: the session holding `key`, if any.
    ResumeTarget {
        asker: SessionId,
        holder: Option<SessionId>,
    },
    /// A connection handed to the shard of the session it resumes.
    Handover(Box<super::resume::Handover>),
    /// To a body's owner: its player's connection dropped (`dead`) or came
    /// back; the room sees them link-dead meanwhile.
    LinkDead {
        sid: SessionId,
        dead: bool,
    },

    // --- accounts on their home host (see `shard::home`) ---
    /// To the home host of `key`: an account question from `from`.
    AccountAsk {
        ask: u64,
        from: ShardAddr,
        key: Box<str>,
        op: crate::game::wire::AccountOp,
    },
    /// The home host's answer to ask `ask`.
    AccountReply {
        ask: u64,
        result: crate::game::wire::AccountResult,
    },
    /// A registered player's room and inventory, for the home host's store.
    SavePlayer {
        key: Box<str>,
        room: Box<str>,
        inventory: Vec<String>,
    },

    // --- from the bridge ---
    /// The other hosts as their heartbeats show them (for `who`), and those
    /// that joined, died or restarted since the last time: their players
    /// are gone, and the names they kept for this host must be claimed again.
    Peers {
        live: std::sync::Arc<Vec<crate::bridge::PeerHost>>,
        turned: Vec<u16>,
    },

    /// Stop accepting, close every session, and stop.
    Shutdown,
}

impl Msg {
    /// The kind of message, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Arrive { .. } => "arrive",
            Msg::ArriveAck { .. } => "arrive_ack",
            Msg::Cmd { .. } => "cmd",
            Msg::Depart { .. } => "depart",
            Msg::Entered { .. } => "entered",
            Msg::Left { .. } => "left",
            Msg::Looked { .. } => "looked",
            Msg::ViewChanged { .. } => "view_changed",
            Msg::Frame { .. } => "frame",
            Msg::Answer { .. } => "answer",
            Msg::Welcomed { .. } => "welcomed",
            Msg::RoomEvent { .. } => "room_event",
            Msg::Broadcast { .. } => "broadcast",
            Msg::QuitDone { .. } => "quit_done",
            Msg::Claim { .. } => "claim",
            Msg::Spell { .. } => "spell",
            Msg::Release { .. } => "release",
            Msg::Tell { .. } => "tell",
            Msg::Claimed { .. } => "claimed",
            Msg::TakenOver { .. } => "taken_over",
            Msg::Call(_) => "call",
            Msg::WhoAsk { .. } => "who_ask",
            Msg::WhoAnswer { .. } => "who_answer",
            Msg::StatsAsk { .. } => "stats_ask",
            Msg::StatsAnswer { .. } => "stats_answer",
            Msg::ResumeLookup { .. } => "resume_lookup",
            Msg::ResumeTarget { .. } => "resume_target",
            Msg::Handover(_) => "handover",
            Msg::LinkDead { .. } => "link_dead",
            Msg::Peers { .. } => "peers",
            Msg::AccountAsk { .. } => "account_ask",
            Msg::AccountReply { .. } => "account_reply",
            Msg::SavePlayer { .. } => "save_player",
            Msg::Shutdown => "shutdown",
        }
    }
}
