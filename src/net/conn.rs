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
use std::future::{poll_fn, Future};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Instant;

use super::http;
use super::messages::process;
use super::per_ip::ConnectionPermit;
use super::routes::{http_phase, refuse};
use super::session_io::{poll_session, SessionEnd};
use crate::protocol::close::CloseReason;
use crate::shard::resume::{Attachment, Handover, Held};
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
///
/// Not itself `async`: the connection's future is its task's whole memory
/// for as long as the session lives, and an `async fn` that took `Accepted`
/// apart would keep room for the stream twice (the argument and the part).
pub fn serve(
    shard: ShardCell,
    scratch: Rc<RefCell<Scratch>>,
    accepted: Accepted,
) -> impl Future<Output = ()> {
    let Accepted {
        stream,
        peer_ip,
        at,
        permit,
    } = accepted;
    serve_stream(shard, scratch, stream, peer_ip, at, permit)
}

async fn serve_stream(
    shard: ShardCell,
    scratch: Rc<RefCell<Scratch>>,
    mut stream: TcpStream,
    peer_ip: IpAddr,
    at: Instant,
    permit: ConnectionPermit,
) {
    // The HTTP phase is boxed and dropped before the session runs, so its
    // buffers are not part of the session's long-lived future.
    let Some((slot, gen)) = Box::pin(http_phase(&shard, &mut stream, peer_ip, at)).await else {
        return;
    };
    run_session(
        &shard,
        &scratch,
        &mut stream,
        slot,
        gen,
        0,
        Box::new(permit),
    )
    .await;
}

/// Serves a connection handed to this shard for a resume (or, refused, as a
/// fresh connection): the session is open already; its bytes read after the
/// `resume` frame come first.
pub async fn serve_attached(
    shard: ShardCell,
    scratch: Rc<RefCell<Scratch>>,
    attachment: Attachment,
) {
    let Attachment {
        fd,
        slot,
        gen,
        epoch,
        mut leftover,
        held,
    } = attachment;
    // SAFETY: the fd is a connected TCP socket whose only owner was `fd`.
    let mut stream = unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) };
    let _ = stream.set_nodelay(true);
    if !leftover.is_empty() {
        let mut sh = shard.borrow_mut();
        if let Err(v) = process(&mut sh, slot, &mut leftover) {
            if let Some(s) = sh.sessions.by_slot(slot) {
                s.request_close(CloseReason {
                    code: v.code,
                    reason: v.reason,
                });
            }
        }
    }
    run_session(&shard, &scratch, &mut stream, slot, gen, epoch, held).await;
}

/// The session's life on this connection, and its end: closed, or handed
/// to the shard of the session a `resume` asked for. `held` (the
/// connection's place in its address's count) lives as long as the
/// connection, wherever it goes.
async fn run_session(
    shard: &ShardCell,
    scratch: &Rc<RefCell<Scratch>>,
    stream: &mut TcpStream,
    slot: u32,
    gen: u32,
    epoch: u32,
    held: Held,
) {
    let end = poll_fn(|cx| poll_session(cx, shard, scratch, stream, slot, gen, epoch)).await;
    match end {
        SessionEnd::Closed => shard.borrow_mut().close_session(slot, epoch),
        SessionEnd::HandOver(plan) => {
            let mut sh = shard.borrow_mut();
            let (peer_ip, leftover) = match sh.sessions.by_slot(slot) {
                Some(s) => (s.peer_ip, std::mem::take(&mut s.partial)),
                None => return,
            };
            // The socket lives on in the duplicate; this shard's copy and
            // the session it had here go.
            // SAFETY: dup of a descriptor this stream owns; the result is ours.
            let dup = unsafe { libc::dup(stream.as_raw_fd()) };
            sh.close_session(slot, epoch);
            let Some(target) = plan.target else {
                return;
            };
            if dup < 0 {
                tracing::warn!("resume: cannot hand the connection over (dup failed)");
                return;
            }
            // SAFETY: `dup` is a new descriptor nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(dup) };
            sh.hand_over(Handover {
                fd,
                peer_ip,
                leftover,
                target,
                credential: plan.credential,
                last_seq: plan.last_seq,
                held,
            });
            sh.drain_local();
        }
    }
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
