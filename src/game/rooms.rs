//! The rooms an owner holds: their live state, how they look, and how an
//! event in one reaches its viewers (once per shard of this host with
//! viewers, once per other host with viewers, never once per viewer:
//! DESIGN §1, fan-out).

use bytes::Bytes;

use super::effect::{Effect, Effects};
use super::owner::{Owner, Placed};
use super::render;
use crate::protocol::addr::{SessionId, ShardAddr};
use crate::protocol::encode;
use crate::protocol::MsgId;
use crate::world::RoomIdx;

/// The live state of one owned room (created when first touched).
pub(super) struct RoomState {
    /// Bodies here, in order of arrival.
    pub(super) players: Vec<SessionId>,
    pub(super) items: Vec<String>,
    /// Per connection shard of this host, and per other host as a whole
    /// (`ShardAddr::EVERY_SHARD`): how many of this room's players have
    /// their connection there. Only places with viewers are listed, so an
    /// event costs one message per listed shard or host.
    viewers: Vec<(ShardAddr, u32)>,
    /// The room object as JSON and the `look` text, kept once they are
    /// asked for a second time since the room last changed (`view`).
    cache: RoomCache,
    /// Shards of this host (bit k: shard k) that were sent this view to
    /// answer `look` themselves (`Effect::Looked`) and have not been told
    /// since that it changed (`Owner::room_changed`).
    mirrors: u64,
}

/// A room's rendered view, cached only for rooms looked at more than once
/// between changes: a room a player walked into and stayed in (the idle
/// case: one render, for the arrival's reply) keeps no copy, while a room
/// looked at again and again (rtt) renders once per change.
#[derive(Default)]
enum RoomCache {
    /// Changed since it was last rendered (or never rendered).
    #[default]
    Stale,
    /// Rendered once since the last change, not kept.
    RenderedOnce,
    /// Rendered twice or more since the last change: the view, boxed so a
    /// room without one costs a pointer.
    Kept(Box<(Bytes, Bytes)>),
}

impl RoomState {
    /// The room's players, items or link-dead marks changed: its view must
    /// be rendered again.
    pub(super) fn changed(&mut self) {
        self.cache = RoomCache::Stale;
    }

    pub(super) fn add_viewer(&mut self, at: ShardAddr) {
        match self.viewers.iter_mut().find(|(a, _)| *a == at) {
            Some((_, count)) => *count += 1,
            None => self.viewers.push((at, 1)),
        }
    }

    /// One viewer on `at` is gone. A count never goes below zero: a removal
    /// without its addition is a bug in the owner's bookkeeping.
    pub(super) fn remove_viewer(&mut self, at: ShardAddr) {
        let i = self.viewers.iter().position(|(a, _)| *a == at);
        let Some(i) = i else {
            panic!("room viewers: no viewer on {at:?} to remove");
        };
        self.viewers[i].1 -= 1;
        if self.viewers[i].1 == 0 {
            self.viewers.swap_remove(i);
        }
    }

    /// Viewers counted on every shard: always the number of players here.
    pub(super) fn viewers_total(&self) -> usize {
        self.viewers.iter().map(|(_, n)| *n as usize).sum()
    }
}

impl Owner {
    /// Where `sid`'s events are counted: its connection's shard on this
    /// host, its host as a whole elsewhere (that host fans events out).
    pub(super) fn viewer_key(&self, sid: SessionId) -> ShardAddr {
        let at = sid.addr();
        if at.host == self.me.host {
            at
        } else {
            ShardAddr::new(at.host, ShardAddr::EVERY_SHARD)
        }
    }

    /// The items a room starts with: the store's, else the world file's.
    fn initial_items(&self, room: RoomIdx) -> &[String] {
        match self.saved_items.get(&room) {
            Some(items) => items,
            None => &self.world.room(room).items,
        }
    }

    pub(super) fn room_state(&mut self, room: RoomIdx) -> &mut RoomState {
        if !self.rooms.contains_key(&room) {
            let state = RoomState {
                players: Vec::new(),
                items: self.initial_items(room).to_vec(),
                viewers: Vec::new(),
                cache: RoomCache::Stale,
                mirrors: 0,
            };
            self.rooms.insert(room, state);
        }
        match self.rooms.get_mut(&room) {
            Some(state) => state,
            None => unreachable!("inserted above"),
        }
    }

    /// Persists the items on a room's floor (write-behind).
    pub(super) fn save_room_items(&self, fx: &mut Effects, room: RoomIdx) {
        if let Some(state) = self.rooms.get(&room) {
            fx.push(Effect::SaveRoomItems {
                room_id: self.world.room(room).id.clone(),
                items: state.items.clone(),
            });
        }
    }

