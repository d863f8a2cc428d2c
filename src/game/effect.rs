//! What the game asks of the world around it. The game changes only the
//! state it owns (rooms and the bodies in them); everything else a command
//! causes — a frame for a session on another shard, a room event for the
//! shards with viewers, a body handed to another room's owner, a save — is
//! an `Effect` that the shard carries out (by message, or through the store).
//! So the game imports no shard, network or store, and is tested alone.

use bytes::Bytes;

use super::body::{Arrival, Body};
use crate::protocol::addr::{SessionId, ShardAddr};
use crate::protocol::MsgId;
use crate::world::RoomIdx;

/// One thing the shard is to do after the game handled a message.
#[derive(Debug)]
pub enum Effect {
    // --- to the connection shard of a session ---
    /// A reply or an event for one session. `done` completes its command.
    Frame {
        sid: SessionId,
        frame: Bytes,
        done: bool,
    },
    /// Logged in: the first frame (`welcome`) carries this room object.
    Welcomed { sid: SessionId, room_json: Bytes },
    /// The body of `sid` was removed for `quit`: reply, then close.
    QuitDone { sid: SessionId, frame: Bytes },
    /// The body of `sid` is now in `room`, owned by `owner`.
    Entered {
        sid: SessionId,
        room: RoomIdx,
        owner: ShardAddr,
    },
    /// The body of `sid` has left `room`: it stops seeing that room's events.
    Left { sid: SessionId, room: RoomIdx },
    /// `look`'s answer for a session whose connection is on another shard of
    /// this host: that shard replies, and keeps the view to answer its
    /// players' next `look`s in `room` itself (`Owner::look`). Completes the
    /// command.
    Looked {
        sid: SessionId,
        id: Option<MsgId>,
        room: RoomIdx,
        room_json: Bytes,
        look_text: Bytes,
    },
    /// Shard `to` keeps a copy of `room`'s view that is no longer true.
    ViewChanged { to: ShardAddr, room: RoomIdx },

    // --- to the shards with viewers of a room ---
    /// An event for every viewer of `room` on shard `to`, but `except`.
    RoomEvent {
        to: ShardAddr,
        room: RoomIdx,
        frame: Bytes,
        except: Option<SessionId>,
    },

    // --- to the owner of another room ---
    /// A body enters `room`, wherever its owner is (the shard looks it up).
    /// `from` is the room it left here: where it goes back if another host
    /// refuses it or is lost before taking it.
    Arrive {
        body: Body,
        room: RoomIdx,
        how: Arrival,
        id: Option<MsgId>,
        from: RoomIdx,
    },

    // --- to the store (write-behind) ---
    /// A registered player's room and inventory.
    SavePlayer {
        name_key: String,
        room_id: String,
        inventory: Vec<String>,
    },
    /// The items on a room's floor.
    SaveRoomItems { room_id: String, items: Vec<String> },
    /// Once every save made so far is committed, the session `new`, which
    /// took over an account, may go ahead (it then loads the newest state).
    ClaimedAfterFlush { new: SessionId },
}

/// The effects of one handled message, in order. The shard owns one and
/// reuses it, so the hot path does not allocate a list per command.
pub type Effects = Vec<Effect>;
