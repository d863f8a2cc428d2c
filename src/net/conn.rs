//! One connection: its HTTP request, then, for `/ws`, its WebSocket session.
//!
//! A session's task does all I/O of its socket. Reads go into the shard's
//! scratch buffer (so an idle session holds no buffer); frames queued for the
//! session by anyone on the shard wake the task, which writes them all in one
//! `send` (so a burst of events costs one syscall per connection, not per frame).

use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use glommio::timer::Timer;
use std::cell::RefCell;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::api;
use super::http::{self, HeadError, Request};
use super::ws::{self, Kind};
use crate::metrics::stats::ShardStats;
use crate::metrics::HostFacts;
use crate::protocol::close::{self, CloseReason};
use crate::protocol::encode::{put_seq_prefix, seq_prefix_len, PLAIN_PREFIX};
use crate::shard::session::Out;
use crate::shard::Shard;

pub use crate::shard::run::ShardCell;

/// Buffers shared by every connection of a shard: they are used only inside
/// one synchronous poll, never across an await.
pub struct Scratch {
    read: Vec<u8>,
    write: Vec<u8>,
}

/// Bytes read per `recv`: many client frames at once when they are waiting.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Bytes gathered per `send` from a session's queue.
const WRITE_BATCH_BYTES: usize = 64 * 1024;
/// Read/write rounds in one poll before the task yields to its neighbours.
const ROUNDS_PER_POLL_MAX: usize = 8;

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
pub async fn serve(shard: ShardCell, scratch: Rc<RefCell<Scratch>>, mut stream: TcpStream) {
    // The HTTP phase is boxed and dropped before the session runs, so its
    // buffers are not part of the session's long-lived future.
    let Some((slot, gen)) = Box::pin(http_phase(&shard, &mut stream)).await else {
        return;
    };
    poll_fn(|cx| poll_session(cx, &shard, &scratch, &mut stream, slot, gen)).await;
    shard.borrow_mut().close_session(slot);
}

/// Reads the request and answers it; for an accepted `/ws` upgrade returns
/// the new session's slot and generation.
async fn http_phase(shard: &ShardCell, stream: &mut TcpStream) -> Option<(u32, u32)> {
    let peer_ip = stream
        .peer_addr()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let login_timeout = Duration::from_millis(shard.borrow().config.limits.login_timeout_ms);
    let head = futures_lite::future::or(async { Some(read_head(stream).await) }, async {
        Timer::new(login_timeout).await;
        None
    })
    .await;
    let (request, leftover) = match head {
        None => return None,
        Some(Err(HeadError::TooLarge)) => {
            respond(
                stream,
                http::json_error(431, "too_large", "request head too large"),
            )
            .await;
            return None;
        }
        Some(Err(_)) => {
            respond(
                stream,
                http::json_error(400, "bad_request", "malformed HTTP request"),
            )
            .await;
            return None;
        }
        Some(Ok(parsed)) => parsed,
    };
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/ws") => return upgrade(shard, stream, request, leftover, peer_ip).await,
        ("GET", "/healthz") => {
            let body = gather(shard, crate::metrics::health_json).await;
            respond(stream, http::response(200, "application/json", &body)).await;
        }
        ("GET", "/metrics") => {
            let body = gather(shard, crate::metrics::prometheus_text).await;
            respond(
                stream,
                http::response(200, "text/plain; version=0.0.4", &body),
            )
            .await;
        }
        ("POST", "/api/register" | "/api/login") => {
            let endpoint = match request.path.as_str() {
                "/api/register" => api::Endpoint::Register,
                _ => api::Endpoint::Login,
            };
            let response = api::answer(shard, stream, &request, leftover, peer_ip, endpoint).await;
            respond(stream, response).await;
        }
        (_, "/api/register" | "/api/login") => {
            respond(
                stream,
                http::json_error(405, "method_not_allowed", "use POST"),
            )
            .await;
        }
        (_, "/ws" | "/healthz" | "/metrics") => {
            respond(
                stream,
                http::json_error(405, "method_not_allowed", "use GET"),
            )
            .await;
        }
        _ => respond(stream, http::json_error(404, "not_found", "no such page")).await,
    }
    None
}

