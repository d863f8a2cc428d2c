//! The world as data: rooms, their exits, items and NPCs.
//!
//! A [`World`] is built once at start-up — from zone files ([`World::load`],
//! format in [`loader`]) or generated for load tests ([`World::generated`]) —
//! and is read-only afterwards. Rooms are addressed by a dense [`RoomIdx`] so
//! that hot paths (moving, fan-out) index a `Vec` instead of hashing strings;
//! the string id (`"town:square"`) is for the wire, files and `goto`.
//! Runtime state that changes (items dropped, players present) belongs to the
//! shard that owns the room, not to this struct.

mod dir;
mod error;
mod files;
pub mod generated;
mod item;
pub mod limits;
pub mod loader;

#[cfg(test)]
mod default_world;

pub use dir::Dir;
pub use error::WorldError;
pub use files::{ZoneFiles, EMBEDDED_DIR, EMBEDDED_ZONES};
pub use item::find_item;

use std::collections::HashMap;
use std::path::Path;

/// Index of a room in [`World::rooms`]; stable for the life of the world.
pub type RoomIdx = u32;

/// All rooms a host knows, with the start room for guests and new players.
#[derive(Debug, Clone)]
pub struct World {
    /// Every room, indexed by [`RoomIdx`].
    pub rooms: Vec<Room>,
    /// Where guests and new players appear.
    pub start: RoomIdx,
    /// The zones the rooms came from, in load order.
    pub zones: Vec<Zone>,
    /// Full room id to index, for `goto`, the wire and the store.
    index: HashMap<String, RoomIdx>,
}

/// A named group of rooms, one per zone file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The prefix of its room ids, e.g. `"town"`.
    pub id: String,
    /// The name players see, e.g. `"Millbrook"`.
    pub name: String,
}

/// One place a player can stand in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// Full id, `zone:room`, e.g. `"town:square"`.
    pub id: String,
    /// The zone id, the part of `id` before the colon.
    pub zone: String,
    /// Short title shown on arrival.
    pub name: String,
    /// The prose shown by `look`.
    pub description: String,
    /// Where each exit leads, in [`Dir::ALL`] order, at most one per direction.
    pub exits: Vec<(Dir, RoomIdx)>,
    /// Items lying here when the world starts.
    pub items: Vec<String>,
    /// Characters who live here and speak on the world tick.
    pub npcs: Vec<Npc>,
}

impl Room {
    /// Where going `dir` from here leads, if anywhere.
    pub fn exit(&self, dir: Dir) -> Option<RoomIdx> {
        self.exits
            .iter()
            .find(|&&(d, _)| d == dir)
            .map(|&(_, idx)| idx)
    }
}

/// A non-player character: flavour that lives in one room and talks on a timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Npc {
    /// As shown in the room and in `from` of its `ambient` events.
    pub name: String,
    /// What a player sees on looking at it.
    pub description: String,
    /// Lines it says now and then; the world tick picks one.
    pub ambient: Vec<String>,
}

impl World {
    /// Loads the named zones from `dir/<zone>.toml`; `start` is a full room id.
    pub fn load(dir: &Path, zones: &[String], start: &str) -> Result<World, WorldError> {
        loader::load(ZoneFiles::Dir(dir), zones, start)
    }

    /// Loads the named zones from `files` (a folder, or the default world
    /// built into the binary); `start` is a full room id.
    pub fn load_from(
        files: ZoneFiles<'_>,
        zones: &[String],
        start: &str,
    ) -> Result<World, WorldError> {
        loader::load(files, zones, start)
    }

    /// A generated grid world for load tests: `width * height` rooms with ids
    /// `grid:{x}_{y}`, no NPCs, start `grid:0_0`; see [`generated`](mod@generated).
    pub fn generated(width: u32, height: u32) -> World {
        generated::grid(width, height, 1)
    }

    /// A generated grid cut into `zones` bands of rows (`grid-0`, `grid-1`,
    /// …), for a cluster whose hosts each own some of them.
    pub fn generated_in_zones(width: u32, height: u32, zones: u32) -> World {
        generated::grid(width, height, zones)
    }

    /// The index of the room with full id `id` (`"town:square"`).
    pub fn room_index(&self, id: &str) -> Option<RoomIdx> {
        self.index.get(id).copied()
    }

    /// The room at `idx`. Indexes come from this world (exits, `start`,
    /// [`World::room_index`]), so an out-of-range one is a bug and panics.
    pub fn room(&self, idx: RoomIdx) -> &Room {
        &self.rooms[idx as usize]
    }

    /// Builds the world from finished rooms and checks its invariants; every
    /// constructor goes through here so no world escapes unchecked.
    fn from_parts(rooms: Vec<Room>, zones: Vec<Zone>, start: RoomIdx) -> World {
        let index = rooms
            .iter()
            .enumerate()
            .map(|(i, room)| (room.id.clone(), i as RoomIdx))
            .collect();
        let world = World {
            rooms,
            start,
            zones,
            index,
        };
        world.assert_invariants();
        world
    }

    fn assert_invariants(&self) {
        assert!(!self.rooms.is_empty(), "a world has at least one room");
        assert!(self.rooms.len() <= RoomIdx::MAX as usize);
        assert!((self.start as usize) < self.rooms.len());
        assert_eq!(self.index.len(), self.rooms.len(), "room ids are unique");
        for room in &self.rooms {
            // `zone:room`; a generated grid cut into zones keeps its ids
            // `grid:x_y` in zones `grid-k`.
            assert!(room
                .id
                .split_once(':')
                .is_some_and(|(prefix, _)| room.zone.starts_with(prefix)));
            assert!(
                room.exits.windows(2).all(|w| w[0].0 < w[1].0),
                "exits of {} are in Dir::ALL order without repeats",
                room.id
            );
            assert!(room
                .exits
                .iter()
                .all(|&(_, to)| (to as usize) < self.rooms.len()));
        }
    }
}
