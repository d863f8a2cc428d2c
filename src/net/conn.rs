//! One connection's life: its HTTP request, then, for an accepted `/ws`
//! upgrade, its WebSocket session. The steps live beside this file:
//!
//! - `routes.rs` reads the request head and answers it (`/healthz`,
//!   `/metrics`, `/api/*`, 404, 405), handing `GET /ws` to
//! - `upgrade.rs`, which checks the upgrade, answers 101 and opens the session;
//! - `session_io.rs` then does the socket's I/O for the session's life: it
//!   writes queued frames (batched) and reads what comes;
//! - `messages.rs` turns the bytes read into whole messages (partial frames,
//!   fragments, control frames) and hands text to the shard.
//!
//! A connection comes `Accepted`, with its place in its address's count; one
//! whose address is at its cap is turned away here instead (`turn_away`).
//! The `Scratch` buffers here are shared by all of a shard's connections.

use glommio::net::TcpStream;
use std::cell::RefCell;
use std::future::poll_fn;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

use super::http;
use super::per_ip::ConnectionPermit;
use super::routes::{http_phase, refuse};
use super::session_io::poll_session;
use crate::shard::run::ShardCell;

/// A connection as the listener hands it over.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer_ip: IpAddr,
    /// When it was accepted: its login deadline runs from here.
    pub at: Instant,
    /// Its place in its address's count, held until the connection ends.
    pub permit: ConnectionPermit,
}

/// Buffers shared by every connection of a shard: they are used only inside
/// one synchronous poll, never across an await.
pub struct Scratch {
    pub(super) read: Vec<u8>,
    pub(super) write: Vec<u8>,
}

/// Bytes read per `recv`: many client frames at once when they are waiting.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Bytes gathered per `send` from a session's queue.
pub(super) const WRITE_BATCH_BYTES: usize = 64 * 1024;

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            read: vec![0; READ_CHUNK_BYTES],
            write: Vec::with_capacity(WRITE_BATCH_BYTES + 1024),
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

/// Serves one accepted connection to its end.
pub async fn serve(shard: ShardCell, scratch: Rc<RefCell<Scratch>>, accepted: Accepted) {
    let Accepted {
        mut stream,
        peer_ip,
        at,
        permit: _permit,
    } = accepted;
    // The HTTP phase is boxed and dropped before the session runs, so its
    // buffers are not part of the session's long-lived future.
    let Some((slot, gen)) = Box::pin(http_phase(&shard, &mut stream, peer_ip, at)).await else {
        return;
    };
    poll_fn(|cx| poll_session(cx, &shard, &scratch, &mut stream, slot, gen)).await;
    shard.borrow_mut().close_session(slot);
}

/// Answers a connection whose address holds `max` connections already:
/// 503 at once, before its request is read (a flood of them costs a write
/// each, not a head read each).
pub async fn turn_away(mut stream: TcpStream, max: usize) {
    let message = format!("this address has {max} connections open already; close one first");
    refuse(
        &mut stream,
        http::json_error(503, "too_many_connections", &message),
    )
    .await;
}
