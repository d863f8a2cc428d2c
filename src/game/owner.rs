//! The rooms a shard owns and the bodies standing in them (DESIGN §1: a room's
//! state and its players' location and inventory change only on its owner).
//! Commands that touch a body run here; replies and events leave as messages.

use bytes::Bytes;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use super::command::{self, Command};
use super::render;
use crate::config::{GameConfig, Limits};
use crate::protocol::encode::{self, Body as FrameBody};
use crate::protocol::MsgId;
use crate::shard::msg::{Arrival, Body, Msg};
use crate::shard::router::Router;
use crate::shard::SessionId;
use crate::store::StoreHandle;
use crate::world::{find_item, Dir, RoomIdx, World};

/// Floor items that the store holds for rooms whose items changed since the
/// world files were written (DESIGN §6: the files supply only the rest).
pub type RoomItems = HashMap<RoomIdx, Vec<String>>;

/// Items one body may carry, and items one room floor may hold.
pub const INVENTORY_ITEMS_MAX: usize = 50;
pub const ROOM_ITEMS_MAX: usize = 200;

/// The live state of one owned room (created when first touched).
struct RoomState {
    /// Bodies here, in order of arrival.
    players: Vec<SessionId>,
    items: Vec<String>,
    /// Per shard: how many of this room's players have their connection there.
    viewers: Vec<u32>,
    /// The room object as JSON and the `look` text, rebuilt after a change.
    cache: Option<(Bytes, Bytes)>,
}

struct Placed {
    body: Body,
    room: RoomIdx,
}

/// Which shard owns each room: a stable hash of the room id.
pub struct Placement {
    owners: Vec<u16>,
}

impl Placement {
    pub fn new(world: &World, shards: u16) -> Placement {
        let owners = world
            .rooms
            .iter()
            .map(|room| (fnv1a(room.id.as_bytes()) % u64::from(shards.max(1))) as u16)
            .collect();
        Placement { owners }
    }

