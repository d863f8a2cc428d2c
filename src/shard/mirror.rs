//! Views of rooms that another shard of this host owns, kept by the shard
//! of the connections whose players stand in them, so that `look` — the
//! commonest command, and read-only — is answered where it was read instead
//! of crossing to the owner and back (README, "Scaling with cores").
//!
//! The owner sends the view itself as `look`'s answer (`Msg::Looked`) and
//! notes, per room, which shards it sent it to. When the room changes
//! (players, items, link-dead marks) it tells exactly those shards
//! (`Msg::ViewChanged`) before anything else happens there, on the same
//! ordered channel that brought the view. So a shard holds a view only
//! between a `Looked` and the next `ViewChanged`: everything its players
//! could see change in that room arrives after the `ViewChanged`, and a
//! `look` answered here is never older than the events already delivered
//! here. Views are also dropped when no local player stands in the room.

use bytes::Bytes;
use std::collections::HashMap;

use super::{SessionId, Shard};
use crate::protocol::encode;
use crate::protocol::MsgId;
use crate::world::RoomIdx;

/// The kept views: the room object as JSON and the `look` text.
#[derive(Default)]
pub struct Mirrors {
    views: HashMap<RoomIdx, (Bytes, Bytes)>,
    /// `look`s answered from a kept view.
    pub hits: u64,
}

impl Mirrors {
    /// Drops `room`'s view, if one is kept.
    pub fn forget(&mut self, room: RoomIdx) {
        self.views.remove(&room);
    }

    fn keep(&mut self, room: RoomIdx, room_json: Bytes, look_text: Bytes) {
        self.views.insert(room, (room_json, look_text));
    }

    fn get(&self, room: RoomIdx) -> Option<&(Bytes, Bytes)> {
        self.views.get(&room)
    }

    /// Views kept now.
    pub fn len(&self) -> usize {
        self.views.len()
    }

    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }
}

impl Shard {
    /// `look`'s answer from the room's owner: reply, complete the command,
    /// and keep the view while local players stand in the room.
    pub(super) fn on_looked(
        &mut self,
        sid: SessionId,
        id: Option<MsgId>,
        room: RoomIdx,
        room_json: Bytes,
        look_text: Bytes,
    ) {
        let frame = encode::reply_room(id.as_ref(), &look_text, &room_json);
        if self
            .viewers
            .get(room as usize)
            .is_some_and(|v| !v.is_empty())
        {
            self.mirrors.keep(room, room_json, look_text);
        }
        self.deliver(sid, frame);
        self.complete(sid);
    }

    /// Answers `look` for the player of `sid`, standing in `room`, from a
    /// kept view; false when none is kept (the owner is asked).
    pub(super) fn look_here(&mut self, sid: SessionId, room: RoomIdx, id: Option<&MsgId>) -> bool {
        let Some((room_json, look_text)) = self.mirrors.get(room) else {
            return false;
        };
        let frame = encode::reply_room(id, look_text, room_json);
        self.mirrors.hits += 1;
        self.deliver(sid, frame);
        true
    }

    /// The session in `slot` no longer stands in `room` for this shard's
    /// fan-out; the room's view is dropped once nobody here does.
    pub(super) fn unview(&mut self, slot: u32, room: RoomIdx) {
        super::viewers::remove_viewer(&mut self.viewers, &mut self.sessions, slot, room);
        if self.viewers.get(room as usize).is_none_or(Vec::is_empty) {
            self.mirrors.forget(room);
        }
    }
}