    /// Takes a body out of its room: the others hear `text` (unless crowded),
    /// and its connection's shard stops showing it the room.
    pub(super) fn leave_room(&mut self, fx: &mut Effects, placed: &Placed, text: &str) {
        let sid = placed.body.sid;
        let room = placed.room;
        let presence_max = self.limits.presence_events_players_max;
        let state = self.room_state(room);
        if let Some(i) = state.players.iter().position(|p| *p == sid) {
            state.players.remove(i);
        }
        let at = self.viewer_key(sid);
        let state = self.room_state(room);
        state.remove_viewer(at);
        assert_eq!(
            state.viewers_total(),
            state.players.len(),
            "room viewers: counts out of step with the players"
        );
        let crowded = state.players.len() >= presence_max;
        self.room_changed(fx, room);
        // Left travels on the same channel as this room's events, before them.
        fx.push(Effect::Left { sid, room });
        if !crowded {
            let frame = encode::event("leave", &self.world.room(room).id, &placed.body.name, text);
            self.emit(fx, room, frame, None);
        }
    }

    /// `room`'s players, items or link-dead marks changed: its view is
    /// rendered again when next asked for, and every shard holding a copy
    /// to answer `look` with is told to drop it. They hear it on the channel
    /// that brought them the copy, so after it.
    pub(super) fn room_changed(&mut self, fx: &mut Effects, room: RoomIdx) {
        let host = self.me.host;
        let state = self.room_state(room);
        state.changed();
        let mut mirrors = std::mem::take(&mut state.mirrors);
        while mirrors != 0 {
            let shard = mirrors.trailing_zeros() as u16;
            mirrors &= mirrors - 1;
            fx.push(Effect::ViewChanged {
                to: ShardAddr::new(host, shard),
                room,
            });
        }
    }

    /// Answers `look` for `sid`: the view as a reply, or, when the session's
    /// connection is on another shard of this host, the view itself, which
    /// that shard keeps to answer its players' next `look`s in this room
    /// without asking (until `room_changed` tells it otherwise).
    pub(super) fn look(
        &mut self,
        fx: &mut Effects,
        sid: SessionId,
        room: RoomIdx,
        id: Option<MsgId>,
    ) {
        let (room_json, look_text) = self.view(room);
        let at = sid.addr();
        if at.host == self.me.host && at.shard != self.me.shard && at.shard < u64::BITS as u16 {
            self.room_state(room).mirrors |= 1 << at.shard;
            fx.push(Effect::Looked {
                sid,
                id,
                room,
                room_json,
                look_text,
            });
            return;
        }
        fx.push(Effect::Frame {
            sid,
            frame: encode::reply_room(id.as_ref(), &look_text, &room_json),
            done: true,
        });
    }

    /// Sends an event once to each shard with viewers of `room`, but not to
    /// a shard (or host) whose one viewer is `except`: there nobody would
    /// hear it. `except`, when given, is a player in `room` (the one the
    /// event is about), so it is counted among the viewers.
    pub(super) fn emit(
        &mut self,
        fx: &mut Effects,
        room: RoomIdx,
        frame: Bytes,
        except: Option<SessionId>,
    ) {
        let alone_at = except.map(|sid| self.viewer_key(sid));
        let Some(state) = self.rooms.get(&room) else {
            return;
        };
        debug_assert!(
            except.is_none_or(|sid| state.players.contains(&sid)),
            "emit: the excepted session is not in the room"
        );
        for &(to, count) in &state.viewers {
            if count == 1 && alone_at == Some(to) {
                continue;
            }
            fx.push(Effect::RoomEvent {
                to,
                room,
                frame: frame.clone(),
                except,
            });
        }
    }

    /// The room object and the `look` text (both JSON); kept until the room
    /// changes once it has been asked for twice (`RoomCache`).
    pub(super) fn view(&mut self, room: RoomIdx) -> (Bytes, Bytes) {
        let names_max = self.limits.names_listed_max;
        let shard = self.me.shard;
        let Some(state) = self.rooms.get_mut(&room) else {
            let def = self.world.room(room);
            let items = match self.saved_items.get(&room) {
                Some(items) => items,
                None => &def.items,
            };
            return render::room_view(def, &self.world, items, &[], &[], 0, shard);
        };
        if let RoomCache::Kept(view) = &state.cache {
            return (view.0.clone(), view.1.clone());
        }
        let shown: Vec<&Placed> = state
            .players
            .iter()
            .take(names_max)
            .filter_map(|sid| self.bodies.get(sid))
            .collect();
        let names: Vec<&str> = shown.iter().map(|p| &*p.body.name).collect();
        let link_dead: Vec<&str> = shown
            .iter()
            .filter(|p| p.link_dead)
            .map(|p| &*p.body.name)
            .collect();
        let total = state.players.len();
        let view = render::room_view(
            self.world.room(room),
            &self.world,
            &state.items,
            &names,
            &link_dead,
            total,
            shard,
        );
        state.cache = match state.cache {
            RoomCache::Stale => RoomCache::RenderedOnce,
            _ => RoomCache::Kept(Box::new(view.clone())),
        };
        view
    }

