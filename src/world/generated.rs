//! A generated grid world for load tests.
//!
//! Load tests need many rooms, placed predictably, with nothing in them that
//! speaks on its own (NPC chatter would pollute latency and delivery counts).
//! Room `grid:{x}_{y}` sits at column `x`, row `y`; north is `y - 1`, south
//! `y + 1`, east `x + 1`, west `x - 1`, without wrapping at the edges. Every
//! [`STONE_EVERY_ROOMS`]th room starts with a stone, so `get`/`drop` can be
//! load-tested too. The same size always gives the same world.
//!
//! A grid is one zone, `grid`, unless it is cut into bands of rows
//! (`grid:WxH/N`), so that the hosts of a cluster can each own a part of it
//! and players walk from one host's land into another's: zone `grid-k` holds
//! the rows `y` with `y * N / H == k`. Room ids are `grid:{x}_{y}` either
//! way, so a load generator finds a room without knowing the zones.

use super::{Dir, Room, RoomIdx, World, Zone};

pub use crate::config::{grid_zone_ids, GRID_ROOMS_MAX, GRID_ZONE, GRID_ZONES_MAX};

/// The band of row `y` of a grid `height` rows high, cut into `zones`.
fn band_of_row(y: u32, height: u32, zones: u32) -> usize {
    (u64::from(y) * u64::from(zones.max(1)) / u64::from(height.max(1))) as usize
}

/// One room in this many starts with a `"stone"`.
pub const STONE_EVERY_ROOMS: u32 = 7;