/// Reads a request head; returns it and any bytes that came after it.
async fn read_head(stream: &mut TcpStream) -> Result<(Request, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = futures_lite::AsyncReadExt::read(stream, &mut chunk)
            .await
            .map_err(|_| HeadError::Malformed)?;
        if n == 0 {
            return Err(HeadError::Malformed);
        }
        buf.extend_from_slice(&chunk[..n]);
        match http::parse_head(&buf) {
            Ok((request, len)) => return Ok((request, buf.split_off(len))),
            Err(HeadError::Incomplete) => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn respond(stream: &mut TcpStream, bytes: Vec<u8>) {
    // The peer may be gone already; there is no one left to tell.
    let _ = stream.write_all(&bytes).await;
    let _ = stream.close().await;
}

/// Asks every shard for its figures and renders them with `render`.
async fn gather(
    shard: &ShardCell,
    render: fn(&HostFacts<'_>, &[ShardStats]) -> Vec<u8>,
) -> Vec<u8> {
    let (tx, rx) = futures_channel::oneshot::channel();
    shard.borrow_mut().gather_stats(tx);
    let stats = rx.await.unwrap_or_default();
    let shard = shard.borrow();
    let host = HostFacts {
        host_id: &shard.config.host_id,
        rooms: shard.world.rooms.len(),
        store: &shard.store_metrics,
    };
    render(&host, &stats)
}

async fn upgrade(
    shard: &ShardCell,
    stream: &mut TcpStream,
    request: Request,
    leftover: Vec<u8>,
    peer_ip: std::net::IpAddr,
) -> Option<(u32, u32)> {
    let Some(key) = request
        .websocket_key
        .as_deref()
        .filter(|_| request.upgrade_websocket)
    else {
        respond(
            stream,
            http::json_error(426, "upgrade_required", "GET /ws needs a WebSocket upgrade"),
        )
        .await;
        return None;
    };
    if !request.websocket_version_ok {
        respond(
            stream,
            http::json_error(400, "bad_request", "Sec-WebSocket-Version must be 13"),
        )
        .await;
        return None;
    }
    if !shard.borrow().has_room_for_session() {
        shard.borrow_mut().counters.stats.refused_total += 1;
        respond(
            stream,
            http::json_error(503, "full", "this shard is full; try again"),
        )
        .await;
        return None;
    }
    if stream
        .write_all(&http::switching_protocols(key))
        .await
        .is_err()
    {
        return None;
    }
    // Small frames must leave at once; batching is done by the queue instead.
    let _ = stream.set_nodelay(true);
    let (slot, gen) = shard.borrow_mut().open_session(peer_ip);
    if !leftover.is_empty() {
        let mut sh = shard.borrow_mut();
        let mut data = leftover;
        if let Err(v) = consume(&mut sh, slot, &mut data) {
            if let Some(s) = sh.sessions.by_slot(slot) {
                s.request_close(CloseReason {
                    code: v.code,
                    reason: v.reason,
                });
            }
        }
    }
    Some((slot, gen))
}

/// Drives one session: write what is queued, read what has come, until the
/// socket would block both ways or the session ends (`Ready`).
fn poll_session(
    cx: &mut Context<'_>,
    shard: &ShardCell,
    scratch: &Rc<RefCell<Scratch>>,
    stream: &mut TcpStream,
    slot: u32,
    gen: u32,
) -> Poll<()> {
    let mut sh = shard.borrow_mut();
    let sh = &mut *sh;
    let mut scratch = scratch.borrow_mut();
    let scratch = &mut *scratch;
    match sh.sessions.get_mut(slot, gen) {
        Some(session) => {
            if !session
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                session.waker = Some(cx.waker().clone());
            }
        }
        None => return Poll::Ready(()),
    }
    for _ in 0..ROUNDS_PER_POLL_MAX {
        let blocked = match flush(cx, sh, stream, &mut scratch.write, slot) {
            Ok(blocked) => blocked,
            Err(()) => return Poll::Ready(()),
        };
        if let Some(reason) = sh.sessions.by_slot(slot).and_then(|s| s.close) {
            return finish_close(cx, sh, stream, &mut scratch.write, slot, reason);
        }
        match Pin::new(&mut *stream).poll_read(cx, &mut scratch.read) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(()),
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
        wbuf.clear();
        while wbuf.len() < WRITE_BATCH_BYTES {
            let Some(out) = session.out.pop_front() else {
                break;
            };
            session.out_bytes = session.out_bytes.saturating_sub(encode_out(wbuf, &out));
            counters.frames_out += 1;
        }
        if session.out.is_empty() {
            session.out_bytes = 0;
            // A queue that grew for a burst gives its memory back when drained.
            if session.out.capacity() > 64 {
                session.out = Default::default();
            }
        }
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

/// Appends one queued frame to `wbuf`; returns what it was charged in the queue.
pub fn encode_out(wbuf: &mut Vec<u8>, out: &Out) -> usize {
    use crate::shard::session::FRAME_OVERHEAD_BYTES;
    match out {
        Out::Seq(seq, body) => {
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
        Out::Ping => {
            ws::put_header(wbuf, ws::opcode::PING, 0);
            FRAME_OVERHEAD_BYTES
        }
        Out::Pong(payload) => {
            ws::put_header(wbuf, ws::opcode::PONG, payload.len());
            wbuf.extend_from_slice(payload);
            FRAME_OVERHEAD_BYTES + payload.len()
        }
    }
}

/// Handles bytes just read: whole frames now, an incomplete tail kept.
fn process(sh: &mut Shard, slot: u32, data: &mut [u8]) -> Result<(), ws::Violation> {
    let Some(session) = sh.sessions.by_slot(slot) else {
        return Ok(());
    };
    if session.partial.is_empty() {
        let used = consume(sh, slot, data)?;
        if used < data.len() {
            if let Some(session) = sh.sessions.by_slot(slot) {
                session.partial.extend_from_slice(&data[used..]);
            }
        }
        return Ok(());
    }
    let mut buf = std::mem::take(&mut session.partial);
    buf.extend_from_slice(data);
    let used = consume(sh, slot, &mut buf)?;
    buf.drain(..used);
    if let Some(session) = sh.sessions.by_slot(slot) {
        session.partial = if buf.is_empty() { Vec::new() } else { buf };
    }
    Ok(())
}

/// Handles every complete frame at the start of `buf`; returns the bytes used.
fn consume(sh: &mut Shard, slot: u32, buf: &mut [u8]) -> Result<usize, ws::Violation> {
    let frame_bytes_max = sh.config.limits.frame_bytes_max;
    let mut pos = 0;
    while pos < buf.len() {
        let Some(frame) = ws::parse_frame(&mut buf[pos..], frame_bytes_max)? else {
            break;
        };
        let start = pos + frame.payload_start;
        let end = pos + frame.payload_end;
        pos = end;
        on_frame(sh, slot, frame.kind, frame.fin, &mut buf[start..end])?;
        let closing = sh.sessions.by_slot(slot).is_none_or(|s| s.close.is_some());
        if closing {
            return Ok(buf.len());
        }
    }
    Ok(pos)
}

fn on_frame(
    sh: &mut Shard,
    slot: u32,
    kind: Kind,
    fin: bool,
    payload: &mut [u8],
) -> Result<(), ws::Violation> {
    let now = sh.now_ms();
    let frame_bytes_max = sh.config.limits.frame_bytes_max;
    let bytes_max = sh.config.limits.outbound_bytes_max;
    let Some(session) = sh.sessions.by_slot(slot) else {
        return Ok(());
    };
    session.heard_ms = now;
    match kind {
        Kind::Ping => {
            if !session.push(Out::Pong(bytes::Bytes::copy_from_slice(payload)), bytes_max) {
                session.request_close(close::SLOW_READER);
            }
            Ok(())
        }
        Kind::Pong => {
            session.pings_missed = 0;
            Ok(())
        }
        Kind::Close => {
            session.request_close(close::BYE);
            Ok(())
        }
        Kind::Text | Kind::Binary => {
            if session.fragments.is_some() {
                return Err(ws::Violation {
                    code: close::PROTOCOL_ERROR,
                    reason: "new message inside a fragmented one",
                });
            }
            if !fin {
                // The first byte records the kind: 1 text, 0 binary.
                let mut fragments = Vec::with_capacity(payload.len() + 1);
                fragments.push(u8::from(kind == Kind::Text));
                fragments.extend_from_slice(payload);
                session.fragments = Some(fragments);
                return Ok(());
            }
            message(sh, slot, kind == Kind::Text, payload)
        }
        Kind::Continuation => {
            let Some(fragments) = session.fragments.as_mut() else {
                return Err(ws::Violation {
                    code: close::PROTOCOL_ERROR,
                    reason: "continuation without a message",
                });
            };
            if fragments.len() - 1 + payload.len() > frame_bytes_max {
                return Err(ws::Violation {
                    code: close::TOO_BIG,
                    reason: "message too big",
                });
            }
            fragments.extend_from_slice(payload);
            if !fin {
                return Ok(());
            }
            let Some(mut whole) = session.fragments.take() else {
                return Ok(());
            };
            let is_text = whole[0] == 1;
            message(sh, slot, is_text, &mut whole[1..])
        }
    }
}

/// A complete message: text goes to the protocol, binary is refused.
fn message(
    sh: &mut Shard,
    slot: u32,
    is_text: bool,
    payload: &mut [u8],
) -> Result<(), ws::Violation> {
    if !is_text {
        sh.send_error(
            slot,
            "unsupported",
            "binary frames are not supported; send JSON text frames",
        );
        return Ok(());
    }
    if simdutf8::basic::from_utf8(payload).is_err() {
        return Err(ws::Violation {
            code: close::INVALID_PAYLOAD,
            reason: "text frame is not valid UTF-8",
        });
    }
    sh.on_text(slot, payload);
    Ok(())
}
