//! Helpers for the game's unit tests: an owner of a small generated world,
//! and bodies arriving in it.

use std::sync::Arc;

use super::body::{Arrival, Body};
use super::effect::Effects;
use super::owner::Owner;
use crate::config::{GameConfig, Limits};
use crate::protocol::addr::{SessionId, ShardAddr};
use crate::world::{RoomIdx, World};

/// The owner on shard 0 of host 0 of a 3×3 generated world, and its start room.
pub(crate) fn owner() -> (Owner, RoomIdx) {
    let world = Arc::new(World::generated(3, 3));
    let room = world.start;
    let game = GameConfig {
        guests: true,
        goto_everyone: true,
        ambient_interval_ms: 0,
    };
    let me = ShardAddr::new(0, 0);
    let owner = Owner::new(me, world, Limits::default(), game, Arc::default());
    (owner, room)
}

/// A body named `name`, connected at `at` in `slot`, logs in to `room`.
pub(crate) fn enter_named(
    owner: &mut Owner,
    room: RoomIdx,
    at: ShardAddr,
    slot: u32,
    name: &str,
) -> SessionId {
    arrive_named(owner, &mut Effects::new(), room, at, slot, name)
}

/// [`enter_named`], leaving the arrival's effects in `fx`.
pub(crate) fn arrive_named(
    owner: &mut Owner,
    fx: &mut Effects,
    room: RoomIdx,
    at: ShardAddr,
    slot: u32,
    name: &str,
) -> SessionId {
    let sid = SessionId::new(at, slot, 1);
    let body = Body {
        sid,
        name: name.into(),
        inventory: Vec::new(),
        account: false,
    };
    owner.arrive(fx, body, room, Arrival::Login, None);
    sid
}
