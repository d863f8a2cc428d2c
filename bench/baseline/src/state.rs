//! The shared game state: who is online, where they stand, and how to reach them.
//!
//! This is the conventional design the baseline exists to measure: one
//! `RwLock` around a `HashMap` of players (each holding the `UnboundedSender`
//! of its connection's writer task) and a `HashMap` of room occupants. Every
//! connection task locks it: read for `look` and `say`, write for logins,
//! moves and logouts. Broadcasting is "lock, walk the room, `send` to each".
//!
//! With `--redis` the same state is this process's share of a world spread
//! over several processes: every room event is also handed to the
//! [`Bridge`], and what other processes publish comes back through
//! `deliver_*` (see `bridge.rs`). Subscription changes are queued under the
//! write lock, so they reach Redis in the order the rooms filled and emptied.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::bridge::{self, Bridge};
use crate::commands::Answer;
use crate::protocol::{self, Outbound, Outcome, RoomView};
use crate::world::{Direction, Grid, Pos};

/// How many names a room view lists; `players_total` carries the full count.
pub const ROOM_PLAYERS_LISTED_MAX: usize = 50;

/// Guest names: 3–20 of `[A-Za-z0-9_]` (DESIGN.md §7).
const NAME_CHARS_MIN: usize = 3;
const NAME_CHARS_MAX: usize = 20;

/// The sending half of a connection's outbound queue.
pub type Tx = UnboundedSender<Outbound>;

/// One logged-in player.
#[derive(Debug)]
struct Player {
    room: Pos,
    tx: Tx,
}

/// Everything behind the lock.
#[derive(Debug, Default)]
struct World {
    players: HashMap<String, Player>,
    /// Room → names of the players in it. Rooms nobody stands in are absent.
    rooms: HashMap<Pos, HashSet<String>>,
    /// The number in the next `guest<N>` name.
    next_guest: u64,
}

/// The server's state, shared by every connection task through an `Arc`.
#[derive(Debug)]
pub struct Shared {
    pub grid: Grid,
    /// The other processes of the world (`--redis`), if any.
    bridge: Option<Bridge>,
    world: RwLock<World>,
    /// Open WebSocket connections, for `/healthz`.
    pub connections: AtomicUsize,
}

impl Shared {
    pub fn new(grid: Grid, bridge: Option<Bridge>) -> Arc<Shared> {
        Arc::new(Shared {
            grid,
            bridge,
            world: RwLock::default(),
            connections: AtomicUsize::new(0),
        })
    }

