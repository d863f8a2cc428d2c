//! TEMPORARY stub of the world API; replaced by the real loader on merge.
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Dir {
    North,
    South,
    East,
    West,
    Up,
    Down,
}
impl Dir {
    pub const ALL: [Dir; 6] = [
        Dir::North,
        Dir::South,
        Dir::East,
        Dir::West,
        Dir::Up,
        Dir::Down,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Dir::North => "north",
            Dir::South => "south",
            Dir::East => "east",
            Dir::West => "west",
            Dir::Up => "up",
            Dir::Down => "down",
        }
    }
    pub fn opposite(self) -> Dir {
        match self {
            Dir::North => Dir::South,
            Dir::South => Dir::North,
            Dir::East => Dir::West,
            Dir::West => Dir::East,
            Dir::Up => Dir::Down,
            Dir::Down => Dir::Up,
        }
    }
    pub fn parse(w: &str) -> Option<Dir> {
        Dir::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(w) || d.name()[..1].eq_ignore_ascii_case(w))
    }
}
pub type RoomIdx = u32;
pub struct Npc {
    pub name: String,
    pub description: String,
    pub ambient: Vec<String>,
}
pub struct Room {
    pub id: String,
    pub zone: String,
    pub name: String,
    pub description: String,
    pub exits: Vec<(Dir, RoomIdx)>,
    pub items: Vec<String>,
    pub npcs: Vec<Npc>,
}
impl Room {
    pub fn exit(&self, d: Dir) -> Option<RoomIdx> {
        self.exits.iter().find(|(x, _)| *x == d).map(|(_, r)| *r)
    }
}
#[derive(Debug)]
pub struct WorldError(pub String);
impl std::fmt::Display for WorldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for WorldError {}
pub struct World {
    pub rooms: Vec<Room>,
    pub start: RoomIdx,
    index: std::collections::HashMap<String, RoomIdx>,
}
impl World {
    pub fn load(_dir: &Path, _zones: &[String], _start: &str) -> Result<World, WorldError> {
        Ok(Self::generated(3, 3))
    }
    pub fn generated(w: u32, h: u32) -> World {
        let mut rooms = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let mut exits = Vec::new();
                if y > 0 {
                    exits.push((Dir::North, (y - 1) * w + x));
                }
                if y + 1 < h {
                    exits.push((Dir::South, (y + 1) * w + x));
                }
                if x + 1 < w {
                    exits.push((Dir::East, y * w + x + 1));
                }
                if x > 0 {
                    exits.push((Dir::West, y * w + x - 1));
                }
                rooms.push(Room {
                    id: format!("grid:{x}_{y}"),
                    zone: "grid".into(),
                    name: format!("Plain ({x}, {y})"),
                    description: "Grass.".into(),
                    exits,
                    items: if (x + y) % 7 == 0 {
                        vec!["stone".into()]
                    } else {
                        vec![]
                    },
                    npcs: vec![],
                });
            }
        }
        let index = rooms
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i as u32))
            .collect();
        World {
            rooms,
            start: 0,
            index,
        }
    }
    pub fn room_index(&self, id: &str) -> Option<RoomIdx> {
        self.index.get(id).copied()
    }
    pub fn room(&self, i: RoomIdx) -> &Room {
        &self.rooms[i as usize]
    }
}
pub fn find_item(items: &[String], q: &str) -> Option<usize> {
    items.iter().position(|i| i.eq_ignore_ascii_case(q))
}
