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
use std::future::Future;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::http;
use super::messages::process;
use super::per_ip::ConnectionPermit;
use super::readiness::Epoll;
use super::routes::{http_phase, refuse};
use super::session_io::{poll_session, SessionEnd};
use crate::protocol::close::CloseReason;
use crate::shard::resume::{Attachment, Handover, Held};
use crate::shard::run::ShardCell;
use crate::shard::session::reads;

/// A connection as the listener hands it over.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer_ip: IpAddr,
    /// When it was accepted: its login deadline runs from here.
    pub at: Instant,
    /// Its place in its address's count, held until the connection ends.
    pub permit: ConnectionPermit,
}

/// What every connection of a shard shares: buffers used only inside one
/// synchronous poll, never across an await, and the shard's `epoll`
/// instance quiet sessions park their reads on (`readiness.rs`; `None` when
/// `[runtime] park_reads_after_ms` is 0).
pub struct Scratch {
    pub(super) read: Vec<u8>,
    pub(super) write: Vec<u8>,
    pub(super) epoll: Option<Rc<Epoll>>,
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
            epoll: None,
        }
    }

    /// Scratch whose quiet sessions park their reads on `epoll`.
    pub fn with_epoll(epoll: Rc<Epoll>) -> Scratch {
        Scratch {
            epoll: Some(epoll),
            ..Scratch::new()
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

/// One connection's task, and the whole of its memory while it lives.
///
/// A hand-written future rather than an `async fn`, because an idle
/// session's connection is mostly this: an `async fn` keeps its arguments
/// (and each awaited callee's) for its whole life, beside whatever the
/// phase in progress needs. Here the HTTP phase is a boxed future that is
/// dropped, with its buffers, once the session starts; the session then
/// keeps only `Live`.
pub enum Connection {
    /// The HTTP request, its answer or upgrade (or, for a connection handed
    /// over for a resume, the step before it is set up); `None`: ended.
    Starting(Pin<Box<dyn Future<Output = Option<Live>>>>),
    /// A session served on this connection.
    Live(Live),
    Done,
}

/// What a connection keeps while its session lives.
pub struct Live {
    shard: ShardCell,
    scratch: Rc<RefCell<Scratch>>,
    stream: TcpStream,
    slot: u32,
    gen: u32,
    epoch: u32,
    /// The connection's place in its address's count: it lives as long as
    /// the connection, wherever it goes.
    held: Held,
}

/// Serves one accepted connection to its end.
pub fn serve(shard: ShardCell, scratch: Rc<RefCell<Scratch>>, accepted: Accepted) -> Connection {
    Connection::Starting(Box::pin(http_then_session(shard, scratch, accepted)))
}

async fn http_then_session(
    shard: ShardCell,
    scratch: Rc<RefCell<Scratch>>,
    accepted: Accepted,
) -> Option<Live> {
    let Accepted {
        mut stream,
        peer_ip,
        at,
        permit,
    } = accepted;
    let (slot, gen) = http_phase(&shard, &mut stream, peer_ip, at).await?;
    Some(Live::start(
        shard,
        scratch,
        stream,
        slot,
        gen,
        0,
        Box::new(permit),
    ))
}

/// Serves a connection handed to this shard for a resume (or, refused, as a
/// fresh connection): the session is open already; its bytes read after the
/// `resume` frame come first. The task may be started with the shard
/// borrowed (glommio may run a new task at once), so its first step only
/// yields.
pub fn serve_attached(
    shard: ShardCell,
    scratch: Rc<RefCell<Scratch>>,
    attachment: Attachment,
) -> Connection {
    Connection::Starting(Box::pin(async move {
        futures_lite::future::yield_now().await;
        Some(attach(shard, scratch, attachment))
    }))
}

fn attach(shard: ShardCell, scratch: Rc<RefCell<Scratch>>, attachment: Attachment) -> Live {
    let Attachment {
        fd,
        slot,
        gen,
        epoch,
        mut leftover,
        held,
    } = attachment;
    // SAFETY: the fd is a connected TCP socket whose only owner was `fd`.
    let stream = unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) };
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
    Live::start(shard, scratch, stream, slot, gen, epoch, held)
}

