//! The owner side of the game on one shard: the rooms it owns and the
//! bodies standing in them (DESIGN §1: a room's state and its players'
//! location and inventory change only on its owner). Bodies arrive and
//! depart here; `rooms.rs` keeps the rooms, `commands.rs` runs commands.

use std::collections::HashMap;
use std::sync::Arc;

use super::body::{Arrival, Body};
use super::command::BodyCommand;
use super::effect::{Effect, Effects};
use super::rooms::RoomState;
use crate::config::{GameConfig, Limits};
use crate::protocol::addr::{SessionId, ShardAddr};
use crate::protocol::names::name_key;
use crate::protocol::{encode, MsgId};
use crate::world::{Dir, RoomIdx, World};

/// Floor items that the store holds for rooms whose items changed since the
/// world files were written (DESIGN §6: the files supply only the rest).
pub type RoomItems = HashMap<RoomIdx, Vec<String>>;

/// Items one body may carry, and items one room floor may hold.
pub const INVENTORY_ITEMS_MAX: usize = 50;
pub const ROOM_ITEMS_MAX: usize = 200;

/// A body and the room it stands in.
pub(super) struct Placed {
    pub(super) body: Body,
    pub(super) room: RoomIdx,
    /// The player's connection dropped; their session waits for a resume.
    pub(super) link_dead: bool,
}

/// The rooms one shard owns and the bodies in them.
pub struct Owner {
    /// The shard this owner runs on: it owns the rooms it holds.
    pub(super) me: ShardAddr,
    pub(super) world: Arc<World>,
    pub(super) rooms: HashMap<RoomIdx, RoomState>,
    pub(super) bodies: HashMap<SessionId, Placed>,
    pub(super) limits: Limits,
    pub(super) game: GameConfig,
    pub(super) ambient_turn: usize,
    pub(super) saved_items: Arc<RoomItems>,
}

impl Owner {
    pub fn new(
        me: ShardAddr,
        world: Arc<World>,
        limits: Limits,
        game: GameConfig,
        saved_items: Arc<RoomItems>,
    ) -> Owner {
        Owner {
            me,
            world,
            rooms: HashMap::new(),
            bodies: HashMap::new(),
            limits,
            game,
            ambient_turn: 0,
            saved_items,
        }
    }

    /// The sessions of `host` whose bodies are here.
    pub fn bodies_of_host(&self, host: u16) -> Vec<SessionId> {
        self.bodies
            .keys()
            .filter(|sid| sid.host() == host)
            .copied()
            .collect()
    }

    /// Whether a body of `sid` is here.
    pub fn holds(&self, sid: SessionId) -> bool {
        self.bodies.contains_key(&sid)
    }

    /// Where `cmd` would take the body of `sid`, if it moves it: the room
    /// beyond an exit, or a `goto` target.
    pub fn destination(&self, sid: SessionId, cmd: &BodyCommand) -> Option<RoomIdx> {
        let room = self.bodies.get(&sid)?.room;
        match cmd {
            BodyCommand::Go(dir) => self.world.room(room).exit(*dir),
            BodyCommand::Goto(target) => self.goto_target(target).ok(),
            _ => None,
        }
    }

    /// Bodies held here.
    pub fn bodies(&self) -> usize {
        self.bodies.len()
    }

    /// Persists a registered player's room and inventory (write-behind).
    pub(super) fn save_body(&self, fx: &mut Effects, body: &Body, room: RoomIdx) {
        if body.account {
            fx.push(Effect::SavePlayer {
                name_key: name_key(&body.name),
                room_id: self.world.room(room).id.clone(),
                inventory: body.inventory.clone(),
            });
        }
    }

    /// Saves every registered body held here: the last word at shutdown.
    pub fn save_all(&self, fx: &mut Effects) {
        for placed in self.bodies.values() {
            self.save_body(fx, &placed.body, placed.room);
        }
    }

    /// A body enters one of this shard's rooms.
    pub fn arrive(
        &mut self,
        fx: &mut Effects,
        body: Body,
        room: RoomIdx,
        how: Arrival,
        id: Option<MsgId>,
    ) {
        let sid = body.sid;
        let presence_max = self.limits.presence_events_players_max;
        let at = self.viewer_key(sid);
        let state = self.room_state(room);
        state.players.push(sid);
        state.add_viewer(at);
        let crowded = state.players.len() > presence_max;
        self.room_changed(fx, room);
        fx.push(Effect::Entered {
            sid,
            room,
            owner: self.me,
        });
        if !crowded {
            let text = match how {
                Arrival::Walk(from) => format!("{} arrives from {}.", body.name, from_phrase(from)),
                Arrival::Teleport => format!("{} appears in a shimmer of air.", body.name),
                Arrival::Login => format!("{} has entered the world.", body.name),
            };
            let frame = encode::event("enter", &self.world.room(room).id, &body.name, &text);
            self.emit(fx, room, frame, Some(sid));
        }
        let link_dead = false;
        self.bodies.insert(
            sid,
            Placed {
                body,
                room,
                link_dead,
            },
        );
        let (room_json, look_text) = self.view(room);
        match how {
            Arrival::Login => fx.push(Effect::Welcomed { sid, room_json }),
            _ => fx.push(Effect::Frame {
                sid,
                frame: encode::reply_room(id.as_ref(), &look_text, &room_json),
                done: true,
            }),
        }
    }

    /// The player of `sid` lost their connection (`dead`) or came back: the
    /// room sees it, in `look` and with an event.
    pub fn link_dead(&mut self, fx: &mut Effects, sid: SessionId, dead: bool) {
        let Some(placed) = self.bodies.get_mut(&sid) else {
            return;
        };
        if placed.link_dead == dead {
            return;
        }
        placed.link_dead = dead;
        let room = placed.room;
        let text = if dead {
            format!("{} has lost their link.", placed.body.name)
        } else {
            format!("{} is back.", placed.body.name)
        };
        let frame = encode::event(
            "system",
            &self.world.room(room).id,
            &placed.body.name,
            &text,
        );
        self.room_changed(fx, room);
        self.emit(fx, room, frame, Some(sid));
    }

    /// Removes the body of an ended session. With `notify` (a takeover),
    /// the waiting session goes ahead once the body's state is committed, so
    /// that it loads the newest room and inventory.
    pub fn depart(&mut self, fx: &mut Effects, sid: SessionId, notify: Option<SessionId>) {
        if let Some(placed) = self.bodies.remove(&sid) {
            self.save_body(fx, &placed.body, placed.room);
            let text = format!("{} has left the world.", placed.body.name);
            self.leave_room(fx, &placed, &text);
        }
        if let Some(new) = notify {
            fx.push(Effect::ClaimedAfterFlush { new });
        }
    }
}

fn from_phrase(dir: Dir) -> &'static str {
    match dir {
        Dir::North => "the north",
        Dir::South => "the south",
        Dir::East => "the east",
        Dir::West => "the west",
        Dir::Up => "above",
        Dir::Down => "below",
    }
}