    /// One world tick: in each occupied room with NPCs, one NPC speaks.
    pub fn ambient_tick(&mut self, fx: &mut Effects) {
        self.ambient_turn = self.ambient_turn.wrapping_add(1);
        let turn = self.ambient_turn;
        let mut lines = Vec::new();
        for (&room, state) in &self.rooms {
            let npcs = &self.world.room(room).npcs;
            if state.players.is_empty() || npcs.is_empty() {
                continue;
            }
            let npc = &npcs[turn % npcs.len()];
            if npc.ambient.is_empty() {
                continue;
            }
            let line = &npc.ambient[(turn / npcs.len()) % npc.ambient.len()];
            lines.push((
                room,
                encode::event("ambient", &self.world.room(room).id, &npc.name, line),
            ));
        }
        for (room, frame) in lines {
            self.emit(fx, room, frame, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::command::BodyCommand;
    use crate::game::testing::{self, arrive_named, enter_named};

    fn owner_with_one_player() -> (Owner, RoomIdx) {
        let (mut owner, room) = testing::owner();
        enter_named(&mut owner, room, ShardAddr::new(0, 0), 1, "p1");
        (owner, room)
    }

    fn kept(owner: &Owner, room: RoomIdx) -> bool {
        matches!(owner.rooms[&room].cache, RoomCache::Kept(_))
    }

    #[test]
    fn a_room_view_is_kept_only_once_asked_for_twice_between_changes() {
        let (mut owner, room) = owner_with_one_player();
        // The arrival rendered the view once (for the reply): not kept, so
        // a room a player walked into and stayed in holds no copy.
        assert!(!kept(&owner, room));
        let first = owner.view(room);
        assert!(kept(&owner, room), "asked again: kept");
        let again = owner.view(room);
        assert_eq!(first, again);
        assert_eq!(first.0.as_ptr(), again.0.as_ptr(), "served from the cache");
        // A change makes it stale; the next view is rendered afresh and
        // not kept until it is asked for again.
        owner.rooms.get_mut(&room).expect("room").changed();
        let after = owner.view(room);
        assert_eq!(after, first, "nothing visible changed");
        assert!(!kept(&owner, room));
        owner.view(room);
        assert!(kept(&owner, room));
    }

    fn view_changes(fx: &Effects) -> Vec<ShardAddr> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::ViewChanged { to, .. } => Some(*to),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_look_from_another_shard_sends_the_view_and_its_next_change_tells_that_shard_once() {
        let (mut owner, room) = owner_with_one_player();
        let far_sid = enter_named(&mut owner, room, ShardAddr::new(0, 3), 7, "far");

        // From a session of this shard: a reply, as before.
        let mut fx = Effects::new();
        let near_sid = SessionId::new(ShardAddr::new(0, 0), 1, 1);
        owner.command(&mut fx, near_sid, None, &BodyCommand::Look);
        assert!(
            matches!(fx.as_slice(), [Effect::Frame { done: true, .. }]),
            "{fx:?}"
        );

        // From shard 3 of this host: the view itself, for shard 3 to keep.
        let mut fx = Effects::new();
        owner.command(&mut fx, far_sid, None, &BodyCommand::Look);
        let [Effect::Looked {
            sid,
            room: looked,
            room_json,
            ..
        }] = fx.as_slice()
        else {
            panic!("a Looked: {fx:?}");
        };
        assert_eq!((*sid, *looked), (far_sid, room));
        assert!(std::str::from_utf8(room_json)
            .expect("JSON")
            .contains("\"far\""));

        // The next change tells shard 3, before the event it causes.
        let mut fx = Effects::new();
        arrive_named(&mut owner, &mut fx, room, ShardAddr::new(0, 0), 2, "third");
        assert_eq!(view_changes(&fx), [ShardAddr::new(0, 3)]);
        let told = fx
            .iter()
            .position(|e| matches!(e, Effect::ViewChanged { .. }));
        let event = fx
            .iter()
            .position(|e| matches!(e, Effect::RoomEvent { .. }));
        assert!(told < event, "{fx:?}");

        // Told once: the change after that, with no look between, tells nobody.
        let mut fx = Effects::new();
        owner.link_dead(&mut fx, far_sid, true);
        assert!(view_changes(&fx).is_empty(), "{fx:?}");
    }

    #[test]
    fn a_look_from_another_host_is_answered_with_a_reply() {
        let (mut owner, room) = owner_with_one_player();
        let sid = enter_named(&mut owner, room, ShardAddr::new(1, 3), 7, "visitor");
        let mut fx = Effects::new();
        owner.command(&mut fx, sid, None, &BodyCommand::Look);
        assert!(
            matches!(fx.as_slice(), [Effect::Frame { done: true, .. }]),
            "{fx:?}"
        );
        let mut fx = Effects::new();
        arrive_named(&mut owner, &mut fx, room, ShardAddr::new(0, 0), 2, "third");
        assert!(view_changes(&fx).is_empty(), "{fx:?}");
    }
}
