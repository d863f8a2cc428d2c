//! The game: commands, bodies, the rooms a shard owns, and how things look.
//! It takes a parsed command and the state it owns and returns effects
//! (`effect.rs`); it imports nothing from `shard`, `net` or `store`. The
//! messages that cross hosts have their one wire form here (`wire.rs`).

pub mod body;
pub mod command;
pub mod commands;
pub mod effect;
pub mod owner;
pub mod render;
pub mod rooms;
#[cfg(test)]
pub(crate) mod testing;
pub mod wire;
