//! Who sees which room on this shard: per room, the slots of the local
//! sessions whose body is there, kept in step with the owners' `Entered` and
//! `Left` so that a room event reaches exactly its viewers.

use super::session::{Phase, Sessions};
use super::{SessionId, Shard};
use crate::protocol::addr::ShardAddr;
use crate::world::RoomIdx;

impl Shard {
    pub(super) fn on_entered(&mut self, sid: SessionId, room: RoomIdx, owner: ShardAddr) {
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        session.body_at = Some(owner);
        if session.phase == Phase::Zombie {
            return;
        }
        if let Some(old) = session.room.take() {
            // A Left from the old room's owner is still on its way; act now.
            self.unview(sid.slot(), old);
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

    pub(super) fn on_left(&mut self, sid: SessionId, room: RoomIdx) {
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        if session.room == Some(room) {
            session.room = None;
            self.unview(sid.slot(), room);
        }
    }
}

/// Removes `slot` from the viewers of `room` in O(1), fixing the moved entry.
pub(super) fn remove_viewer(
    viewers: &mut [Vec<u32>],
    sessions: &mut Sessions,
    slot: u32,
    room: RoomIdx,
) {
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
