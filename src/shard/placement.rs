//! Which shard of which host owns each room (DESIGN §1: every room has
//! exactly one owner). Every shard holds the same table, so any shard can
//! tell where a room lives without asking anyone.
//!
//! Rooms are placed by region, not one by one: a host's rooms are cut into
//! regions of neighbouring rooms (grown breadth-first along exits, never
//! across a zone's edge, at most [`REGION_ROOMS`] each), and the regions are
//! dealt to the shards in turn. A player who walks stays on one owner shard
//! until they leave the region, so a move seldom carries the body to another
//! shard; the many regions still spread the rooms, and the players in
//! them, evenly over the shards. (Placed room by room, by a hash of the id,
//! half of all moves on two shards went to another owner.) The table is a
//! function of the world alone, so every shard and every host computes the
//! same one.

use crate::config::Config;
use crate::protocol::addr::ShardAddr;
use crate::world::{RoomIdx, World};
use std::collections::VecDeque;

/// The most rooms in one region.
pub const REGION_ROOMS: usize = 64;

/// The fewest regions each shard gets, where the host has rooms enough: a
/// small world is cut finer, so that every shard still owns some of it.
const REGIONS_PER_SHARD_MIN: usize = 8;

/// The owner of every room: the shard its region was dealt to, on the host
/// that owns its zone.
pub struct Placement {
    owners: Vec<ShardAddr>,
}

impl Placement {
    /// Every room on host `host`, spread over its `shards` shards: a host
    /// that runs alone.
    pub fn single_host(world: &World, host: u16, shards: u16) -> Placement {
        let owners = regions(world, shards, |_| true)
            .into_iter()
            .map(|shard| ShardAddr::new(host, shard))
            .collect();
        Placement { owners }
    }

    /// Every room of the world on the host that owns its zone (the
    /// `[cluster]` table, checked at start-up to own each zone once); this
    /// host's rooms spread over its `shards` shards. Another host's rooms
    /// are placed on its shard 0 here: that host routes an arrival by the
    /// room, with its own placement.
    pub fn for_host(world: &World, config: &Config, shards: u16) -> Result<Placement, String> {
        let me = config.host_index();
        let hosts = world
            .rooms
            .iter()
            .map(|room| {
                config.zone_owner(&room.zone).ok_or_else(|| {
                    format!(
                        "room {} is in zone {:?}, which no host of the cluster owns",
                        room.id, room.zone
                    )
                })
            })
            .collect::<Result<Vec<u16>, String>>()?;
        let local = regions(world, shards, |room| hosts[room as usize] == me);
        let owners = hosts
            .iter()
            .zip(local)
            .map(|(&host, shard)| {
                if host == me {
                    ShardAddr::new(host, shard)
                } else {
                    ShardAddr::new(host, 0)
                }
            })
            .collect();
        Ok(Placement { owners })
    }

    /// The owner of `room`.
    pub fn owner(&self, room: RoomIdx) -> ShardAddr {
        self.owners
            .get(room as usize)
            .copied()
            .unwrap_or(ShardAddr::new(0, 0))
    }
}

