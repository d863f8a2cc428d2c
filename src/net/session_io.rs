//! A session's socket I/O: the poll loop of its task, where queued frames
//! are written and client bytes are read.
//!
//! A session's task does all I/O of its socket. Reads go into the shard's
//! scratch buffer (so an idle session holds no buffer; a quiet one parks
//! its reads on the shard's `epoll` instance, `readiness.rs`); frames queued for the
//! session by anyone on the shard wake the task, which writes them all in one
//! `send` (so a burst of events costs one syscall per connection, not per frame).
//! `encode_out` is where one queued frame becomes wire bytes; what is read
//! goes to `messages.rs`.

use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::conn::{Scratch, WRITE_BATCH_BYTES};
use super::messages::process;
use super::readiness::Epoll;
use super::ws;
use crate::metrics::stats::ShardStats;
use crate::protocol::close::CloseReason;
use crate::protocol::encode::{put_seq_prefix, seq_prefix_len, PLAIN_PREFIX};
use crate::shard::run::ShardCell;
use crate::shard::session::{reads, writes, Out, Phase, ResumePlan, Session, PING_PAYLOAD_BYTES};
use crate::shard::Shard;

/// Read/write rounds in one poll before the task yields to its neighbours.
const ROUNDS_PER_POLL_MAX: usize = 8;

/// How a session's time on a connection ended.
pub(super) enum SessionEnd {
    /// The connection closed (or the session ended, or a resume gave the
    /// session a newer connection).
    Closed,
    /// A resume gave the session a newer connection while this one was
    /// live and between frames: say so with a close frame.
    Superseded,
    /// A `resume` on this connection: hand it to its session's shard.
    HandOver(ResumePlan),
}

/// Drives one session: write what is queued, read what has come, until the
/// socket would block both ways or the session ends (`Ready`). What is
/// queued for the session meanwhile (its replies) this poll writes itself,
/// so it is not listed for the write pass.
pub(super) fn poll_session(
    cx: &mut Context<'_>,
    shard: &ShardCell,
    scratch: &Rc<RefCell<Scratch>>,
    stream: &mut TcpStream,
    slot: u32,
    gen: u32,
    epoch: u32,
) -> Poll<SessionEnd> {
    writes::set_polling(Some(slot));
    let polled = poll_session_inner(cx, shard, scratch, stream, slot, gen, epoch);
    writes::set_polling(None);
    polled
}

fn poll_session_inner(
    cx: &mut Context<'_>,
    shard: &ShardCell,
    scratch: &Rc<RefCell<Scratch>>,
    stream: &mut TcpStream,
    slot: u32,
    gen: u32,
    epoch: u32,
) -> Poll<SessionEnd> {
    let mut sh = shard.borrow_mut();
    let sh = &mut *sh;
    let mut scratch = scratch.borrow_mut();
    let scratch = &mut *scratch;
    match sh.sessions.get_mut(slot, gen) {
        Some(session) if session.conn_epoch != epoch => {
            return Poll::Ready(if sh.superseded.remove(&(slot, epoch)) {
                SessionEnd::Superseded
            } else {
                SessionEnd::Closed
            })
        }
        Some(session) => {
            if !session
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                session.waker = Some(cx.waker().clone());
            }
        }
        None => return Poll::Ready(SessionEnd::Closed),
    }
    for _ in 0..ROUNDS_PER_POLL_MAX {
        let blocked = match flush(cx, sh, stream, &mut scratch.write, slot) {
            Ok(blocked) => blocked,
            Err(()) => return Poll::Ready(SessionEnd::Closed),
        };
        if let Some(reason) = sh.sessions.by_slot(slot).and_then(|s| s.close) {
            return finish_close(cx, sh, stream, &mut scratch.write, slot, reason)
                .map(|()| SessionEnd::Closed);
        }
        if let Some(plan) = sh.take_handover(slot) {
            return Poll::Ready(SessionEnd::HandOver(plan));
        }
        if let Some(session) = sh.sessions.by_slot(slot) {
            if session.resuming.is_some() {
                // Waiting for the directory: read nothing more until it answers.
                return Poll::Pending;
            }
            if session.reads & reads::ENDED != 0 {
                // The client's stream ended with commands unanswered: close
                // once they are answered and written (the sweep bounds the wait).
                let drained = !blocked && session.out.is_empty() && session.unsent.is_empty();
                return if session.abort || (drained && !awaits_answers(session)) {
                    Poll::Ready(SessionEnd::Closed)
                } else {
                    Poll::Pending
                };
            }
        }
        let read = if reads_parked(sh, scratch.epoll.as_deref(), stream, slot, gen) {
            Poll::Pending
        } else {
            Pin::new(&mut *stream).poll_read(cx, &mut scratch.read)
        };
        match read {
            Poll::Ready(Ok(0)) => {
                // The end of the client's stream. What it sent before is
                // answered first, wherever in the host it is being answered.
                let now = sh.now_ms();
                match sh.sessions.by_slot(slot) {
                    Some(s) if s.phase == Phase::Playing && awaits_answers(s) => {
                        s.reads |= reads::ENDED;
                        s.heard_ms = now;
                    }
                    _ => return Poll::Ready(SessionEnd::Closed),
                }
            }
            Poll::Ready(Err(_)) => return Poll::Ready(SessionEnd::Closed),
            Poll::Ready(Ok(n)) => {
                sh.counters.stats.bytes_in += n as u64;
                if let Err(v) = process(sh, slot, &mut scratch.read[..n]) {
                    if let Some(s) = sh.sessions.by_slot(slot) {
                        s.request_close(CloseReason {
                            code: v.code,
                            reason: v.reason,
                        });
                    }
                }
            }
            Poll::Pending => {
                let queued = sh.sessions.by_slot(slot).is_some_and(|s| !s.out.is_empty());
                if blocked || !queued {
                    return Poll::Pending;
                }
            }
        }
    }
    // Busy connection: let the others on this shard have a turn.
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// A command of the session is being answered or waits its turn.
fn awaits_answers(session: &Session) -> bool {
    session.busy_since.is_some() || !session.pending.is_empty()
}

