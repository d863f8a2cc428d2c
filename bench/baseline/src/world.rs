//! The generated grid world: `grid:{x}_{y}` rooms on a W×H grid.
//!
//! The baseline only serves the load-test world that the load generator walks
//! through, so rooms are computed from their coordinates instead of being
//! loaded from zone files. Room ids, names of exits and the start room match
//! mudshard's generated grid, so the same scenarios run against both servers.

use std::fmt;
use std::str::FromStr;

/// The largest side of a grid we accept: 10,000 × 10,000 is already 10⁸ rooms.
const GRID_SIDE_MAX: u32 = 10_000;

/// A position on the grid; its `Display` form is the room id `grid:{x}_{y}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pos {
    pub x: u32,
    pub y: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "grid:{}_{}", self.x, self.y)
    }
}

/// A compass direction a player can walk in. Up and down are understood by
/// the command parser (they are directions in mudshard) but the flat grid has
/// no exits that way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    North,
    South,
    East,
    West,
    Up,
    Down,
}

impl Direction {
    /// Every direction a grid room can have an exit in, in the order exits are listed.
    const FLAT: [Direction; 4] = [
        Direction::North,
        Direction::South,
        Direction::East,
        Direction::West,
    ];

    /// Parses a direction as players type it: full names and one-letter abbreviations.
    pub fn parse(word: &str) -> Option<Direction> {
        match word.to_ascii_lowercase().as_str() {
            "n" | "north" => Some(Direction::North),
            "s" | "south" => Some(Direction::South),
            "e" | "east" => Some(Direction::East),
            "w" | "west" => Some(Direction::West),
            "u" | "up" => Some(Direction::Up),
            "d" | "down" => Some(Direction::Down),
            _ => None,
        }
    }

    /// The name used in `exits` and in event texts.
    pub fn name(self) -> &'static str {
        match self {
            Direction::North => "north",
            Direction::South => "south",
            Direction::East => "east",
            Direction::West => "west",
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }

    /// The direction a player who walked `self` arrives from.
    pub fn opposite(self) -> Direction {
        match self {
            Direction::North => Direction::South,
            Direction::South => Direction::North,
            Direction::East => Direction::West,
            Direction::West => Direction::East,
            Direction::Up => Direction::Down,
            Direction::Down => Direction::Up,
        }
    }
}

/// The world: a `width` × `height` grid whose start room is `grid:0_0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub width: u32,
    pub height: u32,
}

impl Grid {
    /// Where guests appear.
    pub fn start(&self) -> Pos {
        Pos { x: 0, y: 0 }
    }

    /// The room with id `grid:{x}_{y}`, if it lies inside this grid.
    pub fn room(&self, id: &str) -> Option<Pos> {
        let (x, y) = id.strip_prefix("grid:")?.split_once('_')?;
        let pos = Pos {
            x: x.parse().ok()?,
            y: y.parse().ok()?,
        };
        (pos.x < self.width && pos.y < self.height).then_some(pos)
    }

    /// The room one step from `from` towards `dir`, if there is one.
    pub fn step(&self, from: Pos, dir: Direction) -> Option<Pos> {
        let Pos { x, y } = from;
        let to = match dir {
            Direction::North => Pos {
                x,
                y: y.checked_sub(1)?,
            },
            Direction::South => Pos { x, y: y + 1 },
            Direction::East => Pos { x: x + 1, y },
            Direction::West => Pos {
                x: x.checked_sub(1)?,
                y,
            },
            Direction::Up | Direction::Down => return None,
        };
        (to.x < self.width && to.y < self.height).then_some(to)
    }

    /// The exits of a room, as (direction, room) pairs.
    pub fn exits(&self, from: Pos) -> impl Iterator<Item = (Direction, Pos)> + '_ {
        Direction::FLAT
            .into_iter()
            .filter_map(move |dir| Some((dir, self.step(from, dir)?)))
    }

    /// The room's display name.
    pub fn name(&self, pos: Pos) -> String {
        format!("Grid {},{}", pos.x, pos.y)
    }

    /// The room's description.
    pub fn description(&self, pos: Pos) -> String {
        format!(
            "A featureless square of the generated load-test grid, at column {} and row {}.",
            pos.x, pos.y
        )
    }
}

impl FromStr for Grid {
    type Err = String;

    /// Parses `grid:WxH`, as given to `--world`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || format!("expected grid:WxH (1..={GRID_SIDE_MAX} each), got {text:?}");
        let (w, h) = text
            .strip_prefix("grid:")
            .and_then(|size| size.split_once('x'))
            .ok_or_else(usage)?;
        let width: u32 = w.parse().map_err(|_| usage())?;
        let height: u32 = h.parse().map_err(|_| usage())?;
        if !(1..=GRID_SIDE_MAX).contains(&width) || !(1..=GRID_SIDE_MAX).contains(&height) {
            return Err(usage());
        }
        Ok(Grid { width, height })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRID: Grid = Grid {
        width: 3,
        height: 2,
    };

    #[test]
    fn parses_the_world_flag() {
        assert_eq!(
            "grid:100x100".parse(),
            Ok(Grid {
                width: 100,
                height: 100
            })
        );
        assert!("grid:0x5".parse::<Grid>().is_err());
        assert!("town".parse::<Grid>().is_err());
    }

    #[test]
    fn room_ids_round_trip_and_stay_inside_the_grid() {
        let pos = GRID.room("grid:2_1").expect("inside");
        assert_eq!(pos.to_string(), "grid:2_1");
        assert_eq!(GRID.room("grid:3_0"), None);
        assert_eq!(GRID.room("grid:-1_0"), None);
        assert_eq!(GRID.room("town:square"), None);
    }

    #[test]
    fn north_is_y_minus_one_and_edges_have_no_exit() {
        let start = GRID.start();
        assert_eq!(GRID.step(start, Direction::North), None);
        assert_eq!(GRID.step(start, Direction::West), None);
        assert_eq!(GRID.step(start, Direction::South), Some(Pos { x: 0, y: 1 }));
        assert_eq!(GRID.step(start, Direction::East), Some(Pos { x: 1, y: 0 }));
        let exits: Vec<_> = GRID
            .exits(Pos { x: 1, y: 1 })
            .map(|(d, _)| d.name())
            .collect();
        assert_eq!(exits, ["north", "east", "west"]);
    }
}
