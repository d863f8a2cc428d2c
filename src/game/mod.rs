//! The game: commands, the rooms a shard owns, and how things look.

pub mod command;
pub mod owner;
pub mod render;
