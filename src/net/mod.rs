//! The network edge: the listener of each shard, HTTP on the one port, and
//! WebSocket connections.

pub mod conn;
pub mod http;
pub mod ws;
