//! mudshard: a thread-per-core multiplayer text-world server.
//!
//! The folder tree is the architecture: `net/` (HTTP and WebSocket on the
//! one port), `protocol/` (the JSON frames), `shard/` (a shard's state, its
//! messages and its runtime), `game/` (commands, owned rooms, rendering),
//! `world/` (zone files and generated worlds), `config.rs`, `metrics.rs`,
//! `server.rs` (a host: its shards and their listeners).

pub mod auth;
pub mod bridge;
pub mod check;
pub mod config;
pub mod game;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod server;
pub mod shard;
pub mod store;
pub mod world;
