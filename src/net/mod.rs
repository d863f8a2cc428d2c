//! The network edge: the listener of each shard, HTTP on the one port (with
//! the JSON account API), and WebSocket connections.

pub mod api;
pub mod conn;
pub mod http;
pub mod listener;
pub mod ws;
