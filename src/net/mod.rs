//! The network edge: the listener of each shard, HTTP on the one port (with
//! the JSON account API), and WebSocket connections.
//!
//! - `listener.rs`: a shard's accept loop; each connection gets a task.
//! - `per_ip.rs`: the host-wide count of connections per client address.
//! - `conn.rs`: one connection's life (HTTP, then its session) and the
//!   scratch buffers its shard lends it.
//! - `routes.rs`: the request head and the route table of the one port.
//! - `http.rs`: parsing a request head, and the responses the server gives.
//! - `api.rs`: `POST /api/register` and `/api/login`.
//! - `client/`: the browser client served at `GET /` (HTML, script and
//!   style, embedded in the binary).
//! - `upgrade.rs`: the WebSocket upgrade checks and handshake; opens the session.
//! - `session_io.rs`: a session's socket loop: batched writes of queued
//!   frames (where a frame gets written), reads, the closing handshake.
//! - `messages.rs`: bytes read → whole messages (where fragments are
//!   reassembled), control frames, UTF-8, text handed to the shard.
//! - `ws.rs`: the WebSocket frame layer (header parse, unmask, server headers).

pub mod api;
pub mod client;
pub mod conn;
pub mod http;
pub mod listener;
pub mod messages;
pub mod per_ip;
pub mod readiness;
pub mod routes;
pub mod session_io;
pub mod upgrade;
pub mod ws;
