//! The cross-host wire: the one form in which messages leave a host (through
//! Redis, DESIGN §1 "Cross-host") and the only code that writes or reads it.
//!
//! The in-process `shard::msg::Msg` cannot cross: it carries closures and
//! `Instant`s that mean nothing on another machine.
//! [`PeerMsg`] is the part of it that can, and an [`Envelope`] is one batch
//! of them from one host to another.
//!
//! Why binary and hand-written: both ends are this program, so there is no
//! reader to please but the decoder. Most of what crosses is frames already
//! serialized as JSON; binary carries them as a length and the bytes, where
//! JSON would escape them again and a parser would scan them again. Decoding
//! is one bounds-checked walk over the bytes, with no dependency to trust.
//!
//! Why varints (LEB128): nearly every integer is small (shard and room
//! indexes, lengths, counts, sequence numbers), so most take one or two
//! bytes, yet epochs and sequences keep their full 64 bits. `SessionId` is
//! the exception: its host sits in the top byte, so a varint would take 9 or
//! 10 bytes for every host but 0, and it goes as 8 fixed bytes instead.
//!
//! Why the version byte comes first: a host meeting an envelope from another
//! release refuses it with a message naming both versions before it reads
//! anything whose layout may have changed. Hosts of different wire versions
//! do not talk; they are upgraded together.
//!
//! Decoding trusts nothing: every length is checked against the bytes left
//! before anything is allocated for it, every count against the bytes that
//! could hold it, and every value the rest of the server relies on (hosts,
//! shards, tags, UTF-8, id lengths) is checked here. Room indexes are the
//! exception: only the receiving host's world knows how many rooms it has,
//! so the receiver checks them.

use bytes::Bytes;

use crate::game::body::{Arrival, Body};
use crate::game::command::BodyCommand;
use crate::protocol::addr::{SessionId, ShardAddr, HOSTS_MAX, SHARDS_PER_HOST_MAX};
use crate::protocol::MsgId;
use crate::world::{Dir, RoomIdx};

/// The layout this host writes and the only one it reads. Bump it with any
/// change to the encoding, however small.
pub const WIRE_VERSION: u8 = 5;

/// The largest envelope a host accepts, refused before any of it is read.
/// Batches flush at 64 KiB (DESIGN §1); this leaves room for one large
/// message (a room object of a big zone) in a batch of its own.
pub const ENVELOPE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// The most messages one envelope may hold. The batcher flushes at this
/// count too; it bounds the `Vec` a decoder allocates for them.
pub const MESSAGES_PER_ENVELOPE_MAX: usize = 16 * 1024;

/// The fewest bytes a message can take (`AllShards`, its tag, and a
/// `Broadcast` of an empty frame with no `except`), so a message count
/// larger than the bytes left divided by this is a lie.
const MESSAGE_BYTES_MIN: usize = 4;

/// One batch of messages from one source host to one destination host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The sending host's index in the cluster.
    pub source_host: u16,
    /// Changes each time the source host starts: a new epoch means its
    /// sequence started over and whatever it held before is gone.
    pub boot_epoch: u64,
    /// The destination's boot epoch as the source knew it when it numbered
    /// this envelope (0: not known yet, and on the global channel). Numbers
    /// start over for each run of the destination, so a host that restarted
    /// knows which envelopes were numbered for it.
    pub dest_epoch: u64,
    /// Counts envelopes per source → destination within one boot epoch of
    /// each; a gap means envelopes were lost and are sent again.
    pub seq: u64,
    /// The source's wall clock, in ms since the Unix epoch, when it first
    /// sealed this envelope (a resend keeps it). With the `posted_ms` of a
    /// player's command it tells the receiver how late the command is, free
    /// of any offset between the two hosts' clocks (`shard::remote`).
    pub sent_ms: u64,
    pub messages: Vec<Addressed>,
}

/// A message and the shard (or shards) of the destination host it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    pub to: Dest,
    pub msg: PeerMsg,
}

/// Where on the destination host a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// One shard of the destination host.
    Shard(u16),
    /// Every shard of the destination host, which fans the message out (a
    /// room event for viewers on several shards, a shout): sent once per
    /// host, not once per shard.
    AllShards,
}

/// A message that can cross hosts: the cross-host-capable variants of the
/// in-process `shard::msg::Msg`, with the same meanings, owned and without
/// anything that only makes sense inside one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMsg {
    // --- to the owner of a room ---
    /// A body enters `room`: a hand-off from an owner on another host, or a
    /// login. A hand-off names the owner it comes from (`ack_to`), which
    /// keeps the body frozen until `ArriveAck` comes back.
    Arrive {
        body: Body,
        room: RoomIdx,
        how: Arrival,
        id: Option<MsgId>,
        ack_to: Option<ShardAddr>,
        ticket: u32,
    },
    /// The receiving owner took the body of `sid` in (`ok`) or refused it, so
    /// the sender can forget it or take it back.
    ArriveAck {
        sid: SessionId,
        ok: bool,
    },
    /// A command, parsed where it was read, for the body of `sid`;
    /// `posted_ms`: the source's wall clock when it was read (see
    /// `Envelope::sent_ms`). `ticket` names this command among those its
    /// session sent to other hosts (0 for none): its answer carries it
    /// back, so that an answer come after its command was answered
    /// `unreachable` is known as late (`shard::Shard::on_answer`). A
    /// hand-off the command causes carries it on (`Arrive::ticket`).
    Cmd {
        sid: SessionId,
        id: Option<MsgId>,
        cmd: BodyCommand,
        posted_ms: u64,
        ticket: u32,
    },
    /// The session of `sid` ended: remove its body (see `Msg::Depart`).
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
    /// The body of `sid` has left `room`.
    Left {
        sid: SessionId,
        room: RoomIdx,
    },
    /// A reply or an event for one session; `done` completes its command,
    /// the one of `ticket` when that is not 0 (see `Cmd::ticket`).
    Frame {
        sid: SessionId,
        frame: Bytes,
        done: bool,
        ticket: u32,
    },
    /// Logged in: the `welcome` frame carries this room object.
    Welcomed {
        sid: SessionId,
        room_json: Bytes,
    },
    /// An event for every viewer of `room` on the destination but `except`.
    RoomEvent {
        room: RoomIdx,
        frame: Bytes,
        except: Option<SessionId>,
    },
    /// An event for every session on the destination but `except`.
    Broadcast {
        frame: Bytes,
        except: Option<SessionId>,
    },
    /// The body of `sid` was removed for `quit`: reply, then close.
    QuitDone {
        sid: SessionId,
        frame: Bytes,
    },

    // --- to the keeper of a name in the directory ---
    /// `name`: how the claimant writes the name (`key` when it does not
    /// know yet); a `tell`'s answer calls its target so.
    Claim {
        key: Box<str>,
        sid: SessionId,
        takeover: bool,
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
    /// `posted_ms` and `ticket` as for `Cmd`.
    Tell {
        from: SessionId,
        from_name: Box<str>,
        id: Option<MsgId>,
        /// The target's name as the teller typed it.
        to: Box<str>,
        text: Box<str>,
        posted_ms: u64,
        ticket: u32,
    },

    // --- back to the shard of a connection ---
    Claimed {
        sid: SessionId,
        ok: bool,
    },
    /// Another login took the account of `old` over.
    TakenOver {
        old: SessionId,
        new: SessionId,
    },

    // --- resume: to the keeper of a name, and back ---
    /// Whose session holds the account a resume on `asker`'s connection
    /// presented a token for.
    ResumeLookup {
        key: Box<str>,
        asker: SessionId,
    },
    /// The keeper's answer: the session holding the name, if any.
    ResumeTarget {
        asker: SessionId,
        holder: Option<SessionId>,
    },
    /// To a body's owner: its player's connection dropped (`dead`) or came
    /// back (see `Msg::LinkDead`).
    LinkDead {
        sid: SessionId,
        dead: bool,
    },

    // --- accounts: to the home host of a name, and back ---
    /// An account question for the home host of `key` (it keeps the account
    /// in its SQLite file); answered with `AccountReply` to `from`.
    AccountAsk {
        ask: u64,
        from: ShardAddr,
        key: Box<str>,
        op: AccountOp,
    },
    AccountReply {
        ask: u64,
        result: AccountResult,
    },
    /// A registered player's room and inventory, for the store of their
    /// home host (write-behind there).
    SavePlayer {
        key: Box<str>,
        room: Box<str>,
        inventory: Vec<String>,
    },
}

