//! Checks of the world players actually see: `shards/world/*.toml`.
//!
//! The loader tests prove the format; these prove the content is playable —
//! no dead ends by accident, no unreachable rooms, NPCs with something to say.

use std::collections::VecDeque;
use std::path::PathBuf;

use super::loader::zone_names;
use super::{Dir, RoomIdx, World};

const START: &str = "town:square";

/// Exits meant to be one-way, as `(from, direction)`. None yet: add here, with
/// a reason, before writing one, so that a forgotten return exit stays a bug.
const ONE_WAY_EXITS: [(&str, Dir); 0] = [];

fn world_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shards/world")
}

fn default_world() -> World {
    let dir = world_dir();
    let zones = zone_names(&dir).unwrap_or_else(|e| panic!("{e}"));
    World::load(&dir, &zones, START).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn default_world_loads_all_five_zones() {
    let world = default_world();
    let zones: Vec<&str> = world.zones.iter().map(|z| z.id.as_str()).collect();
    assert_eq!(zones, ["caves", "forest", "river", "tower", "town"]);
    assert!(
        (30..=45).contains(&world.rooms.len()),
        "{} rooms",
        world.rooms.len()
    );
    assert_eq!(world.room(world.start).id, START);
    for zone in &world.zones {
        let rooms = world.rooms.iter().filter(|r| r.zone == zone.id).count();
        assert!(rooms >= 5, "zone {} has only {rooms} rooms", zone.id);
    }
}

#[test]
fn default_world_exits_are_two_way() {
    let world = default_world();
    for (i, room) in world.rooms.iter().enumerate() {
        for &(dir, to) in &room.exits {
            if ONE_WAY_EXITS.contains(&(room.id.as_str(), dir)) {
                continue;
            }
            let back = world.room(to).exit(dir.opposite());
            assert_eq!(
                back,
                Some(i as RoomIdx),
                "{} goes {} to {}, which has no {} exit back",
                room.id,
                dir.name(),
                world.room(to).id,
                dir.opposite().name()
            );
        }
    }
}

#[test]
fn default_world_rooms_are_all_reachable_from_the_start() {
    let world = default_world();
    let mut seen = vec![false; world.rooms.len()];
    let mut queue = VecDeque::from([world.start]);
    seen[world.start as usize] = true;
    while let Some(idx) = queue.pop_front() {
        for &(_, to) in &world.room(idx).exits {
            if !seen[to as usize] {
                seen[to as usize] = true;
                queue.push_back(to);
            }
        }
    }
    let unreachable: Vec<&str> = world
        .rooms
        .iter()
        .zip(&seen)
        .filter(|(_, &seen)| !seen)
        .map(|(room, _)| room.id.as_str())
        .collect();
    assert!(unreachable.is_empty(), "unreachable: {unreachable:?}");
}

#[test]
fn default_world_has_npcs_with_things_to_say() {
    let world = default_world();
    let npcs: Vec<_> = world.rooms.iter().flat_map(|r| &r.npcs).collect();
    assert!((6..=10).contains(&npcs.len()), "{} NPCs", npcs.len());
    for npc in npcs {
        assert!(
            (3..=5).contains(&npc.ambient.len()),
            "{} has {} ambient lines",
            npc.name,
            npc.ambient.len()
        );
        assert!(!npc.description.is_empty());
    }
}

#[test]
fn default_world_rooms_are_described_and_have_things_to_find() {
    let world = default_world();
    for room in &world.rooms {
        let sentences = room.description.matches(['.', '!', '?']).count();
        assert!(sentences >= 2, "{} is described too briefly", room.id);
        assert!(!room.exits.is_empty(), "{} has no way out", room.id);
    }
    let items = world.rooms.iter().map(|r| r.items.len()).sum::<usize>();
    assert!(items >= 20, "only {items} items");
    assert!(
        !world.room(world.start).npcs.is_empty(),
        "the start room greets"
    );
}