    pub fn owner(&self, room: RoomIdx) -> u16 {
        self.owners.get(room as usize).copied().unwrap_or(0)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The owner side of the game on one shard.
pub struct Owner {
    world: Arc<World>,
    placement: Arc<Placement>,
    rooms: HashMap<RoomIdx, RoomState>,
    bodies: HashMap<SessionId, Placed>,
    limits: Limits,
    game: GameConfig,
    ambient_turn: usize,
    /// The shard's one store handle (shared with its edge, so that the
    /// requests of one shard reach the store in the order they were made).
    store: Rc<StoreHandle>,
    saved_items: Arc<RoomItems>,
}

impl Owner {
    pub fn new(
        world: Arc<World>,
        placement: Arc<Placement>,
        limits: Limits,
        game: GameConfig,
        store: Rc<StoreHandle>,
        saved_items: Arc<RoomItems>,
    ) -> Owner {
        Owner {
            world,
            placement,
            rooms: HashMap::new(),
            bodies: HashMap::new(),
            limits,
            game,
            ambient_turn: 0,
            store,
            saved_items,
        }
    }

    /// The items a room starts with: the store's, else the world file's.
    fn initial_items(&self, room: RoomIdx) -> &[String] {
        match self.saved_items.get(&room) {
            Some(items) => items,
            None => &self.world.room(room).items,
        }
    }

    /// Persists a registered player's room and inventory (write-behind).
    fn save_body(&self, body: &Body, room: RoomIdx) {
        if body.account {
            let key = crate::auth::names::name_key(&body.name);
            self.store
                .save_player(&key, &self.world.room(room).id, &body.inventory);
        }
    }

    /// Persists the items on a room's floor (write-behind).
    fn save_room_items(&self, room: RoomIdx) {
        if let Some(state) = self.rooms.get(&room) {
            self.store
                .save_room_items(&self.world.room(room).id, &state.items);
        }
    }

    /// Saves every registered body held here: the last word at shutdown.
    pub fn save_all(&self) {
        for placed in self.bodies.values() {
            self.save_body(&placed.body, placed.room);
        }
    }

    pub fn bodies(&self) -> usize {
        self.bodies.len()
    }

    fn room_state(&mut self, room: RoomIdx, shards: u16) -> &mut RoomState {
        if !self.rooms.contains_key(&room) {
            let state = RoomState {
                players: Vec::new(),
                items: self.initial_items(room).to_vec(),
                viewers: vec![0; shards as usize],
                cache: None,
            };
            self.rooms.insert(room, state);
        }
        match self.rooms.get_mut(&room) {
            Some(state) => state,
            None => unreachable!("inserted above"),
        }
    }

    /// A body enters one of this shard's rooms.
    pub fn arrive(
        &mut self,
        r: &mut Router,
        body: Body,
        room: RoomIdx,
        how: Arrival,
        id: Option<MsgId>,
    ) {
        let sid = body.sid;
        let presence_max = self.limits.presence_events_players_max;
        let state = self.room_state(room, r.shards());
        state.players.push(sid);
        if let Some(count) = state.viewers.get_mut(sid.shard() as usize) {
            *count += 1;
        }
        state.cache = None;
        let crowded = state.players.len() > presence_max;
        r.post(
            sid.shard(),
            Msg::Entered {
                sid,
                room,
                owner: r.me,
            },
        );
        if !crowded {
            let text = match how {
                Arrival::Walk(from) => format!("{} arrives from {}.", body.name, from_phrase(from)),
                Arrival::Teleport => format!("{} appears in a shimmer of air.", body.name),
                Arrival::Login => format!("{} has entered the world.", body.name),
            };
            let frame = encode::event("enter", &self.world.room(room).id, &body.name, &text);
            self.emit(r, room, frame, Some(sid));
        }
        self.bodies.insert(sid, Placed { body, room });
        let (room_json, look_text) = self.view(room);
        match how {
            Arrival::Login => r.post(sid.shard(), Msg::Welcomed { sid, room_json }),
            _ => {
                let mut reply =
                    reply_body(id.as_ref(), true, 64 + room_json.len() + look_text.len());
                reply.raw("text", &look_text).raw("room", &room_json);
                r.post(sid.shard(), done(sid, reply.finish()));
            }
        }
    }

    /// Removes the body of an ended session. With `notify` (a takeover),
    /// the waiting session goes ahead once the body's state is committed, so
    /// that it loads the newest room and inventory.
    pub fn depart(&mut self, r: &mut Router, sid: SessionId, notify: Option<SessionId>) {
        if let Some(placed) = self.bodies.remove(&sid) {
            self.save_body(&placed.body, placed.room);
            let text = format!("{} has left the world.", placed.body.name);
            self.leave_room(r, &placed, &text);
        }
        let Some(new) = notify else {
            return;
        };
        let Some(mailbox) = r.mailbox(new.shard()) else {
            return;
        };
        self.store.flush(Box::new(move |result| {
            if let Err(e) = result {
                tracing::error!(error = %e, "store: flush before a takeover failed");
            }
            mailbox.send(Msg::Claimed { sid: new, ok: true });
        }));
    }

    /// Runs one command for a body held here.
    pub fn command(&mut self, r: &mut Router, sid: SessionId, id: Option<MsgId>, line: &str) {
        let Some(room) = self.bodies.get(&sid).map(|p| p.room) else {
            // A command for a body that is not here: the session's shard
            // routes by the body's last known place, so this means it is gone.
            let frame = fail(
                id.as_ref(),
                "unreachable",
                "You are nowhere; try logging in again.",
            );
            r.post(sid.shard(), done(sid, frame));
            return;
        };
        let frame = match command::parse(line) {
            Err(e) => fail(id.as_ref(), e.code(), &e.message()),
            Ok(Command::Look) => {
                let (room_json, look_text) = self.view(room);
                let mut reply =
                    reply_body(id.as_ref(), true, 64 + room_json.len() + look_text.len());
                reply.raw("text", &look_text).raw("room", &room_json);
                reply.finish()
            }
            Ok(Command::Go(dir)) => match self.world.room(room).exit(dir) {
                Some(dest) => {
                    return self.move_body(
                        r,
                        sid,
                        dest,
                        Arrival::Walk(dir.opposite()),
                        id,
                        &format!("leaves {}.", dir.name()),
                    )
                }
                None => fail(
                    id.as_ref(),
                    "no_exit",
                    &format!("You cannot go {} from here.", dir.name()),
                ),
            },
            Ok(Command::Goto(target)) => {
                if !self.game.goto_everyone {
                    fail(
                        id.as_ref(),
                        "forbidden",
                        "Only admins can teleport on this server.",
                    )
                } else {
                    match self.world.room_index(target) {
                        Some(dest) => {
                            return self.move_body(
                                r,
                                sid,
                                dest,
                                Arrival::Teleport,
                                id,
                                "vanishes in a shimmer of air.",
                            )
                        }
                        None => fail(
                            id.as_ref(),
                            "no_such_room",
                            &format!("There is no room {target:?}."),
                        ),
                    }
                }
            }
            Ok(Command::Say(text)) => self.speak(r, sid, room, id, "say", text),
            Ok(Command::Emote(text)) => self.speak(r, sid, room, id, "emote", text),
            Ok(Command::Get(item)) => self.get(r, sid, room, id, item),
            Ok(Command::Drop(item)) => self.drop_item(r, sid, room, id, item),
            Ok(Command::Inventory) => {
                let inventory = self
                    .bodies
                    .get(&sid)
                    .map(|p| p.body.inventory.as_slice())
                    .unwrap_or_default();
                let text = render::inventory_text(inventory);
                let mut items = Vec::new();
                encode::put_str_array(&mut items, inventory.iter().map(String::as_str));
                let mut reply = reply_body(id.as_ref(), true, 64 + text.len() + items.len());
                reply.str("text", &text).raw("items", &items);
                reply.finish()
            }
            Ok(Command::Quit) => {
                if let Some(placed) = self.bodies.remove(&sid) {
                    self.save_body(&placed.body, placed.room);
                    let text = format!("{} has left the world.", placed.body.name);
                    self.leave_room(r, &placed, &text);
                }
                let mut reply = reply_body(id.as_ref(), true, 64);
                reply.str("text", "Farewell. Come back soon.");
                r.post(
                    sid.shard(),
                    Msg::QuitDone {
                        sid,
                        frame: reply.finish(),
                    },
                );
                return;
            }
            Ok(Command::Who | Command::Tell { .. } | Command::Shout(_) | Command::Help) => fail(
                id.as_ref(),
                "unreachable",
                "That command is handled by your connection's shard.",
            ),
        };
        r.post(sid.shard(), done(sid, frame));
    }

    fn speak(
        &mut self,
        r: &mut Router,
        sid: SessionId,
        room: RoomIdx,
        id: Option<MsgId>,
        kind: &str,
        text: &str,
    ) -> Bytes {
        if text.is_empty() {
            let usage = if kind == "say" {
                "Say what? Usage: say <text>"
            } else {
                "Emote what? Usage: emote <text>"
            };
            return fail(id.as_ref(), "usage", usage);
        }
        let name = match self.bodies.get(&sid) {
            Some(p) => p.body.name.clone(),
            None => return fail(id.as_ref(), "unreachable", "You are nowhere."),
        };
        let frame = encode::event(kind, &self.world.room(room).id, &name, text);
        self.emit(r, room, frame, Some(sid));
        let echo = if kind == "say" {
            format!("You say, \"{text}\"")
        } else {
            format!("{name} {text}")
        };
        let mut reply = reply_body(id.as_ref(), true, 32 + echo.len());
        reply.str("text", &echo);
        reply.finish()
    }

    fn get(
        &mut self,
        r: &mut Router,
        sid: SessionId,
        room: RoomIdx,
        id: Option<MsgId>,
        query: &str,
    ) -> Bytes {
        if query.is_empty() {
            return fail(id.as_ref(), "usage", "Get what? Usage: get <item>");
        }
        let carried = self.bodies.get(&sid).map_or(0, |p| p.body.inventory.len());
        if carried >= INVENTORY_ITEMS_MAX {
            return fail(id.as_ref(), "too_many_items", "Your hands are full.");
        }
        let shards = r.shards();
        let state = self.room_state(room, shards);
        let Some(i) = find_item(&state.items, query) else {
            return fail(
                id.as_ref(),
                "no_such_item",
                &format!("There is no {query} here."),
            );
        };
        let item = state.items.remove(i);
        state.cache = None;
        let Some(placed) = self.bodies.get_mut(&sid) else {
            return fail(id.as_ref(), "unreachable", "You are nowhere.");
        };
        placed.body.inventory.push(item.clone());
        let name = placed.body.name.clone();
        self.item_moved(
            r,
            sid,
            room,
            id,
            &format!("{name} picks up the {item}."),
            &format!("You pick up the {item}."),
        )
    }

    fn drop_item(
        &mut self,
        r: &mut Router,
        sid: SessionId,
        room: RoomIdx,
        id: Option<MsgId>,
        query: &str,
    ) -> Bytes {
        if query.is_empty() {
            return fail(id.as_ref(), "usage", "Drop what? Usage: drop <item>");
        }
        let shards = r.shards();
        if self.room_state(room, shards).items.len() >= ROOM_ITEMS_MAX {
            return fail(
                id.as_ref(),
                "too_many_items",
                "There is no room on the floor for that.",
            );
        }
        let Some(placed) = self.bodies.get_mut(&sid) else {
            return fail(id.as_ref(), "unreachable", "You are nowhere.");
        };
        let Some(i) = find_item(&placed.body.inventory, query) else {
            return fail(
                id.as_ref(),
                "no_such_item",
                &format!("You carry no {query}."),
            );
        };
        let item = placed.body.inventory.remove(i);
        let name = placed.body.name.clone();
        let state = self.room_state(room, shards);
        state.items.push(item.clone());
        state.cache = None;
        self.item_moved(
            r,
            sid,
            room,
            id,
            &format!("{name} drops the {item}."),
            &format!("You drop the {item}."),
        )
    }

    /// After an item moved between a body and the floor: both are persisted,
    /// the room hears `event_text`, the mover gets `reply_text`.
    fn item_moved(
        &mut self,
        r: &mut Router,
        sid: SessionId,
        room: RoomIdx,
        id: Option<MsgId>,
        event_text: &str,
        reply_text: &str,
    ) -> Bytes {
        let Some(placed) = self.bodies.get(&sid) else {
            return fail(id.as_ref(), "unreachable", "You are nowhere.");
        };
        self.save_body(&placed.body, room);
        let frame = encode::event(
            "item",
            &self.world.room(room).id,
            &placed.body.name,
            event_text,
        );
        self.save_room_items(room);
        self.emit(r, room, frame, Some(sid));
        let mut reply = reply_body(id.as_ref(), true, 32 + reply_text.len());
        reply.str("text", reply_text);
        reply.finish()
    }

    /// Takes the body out of its room and sends it to `dest`'s owner (maybe
    /// this shard) in one message.
    fn move_body(
        &mut self,
        r: &mut Router,
        sid: SessionId,
        dest: RoomIdx,
        how: Arrival,
        id: Option<MsgId>,
        leave_text: &str,
    ) {
        let Some(placed) = self.bodies.remove(&sid) else {
            return;
        };
        let text = format!("{} {leave_text}", placed.body.name);
        self.leave_room(r, &placed, &text);
        // Saved here, where the move is decided: the hand-off below may be
        // to another shard, and this save is ordered before its later ones.
        self.save_body(&placed.body, dest);
        let owner = self.placement.owner(dest);
        r.post(
            owner,
            Msg::Arrive {
                body: placed.body,
                room: dest,
                how,
                id,
            },
        );
    }

    fn leave_room(&mut self, r: &mut Router, placed: &Placed, text: &str) {
        let sid = placed.body.sid;
        let room = placed.room;
        let presence_max = self.limits.presence_events_players_max;
        let shards = r.shards();
        let state = self.room_state(room, shards);
        if let Some(i) = state.players.iter().position(|p| *p == sid) {
            state.players.remove(i);
        }
        if let Some(count) = state.viewers.get_mut(sid.shard() as usize) {
            *count = count.saturating_sub(1);
        }
        state.cache = None;
        let crowded = state.players.len() >= presence_max;
        // Left travels on the same channel as this room's events, before them.
        r.post(sid.shard(), Msg::Left { sid, room });
        if !crowded {
            let frame = encode::event("leave", &self.world.room(room).id, &placed.body.name, text);
            self.emit(r, room, frame, None);
        }
    }

    /// Sends an event once to each shard with viewers of `room`.
    fn emit(&mut self, r: &mut Router, room: RoomIdx, frame: Bytes, except: Option<SessionId>) {
        let Some(state) = self.rooms.get(&room) else {
            return;
        };
        for (shard, count) in state.viewers.iter().enumerate() {
            if *count > 0 {
                r.post(
                    shard as u16,
                    Msg::RoomEvent {
                        room,
                        frame: frame.clone(),
                        except,
                    },
                );
            }
        }
    }

    /// The room object and the `look` text (both JSON), cached until the room changes.
    fn view(&mut self, room: RoomIdx) -> (Bytes, Bytes) {
        let names_max = self.limits.names_listed_max;
        let shard = self.placement.owner(room);
        let Some(state) = self.rooms.get_mut(&room) else {
            let def = self.world.room(room);
            let items = match self.saved_items.get(&room) {
                Some(items) => items,
                None => &def.items,
            };
            return render::room_view(def, &self.world, items, &[], 0, shard);
        };
        if let Some(cache) = &state.cache {
            return cache.clone();
        }
        let names: Vec<&str> = state
            .players
            .iter()
            .take(names_max)
            .filter_map(|sid| self.bodies.get(sid).map(|p| &*p.body.name))
            .collect();
        let total = state.players.len();
        let view = render::room_view(
            self.world.room(room),
            &self.world,
            &state.items,
            &names,
            total,
            shard,
        );
        state.cache = Some(view.clone());
        view
    }

    /// One world tick: in each occupied room with NPCs, one NPC speaks.
    pub fn ambient_tick(&mut self, r: &mut Router) {
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
            self.emit(r, room, frame, None);
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

fn done(sid: SessionId, frame: Bytes) -> Msg {
    Msg::Frame {
        sid,
        frame,
        done: true,
    }
}

/// Starts a `reply` body: `"type":"reply","id":…,"ok":…`.
pub fn reply_body(id: Option<&MsgId>, ok: bool, capacity: usize) -> FrameBody {
    let mut body = FrameBody::new("reply", capacity);
    body.id(id).bool("ok", ok);
    body
}

/// A failed command: `ok:false` with a machine `code` and a human `text`.
pub fn fail(id: Option<&MsgId>, code: &str, text: &str) -> Bytes {
    let mut body = reply_body(id, false, 48 + code.len() + text.len());
    body.str("code", code).str("text", text);
    body.finish()
}
