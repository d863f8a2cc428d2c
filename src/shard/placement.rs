//! Which shard of which host owns each room (DESIGN §1: every room has
//! exactly one owner). Every shard holds the same table, so any shard can
//! tell where a room lives without asking anyone.

use crate::config::Config;
use crate::protocol::addr::ShardAddr;
use crate::world::{RoomIdx, World};

/// The owner of every room: a stable hash of the room id over the shards of
/// the host that owns it.
pub struct Placement {
    owners: Vec<ShardAddr>,
}

impl Placement {
    /// Every room on host `host`, spread over its `shards` shards: a host
    /// that runs alone.
    pub fn single_host(world: &World, host: u16, shards: u16) -> Placement {
        let owners = world
            .rooms
            .iter()
            .map(|room| {
                let shard = (fnv1a(room.id.as_bytes()) % u64::from(shards.max(1))) as u16;
                ShardAddr::new(host, shard)
            })
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
        let local = Placement::single_host(world, me, shards);
        let owners = world
            .rooms
            .iter()
            .enumerate()
            .map(|(i, room)| match config.zone_owner(&room.zone) {
                Some(host) if host == me => Ok(local.owners[i]),
                Some(host) => Ok(ShardAddr::new(host, 0)),
                None => Err(format!(
                    "room {} is in zone {:?}, which no host of the cluster owns",
                    room.id, room.zone
                )),
            })
            .collect::<Result<Vec<_>, String>>()?;
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

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
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
}
