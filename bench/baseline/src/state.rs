//! The shared game state: who is online, where they stand, and how to reach them.
//!
//! This is the conventional design the baseline exists to measure: one
//! `RwLock` around a `HashMap` of players (each holding the `UnboundedSender`
//! of its connection's writer task) and a `HashMap` of room occupants. Every
//! connection task locks it: read for `look` and `say`, write for logins,
//! moves and logouts. Broadcasting is "lock, walk the room, `send` to each".

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

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
    world: RwLock<World>,
    /// Open WebSocket connections, for `/healthz`.
    pub connections: AtomicUsize,
}

impl Shared {
    pub fn new(grid: Grid) -> Arc<Shared> {
        Arc::new(Shared {
            grid,
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
                let name = format!("guest{}", world.next_guest);
                if !world.players.contains_key(&name) {
                    break name;
                }
            },
        };
        world.rooms.entry(start).or_default().insert(name.clone());
        let view = self.view(&world, start);
        // Queued under the lock so that no event for this player can overtake it.
        let _ = tx.send(Outbound::Sequenced(protocol::welcome(&name, &view)));
        world
            .players
            .insert(name.clone(), Player { room: start, tx });
        name
    }

    /// Removes a player who disconnected or quit.
    pub fn logout(&self, name: &str) {
        let mut world = self.write();
        if let Some(player) = world.players.remove(name) {
            leave_room(&mut world, player.room, name);
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

    /// `say`: the text goes verbatim to every other player in the room.
    pub fn say(&self, name: &str, text: &str) -> Outcome {
        let world = self.read();
        let Some(player) = world.players.get(name) else {
            return Outcome::fail("not_in_world", "You are nowhere.");
        };
        let room_id = player.room.to_string();
        let event = protocol::event("say", &room_id, name, text);
        send_to_room(&world, player.room, name, &event);
        Outcome::ok(format!("You say: {text}"), None)
    }

    /// `go <dir>` and the bare directions.
    pub fn walk(&self, name: &str, dir: Direction) -> Outcome {
        let mut world = self.write();
        let Some(from) = world.players.get(name).map(|p| p.room) else {
            return Outcome::fail("not_in_world", "You are nowhere.");
        };
        let Some(to) = self.grid.step(from, dir) else {
            return Outcome::fail("no_exit", format!("You can't go {} from here.", dir.name()));
        };
        let leave = format!("{name} leaves {}.", dir.name());
        let enter = format!("{name} arrives from the {}.", dir.opposite().name());
        self.relocate(&mut world, name, from, to, &leave, &enter);
        let view = self.view(&world, to);
        Outcome::ok(format!("You go {}. {}.", dir.name(), view.name), Some(view))
    }

    /// `goto <room id>`: a teleport, allowed for everyone in the load-test world.
    pub fn teleport(&self, name: &str, room_id: &str) -> Outcome {
        let Some(to) = self.grid.room(room_id) else {
            return Outcome::fail("no_such_room", format!("There is no room {room_id:?}."));
        };
        let mut world = self.write();
        let Some(from) = world.players.get(name).map(|p| p.room) else {
            return Outcome::fail("not_in_world", "You are nowhere.");
        };
        if from != to {
            let leave = format!("{name} vanishes.");
            let enter = format!("{name} appears out of thin air.");
            self.relocate(&mut world, name, from, to, &leave, &enter);
        }
        let view = self.view(&world, to);
        Outcome::ok(format!("You are now in {}.", view.name), Some(view))
    }

    /// Moves a player between rooms, telling both rooms' other occupants.
    fn relocate(
        &self,
        world: &mut World,
        name: &str,
        from: Pos,
        to: Pos,
        leave: &str,
        enter: &str,
    ) {
        leave_room(world, from, name);
        let event = protocol::event("leave", &from.to_string(), name, leave);
        send_to_room(world, from, name, &event);

        let event = protocol::event("enter", &to.to_string(), name, enter);
        send_to_room(world, to, name, &event);
        world.rooms.entry(to).or_default().insert(name.to_owned());
        if let Some(player) = world.players.get_mut(name) {
            player.room = to;
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

/// Takes a name out of a room's occupants, forgetting the room when it empties.
fn leave_room(world: &mut World, room: Pos, name: &str) {
    if let Some(occupants) = world.rooms.get_mut(&room) {
        occupants.remove(name);
        if occupants.is_empty() {
            world.rooms.remove(&room);
        }
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
        let shared = Shared::new(Grid {
            width: 2,
            height: 2,
        });
        let (tx, _rx) = mpsc::unbounded_channel();
        assert_eq!(shared.login(Some("alice"), tx.clone()), "alice");
        assert_eq!(shared.login(Some("alice"), tx.clone()), "guest1");
        assert_eq!(shared.login(Some("a!"), tx.clone()), "guest2");
        assert_eq!(shared.login(None, tx), "guest3");
        assert_eq!(shared.look("alice").room.map(|r| r.players_total), Some(4));
    }
}