/// Builds a `width` x `height` grid cut into `zones` bands of rows. Both
/// sides must be at least 1, the product at most [`GRID_ROOMS_MAX`], and
/// `zones` between 1 and `height` (at most [`GRID_ZONES_MAX`]); load-test
/// settings are checked by the caller, so a violation here is a bug.
pub(super) fn grid(width: u32, height: u32, zones: u32) -> World {
    assert!(width >= 1 && height >= 1, "a grid has at least one room");
    assert!(
        (1..=height.min(GRID_ZONES_MAX)).contains(&zones),
        "a grid of {height} rows cannot be cut into {zones} zones"
    );
    let zone_ids = grid_zone_ids(zones);
    let count = u64::from(width) * u64::from(height);
    assert!(
        count <= GRID_ROOMS_MAX,
        "grid of {count} rooms is too large"
    );

    let idx = |x: u32, y: u32| -> RoomIdx { y * width + x };
    let mut rooms = Vec::with_capacity(count as usize);
    for y in 0..height {
        for x in 0..width {
            let mut exits = Vec::with_capacity(4);
            // Pushed in Dir::ALL order: north, south, east, west.
            if y > 0 {
                exits.push((Dir::North, idx(x, y - 1)));
            }
            if y + 1 < height {
                exits.push((Dir::South, idx(x, y + 1)));
            }
            if x + 1 < width {
                exits.push((Dir::East, idx(x + 1, y)));
            }
            if x > 0 {
                exits.push((Dir::West, idx(x - 1, y)));
            }
            let items = if idx(x, y) % STONE_EVERY_ROOMS == 0 {
                vec!["stone".to_string()]
            } else {
                Vec::new()
            };
            rooms.push(Room {
                id: format!("{GRID_ZONE}:{x}_{y}"),
                zone: zone_ids[band_of_row(y, height, zones)].clone(),
                name: format!("Plain ({x}, {y})"),
                description: format!(
                    "Flat grass in every direction; a marker stone reads {x}, {y}."
                ),
                exits,
                items,
                npcs: Vec::new(),
            });
        }
    }
    let zones = zone_ids
        .into_iter()
        .enumerate()
        .map(|(k, id)| Zone {
            name: if zones == 1 {
                "The Grid".to_string()
            } else {
                format!("The Grid, band {} of {zones}", k + 1)
            },
            id,
        })
        .collect();
    World::from_parts(rooms, zones, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_width_times_height_rooms_with_coordinate_ids() {
        let world = World::generated(4, 3);
        assert_eq!(world.rooms.len(), 12);
        assert_eq!(world.room(world.start).id, "grid:0_0");
        for y in 0..3 {
            for x in 0..4 {
                let idx = world
                    .room_index(&format!("grid:{x}_{y}"))
                    .expect("every coordinate has a room");
                assert_eq!(world.room(idx).zone, "grid");
                assert_eq!(world.room(idx).name, format!("Plain ({x}, {y})"));
            }
        }
        assert_eq!(world.room_index("grid:4_0"), None);
        assert_eq!(world.zones[0].id, "grid");
    }

    #[test]
    fn grid_neighbours_follow_compass_without_wrapping() {
        let world = World::generated(3, 3);
        let at = |id: &str| world.room_index(id).expect("room exists");
        let centre = world.room(at("grid:1_1"));
        assert_eq!(centre.exit(Dir::North), Some(at("grid:1_0")));
        assert_eq!(centre.exit(Dir::South), Some(at("grid:1_2")));
        assert_eq!(centre.exit(Dir::East), Some(at("grid:2_1")));
        assert_eq!(centre.exit(Dir::West), Some(at("grid:0_1")));
        assert_eq!(centre.exit(Dir::Up), None);
        let corner = world.room(at("grid:0_0"));
        assert_eq!(corner.exit(Dir::North), None);
        assert_eq!(corner.exit(Dir::West), None);
        assert_eq!(corner.exits.len(), 2);
        let far = world.room(at("grid:2_2"));
        assert_eq!(far.exit(Dir::South), None);
        assert_eq!(far.exit(Dir::East), None);
    }

    #[test]
    fn grid_exits_are_two_way() {
        let world = World::generated(5, 4);
        for (i, room) in world.rooms.iter().enumerate() {
            for &(dir, to) in &room.exits {
                assert_eq!(world.room(to).exit(dir.opposite()), Some(i as RoomIdx));
            }
        }
    }

    #[test]
    fn grid_is_quiet_and_has_a_few_stones() {
        let world = World::generated(10, 10);
        assert!(world.rooms.iter().all(|r| r.npcs.is_empty()));
        let stones = world.rooms.iter().filter(|r| !r.items.is_empty()).count();
        assert_eq!(stones, 15); // indexes 0, 7, …, 98
        assert!(world
            .rooms
            .iter()
            .flat_map(|r| &r.items)
            .all(|i| i == "stone"));
    }

    #[test]
    fn one_by_one_grid_is_a_single_room() {
        let world = World::generated(1, 1);
        assert_eq!(world.rooms.len(), 1);
        assert!(world.room(0).exits.is_empty());
    }

    #[test]
    fn a_grid_cut_into_zones_gives_each_band_of_rows_its_own() {
        let world = World::generated_in_zones(3, 10, 2);
        assert_eq!(grid_zone_ids(2), ["grid-0", "grid-1"]);
        let ids: Vec<&str> = world.zones.iter().map(|z| z.id.as_str()).collect();
        assert_eq!(ids, ["grid-0", "grid-1"]);
        for y in 0..10 {
            for x in 0..3 {
                let idx = world
                    .room_index(&format!("grid:{x}_{y}"))
                    .expect("room ids do not change");
                let want = if y < 5 { "grid-0" } else { "grid-1" };
                assert_eq!(world.room(idx).zone, want, "grid:{x}_{y}");
            }
        }
        // The bands stay joined: row 4 leads south into row 5.
        let border = world.room(world.room_index("grid:1_4").expect("room"));
        assert_eq!(
            border.exit(Dir::South),
            world.room_index("grid:1_5"),
            "the walk across the border"
        );
        // Uneven cuts: 7 rows in 3 bands of 3, 2 and 2 (y * 3 / 7).
        let uneven = World::generated_in_zones(1, 7, 3);
        let zones: Vec<&str> = (0..7).map(|y| uneven.room(y).zone.as_str()).collect();
        assert_eq!(
            zones,
            ["grid-0", "grid-0", "grid-0", "grid-1", "grid-1", "grid-2", "grid-2"]
        );
        assert_eq!(
            World::generated(2, 2).zones[0].id,
            "grid",
            "one zone keeps its name"
        );
    }

    #[test]
    fn hundred_by_hundred_builds() {
        let world = World::generated(100, 100);
        assert_eq!(world.rooms.len(), 10_000);
        let last = world.room_index("grid:99_99").expect("last room exists");
        assert_eq!(last, 9_999);
    }
}