/// Whether the session's reads are parked (`readiness.rs`): parks them if
/// the sweep asked, and unparks them if the shard's `epoll` instance woke
/// them. A socket that cannot be armed keeps reading through the ring.
fn reads_parked(
    sh: &mut Shard,
    epoll: Option<&Epoll>,
    stream: &mut TcpStream,
    slot: u32,
    gen: u32,
) -> bool {
    let Some(epoll) = epoll else {
        return false;
    };
    let Some(session) = sh.sessions.get_mut(slot, gen) else {
        return false;
    };
    if session.reads & reads::WOKEN != 0 {
        session.reads &= !(reads::WOKEN | reads::PARKED | reads::PARK_DUE);
        return false;
    }
    if session.reads & reads::PARKED != 0 {
        return true;
    }
    if session.reads & reads::PARK_DUE == 0 {
        return false;
    }
    session.reads &= !reads::PARK_DUE;
    let registered = session.reads & reads::REGISTERED != 0;
    if let Err(e) = epoll.arm(stream.as_raw_fd(), slot, gen, registered) {
        tracing::debug!(shard = sh.id, error = %e, "cannot park a session's reads");
        return false;
    }
    // Armed first: bytes that came in between are reported at once.
    stream.drop_read_poll();
    session.reads |= reads::PARKED | reads::REGISTERED;
    sh.counters.stats.reads_parked += 1;
    true
}

/// Writes what is left and then the close frame. A frame half-written
/// must be completed first, or the close frame would land inside it.
fn finish_close(
    cx: &mut Context<'_>,
    sh: &mut Shard,
    stream: &mut TcpStream,
    wbuf: &mut Vec<u8>,
    slot: u32,
    reason: CloseReason,
) -> Poll<()> {
    let Some(session) = sh.sessions.by_slot(slot) else {
        return Poll::Ready(());
    };
    if session.abort {
        return Poll::Ready(());
    }
    if !session.close_queued {
        wbuf.clear();
        while let Some(out) = session.out.pop_front() {
            encode_out(wbuf, &out);
            session.written(out);
        }
        session.out_bytes = 0;
        ws::put_close(wbuf, reason.code, reason.reason);
        session.unsent.extend_from_slice(wbuf);
        session.close_queued = true;
    }
    match flush(cx, sh, stream, wbuf, slot) {
        Ok(true) => Poll::Pending,
        Ok(false) | Err(()) => Poll::Ready(()),
    }
}

/// Writes the session's queued frames. `Ok(true)`: the socket is full and
/// the task will be woken when it drains.
fn flush(
    cx: &mut Context<'_>,
    sh: &mut Shard,
    stream: &mut TcpStream,
    wbuf: &mut Vec<u8>,
    slot: u32,
) -> Result<bool, ()> {
    let counters = &mut sh.counters.stats;
    let Some(session) = sh.sessions.by_slot(slot) else {
        return Err(());
    };
    loop {
        if !session.unsent.is_empty() {
            match Pin::new(&mut *stream).poll_write(cx, &session.unsent) {
                Poll::Ready(Ok(n)) => {
                    counters.writes += 1;
                    counters.bytes_out += n as u64;
                    session.unsent.drain(..n);
                    if !session.unsent.is_empty() {
                        continue;
                    }
                }
                Poll::Ready(Err(_)) => return Err(()),
                Poll::Pending => return Ok(true),
            }
        }
        if session.out.is_empty() {
            if session.unsent.capacity() > 0 {
                session.unsent = Vec::new();
            }
            return Ok(false);
        }
        fill_batch(session, wbuf, counters);
        match Pin::new(&mut *stream).poll_write(cx, wbuf) {
            Poll::Ready(Ok(n)) => {
                counters.writes += 1;
                counters.bytes_out += n as u64;
                if n < wbuf.len() {
                    session.unsent.extend_from_slice(&wbuf[n..]);
                }
            }
            Poll::Ready(Err(_)) => return Err(()),
            Poll::Pending => {
                session.unsent.extend_from_slice(wbuf);
                return Ok(true);
            }
        }
    }
}