/// The shard of every room `mine` accepts (0 for the others): regions grown
/// breadth-first from the lowest unplaced room, within its zone, dealt to
/// the shards in turn.
fn regions(world: &World, shards: u16, mine: impl Fn(RoomIdx) -> bool) -> Vec<u16> {
    let rooms = world.rooms.len();
    let mut shard_of = vec![0u16; rooms];
    let shards = usize::from(shards.max(1));
    if shards == 1 {
        return shard_of;
    }
    let count = (0..rooms as RoomIdx).filter(|&r| mine(r)).count();
    let size = (count / (shards * REGIONS_PER_SHARD_MIN)).clamp(1, REGION_ROOMS);
    let mut placed = vec![false; rooms];
    let mut queue = VecDeque::new();
    let mut region = 0usize;
    for seed in 0..rooms {
        if placed[seed] || !mine(seed as RoomIdx) {
            continue;
        }
        let shard = (region % shards) as u16;
        region += 1;
        let zone = &world.rooms[seed].zone;
        let mut taken = 0;
        placed[seed] = true;
        queue.clear();
        queue.push_back(seed);
        while let Some(at) = queue.pop_front() {
            shard_of[at] = shard;
            taken += 1;
            if taken == size {
                // What is queued but not taken goes back for a later region.
                for left in queue.drain(..) {
                    placed[left] = false;
                }
                break;
            }
            for &(_, next) in &world.rooms[at].exits {
                let next = next as usize;
                if next < rooms
                    && !placed[next]
                    && mine(next as RoomIdx)
                    && world.rooms[next].zone == *zone
                {
                    placed[next] = true;
                    queue.push_back(next);
                }
            }
        }
    }
    shard_of
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_spread_over_every_shard_of_their_host_stably() {
        let world = World::generated(20, 20);
        let placement = Placement::single_host(&world, 0, 4);
        let again = Placement::single_host(&world, 0, 4);
        let mut used = std::collections::HashSet::new();
        for room in 0..world.rooms.len() as RoomIdx {
            let owner = placement.owner(room);
            assert_eq!(owner, again.owner(room));
            assert_eq!(owner.host, 0);
            assert!(owner.shard < 4);
            used.insert(owner.shard);
        }
        assert_eq!(used.len(), 4);
    }

    /// The share of exits that lead to a room of another shard, and the
    /// rooms of each shard.
    fn cut(world: &World, placement: &Placement, shards: u16) -> (f64, Vec<usize>) {
        let mut exits = 0;
        let mut crossing = 0;
        let mut rooms = vec![0; usize::from(shards)];
        for (i, room) in world.rooms.iter().enumerate() {
            let here = placement.owner(i as RoomIdx);
            rooms[usize::from(here.shard)] += 1;
            for &(_, next) in &room.exits {
                exits += 1;
                crossing += usize::from(placement.owner(next) != here);
            }
        }
        (crossing as f64 / exits as f64, rooms)
    }

    #[test]
    fn regions_keep_most_moves_on_one_shard_and_share_the_rooms_evenly() {
        let world = World::generated(100, 100);
        for shards in [2u16, 3, 8] {
            let placement = Placement::single_host(&world, 0, shards);
            let (crossing, rooms) = cut(&world, &placement, shards);
            eprintln!("{shards} shards: {crossing:.3} of exits cross, rooms {rooms:?}");
            // Room by room, (shards - 1) / shards of all exits would cross.
            assert!(crossing < 0.2, "{shards} shards: {crossing} of exits cross");
            let even = world.rooms.len() / usize::from(shards);
            for n in rooms {
                assert!(
                    n.abs_diff(even) * 10 < even,
                    "{shards} shards: {n} rooms, not ~{even}"
                );
            }
        }
    }

    #[test]
    fn a_small_world_is_cut_finer_so_that_every_shard_owns_some_of_it() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shards/world");
        let zones = crate::world::loader::zone_names(&dir).expect("the world's zones");
        let world = World::load(&dir, &zones, "town:square").expect("the world");
        let placement = Placement::single_host(&world, 0, 2);
        let (crossing, rooms) = cut(&world, &placement, 2);
        eprintln!("the world: {crossing:.3} of exits cross, rooms {rooms:?}");
        assert!(rooms.iter().all(|&n| n > 0), "{rooms:?}");
        // A grid of 12 by 12 still has an owner boundary along its first row.
        let grid = World::generated(12, 12);
        let placement = Placement::single_host(&grid, 0, 2);
        let row: Vec<u16> = (0..12).map(|x| placement.owner(x).shard).collect();
        assert!(row.windows(2).any(|w| w[0] != w[1]), "{row:?}");
    }
}
