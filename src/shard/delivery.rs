//! Delivery: frames queued for this shard's sessions — one session's
//! replies and errors, a room's events to its local viewers, a broadcast to
//! everyone here. A queue past its bound cuts its reader off (1013).

use bytes::Bytes;

use super::session::{Out, Phase};
use super::{SessionId, Shard};

use crate::protocol::{close, encode};
use crate::world::RoomIdx;

impl Shard {
    /// Queues a frame in the sequence for a session of this shard.
    pub(super) fn deliver(&mut self, sid: SessionId, frame: Bytes) {
        let bytes_max = self.config.limits.outbound_bytes_max;
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        if !session.push_seq(frame, bytes_max) {
            session.cut_off(close::SLOW_READER);
            self.counters.stats.outbound_drops += 1;
        }
    }

    pub(super) fn push(&mut self, slot: u32, out: Out, bytes_max: usize) {
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        if !session.push(out, bytes_max) {
            session.cut_off(close::SLOW_READER);
            self.counters.stats.outbound_drops += 1;
        }
    }

    /// Sends an `error` frame: in the sequence once logged in, plain before.
    pub fn send_error(&mut self, slot: u32, code: &str, message: &str) {
        self.send_error_for(slot, None, code, message);
    }

    /// An `error` refusing a `cmd` with `id` (echoed when there is one).
    pub fn send_error_for(
        &mut self,
        slot: u32,
        id: Option<&crate::protocol::MsgId>,
        code: &str,
        message: &str,
    ) {
        let bytes_max = self.config.limits.outbound_bytes_max;
        self.counters.stats.errors_sent += 1;
        let frame = encode::error_for(id, code, message);
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        let ok = if session.seq > 0 {
            session.push_seq(frame, bytes_max)
        } else {
            session.push(Out::Plain(frame), bytes_max)
        };
        if !ok {
            session.cut_off(close::SLOW_READER);
            self.counters.stats.outbound_drops += 1;
        }
    }

    pub(super) fn on_room_event(
        &mut self,
        room: RoomIdx,
        frame: bytes::Bytes,
        except: Option<SessionId>,
    ) {
        let Some(list) = self.viewers.get(room as usize) else {
            return;
        };
        let bytes_max = self.config.limits.outbound_bytes_max;
        let me = self.addr();
        let except_slot = except.filter(|s| s.addr() == me).map(SessionId::slot);
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

    pub(super) fn on_broadcast(&mut self, frame: bytes::Bytes, except: Option<SessionId>) {
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
}
