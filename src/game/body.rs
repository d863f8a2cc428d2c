//! A player's body: what stands in a room and moves with the player from
//! one room owner to the next (another shard's, or another host's).

use crate::protocol::addr::SessionId;
use crate::world::Dir;

/// Everything that moves with a player from room owner to room owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The session whose player this is: where replies and events go.
    pub sid: SessionId,
    pub name: Box<str>,
    pub inventory: Vec<String>,
    /// A registered player: the owner persists every change of room or
    /// inventory (DESIGN §6). Guests are never stored.
    pub account: bool,
}

/// How a body came into a room: by walking (from a direction), by teleport,
/// or by logging in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    Walk(Dir),
    Teleport,
    Login,
}
