//! The game: commands, bodies, the rooms a shard owns, and how things look.

pub mod body;
pub mod command;
pub mod owner;
pub mod render;
pub mod wire;