/// What a host asks the home host of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountOp {
    /// Check this password (the asker has checked the rules and its limiter).
    Password {
        name: Box<str>,
        password: Box<str>,
        ip: Box<str>,
    },
    /// Create this account (the asker has checked the rules and holds the
    /// name in the directory), its player starting in `start` (the start
    /// room of the host they registered on).
    Register {
        name: Box<str>,
        password: Box<str>,
        ip: Box<str>,
        start: Box<str>,
    },
    /// The account of the key, if there is one.
    Load,
}

/// The home host's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountResult {
    /// The account (never its password hash), or none.
    Account(Option<AccountFacts>),
    /// Refused: the account service's code, and for `rate_limited` the wait
    /// and for `name_taken` the name.
    Refused {
        code: Box<str>,
        retry_after_s: u64,
        name: Box<str>,
    },
}

/// What a host needs of an account to let its player in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFacts {
    pub name: Box<str>,
    pub room: Box<str>,
    pub inventory: Vec<String>,
}

/// Why bytes are not an envelope. Each names the field it stopped at, for
/// the log line of the bridge that drops the envelope and resyncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The sender speaks another version of the wire.
    UnknownVersion { got: u8, expected: u8 },
    /// The bytes end inside `what`, or a length or count claims more bytes
    /// than are left.
    Truncated { what: &'static str },
    /// A varint runs past 64 bits.
    BadVarint { what: &'static str },
    /// A number does not fit what it numbers (a host, a shard).
    OutOfRange {
        what: &'static str,
        got: u64,
        max: u64,
    },
    /// A tag byte names no known variant (of a message, a command, a
    /// direction, an option or a flag).
    BadTag { what: &'static str, got: u8 },
    /// Text that is not UTF-8.
    BadUtf8 { what: &'static str },
    /// Larger than its named bound.
    TooLarge {
        what: &'static str,
        got: u64,
        max: u64,
    },
    /// Bytes left over after the last message.
    Trailing { bytes: usize },
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::UnknownVersion { got, expected } => write!(
                f,
                "wire version {got} is not understood (this host speaks version {expected}); \
                 upgrade the hosts together"
            ),
            WireError::Truncated { what } => write!(f, "the envelope ends inside {what}"),
            WireError::BadVarint { what } => write!(f, "{what}: a varint longer than 64 bits"),
            WireError::OutOfRange { what, got, max } => {
                write!(f, "{what} {got} is out of range (at most {max})")
            }
            WireError::BadTag { what, got } => write!(f, "{what}: unknown tag {got}"),
            WireError::BadUtf8 { what } => write!(f, "{what} is not UTF-8"),
            WireError::TooLarge { what, got, max } => {
                write!(f, "too large: {got} {what}, at most {max}")
            }
            WireError::Trailing { bytes } => {
                write!(f, "{bytes} bytes follow the last message")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// Tag bytes. Zero is no tag, so zeroed memory never decodes as a message.
/// A tag, once given, keeps its meaning within a `WIRE_VERSION`.
mod tag {
    pub const DEST_SHARD: u8 = 1;
    pub const DEST_ALL_SHARDS: u8 = 2;

    pub const ARRIVE: u8 = 1;
    pub const ARRIVE_ACK: u8 = 2;
    pub const CMD: u8 = 3;
    pub const DEPART: u8 = 4;
    pub const ENTERED: u8 = 5;
    pub const LEFT: u8 = 6;
    pub const FRAME: u8 = 7;
    pub const WELCOMED: u8 = 8;
    pub const ROOM_EVENT: u8 = 9;
    pub const BROADCAST: u8 = 10;
    pub const QUIT_DONE: u8 = 11;
    pub const CLAIM: u8 = 12;
    pub const RELEASE: u8 = 13;
    pub const CLAIMED: u8 = 14;
    pub const TAKEN_OVER: u8 = 15;
    pub const TELL: u8 = 16;
    pub const RESUME_LOOKUP: u8 = 17;
    pub const RESUME_TARGET: u8 = 18;
    pub const LINK_DEAD: u8 = 19;
    pub const ACCOUNT_ASK: u8 = 20;
    pub const ACCOUNT_REPLY: u8 = 21;
    pub const SAVE_PLAYER: u8 = 22;
    pub const SPELL: u8 = 23;

    pub const OP_PASSWORD: u8 = 1;
    pub const OP_REGISTER: u8 = 2;
    pub const OP_LOAD: u8 = 3;

    pub const RESULT_ACCOUNT: u8 = 1;
    pub const RESULT_REFUSED: u8 = 2;

    pub const LOOK: u8 = 1;
    pub const GO: u8 = 2;
    pub const SAY: u8 = 3;
    pub const EMOTE: u8 = 4;
    pub const INVENTORY: u8 = 5;
    pub const GET: u8 = 6;
    pub const DROP: u8 = 7;
    pub const QUIT: u8 = 8;
    pub const GOTO: u8 = 9;

    pub const WALK: u8 = 1;
    pub const TELEPORT: u8 = 2;
    pub const LOGIN: u8 = 3;

    pub const NORTH: u8 = 1;
    pub const SOUTH: u8 = 2;
    pub const EAST: u8 = 3;
    pub const WEST: u8 = 4;
    pub const UP: u8 = 5;
    pub const DOWN: u8 = 6;
}

/// Appends `env` to `out`. The batcher keeps envelopes within
/// [`MESSAGES_PER_ENVELOPE_MAX`] and [`ENVELOPE_BYTES_MAX`]; one past them
/// is a bug there, and is caught here rather than refused by the receiver.
pub fn encode(env: &Envelope, out: &mut Vec<u8>) {
    assert!(
        env.messages.len() <= MESSAGES_PER_ENVELOPE_MAX,
        "wire: {} messages in one envelope",
        env.messages.len()
    );
    let start = out.len();
    out.push(WIRE_VERSION);
    put_varint(out, u64::from(env.source_host));
    put_varint(out, env.boot_epoch);
    put_varint(out, env.dest_epoch);
    put_varint(out, env.seq);
    put_varint(out, env.sent_ms);
    put_varint(out, env.messages.len() as u64);
    for addressed in &env.messages {
        let message_start = out.len();
        put_dest(out, addressed.to);
        put_msg(out, &addressed.msg);
        debug_assert!(out.len() - message_start >= MESSAGE_BYTES_MIN);
    }
    assert!(
        out.len() - start <= ENVELOPE_BYTES_MAX,
        "wire: an envelope of {} bytes",
        out.len() - start
    );
}

/// Reads one envelope: all of `bytes`, nothing more or less.
pub fn decode(bytes: &[u8]) -> Result<Envelope, WireError> {
    let Some((&version, rest)) = bytes.split_first() else {
        return Err(WireError::Truncated { what: "version" });
    };
    if version != WIRE_VERSION {
        return Err(WireError::UnknownVersion {
            got: version,
            expected: WIRE_VERSION,
        });
    }
    if bytes.len() > ENVELOPE_BYTES_MAX {
        return Err(WireError::TooLarge {
            what: "envelope bytes",
            got: bytes.len() as u64,
            max: ENVELOPE_BYTES_MAX as u64,
        });
    }
    let mut r = Reader { rest };
    let source_host = r.index(HOSTS_MAX, "source host")?;
    let boot_epoch = r.varint("boot epoch")?;
    let dest_epoch = r.varint("destination epoch")?;
    let seq = r.varint("sequence")?;
    let sent_ms = r.varint("sent time")?;
    let count = r.count(
        MESSAGES_PER_ENVELOPE_MAX,
        MESSAGE_BYTES_MIN,
        "message count",
    )?;
    let mut messages = Vec::with_capacity(count);
    for _ in 0..count {
        let to = r.dest()?;
        let msg = r.msg()?;
        messages.push(Addressed { to, msg });
    }
    if !r.rest.is_empty() {
        return Err(WireError::Trailing {
            bytes: r.rest.len(),
        });
    }
    Ok(Envelope {
        source_host,
        boot_epoch,
        dest_epoch,
        seq,
        sent_ms,
        messages,
    })
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bool(out: &mut Vec<u8>, b: bool) {
    out.push(u8::from(b));
}

fn put_blob(out: &mut Vec<u8>, blob: &[u8]) {
    put_varint(out, blob.len() as u64);
    out.extend_from_slice(blob);
}

fn put_strings(out: &mut Vec<u8>, items: &[String]) {
    put_varint(out, items.len() as u64);
    for item in items {
        put_blob(out, item.as_bytes());
    }
}

fn put_sid(out: &mut Vec<u8>, sid: SessionId) {
    out.extend_from_slice(&sid.to_bits().to_le_bytes());
}

fn put_opt_sid(out: &mut Vec<u8>, sid: Option<SessionId>) {
    put_bool(out, sid.is_some());
    if let Some(sid) = sid {
        put_sid(out, sid);
    }
}

fn put_opt_id(out: &mut Vec<u8>, id: Option<MsgId>) {
    put_bool(out, id.is_some());
    if let Some(id) = id {
        put_blob(out, id.as_json().as_bytes());
    }
}

fn put_dir(out: &mut Vec<u8>, dir: Dir) {
    out.push(match dir {
        Dir::North => tag::NORTH,
        Dir::South => tag::SOUTH,
        Dir::East => tag::EAST,
        Dir::West => tag::WEST,
        Dir::Up => tag::UP,
        Dir::Down => tag::DOWN,
    });
}

fn put_dest(out: &mut Vec<u8>, dest: Dest) {
    match dest {
        Dest::Shard(shard) => {
            out.push(tag::DEST_SHARD);
            put_varint(out, u64::from(shard));
        }
        Dest::AllShards => out.push(tag::DEST_ALL_SHARDS),
    }
}

fn put_body(out: &mut Vec<u8>, body: &Body) {
    put_sid(out, body.sid);
    put_blob(out, body.name.as_bytes());
    put_varint(out, body.inventory.len() as u64);
    for item in &body.inventory {
        put_blob(out, item.as_bytes());
    }
    put_bool(out, body.account);
}

fn put_arrival(out: &mut Vec<u8>, how: Arrival) {
    match how {
        Arrival::Walk(dir) => {
            out.push(tag::WALK);
            put_dir(out, dir);
        }
        Arrival::Teleport => out.push(tag::TELEPORT),
        Arrival::Login => out.push(tag::LOGIN),
    }
}

fn put_cmd(out: &mut Vec<u8>, cmd: &BodyCommand) {
    let mut tagged_text = |t: u8, text: &str| {
        out.push(t);
        put_blob(out, text.as_bytes());
    };
    match cmd {
        BodyCommand::Say(text) => tagged_text(tag::SAY, text),
        BodyCommand::Emote(text) => tagged_text(tag::EMOTE, text),
        BodyCommand::Get(item) => tagged_text(tag::GET, item),
        BodyCommand::Drop(item) => tagged_text(tag::DROP, item),
        BodyCommand::Goto(room) => tagged_text(tag::GOTO, room),
        BodyCommand::Go(dir) => {
            out.push(tag::GO);
            put_dir(out, *dir);
        }
        BodyCommand::Look => out.push(tag::LOOK),
        BodyCommand::Inventory => out.push(tag::INVENTORY),
        BodyCommand::Quit => out.push(tag::QUIT),
    }
}

fn put_msg(out: &mut Vec<u8>, msg: &PeerMsg) {
    match msg {
        PeerMsg::Arrive {
            body,
            room,
            how,
            id,
            ack_to,
            ticket,
        } => {
            out.push(tag::ARRIVE);
            put_body(out, body);
            put_varint(out, u64::from(*room));
            put_arrival(out, *how);
            put_opt_id(out, *id);
            put_bool(out, ack_to.is_some());
            if let Some(from) = ack_to {
                put_varint(out, u64::from(from.host));
                put_varint(out, u64::from(from.shard));
            }
            put_varint(out, u64::from(*ticket));
        }
        PeerMsg::ArriveAck { sid, ok } => {
            out.push(tag::ARRIVE_ACK);
            put_sid(out, *sid);
            put_bool(out, *ok);
        }
        PeerMsg::Cmd {
            sid,
            id,
            cmd,
            posted_ms,
            ticket,
        } => {
            out.push(tag::CMD);
            put_sid(out, *sid);
            put_opt_id(out, *id);
            put_cmd(out, cmd);
            put_varint(out, *posted_ms);
            put_varint(out, u64::from(*ticket));
        }
        PeerMsg::Depart { sid, notify } => {
            out.push(tag::DEPART);
            put_sid(out, *sid);
            put_opt_sid(out, *notify);
        }
        PeerMsg::Entered { sid, room, owner } => {
            out.push(tag::ENTERED);
            put_sid(out, *sid);
            put_varint(out, u64::from(*room));
            put_varint(out, u64::from(owner.host));
            put_varint(out, u64::from(owner.shard));
        }
        PeerMsg::Left { sid, room } => {
            out.push(tag::LEFT);
            put_sid(out, *sid);
            put_varint(out, u64::from(*room));
        }
        PeerMsg::Frame {
            sid,
            frame,
            done,
            ticket,
        } => {
            out.push(tag::FRAME);
            put_sid(out, *sid);
            put_blob(out, frame);
            put_bool(out, *done);
            put_varint(out, u64::from(*ticket));
        }
        PeerMsg::Welcomed { sid, room_json } => {
            out.push(tag::WELCOMED);
            put_sid(out, *sid);
            put_blob(out, room_json);
        }
        PeerMsg::RoomEvent {
            room,
            frame,
            except,
        } => {
            out.push(tag::ROOM_EVENT);
            put_varint(out, u64::from(*room));
            put_blob(out, frame);
            put_opt_sid(out, *except);
        }
        PeerMsg::Broadcast { frame, except } => {
            out.push(tag::BROADCAST);
            put_blob(out, frame);
            put_opt_sid(out, *except);
        }
        PeerMsg::QuitDone { sid, frame } => {
            out.push(tag::QUIT_DONE);
            put_sid(out, *sid);
            put_blob(out, frame);
        }
        PeerMsg::Claim {
            key,
            sid,
            takeover,
            name,
        } => {
            out.push(tag::CLAIM);
            put_blob(out, key.as_bytes());
            put_sid(out, *sid);
            put_bool(out, *takeover);
            put_blob(out, name.as_bytes());
        }
        PeerMsg::Spell { key, sid, name } => {
            out.push(tag::SPELL);
            put_blob(out, key.as_bytes());
            put_sid(out, *sid);
            put_blob(out, name.as_bytes());
        }
        PeerMsg::Release { key, sid } => {
            out.push(tag::RELEASE);
            put_blob(out, key.as_bytes());
            put_sid(out, *sid);
        }
        PeerMsg::Claimed { sid, ok } => {
            out.push(tag::CLAIMED);
            put_sid(out, *sid);
            put_bool(out, *ok);
        }
        PeerMsg::TakenOver { old, new } => {
            out.push(tag::TAKEN_OVER);
            put_sid(out, *old);
            put_sid(out, *new);
        }
        PeerMsg::ResumeLookup { key, asker } => {
            out.push(tag::RESUME_LOOKUP);
            put_blob(out, key.as_bytes());
            put_sid(out, *asker);
        }
        PeerMsg::ResumeTarget { asker, holder } => {
            out.push(tag::RESUME_TARGET);
            put_sid(out, *asker);
            put_opt_sid(out, *holder);
        }
        PeerMsg::LinkDead { sid, dead } => {
            out.push(tag::LINK_DEAD);
            put_sid(out, *sid);
            put_bool(out, *dead);
        }
        PeerMsg::AccountAsk { ask, from, key, op } => {
            out.push(tag::ACCOUNT_ASK);
            put_varint(out, *ask);
            put_varint(out, u64::from(from.host));
            put_varint(out, u64::from(from.shard));
            put_blob(out, key.as_bytes());
            match op {
                AccountOp::Password { name, password, ip } => {
                    out.push(tag::OP_PASSWORD);
                    put_blob(out, name.as_bytes());
                    put_blob(out, password.as_bytes());
                    put_blob(out, ip.as_bytes());
                }
                AccountOp::Register {
                    name,
                    password,
                    ip,
                    start,
                } => {
                    out.push(tag::OP_REGISTER);
                    put_blob(out, name.as_bytes());
                    put_blob(out, password.as_bytes());
                    put_blob(out, ip.as_bytes());
                    put_blob(out, start.as_bytes());
                }
                AccountOp::Load => out.push(tag::OP_LOAD),
            }
        }
        PeerMsg::AccountReply { ask, result } => {
            out.push(tag::ACCOUNT_REPLY);
            put_varint(out, *ask);
            match result {
                AccountResult::Account(facts) => {
                    out.push(tag::RESULT_ACCOUNT);
                    put_bool(out, facts.is_some());
                    if let Some(f) = facts {
                        put_blob(out, f.name.as_bytes());
                        put_blob(out, f.room.as_bytes());
                        put_strings(out, &f.inventory);
                    }
                }
                AccountResult::Refused {
                    code,
                    retry_after_s,
                    name,
                } => {
                    out.push(tag::RESULT_REFUSED);
                    put_blob(out, code.as_bytes());
                    put_varint(out, *retry_after_s);
                    put_blob(out, name.as_bytes());
                }
            }
        }
        PeerMsg::SavePlayer {
            key,
            room,
            inventory,
        } => {
            out.push(tag::SAVE_PLAYER);
            put_blob(out, key.as_bytes());
            put_blob(out, room.as_bytes());
            put_strings(out, inventory);
        }
        PeerMsg::Tell {
            from,
            from_name,
            id,
            to,
            text,
            posted_ms,
            ticket,
        } => {
            out.push(tag::TELL);
            put_sid(out, *from);
            put_blob(out, from_name.as_bytes());
            put_opt_id(out, *id);
            put_blob(out, to.as_bytes());
            put_blob(out, text.as_bytes());
            put_varint(out, *posted_ms);
            put_varint(out, u64::from(*ticket));
        }
    }
}

fn bad_tag(what: &'static str, got: u8) -> WireError {
    WireError::BadTag { what, got }
}

/// The bytes of an envelope not yet read. Every read checks what is left
/// first, so no input makes it index out of bounds or allocate more than
/// the input holds.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self, what: &'static str) -> Result<u8, WireError> {
        let Some((&b, rest)) = self.rest.split_first() else {
            return Err(WireError::Truncated { what });
        };
        self.rest = rest;
        Ok(b)
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, WireError> {
        let mut n = 0u64;
        for i in 0..10 {
            let b = self.byte(what)?;
            // The tenth byte holds bit 63 alone; anything more overflows.
            if i == 9 && b > 1 {
                return Err(WireError::BadVarint { what });
            }
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(WireError::BadVarint { what })
    }

    /// An index below `limit` (a host, a shard).
    fn index(&mut self, limit: usize, what: &'static str) -> Result<u16, WireError> {
        let n = self.varint(what)?;
        if n >= limit as u64 {
            return Err(WireError::OutOfRange {
                what,
                got: n,
                max: limit as u64 - 1,
            });
        }
        u16::try_from(n).map_err(|_| WireError::OutOfRange {
            what,
            got: n,
            max: u64::from(u16::MAX),
        })
    }

    /// A count of things at most `max`, each taking at least `bytes_min` of
    /// the bytes left: a count those bytes cannot hold is refused before
    /// anything is allocated for it.
    fn count(
        &mut self,
        max: usize,
        bytes_min: usize,
        what: &'static str,
    ) -> Result<usize, WireError> {
        let n = self.varint(what)?;
        if n > max as u64 {
            return Err(WireError::TooLarge {
                what,
                got: n,
                max: max as u64,
            });
        }
        if n > (self.rest.len() / bytes_min) as u64 {
            return Err(WireError::Truncated { what });
        }
        Ok(n as usize)
    }

    fn ticket(&mut self) -> Result<u32, WireError> {
        let n = self.varint("ticket")?;
        u32::try_from(n).map_err(|_| WireError::OutOfRange {
            what: "ticket",
            got: n,
            max: u64::from(u32::MAX),
        })
    }

    fn room(&mut self) -> Result<RoomIdx, WireError> {
        let n = self.varint("room")?;
        RoomIdx::try_from(n).map_err(|_| WireError::OutOfRange {
            what: "room",
            got: n,
            max: u64::from(RoomIdx::MAX),
        })
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, WireError> {
        match self.byte(what)? {
            0 => Ok(false),
            1 => Ok(true),
            got => Err(WireError::BadTag { what, got }),
        }
    }

    /// A length-prefixed run of bytes, borrowed from the input.
    fn blob(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.varint(what)?;
        if len > self.rest.len() as u64 {
            return Err(WireError::Truncated { what });
        }
        let (blob, rest) = self.rest.split_at(len as usize);
        self.rest = rest;
        Ok(blob)
    }

    fn bytes(&mut self, what: &'static str) -> Result<Bytes, WireError> {
        self.blob(what).map(Bytes::copy_from_slice)
    }

    fn str(&mut self, what: &'static str) -> Result<&'a str, WireError> {
        let blob = self.blob(what)?;
        std::str::from_utf8(blob).map_err(|_| WireError::BadUtf8 { what })
    }

    fn text(&mut self, what: &'static str) -> Result<Box<str>, WireError> {
        self.str(what).map(Box::from)
    }

    fn sid(&mut self, what: &'static str) -> Result<SessionId, WireError> {
        if self.rest.len() < 8 {
            return Err(WireError::Truncated { what });
        }
        let (bits, rest) = self.rest.split_at(8);
        self.rest = rest;
        let mut word = [0u8; 8];
        word.copy_from_slice(bits);
        // Every 64-bit pattern is some host, shard, slot and generation.
        Ok(SessionId::from_bits(u64::from_le_bytes(word)))
    }

    fn opt_sid(&mut self, what: &'static str) -> Result<Option<SessionId>, WireError> {
        if self.bool(what)? {
            self.sid(what).map(Some)
        } else {
            Ok(None)
        }
    }

    fn opt_id(&mut self) -> Result<Option<MsgId>, WireError> {
        const WHAT: &str = "message id";
        if !self.bool(WHAT)? {
            return Ok(None);
        }
        let text = self.str(WHAT)?;
        MsgId::from_json_text(text.as_bytes())
            .map(Some)
            .ok_or(WireError::TooLarge {
                what: "message id bytes",
                got: text.len() as u64,
                max: MsgId::BYTES_MAX as u64,
            })
    }

    fn dir(&mut self) -> Result<Dir, WireError> {
        Ok(match self.byte("direction")? {
            tag::NORTH => Dir::North,
            tag::SOUTH => Dir::South,
            tag::EAST => Dir::East,
            tag::WEST => Dir::West,
            tag::UP => Dir::Up,
            tag::DOWN => Dir::Down,
            got => return Err(bad_tag("direction", got)),
        })
    }

    fn dest(&mut self) -> Result<Dest, WireError> {
        match self.byte("destination")? {
            tag::DEST_SHARD => Ok(Dest::Shard(
                self.index(SHARDS_PER_HOST_MAX, "destination shard")?,
            )),
            tag::DEST_ALL_SHARDS => Ok(Dest::AllShards),
            got => Err(bad_tag("destination", got)),
        }
    }

    fn strings(&mut self, what: &'static str) -> Result<Vec<String>, WireError> {
        let n = self.count(usize::MAX, 1, what)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.str(what)?.to_owned());
        }
        Ok(items)
    }

    fn body(&mut self) -> Result<Body, WireError> {
        let sid = self.sid("body session")?;
        let name = self.text("body name")?;
        // Each item takes at least its length byte.
        let items = self.count(usize::MAX, 1, "inventory count")?;
        let mut inventory = Vec::with_capacity(items);
        for _ in 0..items {
            inventory.push(self.str("inventory item")?.to_owned());
        }
        let account = self.bool("body account")?;
        Ok(Body {
            sid,
            name,
            inventory,
            account,
        })
    }

    fn arrival(&mut self) -> Result<Arrival, WireError> {
        match self.byte("arrival")? {
            tag::WALK => Ok(Arrival::Walk(self.dir()?)),
            tag::TELEPORT => Ok(Arrival::Teleport),
            tag::LOGIN => Ok(Arrival::Login),
            got => Err(bad_tag("arrival", got)),
        }
    }

    fn cmd(&mut self) -> Result<BodyCommand, WireError> {
        const WHAT: &str = "command argument";
        Ok(match self.byte("command")? {
            tag::LOOK => BodyCommand::Look,
            tag::GO => BodyCommand::Go(self.dir()?),
            tag::SAY => BodyCommand::Say(self.text(WHAT)?),
            tag::EMOTE => BodyCommand::Emote(self.text(WHAT)?),
            tag::INVENTORY => BodyCommand::Inventory,
            tag::GET => BodyCommand::Get(self.text(WHAT)?),
            tag::DROP => BodyCommand::Drop(self.text(WHAT)?),
            tag::QUIT => BodyCommand::Quit,
            tag::GOTO => BodyCommand::Goto(self.text(WHAT)?),
            got => return Err(bad_tag("command", got)),
        })
    }

    fn owner(&mut self) -> Result<ShardAddr, WireError> {
        let host = self.index(HOSTS_MAX, "owner host")?;
        let shard = self.index(SHARDS_PER_HOST_MAX, "owner shard")?;
        Ok(ShardAddr::new(host, shard))
    }

    fn msg(&mut self) -> Result<PeerMsg, WireError> {
        Ok(match self.byte("message")? {
            tag::ARRIVE => PeerMsg::Arrive {
                body: self.body()?,
                room: self.room()?,
                how: self.arrival()?,
                id: self.opt_id()?,
                ack_to: if self.bool("acknowledged")? {
                    Some(self.owner()?)
                } else {
                    None
                },
                ticket: self.ticket()?,
            },
            tag::ARRIVE_ACK => PeerMsg::ArriveAck {
                sid: self.sid("session")?,
                ok: self.bool("ok")?,
            },
            tag::CMD => PeerMsg::Cmd {
                sid: self.sid("session")?,
                id: self.opt_id()?,
                cmd: self.cmd()?,
                posted_ms: self.varint("posted time")?,
                ticket: self.ticket()?,
            },
            tag::DEPART => PeerMsg::Depart {
                sid: self.sid("session")?,
                notify: self.opt_sid("notify")?,
            },
            tag::ENTERED => PeerMsg::Entered {
                sid: self.sid("session")?,
                room: self.room()?,
                owner: self.owner()?,
            },
            tag::LEFT => PeerMsg::Left {
                sid: self.sid("session")?,
                room: self.room()?,
            },
            tag::FRAME => PeerMsg::Frame {
                sid: self.sid("session")?,
                frame: self.bytes("frame")?,
                done: self.bool("done")?,
                ticket: self.ticket()?,
            },
            tag::WELCOMED => PeerMsg::Welcomed {
                sid: self.sid("session")?,
                room_json: self.bytes("room json")?,
            },
            tag::ROOM_EVENT => PeerMsg::RoomEvent {
                room: self.room()?,
                frame: self.bytes("frame")?,
                except: self.opt_sid("except")?,
            },
            tag::BROADCAST => PeerMsg::Broadcast {
                frame: self.bytes("frame")?,
                except: self.opt_sid("except")?,
            },
            tag::QUIT_DONE => PeerMsg::QuitDone {
                sid: self.sid("session")?,
                frame: self.bytes("frame")?,
            },
            tag::CLAIM => PeerMsg::Claim {
                key: self.text("name key")?,
                sid: self.sid("session")?,
                takeover: self.bool("takeover")?,
                name: self.text("name")?,
            },
            tag::SPELL => PeerMsg::Spell {
                key: self.text("name key")?,
                sid: self.sid("session")?,
                name: self.text("name")?,
            },
            tag::RELEASE => PeerMsg::Release {
                key: self.text("name key")?,
                sid: self.sid("session")?,
            },
            tag::CLAIMED => PeerMsg::Claimed {
                sid: self.sid("session")?,
                ok: self.bool("ok")?,
            },
            tag::TAKEN_OVER => PeerMsg::TakenOver {
                old: self.sid("old session")?,
                new: self.sid("new session")?,
            },
            tag::RESUME_LOOKUP => PeerMsg::ResumeLookup {
                key: self.text("name key")?,
                asker: self.sid("asking session")?,
            },
            tag::RESUME_TARGET => PeerMsg::ResumeTarget {
                asker: self.sid("asking session")?,
                holder: self.opt_sid("holder")?,
            },
            tag::LINK_DEAD => PeerMsg::LinkDead {
                sid: self.sid("session")?,
                dead: self.bool("dead")?,
            },
            tag::ACCOUNT_ASK => PeerMsg::AccountAsk {
                ask: self.varint("ask")?,
                from: self.owner()?,
                key: self.text("name key")?,
                op: match self.byte("account op")? {
                    tag::OP_PASSWORD => AccountOp::Password {
                        name: self.text("name")?,
                        password: self.text("password")?,
                        ip: self.text("address")?,
                    },
                    tag::OP_REGISTER => AccountOp::Register {
                        name: self.text("name")?,
                        password: self.text("password")?,
                        ip: self.text("address")?,
                        start: self.text("start room")?,
                    },
                    tag::OP_LOAD => AccountOp::Load,
                    got => return Err(bad_tag("account op", got)),
                },
            },
            tag::ACCOUNT_REPLY => PeerMsg::AccountReply {
                ask: self.varint("ask")?,
                result: match self.byte("account result")? {
                    tag::RESULT_ACCOUNT => AccountResult::Account(if self.bool("account")? {
                        Some(AccountFacts {
                            name: self.text("name")?,
                            room: self.text("room")?,
                            inventory: self.strings("inventory")?,
                        })
                    } else {
                        None
                    }),
                    tag::RESULT_REFUSED => AccountResult::Refused {
                        code: self.text("code")?,
                        retry_after_s: self.varint("retry after")?,
                        name: self.text("name")?,
                    },
                    got => return Err(bad_tag("account result", got)),
                },
            },
            tag::SAVE_PLAYER => PeerMsg::SavePlayer {
                key: self.text("name key")?,
                room: self.text("room")?,
                inventory: self.strings("inventory")?,
            },
            tag::TELL => PeerMsg::Tell {
                from: self.sid("session")?,
                from_name: self.text("from name")?,
                id: self.opt_id()?,
                to: self.text("name")?,
                text: self.text("tell text")?,
                posted_ms: self.varint("posted time")?,
                ticket: self.ticket()?,
            },
            got => return Err(bad_tag("message", got)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(host: u16, shard: u16, slot: u32) -> SessionId {
        SessionId::new(ShardAddr::new(host, shard), slot, slot.wrapping_mul(7))
    }

    fn id(json: &str) -> Option<MsgId> {
        MsgId::from_json_text(json.as_bytes())
    }

    /// Which variant a message is, by an exhaustive match: a new variant
    /// fails to compile here until `one_of_each` covers it.
    fn variant(msg: &PeerMsg) -> usize {
        match msg {
            PeerMsg::Arrive { .. } => 0,
            PeerMsg::ArriveAck { .. } => 1,
            PeerMsg::Cmd { .. } => 2,
            PeerMsg::Depart { .. } => 3,
            PeerMsg::Entered { .. } => 4,
            PeerMsg::Left { .. } => 5,
            PeerMsg::Frame { .. } => 6,
            PeerMsg::Welcomed { .. } => 7,
            PeerMsg::RoomEvent { .. } => 8,
            PeerMsg::Broadcast { .. } => 9,
            PeerMsg::QuitDone { .. } => 10,
            PeerMsg::Claim { .. } => 11,
            PeerMsg::Release { .. } => 12,
            PeerMsg::Claimed { .. } => 13,
            PeerMsg::TakenOver { .. } => 14,
            PeerMsg::Tell { .. } => 15,
            PeerMsg::ResumeLookup { .. } => 16,
            PeerMsg::ResumeTarget { .. } => 17,
            PeerMsg::LinkDead { .. } => 18,
            PeerMsg::AccountAsk { .. } => 19,
            PeerMsg::AccountReply { .. } => 20,
            PeerMsg::SavePlayer { .. } => 21,
            PeerMsg::Spell { .. } => 22,
        }
    }
    const VARIANTS: usize = 23;

    /// Every variant, every command, every way of arriving and every
    /// direction, with the extremes of each field.
    fn one_of_each() -> Vec<PeerMsg> {
        let frame = Bytes::from_static(br#"{"type":"event","text":"hi \"there\""}"#);
        let body = Body {
            sid: sid(255, 255, 0x00FF_FFFF),
            name: "Ælfrida".into(),
            inventory: vec!["a lamp".into(), String::new(), "ключ".into()],
            account: true,
        };
        let mut msgs = vec![
            PeerMsg::Arrive {
                body: body.clone(),
                room: RoomIdx::MAX,
                how: Arrival::Teleport,
                id: id(r#""a \"quoted\" id""#),
                ack_to: Some(ShardAddr::new(255, 255)),
                ticket: u32::MAX,
            },
            PeerMsg::Arrive {
                body: Body {
                    inventory: Vec::new(),
                    account: false,
                    ..body
                },
                room: 0,
                how: Arrival::Login,
                id: None,
                ack_to: None,
                ticket: 0,
            },
            PeerMsg::ArriveAck {
                sid: sid(1, 2, 3),
                ok: true,
            },
            PeerMsg::Depart {
                sid: sid(0, 0, 0),
                notify: Some(sid(3, 1, 9)),
            },
            PeerMsg::Depart {
                sid: sid(0, 0, 1),
                notify: None,
            },
            PeerMsg::Entered {
                sid: sid(2, 3, 4),
                room: 70_000,
                owner: ShardAddr::new(255, 255),
            },
            PeerMsg::Left {
                sid: sid(2, 3, 4),
                room: 5,
            },
            PeerMsg::Frame {
                sid: sid(1, 1, 1),
                frame: frame.clone(),
                done: true,
                ticket: 7,
            },
            PeerMsg::Frame {
                sid: sid(1, 1, 1),
                frame: frame.clone(),
                done: false,
                ticket: 0,
            },
            PeerMsg::Welcomed {
                sid: sid(1, 1, 2),
                room_json: Bytes::from(vec![b'x'; 100_000]),
            },
            PeerMsg::RoomEvent {
                room: 12,
                frame: frame.clone(),
                except: Some(sid(4, 0, 1)),
            },
            PeerMsg::Broadcast {
                frame: Bytes::new(),
                except: None,
            },
            PeerMsg::QuitDone {
                sid: sid(1, 0, 0),
                frame,
            },
            PeerMsg::Claim {
                key: "alice".into(),
                sid: sid(1, 0, 5),
                takeover: true,
                name: "Alice".into(),
            },
            PeerMsg::Spell {
                key: "ælfrida".into(),
                sid: sid(255, 255, 0x00FF_FFFF),
                name: "".into(),
            },
            PeerMsg::Release {
                key: "".into(),
                sid: sid(1, 0, 5),
            },
            PeerMsg::Claimed {
                sid: sid(1, 0, 5),
                ok: false,
            },
            PeerMsg::TakenOver {
                old: sid(1, 0, 5),
                new: sid(2, 0, 6),
            },
            PeerMsg::ResumeLookup {
                key: "alice".into(),
                asker: sid(1, 1, 9),
            },
            PeerMsg::ResumeTarget {
                asker: sid(1, 1, 9),
                holder: Some(sid(0, 1, 2)),
            },
            PeerMsg::ResumeTarget {
                asker: sid(1, 1, 9),
                holder: None,
            },
            PeerMsg::LinkDead {
                sid: sid(2, 0, 4),
                dead: true,
            },
            PeerMsg::AccountAsk {
                ask: u64::MAX,
                from: ShardAddr::new(3, 1),
                key: "alice".into(),
                op: AccountOp::Password {
                    name: "Alice".into(),
                    password: "pässword \"quoted\"".into(),
                    ip: "2001:db8::1".into(),
                },
            },
            PeerMsg::AccountAsk {
                ask: 0,
                from: ShardAddr::new(0, 0),
                key: "bob".into(),
                op: AccountOp::Register {
                    name: "Bob".into(),
                    password: "hunter22".into(),
                    ip: "127.0.0.1".into(),
                    start: "town:square".into(),
                },
            },
            PeerMsg::AccountAsk {
                ask: 7,
                from: ShardAddr::new(1, 0),
                key: "cat".into(),
                op: AccountOp::Load,
            },
            PeerMsg::AccountReply {
                ask: 7,
                result: AccountResult::Account(Some(AccountFacts {
                    name: "Cat".into(),
                    room: "caves:mouth".into(),
                    inventory: vec!["a lamp".into(), String::new()],
                })),
            },
            PeerMsg::AccountReply {
                ask: 8,
                result: AccountResult::Account(None),
            },
            PeerMsg::AccountReply {
                ask: 9,
                result: AccountResult::Refused {
                    code: "rate_limited".into(),
                    retry_after_s: 60,
                    name: "".into(),
                },
            },
            PeerMsg::SavePlayer {
                key: "cat".into(),
                room: "town:square".into(),
                inventory: vec!["coin".into()],
            },
            PeerMsg::Tell {
                from: sid(3, 3, 3),
                from_name: "bob".into(),
                id: id("12345678901234567890"),
                to: "Alice".into(),
                text: "meet me at the well 🌊".into(),
                posted_ms: 1_700_000_000_123,
                ticket: u32::MAX,
            },
        ];
        let text = || Box::<str>::from("the red book");
        let mut commands = vec![
            BodyCommand::Look,
            BodyCommand::Say(text()),
            BodyCommand::Emote(text()),
            BodyCommand::Inventory,
            BodyCommand::Get(text()),
            BodyCommand::Drop(text()),
            BodyCommand::Quit,
            BodyCommand::Goto("town:square".into()),
        ];
        for dir in Dir::ALL {
            commands.push(BodyCommand::Go(dir));
            msgs.push(PeerMsg::Arrive {
                body: Body {
                    sid: sid(0, 1, 2),
                    name: "w".into(),
                    inventory: Vec::new(),
                    account: false,
                },
                room: 1,
                how: Arrival::Walk(dir),
                id: id("1.5"),
                ack_to: Some(ShardAddr::new(1, 0)),
                ticket: dir as u32,
            });
        }
        for (n, cmd) in commands.into_iter().enumerate() {
            msgs.push(PeerMsg::Cmd {
                sid: sid(1, 2, n as u32),
                id: if n % 2 == 0 { id(&n.to_string()) } else { None },
                cmd,
                posted_ms: if n % 2 == 0 { u64::MAX } else { n as u64 },
                ticket: n as u32,
            });
        }
        msgs
    }

    fn sample() -> Envelope {
        let messages = one_of_each()
            .into_iter()
            .enumerate()
            .map(|(n, msg)| Addressed {
                to: match n % 3 {
                    0 => Dest::AllShards,
                    1 => Dest::Shard(0),
                    _ => Dest::Shard(255),
                },
                msg,
            })
            .collect();
        Envelope {
            source_host: 255,
            boot_epoch: u64::MAX,
            dest_epoch: 3,
            seq: 1 << 40,
            sent_ms: u64::MAX,
            messages,
        }
    }

    fn encoded(env: &Envelope) -> Vec<u8> {
        let mut out = Vec::new();
        encode(env, &mut out);
        out
    }

    /// A small envelope, so that the exhaustive tests stay quick.
    fn small_encoding() -> Vec<u8> {
        let mut env = sample();
        env.messages.retain(|a| match &a.msg {
            PeerMsg::Welcomed { room_json, .. } => room_json.len() < 1000,
            _ => true,
        });
        env.messages.push(Addressed {
            to: Dest::Shard(1),
            msg: PeerMsg::Welcomed {
                sid: sid(1, 1, 1),
                room_json: Bytes::from_static(b"{}"),
            },
        });
        encoded(&env)
    }

    /// A small xorshift: deterministic noise without a crate.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn every_variant_round_trips() {
        let env = sample();
        let mut seen = [false; VARIANTS];
        for a in &env.messages {
            seen[variant(&a.msg)] = true;
        }
        assert!(seen.iter().all(|&s| s), "a variant is missing: {seen:?}");

        let bytes = encoded(&env);
        assert_eq!(bytes[0], WIRE_VERSION);
        assert_eq!(decode(&bytes), Ok(env));
    }

    #[test]
    fn encode_appends_to_what_is_there() {
        let env = sample();
        let mut out = b"prefix".to_vec();
        encode(&env, &mut out);
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(decode(&out[6..]), Ok(env));
    }

    #[test]
    fn an_empty_envelope_round_trips() {
        let env = Envelope {
            source_host: 0,
            boot_epoch: 0,
            dest_epoch: 3,
            seq: 0,
            sent_ms: 0,
            messages: Vec::new(),
        };
        let bytes = encoded(&env);
        assert_eq!(bytes, [WIRE_VERSION, 0, 0, 3, 0, 0, 0]);
        assert_eq!(decode(&bytes), Ok(env));
    }

    #[test]
    fn a_frame_costs_little_more_than_its_bytes() {
        let frame = Bytes::from(vec![b'{'; 300]);
        let env = Envelope {
            source_host: 1,
            boot_epoch: 1_700_000_000_000,
            dest_epoch: 3,
            seq: 12_345,
            sent_ms: 1_700_000_000_000,
            messages: vec![Addressed {
                to: Dest::Shard(3),
                msg: PeerMsg::Frame {
                    sid: sid(0, 3, 17),
                    frame,
                    done: true,
                    ticket: 0,
                },
            }],
        };
        let header = encoded(&Envelope {
            messages: Vec::new(),
            ..env.clone()
        })
        .len();
        assert_eq!(
            header,
            1 + 1 + 6 + 1 + 2 + 6 + 1,
            "version, host, epoch, destination epoch, seq, sent time, count"
        );
        // Destination 2, tag 1, session 8, length 2, done 1, ticket 1.
        assert_eq!(encoded(&env).len(), header + 15 + 300);
    }

    #[test]
    fn the_smallest_message_takes_the_bytes_the_decoder_assumes() {
        let env = Envelope {
            source_host: 0,
            boot_epoch: 0,
            dest_epoch: 3,
            seq: 0,
            sent_ms: 0,
            messages: vec![Addressed {
                to: Dest::AllShards,
                msg: PeerMsg::Broadcast {
                    frame: Bytes::new(),
                    except: None,
                },
            }],
        };
        let header = encoded(&Envelope {
            messages: Vec::new(),
            ..env.clone()
        })
        .len();
        let bytes = encoded(&env);
        assert_eq!(bytes.len() - header, MESSAGE_BYTES_MIN);
        assert_eq!(decode(&bytes), Ok(env));
    }

    #[test]
    fn an_unknown_version_is_refused_and_both_versions_are_named() {
        let mut bytes = small_encoding();
        bytes[0] = 7;
        let err = decode(&bytes).unwrap_err();
        assert_eq!(
            err,
            WireError::UnknownVersion {
                got: 7,
                expected: WIRE_VERSION
            }
        );
        let message = err.to_string();
        assert!(message.contains("version 7"), "{message}");
        assert!(
            message.contains(&format!("version {WIRE_VERSION}")),
            "{message}"
        );
        assert!(message.contains("upgrade the hosts together"), "{message}");
    }

    #[test]
    fn every_strict_prefix_of_an_envelope_is_an_error() {
        let bytes = small_encoding();
        assert!(decode(&bytes).is_ok());
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "prefix of {len} bytes");
        }
    }

    #[test]
    fn random_bytes_decode_without_panicking() {
        let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
        let mut buf = Vec::new();
        for round in 0..5_000 {
            buf.clear();
            let len = (noise.next() % 300) as usize;
            buf.extend((0..len).map(|_| noise.next() as u8));
            // Most rounds carry the right version, to reach past it.
            if round % 4 != 0 && !buf.is_empty() {
                buf[0] = WIRE_VERSION;
            }
            let _ = decode(&buf);
        }
    }

    #[test]
    fn single_byte_corruptions_decode_without_panicking() {
        let bytes = small_encoding();
        let mut noise = Noise(0xD1B5_4A32_D192_ED03);
        let mut copy = bytes.clone();
        for _ in 0..5_000 {
            let at = (noise.next() % bytes.len() as u64) as usize;
            copy[at] = noise.next() as u8;
            let _ = decode(&copy);
            copy[at] = bytes[at];
        }
    }

    /// The bytes of an envelope with one `Frame` whose length field claims
    /// `len` bytes, followed by only a few.
    fn claiming_frame(len: u64) -> Vec<u8> {
        let mut bytes = vec![
            WIRE_VERSION,
            0,
            0,
            0,
            0,
            0,
            1,
            tag::DEST_ALL_SHARDS,
            tag::FRAME,
        ];
        put_sid(&mut bytes, sid(0, 0, 0));
        put_varint(&mut bytes, len);
        bytes.extend_from_slice(b"just a few bytes");
        bytes
    }

    #[test]
    fn a_length_claiming_gigabytes_is_refused_without_allocating_it() {
        for len in [4 << 30, u64::MAX, 17] {
            assert_eq!(
                decode(&claiming_frame(len)),
                Err(WireError::Truncated { what: "frame" }),
                "a frame claiming {len} bytes"
            );
        }
    }

    #[test]
    fn a_count_the_bytes_cannot_hold_is_refused_without_allocating_it() {
        let mut bytes = vec![WIRE_VERSION, 0, 0, 0, 0, 0];
        put_varint(&mut bytes, MESSAGES_PER_ENVELOPE_MAX as u64);
        bytes.extend_from_slice(&[tag::DEST_ALL_SHARDS, tag::BROADCAST, 0, 0]);
        assert_eq!(
            decode(&bytes),
            Err(WireError::Truncated {
                what: "message count"
            })
        );

        let mut bytes = vec![WIRE_VERSION, 0, 0, 0, 0, 0];
        put_varint(&mut bytes, u64::MAX);
        assert!(matches!(
            decode(&bytes),
            Err(WireError::TooLarge {
                what: "message count",
                ..
            })
        ));
    }

    #[test]
    fn an_envelope_past_its_bound_is_refused_before_it_is_read() {
        let mut bytes = vec![0u8; ENVELOPE_BYTES_MAX + 1];
        bytes[0] = WIRE_VERSION;
        assert_eq!(
            decode(&bytes),
            Err(WireError::TooLarge {
                what: "envelope bytes",
                got: ENVELOPE_BYTES_MAX as u64 + 1,
                max: ENVELOPE_BYTES_MAX as u64,
            })
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = small_encoding();
        bytes.push(0);
        assert_eq!(decode(&bytes), Err(WireError::Trailing { bytes: 1 }));
    }

    #[test]
    fn a_varint_past_64_bits_is_refused() {
        let mut bytes = vec![WIRE_VERSION, 0];
        bytes.extend_from_slice(&[0xFF; 9]);
        bytes.push(0x02);
        assert_eq!(
            decode(&bytes),
            Err(WireError::BadVarint { what: "boot epoch" })
        );
    }

    /// An envelope of one message to shard 0, from its encoded fields.
    fn one_message(msg: &[u8]) -> Vec<u8> {
        let mut bytes = vec![WIRE_VERSION, 0, 0, 0, 0, 0, 1, tag::DEST_SHARD, 0];
        bytes.extend_from_slice(msg);
        bytes
    }

    #[test]
    fn values_the_server_relies_on_are_checked() {
        let go = |dir: u8| {
            let mut m = vec![tag::CMD];
            put_sid(&mut m, sid(0, 0, 0));
            // No id, the command, posted at 0, no ticket.
            m.extend_from_slice(&[0, tag::GO, dir, 0, 0]);
            decode(&one_message(&m))
        };
        assert!(go(tag::DOWN).is_ok());
        assert_eq!(
            go(0),
            Err(WireError::BadTag {
                what: "direction",
                got: 0
            })
        );
        assert_eq!(
            go(7),
            Err(WireError::BadTag {
                what: "direction",
                got: 7
            })
        );

        let claim = |key: &[u8], takeover: u8, name: &[u8]| {
            let mut m = vec![tag::CLAIM];
            put_blob(&mut m, key);
            put_sid(&mut m, sid(0, 0, 0));
            m.push(takeover);
            put_blob(&mut m, name);
            decode(&one_message(&m))
        };
        assert!(claim(b"alice", 1, b"Alice").is_ok());
        assert_eq!(
            claim(b"al\xFFce", 1, b"Alice"),
            Err(WireError::BadUtf8 { what: "name key" })
        );
        assert_eq!(
            claim(b"alice", 1, b"Al\xFFce"),
            Err(WireError::BadUtf8 { what: "name" })
        );
        assert_eq!(
            claim(b"alice", 2, b"Alice"),
            Err(WireError::BadTag {
                what: "takeover",
                got: 2
            })
        );

        let look_with_id = |id: &[u8]| {
            let mut m = vec![tag::CMD];
            put_sid(&mut m, sid(0, 0, 0));
            m.push(1);
            put_blob(&mut m, id);
            m.extend_from_slice(&[tag::LOOK, 0, 0]);
            decode(&one_message(&m))
        };
        assert!(look_with_id(&[b'1'; MsgId::BYTES_MAX]).is_ok());
        assert_eq!(
            look_with_id(&[b'1'; MsgId::BYTES_MAX + 1]),
            Err(WireError::TooLarge {
                what: "message id bytes",
                got: MsgId::BYTES_MAX as u64 + 1,
                max: MsgId::BYTES_MAX as u64,
            })
        );
        assert_eq!(
            look_with_id(b"\"\xC3\""),
            Err(WireError::BadUtf8 { what: "message id" })
        );

        let mut to_shard_256 = one_message(&[]);
        to_shard_256.truncate(8);
        put_varint(&mut to_shard_256, SHARDS_PER_HOST_MAX as u64);
        to_shard_256.extend_from_slice(&[tag::BROADCAST, 0, 0]);
        assert!(matches!(
            decode(&to_shard_256),
            Err(WireError::OutOfRange {
                what: "destination shard",
                ..
            })
        ));

        let mut from_host_256 = vec![WIRE_VERSION];
        put_varint(&mut from_host_256, HOSTS_MAX as u64);
        from_host_256.extend_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(
            decode(&from_host_256),
            Err(WireError::OutOfRange {
                what: "source host",
                ..
            })
        ));
    }

    #[test]
    fn every_error_says_what_it_stopped_at() {
        let errors = [
            WireError::Truncated { what: "frame" },
            WireError::BadVarint { what: "sequence" },
            WireError::OutOfRange {
                what: "source host",
                got: 300,
                max: 255,
            },
            WireError::BadTag {
                what: "message",
                got: 0,
            },
            WireError::BadUtf8 { what: "name key" },
            WireError::TooLarge {
                what: "envelope bytes",
                got: 5,
                max: 4,
            },
        ];
        for err in errors {
            let message = err.to_string();
            let what = match &err {
                WireError::Truncated { what }
                | WireError::BadVarint { what }
                | WireError::OutOfRange { what, .. }
                | WireError::BadTag { what, .. }
                | WireError::BadUtf8 { what }
                | WireError::TooLarge { what, .. } => *what,
                _ => unreachable!(),
            };
            assert!(message.contains(what), "{message}");
        }
        assert_eq!(
            WireError::Trailing { bytes: 3 }.to_string(),
            "3 bytes follow the last message"
        );
    }
}