impl Future for Connection {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            match this {
                Connection::Starting(start) => match start.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(live)) => *this = Connection::Live(live),
                    Poll::Ready(None) => {
                        *this = Connection::Done;
                        return Poll::Ready(());
                    }
                },
                Connection::Live(live) => {
                    let end = match poll_session(
                        cx,
                        &live.shard,
                        &live.scratch,
                        &mut live.stream,
                        live.slot,
                        live.gen,
                        live.epoch,
                    ) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(end) => end,
                    };
                    if let Connection::Live(live) = std::mem::replace(this, Connection::Done) {
                        live.end(end);
                    }
                    return Poll::Ready(());
                }
                Connection::Done => return Poll::Ready(()),
            }
        }
    }
}

impl Live {
    /// The session in `slot` starts (or goes on) on `stream`.
    fn start(
        shard: ShardCell,
        scratch: Rc<RefCell<Scratch>>,
        stream: TcpStream,
        slot: u32,
        gen: u32,
        epoch: u32,
        held: Held,
    ) -> Live {
        // Reads on a new connection start on the ring, whatever the last one
        // did; the write pass writes to this socket from now on.
        if let Some(session) = shard.borrow_mut().sessions.get_mut(slot, gen) {
            session.reads &= reads::WRITE_LISTED;
            if session.conn_epoch == epoch {
                session.write_fd = stream.as_raw_fd();
                session.slot = slot;
            }
        }
        Live {
            shard,
            scratch,
            stream,
            slot,
            gen,
            epoch,
            held,
        }
    }

    /// The session's time on this connection is over: it is closed, or the
    /// connection goes to the shard of the session a `resume` asked for.
    fn end(self, end: SessionEnd) {
        let Live {
            shard,
            scratch,
            stream,
            slot,
            gen,
            epoch,
            held,
        } = self;
        // Nothing more is written to this socket by the write pass (a resume
        // that gave the session another connection has already said so).
        if let Some(session) = shard.borrow_mut().sessions.get_mut(slot, gen) {
            if session.conn_epoch == epoch {
                session.write_fd = -1;
            }
        }
        match end {
            SessionEnd::Closed => shard.borrow_mut().close_session(slot, epoch),
            SessionEnd::Superseded => {
                // One try, without waiting: the socket's buffer has room for
                // a few bytes unless the peer stopped reading, and then it
                // learns by the connection's end instead.
                let mut frame = Vec::with_capacity(40);
                let reason = crate::protocol::close::RESUMED_ELSEWHERE;
                super::ws::put_close(&mut frame, reason.code, reason.reason);
                // SAFETY: the stream owns this open descriptor; the slice is valid.
                unsafe {
                    libc::send(
                        stream.as_raw_fd(),
                        frame.as_ptr().cast(),
                        frame.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
                shard.borrow_mut().close_session(slot, epoch);
            }
            SessionEnd::HandOver(plan) => {
                let mut sh = shard.borrow_mut();
                let (peer_ip, leftover) = match sh.sessions.by_slot(slot) {
                    Some(s) => (s.peer_ip, std::mem::take(&mut s.partial)),
                    None => return,
                };
                // The socket lives on in the duplicate; this shard's copy and
                // the session it had here go, and so does its registration
                // with this shard's `epoll` instance, if its reads parked.
                if let Some(epoll) = &scratch.borrow().epoll {
                    epoll.remove(stream.as_raw_fd());
                }
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

/// Bytes of a connection's future, the whole of an idle session's task
/// beside glommio's task header (about 48 bytes): together within mimalloc's
/// 224-byte block. The `async fn` it replaced was 480 (a 640-byte block).
pub const CONNECTION_BYTES_MAX: usize = 176;

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what `f` returns, without calling it.
    fn returned<A, B, C, R>(_: impl FnOnce(A, B, C) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    #[test]
    fn an_idle_connections_task_stays_within_its_bound() {
        let size = std::mem::size_of::<Connection>();
        assert!(
            size <= CONNECTION_BYTES_MAX,
            "a connection's future is {size} bytes, over {CONNECTION_BYTES_MAX}: \
             every idle session pays it (README, \"Idle memory\")"
        );
        // Both ways in are that future and nothing around it.
        assert_eq!(returned(serve), size);
        assert_eq!(returned(serve_attached), size);
    }
}