/// Moves the session's queued frames into `wbuf`, a batch's worth at most,
/// each kept for a resume once taken.
fn fill_batch(session: &mut Session, wbuf: &mut Vec<u8>, counters: &mut ShardStats) {
    wbuf.clear();
    while wbuf.len() < WRITE_BATCH_BYTES {
        let Some(out) = session.out.pop_front() else {
            break;
        };
        session.out_bytes = session.out_bytes.saturating_sub(encode_out(wbuf, &out));
        // Kept once written: a resume replays from here.
        session.written(out);
        counters.frames_out += 1;
    }
    if session.out.is_empty() {
        session.out_bytes = 0;
        // A queue that grew for a burst gives its memory back when drained.
        if session.out.capacity() > 64 {
            session.out = Default::default();
        }
    }
}

/// The shard's write pass: one task that, each time sessions were listed
/// for writing (`writes`), writes each one's queued frames straight to its
/// socket, one `send` per session for all the frames queued in the turn.
/// A session's task would do the same write, but waking and polling
/// thousands of tasks a second costs more than the write itself on a
/// chat shard. Whatever the socket does not take at once goes to the
/// session's `unsent` and its task, which waits for the socket to drain
/// as before; so does a session whose task has something to see first
/// (`Session::writes_directly`).
pub(super) async fn write_pass(shard: ShardCell) {
    let mut listed = Vec::new();
    let mut wbuf = Vec::with_capacity(WRITE_BATCH_BYTES + 1024);
    loop {
        futures_lite::future::poll_fn(|cx| writes::poll_take(cx, &mut listed)).await;
        let mut sh = shard.borrow_mut();
        let sh = &mut *sh;
        for &slot in &listed {
            if let Some(session) = sh.sessions.by_slot(slot) {
                write_listed(session, &mut wbuf, &mut sh.counters.stats);
            }
        }
        listed.clear();
    }
}

/// Writes one listed session's queue to its socket, or leaves it to its task.
fn write_listed(session: &mut Session, wbuf: &mut Vec<u8>, counters: &mut ShardStats) {
    session.reads &= !reads::WRITE_LISTED;
    if session.out.is_empty() {
        // Its task wrote it first.
        return;
    }
    if !session.writes_directly() {
        session.wake();
        return;
    }
    while !session.out.is_empty() {
        fill_batch(session, wbuf, counters);
        match send_now(session.write_fd, wbuf) {
            Ok(n) => {
                counters.writes += 1;
                counters.writes_direct += 1;
                counters.bytes_out += n as u64;
                if n < wbuf.len() {
                    session.unsent.extend_from_slice(&wbuf[n..]);
                    session.wake();
                    return;
                }
            }
            Err(_) => {
                // Full (or failing): the task writes it when the socket
                // drains, or ends the connection on the error.
                session.unsent.extend_from_slice(wbuf);
                session.wake();
                return;
            }
        }
    }
}

/// One non-blocking `send` of `buf` to `fd` (through `syscall(2)`, as
/// glommio's sends are: glommio patch 10).
fn send_now(fd: i32, buf: &[u8]) -> std::io::Result<usize> {
    let to = std::ptr::null::<libc::sockaddr>();
    // SAFETY: `buf` is a live slice; `fd` is the session's socket, open
    // while `write_fd` names it (cleared before the connection ends).
    let n = unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            buf.as_ptr(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            to,
            0 as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Appends one queued frame to `wbuf`; returns what it was charged in the queue.
pub fn encode_out(wbuf: &mut Vec<u8>, out: &Out) -> usize {
    use crate::shard::session::FRAME_OVERHEAD_BYTES;
    match out {
        Out::Seq(seq, body) | Out::Replayed(seq, body) => {
            ws::put_header(wbuf, ws::opcode::TEXT, seq_prefix_len(*seq) + body.len());
            put_seq_prefix(wbuf, *seq);
            wbuf.extend_from_slice(body);
            FRAME_OVERHEAD_BYTES + body.len()
        }
        Out::Plain(body) => {
            ws::put_header(wbuf, ws::opcode::TEXT, PLAIN_PREFIX.len() + body.len());
            wbuf.extend_from_slice(PLAIN_PREFIX);
            wbuf.extend_from_slice(body);
            FRAME_OVERHEAD_BYTES + body.len()
        }
        Out::Ping(seq) => {
            ws::put_header(wbuf, ws::opcode::PING, PING_PAYLOAD_BYTES);
            wbuf.extend_from_slice(&seq.to_be_bytes());
            FRAME_OVERHEAD_BYTES + PING_PAYLOAD_BYTES
        }
        Out::Pong(payload) => {
            ws::put_header(wbuf, ws::opcode::PONG, payload.len());
            wbuf.extend_from_slice(payload);
            FRAME_OVERHEAD_BYTES + payload.len()
        }
    }
}