    // A panic while holding the lock is a bug in one command; the maps are
    // still consistent between statements, so the other sessions keep going
    // instead of all panicking on a poisoned lock.
    fn read(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, World> {
        self.world.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs a guest in at the start room and queues its `welcome`. Returns the
    /// name it got: the requested one if valid and free, else `guest<N>`.
    pub fn login(&self, requested: Option<&str>, tx: Tx) -> String {
        let start = self.grid.start();
        let mut world = self.write();
        let name = match requested {
            Some(name) if valid_name(name) && !world.players.contains_key(name) => name.to_owned(),
            _ => loop {
                world.next_guest += 1;
                // Each process numbers its own guests: with several, the
                // host id keeps their names apart.
                let name = match &self.bridge {
                    Some(bridge) => format!("guest{}_{}", world.next_guest, bridge.host_id()),
                    None => format!("guest{}", world.next_guest),
                };
                if !world.players.contains_key(&name) {
                    break name;
                }
            },
        };
        // Nobody waits for this subscription: the player hears the start
        // room's other hosts from when Redis confirms it.
        drop(self.enter_room(&mut world, start, &name));
        if let Some(bridge) = &self.bridge {
            bridge.player_online(&name);
        }
        let view = self.view(&world, start);
        // Queued under the lock so that no event for this player can overtake it.
        let host = self.bridge.as_ref().map_or("baseline", Bridge::host_id);
        let _ = tx.send(Outbound::Sequenced(protocol::welcome(&name, host, &view)));
        world
            .players
            .insert(name.clone(), Player { room: start, tx });
        name
    }

    /// Removes a player who disconnected or quit.
    pub fn logout(&self, name: &str) {
        let mut world = self.write();
        if let Some(player) = world.players.remove(name) {
            self.leave_room(&mut world, player.room, name);
            if let Some(bridge) = &self.bridge {
                bridge.player_offline(name);
            }
        }
    }

    /// `look`.
    pub fn look(&self, name: &str) -> Outcome {
        let world = self.read();
        match world.players.get(name) {
            Some(player) => {
                let view = self.view(&world, player.room);
                Outcome::ok(format!("{}. {}", view.name, view.description), Some(view))
            }
            None => Outcome::fail("not_in_world", "You are nowhere."),
        }
    }

    /// `say` and `emote` (`kind`): the text goes verbatim to every other
    /// player in the room, on every host.
    pub fn room_speech(&self, name: &str, kind: &str, text: &str) -> Outcome {
        let world = self.read();
        let Some(player) = world.players.get(name) else {
            return Outcome::fail("not_in_world", "You are nowhere.");
        };
        let room_id = player.room.to_string();
        let event = protocol::event(kind, &room_id, name, text);
        self.room_event(&world, player.room, &room_id, name, &event);
        match kind {
            "emote" => Outcome::ok(format!("{name} {text}"), None),
            _ => Outcome::ok(format!("You say: {text}"), None),
        }
    }

    /// `shout`: the text goes to everyone online, on every host.
    pub fn shout(&self, name: &str, text: &str) -> Outcome {
        let event = protocol::event("shout", "", name, text);
        self.deliver_all(name, &event);
        if let Some(bridge) = &self.bridge {
            bridge.shout(name, &event);
        }
        Outcome::ok(format!("You shout: {text}"), None)
    }

    /// `tell <to> <text>`: straight to a player here, else through Redis to
    /// whichever host has them.
    pub fn tell(&self, name: &str, to: &str, text: &str) -> Answer {
        let event = protocol::event("tell", "", name, text);
        let echo = format!("You tell {to}, \"{text}\"");
        if let Some(player) = self.read().players.get(to) {
            let _ = player.tx.send(Outbound::Sequenced(event));
            return Outcome::ok(echo, None).into();
        }
        match &self.bridge {
            Some(bridge) => Answer::Later(bridge.tell(to, &event, echo)),
            None => {
                Outcome::fail("no_such_player", format!("Nobody called {to} is online.")).into()
            }
        }
    }

    /// `who`: everyone online, on every host.
    pub fn who(&self) -> Answer {
        match &self.bridge {
            Some(bridge) => Answer::Later(bridge.who()),
            None => {
                let names: Vec<String> = self.read().players.keys().cloned().collect();
                bridge::who_outcome(&names).into()
            }
        }
    }

    /// `go <dir>` and the bare directions.
    pub fn walk(&self, name: &str, dir: Direction) -> Answer {
        let mut world = self.write();
        let Some(from) = world.players.get(name).map(|p| p.room) else {
            return Outcome::fail("not_in_world", "You are nowhere.").into();
        };
        let Some(to) = self.grid.step(from, dir) else {
            return Outcome::fail("no_exit", format!("You can't go {} from here.", dir.name()))
                .into();
        };
        let leave = format!("{name} leaves {}.", dir.name());
        let enter = format!("{name} arrives from the {}.", dir.opposite().name());
        let subscribed = self.relocate(&mut world, name, from, to, &leave, &enter);
        let view = self.view(&world, to);
        let outcome = Outcome::ok(format!("You go {}. {}.", dir.name(), view.name), Some(view));
        after(outcome, subscribed)
    }

    /// `goto <room id>`: a teleport, allowed for everyone in the load-test world.
    pub fn teleport(&self, name: &str, room_id: &str) -> Answer {
        let Some(to) = self.grid.room(room_id) else {
            return Outcome::fail("no_such_room", format!("There is no room {room_id:?}.")).into();
        };
        let mut world = self.write();
        let Some(from) = world.players.get(name).map(|p| p.room) else {
            return Outcome::fail("not_in_world", "You are nowhere.").into();
        };
        let mut subscribed = None;
        if from != to {
            let leave = format!("{name} vanishes.");
            let enter = format!("{name} appears out of thin air.");
            subscribed = self.relocate(&mut world, name, from, to, &leave, &enter);
        }
        let view = self.view(&world, to);
        after(
            Outcome::ok(format!("You are now in {}.", view.name), Some(view)),
            subscribed,
        )
    }

    /// Moves a player between rooms, telling both rooms' other occupants.
    /// Returns the pending subscription to `to` when this host just began
    /// listening to it.
    fn relocate(
        &self,
        world: &mut World,
        name: &str,
        from: Pos,
        to: Pos,
        leave: &str,
        enter: &str,
    ) -> Option<oneshot::Receiver<()>> {
        self.leave_room(world, from, name);
        let from_id = from.to_string();
        let event = protocol::event("leave", &from_id, name, leave);
        self.room_event(world, from, &from_id, name, &event);

        let to_id = to.to_string();
        let event = protocol::event("enter", &to_id, name, enter);
        self.room_event(world, to, &to_id, name, &event);
        let subscribed = self.enter_room(world, to, name);
        if let Some(player) = world.players.get_mut(name) {
            player.room = to;
        }
        subscribed
    }

    /// Delivers a room event here and publishes it to the other hosts.
    fn room_event(&self, world: &World, room: Pos, room_id: &str, except: &str, event: &Arc<str>) {
        send_to_room(world, room, except, event);
        if let Some(bridge) = &self.bridge {
            bridge.room_event(room_id, except, event);
        }
    }

    /// Puts a name among a room's occupants; the first one here makes this
    /// host subscribe to the room's channel (returned: its confirmation).
    fn enter_room(
        &self,
        world: &mut World,
        room: Pos,
        name: &str,
    ) -> Option<oneshot::Receiver<()>> {
        let occupants = world.rooms.entry(room).or_default();
        let first = occupants.is_empty();
        occupants.insert(name.to_owned());
        match &self.bridge {
            Some(bridge) if first => Some(bridge.join_room(&room.to_string())),
            _ => None,
        }
    }

    /// Takes a name out of a room's occupants, forgetting the room when it
    /// empties (and unsubscribing from its channel).
    fn leave_room(&self, world: &mut World, room: Pos, name: &str) {
        let Some(occupants) = world.rooms.get_mut(&room) else {
            return;
        };
        occupants.remove(name);
        if occupants.is_empty() {
            world.rooms.remove(&room);
            if let Some(bridge) = &self.bridge {
                bridge.leave_room(&room.to_string());
            }
        }
    }

    /// A room event another host published: to this host's players there.
    pub fn deliver_room(&self, room_id: &str, except: &str, event: &Arc<str>) {
        if let Some(room) = self.grid.room(room_id) {
            send_to_room(&self.read(), room, except, event);
        }
    }

    /// A shout: to every player here but `except`.
    pub fn deliver_all(&self, except: &str, event: &Arc<str>) {
        let world = self.read();
        for (name, player) in &world.players {
            if name != except {
                let _ = player.tx.send(Outbound::Sequenced(Arc::clone(event)));
            }
        }
    }

    /// A tell another host published for `name`, if they are still here.
    pub fn deliver_tell(&self, name: &str, event: Arc<str>) {
        if let Some(player) = self.read().players.get(name) {
            let _ = player.tx.send(Outbound::Sequenced(event));
        }
    }

    /// The room as clients see it, with the first names of who is there.
    fn view(&self, world: &World, pos: Pos) -> RoomView {
        let occupants = world.rooms.get(&pos);
        let exits = self
            .grid
            .exits(pos)
            .map(|(dir, to)| (dir.name().to_owned(), Value::String(to.to_string())))
            .collect();
        RoomView {
            id: pos.to_string(),
            name: self.grid.name(pos),
            description: self.grid.description(pos),
            exits,
            items: [],
            players: occupants
                .into_iter()
                .flatten()
                .take(ROOM_PLAYERS_LISTED_MAX)
                .cloned()
                .collect(),
            players_total: occupants.map_or(0, HashSet::len),
        }
    }

    /// Asks every session to close, for a graceful shutdown.
    pub fn close_all(&self) {
        for player in self.read().players.values() {
            let _ = player.tx.send(Outbound::Close);
        }
    }

    /// Open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Queues an encoded event for everyone in `room` but `except`. A closed
/// queue means that session is on its way out; its own task cleans up.
fn send_to_room(world: &World, room: Pos, except: &str, event: &Arc<str>) {
    let Some(occupants) = world.rooms.get(&room) else {
        return;
    };
    for other in occupants.iter().filter(|other| *other != except) {
        if let Some(player) = world.players.get(other) {
            let _ = player.tx.send(Outbound::Sequenced(Arc::clone(event)));
        }
    }
}

/// The answer to a move: at once, or once the new room's subscription is confirmed.
fn after(outcome: Outcome, subscribed: Option<oneshot::Receiver<()>>) -> Answer {
    match subscribed {
        Some(confirmed) => Answer::AfterSubscribe(outcome, confirmed),
        None => Answer::Now(outcome),
    }
}

/// `[A-Za-z0-9_]{3,20}`.
fn valid_name(name: &str) -> bool {
    (NAME_CHARS_MIN..=NAME_CHARS_MAX).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[test]
    fn guest_names_fall_back_when_invalid_or_taken() {
        let shared = Shared::new(
            Grid {
                width: 2,
                height: 2,
            },
            None,
        );
        let (tx, _rx) = mpsc::unbounded_channel();
        assert_eq!(shared.login(Some("alice"), tx.clone()), "alice");
        assert_eq!(shared.login(Some("alice"), tx.clone()), "guest1");
        assert_eq!(shared.login(Some("a!"), tx.clone()), "guest2");
        assert_eq!(shared.login(None, tx), "guest3");
        assert_eq!(shared.look("alice").room.map(|r| r.players_total), Some(4));
    }
}
